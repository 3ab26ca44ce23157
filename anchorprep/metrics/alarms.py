"""False alarms on negative utterances, with a debounce window (docs/FORMAT.md, Evaluation).

An *alarm candidate* is a rising edge: a frame whose score is ``>= threshold`` while the previous
frame's score is ``< threshold`` (the first frame of a trace counts as rising when it is at or
above the threshold). A candidate becomes a counted alarm when at least ``debounce_s`` seconds
have passed since the previous *counted* alarm of the same utterance (times are frame end
times); otherwise it is absorbed. So a new alarm needs the score to have dropped below the
threshold *and* the debounce since the last alarm to have passed: a burst collapses into one
alarm, a score that stays above the threshold is one alarm however long it stays, and bursts
whose onsets are ``>= debounce_s`` apart are separate alarms. Each utterance starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics.inputs import Traces, as_numpy, seconds_to_samples


def alarm_frames(trace: Any, grid: FrameGrid, threshold: float, *, debounce_s: float = 1.0) -> np.ndarray:
    """Model frames of one trace that raise a counted alarm (a plain, readable reference)."""
    scores = as_numpy(trace).reshape(-1)
    gap = _debounce_samples(grid, debounce_s)
    ends = grid.frame_end_samples(np.arange(scores.shape[0]))
    above = scores >= threshold
    rising = above & ~np.concatenate([[False], above[:-1]])
    alarms: list[int] = []
    for frame in np.flatnonzero(rising):
        if not alarms or ends[frame] - ends[alarms[-1]] >= gap:
            alarms.append(int(frame))
    return np.asarray(alarms, dtype=np.int64)


@dataclass(frozen=True)
class AlarmCounter:
    """Counts alarms over a set of negative traces for many thresholds.

    Built once: only frames whose score rises above the previous frame's can ever be a rising
    edge, so each threshold only scans those.
    """

    prev: np.ndarray
    score: np.ndarray
    time: np.ndarray
    gap: float

    @classmethod
    def build(cls, traces: Traces, grid: FrameGrid, debounce_s: float) -> AlarmCounter:
        gap = _debounce_samples(grid, debounce_s)
        lengths = traces.lengths
        local = np.arange(traces.flat.shape[0]) - np.repeat(traces.offsets[:-1], lengths)
        ends = grid.frame_end_samples(local).astype(np.float64)
        # Shift every utterance onto one time line, further apart than the debounce, so the
        # greedy debounce below never links alarms of different utterances.
        last_end = np.where(lengths > 0, grid.frame_end_samples(np.maximum(lengths - 1, 0)), 0)
        span = last_end + np.ceil(gap) + 1.0
        shift = np.cumsum(span) - span
        time = ends + np.repeat(shift, lengths)
        prev = np.concatenate([[-np.inf], traces.flat[:-1]]) if traces.flat.size else np.zeros(0)
        prev[traces.offsets[:-1][lengths > 0]] = -np.inf
        rising = traces.flat > prev
        return cls(prev=prev[rising], score=traces.flat[rising], time=time[rising], gap=gap)

    def count(self, threshold: float) -> int:
        """Counted alarms at ``threshold``."""
        edges = self.time[(self.prev < threshold) & (self.score >= threshold)]
        return _greedy_debounce_count(edges, self.gap)

    def counts(self, thresholds: np.ndarray) -> np.ndarray:
        """Counted alarms for each threshold."""
        return np.array([self.count(float(t)) for t in np.asarray(thresholds).reshape(-1)], dtype=np.int64)


def count_false_alarms(
    scores: Any,
    grid: FrameGrid,
    thresholds: Any,
    *,
    lengths: Any = None,
    debounce_s: float = 1.0,
) -> np.ndarray:
    """Alarms summed over ``scores`` (all treated as negatives) for each of ``thresholds``.

    ``scores``: list of 1-D traces or a padded ``(B, T)`` array with ``lengths``. Returns an int
    array shaped like ``np.atleast_1d(thresholds)``.
    """
    counter = AlarmCounter.build(Traces.from_scores(scores, lengths), grid, debounce_s)
    return counter.counts(np.atleast_1d(as_numpy(thresholds)))


def audio_hours(traces: Traces, grid: FrameGrid, durations_s: np.ndarray | None = None) -> float:
    """Hours of audio in ``traces``: ``durations_s`` if given, else each trace's last frame end time."""
    if durations_s is not None:
        return float(np.sum(durations_s)) / 3600.0
    lengths = traces.lengths
    ends = grid.frame_end_time(np.maximum(lengths - 1, 0))
    return float(np.sum(np.where(lengths > 0, ends, 0.0))) / 3600.0


def _debounce_samples(grid: FrameGrid, debounce_s: float) -> float:
    if not np.isfinite(debounce_s) or debounce_s < 0:
        raise UsageError(f"`debounce_s` must be finite and >= 0, got {debounce_s}")
    return float(seconds_to_samples(debounce_s, grid.sample_rate))


def _greedy_debounce_count(times: np.ndarray, gap: float) -> int:
    """How many of the sorted ``times`` a refractory period of ``gap`` keeps, scanning greedily.

    The kept times form a chain ``0 -> nxt[0] -> ...`` where ``nxt[i]`` is the first time
    ``>= times[i] + gap``. Its length is found by binary lifting (pointer doubling), which is
    vectorised and O(n log n) instead of a Python loop over every edge.
    """
    n = int(times.shape[0])
    if n == 0 or gap <= 0:
        return n
    jump = np.append(np.searchsorted(times, times + gap, side="left"), n)  # node n: past the end
    tables = [jump]
    while (1 << len(tables)) <= n:
        tables.append(tables[-1][tables[-1]])
    node, kept = 0, 1
    for level in range(len(tables) - 1, -1, -1):
        target = int(tables[level][node])
        if target < n:
            node, kept = target, kept + (1 << level)
    return kept
