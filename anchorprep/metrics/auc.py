"""Utterance-level ROC AUC (docs/FORMAT.md, Evaluation): positives vs negatives ranked by their maximum score."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from anchorprep.errors import UsageError
from anchorprep.metrics.inputs import Traces, anchor_lists, as_numpy


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve, ties counted as one half (the same value as sklearn's ``roc_auc_score``).

    Computed from average ranks (Mann-Whitney U). NaN when either class is empty.
    """
    y = as_numpy(labels, dtype=bool).reshape(-1)
    s = as_numpy(scores).reshape(-1)
    if y.shape != s.shape:
        raise UsageError(f"{y.size} labels for {s.size} scores")
    if np.any(np.isnan(s)):
        raise UsageError("scores contain NaN")
    num_pos = int(np.count_nonzero(y))
    num_neg = int(y.size - num_pos)
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    ranks = rankdata(s, method="average")
    u = float(ranks[y].sum()) - num_pos * (num_pos + 1) / 2.0
    return u / (num_pos * num_neg)


def utterance_auc(scores: Any, anchor_times: Any, *, lengths: Any = None) -> float:
    """AUC of the per-utterance maximum score; an utterance is positive iff it has an anchor.

    An empty trace scores ``-inf`` (ranked below everything).
    """
    traces = Traces.from_scores(scores, lengths)
    positive = np.array([a.size > 0 for a in anchor_lists(anchor_times, len(traces))], dtype=bool)
    return roc_auc(positive, traces.utterance_max())
