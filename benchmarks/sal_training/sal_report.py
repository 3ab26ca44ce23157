"""Aggregation, sweep selection, markdown tables and the latency-vs-FRR plot of the SAL benchmark.

Every number in results.md, results.json and the README's results section is computed here from
the runs' results; nothing is typed in by hand.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

LOSSES = ("FCE", "FL", "SAL", "SA+FL", "SAFL")
TASK_TITLES = {"keyword": "keyword spotting", "onset": "speech onset"}
README_BEGIN = "<!-- BEGIN GENERATED RESULTS (benchmarks/sal_training/run.py writes this section) -->"
README_END = "<!-- END GENERATED RESULTS -->"


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def metrics_of(run: dict, split: str = "test") -> dict[str, float]:
    """The headline numbers of one run on one split (latency in ms)."""
    ev = run["eval"][split]
    op = ev["operating"]
    lat = op["latency"]
    return {
        "auc": _num(ev["auc"]),
        "frr": _num(op["frr"]),
        "fa_per_hour": _num(op["fa_per_hour"]),
        "latency_mean": _num(lat["mean"]) * 1000,
        "latency_p50": _num(lat["p50"]) * 1000,
        "latency_p90": _num(lat["p90"]) * 1000,
        "detected": _num(lat["count"]),
    }


HIGHER_IS_BETTER = {"auc": True, "frr": False, "latency_mean": False, "latency_p50": False, "latency_p90": False}


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size)


def fmt(mean: float, std: float, n: int, digits: int, seeds: int) -> str:
    if n == 0 or math.isnan(mean):
        return "n/a"
    text = f"{mean:.{digits}f}"
    if seeds > 1:
        text += f" ± {std:.{digits}f}"
    if n < seeds:
        text += f" ({n}/{seeds} seeds)"
    return text


# ----------------------------------------------------------------------------------------------
# sweep


def sweep_ranking(sweep_runs: list[dict], reference: list[dict]) -> dict:
    """Rank SAL settings on the *validation* split; the lowest mean rank wins.

    For every (task, model) cell, settings are ranked (average ranks for ties, NaN last) by valid
    AUC (higher better), FRR at the FA/h target and median latency at that operating point
    (lower better); a setting's score is its mean rank over the 4 cells x 3 metrics. Ties go to
    the lower mean valid FRR. ``reference`` (the FCE seed-0 runs) is listed for comparison but not
    ranked.
    """
    settings = sorted({_setting_key(r["weights"]) for r in sweep_runs})
    cells = sorted({(r["task"], r["model"]) for r in sweep_runs})
    by = {(_setting_key(r["weights"]), r["task"], r["model"]): metrics_of(r, "valid") for r in sweep_runs}
    ranks: dict[str, list[float]] = {s: [] for s in settings}
    for task, model in cells:
        for metric in ("auc", "frr", "latency_p50"):
            values = np.array([by[(s, task, model)][metric] for s in settings], dtype=np.float64)
            sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
            keyed = np.where(np.isnan(values), np.inf, sign * values)
            order = _average_ranks(keyed)
            for s, r in zip(settings, order):
                ranks[s].append(float(r))
    rows = []
    for s in settings:
        frrs = [by[(s, t, m)]["frr"] for t, m in cells]
        rows.append({"setting": dict(s), "mean_rank": float(np.mean(ranks[s])),
                     "mean_valid_frr": float(np.nanmean(frrs)) if not all(math.isnan(f) for f in frrs) else float("nan"),
                     "cells": {f"{t}/{m}": by[(s, t, m)] for t, m in cells}})
    rows.sort(key=lambda r: (r["mean_rank"], _nan_last(r["mean_valid_frr"])))
    ref = {f"{r['task']}/{r['model']}": metrics_of(r, "valid") for r in reference}
    return {"rows": rows, "best": rows[0]["setting"] if rows else None, "fce_reference": ref,
            "criterion": "mean rank over 4 task x model cells x (valid AUC, valid FRR at the FA/h target, "
                         "valid median latency at that operating point); ties: lower mean valid FRR"}


def _setting_key(weights: dict) -> tuple:
    return tuple(sorted(weights.items()))


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _average_ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, method="average")


def setting_label(s: dict) -> str:
    return f"{s['kernel']}, W={_g(s['width'])}, λ={_g(s['gain'])}"


def _g(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------------------------
# main table


def aggregate(main_runs: list[dict], seeds: int) -> dict:
    """Mean and std over seeds per (task, model, loss) on the test split."""
    groups: dict[tuple, list[dict]] = {}
    for r in main_runs:
        groups.setdefault((r["task"], r["model"], r["loss"]), []).append(r)
    out = {}
    for key, runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        per_seed = [metrics_of(r) for r in runs]
        out["/".join(key)] = {
            "seeds": [r["seed"] for r in runs],
            "per_seed": per_seed,
            **{m: dict(zip(("mean", "std", "n"), mean_std(p[m] for p in per_seed)))
               for m in ("auc", "frr", "fa_per_hour", "latency_mean", "latency_p50", "latency_p90")},
        }
    return out


def derive(results: dict) -> dict:
    """Recompute everything derived from the runs (aggregate, verdicts, sweep ranking) in place."""
    cfg = results["config"]
    runs = results["runs"]
    main_runs = [r for r in runs if r["phase"] == "main"]
    sweep_runs = [r for r in runs if r["phase"] == "sweep"]
    fce0 = [r for r in main_runs if r["loss"] == "FCE" and r["seed"] == cfg["sweep_seed"]]
    results["aggregate"] = aggregate(main_runs, cfg["seeds"])
    results["verdicts"] = paired_verdicts(results["aggregate"], cfg["tasks"], cfg["models"], cfg["seeds"])
    results["sweep"] = sweep_ranking(sweep_runs, fce0)
    return results


def paired_verdicts(agg: dict, tasks, models, seeds: int) -> list[dict]:
    """SAL-family vs their baselines (SAL vs FCE, SA+FL and SAFL vs FCE and FL), seed by seed."""
    rows = []
    pairs = [("SAL", "FCE"), ("SA+FL", "FCE"), ("SAFL", "FCE"), ("SA+FL", "FL"), ("SAFL", "FL")]
    for task in tasks:
        for model in models:
            for loss, base in pairs:
                a, b = agg.get(f"{task}/{model}/{loss}"), agg.get(f"{task}/{model}/{base}")
                if a is None or b is None:
                    continue
                row = {"task": task, "model": model, "loss": loss, "baseline": base}
                for metric in ("auc", "frr", "latency_p50", "latency_p90"):
                    xa = {s: p[metric] for s, p in zip(a["seeds"], a["per_seed"])}
                    xb = {s: p[metric] for s, p in zip(b["seeds"], b["per_seed"])}
                    common = [s for s in xa if s in xb and not math.isnan(xa[s]) and not math.isnan(xb[s])]
                    diffs = [xa[s] - xb[s] for s in common]
                    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
                    wins = sum(1 for d in diffs if sign * d > 0)
                    losses = sum(1 for d in diffs if sign * d < 0)
                    if not diffs:
                        verdict = "n/a"
                    elif wins == len(diffs):
                        verdict = "better"
                    elif losses == len(diffs):
                        verdict = "worse"
                    elif wins == losses == 0:
                        verdict = "same"
                    else:
                        verdict = "mixed"
                    row[metric] = {"mean_diff": float(np.mean(diffs)) if diffs else float("nan"),
                                   "wins": wins, "losses": losses, "n": len(diffs), "verdict": verdict}
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# markdown


def markdown(results: dict) -> str:
    cfg = results["config"]
    seeds = cfg["seeds"]
    target = cfg["fa_per_hour"][0]
    data = results["data"]
    lines = []
    chosen = results["sweep"]["best"]
    lines.append(f"Command: `{results['command']}`  ")
    lines.append(f"Wall time: {results['timing']['total_s'] / 60:.1f} min on {results['environment']['cpus']} CPU cores "
                 f"({results['environment']['torch']}, {cfg['workers']} worker processes x {cfg['threads']} torch thread); "
                 + ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s" for k, v in results["timing"].items()
                             if k != "total_s"))
    lines.append("")
    lines.append("Test split (voices unseen in training): "
                 + "; ".join(f"{TASK_TITLES[t]}: {d['test']['positives']} positive utterances ({d['test']['events']} events), "
                             f"{d['test']['negatives']} negatives ({d['test']['negative_hours'] * 60:.1f} min of negative audio, "
                             f"so {target:g} FA/h allows {results['allowed_alarms'][t]} false alarm(s))"
                             for t, d in data["tasks"].items()) + ".")
    lines.append(f"FRR is measured at the lowest threshold with at most {target:g} false alarms per hour on the test negatives; "
                 f"latency (ms, relative to the anchor: keyword end / VAD speech onset) is over the events detected at that "
                 f"threshold. Mean ± std over {seeds} seed(s); the anchor losses use the sweep's setting "
                 f"({setting_label(chosen)}; γ = {cfg['gamma']:g} for FL, SA+FL, SAFL).")
    lines.append("")
    lines.append(f"| task | model | loss | AUC | FRR @ {target:g} FA/h | latency mean | latency p50 | latency p90 |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    agg = results["aggregate"]
    for task in cfg["tasks"]:
        for model in cfg["models"]:
            for loss in LOSSES:
                a = agg.get(f"{task}/{model}/{loss}")
                if a is None:
                    continue
                params = results["parameters"][model]
                lines.append(
                    f"| {TASK_TITLES[task]} | {model} ({params / 1000:.0f}k) | {loss} | "
                    f"{fmt(a['auc']['mean'], a['auc']['std'], a['auc']['n'], 3, seeds)} | "
                    f"{fmt(a['frr']['mean'] * 100, a['frr']['std'] * 100, a['frr']['n'], 1, seeds)}% | "
                    f"{fmt(a['latency_mean']['mean'], a['latency_mean']['std'], a['latency_mean']['n'], 0, seeds)} | "
                    f"{fmt(a['latency_p50']['mean'], a['latency_p50']['std'], a['latency_p50']['n'], 0, seeds)} | "
                    f"{fmt(a['latency_p90']['mean'], a['latency_p90']['std'], a['latency_p90']['n'], 0, seeds)} |")
    lines.append("")
    lines.append("**Does the anchor loss beat its baseline?** Paired by seed (same initial weights and batch order); "
                 "`better`/`worse`: on every seed, `mixed`: it depends on the seed. Differences are loss minus baseline.")
    lines.append("")
    lines.append("| task | model | comparison | AUC | FRR | latency p50 | latency p90 |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for row in results["verdicts"]:
        cells = []
        for metric, scale, unit, digits in (("auc", 1, "", 4), ("frr", 100, " pt", 1), ("latency_p50", 1, " ms", 0),
                                            ("latency_p90", 1, " ms", 0)):
            v = row[metric]
            if v["verdict"] == "n/a":
                cells.append("n/a")
            else:
                cells.append(f"{v['verdict']} ({v['mean_diff'] * scale:+.{digits}f}{unit}, {v['wins']}/{v['n']})")
        lines.append(f"| {TASK_TITLES[row['task']]} | {row['model']} | {row['loss']} vs {row['baseline']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(sweep_markdown(results))
    lines.append("")
    lines.append(data_markdown(results))
    lines.append("")
    lines.append("![latency vs FRR](latency_vs_frr.png)")
    return "\n".join(lines) + "\n"


def sweep_markdown(results: dict) -> str:
    sweep = results["sweep"]
    target = results["config"]["fa_per_hour"][0]
    cells = sorted(sweep["fce_reference"]) or sorted(sweep["rows"][0]["cells"])
    lines = [(f"**SAL sweep on the validation split** (seed {results['config']['sweep_seed']}; {sweep['criterion']}). "
              f"Each cell: AUC / FRR @ {target:g} FA/h / median latency (ms). Chosen: **{setting_label(sweep['best'])}**."),
             ""]
    lines.append("| setting | mean rank | " + " | ".join(cells) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in cells) + " |")

    def cell(m: dict) -> str:
        lat = "n/a" if math.isnan(m["latency_p50"]) else f"{m['latency_p50']:.0f}"
        frr = "n/a" if math.isnan(m["frr"]) else f"{m['frr'] * 100:.1f}%"
        return f"{m['auc']:.3f} / {frr} / {lat}"

    for row in sweep["rows"]:
        name = setting_label(row["setting"])
        if row["setting"] == sweep["best"]:
            name = f"**{name}**"
        lines.append(f"| {name} | {row['mean_rank']:.2f} | " + " | ".join(cell(row["cells"][c]) for c in cells) + " |")
    if sweep["fce_reference"]:
        lines.append("| FCE (reference, λ = 0) | – | " + " | ".join(cell(sweep["fce_reference"][c]) for c in cells) + " |")
    lines.append("")
    lines.append("Mean rank by factor level (averaged over the other factors' settings): "
                 + "; ".join(f"{name} " + ", ".join(f"{_g(level) if not isinstance(level, str) else level}: {rank:.2f}"
                                                   for level, rank in levels.items())
                             for name, levels in sweep_marginals(sweep).items()) + ".")
    return "\n".join(lines)


def sweep_marginals(sweep: dict) -> dict[str, dict]:
    """Mean of the settings' mean ranks for each level of each swept factor."""
    out: dict[str, dict] = {}
    for factor in ("kernel", "width", "gain"):
        levels: dict = {}
        for row in sweep["rows"]:
            levels.setdefault(row["setting"][factor], []).append(row["mean_rank"])
        if len(levels) > 1:
            out[factor] = {k: float(np.mean(v)) for k, v in sorted(levels.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))}
    return out


