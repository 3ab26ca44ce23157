"""The `anchorprep` command line: thin typer commands over the library."""

from __future__ import annotations

import typer

from anchorprep import __version__

app = typer.Typer(
    name="anchorprep",
    help="Anchors, per-frame anchor distances and targets for Streaming Anchor Loss training, at corpus scale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anchorprep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    """anchorprep: corpus-scale data preparation for Streaming Anchor Loss (SAL)."""


from anchorprep.cli import accel, align, assemble, merge, vad  # noqa: E402,F401  (registers the commands)
from anchorprep.cli import plot, stats, validate  # noqa: E402,F401  (inspect commands)
from anchorprep.cli import export  # noqa: E402,F401  (export lhotse|wekws)


def main() -> None:
    app()
