"""`anchorprep align`: keyword or speech-onset anchors from alignments (TextGrid, MFA csv/json, Kaldi CTM,
RTTM, lhotse), each read through `anchorprep.sources.alignments.formats`.

Speakers. `AlignOptions.speaker` is None (the only speaker's tier, or the plain ``words`` tier), a
speaker's name (that speaker in every file), ``"all"`` (every speaker's tier; each anchor's source
is then ``alignment:<speaker>``, or plain ``alignment`` from a file without per-speaker tiers) or
``"column"`` (each item's ``speaker`` manifest column says which: a name, ``all``, or empty for
the default). The speaker travels in ``anchor_sources`` rather than a new column, so the shard
schema (version 1) is unchanged: ``source_kind`` (the part before ``:``) is what `use_source`,
`validate` and `plot` compare.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cached_property
from operator import itemgetter

from anchorprep.anchors import SPEECH_ONSET
from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.rows import AnchorEvent, Extent, Labelling, utterance_extent
from anchorprep.pipeline.runner import ItemFailure, stage_failure
from anchorprep.sources.alignments.formats import utterance_alignment
from anchorprep.sources.alignments.keywords import (
    ALL_SPEAKERS, KeywordSearch, select_word_tier, select_word_tiers, speech_run_starts,
)
from anchorprep.sources.alignments.model import Alignment, Tier

EDGES = ("end", "start", "centre")
LEVELS = ("words", "phones")
SPEAKER_FROM_COLUMN = "column"  # `speaker="column"`: each item's `speaker` manifest column
SOURCE = "alignment"
_SECOND = itemgetter(1)


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

    @cached_property
    def _search(self) -> KeywordSearch:
        """The keyword search, prepared once per job."""
        return KeywordSearch(self.options.keywords, self.options.edge, regex=self.options.regex)

    def _alignment(self, item: dict) -> tuple[Alignment, bool, list[tuple[str | None, Tier]] | None]:
        """The item's alignment, whether its times are utterance-relative already, and the tiers
        `_events` reads (None when they were not chosen while reading: `_tiers` chooses them,
        or fails, at stage find_keyword). Those tiers are validated here (a TextGrid's other
        tiers only for structure), so their damage fails the item at stage read_alignment."""
        path = item.get("alignment_path") or ""
        if not path:
            raise InputError("no alignment_path for this item")
        options = self.options
        key = item.get("alignment_key") or item.get("recording_id") or item["utt_id"]
        chosen: list = []

        def reads(alignment: Alignment) -> list[Tier]:
            tiers = self._tiers(item, alignment)
            chosen[:] = (alignment, tiers)
            return list(map(_SECOND, tiers))

        alignment, utterance_relative = utterance_alignment(
            path, key, options.alignment_format, encoding=options.encoding, level=options.level,
            segments=options.segments, lhotse_unit=options.lhotse_unit, reads=reads)
        return alignment, utterance_relative, chosen[1] if chosen and chosen[0] is alignment else None

    def _tiers(self, item: dict, alignment: Alignment) -> list[tuple[str | None, Tier]]:
        """`select_word_tiers` as (speaker, tier) pairs; one tier with speaker None unless every
        speaker's is asked for (without building a `SpeakerTier` per item)."""
        options = self.options
        speaker = self._speaker(item)
        if speaker == ALL_SPEAKERS and options.tier is None:
            return [(chosen.speaker, chosen.tier) for chosen in select_word_tiers(alignment, speaker=speaker,
                                                                                  level=options.level)]
        return [(None, select_word_tier(alignment, tier=options.tier, speaker=speaker, level=options.level))]

    def _speaker(self, item: dict) -> str | None:
        """The speaker option for this item: the run's, or with "column" the item's `speaker` cell."""
        if self.options.speaker != SPEAKER_FROM_COLUMN:
            return self.options.speaker
        if "speaker" not in item:
            raise InputError("`speaker` is \"column\" but the manifest has no speaker column")
        value = item.get("speaker")
        return (str(value).strip() or None) if value is not None else None

    def process(self, item: dict) -> tuple[dict, Counter]:
        # One try around the item, `current` naming the stage (what `with stage(...)` per stage
        # reported, without its per-item cost).
        current, alignment_path = "read_alignment", item.get("alignment_path")
        try:
            alignment, utterance_relative, tiers = self._alignment(item)
            current = "read_audio"
            extent = utterance_extent(item, self.labelling.grid, fallback_duration_s=alignment.xmax)
            current = "find_keyword"
            if tiers is None:
                tiers = self._tiers(item, alignment)
            offset = 0.0 if utterance_relative else extent.start_s
            events = self._events(tiers, offset, extent)
            if self.options.require_keyword and not events:
                self._no_keyword(tiers, alignment_path)
            current = "label"
            row, stats = self.labelling.build_row(item, extent, events)
        except Exception as exc:  # noqa: BLE001 - see `stage_failure`
            failure = stage_failure(current, exc, item.get("audio_path") if current == "read_audio" else alignment_path)
            if failure is exc:
                raise
            raise failure from exc
        if item.get("audio_path"):
            overrun = (alignment.xmax - offset) - extent.duration_s
            if overrun > self.labelling.grid.frame_shift_ms / 1000.0:
                stats.update(alignment_overruns_audio=1)
        return row, stats

    def _events(self, tiers: list[tuple[str | None, Tier]], offset: float, extent: Extent) -> list[AnchorEvent]:
        """The anchor events on the chosen tiers that fall inside the utterance."""
        options = self.options
        events = []
        for speaker, tier in tiers:
            source = SOURCE if speaker is None else f"{SOURCE}:{speaker}"
            if options.speech_onsets:
                found = [(t, SPEECH_ONSET) for t in speech_run_starts(tier, options.min_pause_s)]
            else:
                found = self._search.times(tier)
            if found:
                events += [AnchorEvent(t - offset, label, source) for t, label in found if extent.contains(t - offset)]
        return events

    def _no_keyword(self, tiers: list[tuple[str | None, Tier]], path: str | None) -> None:
        options = self.options
        wanted = "speech" if options.speech_onsets else f"any of the keywords {list(options.keywords)}"
        names = ", ".join(repr(tier.name) for _, tier in tiers)
        raise ItemFailure("find_keyword", f"no {wanted} on tier{'s' if len(tiers) > 1 else ''} {names}", path)
