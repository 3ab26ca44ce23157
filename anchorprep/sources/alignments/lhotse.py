"""lhotse manifests (CutSet / SupervisionSet, JSON or JSONL, gzipped or not) as an alignment source.

lhotse (https://github.com/lhotse-speech/lhotse) stores corpora as manifests: a ``CutSet`` (one
JSON object per cut, each with its ``recording`` and ``supervisions``), a ``SupervisionSet``
(segments of recordings) or a ``RecordingSet`` (audio sources). A ``SupervisionSegment`` may carry
forced alignments, ``"alignment": {"word": [[symbol, start, duration, score?], ...]}`` (lhotse
>= 1.8; the older ``{"symbol": ..., "start": ..., "duration": ...}`` objects are read too).
This module reads those files with `json`/`gzip` only: lhotse itself is not needed.

**Which file.** `.jsonl`, `.jsonl.gz`, `.json` and `.json.gz`: gzip is recognised by its magic
bytes, a file whose first non-blank character is ``[`` is a JSON list (lhotse's ``to_file(
"cuts.json")``), anything else is JSON lines. The first record decides the manifest type: a cut
(``"type"`` ``MonoCut``/``MultiCut``/``MixedCut``/``PaddingCut``, or a ``supervisions``/``tracks``
field) or a supervision (``recording_id``, ``start``, ``duration``). A ``RecordingSet`` is not an
alignment source; pass it to `lhotse_items` as ``recordings=`` next to a ``SupervisionSet``.

**Utterances (``unit``).**

* ``"cut"`` (the default for a CutSet): one utterance per cut, keyed by the cut id, spanning the
  cut: it starts ``cut.start`` seconds into the recording and lasts ``cut.duration``.
* ``"supervision"`` (the default, and the only choice, for a SupervisionSet; optional for a
  CutSet): one utterance per supervision, keyed by the supervision id, spanning the supervision.
  In a CutSet a supervision then starts ``cut.start + supervision.start`` into the recording.

**Times.** Every returned time is seconds from the start of the utterance (docs/FORMAT.md, Anchors), never from
the recording, and ``xmin = 0``, ``xmax`` = the utterance duration. lhotse's own conventions,
which this conversion undoes: a supervision's ``start`` is relative to its cut (in a CutSet) or
to its recording (in a SupervisionSet), while an ``AlignmentItem.start`` is always relative to
the *recording* (lhotse's docstring: "w.r.t. the start of recording"; ``trim_to_alignments`` and
the forced-alignment workflow follow it). So a word at recording time ``r`` is at ``r -
cut.start`` in a cut utterance and at ``r - (cut.start + sup.start)`` in a supervision
utterance (in a ``MixedCut`` the track's ``offset`` is added and its cut's ``start`` removed).
Times are rounded to 1 ns.

A word belongs to the utterance when its midpoint lies in ``[0, duration)``; it is then clipped
to the utterance (the rule of `anchorprep.sources.alignments.ctm.ctm_to_utterances`). Supervision spans are
clipped to the utterance and dropped when nothing of them is left.

**Tiers.**

* ``words``: the ``"word"`` alignment items of the utterance's supervisions. A supervision
  *without* a word alignment (no ``alignment``, no ``"word"`` key, or an empty list)
  contributes one interval spanning the supervision, labelled ``<unk>``: speech whose words are
  not known, so ``--speech-onsets`` still finds its onset while no keyword ever matches it
  (``<unk>`` is an out-of-vocabulary marker, see `find_phrase`). ``meta["unaligned"]`` lists
  those supervision ids.
* ``phones`` from ``"phone"``/``"phones"`` alignments; any other alignment kind (``"char"``,
  ``"subword"``, ...) becomes a tier of that name.
* ``speech``: the union of all supervision spans (overlaps merged), labelled ``speech``: the
  speech of anyone, for ``--tier speech``.
* When the utterance's supervisions have more than one speaker (a supervision without one
  counts as speaker ``unknown``), the word/phone/other tiers are per speaker,
  ``"<speaker> - words"`` etc., in order of first appearance, so ``--speaker`` picks one the way it
  picks an MFA speaker tier; ``speech`` stays a single tier. ``meta["speakers"]`` lists the
  named speakers.

Overlapping words on one tier (e.g. two overlapping supervisions of the same speaker) make the
utterance an `InputError`.

**Errors.** A file that is not JSON, not a lhotse manifest, or whose records lack a string
``id`` (or list supervisions without one) raises `InputError`. A record with a bad value (a
non-numeric time, a negative duration, a malformed alignment item) is a per-utterance problem:
raised by default, or, with ``errors=`` a dict, stored per utterance id and left out (like
`read_ctm`). A repeated utterance id keeps its first record (the runner reports the repeats).

`lhotse_items` lists the utterances of a manifest as ``align`` items (audio from the
recordings' ``type: file`` sources); `is_lhotse_manifest` tells a lhotse manifest from an
anchorprep manifest or an MFA JSON.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.model import Alignment, Interval, Tier, build_tier
from anchorprep.sources.text import LineProblems
from anchorprep.storage import StoragePath, is_url, location, open_input

if TYPE_CHECKING:
    import pyarrow as pa

PathLike = Union[str, "os.PathLike[str]"]
Unit = Literal["auto", "cut", "supervision"]

UNITS = ("auto", "cut", "supervision")
CUT_TYPES = frozenset({"MonoCut", "MultiCut", "MixedCut", "PaddingCut", "Cut", "DataCut"})
#: The label of a supervision that has no word alignment (speech, words unknown).
UNALIGNED_LABEL = "<unk>"
SPEECH_TIER = "speech"
SPEECH_LABEL = "speech"
UNKNOWN_SPEAKER = "unknown"
#: lhotse alignment kinds -> tier names; other kinds keep their own name.
KIND_TIERS = {"word": "words", "words": "words", "phone": "phones", "phones": "phones"}
#: Recording transforms that keep the audio file's timing (anything else makes the file differ
#: from the cut's audio, and the item gets no audio_path).
TIMING_PRESERVING_TRANSFORMS = frozenset({"Resample"})

_TIME_DECIMALS = 9
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------------
# Reading records


class _Bad(Exception):
    """A per-utterance problem found while interpreting one record."""


def _open_text(path: PathLike) -> io.TextIOBase:
    try:
        raw = open_input(path, "rb")
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", os.fspath(path)) from exc
    return io.TextIOWrapper(raw, encoding="utf-8-sig")


def iter_records(path: PathLike) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` for every JSON object of a lhotse manifest, in file order.

    ``where`` is ``"line N"`` (JSON lines) or ``"record N"`` (a JSON list), for messages.
    Raises `InputError` for unreadable, non-UTF-8 or non-JSON content and non-object records.
    """
    name = os.fspath(path)
    try:
        with _open_text(path) as handle:
            first = ""
            while True:
                char = handle.read(1)
                if not char or not char.isspace():
                    first = char
                    break
            if first == "[":
                try:
                    data = json.loads(first + handle.read())
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", name) from None
                for number, record in enumerate(data, 1):
                    yield _object(record, f"record {number}", name)
                return
            lines = handle if not first else _prepend(first, handle)
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})", name) from None
                yield _object(record, f"line {number}", name)
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason}); lhotse manifests are UTF-8 JSON", name) from None
    except (OSError, EOFError) as exc:  # e.g. a truncated gzip stream
        raise InputError(f"cannot read file: {exc}", name) from None


