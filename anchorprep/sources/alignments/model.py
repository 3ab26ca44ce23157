"""The time-aligned transcript model every alignment reader returns.

An `Alignment` is named tiers of `Interval`s in seconds from the start of the file (or of the
utterance, for multi-utterance formats). Readers (`textgrid`, `mfa`, `ctm`, `rttm`, `lhotse` in
this package) build tiers with `build_tier` (validating) or `validated_intervals` /
`contiguous_intervals` (their fast paths); they depend on this module, never the reverse.
Tier selection and keyword matching are in `keywords`, choosing a reader in `formats`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import add, le, sub
from typing import Callable, Iterable, Sequence

from anchorprep.errors import InputError, UsageError

@dataclass(frozen=True, slots=True)
class Interval:
    """One labelled span, in seconds from the start of the file the alignment describes.

    Points of a point tier are intervals with ``start == end``.
    """

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Tier:
    """A named tier. `kind` is "interval" or "point" (points have start == end).

    `xmin`/`xmax` are the tier's own bounds as the file states them (a TextGrid tier may span
    less than its grid); None when the format has no per-tier bounds.
    """

    name: str
    intervals: tuple[Interval, ...]
    kind: str = "interval"
    xmin: float | None = None
    xmax: float | None = None

    @classmethod
    def from_columns(cls, name: str, starts: list[float], ends: list[float], labels: list[str], *,
                     kind: str = "interval", xmin: float | None = None, xmax: float | None = None,
                     strip_labels: bool = False) -> "Tier":
        """A tier held as columns (already validated: what `validated_intervals` accepts), whose
        `intervals` are built only when first used; with `strip_labels` the labels are stripped
        (`str.strip`) on first use too.

        Equal to ``Tier(name, intervals, ...)`` with the same intervals in every respect; a reader
        uses it so that tiers a job never looks at (an MFA grid's phones, for word keywords) cost
        no per-interval objects.
        """
        tier = _new_object(cls)
        for field_name, value in (("name", name), ("kind", kind), ("xmin", xmin), ("xmax", xmax)):
            object.__setattr__(tier, field_name, value)
        object.__setattr__(tier, "_pending", (starts, ends, labels, strip_labels))
        return tier

    @classmethod
    def deferred(cls, name: str, load: Callable[[], tuple[list[float], list[float], list[str], bool]], *,
                 kind: str = "interval", xmin: float | None = None, xmax: float | None = None) -> "Tier":
        """A tier whose columns are read on first use: `load()` returns ``(starts, ends, labels,
        strip_labels)`` as `from_columns` takes them (validated), or raises the `InputError` of
        the file it comes from.

        A reader uses it for a tier it has checked only for structure (name, bounds and entry
        count known): the parse and validation of its values happen when `columns`,
        `intervals`, `load` (or equality, hashing, pickling) first need them.
        """
        tier = _new_object(cls)
        for field_name, value in (("name", name), ("kind", kind), ("xmin", xmin), ("xmax", xmax)):
            object.__setattr__(tier, field_name, value)
        object.__setattr__(tier, "_pending", load)
        return tier

    def load(self) -> "Tier":
        """Read a `deferred` tier's values now (raising its file's `InputError` if they are
        damaged); returns the tier. A no-op for every other tier."""
        if callable(self.__dict__.get("_pending")) and "_columns" not in self.__dict__:
            self.columns()
        return self

    def columns(self) -> tuple[list[float], list[float], list[str]]:
        """``(starts, ends, labels)`` of the intervals, in order, as lists (computed once)."""
        found = self.__dict__.get("_columns")
        if found is None:
            pending = self.__dict__.get("_pending")
            if pending is not None:
                if callable(pending):  # a `deferred` tier
                    pending = pending()
                starts, ends, labels, strip = pending
                found = (starts, ends, list(map(str.strip, labels)) if strip else labels)
            else:
                intervals = self.intervals
                found = ([iv.start for iv in intervals], [iv.end for iv in intervals], [iv.label for iv in intervals])
            object.__setattr__(self, "_columns", found)
        return found

    def __getattr__(self, name: str):
        # Only reached for attributes not in the instance: `intervals` of a `from_columns` or
        # `deferred` tier.
        if name == "intervals" and "_pending" in self.__dict__:
            intervals = _build_intervals(*self.columns())
            object.__setattr__(self, "intervals", intervals)
            return intervals
        raise AttributeError(name)

    def __getstate__(self) -> dict:
        if "_pending" in self.__dict__:
            self.intervals  # noqa: B018 - materialise, so the pickle holds plain intervals
        return {key: value for key, value in self.__dict__.items() if key not in ("_pending", "_columns")}


@dataclass(frozen=True)
class Alignment:
    """All tiers of one alignment file (or of one utterance of a multi-utterance file).

    `meta` holds reader details that do not affect the times, e.g. ``format``, ``encoding``,
    ``renamed_tiers`` (new name -> name in the file) and ``speakers``.
    """

    tiers: tuple[Tier, ...]
    xmin: float
    xmax: float
    path: str | None = None
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def tier_names(self) -> list[str]:
        """The tier names, in file order."""
        return [t.name for t in self.tiers]

    def get_tier(self, name: str) -> Tier:
        """The tier called `name` (exact match); `InputError` listing the tiers if absent."""
        for t in self.tiers:
            if t.name == name:
                return t
        raise InputError(f"no tier named {name!r}; tiers present: {self.tier_names}", self.path)




# --------------------------------------------------------------------------------------------
# Building validated tiers (shared by the readers)


def checked_time(value: object, what: str, path: str | None = None) -> float:
    """`value` as a finite, non-negative float of seconds; `-0` becomes `0.0`.

    Raises `InputError` naming `what` (e.g. "xmin of interval 3 of tier 'words'") otherwise.
    """
    if isinstance(value, bool):
        raise InputError(f"{what} is {value!r}, not a time in seconds", path)
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} is {value!r}, not a time in seconds", path) from None
    if not math.isfinite(t):
        raise InputError(f"{what} is {value!r}; times must be finite numbers", path)
    if t < 0.0:
        raise InputError(f"{what} is negative ({value!r}); times must be >= 0", path)
    return t + 0.0  # turns -0.0 into 0.0


def build_tier(
    name: str,
    entries: Iterable[Sequence[object]],
    kind: str = "interval",
    xmin: object | None = None,
    xmax: object | None = None,
    path: str | None = None,
) -> Tier:
    """Validate raw entries and return a `Tier` sorted by time.

    `entries` are ``(start, end, label)`` for interval tiers and ``(time, label)`` for point
    tiers; times may be strings or numbers. Raises `InputError` for non-finite or negative
    times, an interval ending before it starts, overlapping intervals, or tier bounds with
    xmin > xmax. Zero-length intervals are kept.
    """
    tmin = None if xmin is None else checked_time(xmin, f"xmin of tier {name!r}", path)
    tmax = None if xmax is None else checked_time(xmax, f"xmax of tier {name!r}", path)
    if tmin is not None and tmax is not None and tmin > tmax:
        raise InputError(f"tier {name!r} has xmin {tmin} > xmax {tmax}", path)
    if kind == "point":
        intervals = _point_intervals(name, entries, path)
    elif kind == "interval":
        intervals = _interval_intervals(name, entries, path)
    else:
        raise UsageError(f"tier kind must be 'interval' or 'point', got {kind!r}")
    return Tier(name=name, intervals=intervals, kind=kind, xmin=tmin, xmax=tmax)


def _entry_fields(entry: Sequence[object], n: int, what: str, path: str | None) -> Sequence[object]:
    if not isinstance(entry, (list, tuple)) or len(entry) != n:
        raise InputError(f"{what} should have {n} fields, got {entry!r}", path)
    return entry


def _label(value: object, what: str, path: str | None) -> str:
    if not isinstance(value, str):
        raise InputError(f"label of {what} is {value!r}, not text", path)
    return value


def _interval_intervals(name: str, entries: Iterable[Sequence[object]], path: str | None) -> tuple[Interval, ...]:
    entries = list(entries)
    fast = _interval_intervals_fast(entries)
    return fast if fast is not None else _interval_intervals_checked(name, entries, path)


def _interval_intervals_fast(entries: list[Sequence[object]]) -> tuple[Interval, ...] | None:
    """The common case (valid, ordered, non-overlapping) cheaply; None otherwise.

    Readers call this for every interval of every file. When every entry is a 3-field tuple or
    list (what every reader produces) the fields are converted and checked column by column
    with C-level `map` passes (`validated_intervals`); other shapes take a plain loop. Anything
    unusual falls back to `_interval_intervals_checked`, which explains the problem.
    """
    if not entries:
        return ()
    if set(map(type, entries)) <= _ENTRY_TYPES and set(map(len, entries)) == {3}:
        starts_raw, ends_raw, labels = zip(*entries)
        try:
            # + 0.0 turns -0.0 into 0.0
            starts = list(map(add, map(float, starts_raw), repeat(0.0)))
            ends = list(map(add, map(float, ends_raw), repeat(0.0)))
        except (TypeError, ValueError, OverflowError):
            return None
        return validated_intervals(starts, ends, labels)
    out = []
    prev_end = _OVERLAP_SLACK  # so the first start must be >= 0
    try:
        for b, e, label in entries:
            start = float(b) + 0.0  # + 0.0 turns -0.0 into 0.0
            end = float(e) + 0.0
            # Chained comparisons are False for NaN, so this also rejects NaN.
            if not (prev_end - _OVERLAP_SLACK <= start <= end < math.inf) or start < 0.0 or type(label) is not str:
                return None
            prev_end = end
            out.append(Interval(start, end, label))
    except (TypeError, ValueError, OverflowError):
        return None
    return tuple(out)


_ENTRY_TYPES = frozenset({tuple, list})
_new_object = object.__new__
# Interval is a frozen slotted dataclass: its generated __init__ stores each field with
# object.__setattr__; the slot descriptors' own __set__ does the same without the Python call.
_SET_START, _SET_END, _SET_LABEL = Interval.start.__set__, Interval.end.__set__, Interval.label.__set__


def validated_intervals(
    starts: Sequence[float], ends: Sequence[float], labels: Sequence[object]
) -> tuple[Interval, ...] | None:
    """`Interval`s from parallel columns of floats and labels, or None if the fast rules fail.

    The fast rules (the common case of every reader; `valid_interval_columns`): every start is
    >= 0, every interval ends at or after its start and before infinity (so no NaN), each
    interval starts no earlier than the previous one ends (minus a 1e-9 slack for independently
    rounded boundaries), and every label is a `str`. Each rule is one C-level pass (`map` with
    `operator` functions), and the intervals are built without calling the dataclass
    ``__init__`` per object; for tiers of 30-100 intervals this measured faster than numpy,
    whose array set-up costs more than the comparisons. On None, callers fall back to their
    checked path, which sorts, validates value by value and explains the problem.
    """
    if not valid_interval_columns(starts, ends, labels):
        return None
    return _build_intervals(starts, ends, labels) if len(starts) else ()


def valid_interval_columns(starts: Sequence[float], ends: Sequence[float], labels: Sequence[object] | None) -> bool:
    """Whether the columns pass `validated_intervals`' rules (``labels=None``: known to be `str`)."""
    n = len(starts)
    if n == 0:
        return len(ends) == 0 and (labels is None or len(labels) == 0)
    if len(ends) != n or (labels is not None and len(labels) != n):
        return False
    if not all(map(le, starts, ends)):  # False for NaN too
        return False
    if not (min(starts) >= 0.0 and max(ends) < math.inf):
        return False
    if n > 1 and not all(map(le, map(sub, islice(ends, n - 1), repeat(_OVERLAP_SLACK)), islice(starts, 1, None))):
        return False
    return labels is None or set(map(type, labels)) == {str}


