"""NIST RTTM speaker segmentation (diarization references, AMI, DIHARD, pyannote output).

An RTTM line is ``SPEAKER <file> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>``.
`read_rttm` turns a file into ``{recording (file id): Alignment}`` so that speech-onset anchors
(``anchorprep align --speech-onsets``) can come from human segmentation:

* **Tiers.** One interval tier per speaker, named ``"<speaker> - words"`` and labelled
  ``"speech"``, so `select_word_tier` (``--speaker``) picks a speaker the way it picks an MFA
  speaker tier, and a single-speaker recording needs no choice at all. Another tier, ``speech``,
  is the union of every speaker's segments (overlaps merged): the speech of anyone, for
  ``--tier speech``. ``meta["speakers"]`` lists the speakers in order of first appearance; the
  tier order follows it. RTTM carries no words, so keyword matching finds nothing here.
* **Times** are seconds from the start of the recording (the file id), as RTTM defines them;
  ``xmin`` is 0 and ``xmax`` the latest segment end (an RTTM does not record the audio length).
  A speaker's overlapping or touching segments are merged into one (``meta["merged"]`` counts
  the merges); segments are sorted by onset. Zero-length segments are kept.
* **Lines.** Only ``SPEAKER`` lines are read; other types (``SPKR-INFO``, ``LEXEME``,
  ``NON-SPEECH``, ...) are skipped (``meta["skipped_lines"]`` counts them per file id). Blank
  lines and ``;;`` comments are skipped; fields are separated by whitespace. A ``SPEAKER`` line
  needs at least 8 fields (some writers drop the trailing ``<NA>``s); onset and duration must be
  finite and non-negative. The channel is recorded in ``meta["channels"]`` but does not split
  tiers.
* **Errors.** A malformed ``SPEAKER`` line is an `InputError` starting ``line N:``; by default
  the first one is raised. With ``errors=`` a dict, each file id with a bad line is left out and
  its first problem stored there (like `read_ctm`). A line too short to name a file id is always
  raised.

`anchorprep.sources.items.alignment_items` lists one item per recording of an RTTM;
`write_rttm` writes segments back out.

Example (the AMI segments of the lhotse test fixture)::

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ami.rttm")
    >>> with open(path, "w") as f:
    ...     _ = f.write("SPEAKER ES2011a 1 1.46 1.36 <NA> <NA> H1 <NA> <NA>\\n"
    ...                 "SPEAKER ES2011a 1 3.36 1.00 <NA> <NA> H2 <NA> <NA>\\n")
    >>> rec = read_rttm(path)["ES2011a"]
    >>> rec.tier_names, rec.meta["speakers"]
    (['H1 - words', 'H2 - words', 'speech'], ['H1', 'H2'])
    >>> [(iv.start, iv.end, iv.label) for iv in rec.get_tier("speech").intervals]
    [(1.46, 2.82, 'speech'), (3.36, 4.36, 'speech')]
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Union

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.model import Alignment, Interval, Tier
from anchorprep.sources.text import LineProblems, read_text

PathLike = Union[str, "os.PathLike[str]"]

#: The label of every RTTM interval.
SPEECH_LABEL = "speech"
#: The name of the all-speakers tier.
SPEECH_TIER = "speech"
#: Per-speaker tiers are named "<speaker> - words" (the MFA/FAVE per-speaker naming).
SPEAKER_TIER_SUFFIX = " - words"

_TIME_DECIMALS = 9
_MIN_FIELDS = 8


def _time(text: str) -> float:
    """A finite float from ASCII decimal text, NaN otherwise (rejects "1_0", "１", "nan", "inf")."""
    if not text.isascii() or "_" in text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _merge(segments: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], int]:
    """Sort segments and merge overlapping or touching ones; also the number of merges."""
    merged: list[list[float]] = []
    count = 0
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            count += 1
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged], count


def _tier(name: str, segments: list[tuple[float, float]]) -> Tier:
    return Tier(name, tuple(Interval(s, e, SPEECH_LABEL) for s, e in segments))


def read_rttm(
    path: PathLike, encoding: str = "utf-8", *, errors: dict[str, InputError] | None = None
) -> dict[str, Alignment]:
    """Read an RTTM into ``{file id: Alignment}``; see the module docstring for the rules.

    Args:
        path: the RTTM file.
        encoding: text encoding (a UTF-8 byte-order mark is ignored).
        errors: None to raise on the first malformed ``SPEAKER`` line; a dict to collect one
            `InputError` per file id with a malformed line, leaving that id out of the result.

    Raises:
        InputError: unreadable or undecodable file, a line too short to name its file id, or
            (strict mode) a malformed ``SPEAKER`` line, with ``line N:`` in the reason.
        UsageError: an unknown ``encoding``.
    """
    text = read_text(path, encoding)
    problems = LineProblems(path)
    # file id -> speaker -> [(start, end)], in order of first appearance
    segments: dict[str, dict[str, list[tuple[float, float]]]] = {}
    channels: dict[str, list[str]] = {}
    skipped: Counter = Counter()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";;"):
            continue
        if fields[0] != "SPEAKER":
            if len(fields) >= 2:
                skipped[fields[1]] += 1
            continue
        if len(fields) < 2:
            raise InputError(f"line {number}: a SPEAKER line without a file id", str(path))
        file_id = fields[1]
        segments.setdefault(file_id, {})
        if len(fields) < _MIN_FIELDS:
            problems.add(
                file_id, number,
                f"line {number}: expected at least {_MIN_FIELDS} fields (SPEAKER <file> <channel> <onset> "
                f"<duration> <NA> <NA> <speaker> ...), got {len(fields)}",
            )
            continue
        onset, duration = _time(fields[3]), _time(fields[4])
        if not onset >= 0:
            problems.add(file_id, number, f"line {number}: onset {fields[3]!r} must be a finite number >= 0")
            continue
        if not duration >= 0:
            problems.add(file_id, number, f"line {number}: duration {fields[4]!r} must be a finite number >= 0")
            continue
        speaker = fields[7]
        end = round(onset + duration, _TIME_DECIMALS) + 0.0
        segments[file_id].setdefault(speaker, []).append((onset + 0.0, end))
        file_channels = channels.setdefault(file_id, [])
        if fields[2] not in file_channels:
            file_channels.append(fields[2])
    problems.resolve(errors)
    result: dict[str, Alignment] = {}
    for file_id, by_speaker in segments.items():
        if file_id in problems.first:
            continue
        tiers, merges = [], 0
        for speaker, spans in by_speaker.items():
            merged, count = _merge(spans)
            merges += count
            tiers.append(_tier(f"{speaker}{SPEAKER_TIER_SUFFIX}", merged))
        union, _ = _merge([span for spans in by_speaker.values() for span in spans])
        tiers.append(_tier(SPEECH_TIER, union))
        xmax = max((e for _, e in union), default=0.0)
        meta = {
            "format": "rttm",
            "speakers": list(by_speaker),
            "channels": tuple(channels.get(file_id, ())),
            "merged": merges,
            "skipped_lines": skipped.get(file_id, 0),
            "recording": file_id,
        }
        result[file_id] = Alignment(tuple(tiers), 0.0, xmax, str(path), meta)
    return result


def write_rttm(
    path: PathLike,
    segments: Iterable[tuple[str, str, float, float]],
    channel: str | int = 1,
) -> None:
    """Write ``(file id, speaker, onset, duration)`` segments as RTTM ``SPEAKER`` lines.

    Times are written with up to 6 decimals (microseconds). Raises `UsageError` for a file id or
    speaker containing whitespace (RTTM fields are whitespace-separated) or a negative time.
    """
    lines = []
    for file_id, speaker, onset, duration in segments:
        for what, value in (("file id", file_id), ("speaker", speaker)):
            if not value or any(c.isspace() for c in str(value)):
                raise UsageError(f"RTTM {what} {value!r} is empty or contains whitespace")
        if not (onset >= 0 and duration >= 0):
            raise UsageError(f"RTTM segment {file_id}/{speaker}: onset {onset} and duration {duration} must be >= 0")
        lines.append(
            f"SPEAKER {file_id} {channel} {_fmt(onset)} {_fmt(duration)} <NA> <NA> {speaker} <NA> <NA>\n"
        )
    Path(path).write_text("".join(lines), encoding="utf-8")


def _fmt(value: float) -> str:
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def is_rttm(path: PathLike, fmt: str = "auto") -> bool:
    """Whether ``align`` should read ``path`` with `read_rttm`: ``fmt == "rttm"``, or ``"auto"``
    and a ``.rttm`` extension (any case)."""
    return fmt == "rttm" or (fmt == "auto" and os.fspath(path).lower().endswith(".rttm"))