def _prepend(first: str, handle: io.TextIOBase) -> Iterator[str]:
    """Lines of `handle` with `first` (already consumed) glued back onto the first line."""
    yield first + handle.readline()
    yield from handle


def _object(record: object, where: str, path: str) -> tuple[str, dict]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}", path)
    return where, record


def record_kind(record: dict) -> str | None:
    """``"cut"``, ``"supervision"``, ``"recording"`` or None for one manifest record."""
    if record.get("type") in CUT_TYPES or "supervisions" in record or "tracks" in record:
        return "cut"
    if "sources" in record and "sampling_rate" in record:
        return "recording"
    if "recording_id" in record and "start" in record and "duration" in record:
        return "supervision"
    return None


def manifest_kind(path: PathLike) -> str | None:
    """The kind of the first record of a lhotse manifest (None: empty or not lhotse-like)."""
    for _, record in iter_records(path):
        return record_kind(record)
    return None


_LHOTSE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


def is_lhotse_manifest(path: PathLike, fmt: str = "auto") -> bool:
    """Whether ``path`` should be read as a lhotse manifest.

    ``fmt="lhotse"`` says yes; ``"auto"`` looks at the first record of a ``.jsonl``,
    ``.jsonl.gz``, ``.json`` or ``.json.gz`` file: a cut or supervision record is lhotse (an
    anchorprep manifest row has ``utt_id``, an MFA JSON is one object, not a list or lines of
    cuts). Unreadable files are not lhotse manifests here (the reader that is chosen reports
    them). Any other ``fmt`` says no.
    """
    if fmt == "lhotse":
        return True
    if fmt != "auto":
        return False
    name = os.fspath(path).lower()
    if not name.endswith(_LHOTSE_SUFFIXES) or not _is_file(path):
        return False
    try:
        for _, record in iter_records(path):
            return "utt_id" not in record and record_kind(record) in ("cut", "supervision")
    except InputError:
        return False
    return False


