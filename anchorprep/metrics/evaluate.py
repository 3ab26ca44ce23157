"""`evaluate`: every evaluation number for one set of score traces, in one report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics.alarms import AlarmCounter, audio_hours
from anchorprep.metrics.auc import roc_auc
from anchorprep.metrics.det import (
    DEFAULT_NUM_THRESHOLDS,
    DetCurve,
    candidate_thresholds,
    curve_from_parts,
)
from anchorprep.metrics.detection import Events, LatencyStats, detect_events
from anchorprep.metrics.inputs import Traces, anchor_lists, as_numpy, durations_or_none

DEFAULT_FA_PER_HOUR_TARGETS = (0.5, 1.0, 5.0)

_NAN = float("nan")


@dataclass(frozen=True)
class OperatingPoint:
    """Everything measured at one threshold.

    ``target_fa_per_hour`` is the FA/h target that chose the threshold (None for a threshold
    given explicitly). When no swept threshold meets the target, ``threshold`` and the rates are
    NaN and the counts None.
    """

    threshold: float
    target_fa_per_hour: float | None
    fa_per_hour: float
    false_alarms: int | None
    frr: float
    false_rejects: int | None
    latency: LatencyStats


@dataclass(frozen=True)
class EvalReport:
    """The evaluation summary: AUC, operating points, latency, counts and the DET curve.

    ``operating`` is the point at the ``threshold`` given to `evaluate`, else the point of the
    first FA/h target. ``at_targets`` holds one point per FA/h target, in the order given.
    """

    auc: float
    operating: OperatingPoint
    at_targets: tuple[OperatingPoint, ...]
    num_utterances: int
    num_positive: int
    num_negative: int
    num_events: int
    negative_hours: float
    tolerance_s: float
    debounce_s: float
    max_latency_s: float | None
    det: DetCurve

    def to_dict(self, include_det: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None); the DET curve only when ``include_det``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "det":
                out[f.name] = asdict(value) if isinstance(value, OperatingPoint) else value
        out["at_targets"] = [asdict(p) for p in self.at_targets]
        if include_det:
            out["det"] = {
                "thresholds": self.det.thresholds.tolist(),
                "fa_per_hour": self.det.fa_per_hour.tolist(),
                "frr": self.det.frr.tolist(),
                "false_alarms": self.det.false_alarms.tolist(),
            }
        return _json_ready(out)


def evaluate(
    scores: Any,
    anchor_times: Any,
    grid: FrameGrid | None = None,
    *,
    lengths: Any = None,
    durations_s: Any = None,
    threshold: float | None = None,
    fa_per_hour_targets: tuple[float, ...] = DEFAULT_FA_PER_HOUR_TARGETS,
    tolerance_s: float = 0.2,
    debounce_s: float = 1.0,
    max_latency_s: float | None = None,
    thresholds: Any = None,
    num_thresholds: int | None = DEFAULT_NUM_THRESHOLDS,
) -> EvalReport:
    """Evaluate per-frame detector scores against anchors (docs/FORMAT.md, Evaluation).

    ``scores``: a list of 1-D per-frame score traces (numpy or torch, variable lengths) or a padded
    ``(B, T)`` array with ``lengths``. ``anchor_times``: per utterance, its anchor times in
    seconds from the utterance start (a shard's ``anchor_times_s`` column); an utterance with
    anchors is a positive and each anchor an event, one without is a negative. ``durations_s``:
    per-utterance audio durations (a shard's ``duration_s``) for the hours of negative audio;
    default: each trace's last frame end time. ``grid`` defaults to ``FrameGrid()``.

    The operating threshold is ``threshold`` if given, else the one chosen for the first entry of
    ``fa_per_hour_targets`` (the lowest swept threshold with FA/h ``<=`` target). ``thresholds`` /
    ``num_thresholds`` control the sweep (see `anchorprep.metrics.det`).
    """
    grid = FrameGrid() if grid is None else grid
    targets = tuple(float(t) for t in fa_per_hour_targets)
    if threshold is None and not targets:
        raise UsageError("give a threshold or at least one FA/h target")
    if threshold is not None and math.isnan(threshold):
        raise UsageError("threshold is NaN")
    traces = Traces.from_scores(scores, lengths)
    anchors = anchor_lists(anchor_times, len(traces))
    positive = np.array([a.size > 0 for a in anchors], dtype=bool)
    events = Events.build(traces, anchors, grid, tolerance_s, max_latency_s)
    negatives = traces.select(~positive)
    durations = durations_or_none(durations_s, len(traces))
    hours = audio_hours(negatives, grid, None if durations is None else durations[~positive])
    counter = AlarmCounter.build(negatives, grid, debounce_s)
    if thresholds is None:
        sweep = candidate_thresholds(traces, events, ~positive, num_thresholds)
    else:
        sweep = np.atleast_1d(as_numpy(thresholds))
        if sweep.size == 0 or np.any(np.isnan(sweep)):
            raise UsageError("thresholds must be a non-empty list of numbers")
    curve = curve_from_parts(traces, events, counter, hours, sweep)

    def at(theta: float, target: float | None) -> OperatingPoint:
        found = detect_events(traces, events, grid, theta)
        alarms = counter.count(theta)
        return OperatingPoint(
            threshold=float(theta),
            target_fa_per_hour=target,
            fa_per_hour=alarms / hours if hours > 0 else _NAN,
            false_alarms=alarms,
            frr=found.frr,
            false_rejects=found.false_rejects,
            latency=found.latency(),
        )

    def for_target(target: float) -> OperatingPoint:
        point = curve.at_fa_per_hour(target)
        return _unreachable(target) if point is None else at(point.threshold, target)

    at_targets = tuple(for_target(t) for t in targets)
    return EvalReport(
        auc=roc_auc(positive, traces.utterance_max()),
        operating=at(float(threshold), None) if threshold is not None else at_targets[0],
        at_targets=at_targets,
        num_utterances=len(traces),
        num_positive=int(np.count_nonzero(positive)),
        num_negative=int(np.count_nonzero(~positive)),
        num_events=len(events),
        negative_hours=hours,
        tolerance_s=float(tolerance_s),
        debounce_s=float(debounce_s),
        max_latency_s=max_latency_s,
        det=curve,
    )


def _unreachable(target: float) -> OperatingPoint:
    """Placeholder point for a target no swept threshold meets (or no negative audio)."""
    nan_latency = LatencyStats(mean=_NAN, p50=_NAN, p90=_NAN, count=0)
    return OperatingPoint(
        threshold=_NAN,
        target_fa_per_hour=target,
        fa_per_hour=_NAN,
        false_alarms=None,
        frr=_NAN,
        false_rejects=None,
        latency=nan_latency,
    )


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value
