"""Praat TextGrids (long and short text format) as `Alignment`s, parsed with praatio.

What `read_textgrid` accepts:

* long and short ("ooTextFile short") text formats, as Praat, praatio, MFA, FAVE, MAUS and
  ELAN write them;
* encodings UTF-8 (with or without BOM), UTF-16 LE/BE with a BOM, and BOM-less UTF-16
  recognised from its NUL-byte pattern (Praat writes UTF-16 BE when a file has non-ASCII
  text); CRLF and CR line ends;
* point tiers (TextTier), kept with ``kind="point"`` and intervals with ``start == end``;
* labels with escaped quotes (``""``) and embedded newlines, unescaped and kept; praatio strips
  leading and trailing whitespace from labels;
* ``-0`` timestamps (read as 0.0) and tiers whose xmin/xmax differ from the grid's (kept in
  `Tier.xmin`/`Tier.xmax`);
* duplicate tier names, renamed as praatio's ``duplicateNamesMode="rename"`` does: the second
  tier called "Mary" becomes "Mary_2", the third "Mary_3" (a suffix that would collide takes
  the next number); ``alignment.meta["renamed_tiers"]`` maps each new name to the file's name.

What it rejects with `InputError` (with lazy tiers, a bad value only in the tiers read; see
below): unreadable, empty, binary or non-TextGrid files (including Praat's binary TextGrid
format), text that is not valid UTF-8/UTF-16, truncated files (fewer tiers or entries than the
file declares), NaN/inf/negative times, xmin > xmax for the grid or a tier, intervals ending
before they start, overlapping intervals within a tier, and anything praatio's parser cannot
read (praatio 6 reads long-format times only as plain decimals, so a long-format time written
in exponent notation such as ``1e-05`` is rejected too).

Speed: the file is read (`read_textgrid_bytes`; `formats.utterance_alignment` first tries a
local ``.TextGrid`` path with `storage.read_regular_bytes`: one stat, open and read) and
decoded once. Regular files (interval tiers in the layout MFA, Praat and praatio write, long or
short format) are read by a fast path: one compiled grammar of the whole text, matched in C
(first in the exact indentation Praat and praatio write, then with any blanks), every tier
validated column by column, and tiers kept as columns (`Tier.from_columns`): the `Interval`
objects and stripped labels of a tier are built only when something reads it
(`parse_textgrid_fast`; on 10-second MFA-like grids about 7x faster than the praatio path).
Every tier is validated in full, so a damaged tier nobody reads fails the file. Everything
else, and every file with a problem, goes to praatio's string parser (`parse_textgrid_praatio`, via
`praatio.utilities.textgrid_io.parseTextgridStr`, which skips the temporary text handling and
tier objects of `praatio.textgrid.openTextgrid`; our own validation replaces praatio's).
praatio stays the reference: the fast path returns exactly what the praatio path returns
(tests compare both on every real file and on generated and mutated grids) or declines.
`fast_path_counts()` tells how many files took which path in this process.

Lazy tiers (``read_textgrid(path, lazy=True)``; what `anchorprep align` uses, through
`formats.utterance_alignment`'s `reads`): a job parses and validates in full only the tiers
it reads; every other tier is checked for structure only. For a long-format file in the
canonical layout (MFA, Praat, praatio) the structure check covers the file header, the
declared tier count, every tier header (interval tier, name, xmin <= xmax, declared size)
and that each tier's body has exactly 4 lines and one "[" per declared interval (two
`str.count` scans; no per-interval work). A tier's values are parsed (`Tier.deferred`) the
first time it is read or `Tier.load`-ed, with the fast path's grammar and checks; whenever a
check fails, the whole text goes through the path above, so the error is exactly the one it
gives. So any file the full path accepts gives the same tiers (same floats, labels, names,
renames, meta); a truncated or cut file, a broken header or a damaged tier that is read fails
with the same message as before; the one difference: damage inside the intervals of a tier
that is never read (a garbled or negative time, overlapping phones, a label praatio misreads)
no longer fails the file, so a words job on a grid with a bad phones tier yields its row
(an MFA grid's phones tier holds about 70% of its intervals; on 10-second MFA-like grids a
words job's parse takes about 0.45x the time of the full one). Other layouts are read in
full, as above.
"""

from __future__ import annotations

import os
import re
import sys
from itertools import chain
from operator import itemgetter

import numpy as np

from praatio.utilities import textgrid_io
from praatio.utilities.errors import PraatioException

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.text import sniff_encoding
from anchorprep.storage import read_bytes
from anchorprep.sources.alignments.model import (
    Alignment,
    Tier,
    build_tier,
    checked_time,
    valid_contiguous_columns,
    valid_interval_columns,
)

