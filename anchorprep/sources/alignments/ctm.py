"""Kaldi / NIST CTM word and phone alignments, and cutting recording-keyed CTMs into utterances.

A CTM line is ``<file> <channel> <start> <duration> <token> [<confidence>] [extra columns...]``
(Kaldi ``steps/get_ctm.sh``, ``lattice-to-ctm-conf``, ``ali-to-phones --ctm-output``, NIST SCTK,
lhotse). How `read_ctm` reads it:

* **Keys.** The result maps each file id (field 1, kept verbatim: a path or an extension in it is
  part of the id) to one `Alignment`, in order of first appearance. Without a ``segments`` file the
  ids are utterance ids and times are utterance-relative (``get_ctm.sh`` without segments); with
  one, pass the result to `ctm_to_utterances`.
* **Channels and tier names.** One tier per channel. A file id with a single channel gets one tier
  named after the level (``words`` or ``phones``); a file id with several channels gets
  ``"<channel> - words"`` tiers (``A - words``, ``B - words``), the FAVE-style speaker-tier naming,
  ordered by channel (numeric channels by value). ``meta["channels"]`` (and ``meta["speakers"]``,
  which `select_word_tier` reads, so ``speaker="A"`` picks channel A) lists the channel of each
  tier in tier order. ``channel="A"`` keeps one channel only: the tier is then named ``words`` and
  file ids without that channel are left out (a channel absent from the whole file is an error).
* **Times.** ``end = start + duration``, rounded to 1 ns so that 1.31 + 0.12 is 1.43, not
  1.4300000000000002. Start and duration must be finite and non-negative; a zero duration is
  allowed. Lines out of time order are sorted by start (stably, so equal starts keep file order).
  Overlapping tokens are kept; gaps are not filled with silence intervals. ``xmin`` is 0 and
  ``xmax`` is the latest end in that file id, because a CTM does not record the audio's length.
* **Confidence.** Field 6, when present, must be a finite number (negative values, e.g. ROVER's
  -1.0, are allowed). ``meta["confidence"]`` maps each tier name to a tuple aligned with its
  intervals (None where a line had no confidence); it is empty when no line has a sixth field.
  Fields after the sixth (NIST's type and speaker columns) are ignored.
* **Comments, blanks, whitespace.** Lines whose first field starts with ``;;`` and blank lines are
  skipped. Fields are separated by runs of ASCII whitespace (space, tab, CR, VT, FF); leading
  whitespace is tolerated. Other Unicode spaces (U+3000, U+00A0, ...) stay inside tokens. A UTF-8
  byte-order mark is ignored.
* **Alternations.** ``<ALT_BEGIN>`` / ``<ALT>`` / ``<ALT_END>`` lines (times usually ``*``) are
  dropped, and so is every alternative except the first, whose tokens are kept: the reading of a
  reference CTM with one path through each alternation. An empty first alternative contributes
  nothing. Blocks must be contiguous, not nested, and closed.
* **SCTK tags.** A token ``THEY;tag1`` or ``PRIDE;tag1;tag2`` becomes ``THEY`` / ``PRIDE``: the
  token ends at the first ``;`` not escaped by a backslash, and ``\\;`` becomes ``;``
  (``A\\;S;tag1`` is ``A;S``). A token that is empty after this is an error.
* **Phones.** ``level="phones"`` names tiers ``phones`` and, with ``strip_position_suffixes``,
  turns Kaldi's word-position-dependent phones ``AH1_B``, ``T_E``, ``N_I``, ``SIL_S`` into
  ``AH1``, ``T``, ``N``, ``SIL``. ``level="auto"`` (default) picks phones when most tokens carry
  one of those suffixes and words otherwise; a phone CTM without position suffixes needs
  ``level="phones"``. Words are never suffix-stripped.
* **Encodings.** ``encoding=`` decodes the bytes (e.g. ``"gb18030"`` for SCTK's Mandarin CTMs);
  bytes that do not decode raise `InputError` naming the line and suggesting `encoding`.
* **Errors.** A malformed line (fewer than 5 fields, a non-numeric / NaN / infinite / negative
  time or duration, a non-numeric confidence, ``*`` times outside an alternation, a broken
  alternation, an empty token) is an `InputError` whose reason starts with ``line N:``. By default
  the first one (lowest line number) is raised. Pass a dict as ``errors=`` to recover per file id
  instead: each file id with a bad line is left out of the result and its first problem is
  stored in ``errors[file_id]``; every other file id is returned as usual. Problems with the
  whole file (unreadable, undecodable, unknown channel) always raise.

Parsing is one ``str.split`` per line, then column-wise numpy/pyarrow checks; building the
`Interval` objects of the data model costs about as much as the parsing. A generated 1M-line,
6-column CTM (44k utterances) reads in about 3 s (300-350k lines/s) on a shared 2-core VM.
`anchorprep.sources.alignments.formats.read_alignment` returns one file id's `Alignment`.

`ctm_to_utterances` converts a recording-keyed CTM (``get_ctm.sh`` with segments,
``utils/convert_ctm.pl``) to utterance-relative alignments; see it for the boundary rule.
"""

