from __future__ import annotations

import json
from pathlib import Path

import typer

from anchorprep.cli import app
from anchorprep.cli.common import usage_guard
from anchorprep.pipeline.runner import assemble


@app.command("assemble")
@usage_guard
def assemble_command(out: Path = typer.Argument(..., help="Output folder of an array-job run.")) -> None:
    """Write manifest.json, errors.jsonl and report.json once every shard of a run is finished."""
    report = assemble(out, require_complete=True)
    typer.echo(json.dumps(report.to_dict(), indent=2))
    raise typer.Exit(1 if report.failed else 0)
