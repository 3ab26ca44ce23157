"""Anchors, per-frame anchor distances and per-frame targets (docs/FORMAT.md: Anchors, Distances, Targets).

* An anchor is ``(time_s, frame, label, source)``; times are seconds from the start of the
  utterance (segment), never from the recording.
* Distance per frame ``t``: ``d_t = t - a(t)`` with ``a(t)`` the nearest anchor frame (ties go to
  the earlier anchor), int16 saturating at ±32767; an utterance without anchors has
  ``d_t = NO_ANCHOR = 32767`` everywhere, and ``|d| >= 32767`` means "no anchor in range".
* Target per frame: the nearest anchor's class id when ``lo <= d_t <= hi`` (the positive window),
  ``IGNORE_INDEX`` inside the guard band (``guard`` frames on either side of the window), else 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchorprep.errors import UsageError

NO_ANCHOR = 32767
IGNORE_INDEX = -100
BACKGROUND = "background"
ANCHOR_SOURCES = ("alignment", "vad", "accel", "manual")
SPEECH_ONSET, SPEECH_OFFSET = "speech_onset", "speech_offset"


def source_kind(source: str) -> str:
    """The kind of an anchor source, one of `ANCHOR_SOURCES`: a source may name who within its
    kind after a colon (``alignment:alice``, from ``align --speaker all``)."""
    return source.partition(":")[0]


@dataclass(frozen=True)
class Anchor:
    """One anchor: the event time, the model frame it maps to, its class label and its source."""

    time_s: float
    frame: int
    label: str
    source: str


@dataclass(frozen=True)
class TargetWindow:
    """Frames with ``lo <= d <= hi`` are positive; ``guard`` frames beyond either edge are ignored."""

    lo: int = 0
    hi: int = 30
    guard: int = 0

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise UsageError(f"`positive_window` {self.lo}:{self.hi} is empty (LO > HI)")
        if self.guard < 0:
            raise UsageError(f"`guard` must be >= 0, got {self.guard}")

    @classmethod
    def parse(cls, text: str, guard: int = 0) -> "TargetWindow":
        """Parse ``"LO:HI"`` (frames, either may be negative), e.g. ``"0:30"`` or ``"-5:20"``."""
        try:
            lo, hi = (int(part) for part in text.split(":"))
        except ValueError:
            raise UsageError(f"`positive_window` must look like LO:HI in frames (e.g. 0:30), got {text!r}") from None
        return cls(lo, hi, guard)


def label_map(labels: list[str]) -> dict[str, int]:
    """Class ids for anchor labels in the given order: 0 is background, then 1, 2, ..."""
    ids = {BACKGROUND: 0}
    for label in labels:
        if label in ids:
            raise UsageError(f"label {label!r} given twice")
        ids[label] = len(ids)
    return ids


def nearest_anchor(anchor_frames: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """For every frame, the index of the nearest anchor (ties: the earlier) and the distance.

    ``anchor_frames`` must be sorted ascending and non-empty. Returns ``(index, distance)`` with
    distance as int64 ``t - anchor_frames[index]`` (unsaturated).
    """
    frames = np.arange(num_frames, dtype=np.int64)
    anchors = np.asarray(anchor_frames, dtype=np.int64)
    after = np.searchsorted(anchors, frames, side="left")  # first anchor at or after t
    has_next, has_prev = after < len(anchors), after > 0
    nxt, prev = np.minimum(after, len(anchors) - 1), np.maximum(after - 1, 0)
    # Ties go to the earlier anchor, hence <=.
    use_prev = has_prev & (~has_next | (frames - anchors[prev] <= anchors[nxt] - frames))
    index = np.where(use_prev, prev, nxt)
    return index, frames - anchors[index]


def label_frames(anchor_frames, anchor_classes, num_frames: int,
                 window: TargetWindow | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-frame int16 distances and (with a window) targets from one nearest-anchor pass.

    Distance ``d_t = t - a(t)`` saturates at ±32767 (``NO_ANCHOR`` everywhere without anchors).
    Targets are the nearest anchor's class inside the positive window, ``IGNORE_INDEX`` in the
    guard band around it, 0 (background) elsewhere and everywhere for an utterance without anchors.
    """
    if len(anchor_frames) == 0:
        targets = None if window is None else np.zeros(num_frames, dtype=np.int16)
        return np.full(num_frames, NO_ANCHOR, dtype=np.int16), targets
    if len(anchor_frames) == 1 and num_frames <= NO_ANCHOR:
        one = _one_anchor(anchor_frames, anchor_classes, num_frames, window)
        if one is not None:
            return one
    order = np.argsort(np.asarray(anchor_frames), kind="stable")
    frames = np.asarray(anchor_frames, dtype=np.int64)[order]
    if len(frames) == 1:  # the common case: no search needed
        index = np.zeros(num_frames, dtype=np.int64)
        distance = np.arange(num_frames, dtype=np.int64) - frames[0]
    else:
        index, distance = nearest_anchor(frames, num_frames)
    saturated = distance.clip(-NO_ANCHOR, NO_ANCHOR).astype(np.int16)
    if window is None:
        return saturated, None
    targets = np.zeros(num_frames, dtype=np.int16)
    if window.guard:
        guard = (distance >= window.lo - window.guard) & (distance <= window.hi + window.guard)
        targets[guard] = IGNORE_INDEX
    positive = (distance >= window.lo) & (distance <= window.hi)
    targets[positive] = np.asarray(anchor_classes, dtype=np.int16)[order][index[positive]]
    return saturated, targets


