"""`anchorprep export lhotse|wekws RUN ...`: a finished run in other toolkits' formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import usage_guard

export_app = typer.Typer(
    name="export",
    help="Export a run to other toolkits: a lhotse CutSet with anchors, or a WeKws data.list.",
    no_args_is_help=True,
)

Run = Annotated[Path, typer.Argument(help="An anchorprep output folder (manifest.json + data/ shards).")]
Missing = Annotated[str, typer.Option("--missing", help="Inputs without a row: drop, keep (unchanged) or error.")]


def _report(summary) -> None:
    typer.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))


@export_app.command("lhotse")
@usage_guard
def lhotse(
    run: Run,
    cuts: Annotated[Path, typer.Option("--cuts", help="The lhotse CutSet the run was made from (.jsonl.gz/.jsonl/.json).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The CutSet to write, with anchor custom fields and arrays.")],
    storage_dir: Annotated[Optional[Path], typer.Option("--storage-dir", help="Folder for the .npy arrays (default: <out stem>_arrays beside --out).")] = None,
    missing: Missing = "drop",
) -> None:
    """Attach anchors (custom fields) and per-frame anchor_distance/anchor_target arrays to lhotse cuts."""
    from anchorprep.interop.lhotse_export import export_lhotse

    _report(export_lhotse(run, cuts, out, storage_dir=storage_dir, missing=missing))


@export_app.command("wekws")
@usage_guard
def wekws(
    run: Run,
    out: Annotated[Path, typer.Option("-o", "--out", help="The data.list to write.")],
    base_list: Annotated[Optional[Path], typer.Option("--base-list", help="A WeKws data.list (e.g. with CTC token ids) to extend by key.")] = None,
    per_frame: Annotated[bool, typer.Option("--per-frame/--no-per-frame", help="Include the per-frame target and distance lists.")] = True,
    allow_segments: Annotated[bool, typer.Option("--allow-segments", help="Write rows cut from longer files, with start/end.")] = False,
    missing: Missing = "drop",
) -> None:
    """Write a WeKws data.list: key, wav, txt (keyword index, -1 = negative), duration, anchors, targets."""
    from anchorprep.interop.wekws import export_wekws

    _report(export_wekws(run, out, base_list=base_list, per_frame=per_frame, allow_segments=allow_segments,
                         missing=missing))