from __future__ import annotations

import gc
import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Literal, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.model import Alignment, Interval, Tier
from anchorprep.sources.kaldi import Segment
from anchorprep.sources.text import LineProblems, read_text, safe_float, split_fields

PathLike = Union[str, "os.PathLike[str]"]
Level = Literal["words", "phones", "auto"]
KeyedBy = Literal["recording", "utterance"]

_LEVELS = ("words", "phones", "auto")
_ALT_BEGIN, _ALT, _ALT_END = "<ALT_BEGIN>", "<ALT>", "<ALT_END>"
_ALT_MARKERS = frozenset({_ALT_BEGIN, _ALT, _ALT_END})
_POSITION_SUFFIXES = frozenset({"_B", "_E", "_I", "_S"})
#: Times are rounded to this many decimals (1 ns) to remove float addition/subtraction noise.
_TIME_DECIMALS = 9


# --------------------------------------------------------------------------------------------
# Shared helpers


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic objects.

    Every few hundred allocations of container objects trigger a collection that rescans all
    young objects; for a million-line CTM that makes parsing 4-8x slower, and the objects made
    here cannot form cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_floats(texts: list[str]) -> np.ndarray:
    """Parse decimal strings to float64; unparseable entries become NaN.

    Arrow's parser is the fast path; when it rejects anything, Python's `float` decides.
    """
    try:
        return pc.cast(pa.array(texts, type=pa.string()), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeEncodeError):
        return np.fromiter(map(safe_float, texts), dtype=np.float64, count=len(texts))


def _round_times(values: np.ndarray) -> np.ndarray:
    return np.round(values, _TIME_DECIMALS)


# --------------------------------------------------------------------------------------------
# CTM


@dataclass
class _Rows:
    """Parsed CTM lines with at least 5 fields (comments and blanks removed), column-wise."""

    line: np.ndarray  # 1-based line numbers, int64
    file: list[str]
    channel: list[str]
    start_text: list[str]
    dur_text: list[str]
    token: list[str]
    conf_text: list[str | None] | None  # None when no line has a sixth field


def _data_lines(fields: list[list[str]], text: str) -> tuple[list[int] | None, list[list[str]]]:
    """Drop blank and ``;;`` comment lines; returns their 1-based line numbers (None: all lines)."""
    if ";;" not in text and all(fields):
        return None, fields
    numbers = [i for i, f in enumerate(fields, 1) if f and not f[0].startswith(";;")]
    return numbers, [fields[i - 1] for i in numbers]


