"""Tests of the eigen scan, its files and `dolphin scan build`."""
