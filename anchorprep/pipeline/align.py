"""`anchorprep align`: keyword anchors from forced alignments (TextGrid, MFA csv/json, Kaldi CTM)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from anchorprep.anchors import SPEECH_ONSET
from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.inputs import read_wav_scp
from anchorprep.pipeline.rows import AnchorEvent, Labelling, utterance_extent
from anchorprep.pipeline.runner import ItemFailure, stage
from anchorprep.sources.alignment import SILENCE_LABELS, find_phrase, read_alignment, select_word_tier
from anchorprep.sources.ctm import ctm_to_utterances, read_ctm, read_segments
from anchorprep.sources.lhotse_manifest import is_lhotse_manifest, read_lhotse
from anchorprep.sources.rttm import is_rttm, read_rttm

EDGES = ("end", "start", "centre")


def speech_run_starts(tier, min_pause_s: float = 0.0) -> list[float]:
    """Starts of speech runs on a tier: non-silence intervals after at least ``min_pause_s`` of
    silence (or at the start). `<unk>`/`spn` count as speech."""
    starts, last_end = [], None
    for interval in sorted(tier.intervals, key=lambda iv: iv.start):
        if interval.label.strip().casefold() in SILENCE_LABELS:
            continue
        if last_end is None or interval.start - last_end >= min_pause_s and interval.start > last_end:
            starts.append(interval.start)
        last_end = interval.end if last_end is None else max(last_end, interval.end)
    return starts
LEVELS = ("words", "phones")


@dataclass(frozen=True)
class AlignOptions:
    """How keywords are found in an alignment."""

    keywords: tuple[str, ...] = ()
    edge: str = "end"
    tier: str | None = None
    speaker: str | None = None
    level: str = "words"
    regex: bool = False
    require_keyword: bool = False
    alignment_format: str = "auto"
    encoding: str = "utf-8"
    segments: str | None = None
    speech_onsets: bool = False
    min_pause_s: float = 0.0
    lhotse_unit: str = "auto"

    def __post_init__(self) -> None:
        if not self.keywords and not self.speech_onsets:
            raise UsageError("give at least one --keyword, or --speech-onsets")
        if self.keywords and self.speech_onsets:
            raise UsageError("--keyword and --speech-onsets are separate runs (merge them with `anchorprep merge`)")
        if self.edge not in EDGES:
            raise UsageError(f"--edge must be one of {', '.join(EDGES)}")
        if self.level not in LEVELS:
            raise UsageError(f"--level must be one of {', '.join(LEVELS)}")


@lru_cache(maxsize=4)
def _ctm_utterances(path: str, encoding: str, level: str, segments: str | None) -> tuple[dict, dict]:
    """A whole CTM parsed once per worker (it usually covers many utterances).

    Returns ``(alignments, errors)`` keyed by utterance id: a bad line fails only its own
    utterance (or recording, with segments), not every item of the file.
    """
    errors: dict[str, InputError] = {}
    by_file = read_ctm(path, encoding=encoding, level=level, errors=errors)
    if segments is None:
        return by_file, errors
    segment_errors: dict[str, InputError] = {}
    table = read_segments(segments, errors=segment_errors)
    utterances = ctm_to_utterances(by_file, table, errors=segment_errors)
    for utt, segment in table.items():
        if segment.recording in errors and utt not in utterances:
            segment_errors.setdefault(utt, errors[segment.recording])
    return utterances, segment_errors


@lru_cache(maxsize=4)
def _lhotse_utterances(path: str, unit: str) -> tuple[dict, dict]:
    errors: dict[str, InputError] = {}
    return read_lhotse(path, unit=unit, errors=errors), errors


@lru_cache(maxsize=4)
def _rttm_recordings(path: str, encoding: str) -> tuple[dict, dict]:
    errors: dict[str, InputError] = {}
    return read_rttm(path, encoding=encoding, errors=errors), errors


@lru_cache(maxsize=64)
def _is_lhotse(path: str, fmt: str) -> bool:
    return is_lhotse_manifest(path, fmt)


def _is_ctm(path: str, fmt: str) -> bool:
    return fmt == "ctm" or (fmt == "auto" and path.lower().endswith(".ctm"))


@dataclass(frozen=True)
class AlignJob:
    """Turns one manifest item (utt_id, audio_path, alignment_path, ...) into a shard row."""

    labelling: Labelling
    options: AlignOptions
    command: str = field(default="align")

    def settings(self) -> dict:
        options = asdict(self.options)
        options["keywords"] = list(options["keywords"])
        return {**self.labelling.settings(), "source": "alignment", "align": options}

    def _multi_utterance(self, path: str) -> tuple[dict, dict, bool] | None:
        """(alignments, errors, utterance-relative) for files that hold many utterances."""
        options = self.options
        if _is_lhotse(path, options.alignment_format):
            return (*_lhotse_utterances(path, options.lhotse_unit), True)
        if is_rttm(path, options.alignment_format):
            return (*_rttm_recordings(path, options.encoding), False)
        if _is_ctm(path, options.alignment_format):
            return (*_ctm_utterances(path, options.encoding, options.level, options.segments), True)
        return None

    def _alignment(self, item: dict):
        """The item's alignment, and whether its times are utterance-relative already."""
        path = item.get("alignment_path") or ""
        if not path:
            raise InputError("no alignment_path for this item")
        multi = self._multi_utterance(path)
        if multi is None:
            return read_alignment(path, format=self.options.alignment_format), False
        alignments, errors, utterance_relative = multi
        key = item.get("alignment_key") or item.get("recording_id") or item["utt_id"]
        if key in errors:
            raise errors[key]
        if key not in alignments:
            raise InputError(f"{key!r} is not in this alignment file", path)
        return alignments[key], utterance_relative

    def process(self, item: dict) -> tuple[dict, Counter]:
        options = self.options
        with stage("read_alignment", item.get("alignment_path")):
            alignment, utterance_relative = self._alignment(item)
        with stage("read_audio", item.get("audio_path")):
            extent = utterance_extent(item, self.labelling.grid, fallback_duration_s=alignment.xmax)
        with stage("find_keyword", item.get("alignment_path")):
            tier = select_word_tier(alignment, tier=options.tier, speaker=options.speaker, level=options.level)
            offset = 0.0 if utterance_relative else extent.start_s
            if options.speech_onsets:
                found = [(t, SPEECH_ONSET) for t in speech_run_starts(tier, options.min_pause_s)]
            else:
                found = [(match.time, keyword) for keyword in options.keywords
                         for match in find_phrase(tier, keyword, edge=options.edge, regex=options.regex)]
            events = [AnchorEvent(t - offset, label, "alignment") for t, label in found if extent.contains(t - offset)]
        if options.require_keyword and not events:
            wanted = "speech" if options.speech_onsets else f"any of the keywords {list(options.keywords)}"
            raise ItemFailure("find_keyword", f"no {wanted} on tier {tier.name!r}",
                              item.get("alignment_path"))
        with stage("label", item.get("alignment_path")):
            row, stats = self.labelling.build_row(item, extent, events)
        overrun = (alignment.xmax - offset) - extent.duration_s
        if item.get("audio_path") and overrun > self.labelling.grid.frame_shift_ms / 1000.0:
            stats.update(alignment_overruns_audio=1)
        return row, stats