def _collect_rows(text: str, problems: LineProblems) -> _Rows:
    """Split CTM text into rows of at least 5 fields; shorter lines are recorded as problems."""
    numbers, fields = _data_lines(split_fields(text), text)
    lengths = list(map(len, fields))
    shortest = min(lengths, default=5)
    if shortest < 5:
        numbers = numbers or list(range(1, len(fields) + 1))
        for number, f, n in zip(numbers, fields, lengths):
            if n < 5:
                problems.add(
                    f[0],
                    number,
                    f"line {number}: expected at least 5 fields "
                    f"(<file> <channel> <start> <duration> <token>), got {n}",
                )
        keep = [i for i, n in enumerate(lengths) if n >= 5]
        numbers = [numbers[i] for i in keep]
        fields = [fields[i] for i in keep]
        lengths = [lengths[i] for i in keep]
        shortest = min(lengths, default=5)
    line = np.arange(1, len(fields) + 1) if numbers is None else np.array(numbers, dtype=np.int64)
    if shortest >= 6:
        conf_text: list[str | None] | None = list(map(itemgetter(5), fields))
    elif max(lengths, default=5) >= 6:
        conf_text = [f[5] if n > 5 else None for f, n in zip(fields, lengths)]
    else:
        conf_text = None
    return _Rows(
        line=line.astype(np.int64),
        file=list(map(itemgetter(0), fields)),
        channel=list(map(itemgetter(1), fields)),
        start_text=list(map(itemgetter(2), fields)),
        dur_text=list(map(itemgetter(3), fields)),
        token=list(map(itemgetter(4), fields)),
        conf_text=conf_text,
    )


def _alternation_drops(rows: _Rows, is_marker: np.ndarray, problems: LineProblems) -> np.ndarray:
    """Mark the rows to drop for ALT blocks: the markers and every alternative but the first."""
    drop = is_marker.copy()
    state, opened, later_from = "outside", -1, 0
    for i in np.flatnonzero(is_marker).tolist():
        token, line, item = rows.token[i], int(rows.line[i]), rows.file[i]
        if token == _ALT_BEGIN:
            if state != "outside":
                where = int(rows.line[opened])
                problems.add(item, line, f"line {line}: <ALT_BEGIN> inside the alternation opened at line {where}")
            state, opened = "first", i
        elif token == _ALT:
            if state == "outside":
                problems.add(item, line, f"line {line}: <ALT> outside an <ALT_BEGIN> ... <ALT_END> block")
            elif state == "first":
                state, later_from = "later", i
        else:
            if state == "outside":
                problems.add(item, line, f"line {line}: <ALT_END> without a matching <ALT_BEGIN>")
            elif state == "later":
                drop[later_from:i] = True
            state = "outside"
    if state != "outside":
        line = int(rows.line[opened])
        problems.add(rows.file[opened], line, f"line {line}: <ALT_BEGIN> is never closed by <ALT_END>")
    return drop


def _report_bad_times(
    rows: _Rows, values: np.ndarray, texts: list[str], what: str, checked: np.ndarray, problems: LineProblems
) -> None:
    """Record every checked row whose time field is not a finite number >= 0."""
    bad = checked & ~(np.isfinite(values) & (values >= 0))
    for i in np.flatnonzero(bad).tolist():
        line, text = int(rows.line[i]), texts[i]
        if text == "*":
            reason = f"line {line}: {what} '*' is only allowed on <ALT_BEGIN>/<ALT>/<ALT_END> lines"
        elif math.isnan(safe_float(text)) and text.lower().lstrip("+-") != "nan":
            reason = f"line {line}: {what} {text!r} is not a number"
        else:
            reason = f"line {line}: {what} {text!r} must be a finite number >= 0"
        problems.add(rows.file[i], line, reason)


def _report_overflow(rows: _Rows, ends: np.ndarray, checked: np.ndarray, problems: LineProblems) -> None:
    """Record rows whose start and duration are finite but whose sum is not (e.g. 1e308 + 1e308)."""
    for i in np.flatnonzero(checked & np.isinf(ends)).tolist():
        line = int(rows.line[i])
        problems.add(rows.file[i], line, f"line {line}: start + duration is too large to be a time")


def _parse_confidence(rows: _Rows, problems: LineProblems) -> np.ndarray | None:
    """Field 6 as float64 (NaN where absent, None if no line has one); bad values are problems."""
    if rows.conf_text is None:
        return None
    texts = rows.conf_text
    if None in texts:
        idx = np.flatnonzero(np.fromiter((c is not None for c in texts), dtype=bool, count=len(texts)))
        conf = np.full(len(texts), np.nan)
        conf[idx] = _parse_floats([texts[i] for i in idx.tolist()])  # type: ignore[misc]
    else:
        idx = np.arange(len(texts))
        conf = _parse_floats(texts)  # type: ignore[arg-type]
    for i in idx[~np.isfinite(conf[idx])].tolist():
        line = int(rows.line[i])
        problems.add(rows.file[i], line, f"line {line}: confidence {texts[i]!r} is not a finite number")
    return conf