def _is_file(path: PathLike) -> bool:
    try:
        return location(path).is_file()
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Values


def _number(record: dict, key: str, what: str, default: float | None = None) -> float:
    value = record.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"{what} {key} is {value!r}, not a finite number")
    return float(value)


def _duration(record: dict, what: str) -> float:
    value = _number(record, "duration", what)
    if value < 0:
        raise _Bad(f"{what} duration is negative ({value})")
    return value


def _round(value: float) -> float:
    return round(value, _TIME_DECIMALS) + 0.0


_NUMBER_TYPES = (int, float)


def _item_fields(raw: object, what: str) -> tuple[object, object, object]:
    """``(symbol, start, duration)`` of one serialised AlignmentItem (list, or pre-1.8 object)."""
    if isinstance(raw, dict):
        return raw.get("symbol"), raw.get("start"), raw.get("duration")
    if isinstance(raw, (list, tuple)) and len(raw) in (3, 4):
        return raw[0], raw[1], raw[2]
    raise _Bad(f"{what} is {raw!r}; expected [symbol, start, duration(, score)]")


def _check_item(symbol: object, start: object, duration: object, what: str) -> None:
    if not isinstance(symbol, str):
        raise _Bad(f"{what}: symbol {symbol!r} is not text")
    for name, value in (("start", start), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES) or not math.isfinite(value):
            raise _Bad(f"{what}: {name} {value!r} is not a finite number")
    if duration < 0:  # type: ignore[operator]
        raise _Bad(f"{what}: duration {duration} is negative")


def _shifted_items(
    items: list, kind: str, sup_id: str, offset: float, duration: float
) -> list[tuple[float, float, str]]:
    """``(start, end, symbol)`` in utterance time of the items whose midpoint lies in
    ``[0, duration)``, clipped to it and rounded to 1 ns (the hot loop of the reader)."""
    out = []
    append = out.append
    isfinite = math.isfinite
    for raw in items:
        if type(raw) is list and 3 <= len(raw) <= 4:
            symbol, start, dur = raw[0], raw[1], raw[2]
        else:
            symbol, start, dur = _item_fields(raw, f"supervision {sup_id!r} alignment {kind!r} item {len(out) + 1}")
        if not (type(symbol) is str and type(start) in _NUMBER_TYPES and type(dur) in _NUMBER_TYPES
                and isfinite(start) and isfinite(dur) and dur >= 0):
            _check_item(symbol, start, dur, f"supervision {sup_id!r} alignment {kind!r} item {items.index(raw) + 1}")
        b = start - offset
        e = b + dur
        if 0.0 <= (b + e) * 0.5 < duration:
            append((round(b, _TIME_DECIMALS) + 0.0 if b > 0.0 else 0.0,
                    round(e, _TIME_DECIMALS) + 0.0 if e < duration else duration, symbol))
    return out


# --------------------------------------------------------------------------------------------
# Utterances


