"""The time-aligned transcript model every alignment reader returns, and keyword matching on it.

Readers (`read_textgrid`, `read_mfa_csv`, `read_mfa_json`, `read_ctm`, or `read_alignment`,
which picks one from the file extension) return an `Alignment`: named tiers of `Interval`s in
seconds from the start of the file. On top of that model this module provides

* `select_word_tier` — find the word (or phone) tier the way MFA, FAVE and MAUS name it,
  per speaker on multi-speaker files;
* `find_phrase` — every occurrence of a keyword or phrase (SPEC §3: case-insensitive,
  consecutive words, silences skipped), anchored at its end, start or centre;
* `speech_onset` — the start of the first non-silence interval.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import add, attrgetter, le, sub
from typing import Iterable, Literal, Sequence

from anchorprep.errors import InputError, UsageError

#: Labels that mean "no speech" on MFA, Kaldi, Gentle, MAUS and praat word/phone tiers.
#: Compared after stripping whitespace and case-folding, so "<SIL>" and " sp " are silence too.
SILENCE_LABELS = frozenset(
    {"", "sil", "sp", "spn_sil", "<eps>", "<sil>", "silence", "<silence>", "sil_s", "<p:>", "<p>"}
)

#: Out-of-vocabulary markers (MFA writes `<unk>` on the word tier and `spn` on the phone tier).
#: They are speech, not silence, but never match a keyword unless asked (see `find_phrase`).
UNKNOWN_LABELS = frozenset({"<unk>", "spn", "<spn>", "[unk]", "<oov>"})

#: Auto-selected tier names per level, in order of preference (compared case-insensitively).
#: `ORT`/`MAU` are BAS WebMAUS's orthography and phone-segment tiers.
LEVEL_TIER_NAMES = {
    "words": ("words", "word", "ort"),
    "phones": ("phones", "phone", "mau"),
}

#: The level suffixes of per-speaker tiers: MFA writes "{speaker} - words", FAVE "{speaker} - word".
LEVEL_SPEAKER_SUFFIXES = {"words": ("words", "word"), "phones": ("phones", "phone")}

_SPEAKER_SEPARATOR = " - "

Edge = Literal["end", "start", "centre", "center"]
Level = Literal["words", "phones"]


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


@dataclass(frozen=True)
class Match:
    """One occurrence of a keyword: its span, the anchor `time` at the chosen edge, the tier text."""

    start: float
    end: float
    time: float
    text: str


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

    The fast rules (the common case of every reader): every start is >= 0, every interval
    ends at or after its start and before infinity (so no NaN), each interval starts no earlier
    than the previous one ends (minus a 1e-9 slack for independently rounded boundaries), and
    every label is a `str`. Each rule is one C-level pass (`map` with `operator` functions),
    and the intervals are built without calling the dataclass ``__init__`` per object; for
    tiers of 30-100 intervals this measured faster than numpy, whose array set-up costs more
    than the comparisons. On None, callers fall back to their checked path, which sorts,
    validates value by value and explains the problem.
    """
    n = len(starts)
    if n == 0:
        return () if len(ends) == len(labels) == 0 else None
    if len(ends) != n or len(labels) != n:
        return None
    if not all(map(le, starts, ends)):  # False for NaN too
        return None
    if not (min(starts) >= 0.0 and max(ends) < math.inf):
        return None
    if n > 1 and not all(map(le, map(sub, islice(ends, n - 1), repeat(_OVERLAP_SLACK)), islice(starts, 1, None))):
        return None
    if set(map(type, labels)) != {str}:
        return None
    return _build_intervals(starts, ends, labels)


def contiguous_intervals(starts: list[float], last_end: float, labels: Sequence[object]) -> tuple[Interval, ...] | None:
    """``validated_intervals(starts, starts[1:] + [last_end], labels)``, for touching intervals.

    When every interval ends where the next starts (MFA, Praat), the rules reduce to: the
    first start is >= 0, starts never decrease, and the last start <= `last_end` < infinity
    (the overlap rule then always holds); one comparison pass instead of four. Same result.
    """
    n = len(starts)
    if n == 0 or len(labels) != n:
        return validated_intervals(starts, [], labels) if n == 0 else None
    if not (starts[0] >= 0.0 and starts[-1] <= last_end < math.inf and all(map(le, starts, islice(starts, 1, None)))):
        return None
    if set(map(type, labels)) != {str}:
        return None
    ends = starts[1:]
    ends.append(last_end)
    return _build_intervals(starts, ends, labels)


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


# --------------------------------------------------------------------------------------------
# Reading any supported format


