"""DOLPHIN core package: everything that is not a user interface."""

__version__ = "0.1.0"
