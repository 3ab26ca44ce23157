"""Reading a finished run's rows for the exporters (streaming, one shard in memory at a time)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence


from anchorprep.data.source import ShardSource, open_source
from anchorprep.errors import UsageError
from anchorprep.shards.run import iter_rows
from anchorprep.storage import read_table

#: The columns the exporters read.
EXPORT_COLUMNS = (
    "utt_id", "audio_path", "start_s", "duration_s", "sample_rate", "num_frames",
    "anchor_times_s", "anchor_frames", "anchor_labels", "anchor_sources", "distance", "target",
)


class MissingDependencyError(UsageError, ImportError):
    """An optional package an exporter needs is not installed (the message says what to install)."""


def require(module: str, extra: str, what: str):
    """Import `module` or raise `MissingDependencyError` with the exact install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the '{module.split('.')[0]}' package: pip install 'anchorprep[{extra}]' "
            f"(or pip install {module.split('.')[0]}) ({exc})"
        ) from None


def model_frame_shift_s(source: ShardSource) -> float:
    """Seconds between consecutive model frames of the run (feature shift x subsampling)."""
    grid = source.grid
    if grid is None:
        raise UsageError("the shards carry no anchorprep settings (no frame grid); cannot export them")
    return grid.shift * grid.subsampling / grid.sample_rate


def run_rows(run: str | os.PathLike | ShardSource, columns: Sequence[str] = EXPORT_COLUMNS) -> Iterator[dict]:
    """Every row of a run, in shard order, one shard in memory at a time (`iter_rows`): scalars
    as Python values, numeric list columns as numpy arrays (int16 ``distance``/``target``), string
    list columns as lists."""
    for shard in open_source(run).shards:
        yield from iter_rows(read_table(shard.path, columns), columns)
