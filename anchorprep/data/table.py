"""One shard in memory, with its list columns as torch tensors over Arrow's own buffers.

A ``list<int16>`` column in Arrow is two buffers: ``values`` (every row's elements back to back)
and ``offsets`` (row ``i`` is ``values[offsets[i]:offsets[i+1]]``). `ShardTable` wraps each
numeric values buffer once with ``torch.from_numpy`` (no copy) and hands out per-row slices, so
reading a row costs one tensor view per column whatever its length, and never a Python object
per element.

The views share memory with the shard's Arrow buffers, which Arrow treats as immutable: clone
an item's tensor before editing it in place (`collate_anchors` copies into fresh batch tensors,
so batches are safe to edit).

Example:
    >>> import pyarrow as pa, numpy as np
    >>> from anchorprep.shards import rows_to_table, shard_schema
    >>> row = {"utt_id": "a", "audio_path": None, "start_s": 0.0, "duration_s": 0.1,
    ...        "sample_rate": 16000, "num_frames": 3, "anchor_times_s": np.array([0.02]),
    ...        "anchor_frames": np.array([1], np.int32), "anchor_labels": ["kw"],
    ...        "anchor_sources": ["manual"], "distance": np.array([-1, 0, 1], np.int16),
    ...        "target": np.array([0, 1, 1], np.int16)}
    >>> table = ShardTable(rows_to_table([row], shard_schema()))
    >>> item = table.item(0)
    >>> item["utt_id"], item["distance"].tolist(), item["target"].dtype
    ('a', [-1, 0, 1], torch.int16)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from anchorprep.shards.run import is_list_column, list_column
from anchorprep.storage import arrow_filesystem, location

#: Columns every item carries (``anchor_times_s`` and ``duration_s`` so that a batch can be
#: evaluated with `anchorprep.metrics.evaluate` without joining the shards again).
ITEM_COLUMNS = ("utt_id", "num_frames", "target", "distance", "anchor_frames", "anchor_times_s", "duration_s")
#: Columns the feature loader needs from a row.
AUDIO_COLUMNS = ("audio_path", "start_s", "duration_s", "sample_rate")
#: Rows decoded per Parquet read call (see `ShardTable.read`).
READ_BATCH_ROWS = 4096


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    # Arrow buffers are read-only; torch warns about every such array. The module docstring
    # documents that item tensors are views and must not be edited in place.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


class _ListColumn:
    """A list column as ``(offsets, values)`` (`list_column`): row ``i`` is
    ``values[offsets[i]:offsets[i + 1]]``, a tensor view (the same view as ``narrow``, through a
    cheaper call) or a list of strings."""

    __slots__ = ("offsets", "values")

    def __init__(self, column: pa.ChunkedArray) -> None:
        offsets, values = list_column(column)
        self.offsets: list[int] = offsets.tolist()
        self.values = _as_tensor(values) if isinstance(values, np.ndarray) else values


class ShardTable:
    """A loaded shard: scalar columns as Python lists, list columns as `_ListColumn` views."""

    def __init__(self, table: pa.Table, columns: Sequence[str] = ITEM_COLUMNS) -> None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise KeyError(f"shard has no column(s) {missing}; it has {table.column_names}")
        self.num_rows = table.num_rows
        self.columns = tuple(columns)
        self._scalars: dict[str, list] = {}
        self._lists: dict[str, _ListColumn] = {}
        for name in self.columns:
            column = table.column(name)
            if is_list_column(column):
                self._lists[name] = _ListColumn(column)
            else:
                self._scalars[name] = column.to_pylist()
        # What `item` loops over, flattened: it runs once per row read.
        self._scalar_items = tuple(self._scalars.items())
        self._list_items = tuple((name, column.values, column.offsets) for name, column in self._lists.items())

    @classmethod
    def read(cls, path: Path, columns: Sequence[str] = ITEM_COLUMNS, use_threads: bool = True) -> "ShardTable":
        """Read only ``columns`` of the shard at ``path``, `READ_BATCH_ROWS` rows at a time.

        A shard is one Parquet row group; decoding a large one in a single call (what
        ``pq.read_table`` does) is several times slower per frame than in batches of a few
        thousand rows, and ``pq.read_table``'s dataset layer costs more than a tiny shard's read.
        """
        source, filesystem = arrow_filesystem(location(path))
        with pq.ParquetFile(source, filesystem=filesystem) as parquet:
            schema = parquet.schema_arrow
            present = [c for c in columns if c in schema.names]  # a missing one: KeyError in __init__
            batches = parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=present, use_threads=use_threads)
            table = pa.Table.from_batches(list(batches), pa.schema([schema.field(c) for c in present]))
        return cls(table, columns)

    def scalar(self, name: str) -> list:
        return self._scalars[name]

    def item(self, i: int) -> dict:
        """Row ``i`` as a dict of Python scalars and tensor views (string lists as lists)."""
        item = {name: values[i] for name, values in self._scalar_items}
        for name, values, offsets in self._list_items:
            item[name] = values[offsets[i]:offsets[i + 1]]
        return item
