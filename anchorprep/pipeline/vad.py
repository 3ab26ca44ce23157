"""`anchorprep vad`: speech-onset anchors (and optionally offsets) from a voice activity detector."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from anchorprep.anchors import SPEECH_OFFSET as OFFSET
from anchorprep.anchors import SPEECH_ONSET as ONSET
from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.rows import AnchorEvent, Labelling, item_float, utterance_extent
from anchorprep.pipeline.runner import stage
from anchorprep.sources.vad import VadSettings, speech_targets, vad_file

TARGET_MODES = ("window", "vad")
ONSET_MODES = ("all", "first")


def vad_labels(offsets: bool) -> tuple[str, ...]:
    return (ONSET, OFFSET) if offsets else (ONSET,)


@dataclass(frozen=True)
class VadOptions:
    settings: VadSettings = field(default_factory=VadSettings)
    channel: int | str = "mix"
    offsets: bool = False
    onsets: str = "all"
    targets: str = "window"

    def __post_init__(self) -> None:
        if self.targets not in TARGET_MODES:
            raise UsageError(f"`targets` must be one of {', '.join(TARGET_MODES)}")
        if self.onsets not in ONSET_MODES:
            raise UsageError(f"`onsets` must be one of {', '.join(ONSET_MODES)}")


@dataclass(frozen=True)
class VadJob:
    """Speech onsets of each item's audio (segment); optional search region per item.

    An item may carry ``search_start_s`` / ``search_end_s`` (utterance seconds): only onsets inside
    that region count, e.g. the first onset after a wake word (`--anchors-from` fills them in
    from an earlier run's anchors).
    """

    labelling: Labelling
    options: VadOptions
    command: str = "vad"

    def settings(self) -> dict:
        settings = self.labelling.settings()
        if self.options.targets == "vad":
            settings["targets"] = {"mode": "vad", "classes": {"0": "non-speech", "1": "speech"},
                                   "rule": "frame centre inside a smoothed speech segment"}
        return {**settings, "source": "vad",
                "vad": {**self.options.settings.to_dict(), "channel": self.options.channel,
                        "offsets": self.options.offsets, "onsets": self.options.onsets}}

    def process(self, item: dict) -> tuple[dict, Counter]:
        grid = self.labelling.grid
        with stage("read_audio", item.get("audio_path")):
            if not item.get("audio_path"):
                raise InputError("no audio_path for this item")
            extent = utterance_extent(item, grid)
            search_start = item_float(item, "search_start_s", 0.0)
            search_end = item_float(item, "search_end_s", extent.duration_s)
        with stage("vad", item.get("audio_path")):
            result = vad_file(item["audio_path"], self.options.settings, extent.start_s, extent.duration_s,
                              self.options.channel)
        segments = [(a, b) for a, b in result.segments if search_start <= a < search_end]
        if self.options.onsets == "first":
            segments = segments[:1]
        events = [AnchorEvent(onset, ONSET, "vad") for onset, _ in segments]
        if self.options.offsets:
            events += [AnchorEvent(offset, OFFSET, "vad") for _, offset in segments]
        targets = None
        if self.options.targets == "vad":
            targets = speech_targets(result, grid.frame_centre_time(np.arange(grid.num_frames(extent.grid_samples))))
        with stage("label", item.get("audio_path")):
            row, stats = self.labelling.build_row(item, extent, events, targets)
        if not result.segments:
            stats.update(utterances_without_speech=1)
        return row, stats