def _one_anchor(anchor_frames, anchor_classes, num_frames: int,
                window: TargetWindow | None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """`label_frames` for one anchor frame ``a`` in ``[0, T)`` with ``T <= 32767`` (no distance
    saturates): ``d = arange(-a, T - a)``, and the window and guard band are frame ranges, so
    the targets are two slice assignments. None when the anchor is not such a frame."""
    a = anchor_frames[0]
    if not isinstance(a, (int, np.integer)) or not 0 <= a < num_frames:
        return None
    a = int(a)
    distance = np.arange(-a, num_frames - a, dtype=np.int16)
    if window is None:
        return distance, None
    targets = np.zeros(num_frames, dtype=np.int16)
    if window.guard:
        targets[max(0, a + window.lo - window.guard):max(0, a + window.hi + window.guard + 1)] = IGNORE_INDEX
    targets[max(0, a + window.lo):max(0, a + window.hi + 1)] = np.int16(anchor_classes[0])
    return distance, targets


def row_labels(anchor_frames, anchor_classes, num_frames: int,
               window: TargetWindow | None) -> tuple[np.ndarray, np.ndarray | None]:
    """`label_frames`' distances and targets as read-only arrays, which may be views of shared
    templates: for a row whose arrays are only read (copied into a shard) until it is dropped.

    No anchor: slices of constant arrays. One anchor frame ``a`` in ``[0, T)`` with
    ``T <= 32767``: the distances ``arange(-a, T - a)`` are the slice ``[32767 - a, 32767 - a + T)``
    of ``arange(-32767, 32768)``, and the targets the same slice of that distance ramp's targets
    (`_band`). Anything else: `label_frames`.
    """
    if len(anchor_frames) == 0:
        targets = None if window is None else _constant(0, num_frames)
        return _constant(NO_ANCHOR, num_frames), targets
    if len(anchor_frames) == 1 and num_frames <= NO_ANCHOR:
        a = anchor_frames[0]
        if isinstance(a, (int, np.integer)) and 0 <= a < num_frames:
            start = NO_ANCHOR - int(a)
            distance = _RAMP[start:start + num_frames]
            if window is None:
                return distance, None
            band = _band(int(anchor_classes[0]), window)
            if band is not None:
                return distance, band[start:start + num_frames]
    distance, targets = label_frames(anchor_frames, anchor_classes, num_frames, window)
    distance.flags.writeable = False
    if targets is not None:
        targets.flags.writeable = False
    return distance, targets


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


#: ``d`` for every distance ``-32767 <= d <= 32767``: one anchor's distances are a slice of it.
_RAMP = _read_only(np.arange(-NO_ANCHOR, NO_ANCHOR + 1, dtype=np.int16))
_CONSTANTS: dict[int, np.ndarray] = {}
_BANDS: dict[tuple[int, int, int, int], np.ndarray] = {}


def _constant(value: int, num_frames: int) -> np.ndarray:
    """A read-only int16 array of ``num_frames`` times ``value``: a slice of one that grows,
    kept per length (rows without anchors repeat a corpus's few hundred lengths)."""
    key = (value, num_frames)
    view = _CONSTANT_VIEWS.get(key)
    if view is None:
        array = _CONSTANTS.get(value)
        if array is None or len(array) < num_frames:
            size = max(num_frames, 2 * len(array) if array is not None else 4096)
            array = _CONSTANTS[value] = _read_only(np.full(size, value, dtype=np.int16))
        if len(_CONSTANT_VIEWS) >= 8192:
            _CONSTANT_VIEWS.clear()
        view = _CONSTANT_VIEWS[key] = array[:num_frames]
    return view


_CONSTANT_VIEWS: dict[tuple[int, int], np.ndarray] = {}


def _band(label: int, window: TargetWindow) -> np.ndarray:
    """The targets of the distances in `_RAMP` for an anchor of class ``label``: `label` where
    ``lo <= d <= hi``, `IGNORE_INDEX` in the guard band, 0 elsewhere (as `label_frames`); None
    for a window whose bounds are not integers (`label_frames` decides)."""
    key = (label, window.lo, window.hi, window.guard)  # (a dataclass hashes in Python)
    band = _BANDS.get(key)
    if band is None:
        if not all(isinstance(bound, (int, np.integer)) for bound in key[1:]):
            return None
        if len(_BANDS) >= 256:
            _BANDS.clear()
        distance = _RAMP.astype(np.int64)  # compared with window bounds of any size
        band = np.zeros(len(_RAMP), dtype=np.int16)
        if window.guard:
            band[(distance >= window.lo - window.guard) & (distance <= window.hi + window.guard)] = IGNORE_INDEX
        band[(distance >= window.lo) & (distance <= window.hi)] = np.int16(label)
        band = _BANDS[key] = _read_only(band)
    return band


def anchor_distances(anchor_frames, num_frames: int) -> np.ndarray:
    """Per-frame distance ``d_t = t - a(t)`` as int16, saturating at ±32767 (docs/FORMAT.md, Distances)."""
    return label_frames(anchor_frames, np.zeros(len(anchor_frames)), num_frames, None)[0]


def frame_targets(anchor_frames, anchor_classes, num_frames: int, window: TargetWindow) -> np.ndarray:
    """Per-frame int16 targets (see `label_frames`)."""
    return label_frames(anchor_frames, anchor_classes, num_frames, window)[1]
