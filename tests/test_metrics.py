"""anchorprep.metrics: latency, false alarms per hour, AUC, FRR at FA/h (docs/FORMAT.md, Evaluation).

Most cases are hand-built score traces whose answer can be read off by eye; property tests check
the vectorised code against plain loops.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics import (
    alarm_frames,
    count_false_alarms,
    det_curve,
    detect,
    evaluate,
    frr_at_fa_per_hour,
    roc_auc,
    utterance_auc,
)

GRID = FrameGrid()  # 16 kHz, 10 ms shift, 25 ms window: frame j ends at 0.025 + 0.01 j s
SUB4 = FrameGrid(subsampling=4)  # model frame j ends at 0.055 + 0.04 j s


def trace(num_frames: int, high: dict[int, float] | None = None, spans: tuple = ()) -> np.ndarray:
    """Zeros with ``high[frame] = score`` and ``spans`` of ``(first, last_inclusive, score)``."""
    out = np.zeros(num_frames)
    for frame, value in (high or {}).items():
        out[frame] = value
    for first, last, value in spans:
        out[first : last + 1] = value
    return out


# --------------------------------------------------------------------------------------------
# Detection and latency


def test_latency_is_three_shifts_when_firing_three_frames_after_a_frame_aligned_anchor() -> None:
    anchor = float(GRID.frame_end_time(10))  # the anchor *is* frame 10's end (0.125 s)
    found = detect([trace(40, spans=((13, 20, 0.9),))], [[anchor]], GRID, 0.5, tolerance_s=0.0)
    assert found.fire_frame.tolist() == [13]
    assert found.latency_s[0] == pytest.approx(3 * 0.010)
    assert found.false_rejects == 0


def test_latency_includes_the_gap_from_a_mid_frame_anchor_to_its_frame_end() -> None:
    # 0.100 s falls inside frame 8 (ends 0.105 s): 3 frames later is frame 11, ending 0.135 s.
    found = detect([trace(40, spans=((11, 15, 0.9),))], [[0.100]], GRID, 0.5, tolerance_s=0.0)
    assert found.fire_frame.tolist() == [11]
    assert found.latency_s[0] == pytest.approx(0.035)


def test_firing_within_the_tolerance_gives_negative_latency() -> None:
    anchor = float(GRID.frame_end_time(20))  # 0.225 s; tolerance 50 ms opens the search at frame 15
    found = detect([trace(40, {17: 0.9})], [[anchor]], GRID, 0.5, tolerance_s=0.05)
    assert found.fire_frame.tolist() == [17]
    assert found.latency_s[0] == pytest.approx(-0.03)


def test_firing_before_anchor_minus_tolerance_is_not_a_detection() -> None:
    anchor = float(GRID.frame_end_time(20))
    early_only = trace(40, {10: 0.9})
    early_and_late = trace(40, {10: 0.9, 25: 0.9})
    found = detect([early_only, early_and_late], [[anchor], [anchor]], GRID, 0.5, tolerance_s=0.05)
    assert found.detected.tolist() == [False, True]
    assert found.fire_frame.tolist() == [-1, 25]
    assert found.latency_s[1] == pytest.approx(0.05)


def test_frame_ending_exactly_at_anchor_minus_tolerance_is_inside_the_window() -> None:
    anchor = float(GRID.frame_end_time(20))
    found = detect([trace(40, {15: 0.9})], [[anchor]], GRID, 0.5, tolerance_s=0.05)
    assert found.latency_s[0] == pytest.approx(-0.05)


def test_a_score_already_high_when_the_window_opens_fires_on_its_first_frame() -> None:
    anchor = float(GRID.frame_end_time(20))
    found = detect([trace(40, spans=((5, 30, 0.9),))], [[anchor]], GRID, 0.5, tolerance_s=0.05)
    assert found.fire_frame.tolist() == [15]
    assert found.latency_s[0] == pytest.approx(-0.05)


def test_a_positive_that_never_fires_is_a_false_reject() -> None:
    found = detect([trace(40, {20: 0.4})], [[0.2]], GRID, 0.5)
    assert found.false_rejects == 1 and found.frr == 1.0
    assert np.isnan(found.latency_s[0]) and np.isnan(found.fire_time_s[0])
    stats = found.latency()
    assert stats.count == 0 and np.isnan(stats.mean)


def test_threshold_is_inclusive() -> None:
    found = detect([trace(40, {25: 0.5})], [[0.2]], GRID, 0.5)
    assert found.fire_frame.tolist() == [25]


def test_each_anchor_is_an_event_searched_up_to_the_next_anchors_window() -> None:
    a1, a2 = float(GRID.frame_end_time(10)), float(GRID.frame_end_time(40))
    # One firing after the second anchor: it belongs to the second event only.
    late = trace(80, {42: 0.9})
    # One firing per anchor.
    both = trace(80, {12: 0.9, 41: 0.9})
    found = detect([late, both], [[a2, a1], [a1, a2]], GRID, 0.5, tolerance_s=0.0)
    assert found.utterance.tolist() == [0, 0, 1, 1]
    assert found.anchor_time_s.tolist() == [a1, a2, a1, a2]  # sorted within an utterance
    assert found.fire_frame.tolist() == [-1, 42, 12, 41]
    assert found.latency_s[1:] == pytest.approx([0.02, 0.02, 0.01])
    assert found.frr == pytest.approx(1 / 4)


def test_max_latency_bounds_the_search() -> None:
    anchor = float(GRID.frame_end_time(10))
    late = trace(80, {40: 0.9})  # 0.30 s after the anchor
    assert detect([late], [[anchor]], GRID, 0.5).detected.tolist() == [True]
    assert detect([late], [[anchor]], GRID, 0.5, max_latency_s=0.29).detected.tolist() == [False]
    assert detect([late], [[anchor]], GRID, 0.5, max_latency_s=0.30).detected.tolist() == [True]


def test_an_anchor_past_the_last_frame_cannot_be_detected() -> None:
    found = detect([trace(10, spans=((0, 9, 0.9),))], [[5.0]], GRID, 0.5)
    assert found.false_rejects == 1


@pytest.mark.parametrize("grid", [SUB4, FrameGrid(subsampling=3, snip_edges=False)], ids=str)
def test_latency_on_subsampled_grids_is_counted_in_model_frames(grid: FrameGrid) -> None:
    anchor = float(grid.frame_end_time(5))
    found = detect([trace(30, spans=((8, 12, 0.9),))], [[anchor]], grid, 0.5, tolerance_s=0.0)
    step_s = grid.frame_shift_ms * grid.subsampling / 1000.0
    assert found.fire_frame.tolist() == [8]
    assert found.latency_s[0] == pytest.approx(3 * step_s)
    assert found.fire_time_s[0] == pytest.approx(float(grid.frame_end_time(8)))


def test_subsampled_tolerance_window_opens_on_the_model_frame_grid() -> None:
    # Model frames end at 55, 95, 135, 175 ms...; anchor 175 ms - 50 ms = 125 ms -> frame 2 (135 ms).
    found = detect([trace(30, {1: 0.9, 2: 0.9})], [[0.175]], SUB4, 0.5, tolerance_s=0.05)
    assert found.fire_frame.tolist() == [2]
    assert found.latency_s[0] == pytest.approx(-0.04)


def _reference_detect(traces, anchors, grid, threshold, tolerance_s):
    """Plain loops: the search regions as the docstring words them."""
    frames, latencies = [], []
    for scores, times in zip(traces, anchors):
        ends = grid.frame_end_samples(np.arange(len(scores)))
        times = sorted(times)

        def opening(t: float) -> int:
            bound = round((t - tolerance_s) * grid.sample_rate, 6)
            return next((j for j in range(len(scores)) if ends[j] >= bound), len(scores))

        starts = [opening(t) for t in times]
        for k, t in enumerate(times):
            stop = next((s for s in starts[k + 1 :] if s > starts[k]), len(scores))
            fire = next((j for j in range(starts[k], stop) if scores[j] >= threshold), -1)
            frames.append(fire)
            latencies.append(float(grid.frame_end_time(fire)) - t if fire >= 0 else np.nan)
    return frames, latencies


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    grid=st.sampled_from([GRID, SUB4, FrameGrid(snip_edges=False)]),
    tolerance_s=st.sampled_from([0.0, 0.02, 0.1]),
    threshold=st.sampled_from([0.25, 0.5, 0.75]),
)
def test_detect_matches_a_plain_loop(data, grid, tolerance_s, threshold) -> None:
    num = data.draw(st.integers(1, 4))
    traces, anchors = [], []
    for _ in range(num):
        length = data.draw(st.integers(0, 30))
        levels = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
        traces.append(np.array(data.draw(st.lists(levels, min_size=length, max_size=length))))
        anchor_ms = st.integers(0, 140).map(lambda cs: cs / 100.0)
        anchors.append(data.draw(st.lists(anchor_ms, max_size=3)))
    found = detect(traces, anchors, grid, threshold, tolerance_s=tolerance_s)
    frames, latencies = _reference_detect(traces, anchors, grid, threshold, tolerance_s)
    assert found.fire_frame.tolist() == frames
    np.testing.assert_allclose(found.latency_s, latencies, atol=1e-12)


def test_padded_scores_with_lengths_and_torch_tensors_give_the_same_detections() -> None:
    torch = pytest.importorskip("torch")
    a = trace(30, {12: 0.9})
    b = trace(20, {3: 0.9})
    anchors = [[0.1], [0.05]]
    padded = np.full((2, 30), 0.99)  # padding above the threshold must be ignored
    padded[0, :30], padded[1, :20] = a, b
    want = detect([a, b], anchors, GRID, 0.5)
    inputs = [
        (padded, [30, 20]),
        (torch.tensor(padded, requires_grad=True), torch.tensor([30, 20])),
        ([torch.tensor(a), torch.tensor(b)], None),
    ]
    for scores, lengths in inputs:
        got = detect(scores, anchors, GRID, 0.5, lengths=lengths)
        assert got.fire_frame.tolist() == want.fire_frame.tolist()


def test_bad_inputs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="anchor lists"):
        detect([trace(5)], [[0.1], []], GRID, 0.5)
    with pytest.raises(UsageError, match="class column"):
        detect([np.zeros((5, 2))], [[0.1]], GRID, 0.5)
    with pytest.raises(UsageError, match="NaN"):
        detect([np.array([0.1, np.nan])], [[0.1]], GRID, 0.5)
    with pytest.raises(UsageError, match="lengths"):
        detect(np.zeros((2, 5)), [[], []], GRID, 0.5, lengths=[5, 6])


# --------------------------------------------------------------------------------------------
# False alarms


def test_debounce_collapses_a_burst_into_one_alarm() -> None:
    burst = trace(500, {100: 0.9, 103: 0.9, 110: 0.9, 150: 0.9})  # within 0.5 s of frame 100
    assert alarm_frames(burst, GRID, 0.5, debounce_s=1.0).tolist() == [100]
    assert count_false_alarms([burst], GRID, 0.5, debounce_s=1.0).tolist() == [1]
    assert count_false_alarms([burst], GRID, 0.5, debounce_s=0.0).tolist() == [4]


def test_bursts_further_apart_than_the_debounce_are_two_alarms() -> None:
    bursts = trace(500, {100: 0.9, 102: 0.9, 250: 0.9, 251: 0.8})
    assert alarm_frames(bursts, GRID, 0.5, debounce_s=1.0).tolist() == [100, 250]
    assert count_false_alarms([bursts], GRID, 0.5, debounce_s=1.0).tolist() == [2]


def test_debounce_boundary_an_edge_exactly_debounce_later_counts() -> None:
    exact = trace(500, {100: 0.9, 200: 0.9})  # frame ends exactly 1.00 s apart
    short = trace(500, {100: 0.9, 199: 0.9})
    assert count_false_alarms([exact], GRID, 0.5, debounce_s=1.0).tolist() == [2]
    assert count_false_alarms([short], GRID, 0.5, debounce_s=1.0).tolist() == [1]


def test_staying_above_the_threshold_is_one_alarm_however_long() -> None:
    plateau = trace(1000, spans=((100, 900, 0.9),))
    assert alarm_frames(plateau, GRID, 0.5, debounce_s=1.0).tolist() == [100]
    # A dip inside the debounce does not re-arm the plateau after it.
    dip = trace(1000, spans=((100, 120, 0.9), (150, 900, 0.9)))
    assert alarm_frames(dip, GRID, 0.5, debounce_s=1.0).tolist() == [100]
    assert alarm_frames(dip, GRID, 0.5, debounce_s=0.2).tolist() == [100, 150]


def test_a_trace_starting_above_threshold_alarms_on_frame_zero_and_utterances_do_not_interact() -> None:
    first = trace(50, {49: 0.9})
    second = trace(50, {0: 0.9})
    assert alarm_frames(second, GRID, 0.5).tolist() == [0]
    assert count_false_alarms([first, second], GRID, 0.5, debounce_s=10.0).tolist() == [2]


def test_alarm_counts_per_threshold() -> None:
    neg = trace(1000, {100: 0.3, 300: 0.6, 500: 0.9})
    counts = count_false_alarms([neg], GRID, [0.1, 0.3, 0.31, 0.6, 0.9, 0.95], debounce_s=1.0)
    assert counts.tolist() == [3, 3, 2, 2, 1, 0]


@settings(max_examples=60, deadline=None)
@given(
    traces=st.lists(
        st.lists(st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), max_size=300).map(np.array),
        min_size=0,
        max_size=4,
    ),
    debounce_s=st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0]),
    grid=st.sampled_from([GRID, SUB4]),
)
def test_vectorised_alarm_counts_match_the_per_trace_loop(traces, debounce_s, grid) -> None:
    thresholds = np.array([0.1, 0.2, 0.5, 0.6, 0.9, 1.0, 1.1])
    want = [sum(alarm_frames(t, grid, th, debounce_s=debounce_s).size for t in traces) for th in thresholds]
    got = count_false_alarms(traces, grid, thresholds, debounce_s=debounce_s)
    assert got.tolist() == want


def test_false_alarms_per_hour_is_alarms_over_hours_of_negative_audio() -> None:
    neg = trace(1000, {100: 0.9, 400: 0.9, 700: 0.9})
    pos = trace(1000, {100: 0.9, 400: 0.9, 700: 0.9})  # alarms on positives are not false alarms
    durations = [1800.0, 1800.0, 60.0]
    report = evaluate([neg, neg, pos], [[], [], [1.0]], GRID, threshold=0.5, durations_s=durations)
    assert report.negative_hours == pytest.approx(1.0)
    assert report.operating.false_alarms == 6
    assert report.operating.fa_per_hour == pytest.approx(6.0)
    # Without durations, a negative lasts until its last frame's end: 0.025 + 9.99 s.
    report = evaluate([neg], [[]], GRID, threshold=0.5)
    assert report.negative_hours == pytest.approx(10.015 / 3600)
    assert report.operating.fa_per_hour == pytest.approx(3 / (10.015 / 3600))


# --------------------------------------------------------------------------------------------
# AUC


def test_auc_perfect_chance_and_inverted() -> None:
    labels = [1, 1, 0, 0]
    assert roc_auc(labels, [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc(labels, [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_auc_counts_ties_as_one_half() -> None:
    # Pairs (pos, neg): (.5,.5) tie, (.5,.2) win, (.8,.5) win, (.8,.2) win -> 3.5 / 4.
    assert roc_auc([1, 1, 0, 0], [0.5, 0.8, 0.5, 0.2]) == pytest.approx(0.875)


def test_auc_is_nan_with_one_class_only() -> None:
    assert np.isnan(roc_auc([1, 1], [0.1, 0.2]))
    assert np.isnan(roc_auc([0, 0], [0.1, 0.2]))


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_brute_force_pairwise_count(pairs) -> None:
    labels = np.array([p for p, _ in pairs])
    scores = np.array([s for _, s in pairs], dtype=float)
    pos, neg = scores[labels], scores[~labels]
    if pos.size == 0 or neg.size == 0:
        assert np.isnan(roc_auc(labels, scores))
        return
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert roc_auc(labels, scores) == pytest.approx(wins / (pos.size * neg.size))


def test_utterance_auc_ranks_by_the_maximum_score_of_each_utterance() -> None:
    scores = [trace(20, {5: 0.7}), trace(20, {15: 0.9}), trace(20, {2: 0.8}), trace(0)]
    # positives max .7 and .9; negatives max .8 and an empty trace (-inf): 3 of 4 pairs won.
    assert utterance_auc(scores, [[0.1], [0.1], [], None]) == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------
# DET curve and FRR at FA/h


def _tiny_set():
    """Four positives peaking at .9 .8 .6 .3 just after their anchor; a 1 h negative with .7 and .5."""
    anchor = float(GRID.frame_end_time(10))
    positives = [trace(50, {12: p}) for p in (0.9, 0.8, 0.6, 0.3)]
    negative = trace(1000, {100: 0.7, 600: 0.5})
    scores = positives + [negative]
    anchors = [[anchor]] * 4 + [[]]
    durations = [1.0] * 4 + [3600.0]
    return scores, anchors, durations


@pytest.mark.parametrize(
    ("target", "threshold", "frr", "alarms"),
    [(0.0, 0.8, 0.5, 0), (1.0, 0.6, 0.25, 1), (2.0, 0.3, 0.0, 2), (1.5, 0.6, 0.25, 1)],
)
def test_frr_at_fa_per_hour_on_a_tiny_set(target, threshold, frr, alarms) -> None:
    scores, anchors, durations = _tiny_set()
    curve = det_curve(scores, anchors, GRID, durations_s=durations)
    point = frr_at_fa_per_hour(curve, target)
    assert point is not None
    assert (point.threshold, point.frr, point.false_alarms) == (threshold, frr, alarms)
    assert point.fa_per_hour == pytest.approx(alarms)


def test_det_curve_spans_from_everything_fires_to_nothing_fires() -> None:
    scores, anchors, durations = _tiny_set()
    curve = det_curve(scores, anchors, GRID, durations_s=durations)
    # Swept: the positives' peaks, the negative's maximum, and one value above every score.
    assert curve.thresholds.tolist()[:-1] == [0.3, 0.6, 0.7, 0.8, 0.9]
    assert curve.thresholds[-1] > 0.9
    assert curve.frr.tolist() == [0.0, 0.25, 0.5, 0.5, 0.75, 1.0]
    assert curve.false_alarms.tolist() == [2, 1, 1, 0, 0, 0]
    assert np.all(np.diff(curve.frr) >= 0)


def test_det_curve_agrees_with_detect_and_alarm_counts_at_every_threshold() -> None:
    rng = np.random.default_rng(0)
    scores = [rng.random(rng.integers(50, 300)) ** 3 for _ in range(30)]
    anchors = [[float(rng.uniform(0.2, 0.5))] if i % 2 else [] for i in range(30)]
    curve = det_curve(scores, anchors, GRID, debounce_s=0.3, tolerance_s=0.05)
    negatives = [s for s, a in zip(scores, anchors) if not a]
    for i in range(0, len(curve), 7):
        theta = float(curve.thresholds[i])
        assert curve.frr[i] == detect(scores, anchors, GRID, theta, tolerance_s=0.05).frr
        assert curve.false_alarms[i] == count_false_alarms(negatives, GRID, theta, debounce_s=0.3)[0]


def test_num_thresholds_thins_the_sweep_and_explicit_thresholds_are_used_as_given() -> None:
    rng = np.random.default_rng(1)
    scores = [rng.random(100) for _ in range(40)]
    anchors = [[0.5] if i % 2 else [] for i in range(40)]
    full = det_curve(scores, anchors, GRID, num_thresholds=None)
    thin = det_curve(scores, anchors, GRID, num_thresholds=10)
    assert len(full) == 41  # 40 distinct maxima + one above everything
    assert len(thin) == 10
    assert thin.thresholds[0] == full.thresholds[0] and thin.thresholds[-1] == full.thresholds[-1]
    explicit = det_curve(scores, anchors, GRID, thresholds=[0.9, 0.5])
    assert explicit.thresholds.tolist() == [0.5, 0.9]


def test_no_negative_audio_means_no_fa_operating_point() -> None:
    curve = det_curve([trace(30, {12: 0.9})], [[0.1]], GRID)
    assert np.isnan(curve.fa_per_hour).all()
    assert frr_at_fa_per_hour(curve, 1.0) is None


# --------------------------------------------------------------------------------------------
# evaluate


def test_evaluate_reports_auc_frr_latency_and_counts_at_the_first_target() -> None:
    scores, anchors, durations = _tiny_set()
    report = evaluate(scores, anchors, GRID, durations_s=durations, fa_per_hour_targets=(1.0, 0.0))
    counts = (report.num_utterances, report.num_positive, report.num_negative, report.num_events)
    assert counts == (5, 4, 1, 4)
    assert report.auc == pytest.approx(0.5)  # the negative's max .7 beats the .6 and .3 positives
    op = report.operating
    assert op == report.at_targets[0]
    assert (op.threshold, op.target_fa_per_hour, op.fa_per_hour) == (0.6, 1.0, 1.0)
    assert (op.frr, op.false_rejects, op.false_alarms) == (0.25, 1, 1)
    assert op.latency.count == 3
    assert op.latency.mean == pytest.approx(0.02)  # all fire on frame 12, anchor at frame 10's end
    assert op.latency.p50 == pytest.approx(0.02) and op.latency.p90 == pytest.approx(0.02)
    assert report.at_targets[1].threshold == 0.8
    json.dumps(report.to_dict(include_det=True), allow_nan=False)


def test_evaluate_latency_percentiles_at_an_explicit_threshold() -> None:
    anchor = float(GRID.frame_end_time(10))
    delays = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # frames after the anchor frame
    scores = [trace(60, {10 + d: 0.9}) for d in delays] + [trace(100)]
    report = evaluate(scores, [[anchor]] * 10 + [[]], GRID, threshold=0.5)
    lat = report.operating.latency
    assert report.operating.target_fa_per_hour is None
    assert lat.count == 10
    assert lat.mean == pytest.approx(0.045)
    assert lat.p50 == pytest.approx(0.045)
    assert lat.p90 == pytest.approx(0.0810)  # linear interpolation between 0.08 and 0.09


def test_evaluate_accepts_padded_scores_and_matches_the_list_form() -> None:
    scores, anchors, durations = _tiny_set()
    width = max(len(s) for s in scores)
    padded = np.zeros((len(scores), width))
    for i, s in enumerate(scores):
        padded[i, : len(s)] = s
    lengths = [len(s) for s in scores]
    a = evaluate(scores, anchors, GRID, durations_s=durations)
    b = evaluate(padded, anchors, GRID, lengths=lengths, durations_s=durations)
    assert a.to_dict() == b.to_dict()


def test_evaluate_without_negatives_leaves_fa_based_numbers_undefined() -> None:
    report = evaluate([trace(30, {12: 0.9})], [[0.1]], GRID)
    assert np.isnan(report.auc)
    assert np.isnan(report.operating.threshold) and report.operating.false_alarms is None
    assert json.loads(json.dumps(report.to_dict()))["operating"]["threshold"] is None


def test_evaluate_needs_a_threshold_or_a_target() -> None:
    with pytest.raises(UsageError):
        evaluate([trace(10)], [[]], GRID, fa_per_hour_targets=())


def test_importing_metrics_does_not_import_torch() -> None:
    code = "import sys, anchorprep.metrics; sys.exit('torch' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo, check=False).returncode == 0
