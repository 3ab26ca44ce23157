"""Normalising what callers pass in: score traces, anchor times and durations.

Scores arrive as a list of 1-D arrays (variable lengths), a padded ``(B, T)`` array plus
``lengths``, or torch tensors of either shape. They are flattened once into `Traces` so the metrics
can work on one contiguous array with per-utterance offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorprep.errors import UsageError

# Same snapping as anchorprep.grid: 1.09 s * 16000 is 17440.000000000002 in floating point, and
# a boundary test must treat it as sample 17440.
_SAMPLE_SNAP = 1e-6


def as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as a numpy array; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def seconds_to_samples(times_s: Any, sample_rate: int) -> np.ndarray:
    """Times in seconds as (fractional) sample positions, snapped to whole samples when within 1e-6."""
    pos = np.asarray(times_s, dtype=np.float64) * sample_rate
    snapped = np.round(pos)
    return np.where(np.abs(pos - snapped) < _SAMPLE_SNAP, snapped, pos)


@dataclass(frozen=True)
class Traces:
    """Per-frame score traces of ``B`` utterances, concatenated.

    Utterance ``i`` is ``flat[offsets[i]:offsets[i + 1]]``.
    """

    flat: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_scores(cls, scores: Any, lengths: Any = None) -> Traces:
        """Build from a list of 1-D traces or a padded ``(B, T)`` array (with optional ``lengths``)."""
        if isinstance(scores, Traces):
            if lengths is not None:
                raise UsageError("lengths cannot be combined with an already built Traces")
            return scores
        if hasattr(scores, "ndim") and scores.ndim == 2:
            return cls._from_padded(as_numpy(scores), lengths)
        if lengths is not None:
            raise UsageError("lengths is only meaningful with a padded (B, T) score array")
        return cls._from_list(list(scores))

    @classmethod
    def _from_padded(cls, padded: np.ndarray, lengths: Any) -> Traces:
        batch, width = padded.shape
        if lengths is None:
            lens = np.full(batch, width, dtype=np.int64)
        else:
            lens = as_numpy(lengths, dtype=np.int64).reshape(-1)
            if lens.shape[0] != batch:
                raise UsageError(f"{lens.shape[0]} lengths for {batch} padded score rows")
            if np.any(lens < 0) or np.any(lens > width):
                raise UsageError(f"lengths must lie in [0, {width}] for a (B, {width}) score array")
        keep = np.arange(width)[None, :] < lens[:, None]
        return cls._checked(padded[keep], np.concatenate([[0], np.cumsum(lens)]))

    @classmethod
    def _from_list(cls, traces: list[Any]) -> Traces:
        arrays = [as_numpy(t) for t in traces]
        for i, arr in enumerate(arrays):
            if arr.ndim != 1:
                raise UsageError(
                    f"score trace {i} has shape {arr.shape}; pass one probability per frame "
                    "(select the detector's class column first)"
                )
        lens = np.array([a.shape[0] for a in arrays], dtype=np.int64)
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
        return cls._checked(flat, np.concatenate([[0], np.cumsum(lens)]))

    @classmethod
    def _checked(cls, flat: np.ndarray, offsets: np.ndarray) -> Traces:
        flat = np.ascontiguousarray(flat, dtype=np.float64)
        if not np.all(np.isfinite(flat)):
            raise UsageError("scores contain NaN or infinite values")
        return cls(flat=flat, offsets=offsets.astype(np.int64))

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per utterance."""
        return np.diff(self.offsets)

    def trace(self, i: int) -> np.ndarray:
        """The score trace of utterance ``i``."""
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def utterance_max(self) -> np.ndarray:
        """Maximum score of each utterance; ``-inf`` for an empty trace."""
        out = np.full(len(self), -np.inf)
        nonempty = self.lengths > 0
        if np.any(nonempty):
            out[nonempty] = np.maximum.reduceat(self.flat, self.offsets[:-1][nonempty])
        return out

    def select(self, mask: np.ndarray) -> Traces:
        """The traces of the utterances where ``mask`` is true, in order."""
        pieces = [self.trace(i) for i in np.flatnonzero(mask)]
        lens = np.array([p.shape[0] for p in pieces], dtype=np.int64)
        flat = np.concatenate(pieces) if pieces else np.zeros(0)
        return Traces(flat=flat, offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))


def anchor_lists(anchor_times: Any, num_utterances: int) -> list[np.ndarray]:
    """Per-utterance anchor times (seconds), sorted; ``None`` or an empty list means a negative."""
    if anchor_times is None:
        raise UsageError("anchor_times is required: one list of anchor times (s) per utterance")
    items = list(anchor_times)
    if len(items) != num_utterances:
        raise UsageError(f"{len(items)} anchor lists for {num_utterances} score traces")
    out: list[np.ndarray] = []
    for i, item in enumerate(items):
        arr = np.zeros(0) if item is None else as_numpy(item).reshape(-1)
        if not np.all(np.isfinite(arr)):
            raise UsageError(f"anchor times of utterance {i} contain NaN or infinite values")
        out.append(np.sort(arr))
    return out


def durations_or_none(durations_s: Sequence[float] | Any, num_utterances: int) -> np.ndarray | None:
    """Validated per-utterance durations in seconds, or ``None`` when not given."""
    if durations_s is None:
        return None
    arr = as_numpy(durations_s).reshape(-1)
    if arr.shape[0] != num_utterances:
        raise UsageError(f"{arr.shape[0]} durations for {num_utterances} score traces")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise UsageError("durations must be finite and non-negative")
    return arr