_FORMATS = {
    "textgrid": "textgrid",
    "mfa-csv": "mfa-csv",
    "csv": "mfa-csv",
    "mfa-json": "mfa-json",
    "json": "mfa-json",
    "ctm": "ctm",
}
_EXTENSIONS = {".textgrid": "textgrid", ".csv": "mfa-csv", ".json": "mfa-json", ".ctm": "ctm"}


def read_alignment(
    path: str | os.PathLike[str], format: str = "auto", *, utterance: str | None = None
) -> Alignment:
    """Read an alignment file in any supported format.

    ``format="auto"`` picks the reader from the extension (case-insensitive): ``.TextGrid`` →
    `read_textgrid`, ``.csv`` → `read_mfa_csv`, ``.json`` → `read_mfa_json`, ``.ctm`` →
    `anchorprep.sources.ctm.read_ctm`. An unknown extension is an `InputError`; pass
    ``format`` ("textgrid", "mfa-csv"/"csv", "mfa-json"/"json", "ctm") to override.

    A CTM can hold many utterances: `utterance` picks one by its file id; without it the CTM
    must hold exactly one (use `read_ctm` to read them all at once). `utterance` is ignored for
    the other formats, which hold one alignment per file.
    """
    kind = _resolve_format(path, format)
    if kind == "textgrid":
        from anchorprep.sources.textgrid import read_textgrid

        return read_textgrid(path)
    if kind == "mfa-csv":
        from anchorprep.sources.mfa import read_mfa_csv

        return read_mfa_csv(path)
    if kind == "mfa-json":
        from anchorprep.sources.mfa import read_mfa_json

        return read_mfa_json(path)
    from anchorprep.sources.ctm import read_ctm  # written separately; imported only when needed

    return _one_utterance(read_ctm(path), utterance, os.fspath(path))


def _one_utterance(by_id: dict[str, Alignment], utterance: str | None, path: str) -> Alignment:
    if utterance is not None:
        if utterance in by_id:
            return by_id[utterance]
        raise InputError(f"no utterance {utterance!r} in the CTM (it has {len(by_id)} file ids)", path)
    if len(by_id) == 1:
        return next(iter(by_id.values()))
    if not by_id:
        raise InputError("the CTM has no alignment lines", path)
    first = ", ".join(repr(k) for k in list(by_id)[:3])
    raise InputError(
        f"the CTM holds {len(by_id)} utterances ({first}, ...); pass utterance=... or read it "
        "with read_ctm",
        path,
    )


def _resolve_format(path: str | os.PathLike[str], format: str) -> str:
    if format != "auto":
        try:
            return _FORMATS[format.lower()]
        except (KeyError, AttributeError):
            raise UsageError(
                f"unknown alignment format {format!r}; use 'auto' or one of {sorted(_FORMATS)}"
            ) from None
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _EXTENSIONS:
        raise InputError(
            f"unsupported alignment file extension {ext or '(none)'!r}: expected .TextGrid, .csv "
            "(MFA), .json (MFA) or .ctm; pass format= to read it as one of those",
            os.fspath(path),
        )
    return _EXTENSIONS[ext]


# --------------------------------------------------------------------------------------------
# Tier selection


def _check_level(level: str) -> str:
    normalised = {"words": "words", "word": "words", "phones": "phones", "phone": "phones"}.get(level)
    if normalised is None:
        raise UsageError(f"level must be 'words' or 'phones', got {level!r}")
    return normalised


def _speaker_tiers(alignment: Alignment, level: str) -> dict[str, Tier]:
    """Per-speaker interval tiers of `level`, keyed by speaker, preferring the MFA spelling."""
    found: dict[str, tuple[int, Tier]] = {}
    suffixes = LEVEL_SPEAKER_SUFFIXES[level]
    for t in alignment.tiers:
        if t.kind != "interval":
            continue
        speaker, sep, suffix = t.name.rpartition(_SPEAKER_SEPARATOR)
        suffix, speaker = suffix.strip().casefold(), speaker.strip()
        if not sep or not speaker or suffix not in suffixes:
            continue
        rank = suffixes.index(suffix)
        if speaker not in found or rank < found[speaker][0]:
            found[speaker] = (rank, t)
    return {spk: t for spk, (_, t) in found.items()}


def _plain_tier(alignment: Alignment, level: str) -> Tier | None:
    """The speaker-less tier of `level` ("words", "word", "ORT", ...), by name preference."""
    by_name: dict[str, Tier] = {}
    for t in alignment.tiers:
        if t.kind == "interval":
            by_name.setdefault(t.name.strip().casefold(), t)
    for name in LEVEL_TIER_NAMES[level]:
        if name in by_name:
            return by_name[name]
    return None


