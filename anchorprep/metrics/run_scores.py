"""Evaluate a detector's scores file against a run: `evaluate_run` (``anchorprep evaluate``).

The scores file holds one row per utterance: ``utt_id`` and ``scores``, the per-frame detector
scores (e.g. the keyword posterior), as

* Parquet (``.parquet``/``.pq``, or a folder of Parquet files): a string ``utt_id`` column and a
  numeric list column ``scores``;
* JSON lines (``.jsonl``/``.ndjson``): one ``{"utt_id": ..., "scores": [...]}`` object per line.

Either may carry a ``frame_shift_ms`` column/key (one value for the whole file) when the scores
are not on the run's model frames; the ``frame_shift_ms`` argument says the same and wins if
both are given (they must agree).

**Frame grid.** By default score ``j`` belongs to the run's model frame ``j`` (its grid and
subsampling), and an utterance must have exactly its row's ``num_frames`` scores. With another
frame shift ``S``: if ``S`` is a whole multiple ``k`` of the run's feature shift, the scores are on
the run's grid with subsampling ``k`` (a model that subsamples the run's features); otherwise on
a grid with shift ``S`` and the run's frame length and edge rule. Either way the utterance must
have exactly the frame count that grid gives for its ``duration_s``.

**Problems** (the policy of ``anchorprep evaluate``):

* an utterance of the run without scores (*missing*; skipped silently with ``allow_missing``,
  e.g. when only a test split was scored), an utterance of the scores file that is not in the
  run (*extra*; the reason names the run's error when the run failed that item), and a trace
  with the wrong number of frames (*wrong_length*) are per-utterance problems: the evaluation
  runs on the other utterances, the problems are listed in the result, and the exit code is 1,
  as for a pipeline with failed items;
* a NaN or infinite score, a duplicate ``utt_id``, an unreadable file and a scores file sharing
  no utterance with the run refuse the call (`UsageError`, exit 2): a number computed around a
  broken model output would mislead.

Anchors and durations come from the run's ``anchor_times_s`` and ``duration_s``; the numbers
are `anchorprep.metrics.evaluate`'s (AUC, FRR and latency at each FA/h target, the DET curve).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.metrics.det import DEFAULT_NUM_THRESHOLDS
from anchorprep.metrics.detection import detect
from anchorprep.metrics.evaluate import DEFAULT_FA_PER_HOUR_TARGETS, EvalReport, evaluate
from anchorprep.shards.run import is_list_column, list_column, open_run
from anchorprep.storage import location, open_input, read_table

SCORES_COLUMN = "scores"
FRAME_SHIFT_COLUMN = "frame_shift_ms"
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PROBLEM_KINDS = ("missing", "extra", "wrong_length")


@dataclass(frozen=True)
class ScoreFile:
    """A scores file as read: one float64 trace per utterance, in file order."""

    path: Path
    utt_ids: tuple[str, ...]
    traces: tuple[np.ndarray, ...]
    frame_shift_ms: float | None = None

    def by_utt(self) -> dict[str, np.ndarray]:
        return dict(zip(self.utt_ids, self.traces))


def read_scores(path: str | os.PathLike) -> ScoreFile:
    """Read a Parquet or JSONL scores file (module docstring); `UsageError` naming what to fix
    for an unknown format, a missing column, an empty row, a duplicate ``utt_id`` or NaN scores."""
    path = location(path)
    if not path.exists():
        raise UsageError(f"`scores` {path}: no such file")
    if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES:
        utt_ids, traces, shifts = _read_parquet(path)
    elif path.suffix.lower() in JSONL_SUFFIXES:
        utt_ids, traces, shifts = _read_jsonl(path)
    else:
        raise UsageError(f"`scores` {path}: give a Parquet (.parquet, .pq) or JSON lines (.jsonl, .ndjson) file")
    seen: set[str] = set()
    for utt in utt_ids:
        if utt in seen:
            raise UsageError(f"`scores` {path}: utt_id {utt!r} appears more than once; keep one trace per utterance")
        seen.add(utt)
    bad = [utt for utt, trace in zip(utt_ids, traces) if not np.all(np.isfinite(trace))]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UsageError(f"`scores` {path}: the scores of {bad[0]!r}{more} contain NaN, null or infinite values; "
                         "fix the model output (no metric is computed around them)")
    distinct = sorted({float(s) for s in shifts if s is not None})
    if len(distinct) > 1:
        raise UsageError(f"`scores` {path}: {FRAME_SHIFT_COLUMN} differs between rows ({distinct}); "
                         "evaluate each frame shift separately")
    return ScoreFile(path, tuple(utt_ids), tuple(traces), distinct[0] if distinct else None)


def _read_parquet(path: Path) -> tuple[list[str], list[np.ndarray], list]:
    import pyarrow.parquet as pq

    try:
        table = read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"`scores` {path}: not a readable Parquet file: {exc}") from None
    for name in ("utt_id", SCORES_COLUMN):
        if name not in table.column_names:
            raise UsageError(f"`scores` {path}: no {name!r} column (it has {', '.join(table.column_names)})")
    column = table.column(SCORES_COLUMN)
    if not is_list_column(column) or not (pa.types.is_integer(column.type.value_type)
                                          or pa.types.is_floating(column.type.value_type)):
        raise UsageError(f"`scores` {path}: {SCORES_COLUMN!r} must be a list of numbers per row, not {column.type}")
    utt_ids = [str(u) if u is not None else "" for u in table.column("utt_id").to_pylist()]
    if column.null_count:
        row = column.is_null().to_pylist().index(True)
        raise UsageError(f"`scores` {path}: {utt_ids[row]!r} has no scores (null)")
    offsets, values = list_column(column)
    values = np.asarray(values, dtype=np.float64)
    traces = [values[offsets[i]:offsets[i + 1]] for i in range(table.num_rows)]
    shifts = table.column(FRAME_SHIFT_COLUMN).to_pylist() if FRAME_SHIFT_COLUMN in table.column_names else []
    return utt_ids, traces, shifts


def _read_jsonl(path: Path) -> tuple[list[str], list[np.ndarray], list]:
    utt_ids, traces, shifts = [], [], []
    with open_input(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                utt, scores = record["utt_id"], record[SCORES_COLUMN]
                if not isinstance(utt, str) or not isinstance(scores, list):
                    raise TypeError("utt_id must be a string and scores a list")
                trace = np.array([np.nan if s is None else s for s in scores], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"`scores` {path} line {number}: expected {{\"utt_id\": str, \"scores\": [numbers]}} "
                                 f"({type(exc).__name__}: {exc})") from None
            utt_ids.append(utt)
            traces.append(trace)
            shifts.append(record.get(FRAME_SHIFT_COLUMN))
    return utt_ids, traces, shifts


@dataclass(frozen=True)
class UtteranceProblem:
    """One utterance left out of the evaluation: ``kind`` is missing, extra or wrong_length."""

    utt_id: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"utt_id": self.utt_id, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class RunEvaluation:
    """`evaluate_run`'s result: the metrics, what was evaluated, and the utterances left out.

    ``latencies_s`` are the per-event latencies at the operating threshold (NaN for a miss),
    for plots; ``to_dict`` is the JSON report (metrics with the DET curve, no per-event arrays).
    """

    run: Path
    scores: Path
    grid: FrameGrid
    utterances_in_run: int
    utterances_in_scores: int
    evaluated: int
    skipped_missing: int
    problems: tuple[UtteranceProblem, ...]
    metrics: EvalReport
    latencies_s: np.ndarray

    @property
    def exit_code(self) -> int:
        """0 when every utterance was evaluated, 1 when some were left out (``problems``)."""
        return 1 if self.problems else 0

    def to_dict(self) -> dict[str, Any]:
        counts = {kind: sum(p.kind == kind for p in self.problems) for kind in PROBLEM_KINDS}
        return {
            "run": str(self.run), "scores": str(self.scores), "grid": self.grid.to_dict(),
            "utterances": {"in_run": self.utterances_in_run, "in_scores": self.utterances_in_scores,
                           "evaluated": self.evaluated, "skipped_missing": self.skipped_missing, **counts},
            "problems": [p.to_dict() for p in self.problems],
            **self.metrics.to_dict(include_det=True),
        }


def scores_grid(run_grid: FrameGrid, frame_shift_ms: float | None) -> FrameGrid:
    """The grid of scores with ``frame_shift_ms`` between frames (the run's model grid for None)."""
    if frame_shift_ms is None:
        return run_grid
    if not math.isfinite(frame_shift_ms) or frame_shift_ms <= 0:
        raise UsageError(f"`frame_shift_ms` must be a positive number of milliseconds; got {frame_shift_ms!r}")
    ratio = frame_shift_ms / run_grid.frame_shift_ms
    if abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1:
        return FrameGrid(run_grid.sample_rate, run_grid.frame_shift_ms, run_grid.frame_length_ms,
                         run_grid.snip_edges, int(round(ratio)))
    return FrameGrid(run_grid.sample_rate, frame_shift_ms, run_grid.frame_length_ms, run_grid.snip_edges, 1)


def evaluate_run(
    run: str | os.PathLike,
    scores: str | os.PathLike | ScoreFile,
    *,
    fa_per_hour: Sequence[float] = DEFAULT_FA_PER_HOUR_TARGETS,
    frame_shift_ms: float | None = None,
    allow_missing: bool = False,
    tolerance_s: float = 0.2,
    debounce_s: float = 1.0,
    max_latency_s: float | None = None,
    num_thresholds: int | None = DEFAULT_NUM_THRESHOLDS,
) -> RunEvaluation:
    """Evaluate the per-frame ``scores`` (a file, module docstring) against the anchors of ``run``.

    ``fa_per_hour``: the FA/h targets; the report holds FRR and latency at each (the first is the
    operating point). ``tolerance_s``, ``debounce_s``, ``max_latency_s`` and ``num_thresholds``
    are `anchorprep.metrics.evaluate`'s. Utterances are evaluated in the run's order.
    """
    targets = tuple(fa_per_hour)
    if not targets:
        raise UsageError("`fa_per_hour` needs at least one FA/h target")
    for target in targets:
        if not isinstance(target, (int, float)) or not math.isfinite(target) or target < 0:
            raise UsageError(f"`fa_per_hour` targets must be finite numbers >= 0; got {target!r}")
    source = open_run(run)
    score_file = scores if isinstance(scores, ScoreFile) else read_scores(scores)
    shift = _frame_shift(frame_shift_ms, score_file)
    grid = scores_grid(source.settings.grid, shift)
    on_run_grid = grid == source.settings.grid
    by_utt = score_file.by_utt()
    problems: list[UtteranceProblem] = []
    traces, anchors, durations, in_run, skipped = [], [], [], set(), 0
    for row in source.iter_rows(["utt_id", "num_frames", "duration_s", "anchor_times_s"]):
        utt = row["utt_id"]
        in_run.add(utt)
        trace = by_utt.get(utt)
        if trace is None:
            if allow_missing:
                skipped += 1
            else:
                problems.append(UtteranceProblem(utt, "missing", "the run has this utterance, the scores file does not"))
            continue
        expected = row["num_frames"] if on_run_grid else grid.num_frames(grid.num_samples(row["duration_s"]))
        if trace.shape[0] != expected:
            problems.append(UtteranceProblem(utt, "wrong_length", f"{trace.shape[0]} scores, expected {expected} "
                                             f"(one per {grid.frame_shift_ms * grid.subsampling:g} ms frame of "
                                             f"{row['duration_s']:g} s)"))
            continue
        traces.append(trace)
        anchors.append(np.asarray(row["anchor_times_s"], dtype=np.float64))
        durations.append(row["duration_s"])
    failed = {e.utt_id: e for e in source.errors()}
    for utt in score_file.utt_ids:
        if utt not in in_run:
            error = failed.get(utt)
            reason = (f"not in the run: it failed at stage {error.stage}: {error.reason}" if error is not None
                      else "not in the run")
            problems.append(UtteranceProblem(utt, "extra", reason))
    if not traces:
        if not problems:
            raise UsageError(f"`scores` {score_file.path}: no utterances")
        hint = ("; are the scores on another frame shift? give it as `frame_shift_ms`"
                if all(p.kind == "wrong_length" for p in problems) else "")
        raise UsageError(f"`scores` {score_file.path}: no utterance could be evaluated against {source.path} "
                         f"({len(problems)} problem(s); first: {problems[0].utt_id}: {problems[0].reason}){hint}")
    metrics = evaluate(traces, anchors, grid, durations_s=np.asarray(durations), fa_per_hour_targets=targets,
                       tolerance_s=tolerance_s, debounce_s=debounce_s, max_latency_s=max_latency_s,
                       num_thresholds=num_thresholds)
    threshold = metrics.operating.threshold
    latencies = (detect(traces, anchors, grid, threshold, tolerance_s=tolerance_s, max_latency_s=max_latency_s).latency_s
                 if math.isfinite(threshold) else np.zeros(0))
    return RunEvaluation(source.path, score_file.path, grid, len(in_run), len(score_file.utt_ids), len(traces),
                         skipped, tuple(problems), metrics, latencies)


def _frame_shift(option: float | None, score_file: ScoreFile) -> float | None:
    if option is not None and score_file.frame_shift_ms is not None and float(option) != score_file.frame_shift_ms:
        raise UsageError(f"`frame_shift_ms` {option:g} differs from the scores file's {FRAME_SHIFT_COLUMN} "
                         f"{score_file.frame_shift_ms:g}")
    return float(option) if option is not None else score_file.frame_shift_ms


__all__ = ["PROBLEM_KINDS", "RunEvaluation", "ScoreFile", "UtteranceProblem", "evaluate_run", "read_scores",
           "scores_grid"]
