"""The `anchorprep` command line: the typer app and its commands, registered in one place.

Every command is a thin layer over a library function (`anchorprep.align`, ...,
`anchorprep.inspect.validate_run`, ...); the library is imported only when a command runs.
"""

from __future__ import annotations

import typer

from anchorprep.version import __version__
from anchorprep.cli import evaluate, export, inspect, pipelines, weights
from anchorprep.cli.common import pipeline_command

app = typer.Typer(
    name="anchorprep",
    help="Anchors, per-frame anchor distances and targets for Streaming Anchor Loss training, at corpus scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anchorprep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """anchorprep: corpus-scale data preparation for Streaming Anchor Loss (SAL)."""


for _name in ("align", "vad", "accel"):
    pipeline_command(app, _name)(getattr(pipelines, _name))
pipeline_command(app, "merge", grid=False)(pipelines.merge)
app.command("assemble")(pipelines.assemble)
app.command("validate")(inspect.validate)
app.command("stats")(inspect.stats)
app.command("plot")(inspect.plot)
app.command("weights")(weights.weights)
app.command("evaluate")(evaluate.evaluate)
app.add_typer(export.export_app, name="export")


def main() -> None:
    app()
