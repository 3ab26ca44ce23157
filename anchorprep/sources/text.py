"""Text helpers shared by the readers of `anchorprep.sources`: labels, encodings, fields, problems.

* Labels: `SILENCE_LABELS` / `UNKNOWN_LABELS` and `is_silence` (compared after stripping and
  case-folding), `normalise_label` (NFC, case-folded, outer punctuation removed), the form
  keyword matching compares.
* Files: `read_text` decodes a whole file in a given encoding, `sniff_encoding` guesses one from a
  byte-order mark or the NUL pattern of BOM-less UTF-16; `split_fields` splits lines on ASCII
  whitespace as Kaldi and SCTK do; `safe_float` parses ASCII decimals only.
* Problems: `LineProblems` keeps the first problem per item id of a line-based file (CTM, RTTM,
  segments, lhotse), so a reader can raise the earliest or hand each item its own error.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import unicodedata
from typing import Union

from anchorprep.errors import InputError, UsageError
from anchorprep.storage import read_bytes

PathLike = Union[str, "os.PathLike[str]"]

#: Labels that mean "no speech" on MFA, Kaldi, Gentle, MAUS and praat word/phone tiers.
#: Compared after stripping whitespace and case-folding, so "<SIL>" and " sp " are silence too.
SILENCE_LABELS = frozenset(
    {"", "sil", "sp", "spn_sil", "<eps>", "<sil>", "silence", "<silence>", "sil_s", "<p:>", "<p>"}
)

#: Out-of-vocabulary markers (MFA writes `<unk>` on the word tier and `spn` on the phone tier).
#: They are speech, not silence, but never match a keyword unless asked (see `find_phrase`).
UNKNOWN_LABELS = frozenset({"<unk>", "spn", "<spn>", "[unk]", "<oov>"})


def is_silence(label: str, silence: frozenset[str] | set[str] = SILENCE_LABELS) -> bool:
    """Whether `label`, stripped and case-folded, is one of `silence` (given folded)."""
    return label.strip().casefold() in silence


def normalise_label(text: str) -> str:
    """NFC, case-folded, with leading/trailing punctuation (Unicode category P*) removed."""
    text = unicodedata.normalize("NFC", text).casefold()
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith("P"):
        end -= 1
    return text[start:end]


def sniff_encoding(data: bytes) -> str:
    """The text encoding of `data`: a BOM if present, else UTF-16 if every other byte of the
    start is NUL (ASCII-heavy UTF-16 without BOM), else UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"  # the decoded BOM is removed with the other leading U+FEFF
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    if data.find(0, 0, 400) == -1:  # no NUL: neither count below can reach its threshold
        return "utf-8"
    head = data[:400]
    half = len(head) // 2
    if half >= 4:
        even_nuls, odd_nuls = head[0::2].count(0), head[1::2].count(0)
        if even_nuls >= half * 0.4 and odd_nuls <= even_nuls // 8:
            return "utf-16-be"
        if odd_nuls >= half * 0.4 and even_nuls <= odd_nuls // 8:
            return "utf-16-le"
    return "utf-8"


def read_text(path: PathLike, encoding: str) -> str:
    """Read and decode a whole file, dropping a UTF-8 byte-order mark.

    Raises `InputError` for an unreadable file or bytes that do not decode (naming the line),
    `UsageError` for an unknown `encoding`.
    """
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", str(path)) from exc
    try:
        text = data.decode(encoding)
    except LookupError as exc:
        raise UsageError(f"unknown text encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"line {line}: bytes {data[exc.start:exc.end]!r} are not valid {encoding} "
            f"({exc.reason}); pass the file's encoding as `encoding`, "
            "e.g. gb18030 for GB-encoded Mandarin",
            str(path),
        ) from exc
    return text[1:] if text.startswith("\ufeff") else text


#: Characters str.split() splits on that Kaldi and SCTK treat as text (U+001C-U+001F, U+0085,
#: U+00A0, U+3000, ...): when one occurs, lines are split with `_ASCII_SPACE` instead.
_OTHER_SPACE = re.compile(r"[^\S \t\r\n\x0b\x0c]")
_ASCII_OTHER_SPACE = "\x1c\x1d\x1e\x1f"
_ASCII_SPACE = re.compile(r"[ \t\r\x0b\x0c]+")


def split_fields(text: str) -> list[list[str]]:
    """Split text into lines and each line into fields separated by ASCII whitespace."""
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the empty string after a final newline is not a line
    if text.isascii():
        plain = not any(c in text for c in _ASCII_OTHER_SPACE)
    else:
        plain = _OTHER_SPACE.search(text) is None
    if plain:
        return list(map(str.split, lines))
    return [[f for f in _ASCII_SPACE.split(line) if f] for line in lines]


def safe_float(text: str) -> float:
    """`float(text)`, NaN when it fails; only ASCII without '_' (Python would accept "1_0", "１")."""
    if not text.isascii() or "_" in text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


class LineProblems:
    """The first problem per item id (lowest line number, then first reported), kept for either
    strict handling (raise the earliest) or per-item handling (hand each item its own error)."""

    def __init__(self, path: PathLike | None) -> None:
        self.path = None if path is None else str(path)
        self.first: dict[str, tuple[int, int, str]] = {}
        self._reported = 0

    def add(self, item: str, line: int, reason: str) -> None:
        """Record a problem; `line` orders problems (0 when there is no line, e.g. a mapping)."""
        key = (line, self._reported)
        self._reported += 1
        if item not in self.first or key < self.first[item][:2]:
            self.first[item] = (*key, reason)

    def resolve(self, errors: dict[str, InputError] | None) -> None:
        """Raise the earliest problem (strict mode) or copy every problem into `errors`."""
        if not self.first:
            return
        if errors is None:
            raise InputError(min(self.first.values())[2], self.path)
        for item, (_, _, reason) in self.first.items():
            errors[item] = InputError(reason, self.path)
