"""The shard row schema (docs/FORMAT.md, Row schema) and fast row → Arrow table conversion."""

from __future__ import annotations

import json
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller
from typing import Sequence

import numpy as np
import pyarrow as pa

from anchorprep.sources.arrow import NUMPY_TYPES, numeric_array, string_array

SCHEMA_VERSION = 1
METADATA_KEY = b"anchorprep"
PASSTHROUGH_COLUMNS = ("speaker", "text", "split")
#: The per-frame SAL weight column of a run written by ``anchorprep weights`` (whose settings
#: carry a ``weights`` block); float32, one value per frame like ``distance``.
WEIGHT_COLUMN = "weight"
WEIGHT_FIELD = pa.field(WEIGHT_COLUMN, pa.list_(pa.float32()), nullable=False)

LIST_COLUMNS: dict[str, pa.DataType] = {
    "anchor_times_s": pa.float64(),
    "anchor_frames": pa.int32(),
    "anchor_labels": pa.string(),
    "anchor_sources": pa.string(),
    "distance": pa.int16(),
    "target": pa.int16(),
}

BASE_FIELDS = [
    pa.field("utt_id", pa.string(), nullable=False),
    pa.field("audio_path", pa.string()),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("sample_rate", pa.int32(), nullable=False),
    pa.field("num_frames", pa.int32(), nullable=False),
    *(pa.field(name, pa.list_(dtype), nullable=False) for name, dtype in LIST_COLUMNS.items()),
]


def shard_schema(passthrough: tuple[str, ...] = (), settings: dict | None = None) -> pa.Schema:
    """The Arrow schema of every shard of a run: the format's columns, then pass-through columns,
    then ``weight`` when the settings carry a ``weights`` block (a run from ``anchorprep weights``).

    ``settings`` (the run's settings JSON) travels in the key-value metadata under ``anchorprep``
    so a single shard explains itself.
    """
    fields = BASE_FIELDS + [pa.field(name, pa.string()) for name in passthrough]
    if settings is not None and "weights" in settings:
        fields.append(WEIGHT_FIELD)
    metadata = None if settings is None else {METADATA_KEY: json.dumps(settings, sort_keys=True).encode()}
    return pa.schema(fields, metadata=metadata)


#: Most values one list column of a shard can hold: Arrow ``list`` offsets are int32 (and a
#: Parquet reader cannot split one row group's nested column). The runner refuses the item that
#: would overflow its shard (`shard_size` too large for very long items).
MAX_LIST_VALUES = 2**31 - 1


def _list_array(values: Sequence, dtype: pa.DataType) -> pa.Array:
    """A list<dtype> array built from one flat buffer and offsets (no per-element Python work)."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > MAX_LIST_VALUES:  # int32 offsets would wrap to negative values
        raise OverflowError(f"{len(values)} rows hold {offsets[-1]} list values; a shard holds at most "
                            f"{MAX_LIST_VALUES} per column: write fewer rows per shard")
    offsets = offsets.astype(np.int32)
    if pa.types.is_string(dtype):
        flat = string_array(list(chain.from_iterable(values)))
    else:
        flat = _pooled_flat(values, dtype, int(offsets[-1]))
        if flat is None:
            flat_np = np.concatenate(values) if len(values) else np.zeros(0)
            flat = numeric_array(flat_np.astype(NUMPY_TYPES[dtype], copy=False), dtype)
    return pa.ListArray.from_arrays(numeric_array(offsets, pa.int32()), flat, type=pa.list_(dtype))


def _pooled_flat(values: Sequence, dtype: pa.DataType, total: int) -> pa.Array | None:
    """The values of numpy arrays all of ``dtype``'s type, concatenated into a buffer of Arrow's
    memory pool, which keeps freed memory for the next shard (a fresh numpy array of a few MB is
    new pages, faulted in one by one: several ms per shard); None for anything else."""
    np_type = _NUMPY_DTYPES[dtype]
    try:
        if not values or set(map(_DTYPE_AND_NDIM, values)) != {(np_type, 1)}:
            return None
    except AttributeError:  # lists
        return None
    buffer = pa.allocate_buffer(total * np_type.itemsize)
    np.concatenate(values, out=np.frombuffer(buffer, dtype=np_type))
    return pa.Array.from_buffers(dtype, total, [None, buffer])


_DTYPE_AND_NDIM = attrgetter("dtype", "ndim")
_NUMPY_DTYPES = {dtype: np.dtype(NUMPY_TYPES[dtype]) for dtype in LIST_COLUMNS.values()
                 if not pa.types.is_string(dtype)}


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Turn row dicts (list columns as numpy arrays or lists) into a table of ``schema``."""
    names = schema.names
    by_column = _transposed(rows, names)
    if by_column is None:  # a row without some column: null there
        by_column = [list(map(methodcaller("get", name), rows)) for name in names]
    columns = []
    for field, values in zip(schema, by_column):
        if field.name in LIST_COLUMNS:
            columns.append(_list_array(values, LIST_COLUMNS[field.name]))
        elif pa.types.is_string(field.type):
            columns.append(string_array(values))
        elif field.type in NUMPY_TYPES and not field.nullable:
            columns.append(numeric_array(values, field.type))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _transposed(rows: list[dict], names: list[str]) -> list[tuple] | None:
    """Each column's values, with one C-level pass per row; None unless every row has every
    column (and there are rows and several columns)."""
    if not rows or len(names) < 2:
        return None
    try:
        return list(zip(*map(itemgetter(*names), rows)))
    except KeyError:
        return None


def read_settings(schema: pa.Schema) -> dict:
    """The run settings stored in a shard's metadata (empty when absent)."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return {} if raw is None else json.loads(raw)
