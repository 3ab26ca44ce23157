from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.anchors import TargetWindow
from anchorprep.cli import app
from anchorprep.cli.common import (
    ConfigFile, PrintConfig, Address, DryRun, Executor, Guard, MaxErrors, NumShards, Out, Overwrite, Quiet, Resume, Retries, ShardIndex, ShardSize, Window, Workers,
    execute, usage_guard,
)
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.merge import MergeJob, read_merge_inputs
from anchorprep.pipeline.rows import Labelling
from anchorprep.pipeline.runner import RunOptions


@app.command("merge")
@usage_guard
def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="Output folders of earlier runs (same frame grid).")],
    out: Out,
    use_source: Annotated[Optional[list[str]], typer.Option("--use-source", help="Sources the distance uses (repeat; first = primary).")] = None,
    agree_within_ms: Annotated[Optional[float], typer.Option("--agree-within-ms", help="Positive only where all --use-source anchors agree within this.")] = None,
    positive_window: Window = "0:30", guard: Guard = 0,
    shard_size: ShardSize = 1000, workers: Workers = 1, shard_index: ShardIndex = None, num_shards: NumShards = None,
    resume: Resume = False, overwrite: Overwrite = False, max_errors: MaxErrors = None, dry_run: DryRun = False,
    quiet: Quiet = False, executor: Executor = "local", address: Address = None, retries: Retries = 1,
    config: ConfigFile = None, print_config: PrintConfig = False,
) -> None:
    """Merge the anchors of earlier runs by utt_id (e.g. VAD onsets + accelerometer peaks)."""
    inputs = read_merge_inputs(runs)
    combine = CombineOptions(tuple(use_source or ()), None if agree_within_ms is None else agree_within_ms / 1000.0)
    labelling = Labelling(inputs.grid, TargetWindow.parse(positive_window, guard), inputs.labels, inputs.anchor_rule)
    execute(MergeJob(labelling, inputs.runs, combine), inputs.items,
            RunOptions(out, shard_size, workers, shard_index, num_shards, resume, overwrite, max_errors,
                                   dry_run, quiet, retries, executor, address))