@dataclass
class _Sup:
    """A supervision placed in utterance time: its span, and how to shift its alignment."""

    record: dict
    start: float  # supervision start, utterance seconds
    ali_offset: float  # utterance time = alignment item time - ali_offset


@dataclass
class _Utterance:
    uid: str
    where: str
    duration: float
    start: float | None  # in the recording (or the mix); None when unknown
    sups: list[_Sup] = field(default_factory=list)
    recording: dict | None = None
    channel: object = None
    mixed: bool = False
    problem: str | None = None


def _sup_id(sup: object, where: str, path: str) -> str:
    if not isinstance(sup, dict) or not isinstance(sup.get("id"), str) or not sup["id"]:
        raise InputError(f"{where}: a supervision without a string id: {str(sup)[:80]}", path)
    return sup["id"]


def _cut_supervisions(cut: dict, where: str, path: str) -> list[dict]:
    sups = cut.get("supervisions") or []
    if not isinstance(sups, list):
        raise InputError(f"{where}: supervisions is not a list", path)
    for sup in sups:
        _sup_id(sup, where, path)
    return sups


def _tracks(cut: dict, where: str, path: str) -> list[tuple[dict, object]]:
    tracks = cut.get("tracks")
    if not isinstance(tracks, list) or not all(isinstance(t, dict) and isinstance(t.get("cut"), dict) for t in tracks):
        raise InputError(f"{where}: MixedCut tracks must be a list of objects with a 'cut'", path)
    return [(t["cut"], t.get("offset", 0.0)) for t in tracks]


def _cut_utterances(record: dict, where: str, unit: str, path: str) -> list[_Utterance]:
    """The utterances of one cut record (structural problems raise; value problems are kept)."""
    cut_id = record["id"]
    if record.get("type") == "MixedCut" or "tracks" in record:
        return _mixed_utterances(record, where, unit, path)
    sups = _cut_supervisions(record, where, path)
    ids = [cut_id] if unit == "cut" else [s["id"] for s in sups]
    try:
        cut_start = _number(record, "start", f"cut {cut_id!r}", 0.0)
        cut_duration = _duration(record, f"cut {cut_id!r}")
        placed = []
        for sup in sups:
            s_start = _number(sup, "start", f"supervision {sup['id']!r}")
            _duration(sup, f"supervision {sup['id']!r}")
            placed.append((sup, s_start))
    except _Bad as exc:
        return [_Utterance(uid, where, 0.0, None, problem=str(exc)) for uid in ids]
    common = {"recording": record.get("recording"), "channel": record.get("channel")}
    if unit == "cut":
        utt = _Utterance(cut_id, where, cut_duration, cut_start, **common)
        utt.sups = [_Sup(sup, s_start, cut_start) for sup, s_start in placed]
        return [utt]
    return [
        _Utterance(sup["id"], where, float(sup["duration"]), cut_start + s_start,
                   [_Sup(sup, 0.0, cut_start + s_start)], **common)
        for sup, s_start in placed
    ]


def _mixed_utterances(record: dict, where: str, unit: str, path: str) -> list[_Utterance]:
    cut_id = record["id"]
    tracks = _tracks(record, where, path)
    all_sups = [(track, offset, sup) for track, offset in tracks for sup in _cut_supervisions(track, where, path)]
    ids = [cut_id] if unit == "cut" else [sup["id"] for _, _, sup in all_sups]
    try:
        placed, end = [], 0.0
        for track, offset in tracks:
            off = _number({"offset": offset}, "offset", f"MixedCut {cut_id!r} track")
            t_start = _number(track, "start", f"MixedCut {cut_id!r} track cut", 0.0)
            t_duration = _duration(track, f"MixedCut {cut_id!r} track cut")
            end = max(end, off + t_duration)
            for sup in _cut_supervisions(track, where, path):
                s_start = _number(sup, "start", f"supervision {sup['id']!r}")
                _duration(sup, f"supervision {sup['id']!r}")
                placed.append((sup, off, t_start, s_start))
        duration = _duration(record, f"cut {cut_id!r}") if "duration" in record else end
    except _Bad as exc:
        return [_Utterance(uid, where, 0.0, None, mixed=True, problem=str(exc)) for uid in ids]
    if unit == "cut":
        utt = _Utterance(cut_id, where, _round(duration), 0.0, mixed=True)
        utt.sups = [_Sup(sup, off + s_start, t_start - off) for sup, off, t_start, s_start in placed]
        return [utt]
    return [
        _Utterance(sup["id"], where, float(sup["duration"]), _round(off + s_start),
                   [_Sup(sup, 0.0, t_start + s_start)], mixed=True)
        for sup, off, t_start, s_start in placed
    ]


