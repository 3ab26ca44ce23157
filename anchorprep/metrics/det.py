"""DET curve (false alarms per hour vs false reject rate) and FRR at a fixed FA/h (docs/FORMAT.md, Evaluation).

Events (anchors of positive utterances) are detected at threshold ``θ`` iff the maximum score in
their search region is ``>= θ`` (see `anchorprep.metrics.detection`); false alarms are counted on
the negatives (utterances without anchors) as in `anchorprep.metrics.alarms`.

Thresholds swept by default: every distinct event-region maximum and negative-utterance maximum,
plus one value just above the highest score (nothing fires: FA/h 0, FRR 1). FRR only changes at
event maxima, so this set finds the best FRR at a FA/h target whenever alarms do not increase
with the threshold (debouncing can make them do so in rare cases). When there are more than
``num_thresholds`` candidates, ``num_thresholds - 1`` of them are kept, evenly spaced in rank,
plus the top one; pass ``num_thresholds=None`` for all, or explicit ``thresholds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics.alarms import AlarmCounter, audio_hours
from anchorprep.metrics.detection import Events
from anchorprep.metrics.inputs import Traces, anchor_lists, as_numpy, durations_or_none

DEFAULT_NUM_THRESHOLDS = 1000

# Relative slack when comparing alarms / hours with a target, so that 3 alarms in 3 h meets 1/h
# even when the hours carry rounding error.
_TARGET_RTOL = 1e-9


@dataclass(frozen=True)
class DetPoint:
    """One operating point of a DET curve."""

    threshold: float
    fa_per_hour: float
    frr: float
    false_alarms: int


@dataclass(frozen=True)
class DetCurve:
    """FA/h and FRR at each threshold (ascending thresholds)."""

    thresholds: np.ndarray
    false_alarms: np.ndarray
    fa_per_hour: np.ndarray
    frr: np.ndarray
    negative_hours: float
    num_events: int

    def __len__(self) -> int:
        return int(self.thresholds.shape[0])

    def point(self, i: int) -> DetPoint:
        return DetPoint(
            threshold=float(self.thresholds[i]),
            fa_per_hour=float(self.fa_per_hour[i]),
            frr=float(self.frr[i]),
            false_alarms=int(self.false_alarms[i]),
        )

    def at_fa_per_hour(self, target: float) -> DetPoint | None:
        """The lowest threshold whose FA/h is ``<= target``, i.e. the best FRR meeting the target.

        ``None`` when no swept threshold meets it (or there is no negative audio to measure
        FA/h on).
        """
        if not np.isfinite(target) or target < 0:
            raise UsageError(f"FA/h target must be finite and >= 0, got {target}")
        if self.negative_hours <= 0:
            return None
        allowed = target * self.negative_hours * (1.0 + _TARGET_RTOL)
        ok = np.flatnonzero(self.false_alarms <= allowed)
        return self.point(int(ok[0])) if ok.size else None


def curve_from_parts(
    traces: Traces,
    events: Events,
    counter: AlarmCounter,
    negative_hours: float,
    thresholds: np.ndarray,
) -> DetCurve:
    """DET curve over ``thresholds`` for already prepared events and negative alarm counter."""
    thresholds = np.unique(thresholds)
    maxima = np.sort(events.max_scores(traces))
    missed = np.searchsorted(maxima, thresholds, side="left")  # events with max < θ
    frr = missed / len(events) if len(events) else np.full(thresholds.shape, np.nan)
    alarms = counter.counts(thresholds)
    fa_h = alarms / negative_hours if negative_hours > 0 else np.full(thresholds.shape, np.nan)
    return DetCurve(
        thresholds=thresholds,
        false_alarms=alarms,
        fa_per_hour=fa_h,
        frr=frr,
        negative_hours=negative_hours,
        num_events=len(events),
    )


def candidate_thresholds(
    traces: Traces,
    events: Events,
    negative: np.ndarray,
    num_thresholds: int | None = DEFAULT_NUM_THRESHOLDS,
) -> np.ndarray:
    """Default sweep: distinct event and negative maxima, thinned, plus one above every score."""
    if num_thresholds is not None and num_thresholds < 2:
        raise UsageError(f"`num_thresholds` must be >= 2 (or None for all), got {num_thresholds}")
    values = np.concatenate([events.max_scores(traces), traces.utterance_max()[negative]])
    values = np.unique(values[np.isfinite(values)])
    if num_thresholds is not None and values.size > num_thresholds - 1:
        keep = np.unique(np.round(np.linspace(0, values.size - 1, num_thresholds - 1)).astype(np.int64))
        values = values[keep]
    top = float(traces.flat.max()) if traces.flat.size else 0.0
    return np.append(values, np.nextafter(top, np.inf))


def det_curve(
    scores: Any,
    anchor_times: Any,
    grid: FrameGrid,
    *,
    lengths: Any = None,
    durations_s: Any = None,
    thresholds: Any = None,
    num_thresholds: int | None = DEFAULT_NUM_THRESHOLDS,
    tolerance_s: float = 0.2,
    max_latency_s: float | None = None,
    debounce_s: float = 1.0,
) -> DetCurve:
    """DET curve: FA/h on the negatives and event FRR on the positives, per threshold.

    Utterances with anchors are positives, the rest negatives. ``durations_s`` (all utterances;
    only negatives are used) sets the hours of negative audio; by default each negative lasts
    until its last frame's end time.
    """
    traces = Traces.from_scores(scores, lengths)
    anchors = anchor_lists(anchor_times, len(traces))
    negative = np.array([a.size == 0 for a in anchors], dtype=bool)
    events = Events.build(traces, anchors, grid, tolerance_s, max_latency_s)
    negatives = traces.select(negative)
    durations = durations_or_none(durations_s, len(traces))
    hours = audio_hours(negatives, grid, None if durations is None else durations[negative])
    counter = AlarmCounter.build(negatives, grid, debounce_s)
    if thresholds is None:
        grid_t = candidate_thresholds(traces, events, negative, num_thresholds)
    else:
        grid_t = np.atleast_1d(as_numpy(thresholds))
        if grid_t.size == 0 or np.any(np.isnan(grid_t)):
            raise UsageError("thresholds must be a non-empty list of numbers")
    return curve_from_parts(traces, events, counter, hours, grid_t)


def frr_at_fa_per_hour(curve: DetCurve, target: float) -> DetPoint | None:
    """Best FRR with FA/h ``<= target`` on ``curve`` (see `DetCurve.at_fa_per_hour`)."""
    return curve.at_fa_per_hour(target)
