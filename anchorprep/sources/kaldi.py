"""Kaldi data-folder files, read in one place: ``segments`` and ``wav.scp``.

A ``segments`` line is ``<utterance> <recording> <start> <end>`` (seconds; ``end`` ``-1`` means
"to the end of the recording"); a ``wav.scp`` line is ``<id> <path>``. Recording-keyed CTMs are
cut into utterances with `anchorprep.sources.alignments.ctm.ctm_to_utterances`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.text import LineProblems, PathLike, read_text, safe_float, split_fields
from anchorprep.storage import read_bytes


@dataclass(frozen=True)
class Segment:
    """One line of a Kaldi ``segments`` file: an utterance's span within its recording.

    ``end`` is ``math.inf`` when the file says ``-1`` (Kaldi: "to the end of the recording").
    """

    recording: str
    start: float
    end: float


def _parse_segment_line(fields: list[str], line: int) -> Segment | str:
    """One ``<utt> <recording> <start> <end>`` line as a Segment, or the reason it is malformed."""
    if len(fields) != 4:
        return f"line {line}: expected 4 fields (<utterance> <recording> <start> <end>), got {len(fields)}"
    start, end = safe_float(fields[2]), safe_float(fields[3])
    if not (math.isfinite(start) and start >= 0):
        return f"line {line}: start {fields[2]!r} must be a finite number >= 0"
    if end == -1:
        return Segment(fields[1], start, math.inf)
    if not math.isfinite(end):
        return f"line {line}: end {fields[3]!r} must be a finite number (or -1 for the end of the recording)"
    if end <= start:
        return f"line {line}: end {fields[3]} is not after start {fields[2]}"
    return Segment(fields[1], start, end)


def read_segments(
    path: PathLike, encoding: str = "utf-8", *, errors: dict[str, InputError] | None = None
) -> dict[str, Segment]:
    """Read a Kaldi ``segments`` file: ``<utterance> <recording> <start> <end>`` per line.

    ``end`` ``-1`` means "to the end of the recording" and is stored as ``math.inf``. Blank lines
    are skipped. A malformed line or a repeated utterance id is an `InputError` (``line N:``);
    with ``errors=`` a dict, such utterances are left out and their first problem stored there.
    """
    problems = LineProblems(path)
    segments: dict[str, Segment] = {}
    first_line: dict[str, int] = {}
    for number, fields in enumerate(split_fields(read_text(path, encoding)), 1):
        if not fields:
            continue
        utt = fields[0]
        parsed = _parse_segment_line(fields, number)
        if utt in first_line:
            problems.add(utt, number, f"line {number}: utterance {utt!r} repeats line {first_line[utt]}")
            continue
        first_line[utt] = number
        if isinstance(parsed, str):
            problems.add(utt, number, parsed)
        else:
            segments[utt] = parsed
    problems.resolve(errors)
    return {utt: seg for utt, seg in segments.items() if utt not in problems.first}


def read_wav_scp(path: PathLike) -> dict[str, str]:
    """A Kaldi ``wav.scp`` as ``{id: audio path}``; piped commands are refused (`UsageError`:
    extract the audio to files first)."""
    mapping = {}
    for number, line in enumerate(read_bytes(path).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if value.endswith("|"):
            raise UsageError(f"{path}:{number}: piped wav.scp entries are not supported; extract the audio to files first")
        mapping[key] = value
    return mapping
