"""`anchorprep export lhotse|wekws RUN ...`: a finished run in other toolkits' formats."""

import json
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import usage_guard

export_app = typer.Typer(
    name="export",
    help="Export a run to other toolkits: a lhotse CutSet with anchors, or a WeKws data.list.",
    no_args_is_help=True,
)

Run = Annotated[str, typer.Argument(help="An anchorprep output folder (manifest.json + data/ shards).")]
Missing = Annotated[str, typer.Option("--missing", help="Inputs without a row: drop, keep (unchanged) or error.")]


def _report(summary) -> None:
    typer.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))


@export_app.command("lhotse")
@usage_guard
def lhotse(
    run: Run,
    cuts: Annotated[str, typer.Option("--cuts", help="The lhotse CutSet the run was made from (.jsonl.gz/.jsonl/.json).")],
    out: Annotated[str, typer.Option("-o", "--out", help="The CutSet to write, with anchor custom fields and arrays.")],
    missing: Missing = "drop",
) -> None:
    """Attach anchors to lhotse cuts as alignment items on an anchor supervision (moved by truncate, pad,
    perturb_speed); anchorprep.interop.cut_anchors computes per-frame labels. Exit 1 when no cut has a row."""
    from anchorprep.interop.lhotse_export import NoCutMatchedError, export_lhotse

    try:
        summary = export_lhotse(run, cuts, out, missing=missing)
    except NoCutMatchedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(summary)


@export_app.command("wekws")
@usage_guard
def wekws(
    run: Run,
    out: Annotated[str, typer.Option("-o", "--out", help="The data.list to write.")],
    base_list: Annotated[Optional[str], typer.Option("--base-list", help="A WeKws data.list (e.g. with CTC token ids) to extend by key.")] = None,
    dict_dir: Annotated[Optional[str], typer.Option("--dict-dir", help="Also write WeKws' dict.txt and words.txt for the txt tokens here.")] = None,
    per_frame: Annotated[bool, typer.Option("--per-frame/--no-per-frame", help="Include the per-frame target and distance lists.")] = True,
    missing: Missing = "drop",
) -> None:
    """Write a WeKws data.list: key, wav, txt (keyword token, <FILLER> = negative), duration, start/end, anchors, targets.
    Exit 1 when no key of --base-list has a row."""
    from anchorprep.interop.wekws import NoKeyMatchedError, export_wekws

    try:
        summary = export_wekws(run, out, base_list=base_list, dict_dir=dict_dir, per_frame=per_frame, missing=missing)
    except NoKeyMatchedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _report(summary)