def _supervision_utterance(record: dict, where: str) -> _Utterance:
    sid = record["id"]
    try:
        start = _number(record, "start", f"supervision {sid!r}")
        duration = _duration(record, f"supervision {sid!r}")
    except _Bad as exc:
        return _Utterance(sid, where, 0.0, None, problem=str(exc))
    return _Utterance(sid, where, duration, start, [_Sup(record, 0.0, start)], channel=record.get("channel"))


def _resolve_unit(kind: str | None, unit: str, path: str) -> str:
    if unit not in UNITS:
        raise UsageError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    if kind == "recording":
        raise InputError(
            "this is a lhotse RecordingSet, which holds no supervisions; read the SupervisionSet or "
            "CutSet (a RecordingSet can give the audio: `recordings`)",
            path,
        )
    if kind not in ("cut", "supervision"):
        raise InputError("not a lhotse CutSet or SupervisionSet manifest (first record is neither a cut nor a supervision)", path)
    if kind == "supervision" and unit == "cut":
        raise UsageError(f"{path}: a SupervisionSet has no cuts; use unit='supervision' (or 'auto')")
    return ("cut" if kind == "cut" else "supervision") if unit == "auto" else unit


def _utterances(path: PathLike, unit: str, repeats: bool = False) -> tuple[str, list[_Utterance]]:
    """All utterances of a manifest, in file order; a repeated id keeps its first record unless
    ``repeats`` (items keep repeats, so the runner reports them)."""
    name = os.fspath(path)
    kind, resolved, out, seen = None, unit, [], set()
    for where, record in iter_records(path):
        this = record_kind(record)
        if kind is None:
            kind = this
            resolved = _resolve_unit(kind, unit, name)
        elif this != kind:
            raise InputError(f"{where}: a {this or 'unknown'} record in a manifest of {kind}s", name)
        if not isinstance(record.get("id"), str) or not record["id"]:
            raise InputError(f"{where}: record without a string id", name)
        utts = _cut_utterances(record, where, resolved, name) if kind == "cut" else [_supervision_utterance(record, where)]
        for utt in utts:
            if repeats or utt.uid not in seen:
                seen.add(utt.uid)
                out.append(utt)
    if kind is None:
        raise InputError("the manifest holds no records", name)
    return resolved, out


# --------------------------------------------------------------------------------------------
# Alignments


def _clip(start: float, end: float, duration: float) -> tuple[float, float] | None:
    """A span clipped to ``[0, duration]``; None when nothing of it is left (a zero-length span
    is kept when it lies inside)."""
    s, e = max(start, 0.0), min(end, duration)
    if e > s or (start == end and 0.0 <= start <= duration):
        return _round(s), _round(e)
    return None


def _speaker(sup: dict) -> str | None:
    speaker = sup.get("speaker")
    return speaker if isinstance(speaker, str) and speaker.strip() else None


