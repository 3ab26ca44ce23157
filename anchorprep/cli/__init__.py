"""The `anchorprep` command line (`anchorprep.cli.app`): thin typer commands over the library."""

from anchorprep.cli.app import app, main

__all__ = ["app", "main"]
