"""Arrow arrays built from their buffers, never through ``pyarrow.array``.

``pyarrow.array`` first asks pyarrow's pandas shim whether its argument is a pandas object, and
that question imports pandas (about 0.3 s, half of ``anchorprep align``'s start-up) whatever the
argument is. The item tables (`anchorprep.sources.items`), the run driver and the shard writer
build their arrays here instead, so ``align``/``vad``/``accel`` runs never import pandas; the
arrays are the same as ``pyarrow.array`` builds (same values, validity and types).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

#: The numpy dtype holding each fixed-width Arrow type's values.
NUMPY_TYPES = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
    pa.float32(): np.float32, pa.float64(): np.float64,
}
_MAX_STRING_BYTES = 2**31 - 1  # int32 offsets of pa.string()


def string_array(values: Sequence[str | None]) -> pa.StringArray:
    """``pa.array(values, pa.string())``: UTF-8 text, None as null. A value that is not valid
    UTF-8 (a lone surrogate) raises ``UnicodeEncodeError``."""
    count = len(values)
    encoded = [b"" if value is None else value.encode("utf-8") for value in values]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=count)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > _MAX_STRING_BYTES:
        return pa.array(values, pa.string())  # over 2 GiB of text: pyarrow's own chunking
    validity, nulls = _validity([value is not None for value in values])
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded)),
                                       validity, nulls)


def numeric_array(values, dtype: pa.DataType) -> pa.Array:
    """``pa.array(values, dtype)`` for a fixed-width numeric ``dtype`` and values without None
    (a list of numbers or a numpy array); a value out of the type's range raises."""
    array = np.ascontiguousarray(values if isinstance(values, np.ndarray) else np.array(values), dtype=None)
    target = NUMPY_TYPES[dtype]
    if array.dtype != target:
        cast = array.astype(target)
        if array.size and np.issubdtype(target, np.integer) and not np.array_equal(cast, array):
            raise OverflowError(f"value out of range for {dtype}")
        array = cast
    return pa.Array.from_buffers(dtype, len(array), [None, pa.py_buffer(array)])


def _validity(present: list[bool]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap (None when every value is present) and the null count."""
    mask = np.fromiter(present, dtype=bool, count=len(present))
    nulls = int(len(mask) - mask.sum())
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(mask, bitorder="little")), nulls