def _tier_name(base: str, speaker: str | None, per_speaker: bool) -> str:
    return f"{speaker or UNKNOWN_SPEAKER} - {base}" if per_speaker else base


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _build(utt: _Utterance, unit: str, path: str) -> Alignment:
    """The `Alignment` of one utterance (per-utterance problems raise `_Bad`)."""
    duration = _round(utt.duration)
    speakers: list[str | None] = [] if utt.sups else [None]
    for s in utt.sups:
        if _speaker(s.record) not in speakers:
            speakers.append(_speaker(s.record))
    per_speaker = len(speakers) > 1
    entries: dict[str, list[tuple[float, float, str]]] = {}
    order: list[str] = []
    speech, unaligned = [], []

    def add_tier(name: str) -> None:
        if name not in entries:
            entries[name] = []
            order.append(name)

    def add(name: str, start: float, end: float, label: str) -> None:
        add_tier(name)
        entries[name].append((start, end, label))

    # A words tier always exists (per speaker when several), so a negative has one to search.
    for speaker in speakers:
        add_tier(_tier_name("words", speaker, per_speaker))
    for s in utt.sups:
        sup, sid, speaker = s.record, s.record["id"], _speaker(s.record)
        span = _clip(s.start, s.start + float(sup["duration"]), duration)
        if span is not None:
            speech.append(span)
        alignment = sup.get("alignment") or {}
        if not isinstance(alignment, dict):
            raise _Bad(f"supervision {sid!r}: alignment is {type(alignment).__name__}, not an object")
        for kind, items in alignment.items():
            if not isinstance(items, list):
                raise _Bad(f"supervision {sid!r}: alignment {kind!r} is not a list")
        words_name = _tier_name("words", speaker, per_speaker)
        if not alignment.get("word") and not alignment.get("words"):
            unaligned.append(sid)
            if span is not None:
                add(words_name, span[0], span[1], UNALIGNED_LABEL)
        for kind, items in alignment.items():
            name = _tier_name(KIND_TIERS.get(kind, kind), speaker, per_speaker)
            add_tier(name)
            entries[name].extend(_shifted_items(items, kind, sid, s.ali_offset, duration))
    tiers = []
    try:
        for name in order:
            tiers.append(build_tier(name, sorted(entries[name]), path=path))
    except InputError as exc:
        raise _Bad(exc.reason) from None
    tiers.append(Tier(SPEECH_TIER, tuple(Interval(a, b, SPEECH_LABEL) for a, b in _merge(speech))))
    meta = {
        "format": "lhotse",
        "unit": unit,
        "utterance": utt.uid,
        "speakers": [sp for sp in speakers if sp is not None],
        "supervisions": [s.record["id"] for s in utt.sups],
        "unaligned": unaligned,
        "start": utt.start,
        "mixed": utt.mixed,
    }
    return Alignment(tuple(tiers), 0.0, _round(duration), path, meta)


def read_lhotse(
    path: PathLike, unit: Unit = "auto", *, errors: dict[str, InputError] | None = None
) -> dict[str, Alignment]:
    """Read a lhotse CutSet or SupervisionSet into ``{utterance id: Alignment}``.

    See the module docstring for the units, the time reference (utterance seconds) and the
    tiers. ``unit`` is ``"auto"`` (cuts for a CutSet, supervisions for a SupervisionSet),
    ``"cut"`` or ``"supervision"``. ``errors``: None raises the first per-utterance problem; a
    dict collects them per utterance id (those utterances are left out).

    Raises:
        InputError: unreadable / non-JSON file, not a CutSet or SupervisionSet, a record without
            an id, or (strict mode) a per-utterance problem.
        UsageError: an unknown ``unit``, or ``unit="cut"`` on a SupervisionSet.
    """
    name = os.fspath(path)
    resolved, utts = _utterances(path, unit)
    problems = LineProblems(name)
    result: dict[str, Alignment] = {}
    for number, utt in enumerate(utts, 1):
        if utt.problem is not None:
            problems.add(utt.uid, number, f"{utt.where}: {utt.problem}")
            continue
        try:
            result[utt.uid] = _build(utt, resolved, name)
        except _Bad as exc:
            problems.add(utt.uid, number, f"{utt.where}: {exc}")
    problems.resolve(errors)
    return result


# --------------------------------------------------------------------------------------------
# Items


