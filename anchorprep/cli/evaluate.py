"""`anchorprep evaluate RUN SCORES -o REPORT.json [--png PLOT.png]`: a detector's scores against a run."""

from __future__ import annotations

import json
from typing import Annotated, List, Optional

import typer

from anchorprep.cli.common import usage_guard

METRICS = "Metrics (anchorprep.metrics.evaluate)"


@usage_guard
def evaluate(
    run: Annotated[str, typer.Argument(help="Output folder of the run whose anchors are the truth.")],
    scores: Annotated[str, typer.Argument(help="Parquet or JSONL file: utt_id + scores (one list of per-frame scores per utterance).")],
    out: Annotated[str, typer.Option("-o", "--out", help="The JSON report to write (AUC, FRR and latency at each FA/h target, DET points, problems).")],
    png: Annotated[Optional[str], typer.Option("--png", help="Also draw the DET curve and latencies to this PNG (pip install 'anchorprep\\[plot]').")] = None,
    fa_per_hour: Annotated[Optional[List[float]], typer.Option("--fa-per-hour", help="FA/h target (repeatable; the first is the operating point). Default: 0.5, 1, 5.", rich_help_panel=METRICS)] = None,
    frame_shift_ms: Annotated[Optional[float], typer.Option("--frame-shift-ms", help="Milliseconds between score frames when not the run's model frames (or a frame_shift_ms column).")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Run utterances without scores are skipped, not problems (e.g. only a test split was scored).")] = False,
    tolerance_s: Annotated[float, typer.Option("--tolerance-s", help="A firing this early before the anchor still counts.", rich_help_panel=METRICS)] = 0.2,
    debounce_s: Annotated[float, typer.Option("--debounce-s", help="Minimum time between two counted false alarms.", rich_help_panel=METRICS)] = 1.0,
    max_latency_s: Annotated[Optional[float], typer.Option("--max-latency-s", help="A firing later than this after the anchor is a miss.", rich_help_panel=METRICS)] = None,
) -> None:
    """Score a detector against a run's anchors: AUC, FRR and latency at FA/h targets, DET curve. Exit 0, 1 when some utterances could not be evaluated, 2 on a bad call."""
    from anchorprep.metrics.evaluate import DEFAULT_FA_PER_HOUR_TARGETS
    from anchorprep.metrics.run_scores import evaluate_run
    from anchorprep.shards.io import write_json_atomic
    from anchorprep.storage import location

    result = evaluate_run(run, scores, fa_per_hour=tuple(fa_per_hour) if fa_per_hour else DEFAULT_FA_PER_HOUR_TARGETS,
                          frame_shift_ms=frame_shift_ms, allow_missing=allow_missing, tolerance_s=tolerance_s,
                          debounce_s=debounce_s, max_latency_s=max_latency_s)
    if png is not None:
        from anchorprep.inspect.evaluation import evaluation_figure

        evaluation_figure(result, png)
    write_json_atomic(location(out), result.to_dict())
    for problem in result.problems:
        typer.echo(f"{problem.utt_id}: {problem.kind}: {problem.reason}", err=True)
    typer.echo(_summary(result), err=True)
    raise typer.Exit(result.exit_code)


def _summary(result) -> str:
    metrics = result.metrics
    points = "; ".join(
        f"FA/h <= {p.target_fa_per_hour:g}: FRR {_pct(p.frr)}, latency mean/p50/p90 "
        f"{_ms(p.latency.mean)}/{_ms(p.latency.p50)}/{_ms(p.latency.p90)} ms" for p in metrics.at_targets)
    auc = "-" if metrics.auc != metrics.auc else f"{metrics.auc:.4f}"
    left_out = f", {len(result.problems)} left out (listed above and in the report)" if result.problems else ""
    return f"evaluated {result.evaluated:,} utterances{left_out}; AUC {auc}; {points}"


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.2f}%"


def _ms(value: float) -> str:
    return "-" if value != value else f"{1000 * value:.0f}"