def contiguous_intervals(starts: list[float], last_end: float, labels: Sequence[object]) -> tuple[Interval, ...] | None:
    """``validated_intervals(starts, starts[1:] + [last_end], labels)``, for touching intervals.

    When every interval ends where the next starts (MFA, Praat), the rules reduce to: the
    first start is >= 0, starts never decrease, and the last start <= `last_end` < infinity
    (the overlap rule then always holds); one comparison pass instead of four. Same result.
    """
    n = len(starts)
    if n == 0 or len(labels) != n:
        return validated_intervals(starts, [], labels) if n == 0 else None
    if not valid_contiguous_columns(starts, last_end) or set(map(type, labels)) != {str}:
        return None
    ends = starts[1:]
    ends.append(last_end)
    return _build_intervals(starts, ends, labels)


def valid_contiguous_columns(starts: list[float], last_end: float) -> bool:
    """Whether touching intervals (each ends where the next starts, the last at `last_end`)
    pass `validated_intervals`' time rules; `starts` must not be empty."""
    return starts[0] >= 0.0 and starts[-1] <= last_end < math.inf and all(map(le, starts, islice(starts, 1, None)))


def _build_intervals(starts: Sequence[float], ends: Sequence[float], labels: Sequence[str]) -> tuple[Interval, ...]:
    out = list(map(_new_object, repeat(Interval, len(starts))))
    deque(map(_SET_START, out, starts), 0)
    deque(map(_SET_END, out, ends), 0)
    deque(map(_SET_LABEL, out, labels), 0)
    return tuple(out)


