"""Distances and targets (docs/FORMAT.md): properties checked against a brute-force definition."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorprep.anchors import IGNORE_INDEX, NO_ANCHOR, TargetWindow, anchor_distances, frame_targets, label_map
from anchorprep.errors import UsageError


def brute_force_distance(anchors, t):
    # Nearest anchor, ties to the earlier one.
    best = min(sorted(anchors), key=lambda a: (abs(t - a), a))
    return t - best


anchor_sets = st.integers(1, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), max_size=6, unique=True))
)


@settings(max_examples=300, deadline=None)
@given(anchor_sets)
def test_distance_is_signed_offset_to_nearest_anchor(case):
    num_frames, anchors = case
    distance = anchor_distances(np.array(anchors, dtype=np.int64), num_frames)
    assert distance.dtype == np.int16 and len(distance) == num_frames
    if not anchors:
        assert (distance == NO_ANCHOR).all()
        return
    assert all(distance[a] == 0 for a in anchors)
    assert distance.tolist() == [brute_force_distance(anchors, t) for t in range(num_frames)]


@settings(max_examples=300, deadline=None)
@given(anchor_sets, st.integers(-10, 10), st.integers(0, 40), st.integers(0, 5))
def test_targets_are_positive_exactly_inside_the_window(case, lo, span, guard):
    num_frames, anchors = case
    window = TargetWindow(lo, lo + span, guard)
    classes = [1 + i % 3 for i in range(len(anchors))]
    targets = frame_targets(np.array(anchors, dtype=np.int64), classes, num_frames, window)
    distance = anchor_distances(np.array(anchors, dtype=np.int64), num_frames)
    assert targets.dtype == np.int16 and len(targets) == num_frames
    inside = (distance >= window.lo) & (distance <= window.hi) & (np.abs(distance) < NO_ANCHOR)
    assert ((targets > 0) == inside).all()
    in_guard = ~inside & (distance >= window.lo - guard) & (distance <= window.hi + guard) & (np.abs(distance) < NO_ANCHOR)
    assert ((targets == IGNORE_INDEX) == in_guard).all()
    for t in np.flatnonzero(inside):
        nearest = min(sorted(range(len(anchors)), key=lambda i: anchors[i]), key=lambda i: (abs(t - anchors[i]), anchors[i]))
        assert targets[t] == classes[nearest]


def test_distances_saturate_at_int16_limits():
    distance = anchor_distances(np.array([40000]), 40001)
    assert distance[0] == -NO_ANCHOR and distance[-1] == 0
    assert anchor_distances(np.array([0]), 40000)[-1] == NO_ANCHOR


def test_negatives_have_no_anchor_and_background_targets():
    assert (anchor_distances(np.array([], dtype=np.int64), 50) == NO_ANCHOR).all()
    assert (frame_targets([], [], 50, TargetWindow(0, 30, 5)) == 0).all()


def test_label_map_and_window_parsing():
    assert label_map(["hey computer", "stop"]) == {"background": 0, "hey computer": 1, "stop": 2}
    assert TargetWindow.parse("-5:20", guard=3) == TargetWindow(-5, 20, 3)
    with pytest.raises(UsageError):
        TargetWindow.parse("20")
    with pytest.raises(UsageError):
        TargetWindow.parse("5:1")
    with pytest.raises(UsageError):
        label_map(["a", "a"])
