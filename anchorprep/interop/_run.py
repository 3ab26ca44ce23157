"""Reading a finished run's rows for the exporters (streaming, one shard in memory at a time)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anchorprep.data.source import ShardSource, open_source
from anchorprep.errors import UsageError

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
    """Every row of a run, in shard order: scalars as Python values, numeric list columns as
    numpy arrays (int16 ``distance``/``target``), string list columns as lists."""
    source = open_source(run)
    for shard in source.shards:
        table = pq.read_table(shard.path, columns=list(columns))
        cols: dict[str, object] = {}
        for name in columns:
            column = table.column(name)
            if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
                offsets = array.offsets.to_numpy()
                child = array.values
                if pa.types.is_string(child.type) or pa.types.is_large_string(child.type):
                    values = child.to_pylist()
                    cols[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(array))]
                else:
                    values = np.asarray(child.to_numpy(zero_copy_only=False))
                    cols[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(array))]
            else:
                cols[name] = column.to_pylist()
        for i in range(table.num_rows):
            yield {name: cols[name][i] for name in columns}