def speakers(alignment: Alignment, level: Level = "words") -> list[str]:
    """Speakers that have their own `level` tier ("{speaker} - words"), in file order."""
    return list(_speaker_tiers(alignment, _check_level(level)))


def select_word_tier(
    alignment: Alignment,
    tier: str | None = None,
    speaker: str | None = None,
    level: Level = "words",
) -> Tier:
    """Pick the tier keywords are matched on.

    * `tier` given: that tier (exact name, else a unique case-insensitive match); `speaker` and
      `level` are then ignored.
    * Otherwise, per-speaker tiers named ``"{speaker} - words"`` (MFA) or ``"{speaker} - word"``
      (FAVE; ``phones``/``phone`` for ``level="phones"``): with `speaker` given, that speaker's
      tier; without, the only speaker's tier, and an `InputError` listing the speakers when
      there are several.
    * Otherwise a speaker-less tier named ``words``, ``word`` or ``ORT`` (MAUS) — for phones
      ``phones``, ``phone`` or ``MAU`` — compared case-insensitively. MFA writes these names
      when a file has one speaker, so a `speaker` given for such a file is accepted unless the
      reader recorded other speakers in ``alignment.meta["speakers"]``.

    Only interval tiers are chosen automatically. Raises `InputError` listing the tiers present
    when nothing fits.
    """
    if tier is not None:
        return _explicit_tier(alignment, tier)
    level = _check_level(level)
    per_speaker = _speaker_tiers(alignment, level)
    plain = _plain_tier(alignment, level)
    if speaker is not None:
        return _speaker_tier(alignment, per_speaker, plain, speaker, level)
    if plain is not None:
        return plain
    if len(per_speaker) == 1:
        return next(iter(per_speaker.values()))
    if per_speaker:
        raise InputError(
            f"{len(per_speaker)} speakers have {level} tiers ({_quoted(per_speaker)}); "
            "choose one with speaker=...",
            alignment.path,
        )
    raise InputError(
        f"no {level} tier found: looked for {_quoted(LEVEL_TIER_NAMES[level])} or "
        f"'<speaker> - {LEVEL_SPEAKER_SUFFIXES[level][0]}'; tiers present: "
        f"{_quoted(alignment.tier_names)}; pass tier=... to choose one",
        alignment.path,
    )