def ctm_items(ctm: Path, segments: Path | None = None, wav_scp: Path | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Items for a Kaldi-style run without a manifest: one per utterance of the CTM (or segments).

    With ``segments``, the CTM's file ids are recordings and each segment is an item (its
    ``start_s``/``duration_s`` come from the segments file); ``wav_scp`` maps recording (or
    utterance) ids to audio files (plain paths only: piped commands are refused).
    """
    audio = read_wav_scp(wav_scp) if wav_scp else {}
    if segments is not None:
        try:
            table = read_segments(str(segments))
        except InputError as exc:
            raise UsageError(str(exc)) from None
        # A Kaldi end of -1 means "to the end of the recording": leave duration_s empty.
        rows = [{"utt_id": utt, "audio_path": audio.get(seg.recording, ""), "alignment_path": str(ctm),
                 "start_s": repr(seg.start), "duration_s": repr(seg.end - seg.start) if seg.end != float("inf") else ""}
                for utt, seg in table.items()]
    else:
        try:
            errors: dict[str, InputError] = {}
            # Utterances with bad lines stay items: they end as errors.jsonl lines, not silently lost.
            ids = sorted(set(read_ctm(str(ctm), encoding=encoding, errors=errors)) | set(errors))
        except InputError as exc:
            raise UsageError(str(exc)) from None
        rows = [{"utt_id": utt, "audio_path": audio.get(utt, ""), "alignment_path": str(ctm)} for utt in ids]
    if not rows:
        raise UsageError(f"{ctm}: no utterances found")
    return pd.DataFrame(rows, dtype=str)