def data_markdown(results: dict) -> str:
    data = results["data"]
    vad = data["vad_vs_truth"]
    lines = [("**Data** (frame grid: "
              f"{data['grid']['frame_shift_ms']:g} ms shift, subsampling {data['grid']['subsampling']}: "
              f"one model frame = {data['grid']['frame_shift_ms'] * data['grid']['subsampling']:g} ms)."), ""]
    lines.append("| task | split | utterances | positives | events | negatives | audio | negative audio |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for task, per in data["tasks"].items():
        for split, d in per.items():
            lines.append(f"| {TASK_TITLES[task]} | {split} | {d['utterances']} | {d['positives']} | {d['events']} | "
                         f"{d['negatives']} | {d['hours'] * 60:.1f} min | {d['negative_hours'] * 60:.1f} min |")
    lines.append("")
    lines.append(f"`anchorprep vad` onsets vs the synthesiser's exact first-word start (all {vad['speech_utterances_with_onset']} "
                 f"speech utterances with an onset): median error {vad['onset_error_ms_median']} ms, |error| p50 "
                 f"{vad['abs_onset_error_ms_p50']} ms, p90 {vad['abs_onset_error_ms_p90']} ms; "
                 f"{vad['onsets_more_than_100ms_early']} onsets > 100 ms early (the VAD fired on the leading noise), "
                 f"{vad['onsets_more_than_100ms_late']} > 100 ms late, {vad['speech_utterances_without_onset']} utterances "
                 f"without an onset; {vad['noise_clips_with_onset']} of {vad['noise_clips']} noise-only clips got an onset "
                 f"({_colours(vad)}). Those clips are positives of the onset task, as the product labelled them"
                 + (f"; {data['tasks']['onset']['test']['noise_clip_positives']} of the "
                    f"{data['tasks']['onset']['test']['events']} test events are such clips, a floor of "
                    f"{100 * data['tasks']['onset']['test']['noise_clip_positives'] / max(1, data['tasks']['onset']['test']['events']):.1f}% "
                    "under the onset FRR of a detector that does not fire on noise."
                    if "noise_clip_positives" in data["tasks"].get("onset", {}).get("test", {}) else "."))
    return "\n".join(lines)


def _colours(vad: dict) -> str:
    by = vad.get("noise_clips_with_onset_by_colour", {})
    return ", ".join(f"{v['with_onset']}/{v['clips']} {k}" for k, v in by.items()) or "colour not recorded"


# ----------------------------------------------------------------------------------------------
# plot


COLOURS = {"FCE": "#444444", "FL": "#8c564b", "SAL": "#1f77b4", "SA+FL": "#2ca02c", "SAFL": "#d62728"}


def plot(results: dict, runs: list[dict], path: Path) -> None:
    """Latency (median, ms) vs FRR on the test split: one panel per task x model.

    Lines: each loss's trade-off as the threshold moves (thresholds at quantiles of the events'
    peak scores, so point i sits near FRR = q_i for every seed; averaged over seeds point by point).
    Markers with error bars: the operating point at the FA/h target, mean ± std over seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    tasks, models = cfg["tasks"], cfg["models"]
    fig, axes = plt.subplots(len(tasks), len(models), figsize=(5.2 * len(models), 4.0 * len(tasks)), squeeze=False)
    target = cfg["fa_per_hour"][0]
    for i, task in enumerate(tasks):
        for j, model in enumerate(models):
            ax = axes[i][j]
            for loss in LOSSES:
                group = [r for r in runs if r["task"] == task and r["model"] == model and r["loss"] == loss]
                if not group:
                    continue
                curves = [r["eval"]["test"]["curve"] for r in group]
                n = min(len(c["frr"]) for c in curves)
                if n:
                    frr = np.nanmean([[_num(x) for x in c["frr"][:n]] for c in curves], axis=0)
                    lat = np.array([[_num(x) for x in c["latency_p50"][:n]] for c in curves], dtype=np.float64)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no detection
                        lat = np.nanmean(lat, axis=0) * 1000
                    ax.plot(frr * 100, lat, "-", color=COLOURS[loss], alpha=0.6, lw=1.2, label=loss)
                a = results["aggregate"][f"{task}/{model}/{loss}"]
                if a["frr"]["n"] and a["latency_p50"]["n"]:
                    ax.errorbar(a["frr"]["mean"] * 100, a["latency_p50"]["mean"], xerr=a["frr"]["std"] * 100,
                                yerr=a["latency_p50"]["std"], fmt="o", color=COLOURS[loss], ms=6, capsize=3)
            ax.set_title(f"{TASK_TITLES[task]}, {model}")
            ax.set_xlabel("FRR on test (%)")
            ax.set_ylabel("median detection latency (ms)")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, title=f"● = operating point at {target:g} FA/h", title_fontsize=8)
    fig.suptitle("Latency vs false rejects (lines: threshold sweep; markers: operating point, mean ± std over seeds)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# README


def update_readme(readme: Path, body: str) -> bool:
    """Replace the generated section of the README; False when the markers are missing."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(README_BEGIN)] + "\n\n" + body.replace("](latency_vs_frr.png)", "](results/latency_vs_frr.png)") \
        + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    return True
