"""Streaming-detector evaluation (docs/FORMAT.md, Evaluation): latency, false alarms per hour, FRR at FA/h, AUC.

Inputs are per-frame score traces (one score per *model* frame, e.g. the keyword posterior),
either a list of 1-D arrays or a padded ``(B, T)`` array with ``lengths`` (numpy or torch), plus
each utterance's anchor times in seconds from its start (a shard's ``anchor_times_s``). An
utterance with at least one anchor is a *positive*; every anchor is an *event*. An utterance
without anchors is a *negative*. Frame times come from the `FrameGrid` (a frame's end time).

A frame *fires* when its score is ``>= threshold``.

* **Detection and latency** (`detect`): event ``k`` is searched for from the first frame ending
  at or after ``anchor_k - tolerance_s`` up to the start of the next anchor's region (and, with
  ``max_latency_s``, no later than ``anchor_k + max_latency_s``). Latency is the end time of the
  first firing frame minus the anchor time (``>= -tolerance_s``); no firing frame means a false
  reject. FRR counts events, not utterances.
* **False alarms** (`alarm_frames`, `count_false_alarms`): on negatives only. A rising edge
  (score reaches the threshold from below) is an alarm unless it comes less than ``debounce_s``
  after the utterance's previous counted alarm. FA/h divides by the hours of negative audio.
* **AUC** (`roc_auc`, `utterance_auc`): positives vs negatives by utterance maximum score, ties
  counted one half (as sklearn's ``roc_auc_score``).
* **DET / FRR at FA/h** (`det_curve`, `frr_at_fa_per_hour`): sweep thresholds; the operating
  point for a target is the lowest swept threshold whose FA/h is ``<=`` the target.
* `evaluate` computes all of it and returns an `EvalReport`.
* `evaluate_run` reads a scores file (Parquet or JSONL: ``utt_id`` + per-frame ``scores``) and
  evaluates it against a run's anchors (``anchorprep evaluate``; see `anchorprep.metrics.run_scores`).

numpy/scipy only; torch tensors are accepted and converted.
"""

from anchorprep.metrics.alarms import AlarmCounter, alarm_frames, audio_hours, count_false_alarms
from anchorprep.metrics.auc import roc_auc, utterance_auc
from anchorprep.metrics.det import DetCurve, DetPoint, det_curve, frr_at_fa_per_hour
from anchorprep.metrics.detection import Detections, Events, LatencyStats, detect
from anchorprep.metrics.evaluate import (
    DEFAULT_FA_PER_HOUR_TARGETS,
    EvalReport,
    OperatingPoint,
    evaluate,
)
from anchorprep.metrics.inputs import Traces
from anchorprep.metrics.run_scores import RunEvaluation, ScoreFile, UtteranceProblem, evaluate_run, read_scores

__all__ = [
    "DEFAULT_FA_PER_HOUR_TARGETS",
    "AlarmCounter",
    "DetCurve",
    "DetPoint",
    "Detections",
    "EvalReport",
    "Events",
    "LatencyStats",
    "OperatingPoint",
    "RunEvaluation",
    "ScoreFile",
    "Traces",
    "UtteranceProblem",
    "alarm_frames",
    "audio_hours",
    "count_false_alarms",
    "det_curve",
    "detect",
    "evaluate",
    "evaluate_run",
    "frr_at_fa_per_hour",
    "read_scores",
    "roc_auc",
    "utterance_auc",
]