# Slack for writers that round each boundary independently.
_OVERLAP_SLACK = 1e-9


def _interval_intervals_checked(
    name: str, entries: list[Sequence[object]], path: str | None
) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for i, entry in enumerate(entries, 1):
        what = f"interval {i} of tier {name!r}"
        b, e, label = _entry_fields(entry, 3, what, path)
        start = checked_time(b, f"xmin of {what}", path)
        end = checked_time(e, f"xmax of {what}", path)
        if end < start:
            raise InputError(f"{what} ends ({end}) before it starts ({start})", path)
        out.append(Interval(start, end, _label(label, what, path)))
    out.sort(key=lambda iv: (iv.start, iv.end))
    for a, b in zip(out, out[1:]):
        if a.end > b.start + _OVERLAP_SLACK:
            raise InputError(
                f"intervals of tier {name!r} overlap: {a.label!r} {a.start}-{a.end} and "
                f"{b.label!r} {b.start}-{b.end}",
                path,
            )
    return tuple(out)


def _point_intervals(name: str, entries: Iterable[Sequence[object]], path: str | None) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for i, entry in enumerate(entries, 1):
        what = f"point {i} of tier {name!r}"
        t, label = _entry_fields(entry, 2, what, path)
        time = checked_time(t, f"time of {what}", path)
        out.append(Interval(time, time, _label(label, what, path)))
    out.sort(key=lambda iv: iv.start)
    return tuple(out)
