"""`anchorprep align`: keyword or speech-onset anchors from alignments (TextGrid, MFA csv/json, Kaldi CTM,
RTTM, lhotse), each read through `anchorprep.sources.alignments.formats`."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from anchorprep.anchors import SPEECH_ONSET
from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.rows import AnchorEvent, Labelling, utterance_extent
from anchorprep.pipeline.runner import ItemFailure, stage
from anchorprep.sources.alignments.formats import utterance_alignment
from anchorprep.sources.alignments.keywords import find_phrase, select_word_tier, speech_run_starts

EDGES = ("end", "start", "centre")
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
            raise UsageError("give at least one of `keywords`, or `speech_onsets`")
        if self.keywords and self.speech_onsets:
            raise UsageError("`keywords` and `speech_onsets` are separate runs (merge them with `anchorprep merge`)")
        if self.edge not in EDGES:
            raise UsageError(f"`edge` must be one of {', '.join(EDGES)}")
        if self.level not in LEVELS:
            raise UsageError(f"`level` must be one of {', '.join(LEVELS)}")


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

    def _alignment(self, item: dict):
        """The item's alignment, and whether its times are utterance-relative already."""
        path = item.get("alignment_path") or ""
        if not path:
            raise InputError("no alignment_path for this item")
        options = self.options
        key = item.get("alignment_key") or item.get("recording_id") or item["utt_id"]
        return utterance_alignment(path, key, options.alignment_format, encoding=options.encoding,
                                   level=options.level, segments=options.segments, lhotse_unit=options.lhotse_unit)

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