def _strip_tags(token: str) -> str:
    """SCTK tag syntax: keep the text before the first unescaped ';' and unescape '\\;'."""
    out: list[str] = []
    i = 0
    while i < len(token):
        ch = token[i]
        if ch == "\\" and token.startswith(";", i + 1):
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out)


def _clean_tokens(rows: _Rows, checked: np.ndarray, problems: LineProblems) -> list[str]:
    """Tokens without their SCTK ``;`` tags; a token left empty is a problem."""
    if not any(";" in t for t in rows.token):
        return rows.token
    tokens = [_strip_tags(t) if ";" in t else t for t in rows.token]
    for i, t in enumerate(tokens):
        if not t and checked[i]:
            line = int(rows.line[i])
            problems.add(rows.file[i], line, f"line {line}: token {rows.token[i]!r} is empty before its ';' tags")
    return tokens


def _has_position_suffix(token: str) -> bool:
    return len(token) > 2 and token[-2:] in _POSITION_SUFFIXES


def _resolve_level(level: str, tokens: list[str]) -> str:
    """``auto``: phones when most tokens end in a Kaldi word-position suffix, else words."""
    if level != "auto":
        return level
    suffixed = sum(n for t, n in Counter(tokens).items() if _has_position_suffix(t))
    return "phones" if 2 * suffixed > len(tokens) > 0 else "words"


