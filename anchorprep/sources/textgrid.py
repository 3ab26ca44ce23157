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

What it rejects with `InputError`: unreadable, empty, binary or non-TextGrid files (including
Praat's binary TextGrid format), text that is not valid UTF-8/UTF-16, truncated files (fewer
tiers or entries than the file declares), NaN/inf/negative times, xmin > xmax for the grid or a
tier, intervals ending before they start, overlapping intervals within a tier, and anything
praatio's parser cannot read (praatio 6 reads long-format times only as plain decimals, so a
long-format time written in exponent notation such as ``1e-05`` is rejected too).

Speed: the file is read and decoded once and the text handed to praatio's string parser
(`praatio.utilities.textgrid_io.parseTextgridStr`), which skips the temporary text handling
and tier objects of `praatio.textgrid.openTextgrid`; our own validation replaces praatio's.
"""

from __future__ import annotations

import codecs
import os
import re

from praatio.utilities import textgrid_io
from praatio.utilities.errors import PraatioException

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignment import Alignment, Tier, build_tier, checked_time

__all__ = ["read_textgrid", "parse_textgrid_text", "decode_textgrid_bytes", "sniff_encoding"]

# Exceptions praatio's parser raises on malformed text (it indexes and converts without checks).
_PARSER_ERRORS = (PraatioException, ValueError, IndexError, KeyError, TypeError, AttributeError, re.error)

# Long-format time fields with a minus sign: praatio drops the sign of xmin/number values, so
# negative times are caught here, before parsing.
_NEGATIVE_FIELD = re.compile(r"^[ \t]*(?:xmin|xmax|number)[ \t]*=[ \t]*(-[^\s]*)", re.MULTILINE)
_TIME_FIELD = re.compile(r"^[ \t]*(xmin|xmax|number)[ \t]*=[ \t]*(\S*)", re.MULTILINE)
_QUICK_NEGATIVE = re.compile(r"=[ \t]*-")
_TIER_COUNT = re.compile(r"<exists>[ \t]*\n\s*(?:size[ \t]*=[ \t]*)?(\d+)")
_LONG_SIZES = re.compile(r":[ \t]*size[ \t]*=[ \t]*(\d+)")  # "intervals: size = N", "points: ..."
_SHORT_TIER_MARKERS = ('"IntervalTier"', '"TextTier"')
_SHORT_TIER_HEADER = re.compile(
    r'"(?:IntervalTier|TextTier)"[ \t]*\n[ \t]*"(?:[^"]|"")*"[ \t]*\n[^\n]*\n[^\n]*\n[ \t]*(\d+)[ \t]*(?:\n|$)'
)


def read_textgrid(path: str | os.PathLike[str], *, encoding: str | None = None) -> Alignment:
    """Read a Praat TextGrid file into an `Alignment` (see the module docstring for details).

    `encoding` forces a text encoding (e.g. "latin-1" for legacy files that Praat's "try UTF-8,
    then ISO Latin-1" reading preference accepts); by default it is sniffed from the bytes.
    Every problem with the file raises `InputError` naming the file.
    """
    where = os.fspath(path)
    try:
        with open(where, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read TextGrid: {exc.strerror or exc}", where) from None
    text, used = decode_textgrid_bytes(data, where, encoding)
    return parse_textgrid_text(text, path=where, encoding=used)


def sniff_encoding(data: bytes) -> str:
    """The text encoding of TextGrid bytes: a BOM if present, else UTF-16 if every other
    byte of the start is NUL (ASCII-heavy UTF-16 without BOM), else UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"  # the decoded BOM is removed with the other leading U+FEFF
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    head = data[:400]
    half = len(head) // 2
    if half >= 4:
        even_nuls, odd_nuls = head[0::2].count(0), head[1::2].count(0)
        if even_nuls >= half * 0.4 and odd_nuls <= even_nuls // 8:
            return "utf-16-be"
        if odd_nuls >= half * 0.4 and even_nuls <= odd_nuls // 8:
            return "utf-16-le"
    return "utf-8"


def decode_textgrid_bytes(
    data: bytes, path: str | None = None, encoding: str | None = None
) -> tuple[str, str]:
    """Decode a TextGrid's bytes once; returns ``(text, encoding used)``.

    Raises `InputError` for an empty file or bytes that are not valid in the (sniffed or given)
    encoding, and `UsageError` for an unknown `encoding` name.
    """
    if not data.strip():
        raise InputError("empty file; expected a Praat TextGrid", path)
    used = encoding or sniff_encoding(data)
    try:
        text = data.decode(used)
    except LookupError:
        raise UsageError(f"unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid {used} text ({exc.reason} at byte {exc.start}); TextGrids must be UTF-8 "
            "or UTF-16. Re-save it as UTF-8, or pass encoding= if you know its encoding",
            path,
        ) from None
    return text.lstrip("\ufeff"), used


def parse_textgrid_text(text: str, path: str | None = None, encoding: str | None = None) -> Alignment:
    """Parse the text of a TextGrid (already decoded) into a validated `Alignment`."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    _check_header(text, path)
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
    object_class = re.search(r'Object class\s*=\s*"([^"]*)"', head)
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
    meta = {
        "format": "textgrid",
        "textgrid_format": "long" if is_long else "short",
        "encoding": encoding,
        "renamed_tiers": renamed,
    }
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
