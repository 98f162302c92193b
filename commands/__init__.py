"""The `dolphin` command line: one Typer module per command group, thin over `dolphin/`."""
