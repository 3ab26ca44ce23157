"""From an utterance's extent and its anchor events to one shard row (shared by every source)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from anchorprep.anchors import TargetWindow, label_map, row_labels
from anchorprep.errors import InputError, UsageError
from anchorprep.grid import ANCHOR_RULES, FrameGrid
from anchorprep.sources.audio import DEFAULT_TOLERANCE_S, audio_info


#: Most model frames one item may have: 24 h at the default 10 ms shift. Labelling an item
#: takes about 22 bytes per frame (190 MB here); a longer one is refused for itself (cut it
#: into segments with ``start_s``/``duration_s``) instead of exhausting memory for the run.
MAX_ITEM_FRAMES = 8_640_000


def check_item_frames(grid: FrameGrid, grid_samples: int) -> int:
    """The item's model frames; `InputError` beyond `MAX_ITEM_FRAMES`."""
    num_frames = grid.num_frames(grid_samples)
    if num_frames > MAX_ITEM_FRAMES:
        hours = grid_samples / grid.sample_rate / 3600
        raise InputError(f"utterance is too long: {num_frames} frames ({hours:.1f} h) > {MAX_ITEM_FRAMES} per item; "
                         "cut it into segments with start_s/duration_s")
    return num_frames


@dataclass(frozen=True)
class AnchorEvent:
    """An anchor before it is placed on the grid: a time (utterance seconds), label and source."""

    time_s: float
    label: str
    source: str


@dataclass(frozen=True)
class Extent:
    """Where an utterance lies and how many grid samples it has."""

    start_s: float
    duration_s: float
    sample_rate: int
    grid_samples: int

    def contains(self, time_s: float) -> bool:
        return 0.0 <= time_s <= self.duration_s