def _strip_suffixes(tokens: list[str]) -> list[str]:
    stripped = {t: t[:-2] for t in set(tokens) if _has_position_suffix(t)}
    return [stripped.get(t, t) for t in tokens] if stripped else tokens


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes in order of first appearance, and the distinct values.

    Works on runs of equal values (a CTM lists an utterance's lines together), so the Python
    loop is over runs, not lines.
    """
    if not values:
        return np.zeros(0, dtype=np.int64), []
    array = np.array(values, dtype=object)
    run_starts = np.concatenate(([0], np.flatnonzero(array[1:] != array[:-1]) + 1))
    index: dict[str, int] = {}
    run_codes = [index.setdefault(v, len(index)) for v in array[run_starts].tolist()]
    lengths = np.diff(np.concatenate((run_starts, [len(values)])))
    return np.repeat(np.array(run_codes, dtype=np.int64), lengths), list(index)


def _channel_order(channel: str) -> tuple[int, int, str]:
    numeric = channel.isascii() and channel.isdigit()
    return (0, int(channel), channel) if numeric else (1, 0, channel)


@dataclass
class _Columns:
    """The rows that end up in the result, ready to be grouped."""

    file: list[str]
    channel: list[str]
    start: np.ndarray
    end: np.ndarray
    label: list[str]
    conf: np.ndarray | None


def _group_bounds(cols: _Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Sort rows by (file id, channel, start) and cut them into (file id, channel) runs.

    Returns the row order, the run starts (plus the end), each run's file code and channel, and
    the distinct file ids in order of first appearance.
    """
    file_codes, file_ids = _codes(cols.file)
    channel_codes, channel_names = _codes(cols.channel)
    by_name = sorted(range(len(channel_names)), key=lambda c: _channel_order(channel_names[c]))
    rank_of_code = np.empty(len(channel_names), dtype=np.int64)
    rank_of_code[by_name] = np.arange(len(by_name))
    ranks = rank_of_code[channel_codes]
    if _already_sorted(file_codes, ranks, cols.start):
        order = np.arange(len(file_codes))
    else:
        order = np.lexsort((cols.start, ranks, file_codes))  # stable: equal starts keep file order
    file_sorted, rank_sorted = file_codes[order], ranks[order]
    cuts = np.flatnonzero((np.diff(file_sorted) != 0) | (np.diff(rank_sorted) != 0)) + 1
    bounds = np.concatenate(([0], cuts, [len(order)]))
    run_channels = [channel_names[by_name[r]] for r in rank_sorted[bounds[:-1]].tolist()]
    return order, bounds, file_sorted[bounds[:-1]], run_channels, file_ids


def _already_sorted(file_codes: np.ndarray, ranks: np.ndarray, starts: np.ndarray) -> bool:
    """True when rows are already grouped by file id and channel and sorted by start (the usual
    Kaldi output), so the sort can be skipped."""
    same_file = file_codes[1:] == file_codes[:-1]
    return bool(
        np.all(file_codes[1:] >= file_codes[:-1])
        and np.all(~same_file | (ranks[1:] >= ranks[:-1]))
        and np.all(~(same_file & (ranks[1:] == ranks[:-1])) | (starts[1:] >= starts[:-1]))
    )


def _build_alignments(path: PathLike, cols: _Columns, level: str, plain_names: bool) -> dict[str, Alignment]:
    """One Alignment per file id, one tier per channel, intervals sorted by start."""
    if not cols.file:
        return {}
    order, bounds, run_files, run_channels, file_ids = _group_bounds(cols)
    is_identity = bool(np.all(order[1:] > order[:-1]))  # no copies needed when nothing moved
    starts = (cols.start if is_identity else cols.start[order]).tolist()
    ends = (cols.end if is_identity else cols.end[order]).tolist()
    labels = cols.label if is_identity else [cols.label[i] for i in order.tolist()]
    confs = None
    if cols.conf is not None:
        ordered_conf = cols.conf if is_identity else cols.conf[order]
        confs = [None if c != c else c for c in ordered_conf.tolist()]  # NaN (absent) -> None

    runs: list[list[tuple[str, int, int]]] = [[] for _ in file_ids]
    for code, channel, a, b in zip(run_files.tolist(), run_channels, bounds[:-1].tolist(), bounds[1:].tolist()):
        runs[code].append((channel, a, b))
    result: dict[str, Alignment] = {}
    for file_id, parts in zip(file_ids, runs):
        tiers, confidence = [], {}
        for channel, a, b in parts:
            name = level if plain_names or len(parts) == 1 else f"{channel} - {level}"
            tiers.append(Tier(name, tuple(map(Interval, starts[a:b], ends[a:b], labels[a:b]))))
            if confs is not None:
                confidence[name] = tuple(confs[a:b])
        channels = tuple(channel for channel, _, _ in parts)
        meta = {"format": "ctm", "level": level, "channels": channels, "speakers": channels, "confidence": confidence}
        xmax = max(max(ends[a:b]) for _, a, b in parts)
        result[file_id] = Alignment(tuple(tiers), 0.0, float(xmax), str(path), meta)
    return result


def _select(values: list[str], idx: list[int] | None) -> list[str]:
    return values if idx is None else [values[i] for i in idx]


def read_ctm(
    path: PathLike,
    encoding: str = "utf-8",
    level: Level = "auto",
    strip_position_suffixes: bool = True,
    *,
    channel: str | None = None,
    errors: dict[str, InputError] | None = None,
) -> dict[str, Alignment]:
    """Read a Kaldi/NIST CTM into ``{file id: Alignment}``; see the module docstring for the rules.

    Args:
        path: the CTM file.
        encoding: text encoding of the file (``"gb18030"``, ``"gbk"``, ``"latin-1"``, ...).
        level: ``"words"``, ``"phones"`` or ``"auto"`` (phones when most tokens end in
            ``_B``/``_E``/``_I``/``_S``); names the tiers and enables suffix stripping.
        strip_position_suffixes: for phones, drop Kaldi's word-position suffixes.
        channel: keep only this channel (its tier is then named plain ``words``/``phones``).
        errors: None to raise on the first malformed line; a dict to collect one `InputError` per
            file id that has a malformed line, leaving that id out of the result.

    Raises:
        InputError: unreadable or undecodable file, unknown channel, or (strict mode) a
            malformed line, with ``line N:`` in the reason.
        UsageError: an unknown ``level`` or ``encoding``.
    """
    if level not in _LEVELS:
        raise UsageError(f"level must be one of {', '.join(_LEVELS)}, not {level!r}")
    text = read_text(path, encoding)
    with _gc_paused():
        # A separate call, so its large temporaries are freed before the collector runs again.
        return _parse_ctm(text, path, level, strip_position_suffixes, channel, errors)


def _parse_ctm(
    text: str,
    path: PathLike,
    level: str,
    strip_position_suffixes: bool,
    channel: str | None,
    errors: dict[str, InputError] | None,
) -> dict[str, Alignment]:
    """`read_ctm` on decoded text."""
    problems = LineProblems(path)
    rows = _collect_rows(text, problems)
    is_marker = _marker_mask(rows.token)
    keep = ~_alternation_drops(rows, is_marker, problems) if is_marker.any() else ~is_marker
    checked = ~is_marker  # marker lines carry no times
    starts = _parse_floats(rows.start_text)
    durations = _parse_floats(rows.dur_text)
    _report_bad_times(rows, starts, rows.start_text, "start time", checked, problems)
    _report_bad_times(rows, durations, rows.dur_text, "duration", checked, problems)
    with np.errstate(over="ignore", invalid="ignore"):
        ends = _round_times(starts + durations)
    _report_overflow(rows, ends, checked, problems)
    conf = _parse_confidence(rows, problems)
    tokens = _clean_tokens(rows, checked, problems)
    problems.resolve(errors)
    if problems.first:
        bad = set(problems.first)
        keep &= np.fromiter((f not in bad for f in rows.file), dtype=bool, count=len(rows.file))
    if channel is not None:
        keep &= _channel_mask(rows.channel, channel, path)
    idx = None if keep.all() else np.flatnonzero(keep)
    idx_list = None if idx is None else idx.tolist()
    labels = _select(tokens, idx_list)
    resolved = _resolve_level(level, labels)
    if resolved == "phones" and strip_position_suffixes:
        labels = _strip_suffixes(labels)
    if idx is not None:
        starts, ends = starts[idx], ends[idx]
        conf = None if conf is None else conf[idx]
    cols = _Columns(
        file=_select(rows.file, idx_list),
        channel=_select(rows.channel, idx_list),
        start=starts + 0.0,  # -0.0 -> 0.0
        end=ends + 0.0,
        label=labels,
        conf=conf,
    )
    return _build_alignments(path, cols, resolved, plain_names=channel is not None)


def _marker_mask(tokens: list[str]) -> np.ndarray:
    if _ALT_MARKERS.isdisjoint(tokens):
        return np.zeros(len(tokens), dtype=bool)
    return np.fromiter((t in _ALT_MARKERS for t in tokens), dtype=bool, count=len(tokens))


def _channel_mask(channels: list[str], wanted: str, path: PathLike) -> np.ndarray:
    mask = np.fromiter((c == wanted for c in channels), dtype=bool, count=len(channels))
    if not mask.any():
        present = sorted(set(channels), key=_channel_order)
        raise InputError(f"channel {wanted!r} does not occur; channels present: {present}", str(path))
    return mask


# --------------------------------------------------------------------------------------------
# Recording-relative CTM -> utterance-relative alignments


@dataclass
class _TierArrays:
    """A tier as arrays, with its intervals ordered by midpoint for range queries."""

    name: str
    starts: np.ndarray
    ends: np.ndarray
    labels: list[str]
    confidence: tuple[float | None, ...] | None
    by_mid: np.ndarray
    sorted_mids: np.ndarray

    @classmethod
    def of(cls, tier: Tier, confidence: tuple[float | None, ...] | None) -> _TierArrays:
        starts = np.array([iv.start for iv in tier.intervals], dtype=np.float64)
        ends = np.array([iv.end for iv in tier.intervals], dtype=np.float64)
        mids = (starts + ends) / 2
        by_mid = np.argsort(mids, kind="stable")
        return cls(tier.name, starts, ends, [iv.label for iv in tier.intervals], confidence, by_mid, mids[by_mid])

    def inside(self, segment: Segment) -> np.ndarray:
        """Indices (in tier order) of the intervals whose midpoint lies in [start, end)."""
        lo, hi = np.searchsorted(self.sorted_mids, [segment.start, segment.end], side="left")
        return np.sort(self.by_mid[lo:hi])


def _tier_arrays(alignment: Alignment) -> list[_TierArrays]:
    confidence = alignment.meta.get("confidence") or {}
    return [_TierArrays.of(tier, confidence.get(tier.name)) for tier in alignment.tiers]


def _cut(tiers: list[_TierArrays], segment: Segment, source: Alignment, utt: str) -> tuple[Alignment, int]:
    """The part of `tiers` inside `segment`, shifted to start at 0; also the number of words kept."""
    new_tiers, confidence, kept, last_end = [], {}, 0, 0.0
    for t in tiers:
        idx = t.inside(segment)
        starts = _round_times(np.maximum(t.starts[idx], segment.start) - segment.start)
        ends = _round_times(np.minimum(t.ends[idx], segment.end) - segment.start)
        labels = [t.labels[i] for i in idx.tolist()]
        new_tiers.append(Tier(t.name, tuple(map(Interval, starts.tolist(), ends.tolist(), labels))))
        if t.confidence is not None:
            confidence[t.name] = tuple(t.confidence[i] for i in idx.tolist())
        kept += len(idx)
        last_end = max(last_end, float(ends.max()) if len(ends) else 0.0)
    duration = segment.end - segment.start
    xmax = float(_round_times(np.float64(duration))) if math.isfinite(duration) else last_end
    meta = {
        **source.meta,
        "confidence": confidence,
        "utterance": utt,
        "recording": segment.recording,
        "segment_start": segment.start,
        "segment_end": segment.end,
    }
    return Alignment(tuple(new_tiers), 0.0, xmax, source.path, meta), kept


def ctm_to_utterances(
    ctm: Mapping[str, Alignment],
    segments: Mapping[str, Segment],
    *,
    keyed_by: KeyedBy = "recording",
    errors: dict[str, InputError] | None = None,
) -> dict[str, Alignment]:
    """Turn recording-relative CTM alignments into utterance-relative ones, one per segment.

    ``keyed_by="recording"`` (Kaldi ``get_ctm.sh`` with a segments file): `ctm` is keyed by
    recording id; every segment takes the words of its recording. ``keyed_by="utterance"``: `ctm`
    is keyed by utterance id but its times are still recording-relative (e.g. Eesen's
    ``align.sh``); each utterance takes only its own words.

    Boundary rule: a word belongs to a segment when its midpoint lies in ``[start, end)`` (so a
    word on the boundary of two adjacent segments goes to exactly one of them); it is then clipped
    to the segment and shifted so the segment starts at 0. Words of a recording outside every
    segment are dropped. The result follows the order of `segments`; ``xmax`` is the segment's
    duration, and ``meta`` gains ``utterance``, ``recording``, ``segment_start``, ``segment_end``.
    A segment with no words (recording mode) gets empty tiers: a CTM cannot tell silence from a
    failed alignment.

    Per-utterance problems (strict: raised; with ``errors=`` a dict: stored and the utterance left
    out): a segment whose recording (or, keyed by utterance, whose utterance) has no CTM lines; a
    CTM utterance id missing from `segments`; keyed by utterance, an utterance none of whose words
    lies inside its segment, which usually means the times were already utterance-relative and
    this conversion is not needed.
    """
    if keyed_by not in ("recording", "utterance"):
        raise UsageError(f"keyed_by must be 'recording' or 'utterance', not {keyed_by!r}")
    problems = LineProblems(next((a.path for a in ctm.values() if a.path), None))
    result: dict[str, Alignment] = {}
    cache: dict[str, list[_TierArrays]] = {}
    with _gc_paused():
        for utt, segment in segments.items():
            key = segment.recording if keyed_by == "recording" else utt
            source = ctm.get(key)
            if source is None:
                problems.add(utt, 0, f"utterance {utt!r}: no CTM lines for {keyed_by} {key!r}")
                continue
            if key not in cache:
                cache[key] = _tier_arrays(source)
            alignment, kept = _cut(cache[key], segment, source, utt)
            total = sum(len(t.intervals) for t in source.tiers)
            if keyed_by == "utterance" and total and not kept:
                problems.add(
                    utt,
                    0,
                    f"utterance {utt!r}: none of its {total} CTM words has its midpoint inside its "
                    f"segment [{segment.start}, {segment.end}) of {segment.recording!r}; are the CTM "
                    "times already utterance-relative? Then read_ctm alone is enough",
                )
                continue
            result[utt] = alignment
        if keyed_by == "utterance":
            for utt in ctm:
                if utt not in segments:
                    problems.add(utt, 0, f"CTM utterance {utt!r} is not in the segments file")
    problems.resolve(errors)
    return {utt: a for utt, a in result.items() if utt not in problems.first}
