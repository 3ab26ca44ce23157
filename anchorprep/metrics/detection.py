"""Detections and latency on positive utterances (docs/FORMAT.md, Evaluation).

Every anchor is one *event*. Event ``k`` of an utterance is searched for in a region of frames:

* it opens at the first frame whose end time is ``>= anchor_k - tolerance_s`` (the causal rule
  applied to ``anchor_k - tolerance_s``);
* it closes where the region of the next anchor with a later opening frame opens (or at the end of
  the trace), so one firing is never credited to two anchors that are more than a frame apart;
  anchors that open on the same frame share one region;
* with ``max_latency_s`` it also closes after the last frame whose end time is
  ``<= anchor_k + max_latency_s``.

The event is detected at the first frame of its region whose score is ``>= threshold``; its
latency is that frame's end time minus the anchor time, so it lies in ``[-tolerance_s, ...)``. A
score that is already at or above the threshold when the region opens counts as firing on the
region's first frame. An event whose region holds no such frame (or is empty, e.g. an anchor
later than the last frame plus the tolerance) is a false reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics.inputs import Traces, anchor_lists, seconds_to_samples


@dataclass(frozen=True)
class Events:
    """Every anchor of every utterance with its search region as ``[start, stop)`` in ``Traces.flat``.

    Events are ordered by utterance, then by anchor time.
    """

    utterance: np.ndarray
    anchor_time_s: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    def __len__(self) -> int:
        return int(self.utterance.shape[0])

    @classmethod
    def build(
        cls,
        traces: Traces,
        anchors: list[np.ndarray],
        grid: FrameGrid,
        tolerance_s: float,
        max_latency_s: float | None,
    ) -> Events:
        """Search regions for ``anchors`` (one sorted array of times per utterance)."""
        _check_window(tolerance_s, max_latency_s)
        counts = np.array([a.shape[0] for a in anchors], dtype=np.int64)
        utt = np.repeat(np.arange(len(anchors)), counts)
        times = np.concatenate(anchors) if anchors else np.zeros(0)
        num_frames = traces.lengths[utt]
        start = _first_frame_ending_at_or_after(grid, times - tolerance_s, num_frames)
        stop = _next_region_start(utt, start, num_frames)
        if max_latency_s is not None:
            latest = _first_frame_ending_at_or_after(grid, times + max_latency_s, num_frames, strict=True)
            stop = np.minimum(stop, latest)
        base = traces.offsets[utt]
        return cls(utterance=utt, anchor_time_s=times, start=base + start, stop=base + stop)

    def max_scores(self, traces: Traces) -> np.ndarray:
        """Highest score inside each event's region; ``-inf`` for an empty region.

        An event is detected at threshold ``θ`` exactly when this is ``>= θ``.
        """
        out = np.full(len(self), -np.inf)
        nonempty = self.stop > self.start
        if not np.any(nonempty):
            return out
        # reduceat over interleaved (start, stop) pairs: even slots hold max(flat[start:stop]).
        padded = np.append(traces.flat, -np.inf)
        bounds = np.stack([self.start[nonempty], self.stop[nonempty]], axis=1).reshape(-1)
        out[nonempty] = np.maximum.reduceat(padded, bounds)[0::2]
        return out


@dataclass(frozen=True)
class LatencyStats:
    """Latency (seconds) over the detected events: mean, median, 90th percentile and count."""

    mean: float
    p50: float
    p90: float
    count: int

    @classmethod
    def of(cls, latencies_s: np.ndarray) -> LatencyStats:
        """Statistics of the finite values in ``latencies_s`` (NaN when there are none)."""
        lat = latencies_s[np.isfinite(latencies_s)]
        if lat.size == 0:
            return cls(mean=float("nan"), p50=float("nan"), p90=float("nan"), count=0)
        p50, p90 = np.percentile(lat, [50.0, 90.0])
        return cls(mean=float(lat.mean()), p50=float(p50), p90=float(p90), count=int(lat.size))


@dataclass(frozen=True)
class Detections:
    """Per-event outcome at one threshold (arrays aligned with `Events`).

    ``fire_frame`` is the model frame (within its utterance) that fired, ``-1`` for a miss;
    ``fire_time_s`` and ``latency_s`` are NaN for a miss.
    """

    threshold: float
    utterance: np.ndarray
    anchor_time_s: np.ndarray
    fire_frame: np.ndarray
    fire_time_s: np.ndarray
    latency_s: np.ndarray

    @property
    def detected(self) -> np.ndarray:
        return self.fire_frame >= 0

    @property
    def num_events(self) -> int:
        return int(self.fire_frame.shape[0])

    @property
    def false_rejects(self) -> int:
        return int(np.count_nonzero(~self.detected))

    @property
    def frr(self) -> float:
        """False reject rate over events; NaN without events."""
        return self.false_rejects / self.num_events if self.num_events else float("nan")

    def latency(self) -> LatencyStats:
        return LatencyStats.of(self.latency_s)


def detect_events(traces: Traces, events: Events, grid: FrameGrid, threshold: float) -> Detections:
    """First frame at or above ``threshold`` inside each event's region."""
    above = np.flatnonzero(traces.flat >= threshold)
    pos = np.searchsorted(above, events.start, side="left")
    first = above[np.minimum(pos, max(above.size - 1, 0))] if above.size else np.zeros_like(pos)
    hit = (pos < above.size) & (first < events.stop)
    frame = np.where(hit, first - traces.offsets[events.utterance], -1)
    fire_time = np.where(hit, grid.frame_end_time(np.maximum(frame, 0)), np.nan)
    return Detections(
        threshold=float(threshold),
        utterance=events.utterance,
        anchor_time_s=events.anchor_time_s,
        fire_frame=frame,
        fire_time_s=fire_time,
        latency_s=fire_time - events.anchor_time_s,
    )