def item_float(item: dict, key: str, default: float | None = None) -> float | None:
    """A float from a manifest cell ("" means absent); InputError on anything unparsable."""
    raw = item.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        if isinstance(raw, str) and raw.strip() == "":  # (float() refuses every blank string)
            return default
        raise InputError(f"column {key} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise InputError(f"column {key} is not finite: {raw!r}")
    return value


def utterance_extent(item: dict, grid: FrameGrid, fallback_duration_s: float | None = None) -> Extent:
    """Duration and grid sample count of an item: from the audio header when there is audio.

    ``start_s``/``duration_s`` cut a segment out of a longer recording; without audio the
    duration comes from ``duration_s`` or ``fallback_duration_s`` (e.g. the alignment's xmax).
    """
    start = item_float(item, "start_s", 0.0)
    duration = item_float(item, "duration_s")
    if start < 0:
        raise InputError(f"start_s is negative ({start})")
    if duration is not None and duration <= 0:
        raise InputError(f"duration_s must be positive, got {duration}")
    audio_path = item.get("audio_path") or ""
    if audio_path:
        info = audio_info(audio_path)
        if info.num_samples == 0:
            raise InputError("audio file holds no samples", audio_path)
        first = int(round(start * info.sample_rate))
        if first >= info.num_samples:
            raise InputError(f"segment starts at {start:.3f} s, past the end of the audio ({info.duration_s:.3f} s)", audio_path)
        available = info.num_samples - first
        samples = available if duration is None else int(round(duration * info.sample_rate))
        if samples > available + int(DEFAULT_TOLERANCE_S * info.sample_rate):
            raise InputError(
                f"segment {start:.3f}+{duration:.3f} s runs past the end of the audio ({info.duration_s:.3f} s)", audio_path
            )
        samples = min(samples, available)
        check_item_frames(grid, grid.resampled_length(samples, info.sample_rate))
        return Extent(start, samples / info.sample_rate, info.sample_rate, grid.resampled_length(samples, info.sample_rate))
    if duration is None:
        if fallback_duration_s is None:
            raise InputError("no audio_path and no duration_s: cannot tell how long the utterance is")
        duration = fallback_duration_s - start
        if duration <= 0:
            raise InputError(f"start_s {start} lies past the end of the alignment ({fallback_duration_s} s)")
    samples = grid.num_samples(duration)
    if samples > MAX_ITEM_FRAMES:  # (never more frames than samples)
        check_item_frames(grid, samples)
    return Extent(start, duration, grid.sample_rate, samples)


@dataclass(frozen=True)
class Labelling:
    """The frame grid, anchor rule, positive window and classes shared by every source."""

    grid: FrameGrid
    window: TargetWindow
    labels: tuple[str, ...]
    anchor_rule: str = "causal"

    def __post_init__(self) -> None:
        if self.anchor_rule not in ANCHOR_RULES:
            raise UsageError(f"`anchor_rule` must be one of {', '.join(ANCHOR_RULES)}, got {self.anchor_rule!r}")
        label_map(list(self.labels))  # validates uniqueness

    @property
    def label_ids(self) -> dict[str, int]:
        return dict(self._label_ids)

    @cached_property
    def _label_ids(self) -> dict[str, int]:
        """The label map, built once per `Labelling` (not per row)."""
        return label_map(list(self.labels))

    def settings(self) -> dict:
        return {
            "grid": self.grid.to_dict(),
            "anchor_rule": self.anchor_rule,
            "targets": {"positive_window": [self.window.lo, self.window.hi], "guard": self.window.guard,
                        "ignore_index": -100, "no_anchor_distance": 32767},
            "label_map": self.label_ids,
        }

    def build_row(self, item: dict, extent: Extent, events: list[AnchorEvent],
                  targets: np.ndarray | None = None, used: list[AnchorEvent] | None = None) -> tuple[dict, Counter]:
        """One shard row and its stat counters.

        Every event is listed in the row's anchor columns; distances and window targets come from
        ``used`` (default: all events), so a multi-source row can keep anchors its distance
        ignores. ``targets`` replaces the window targets (e.g. per-frame VAD decisions).
        """
        grid = self.grid
        num_frames = grid.num_frames(extent.grid_samples)
        if num_frames > MAX_ITEM_FRAMES:
            check_item_frames(grid, extent.grid_samples)  # raises
        if num_frames == 0:
            raise InputError(
                f"utterance is shorter than one frame ({extent.grid_samples} samples at {grid.sample_rate} Hz "
                f"< {grid.length * grid.subsampling} needed)"
            )
        window = self.window if targets is None else None
        if not events:
            times, frames, labels, sources = _NO_TIMES, _NO_FRAMES32, [], []
            stats = _counter(utterances=1, negatives=1)
            distance, window_targets = row_labels(_NO_FRAMES, (), num_frames, window)
        else:
            if len(events) == 1:
                event = events[0]
                time_list, labels, sources = [event.time_s], [event.label], [event.source]
            else:
                events = sorted(events, key=_event_order)
                time_list = [e.time_s for e in events]
                labels, sources = [e.label for e in events], [e.source for e in events]
            ids = self._label_ids
            times = np.array(time_list, dtype=np.float64)
            frame_list, after, before = grid.time_to_frame_list(time_list, num_frames, self.anchor_rule)
            frames = np.array(frame_list, dtype=np.int32)
            stats = _counter(utterances=1, anchors=len(events), anchors_clipped_after_end=after,
                             anchors_clipped_before_start=before)
            for source in sources:
                key = _SOURCE_KEYS.get(source) or _source_key(source)
                stats[key] = stats.get(key, 0) + 1
            if used is None:  # every event counts (align, vad)
                any_used, used_frames = True, frame_list
                classes = [ids[label] for label in labels]
            else:
                used_set = set(used)
                is_used = np.array([e in used_set for e in events], dtype=bool)
                any_used, used_frames = bool(is_used.any()), np.array(frame_list, dtype=np.int64)[is_used]
                classes = [ids[e.label] for e, keep in zip(events, is_used) if keep]
            stats["positives" if any_used else "negatives"] = 1
            distance, window_targets = row_labels(used_frames, classes, num_frames, window)
        if targets is None:
            targets = window_targets  # int16 already
        elif len(targets) != num_frames:
            raise InputError(f"per-frame targets have {len(targets)} frames, the grid has {num_frames}")
        else:
            targets = np.asarray(targets, dtype=np.int16)
        row = {
            "utt_id": str(item["utt_id"]),
            "audio_path": item.get("audio_path") or None,
            "start_s": extent.start_s,
            "duration_s": extent.duration_s,
            "sample_rate": extent.sample_rate,
            "num_frames": num_frames,
            "anchor_times_s": times,
            "anchor_frames": frames,
            "anchor_labels": labels,
            "anchor_sources": sources,
            "distance": distance,
            "target": targets,
        }
        return row, stats


def _event_order(event: AnchorEvent) -> tuple[float, str, str]:
    return (event.time_s, event.source, event.label)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


_NO_FRAMES = _read_only(np.zeros(0, dtype=np.int64))
_NO_FRAMES32 = _read_only(np.zeros(0, dtype=np.int32))
_NO_TIMES = _read_only(np.zeros(0, dtype=np.float64))
_SOURCE_KEYS: dict[str, str] = {}  # source -> its stats key


def _source_key(source: str) -> str:
    if len(_SOURCE_KEYS) >= 1024:
        _SOURCE_KEYS.clear()
    key = _SOURCE_KEYS[source] = f"anchors_from_{source}"
    return key


def _counter(**counts: int) -> Counter:
    """``Counter(**counts)`` without `Counter.update`'s Python-level loop."""
    stats = Counter.__new__(Counter)
    dict.update(stats, counts)
    return stats