def _recording_audio(recording: object, channel: object, audio_root: Path) -> str:
    """The audio file holding `channel` of a lhotse recording dict, or "" (see `lhotse_items`)."""
    if not isinstance(recording, dict):
        return ""
    transforms = recording.get("transforms") or []
    if any(not isinstance(t, dict) or t.get("name") not in TIMING_PRESERVING_TRANSFORMS for t in transforms):
        return ""
    sources = recording.get("sources")
    if not isinstance(sources, list) or not sources:
        return ""
    first = channel[0] if isinstance(channel, list) and channel else channel
    chosen = None
    for source in sources:
        if isinstance(source, dict) and (first is None or first in (source.get("channels") or [])):
            chosen = source
            break
    if chosen is None and len(sources) == 1 and isinstance(sources[0], dict):
        chosen = sources[0]
    if chosen is None or chosen.get("type") != "file" or not isinstance(chosen.get("source"), str):
        return ""
    if is_url(chosen["source"]):
        return chosen["source"]
    if isinstance(audio_root, StoragePath):
        return str(audio_root / chosen["source"])
    return os.path.normpath(os.path.join(audio_root, chosen["source"]))


def _read_recordings(path: PathLike) -> dict[str, dict]:
    recordings = {}
    for where, record in iter_records(path):
        if record_kind(record) != "recording":
            raise UsageError(f"{path}: {where} is not a lhotse recording (`recordings` takes a RecordingSet)")
        recordings.setdefault(record.get("id"), record)
    return recordings


def _text(sups: list[_Sup]) -> str:
    ordered = sorted(sups, key=lambda s: s.start)
    return " ".join(s.record["text"] for s in ordered if isinstance(s.record.get("text"), str) and s.record["text"])


def _float_text(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def lhotse_items(
    path: PathLike,
    unit: Unit = "auto",
    *,
    recordings: PathLike | None = None,
    audio_root: PathLike | None = None,
) -> "pa.Table":
    """Items for ``anchorprep align`` from a lhotse CutSet or SupervisionSet, in file order, as an
    item table (`anchorprep.sources.items`: a ``pyarrow.Table`` of string columns).

    One item per utterance (see ``unit`` in the module docstring) with ``utt_id``,
    ``audio_path``, ``start_s`` (where the utterance starts in the audio file), ``duration_s``,
    ``alignment_path`` (the manifest itself), and the pass-through columns ``text`` (the
    supervisions' texts in time order) and ``speaker`` (their speakers, comma-separated).

    Audio: the recording source (``type: file``) that holds the cut's channel (its first channel
    for a MultiCut); a recording with a single source is used whatever its channels say. A
    SupervisionSet takes its recordings from ``recordings=`` (a RecordingSet manifest) by
    ``recording_id``. Relative source paths resolve against ``audio_root`` (default: the current
    directory, as lhotse does) and are stored absolute. ``audio_path`` is left empty, and the
    utterance length then comes from ``duration_s``, when the audio is not one plain file:
    ``url``/``command``/``memory``/``shar`` sources, ``MixedCut``s (no single file holds a mix),
    or recordings with transforms other than ``Resample`` (speed or tempo perturbation change
    the timing).

    Utterances with bad values stay items (their alignment read fails, so they end as
    ``errors.jsonl`` lines). Raises `UsageError` when the file itself is unusable.
    """
    try:
        resolved, utts = _utterances(path, unit, repeats=True)
        recording_table = _read_recordings(recordings) if recordings is not None else {}
    except InputError as exc:
        raise UsageError(str(exc)) from None
    root = location(audio_root).resolve() if audio_root is not None else Path.cwd()
    rows = []
    for utt in utts:
        recording = utt.recording
        if recording is None and utt.sups and not utt.mixed:
            recording = recording_table.get(utt.sups[0].record.get("recording_id"))
        audio = "" if utt.mixed or utt.problem else _recording_audio(recording, utt.channel, root)
        speakers = []
        for s in utt.sups:
            if _speaker(s.record) and _speaker(s.record) not in speakers:
                speakers.append(_speaker(s.record))
        rows.append({
            "utt_id": utt.uid,
            "audio_path": audio,
            "start_s": _float_text(utt.start) if not utt.problem else "",
            "duration_s": _float_text(utt.duration) if not utt.problem else "",
            "alignment_path": os.fspath(path),
            "text": _text(utt.sups),
            "speaker": ",".join(speakers),
        })
    if not rows:
        raise UsageError(f"{path}: no {resolved}s found")
    import pyarrow as pa

    return pa.table({name: pa.array([row[name] for row in rows], pa.string()) for name in rows[0]})