def detect(
    scores: Any,
    anchor_times: Any,
    grid: FrameGrid,
    threshold: float,
    *,
    lengths: Any = None,
    tolerance_s: float = 0.2,
    max_latency_s: float | None = None,
) -> Detections:
    """Detect every anchor (event) of every utterance at ``threshold``.

    ``scores``: list of 1-D per-frame score traces, or a padded ``(B, T)`` array with ``lengths``.
    ``anchor_times``: one sequence of anchor times (seconds from the utterance start) per
    utterance; utterances without anchors contribute no events. See the module docstring for the
    search region of each event.
    """
    traces = Traces.from_scores(scores, lengths)
    events = Events.build(traces, anchor_lists(anchor_times, len(traces)), grid, tolerance_s, max_latency_s)
    return detect_events(traces, events, grid, threshold)


def _check_window(tolerance_s: float, max_latency_s: float | None) -> None:
    if not np.isfinite(tolerance_s) or tolerance_s < 0:
        raise UsageError(f"`tolerance_s` must be finite and >= 0, got {tolerance_s}")
    if max_latency_s is not None and not (np.isfinite(max_latency_s) and max_latency_s >= -tolerance_s):
        raise UsageError(f"`max_latency_s` must be finite and >= -`tolerance_s`, got {max_latency_s}")


def _first_frame_ending_at_or_after(
    grid: FrameGrid, times_s: np.ndarray, num_frames: np.ndarray, strict: bool = False
) -> np.ndarray:
    """Smallest model frame whose end time is ``>= t`` (``> t`` when ``strict``), clipped to [0, T].

    ``T`` (one past the last frame) means no frame qualifies.
    """
    pos = seconds_to_samples(times_s, grid.sample_rate)
    first_end = float(grid.frame_end_samples(0))
    step = grid.shift * grid.subsampling
    ratio = (pos - first_end) / step
    raw = np.floor(ratio) + 1 if strict else np.ceil(ratio)
    return np.clip(raw, 0, num_frames).astype(np.int64)


def _next_region_start(utt: np.ndarray, start: np.ndarray, num_frames: np.ndarray) -> np.ndarray:
    """For each event, the first later region start in the same utterance, else the trace length."""
    if utt.size == 0:
        return start.copy()
    # Events are sorted by (utterance, start): one searchsorted over a combined key finds the next
    # strictly larger start.
    key = utt * (int(num_frames.max()) + 2) + start
    nxt = np.searchsorted(key, key, side="right")
    valid = nxt < utt.size
    nxt_c = np.minimum(nxt, utt.size - 1)
    same_utt = valid & (utt[nxt_c] == utt)
    return np.where(same_utt, start[nxt_c], num_frames)
