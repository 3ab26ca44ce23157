"""`anchorprep accel`: anchors at accelerometer peaks, optionally together with VAD speech onsets."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.rows import AnchorEvent, Labelling, item_float, utterance_extent
from anchorprep.pipeline.runner import stage
from anchorprep.pipeline.vad import ONSET, VadOptions
from anchorprep.sources.accel import UNITS, AccelSettings, detect_peaks, map_to_utterance, read_accel
from anchorprep.sources.vad import vad_file

PEAK = "accel_peak"


@dataclass(frozen=True)
class AccelReadOptions:
    """How sensor files are read (see `anchorprep.sources.accel.read_accel`).

    `units` is the option ("auto", "g", "m/s2"); what auto found per file is counted in the run
    report as ``accel_units_g`` / ``accel_units_m_s2``.
    """

    time_unit: str = "auto"
    rate: float | None = None
    skip_rows: int = 0
    columns: tuple[str | int, ...] | None = None
    units: str = "auto"
    max_gap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise UsageError(f"`units` must be one of {', '.join(UNITS)}; got {self.units!r}")
        if self.columns is not None and len(self.columns) != (3 if self.rate is not None else 4):
            what = "x, y, z (with `rate` there is no time column)" if self.rate is not None else "t, x, y, z"
            raise UsageError(f"`columns` must list {what}; got {list(self.columns)!r}")
        if not (isinstance(self.max_gap_s, (int, float)) and math.isfinite(self.max_gap_s) and self.max_gap_s > 0):
            raise UsageError(f"`max_gap_s` must be a positive number of seconds; got {self.max_gap_s!r}")


@dataclass(frozen=True)
class AccelJob:
    """Peaks of each item's accelerometer recording, mapped onto the utterance's frame grid.

    Clock: ``anchor time = sensor time (from the file's first sample) + offset``, with the offset
    from the item's ``time_offset_s`` column, else ``default_offset_s``. With audio the grid is
    the audio's; without audio it spans the sensor recording. Peaks outside the utterance are
    dropped and counted. With ``vad`` set, the audio's speech onsets are added as a second source
    and ``combine`` decides which anchors the distance uses.
    """

    labelling: Labelling
    settings_: AccelSettings = field(default_factory=AccelSettings)
    read: AccelReadOptions = field(default_factory=AccelReadOptions)
    default_offset_s: float = 0.0
    vad: VadOptions | None = None
    combine: CombineOptions = field(default_factory=CombineOptions)
    command: str = "accel"

    def settings(self) -> dict:
        accel = {**asdict(self.settings_), **asdict(self.read), "default_time_offset_s": self.default_offset_s}
        extra = {} if self.vad is None else {"vad": {**self.vad.settings.to_dict(), "channel": self.vad.channel}}
        return {**self.labelling.settings(), "source": "accel" if self.vad is None else "accel+vad",
                "accel": accel, **extra, "combine": self.combine.settings()}

    def process(self, item: dict) -> tuple[dict, Counter]:
        path = item.get("accel_path") or ""
        with stage("read_accel", path):
            if not path:
                raise InputError("no accel_path for this item")
            recording = read_accel(path, columns=self.read.columns, time_unit=self.read.time_unit,
                                   rate=self.read.rate, skip_rows=self.read.skip_rows, units=self.read.units,
                                   max_gap_s=self.read.max_gap_s)
            offset = item_float(item, "time_offset_s", self.default_offset_s)
        with stage("read_audio", item.get("audio_path")):
            extent = utterance_extent(item, self.labelling.grid, fallback_duration_s=recording.duration_s + offset)
        with stage("detect_peaks", path):
            peaks = detect_peaks(recording, self.settings_)
            times = map_to_utterance(peaks.times_s, offset)
        events = [AnchorEvent(float(t), PEAK, "accel") for t in times if extent.contains(t)]
        stats = Counter({"accel_peaks_outside_utterance": len(times) - len(events),
                         f"accel_units_{recording.units.replace('/', '_')}": 1})
        if self.vad is not None:
            with stage("vad", item.get("audio_path")):
                if not item.get("audio_path"):
                    raise InputError("`vad` needs audio, and this item has no audio_path")
                result = vad_file(item["audio_path"], self.vad.settings, extent.start_s, extent.duration_s, self.vad.channel)
            events += [AnchorEvent(onset, ONSET, "vad") for onset in result.onsets]
        used, agreement = self.combine.select(events)
        with stage("label", path):
            row, row_stats = self.labelling.build_row(item, extent, events, used=used)
        return row, stats + agreement + row_stats
