from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from anchorprep.cli import app
from anchorprep.cli.common import usage_guard
from anchorprep.inspect.validate import MAX_PROBLEMS_PER_CHECK, ValidationReport, validate_run


@app.command("validate")
@usage_guard
def validate_command(
    out: Annotated[Path, typer.Argument(help="Output folder of a run (shards, manifest.json, errors.jsonl, report.json).")],
    deep: Annotated[int, typer.Option("--deep", help="Also re-derive N sampled rows from their inputs and compare every column.")] = 0,
    inputs: Annotated[Optional[Path], typer.Option("--inputs", help="With --deep: the manifest, folder or CTM the run read (needed for align and accel runs).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="With --deep: seed of the row sample.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    max_problems: Annotated[int, typer.Option("--max-problems", help="Problems printed (--json lists up to 200 per check and counts the rest).")] = 50,
) -> None:
    """Check a run against the shard contract; exit 0 when valid, 1 with the problems found."""
    report = validate_run(out, deep=deep, inputs=inputs, seed=seed)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_report(report, max_problems)
    raise typer.Exit(0 if report.ok else 1)


def print_report(report: ValidationReport, max_problems: int = 50) -> None:
    console = Console(highlight=False, soft_wrap=True)
    checked = report.checked
    what = (f"{checked.get('shards', 0)} shard(s), {checked.get('rows', 0):,} row(s), {checked.get('anchors', 0):,} "
            f"anchor(s), {checked.get('error_lines', 0):,} error line(s)")
    if "deep_rows" in checked:
        what += f", {checked['deep_rows']} row(s) re-derived"
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {escape(note)}")
    if report.ok:
        console.print(f"[green]valid[/green] {escape(str(report.out))}: {what}; "
                      f"{len(checked.get('checks', []))} checks passed")
        return
    console.print(f"{report.problem_count} problem(s) in {escape(str(report.out))}:")
    for problem in report.problems[:max_problems]:
        console.print(escape(str(problem)))
    hidden = report.problem_count - min(len(report.problems), max_problems)
    if hidden:
        console.print(f"… and {hidden:,} more (--json lists up to {MAX_PROBLEMS_PER_CHECK} per check and counts the rest)")
    by_check = ", ".join(f"{check} {count}" for check, count in report.counts_by_check().items())
    console.print(f"[red]invalid[/red] {escape(str(report.out))}: {what}; problems by check: {by_check}")