__all__ = [
    "decode_textgrid_bytes",
    "fast_path_counts",
    "parse_textgrid_fast",
    "parse_textgrid_praatio",
    "parse_textgrid_text",
    "read_textgrid",
    "read_textgrid_bytes",
    "sniff_encoding",
]

# Exceptions praatio's parser raises on malformed text (it indexes and converts without checks).
_PARSER_ERRORS = (PraatioException, ValueError, IndexError, KeyError, TypeError, AttributeError, re.error)

# Long-format time fields with a minus sign: praatio drops the sign of xmin/number values, so
# negative times are caught here, before parsing.
_NEGATIVE_FIELD = re.compile(r"^[ \t]*(?:xmin|xmax|number)[ \t]*=[ \t]*(-[^\s]*)", re.MULTILINE)
_TIME_FIELD = re.compile(r"^[ \t]*(xmin|xmax|number)[ \t]*=[ \t]*(\S*)", re.MULTILINE)
_QUICK_NEGATIVE = re.compile(r"=[ \t]*-")
_TIER_COUNT = re.compile(r"<exists>[ \t]*\n\s*(?:size[ \t]*=[ \t]*)?(\d+)")
_LONG_SIZES = re.compile(r":[ \t]*size[ \t]*=[ \t]*(\d+)")  # "intervals: size = N", "points: ..."
_OBJECT_CLASS = re.compile(r'Object class\s*=\s*"([^"]*)"')
_SHORT_TIER_MARKERS = ('"IntervalTier"', '"TextTier"')
_SHORT_TIER_HEADER = re.compile(
    r'"(?:IntervalTier|TextTier)"[ \t]*\n[ \t]*"(?:[^"]|"")*"[ \t]*\n[^\n]*\n[^\n]*\n[ \t]*(\d+)[ \t]*(?:\n|$)'
)


def read_textgrid(path: str | os.PathLike[str], *, encoding: str | None = None, lazy: bool = False) -> Alignment:
    """Read a Praat TextGrid file into an `Alignment` (see the module docstring for details).

    `encoding` forces a text encoding (e.g. "latin-1" for legacy files that Praat's "try UTF-8,
    then ISO Latin-1" reading preference accepts); by default it is sniffed from the bytes.
    Every problem with the file raises `InputError` naming the file. With `lazy`, a regular
    file's tiers are checked for structure only and each is parsed and validated when first
    read (or by `Tier.load`); see "Lazy tiers" in the module docstring.
    """
    where = os.fspath(path)
    text, used = decode_textgrid_bytes(read_textgrid_bytes(where), where, encoding)
    return parse_textgrid_text(text, path=where, encoding=used, lazy=lazy)


def read_textgrid_bytes(path: str) -> bytes:
    """The bytes of a TextGrid file, by `storage.read_bytes` (`InputError` if it
    cannot be read)."""
    try:
        return read_bytes(path)
    except OSError as exc:
        raise InputError(f"cannot read TextGrid: {exc.strerror or exc}", path) from None


def decode_textgrid_bytes(
    data: bytes, path: str | None = None, encoding: str | None = None
) -> tuple[str, str]:
    """Decode a TextGrid's bytes once; returns ``(text, encoding used)``.

    Raises `InputError` for an empty file or bytes that are not valid in the (sniffed or given)
    encoding, and `UsageError` for an unknown `encoding` name.
    """
    if not data or data.isspace():  # `not data.strip()` without copying the file
        raise InputError("empty file; expected a Praat TextGrid", path)
    used = encoding or sniff_encoding(data)
    try:
        text = data.decode(used)
    except LookupError:
        raise UsageError(f"unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {used} text ({exc.reason} at byte {exc.start}); TextGrids must be UTF-8 "
            "or UTF-16. Re-save it as UTF-8, or pass `encoding` if you know its encoding",
            path,
        ) from None
    return text.lstrip("\ufeff"), used


