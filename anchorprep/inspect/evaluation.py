"""The picture of an `anchorprep.metrics.run_scores.evaluate_run` result (``anchorprep evaluate --png``).

Left: the DET curve (false rejects against false alarms per hour of negative audio, FA/h on a
symmetric-log axis so FA/h 0 is drawn), with the point chosen for each FA/h target. Right: the
latencies of the detected events at the operating threshold, with their mean, median and 90th
percentile. Needs matplotlib (``pip install 'anchorprep[plot]'``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from anchorprep.metrics.run_scores import RunEvaluation
from anchorprep.storage import local_output


def evaluation_figure(evaluation: RunEvaluation, path: str | Path, dpi: int = 100) -> Path:
    """Write the DET curve and the latency histogram of ``evaluation`` to the PNG ``path``."""
    from anchorprep.inspect.plot import _matplotlib

    Figure, FigureCanvasAgg = _matplotlib()
    path = local_output(path)
    metrics = evaluation.metrics
    fig = Figure(figsize=(12, 5), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    det_ax, latency_ax = fig.subplots(1, 2)
    auc = "-" if math.isnan(metrics.auc) else f"{metrics.auc:.3f}"
    fig.suptitle(f"anchorprep evaluate: {evaluation.scores.name} on {evaluation.run.name} "
                 f"({evaluation.evaluated:,} utterances, {metrics.num_events:,} events, "
                 f"{metrics.negative_hours:.2f} h negative audio, AUC {auc})")

    det = metrics.det
    finite = np.isfinite(det.fa_per_hour) & np.isfinite(det.frr)
    det_ax.set_title("DET curve", fontsize=10)
    det_ax.set_xlabel("false alarms per hour")
    det_ax.set_ylabel("false reject rate (%)")
    if np.any(finite):
        order = np.lexsort((det.frr[finite], det.fa_per_hour[finite]))
        det_ax.step(det.fa_per_hour[finite][order], 100 * det.frr[finite][order], where="post", color="#1f77b4")
        det_ax.set_xscale("symlog", linthresh=0.1)
        for i, point in enumerate(metrics.at_targets):
            if math.isfinite(point.frr):
                det_ax.plot(point.fa_per_hour, 100 * point.frr, "o", color="#d62728")
                det_ax.annotate(f"≤{point.target_fa_per_hour:g} FA/h: FRR {100 * point.frr:.1f}%",
                                (point.fa_per_hour, 100 * point.frr), textcoords="offset points",
                                xytext=(8, 8 + 12 * i), fontsize=8)
        det_ax.grid(True, which="both", alpha=0.3)
    else:
        det_ax.text(0.5, 0.5, "no DET curve (no negatives or no events)", ha="center", va="center",
                    transform=det_ax.transAxes, color="grey")

    operating = metrics.operating
    latencies = evaluation.latencies_s[np.isfinite(evaluation.latencies_s)] * 1000.0
    latency_ax.set_title(f"latency at threshold {operating.threshold:.4g}", fontsize=10)
    latency_ax.set_xlabel("latency (ms, first firing frame end - anchor)")
    latency_ax.set_ylabel("events")
    if latencies.size:
        latency_ax.hist(latencies, bins=min(40, max(5, latencies.size // 2)), color="#2ca02c", alpha=0.8)
        stats = operating.latency
        for value, name, style in ((stats.mean, "mean", "-"), (stats.p50, "p50", "--"), (stats.p90, "p90", ":")):
            latency_ax.axvline(value * 1000.0, color="black", linestyle=style, label=f"{name} {value * 1000:.0f} ms")
        latency_ax.legend(fontsize=8)
    else:
        latency_ax.text(0.5, 0.5, "no detected events", ha="center", va="center", transform=latency_ax.transAxes,
                        color="grey")
    canvas.print_png(str(path))
    return path


__all__ = ["evaluation_figure"]