def _explicit_tier(alignment: Alignment, name: str) -> Tier:
    for t in alignment.tiers:
        if t.name == name:
            return t
    folded = [t for t in alignment.tiers if t.name.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(f"no tier named {name!r}; tiers present: {_quoted(alignment.tier_names)}", alignment.path)


def _speaker_tier(
    alignment: Alignment, per_speaker: dict[str, Tier], plain: Tier | None, speaker: str, level: str
) -> Tier:
    if speaker in per_speaker:
        return per_speaker[speaker]
    folded = [t for spk, t in per_speaker.items() if spk.casefold() == speaker.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    known = alignment.meta.get("speakers")
    if not per_speaker and plain is not None and (not known or speaker in known):
        return plain
    listed = list(per_speaker) or list(known or [])
    raise InputError(
        f"no {level} tier for speaker {speaker!r}; speakers in this file: "
        f"{_quoted(listed) if listed else '(none named)'}; tiers present: {_quoted(alignment.tier_names)}",
        alignment.path,
    )


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


# --------------------------------------------------------------------------------------------
# Keyword matching


def _normalise(text: str) -> str:
    """NFC, case-folded, with leading/trailing punctuation (Unicode category P*) removed."""
    text = unicodedata.normalize("NFC", text).casefold()
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]


def _is_silence(label: str, silence: frozenset[str] | set[str]) -> bool:
    return label.strip().casefold() in silence


def _label_parts(label: str, silence: frozenset[str], unknown: frozenset[str]) -> tuple[str, ...]:
    """The words a label contributes to phrase matching, normalised; () for a silence.

    A label with spaces gives several words; an out-of-vocabulary marker is one word spelled
    as the marker itself ("<unk>", "spn"), which only a phrase word spelling that marker
    equals; a label that is nothing but punctuation gives none.
    """
    folded = label.strip().casefold()
    if folded in silence:
        return ()
    if folded in unknown:
        return (folded,)
    return tuple(p for p in (_normalise(w) for w in label.split()) if p)


class _PartsCache(dict):
    """label -> `_label_parts(label, ...)` for one (silence, unknown) pair, filled on demand.

    Corpora repeat a small vocabulary, so after the first utterances almost every label is a
    dict hit (`_normalise` does Unicode normalisation and a category lookup per character).
    """

    __slots__ = ("silence", "unknown")
    MAX_LABELS = 200_000  # memory bound per worker; cleared (not evicted one by one) when full

    def __init__(self, silence: frozenset[str], unknown: frozenset[str]) -> None:
        super().__init__()
        self.silence, self.unknown = silence, unknown

    def __missing__(self, label: str) -> tuple[str, ...]:
        if len(self) >= self.MAX_LABELS:
            self.clear()
        parts = self[label] = _label_parts(label, self.silence, self.unknown)
        return parts


_PARTS_CACHES: dict[tuple[frozenset[str], frozenset[str]], _PartsCache] = {}


def _parts_cache(silence: frozenset[str], unknown: frozenset[str]) -> _PartsCache:
    key = (silence, unknown)
    cache = _PARTS_CACHES.get(key)
    if cache is None:
        if len(_PARTS_CACHES) >= 16:
            _PARTS_CACHES.clear()
        cache = _PARTS_CACHES[key] = _PartsCache(silence, unknown)
    return cache


def _folded(values: Iterable[str], default: Iterable[str], default_folded: frozenset[str]) -> frozenset[str]:
    if values is default:
        return default_folded
    return frozenset(v.strip().casefold() for v in values)


_SILENCE_FOLDED = frozenset(s.strip().casefold() for s in SILENCE_LABELS)
_UNKNOWN_FOLDED = frozenset(u.strip().casefold() for u in UNKNOWN_LABELS)
_LABEL_OF = attrgetter("label")
_START_OF = attrgetter("start")


def _phrase_words(phrase: str, unknown: frozenset[str]) -> list[str]:
    """The phrase's words, normalised like labels; an unknown marker is kept as spelled."""
    key = (phrase, unknown)
    cached = _PHRASE_WORDS.get(key)
    if cached is None:
        if len(_PHRASE_WORDS) >= 1024:
            _PHRASE_WORDS.clear()
        cached = _PHRASE_WORDS[key] = tuple(_split_phrase(phrase, unknown))
    return list(cached)


_PHRASE_WORDS: dict[tuple[str, frozenset[str]], tuple[str, ...]] = {}


def _split_phrase(phrase: str, unknown: frozenset[str]) -> list[str]:
    words = []
    for p in phrase.split():
        folded = p.casefold()
        word = folded if folded in unknown else _normalise(p)
        if word:
            words.append(word)
    return words


def _edge_time(start: float, end: float, edge: str) -> float:
    if edge == "end":
        return end
    if edge == "start":
        return start
    return (start + end) / 2.0


def _check_edge(edge: str) -> str:
    if edge not in ("end", "start", "centre", "center"):
        raise UsageError(f"edge must be 'end', 'start' or 'centre', got {edge!r}")
    return edge


def find_phrase(
    tier: Tier,
    phrase: str,
    edge: Edge = "end",
    silence: Iterable[str] = SILENCE_LABELS,
    *,
    regex: bool = False,
    match_unknown: bool = False,
    unknown: Iterable[str] = UNKNOWN_LABELS,
) -> list[Match]:
    """Every occurrence of `phrase` on `tier`, in time order, anchored at `edge`.

    Phrase matching (the default): `phrase` is split on whitespace and matched as a
    consecutive sequence of labels, skipping silence intervals (labels in `silence` after
    stripping and case-folding, so ``hey <sil> computer`` matches "hey computer"). Labels and
    phrase words are compared after Unicode NFC normalisation and case-folding, with leading
    and trailing punctuation (Unicode category P: ``, . ! ? " ' « » 。`` ...) stripped from
    each, so ``press,`` and ``"Yes."`` match "press" and "yes", while inner characters such as
    the apostrophe of "i'm" or the hyphen of "chad-like" must match. A label that is nothing
    but punctuation is skipped like a silence. A label containing spaces is several words; a
    match must begin at the first word of a label and end at the last word of a label, so the
    times are always real interval boundaries (an utterance-level label matches only as a
    whole). Words are compared whole: a CJK word "八十年代" is not matched by "八十", and
    words written without spaces between them on the tier must be given the same way.
    Occurrences do not overlap: after a match the search resumes after it.

    Out-of-vocabulary markers (`unknown`, e.g. MFA's ``<unk>`` and ``spn``) occupy a word
    position (``hey <unk> computer`` does not match "hey computer") but never match a phrase
    word — their spelling says nothing about what was said — unless the phrase spells the
    marker itself (``find_phrase(phones, "spn")`` finds the OOV phones).

    With ``regex=True``, `phrase` is a regular expression matched (``re.fullmatch``, case
    insensitive) against each non-silence label on its own (stripped of surrounding whitespace),
    e.g. ``"AH[012]"`` on a phone tier; unknown markers are skipped unless `match_unknown` is
    True (``match_unknown`` only affects regex matching).

    `edge` is "end" (the keyword end, SPEC §3 default), "start" or "centre" ("center" is
    accepted) of the matched span. Matching on a phone tier uses the same function with the
    phone tier. Raises `UsageError` for an empty phrase, an invalid regex or a bad `edge`.
    """
    edge = _check_edge(edge)
    silence_set = _folded(silence, SILENCE_LABELS, _SILENCE_FOLDED)
    unknown_set = _folded(unknown, UNKNOWN_LABELS, _UNKNOWN_FOLDED)
    intervals = _time_ordered(tier.intervals)
    if regex:
        spans = _regex_spans(intervals, phrase, silence_set, unknown_set, match_unknown)
    else:
        spans = _phrase_spans(intervals, phrase, silence_set, unknown_set)
    return [
        Match(
            start=intervals[a].start,
            end=intervals[b].end,
            time=_edge_time(intervals[a].start, intervals[b].end, edge),
            text=" ".join(intervals[k].label for k in ks),
        )
        for a, b, ks in spans
    ]


def _time_ordered(intervals: tuple[Interval, ...]) -> tuple[Interval, ...]:
    starts = list(map(_START_OF, intervals))
    if all(map(le, starts, islice(starts, 1, None))):
        return intervals
    return tuple(sorted(intervals, key=lambda iv: (iv.start, iv.end)))


def _phrase_spans(
    intervals: Sequence[Interval], phrase: str, silence: frozenset[str], unknown: frozenset[str]
) -> list[tuple[int, int, list[int]]]:
    """(first interval, last interval, matched interval indices) of each occurrence.

    The tier's words in time order (silences skipped, a label with spaces giving several) are
    searched for the phrase's words as a consecutive run that starts at the first word of a
    label and ends at the last word of a label; after a match the search resumes after it.
    """
    words = _phrase_words(phrase, unknown)
    if not words:
        raise UsageError(f"keyword phrase {phrase!r} has no words")
    parts = list(map(_parts_cache(silence, unknown).__getitem__, map(_LABEL_OF, intervals)))
    first = words[0]
    if not any(p and p[0] == first for p in parts):
        return []  # no label starts with the phrase's first word (most utterances)
    texts: list[str] = []  # every word of the tier, in order
    owner: list[int] = []  # the interval each word comes from
    for i, p in enumerate(parts):
        if p:
            texts.extend(p)
            owner.extend([i] * len(p))
    n, count = len(words), len(texts)
    spans: list[tuple[int, int, list[int]]] = []
    i = 0
    while True:
        try:
            i = texts.index(first, i)
        except ValueError:
            break
        j = i + n - 1  # the window's last word
        if j >= count:
            break
        if (
            (i == 0 or owner[i - 1] != owner[i])  # starts a label
            and (j == count - 1 or owner[j + 1] != owner[j])  # ends a label
            and texts[i : j + 1] == words
        ):
            spans.append((owner[i], owner[j], sorted(set(owner[i : j + 1]))))
            i = j + 1
        else:
            i += 1
    return spans


def _regex_spans(
    intervals: Sequence[Interval],
    pattern: str,
    silence: frozenset[str],
    unknown: frozenset[str],
    match_unknown: bool,
) -> list[tuple[int, int, list[int]]]:
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(f"invalid label regex {pattern!r}: {exc}") from None
    spans: list[tuple[int, int, list[int]]] = []
    for i, iv in enumerate(intervals):
        folded = iv.label.strip().casefold()
        if folded in silence or (folded in unknown and not match_unknown):
            continue
        if compiled.fullmatch(unicodedata.normalize("NFC", iv.label.strip())):
            spans.append((i, i, [i]))
    return spans


def speech_onset(tier: Tier, silence: Iterable[str] = SILENCE_LABELS) -> float | None:
    """Start of the first non-silence interval of `tier` (None if it is all silence).

    Out-of-vocabulary markers (`<unk>`, `spn`) count as speech. This is the alignment's
    speech onset, e.g. for cross-checking a VAD onset.
    """
    silence_set = frozenset(s.strip().casefold() for s in silence)
    starts = [iv.start for iv in tier.intervals if not _is_silence(iv.label, silence_set)]
    return min(starts) if starts else None