def parse_textgrid_text(text: str, path: str | None = None, encoding: str | None = None, *,
                        lazy: bool = False) -> Alignment:
    """Parse the text of a TextGrid (already decoded) into a validated `Alignment`.

    Regular interval-tier files take the fast path (`parse_textgrid_fast`); everything else,
    including every file with a problem, is read by praatio (`parse_textgrid_praatio`), whose
    result the fast path reproduces exactly (tested). With `lazy`, a canonical long-format
    text is checked for structure only and its tiers are `Tier.deferred` (module docstring).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    _check_header(text, path)
    if lazy:
        deferred = _parse_lazy(text, path, encoding)
        if deferred is not None:
            _COUNTS["lazy"] += 1
            return deferred
    fast = _parse_fast(text, path, encoding)
    if fast is not None:
        _COUNTS["fast"] += 1
        return fast
    _COUNTS["praatio"] += 1
    return _parse_praatio(text, path, encoding)


def parse_textgrid_praatio(text: str, path: str | None = None, encoding: str | None = None) -> Alignment:
    """`parse_textgrid_text` without the fast path: always praatio's parser (the reference)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    _check_header(text, path)
    return _parse_praatio(text, path, encoding)


def parse_textgrid_fast(text: str, path: str | None = None, encoding: str | None = None) -> Alignment | None:
    """The fast path alone: the `Alignment` if the text is a regular TextGrid it fully
    recognises (then exactly what `parse_textgrid_praatio` returns), else None, also for any
    problem (`parse_textgrid_text` then hands the text to praatio, which explains it)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        _check_header(text, path)
    except InputError:
        return None
    return _parse_fast(text, path, encoding)


def fast_path_counts() -> dict[str, int]:
    """How many texts this process parsed on the fast path, with praatio, and with lazy tiers
    (for tests and diagnostics)."""
    return dict(_COUNTS)


_COUNTS = {"fast": 0, "praatio": 0, "lazy": 0}


def _parse_praatio(text: str, path: str | None, encoding: str | None) -> Alignment:
    # The same test praatio uses to choose its long or short parser.
    is_long = "ooTextFile short" not in text and "item [" in text
    if is_long:
        _reject_negative_long_times(text, path)
    try:
        raw = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=True)
    except _PARSER_ERRORS as exc:
        if is_long:
            _explain_bad_long_time(text, path)
        raise InputError(f"malformed or truncated TextGrid: {_describe(exc)}", path) from None
    if not isinstance(raw, dict) or not raw.get("tiers"):
        raise InputError("TextGrid has no tiers", path)
    _check_declared_sizes(text, raw["tiers"], is_long, path)
    return _to_alignment(raw, is_long, path, encoding)


def _describe(exc: Exception) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _check_header(text: str, path: str | None) -> None:
    head = text[:300]
    if "\x00" in head:
        raise InputError("binary data, not a text TextGrid", path)
    if "ooBinaryFile" in head:
        raise InputError(
            "Praat binary TextGrid; save it from Praat with 'Save as text file' and read that", path
        )
    lines = head.lstrip().split("\n", 2)
    if "ooTextFile" not in lines[0] or len(lines) < 2:
        raise InputError(
            f"not a Praat TextGrid: the first line should be 'File type = \"ooTextFile\"', "
            f"found {lines[0][:60].strip()!r}",
            path,
        )
    object_class = _OBJECT_CLASS.search(head)
    if object_class is None or not object_class.group(1).startswith("TextGrid"):
        found = object_class.group(1) if object_class else "none"
        raise InputError(f"not a Praat TextGrid: Object class is {found!r}, not 'TextGrid'", path)
    if "\x00" in text:
        raise InputError("binary data (NUL characters) inside the TextGrid text", path)


def _reject_negative_long_times(text: str, path: str | None) -> None:
    if _QUICK_NEGATIVE.search(text) is None:
        return
    for found in _NEGATIVE_FIELD.finditer(text):
        value = found.group(1)
        checked_time(value, "a time in the TextGrid", path)  # "-0" passes, "-1.5" raises


def _explain_bad_long_time(text: str, path: str | None) -> None:
    """After praatio failed on a long-format grid: name a time field that is not a number."""
    for found in _TIME_FIELD.finditer(text):
        field, value = found.groups()
        checked_time(value, f"{field} = {value} (line {text.count(chr(10), 0, found.start()) + 1})", path)


def _check_declared_sizes(text: str, tiers: list[dict], is_long: bool, path: str | None) -> None:
    """Compare the tier and entry counts the file declares with what praatio read.

    praatio stops quietly at the end of a truncated tier, so a cut-off file would otherwise
    lose its last intervals without an error.
    """
    declared_tiers = _TIER_COUNT.search(text)
    if declared_tiers is not None and int(declared_tiers.group(1)) != len(tiers):
        raise InputError(
            f"truncated or malformed TextGrid: it declares {declared_tiers.group(1)} tiers but "
            f"{len(tiers)} were read",
            path,
        )
    sizes = _LONG_SIZES.findall(text) if is_long else _short_sizes(text)
    if len(sizes) < len(tiers):
        raise InputError(
            f"truncated or malformed TextGrid: found the entry count of {len(sizes)} of "
            f"{len(tiers)} tiers",
            path,
        )
    if len(sizes) > len(tiers):
        return  # a label that looks like a size line; the per-entry validation still applies
    for size, tier in zip(sizes, tiers):
        if int(size) != len(tier["entries"]):
            raise InputError(
                f"truncated or malformed TextGrid: tier {tier['name']!r} declares {size} entries "
                f"but {len(tier['entries'])} were read",
                path,
            )


def _short_sizes(text: str) -> list[str]:
    """Entry counts from the short-format tier headers (class, name, xmin, xmax, size)."""
    starts = []
    for marker in _SHORT_TIER_MARKERS:
        i = text.find(marker)
        while i != -1:
            starts.append(i)
            i = text.find(marker, i + 1)
    headers = (_SHORT_TIER_HEADER.match(text, i) for i in sorted(starts))
    return [h.group(1) for h in headers if h is not None]


def _to_alignment(raw: dict, is_long: bool, path: str | None, encoding: str | None) -> Alignment:
    xmin = checked_time(raw["xmin"], "xmin of the TextGrid", path)
    xmax = checked_time(raw["xmax"], "xmax of the TextGrid", path)
    if xmin > xmax:
        raise InputError(f"TextGrid xmin {xmin} > xmax {xmax}", path)
    renamed: dict[str, str] = {}
    names: list[str] = []
    tiers: list[Tier] = []
    for raw_tier in raw["tiers"]:
        name = _unique_name(raw_tier["name"], names)
        if name != raw_tier["name"]:
            renamed[name] = raw_tier["name"]
        names.append(name)
        tiers.append(_to_tier(raw_tier, name, is_long, path))
    return _alignment(tiers, xmin, xmax, path, is_long, encoding, renamed)


def _alignment(tiers: list[Tier], xmin: float, xmax: float, path, is_long: bool, encoding: str,
               renamed: dict[str, str]) -> Alignment:
    """The parsed file, whichever parser read it (the fast path and praatio's give the same)."""
    meta = {"format": "textgrid", "textgrid_format": "long" if is_long else "short", "encoding": encoding,
            "renamed_tiers": renamed}
    return Alignment(tiers=tuple(tiers), xmin=xmin, xmax=xmax, path=path, meta=meta)


def _unique_name(name: str, taken: list[str]) -> str:
    """praatio's duplicateNamesMode="rename" scheme: name, name_2, name_3, ..."""
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _to_tier(raw_tier: dict, name: str, is_long: bool, path: str | None) -> Tier:
    if raw_tier["class"] == "IntervalTier":
        return build_tier(name, raw_tier["entries"], "interval", raw_tier["xmin"], raw_tier["xmax"], path)
    entries = raw_tier["entries"]
    if is_long:
        # praatio 6 unescapes doubled quotes in long-format interval labels but not in point
        # labels; do it here so both tier kinds read the same (tested).
        entries = [(t, label.replace('""', '"')) for t, label in entries]
    return build_tier(name, entries, "point", raw_tier["xmin"], raw_tier["xmax"], path)


# --------------------------------------------------------------------------------------------
# Fast path for regular files
#
# MFA, Praat and praatio write TextGrids in one regular layout. For those files the fast path
# checks the whole text against a grammar of that layout and extracts every value in one pass
# of one compiled regular expression, then builds the tiers from columns. It yields exactly
# what the praatio path yields (tests compare the two on every real file and on generated and
# mutated grids). For anything outside the grammar, or any value the praatio path treats
# specially, it returns None and praatio reads the file: point tiers, quotes or newlines
# inside labels or names, times that are not plain decimals (exponents, signs, "-0", non-ASCII
# digits, more than 15 integer digits), other spacing or keywords, entry or tier counts that
# disagree with the file, unsorted or overlapping intervals, xmin > xmax, trailing text, a
# leading BOM ... so every problem is still found and explained by the praatio path.
#
# The grammar (every line ends in "\n"; [ \t]* is allowed after a line's last word and before
# its first, except before the opening quote of a short-format class, name or label line,
# which praatio requires at the line start; NUM is [0-9]{1,15}(\.[0-9]+)?; NAME and LABEL
# hold no '"' and no newline):
#
#   long:  File type = "ooTextFile" / Object class = "TextGrid" / (blank) / xmin = NUM /
#          xmax = NUM / tiers? <exists> / size = T / item []:, then T tiers, each
#          item [k]: / class = "IntervalTier" / name = "NAME" / xmin = NUM / xmax = NUM /
#          intervals: size = N, then N blocks intervals [k]: / xmin = NUM / xmax = NUM /
#          text = "LABEL"
#   short: File type = "ooTextFile" (or "ooTextFile short") / Object class = "TextGrid" /
#          (blank) / NUM / NUM / <exists> / T, then T tiers, each "IntervalTier" / "NAME" /
#          NUM / NUM / N, then N entries NUM / NUM / "LABEL"
#
# followed only by spaces, tabs and newlines. Why praatio reads such a text the same way
# (its parsers are in praatio/utilities/textgrid_io.py):
# * long: praatio takes the grid bounds from header lines 4 and 5, splits the text at every
#   "item [" / "item[" and each tier at every "intervals [" / "intervals[", then reads the first
#   "xmin = <digits>" / "xmax = <digits>" of each piece and the text between `text = "` and
#   the last quote of the piece. Outside names and labels those markers occur exactly where
#   the grammar has them (a marker holds no quote, so it cannot straddle a name's or label's
#   quotes), so with no marker inside any name or label (checked) praatio's pieces are our
#   tier headers and blocks, and its values are ours.
# * short: praatio cuts the text into tiers at every '"IntervalTier"' / '"TextTier"'; in the
#   grammar those occur only on class lines and on a name or label line holding exactly that
#   word (checked), then reads name, bounds, the skipped size line and (start, end, "label")
#   triples until the tier's text ends.
# * both: labels are stripped like praatio strips them (`str.strip`), short-format names too;
#   times go through `float` from the same characters (praatio's int-or-float detour gives
#   the same value for at most 15 digits); names and labels need no unescaping. Our own checks
#   after praatio (declared sizes, negative times, xmin <= xmax, interval order) pass for a
#   grammatical text whose values pass `validated_intervals`, else we return None.
#
# One `findall` of an alternation (interval block | tier header), anchored at line starts,
# reads every tier of the text; the text is grammatical when the headers sit where the
# declared sizes put them and the matches cover every line: each match is whole lines, so
# they cover the text iff the newline count up to the last non-blank character equals the
# matched lines minus the final one.


def _grammar(possessive: bool) -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    """The compiled patterns (long header, long items, short header, short items).

    With `possessive` (Python >= 3.11), runs of spaces, digits and label characters do not
    backtrack ("*+"); each such run is followed by a character outside its class, so
    backtracking into it can never produce a match and both variants match exactly the same
    text (tested); the possessive one is about 20% faster.
    """
    plus = "+" if possessive else ""
    num = r"([0-9]{1,15}" + plus + r"(?:\.[0-9]+" + plus + r")?)"
    eol = r"[ \t]*" + plus + r"\n"
    ws = r"[ \t]*" + plus
    label = r'"([^"\n]*' + plus + r')"'
    index = r"\[[0-9]+" + plus + r"\]:"

    def lines(*patterns: str) -> str:
        return "".join(ws + line + eol for line in patterns)

    long_header = re.compile(
        r'File type = "ooTextFile"' + eol + r'Object class = "TextGrid"' + eol + ws + r"\n"
        + "xmin = " + num + eol + "xmax = " + num + eol + r"tiers\? <exists>" + eol
        + "size = ([0-9]{1,6})" + eol + r"item \[\]:" + eol
    )
    # groups: 1-3 an interval (xmin, xmax, label); 4-7 a tier header (name, xmin, xmax, size)
    long_items = re.compile(
        "^(?:"
        + lines("intervals " + index, "xmin = " + num, "xmax = " + num, "text = " + label)
        + "|"
        + lines("item " + index, 'class = "IntervalTier"', "name = " + label, "xmin = " + num,
                "xmax = " + num, "intervals: size = ([0-9]{1,7})")
        + ")",
        re.MULTILINE,
    )
    short_header = re.compile(
        r'File type = "ooTextFile(?: short)?"' + eol + r'Object class = "TextGrid"' + eol + ws + r"\n"
        + lines(num, num, "<exists>", "([0-9]{1,6})")
    )
    # the same group layout as long_items
    short_items = re.compile(
        "^(?:"
        + lines(num, num) + label + eol
        + "|"
        + r'"IntervalTier"' + eol + label + eol + lines(num, num, "([0-9]{1,7})")
        + ")",
        re.MULTILINE,
    )
    return long_header, long_items, short_header, short_items


def _canonical_long_parts(possessive: bool) -> tuple[str, str]:
    """The canonical-indentation long-format interval block and tier header (pattern text)."""
    plus = "+" if possessive else ""
    num = r"([0-9]{1,15}" + plus + r"(?:\.[0-9]+" + plus + r")?)"
    label = r'"([^"\n]*' + plus + r')"'
    index = r"\[[0-9]+" + plus + r"\]:"

    def lines(indent: int, *patterns: str) -> str:
        return "".join(" " * indent + line + "\n" for line in patterns)

    interval = lines(8, "intervals " + index) + lines(12, "xmin = " + num, "xmax = " + num, "text = " + label)
    header = lines(4, "item " + index) + lines(8, 'class = "IntervalTier"', "name = " + label, "xmin = " + num,
                                               "xmax = " + num, "intervals: size = ([0-9]{1,7})")
    return interval, header


def _canonical_long_items(possessive: bool) -> re.Pattern:
    """`_LONG_ITEMS` restricted to the indentation Praat and praatio (so MFA) write (4, 8, 12
    spaces) and no trailing blanks: the same groups, about 20% faster (no blank runs to scan).

    Its language is a subset of `_LONG_ITEMS`'s, and both match whole lines from a line start,
    so when its matches cover every line (`_fast_tiers`' count check) they are the matches
    `_LONG_ITEMS` finds, with the same groups; otherwise `_fast_tiers` uses `_LONG_ITEMS`.
    """
    interval, header = _canonical_long_parts(possessive)
    return re.compile("^(?:" + interval + "|" + header + ")", re.MULTILINE)


_LONG_HEADER, _LONG_ITEMS, _SHORT_HEADER, _SHORT_ITEMS = _grammar(possessive=sys.version_info >= (3, 11))
_LONG_ITEMS_CANONICAL = _canonical_long_items(possessive=sys.version_info >= (3, 11))
# One interval block (from a line start) and one tier header, for `_parse_lazy`.
_LONG_INTERVAL_CANONICAL, _LONG_TIER_HEADER_CANONICAL = (
    re.compile(prefix + part, re.MULTILINE)
    for prefix, part in zip(("^", ""), _canonical_long_parts(possessive=sys.version_info >= (3, 11))))
_LONG_LINES = (4, 6)  # lines per interval, per tier header
_LONG_MARKERS = re.compile(r"(?:item|intervals) ?\[")

_SHORT_LINES = (3, 5)
_SHORT_MARKERS = frozenset({"IntervalTier", "TextTier"})


def _parse_fast(text: str, path: str | None, encoding: str | None) -> Alignment | None:
    """The Alignment of a regular TextGrid text (line ends already "\n"), or None."""
    # praatio's own choice between its long and short parser, then that format's grammar. A
    # text in the long grammar holds "item [" (its tier headers) and can hold "ooTextFile short"
    # only in a name or label, which `_tiers_in` refuses; so only other texts need praatio's
    # whole-text scan.
    is_long = _LONG_HEADER.match(text) is not None or ("ooTextFile short" not in text and "item [" in text)
    raw = _fast_tiers(text, is_long)
    if raw is None:
        return None
    grid_min, grid_max, raw_tiers = raw
    xmin, xmax = float(grid_min), float(grid_max)
    if xmin > xmax:
        return None
    renamed: dict[str, str] = {}
    names: list[str] = []
    tiers: list[Tier] = []
    for name_in_file, tier_min, tier_max, starts, ends, labels in raw_tiers:
        tmin, tmax = float(tier_min), float(tier_max)
        if tmin > tmax:
            return None
        times = _checked_times(starts, ends)
        if times is None:
            return None
        start_times, end_times = times
        name = _unique_name(name_in_file, names)
        if name != name_in_file:
            renamed[name] = name_in_file
        names.append(name)
        # Columnar: the labels are stripped and the intervals built only for the tiers a job uses.
        tiers.append(Tier.from_columns(name, start_times, end_times, labels, xmin=tmin, xmax=tmax,
                                       strip_labels=True))
    return _alignment(tiers, xmin, xmax, path, is_long, encoding, renamed)


def _checked_times(starts: list[str], ends: list[str]) -> tuple[list[float], list[float]] | None:
    """The start and end times of a tier's intervals from their text, if they pass
    `validated_intervals`' rules (labels are `str` from the grammar), else None."""
    start_times = list(map(float, starts))
    if starts and ends[:-1] == starts[1:]:
        # Contiguous intervals (MFA, Praat): each end is written like the next start, so its
        # float is that start's; convert only the last end.
        last_end = float(ends[-1])
        if not valid_contiguous_columns(start_times, last_end):
            return None
        end_times = start_times[1:]
        end_times.append(last_end)
        return start_times, end_times
    end_times = list(map(float, ends))
    return (start_times, end_times) if valid_interval_columns(start_times, end_times, None) else None


def _fast_tiers(text: str, is_long: bool) -> tuple[str, str, list[tuple]] | None:
    """(grid xmin, grid xmax, tiers) as text if `text` is in the grammar, else None; each tier
    is (name, xmin, xmax, starts, ends, raw labels)."""
    header = (_LONG_HEADER if is_long else _SHORT_HEADER).match(text)
    if header is None:
        return None
    grid_min, grid_max, declared = header.groups()
    start = header.end()
    if is_long:
        tiers = _tiers_in(_LONG_ITEMS_CANONICAL.findall(text, start), text, start, int(declared), True)
        if tiers is not None:
            return grid_min, grid_max, tiers
    tiers = _tiers_in((_LONG_ITEMS if is_long else _SHORT_ITEMS).findall(text, start), text, start, int(declared),
                      is_long)
    return None if tiers is None else (grid_min, grid_max, tiers)


def _tiers_in(found: list[tuple], text: str, start: int, tier_count: int, is_long: bool) -> list[tuple] | None:
    """The tiers of `_fast_tiers` from the item matches `found` (from `start` on), or None."""
    if tier_count == 0 or len(found) < tier_count:
        return None
    tiers = []
    names_in_file = []
    i = 0
    for _ in range(tier_count):
        if i >= len(found):
            return None
        _, _, _, name, tier_min, tier_max, size = found[i]
        if not tier_min:  # an interval where the declared sizes put a tier header
            return None
        n = int(size)
        body = found[i + 1 : i + 1 + n]
        if len(body) != n:
            return None
        starts, ends, labels = list(map(_START, body)), list(map(_END, body)), list(map(_TEXT, body))
        if "" in starts:  # a tier header where the declared sizes put an interval
            return None
        names_in_file.append(name)
        tiers.append((name if is_long else name.strip(), tier_min, tier_max, starts, ends, labels))
        i += 1 + n
    if i != len(found):
        return None
    # The matches (whole lines each) must cover every line up to the last non-blank character.
    per_interval, per_tier = _LONG_LINES if is_long else _SHORT_LINES
    end = len(text.rstrip(" \t\n"))
    if text.count("\n", start, end) != per_interval * (len(found) - tier_count) + per_tier * tier_count - 1:
        return None
    # No name or label may hold one of praatio's split markers (see above).
    if is_long:
        joined = "\n".join(chain(names_in_file, *(tier[5] for tier in tiers)))
        if "[" in joined and _LONG_MARKERS.search(joined) or "ooTextFile short" in joined:
            return None
    elif not _SHORT_MARKERS.isdisjoint(chain(names_in_file, *(tier[5] for tier in tiers))):
        return None
    return tiers


_START, _END, _TEXT = itemgetter(0), itemgetter(1), itemgetter(2)


# --------------------------------------------------------------------------------------------
# Lazy tiers (`lazy=True`): full parse and validation only for the tiers a job reads
#
# For a long-format text in the canonical layout (the indentation Praat, praatio and so MFA
# write) `_parse_lazy` checks the structure of the whole text and parses tier bodies only on
# use (`Tier.deferred`):
#
# * structure, for every tier: the file header (`_LONG_HEADER`: grid xmin <= xmax, declared
#   tier count T > 0), each of the T tier headers in place (`_LONG_TIER_HEADER_CANONICAL`:
#   interval tier, name, xmin <= xmax, declared size N; a name holding "[" or "ooTextFile
#   short" is left to the full path), and a body of exactly 4N lines holding exactly N "["
#   (one per "intervals [k]:" line), up to the next tier header or, for the last tier, the
#   last non-blank line, which must end in a newline. Two `str.count` scans per tier body,
#   no per-interval work.
# * a tier's values, when read: the canonical interval grammar on its body (N whole-line
#   matches in 4N lines cover it), the times through `_checked_times`, no label holding
#   "ooTextFile short". That is exactly what `_parse_fast` checks of that tier, and praatio
#   cuts the text into the same tiers (it splits at "item [" / "item[" and "intervals [" /
#   "intervals[", and no label or name holds a "["), so the tier equals the full path's. If
#   the grammar or a check fails, the full path (`parse_textgrid_text`) parses the whole
#   text: it raises the file's `InputError` exactly as before, or, for a tier outside the
#   grammar it accepts, the tier is its tier.
#
# So a file the full path accepts gives the same tiers; a cut or truncated file, a broken
# header, or a damaged tier that is read fails as before. Only damage inside the body of a
# tier that is never read (a garbled or negative time, overlapping intervals, a label praatio
# misreads such as one holding "ooTextFile short") no longer fails the file.


class _LazyText:
    """The text of a lazily parsed TextGrid, and its full parse when a tier needs it."""

    __slots__ = ("text", "path", "encoding", "_full")

    def __init__(self, text: str, path: str | None, encoding: str | None) -> None:
        self.text, self.path, self.encoding, self._full = text, path, encoding, None

    def full(self) -> Alignment:
        """The full path's Alignment of the text (raises the file's `InputError`)."""
        if self._full is None:
            self._full = parse_textgrid_text(self.text, self.path, self.encoding)
        return self._full


class _DeferredBody:
    """`Tier.deferred`'s loader for tier `index`: its body is ``text[start:stop]`` (`size` blocks)."""

    __slots__ = ("source", "index", "start", "stop", "size")

    def __init__(self, source: _LazyText, index: int, start: int, stop: int, size: int) -> None:
        self.source, self.index, self.start, self.stop, self.size = source, index, start, stop, size

    def __call__(self) -> tuple[list[float], list[float], list[str], bool]:
        found = _LONG_INTERVAL_CANONICAL.findall(self.source.text, self.start, self.stop)
        if len(found) == self.size:
            labels = list(map(_TEXT, found))
            times = _checked_times(list(map(_START, found)), list(map(_END, found)))
            if times is not None and "ooTextFile short" not in "\n".join(labels):
                return times[0], times[1], labels, True
        tier = self.source.full().tiers[self.index]  # raises the file's InputError
        return (*tier.columns(), False)


_BLANK_OR_NOTHING = (" ", "\t", "\n", "")


def _parse_lazy(text: str, path: str | None, encoding: str | None) -> Alignment | None:
    """The Alignment of a canonical long-format text with `Tier.deferred` tiers, or None when
    its structure is not the canonical one (see above); line ends already "\n"."""
    header = _LONG_HEADER.match(text)
    if header is None:
        return None
    grid_min, grid_max, declared = header.groups()
    xmin, xmax, tier_count = float(grid_min), float(grid_max), int(declared)
    # The newline ending the last non-blank line (no copy of the text when it is the final one).
    last = len(text) - 1 if text[-2:-1] not in _BLANK_OR_NOTHING and text[-1:] == "\n" else len(text.rstrip(" \t\n"))
    if xmin > xmax or tier_count == 0 or last == len(text) or text[last] != "\n":
        return None
    source = _LazyText(text, path, encoding)
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8) if text.isascii() else None
    renamed: dict[str, str] = {}
    names: list[str] = []
    tiers: list[Tier] = []
    position = header.end()
    for index in range(tier_count):
        tier_header = _LONG_TIER_HEADER_CANONICAL.match(text, position)
        if tier_header is None:
            return None
        name_in_file, tier_min, tier_max, size = tier_header.groups()
        body = tier_header.end()
        if index + 1 < tier_count:
            # The next tier header starts the line before its class line (a long needle is the
            # quickest `str.find`); the next iteration checks that a header is there.
            item_line_end = text.rfind("\n", body, max(text.find('"IntervalTier"', body), body))
            if item_line_end == -1:
                return None
            stop = text.rfind("\n", body - 1, item_line_end) + 1
        else:
            stop = last + 1
        n = int(size)
        if _newlines_and_brackets(text, codes, body, stop) != (4 * n, n):
            return None
        tmin, tmax = float(tier_min), float(tier_max)
        if tmin > tmax or "[" in name_in_file or "ooTextFile short" in name_in_file:
            return None
        name = _unique_name(name_in_file, names)
        if name != name_in_file:
            renamed[name] = name_in_file
        names.append(name)
        tiers.append(Tier.deferred(name, _DeferredBody(source, index, body, stop, n), xmin=tmin, xmax=tmax))
        position = stop
    return _alignment(tiers, xmin, xmax, path, True, encoding, renamed)


def _newlines_and_brackets(text: str, codes: np.ndarray | None, start: int, stop: int) -> tuple[int, int]:
    """How many "\n" and "[" ``text[start:stop]`` holds. `codes` is the text's bytes when it is
    ASCII (so byte and character offsets agree): numpy compares a whole tier body with vector
    instructions, where `str.count` looks at one character at a time (five instructions each)."""
    if codes is None:
        return text.count("\n", start, stop), text.count("[", start, stop)
    body = codes[start:stop]
    return int(np.count_nonzero(body == _NEWLINE)), int(np.count_nonzero(body == _BRACKET))


_NEWLINE, _BRACKET = ord("\n"), ord("[")
