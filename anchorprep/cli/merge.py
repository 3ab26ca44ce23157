from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Common, execute, pipeline_command
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.merge import MergeJob, read_merge_inputs
from anchorprep.pipeline.rows import Labelling


@pipeline_command("merge", grid=False)
def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="Output folders of earlier runs (same frame grid).")],
    use_source: Annotated[Optional[list[str]], typer.Option("--use-source", help="Sources the distance uses (repeat; first = primary).")] = None,
    agree_within_ms: Annotated[Optional[float], typer.Option("--agree-within-ms", help="Positive only where all --use-source anchors agree within this.")] = None,
    common: Common = None,
) -> None:
    """Merge the anchors of earlier runs by utt_id (e.g. VAD onsets + accelerometer peaks)."""
    inputs = read_merge_inputs(runs)
    combine = CombineOptions(tuple(use_source or ()), None if agree_within_ms is None else agree_within_ms / 1000.0)
    labelling = Labelling(inputs.grid, common.window(), inputs.labels, inputs.anchor_rule)
    execute(MergeJob(labelling, inputs.runs, combine), inputs.items,
            common.run_options())
