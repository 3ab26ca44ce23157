"""Setting selection, bootstrap statistics, tables, plot and README section of the SAL benchmark.

Every number in results.md, results.json and the README's evidence section is computed here from
the runs' results and evidence files; nothing is typed in by hand.

Statistics (`bootstrap`): for a (task, model), every main run's `sal_train.Evidence` holds
per-utterance outcomes on the test split at a grid of thresholds. One bootstrap replicate draws
the seeds with replacement and, independently, the test positives and the test negatives (by
utterance, with replacement); every family is scored on the same draw, each run choosing its own
operating threshold on the resampled negatives. A metric of a family is its mean over the drawn
seeds; a paired difference is family minus FCE within the replicate. 95 % intervals are the 2.5
and 97.5 percentiles over replicates. A difference gets a verdict only when its interval excludes
zero.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

TASK_TITLES = {"keyword": "keyword spotting", "onset": "speech onset", "trigger": "multi-modal trigger (audio + accelerometer)"}
README_SECTION = "## Evidence: does SAL pay off?"
BENCH_BEGIN = "<!-- BEGIN GENERATED RESULTS (benchmarks/sal_training/run.py writes this section) -->"
BENCH_END = "<!-- END GENERATED RESULTS -->"
PAPER = {"auc_fce": 0.9761, "auc_sal": 0.9953, "latency_fce_s": 1.35, "latency_sal_s": 0.69}
# metric -> (label, higher is better, scale, unit, digits)
METRICS = {
    "auc": ("AUC", True, 100.0, " %", 2),
    "frr": ("FRR @ {fa} FA/h", False, 100.0, " %", 1),
    "latency": ("mean latency @ {fa} FA/h", False, 1000.0, " ms", 0),
    "frr2": ("FRR @ {fa2} FA/h", False, 100.0, " %", 1),
    "latency_eq": ("mean latency @ FRR {eq}", False, 1000.0, " ms", 0),
}


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


# ----------------------------------------------------------------------------------------------
# tuning


def valid_metrics(run: dict, target: float) -> dict[str, float]:
    ev = run["eval"]["valid"]
    point = next((p for p in ev["at_targets"] if abs(p["target_fa_per_hour"] - target) < 1e-9), ev["operating"])
    return {"auc": _num(ev["auc"]), "frr": _num(point["frr"]), "latency": _num(point["latency"]["mean"])}


SELECTION_RULE = ("within a family, the setting with the lowest mean rank over (valid AUC, valid FRR at the first FA/h "
                  "target, valid mean latency at that operating point); ties: higher valid AUC")


def select_settings(runs: list[dict], target: float) -> dict:
    """The same rule for every family (`SELECTION_RULE`), on the validation voices only."""
    from scipy.stats import rankdata

    table = [valid_metrics(r, target) for r in runs]
    ranks = np.zeros(len(runs))
    for metric, higher in (("auc", True), ("frr", False), ("latency", False)):
        values = np.array([m[metric] for m in table])
        keyed = np.where(np.isnan(values), np.inf, -values if higher else values)
        ranks += rankdata(keyed, method="average")
    ranks /= 3
    order = sorted(range(len(runs)), key=lambda i: (ranks[i], -np.nan_to_num(table[i]["auc"], nan=-1.0)))
    rows = [{"setting": runs[i]["setting"], "mean_rank": float(ranks[i]), **table[i]} for i in order]
    return {"chosen": runs[order[0]]["setting"], "rows": rows}


def setting_label(family: str, s: dict) -> str:
    if not s:
        return "–"
    if family == "FCE":
        return f"lr {s['lr']:g}"
    if family == "FCE+α":
        return f"α {s['alpha']:g}"
    if family == "FL":
        return f"γ {s['gamma']:g}"
    text = f"{s.get('kernel', 'exponential')[:3]}, W {s['width']:g}, λ {s['gain']:g}"
    return text + (f", γ {s['gamma']:g}" if "gamma" in s else "")


# ----------------------------------------------------------------------------------------------
# evidence -> metrics


class Outcomes:
    """One run's evidence as the arrays the bootstrap needs."""

    def __init__(self, path: str) -> None:
        from sal_train import Evidence

        ev = Evidence.load(path)
        self.ev = ev
        self.miss = np.isnan(ev.latency).astype(np.float64)  # (E, K)
        self.lat0 = np.nan_to_num(ev.latency.astype(np.float64))  # latency, 0 for misses
        self.alarms = ev.neg_alarms.astype(np.float64)  # (N, K)


def _aucs(pos: np.ndarray, neg: np.ndarray, wp: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC per replicate (rows of wp, wn); ties count one half."""
    order = np.argsort(neg, kind="stable")
    sneg = neg[order]
    lo = np.searchsorted(sneg, pos, side="left")
    hi = np.searchsorted(sneg, pos, side="right")
    cum = np.concatenate([np.zeros((wn.shape[0], 1)), np.cumsum(wn[:, order], axis=1)], axis=1)
    credit = cum[:, lo] + 0.5 * (cum[:, hi] - cum[:, lo])
    return (wp * credit).sum(1) / (wp.sum(1) * wn.sum(1))


def run_metrics(o: Outcomes, wp: np.ndarray, wn: np.ndarray, cfg: dict) -> dict[str, np.ndarray]:
    """Every bootstrap metric of one run for each replicate (rows of the utterance weights)."""
    ev = o.ev
    we = wp[:, ev.event_utt]
    hours = wn @ ev.neg_duration_s / 3600.0
    fa = (wn @ o.alarms) / hours[:, None]
    events = we.sum(1)[:, None]
    frr = (we @ o.miss) / events
    found = we @ (1.0 - o.miss)
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = (we @ o.lat0) / found
    rows = np.arange(wp.shape[0])
    out = {"auc": _aucs(ev.pos_max, ev.neg_max, wp, wn)}
    for name, target in (("", cfg["fa_per_hour"][0]), ("2", cfg["fa_per_hour"][-1])):
        k = np.argmax(fa <= target * (1 + 1e-9), axis=1)  # lowest threshold meeting the target
        out["frr" + name] = frr[rows, k]
        if not name:
            out["latency"] = lat[rows, k]
    k_eq = (frr <= cfg["equal_frr"] + 1e-12).sum(1) - 1  # FRR grows with the threshold: a prefix
    out["latency_eq"] = np.where(k_eq >= 0, lat[rows, np.maximum(k_eq, 0)], np.nan)
    return out


def curve_points(o: Outcomes, levels: np.ndarray, wp: np.ndarray) -> np.ndarray:
    """Mean latency (s) at the highest threshold with FRR <= each level, per replicate (B, L)."""
    we = wp[:, o.ev.event_utt]
    frr = (we @ o.miss) / we.sum(1)[:, None]
    found = we @ (1.0 - o.miss)
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = (we @ o.lat0) / found
    out = np.full((wp.shape[0], len(levels)), np.nan)
    rows = np.arange(wp.shape[0])
    for j, level in enumerate(levels):
        k = (frr <= level + 1e-12).sum(1) - 1
        out[:, j] = np.where(k >= 0, lat[rows, np.maximum(k, 0)], np.nan)
    return out


def operating_details(o: Outcomes, cfg: dict) -> dict:
    """Per-voice FRR and per-category FA/h at the run's operating point (full test split)."""
    ev = o.ev
    hours = ev.neg_duration_s.sum() / 3600.0
    fa = o.alarms.sum(0) / hours
    k = int(np.argmax(fa <= cfg["fa_per_hour"][0] * (1 + 1e-9)))
    speakers = ev.pos_speaker[ev.event_utt]
    voices = {str(v): float(o.miss[speakers == v, k].mean()) for v in np.unique(speakers)}
    cats = {}
    for c in np.unique(ev.neg_category):
        sel = ev.neg_category == c
        h = ev.neg_duration_s[sel].sum() / 3600.0
        cats[str(c)] = {"alarms": float(o.alarms[sel, k].sum()), "hours": float(h),
                        "fa_per_hour": float(o.alarms[sel, k].sum() / h) if h else float("nan")}
    return {"threshold": float(ev.thresholds[k]), "frr_by_voice": voices, "alarms_by_category": cats}


def bootstrap(main_runs: list[dict], cfg: dict, rng_seed: int = 12345) -> dict:
    """Absolute metrics and paired differences to FCE, with bootstrap 95 % intervals, per (task, model)."""
    out: dict[str, Any] = {}
    B = int(cfg["bootstrap"])
    levels = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5])
    cells = sorted({(r["task"], r["model"]) for r in main_runs if r["model"] != "energy"})
    for task, model in cells:
        rng = np.random.default_rng([rng_seed, len(task), len(model)])
        group = [r for r in main_runs if r["task"] == task and r["model"] in (model, "energy") and r.get("evidence")]
        outcomes = {r["key"]: Outcomes(r["evidence"]) for r in group}
        first = next(iter(outcomes.values())).ev
        P, N = len(first.pos_max), len(first.neg_max)
        wp = np.vstack([np.ones(P), rng.multinomial(P, np.full(P, 1 / P), size=B)])  # row 0: the full sample
        wn = np.vstack([np.ones(N), rng.multinomial(N, np.full(N, 1 / N), size=B)])
        families = sorted({r["family"] for r in group}, key=_family_order)
        per_family: dict[str, dict] = {}
        for fam in families:
            runs = sorted([r for r in group if r["family"] == fam], key=lambda r: r["seed"])
            seeds = len(runs)
            sw = np.vstack([np.ones(seeds), rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=B)])
            metrics = [run_metrics(outcomes[r["key"]], wp, wn, cfg) for r in runs]
            stack = {k: np.stack([m[k] for m in metrics], 1) for k in METRICS}  # (B + 1, seeds)
            curves = [curve_points(outcomes[r["key"]], levels, wp) for r in runs]
            per_family[fam] = {"runs": runs, "sw": sw, "stack": stack,
                               "m": {k: _seed_mean(v, sw) for k, v in stack.items()},
                               "curve": _seed_mean(np.stack(curves, 1), sw[:, :, None]),
                               "details": [operating_details(outcomes[r["key"]], cfg) for r in runs]}
        # Differences are taken seed by seed and averaged with FCE's seed draw (paired by seed).
        rows = {}
        for fam, d in per_family.items():
            row = {"seeds": [r["seed"] for r in d["runs"]], "setting": d["runs"][0]["setting"],
                   "metrics": {k: _summary(v) for k, v in d["m"].items()},
                   "curve": {"frr": levels.tolist(), "latency_s": _summary_rows(d["curve"])},
                   "frr_by_voice": _mean_dicts([x["frr_by_voice"] for x in d["details"]]),
                   "fa_per_hour_by_category": _mean_dicts([{c: v["fa_per_hour"] for c, v in x["alarms_by_category"].items()}
                                                           for x in d["details"]]),
                   "alarms_by_category": _mean_dicts([{c: v["alarms"] for c, v in x["alarms_by_category"].items()}
                                                      for x in d["details"]])}
            if fam not in ("FCE", "energy") and "FCE" in per_family:
                base = per_family["FCE"]
                if [r["seed"] for r in base["runs"]] == row["seeds"]:
                    row["vs_fce"] = {k: _diff_summary(_seed_mean(d["stack"][k] - base["stack"][k], base["sw"]),
                                                      METRICS[k][1]) for k in METRICS}
            rows[fam] = row
        out[f"{task}/{model}"] = {"families": rows, "positives": P, "negatives": N, "events": int(len(first.event_utt)),
                                  "negative_hours": float(first.neg_duration_s.sum() / 3600.0)}
    return out


def _family_order(f: str) -> tuple:
    order = ["energy", "FCE", "FCE+α", "FL", "SAL", "SA+FL"]
    return (order.index(f) if f in order else 99, f)


def _seed_mean(values: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Weighted mean over the seed axis (axis 1) with seed weights ``sw`` (NaN-aware)."""
    ok = ~np.isnan(values)
    w = sw * ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(np.nan_to_num(values) * w, axis=1) / w.sum(1)


def _summary(v: np.ndarray) -> dict:
    reps = v[1:][np.isfinite(v[1:])]
    lo, hi = (np.percentile(reps, [2.5, 97.5]) if reps.size else (np.nan, np.nan))
    return {"value": float(v[0]), "ci": [float(lo), float(hi)], "replicates_nan": int(np.sum(~np.isfinite(v[1:])))}


def _summary_rows(m: np.ndarray) -> list[dict]:
    return [_summary(m[:, j]) for j in range(m.shape[1])]


def _diff_summary(d: np.ndarray, higher_is_better: bool) -> dict:
    s = _summary(d)
    lo, hi = s["ci"]
    if math.isnan(lo) or math.isnan(s["value"]):
        verdict = "n/a"
    elif lo > 0 or hi < 0:
        verdict = "better" if (lo > 0) == higher_is_better else "worse"
    else:
        verdict = "no evidence"
    return {**s, "verdict": verdict}


def _mean_dicts(dicts: list[dict]) -> dict:
    keys = sorted({k for d in dicts for k in d})
    return {k: float(np.nanmean([d.get(k, np.nan) for d in dicts])) for k in keys}


def derive(results: dict) -> dict:
    """Recompute tuning tables and statistics from the runs, in place."""
    cfg = results["config"]
    runs = results["runs"]
    tuning = {}
    for task in cfg["tasks"]:
        for model in cfg["models"]:
            for fam in cfg["families"]:
                group = [r for r in runs if r["phase"] == "sweep" and (r["task"], r["model"], r["family"]) == (task, model, fam)]
                if group:
                    tuning[f"{task}/{model}/{fam}"] = select_settings(group, cfg["fa_per_hour"][0])
    results["tuning"] = tuning
    results["selection_rule"] = SELECTION_RULE
    results["statistics"] = bootstrap([r for r in runs if r["phase"] == "main"], cfg)
    return results


# ----------------------------------------------------------------------------------------------
# markdown


def _fmt(metric: str, s: dict, diff: bool = False) -> str:
    _, _, scale, unit, digits = METRICS[metric]
    v, lo, hi = _num(s["value"]), _num(s["ci"][0]), _num(s["ci"][1])
    if math.isnan(v):
        return "n/a"
    sign = "+" if diff else ""
    text = f"{v * scale:{sign}.{digits}f} [{lo * scale:{sign}.{digits}f}, {hi * scale:{sign}.{digits}f}]"
    return text


def _labels(cfg: dict) -> dict[str, str]:
    fa, fa2 = cfg["fa_per_hour"][0], cfg["fa_per_hour"][-1]
    return {k: v[0].format(fa=f"{fa:g}", fa2=f"{fa2:g}", eq=f"{cfg['equal_frr'] * 100:g} %") for k, v in METRICS.items()}


def main_tables(results: dict) -> list[str]:
    cfg = results["config"]
    labels = _labels(cfg)
    lines = []
    for cell, st in results["statistics"].items():
        task, model = cell.split("/")
        params = next((r["parameters"] for r in results["runs"] if r["task"] == task and r["model"] == model), 0)
        lines += [f"### {TASK_TITLES[task]}, {model} ({params / 1000:.0f}k parameters)", "",
                  f"Test split: {st['positives']} positive utterances ({st['events']} events), {st['negatives']} negatives "
                  f"({st['negative_hours']:.2f} h: {cfg['fa_per_hour'][0]:g} FA/h allows "
                  f"{math.floor(cfg['fa_per_hour'][0] * st['negative_hours'] + 1e-9)} false alarms, "
                  f"{cfg['fa_per_hour'][-1]:g} FA/h allows {math.floor(cfg['fa_per_hour'][-1] * st['negative_hours'] + 1e-9)}). "
                  "Mean over seeds [bootstrap 95 % interval].", ""]
        lines.append("| loss | tuned setting | seeds | " + " | ".join(labels[k] for k in METRICS) + " |")
        lines.append("| --- | --- | --- | " + " | ".join("---" for _ in METRICS) + " |")
        for fam, row in st["families"].items():
            name = "energy detector (no training)" if fam == "energy" else fam
            lines.append(f"| {name} | {setting_label(fam, row['setting'])} | {len(row['seeds'])} | "
                         + " | ".join(_fmt(k, row["metrics"][k]) for k in METRICS) + " |")
        lines += ["", f"Paired difference to FCE (same seeds, same resampled test utterances), [95 % interval], "
                      "verdict only where the interval excludes zero:", ""]
        lines.append("| loss | " + " | ".join(labels[k] for k in METRICS) + " |")
        lines.append("| --- | " + " | ".join("---" for _ in METRICS) + " |")
        for fam, row in st["families"].items():
            if "vs_fce" in row:
                lines.append(f"| {fam} − FCE | " + " | ".join(
                    _fmt(k, row["vs_fce"][k], diff=True) + ("" if row["vs_fce"][k]["verdict"] == "no evidence"
                                                            else f" **{row['vs_fce'][k]['verdict']}**")
                    for k in METRICS) + " |")
        lines.append("")
        voices = sorted({v for row in st["families"].values() for v in row["frr_by_voice"]})
        if voices and task == "keyword":
            lines.append(f"FRR by test voice at {cfg['fa_per_hour'][0]:g} FA/h (mean over seeds):")
            lines.append("")
            lines.append("| loss | " + " | ".join(voices) + " |")
            lines.append("| --- | " + " | ".join("---" for _ in voices) + " |")
            for fam, row in st["families"].items():
                lines.append(f"| {fam} | " + " | ".join(f"{_num(row['frr_by_voice'].get(v)) * 100:.1f} %"
                                                      for v in voices) + " |")
            lines.append("")
        cats = sorted({c for row in st["families"].values() for c in row["fa_per_hour_by_category"]})
        if cats:
            lines.append(f"False alarms per hour by kind of negative at the {cfg['fa_per_hour'][0]:g} FA/h operating point "
                         "(mean over seeds; alarms in parentheses):")
            lines.append("")
            lines.append("| loss | " + " | ".join(cats) + " |")
            lines.append("| --- | " + " | ".join("---" for _ in cats) + " |")
            for fam, row in st["families"].items():
                lines.append(f"| {fam} | " + " | ".join(
                    f"{_num(row['fa_per_hour_by_category'].get(c)):.1f} ({_num(row['alarms_by_category'].get(c)):.1f})"
                    for c in cats) + " |")
            lines.append("")
    return lines


def tuning_tables(results: dict) -> list[str]:
    cfg = results["config"]
    lines = [f"**Tuning on the validation voices** (seed 0, {cfg['settings_per_family']} settings per family; rule: "
             f"{results['selection_rule']}). Each cell: valid AUC / FRR @ {cfg['fa_per_hour'][0]:g} FA/h / mean latency; "
             "the chosen setting is bold.", ""]
    lines.append("| task / model / family | " + " | ".join(f"setting {i + 1}" for i in range(cfg["settings_per_family"])) + " |")
    lines.append("| --- | " + " | ".join("---" for _ in range(cfg["settings_per_family"])) + " |")
    for cell, t in results["tuning"].items():
        fam = cell.split("/")[-1]
        cells = []
        for row in sorted(t["rows"], key=lambda r: setting_label(fam, r["setting"])):
            text = (f"{setting_label(fam, row['setting'])}: {row['auc'] * 100:.2f} / "
                    + ("n/a" if math.isnan(_num(row['frr'])) else f"{row['frr'] * 100:.1f} %") + " / "
                    + ("n/a" if math.isnan(_num(row['latency'])) else f"{row['latency'] * 1000:.0f} ms"))
            cells.append(f"**{text}**" if row["setting"] == t["chosen"] else text)
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    return lines


def data_lines(results: dict) -> list[str]:
    data = results["data"]
    conf = results["confusables"]
    cfg = results["config"]
    lines = ["**Data.** Voices (espeak-ng accent+variant): train "
             f"{sum(1 for v in cfg['voices'] if v[1] == 'train')}; valid "
             + ", ".join(v[0] for v in cfg["voices"] if v[1] == "valid") + "; test "
             + ", ".join(v[0] for v in cfg["voices"] if v[1] == "test")
             + " (valid and test voice variants are used by no other split).", ""]
    lines.append("| task | split | utterances | positives | events | negatives | audio | negative audio | negatives by kind |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for task, per in data["tasks"].items():
        for split, d in per.items():
            kinds = ", ".join(f"{k} {v}" for k, v in d["negatives_by_category"].items())
            lines.append(f"| {TASK_TITLES[task]} | {split} | {d['utterances']} | {d['positives']} | {d['events']} | "
                         f"{d['negatives']} | {d['hours']:.2f} h | {d['negative_hours']:.2f} h | {kinds} |")
    lines.append("")
    rejected = "; ".join(f"\"{p}\" (contains the wake phrase in {', '.join(a)})" for p, a in conf["rejected"].items())
    lines.append(f"Confusables checked with `espeak-ng -x` in every accent ({', '.join(cfg['accents'])}): kept "
                 f"{len(conf['kept'])} ({', '.join(conf['kept'])}); rejected: {rejected or 'none'}. Wake phrase: "
                 + "; ".join(f"{a} `{p}`" for a, p in conf["wake"].items()) + ".")
    if "onset_remix" in data:
        o = data["onset_remix"]
        lines.append("")
        lines.append(f"Onset remix: {o['speech_with_distractors']} of {o['speech_utterances']} speech utterances and "
                     f"{o['noise_clips_with_distractors']} of {o['noise_clips']} noise clips carry distractors "
                     f"({', '.join(f'{k} {v}' for k, v in o['distractors_by_kind'].items())}); speech SNR p10/p50/p90 "
                     f"{'/'.join(str(x) for x in o['snr_db_p10_p50_p90'])} dB.")
    if "trigger_labels_by_role" in data:
        lines.append("")
        lines.append("Trigger labels from `anchorprep accel` + `merge` vs the designed roles: "
                     + "; ".join(f"{role}: {v['positive']} positive, {v['negative']} negative"
                                 for role, v in sorted(data["trigger_labels_by_role"].items())) + ".")
    return lines


def corpus_reused(results: dict) -> bool:
    """Whether the run reused an earlier corpus (results written before the flag existed: a corpus
    stage under 10 s cannot have synthesised thousands of utterances)."""
    timing = results.get("data_timing", {})
    return bool(timing["corpus_reused"]) if "corpus_reused" in timing else timing.get("corpus_s", 99) < 10


def load_note(results: dict) -> str:
    """", load average 3.1 (start 1.2, end 2.0)": the machine's 1-minute load during the run, if recorded."""
    load = results["environment"].get("load")
    if not load:
        return ""
    return (f", mean 1-minute load average {load['mean_1min_samples']:.1f} (at start {load['start'][0]:.1f}, "
            f"at end {load['end'][0]:.1f})")


def reused_stages(results: dict) -> list[str]:
    """The data stages this run found done by an earlier run with identical parameters (a stage of
    a few seconds cannot have remixed thousands of clips or computed hours of fbank features)."""
    timing = results.get("data_timing", {})
    stages = ["espeak-ng corpus"] if corpus_reused(results) else []
    if timing.get("remix_and_accel_s", 99) < 5 and {"onset", "trigger"} & set(results["config"]["tasks"]):
        stages.append("onset remix and accelerometer traces")
    if timing.get("features_s", 99) < 30:
        stages.append("feature cache")
    reused = sum(1 for r in results["runs"] if r.get("reused"))
    if reused:
        stages.append(f"{reused} of {len(results['runs'])} training jobs")
    return stages


def markdown(results: dict) -> str:
    cfg = results["config"]
    timing = results.get("timing", {})
    lines = [f"Command: `{results['command']}`  ",
             f"Wall time: {timing.get('total_s', float('nan')) / 60:.1f} min on {results['environment']['cpus']} CPU cores "
             f"({results['environment']['torch']}, {cfg['workers']} worker processes x {cfg['threads']} torch thread, "
             f"device {cfg['device']}{load_note(results)}); " + ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s"
                                                        for k, v in {**results.get('data_timing', {}), **timing}.items()
                                                        if k not in ("total_s", "corpus_reused"))
             + ("." if not reused_stages(results) else
                f" (reused from an earlier run with identical parameters, so not in this wall time: "
                f"{', '.join(reused_stages(results))})."), ""]
    lines += verdict_lines(results) + [""]
    lines += main_tables(results)
    lines += tuning_tables(results) + [""]
    lines += data_lines(results) + [""]
    lines.append("![latency vs FRR](latency_vs_frr.png)")
    return "\n".join(lines) + "\n"


def verdict_lines(results: dict) -> list[str]:
    """Where SAL helps, where not, where it hurts: only differences whose interval excludes zero."""
    cfg = results["config"]
    labels = _labels(cfg)
    lines = []
    for cell, st in results["statistics"].items():
        row = st["families"].get("SAL", {}).get("vs_fce")
        if not row:
            continue
        task, model = cell.split("/")
        better = [labels[k] + " " + _fmt(k, row[k], diff=True) for k in METRICS if row[k]["verdict"] == "better"]
        worse = [labels[k] + " " + _fmt(k, row[k], diff=True) for k in METRICS if row[k]["verdict"] == "worse"]
        none = [labels[k] for k in METRICS if row[k]["verdict"] in ("no evidence", "n/a")]
        others = [f for f in st["families"] if f not in ("FCE", "SAL", "energy")]
        ctrl = []
        for f in others:
            d = st["families"][f].get("vs_fce", {})
            wins = [labels[k] for k in METRICS if d.get(k, {}).get("verdict") == "better"]
            if wins:
                ctrl.append(f"{f} also beats FCE on {', '.join(wins)}")
        lines.append(f"* **{TASK_TITLES[task]}, {model}** — SAL vs FCE: better on "
                     + ("; ".join(better) if better else "nothing") + "; worse on "
                     + ("; ".join(worse) if worse else "nothing") + "; no evidence either way on "
                     + (", ".join(none) if none else "nothing") + "."
                     + (" " + "; ".join(ctrl) + "." if ctrl else ""))
    return lines


def paper_lines(results: dict) -> list[str]:
    st = results["statistics"].get("keyword/cnn") or next((v for k, v in results["statistics"].items()
                                                          if k.startswith("keyword/")), None)
    if not st or "SAL" not in st["families"] or "FCE" not in st["families"]:
        return []
    f = {k: _num(v["value"]) for k, v in st["families"]["FCE"]["metrics"].items()}
    s = {k: _num(v["value"]) for k, v in st["families"]["SAL"]["metrics"].items()}
    d = st["families"]["SAL"].get("vs_fce", {})
    fa = results["config"]["fa_per_hour"][0]
    lat_change = (s["latency"] / f["latency"] - 1) * 100 if f["latency"] else float("nan")
    paper_change = (PAPER["latency_sal_s"] / PAPER["latency_fce_s"] - 1) * 100
    ms = lambda x: "n/a" if math.isnan(x) else f"{x * 1000:.0f} ms"  # noqa: E731
    change = "n/a" if math.isnan(lat_change) else f"{lat_change:+.0f} %"
    return [f"Paper's headline (keyword spotting): AUC {PAPER['auc_fce'] * 100:.2f} → {PAPER['auc_sal'] * 100:.2f} %, mean "
            f"latency {PAPER['latency_fce_s']:.2f} → {PAPER['latency_sal_s']:.2f} s ({paper_change:+.0f} %). Here: AUC "
            f"{f['auc'] * 100:.2f} → {s['auc'] * 100:.2f} % (difference "
            f"{_fmt('auc', d['auc'], True) if d else 'n/a'} points), mean latency at {fa:g} FA/h "
            f"{ms(f['latency'])} → {ms(s['latency'])} ({change}; difference "
            f"{_fmt('latency', d['latency'], True) if d else 'n/a'} ms). Latency here is measured from the keyword's end "
            "(the anchor), the paper's from its own reference point, so only the relative change is comparable."]


def reading_lines(results: dict) -> list[str]:
    """Facts a reader needs next to the verdicts, each computed from the results."""
    cfg = results["config"]
    fa = cfg["fa_per_hour"][0]
    out = []
    kw = next((v for k, v in results["statistics"].items() if k.startswith("keyword/")), None)
    if kw and "FCE" in kw["families"]:
        fce = kw["families"]["FCE"]
        auc = fce["metrics"]["auc"]
        met = _num(auc["value"]) >= 0.99
        voices = fce["frr_by_voice"]
        worst = max(voices, key=lambda v: _num(voices[v])) if voices else None
        alarms = fce["alarms_by_category"]
        total = sum(_num(v) for v in alarms.values())
        conf = _num(alarms.get("confusable", 0.0))
        low = _num(auc["ci"][0]) >= 0.99
        aim = ("the mean and the whole interval meet" if low else "the mean meets, the interval's lower end does not meet"
               ) if met else "below"
        out.append(f"* Keyword-spotting baseline: the FCE model's AUC on unseen voices is "
                   f"{_fmt('auc', auc)} % ({aim} the 99 % this benchmark aimed for), its FRR at "
                   f"{fa:g} FA/h {_fmt('frr', fce['metrics']['frr'])} %"
                   + (f"; the worst test voice ({worst}) has FRR {_num(voices[worst]) * 100:.0f} %" if worst else "")
                   + (f"; {conf / total * 100:.0f} % of its false alarms at that point are on confusable negatives"
                      if total else "") + ".")
        sal = kw["families"].get("SAL", {}).get("vs_fce")
        if sal and sal["latency"]["verdict"] == "better" and _num(sal["frr"]["value"]) > 0:
            out.append(f"* SAL's shorter latency at {fa:g} FA/h comes with a higher FRR there "
                       f"({_fmt('frr', sal['frr'], True)} points, interval includes zero); at equal FRR "
                       f"({cfg['equal_frr'] * 100:g} %) the difference is {_fmt('latency_eq', sal['latency_eq'], True)} ms.")
    for task in ("onset", "trigger"):
        st = next((v for k, v in results["statistics"].items() if k.startswith(task + "/")), None)
        if st and "energy" in st["families"] and "FCE" in st["families"]:
            e, f = st["families"]["energy"]["metrics"], st["families"]["FCE"]["metrics"]
            out.append(f"* {TASK_TITLES[task].capitalize()}: the untrained energy detector reaches AUC "
                       f"{_fmt('auc', e['auc'])} % and FRR {_fmt('frr', e['frr'])} % at {fa:g} FA/h (FCE: "
                       f"{_fmt('auc', f['auc'])} %, {_fmt('frr', f['frr'])} %): a threshold does not solve it.")
    return out


def readme_section(results: dict) -> str:
    """The README's "Evidence: does SAL pay off?" section, from the results alone."""
    cfg = results["config"]
    timing = results.get("timing", {})
    lines = [README_SECTION, "",
             "<!-- generated by benchmarks/sal_training/run.py from results.json; edit sal_report.readme_section -->", "",
             "`benchmarks/sal_training/run.py` trains small causal models end to end through anchorprep's pipelines "
             "on three synthetic tasks: keyword spotting (`anchorprep align -k`, anchor = end of \"hey computer\"), "
             "speech onset with distractor bursts and low SNR (`anchorprep align --speech-onsets`, exact first-word "
             "onsets) and a multi-modal trigger, audio + accelerometer (`anchorprep accel` + `merge`). Every loss family "
             f"(FCE, FCE with class weight α, focal loss, SAL) gets {cfg['settings_per_family']} settings tuned by one rule on "
             f"validation voices; the chosen setting then trains with {cfg['seeds']} seed(s), each seed giving every family "
             "the same initial weights and batch order. Intervals are bootstrap 95 % intervals over seeds and test "
             "utterances; a difference is called better/worse only where its interval excludes zero. Details and all "
             "tables: [`benchmarks/sal_training/results/results.md`](benchmarks/sal_training/results/results.md).", "",
             "```bash",
             f"python benchmarks/sal_training/run.py            # full run: {timing.get('total_s', float('nan')) / 60:.0f} min "
             f"on {results['environment']['cpus']} CPU cores"
             + (f" shared (mean load average {results['environment']['load']['mean_1min_samples']:.1f})"
                if results["environment"].get("load") else "")
             + (" + the stages it reused on a first run (see results.md)" if reused_stages(results) else ""),
             "python benchmarks/sal_training/run.py --quick --out /tmp/q   # smoke test (< 2 min), run by the tests",
             "```", "", "**What the evidence says** (SAL minus FCE, test voices unseen in training):", ""]
    lines += verdict_lines(results) + [""]
    lines += reading_lines(results) + [""]
    lines += paper_lines(results) + [""]
    lines += ["AUC and FRR in %, latency in ms from the anchor (negative: fired before it, up to the 200 ms tolerance); "
              "mean over seeds [bootstrap 95 % interval].", ""]
    for cell, st in results["statistics"].items():
        task, model = cell.split("/")
        labels = _labels(cfg)
        lines.append(f"| {TASK_TITLES[task]}, {model} | " + " | ".join(labels[k] for k in METRICS) + " |")
        lines.append("| --- | " + " | ".join("---" for _ in METRICS) + " |")
        for fam, row in st["families"].items():
            lines.append(f"| {'energy detector' if fam == 'energy' else fam} | "
                         + " | ".join(_fmt(k, row["metrics"][k]) for k in METRICS) + " |")
        lines.append("")
    lines.append("![latency vs FRR per loss](benchmarks/sal_training/results/latency_vs_frr.png)")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, section: str) -> bool:
    """Replace the README's evidence section (up to the next ``## `` heading); False if it is missing."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start = text.find(README_SECTION + "\n")
    if start < 0:
        return False
    nxt = re.search(r"^## ", text[start + len(README_SECTION):], flags=re.M)
    end = start + len(README_SECTION) + nxt.start() if nxt else len(text)
    readme.write_text(text[:start] + section + "\n" + text[end:], encoding="utf-8")
    return True


def update_bench_readme(readme: Path, body: str) -> bool:
    """Replace the generated results block of benchmarks/sal_training/README.md."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BENCH_BEGIN), text.find(BENCH_END)
    if start < 0 or end < start:
        return False
    body = body.replace("](latency_vs_frr.png)", "](results/latency_vs_frr.png)")
    readme.write_text(text[: start + len(BENCH_BEGIN)] + "\n\n" + body + "\n" + text[end:], encoding="utf-8")
    return True


# ----------------------------------------------------------------------------------------------
# plot


COLOURS = {"energy": "#999999", "FCE": "#444444", "FCE+α": "#9467bd", "FL": "#8c564b", "SAL": "#1f77b4", "SA+FL": "#2ca02c"}


def plot(results: dict, path: Path) -> None:
    """Mean latency vs FRR on the test split, one panel per (task, model): lines = mean over seeds
    of the latency at the highest threshold with FRR <= x, bands = bootstrap 95 % intervals; markers
    = the operating point at the first FA/h target, with intervals on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = results["statistics"]
    fa = results["config"]["fa_per_hour"][0]
    fig, axes = plt.subplots(1, len(stats), figsize=(5.2 * len(stats), 4.2), squeeze=False)
    for ax, (cell, st) in zip(axes[0], stats.items()):
        task, model = cell.split("/")
        for fam, row in st["families"].items():
            c = COLOURS.get(fam, "black")
            x = np.array(row["curve"]["frr"]) * 100
            y = np.array([_num(p["value"]) for p in row["curve"]["latency_s"]]) * 1000
            lo = np.array([_num(p["ci"][0]) for p in row["curve"]["latency_s"]]) * 1000
            hi = np.array([_num(p["ci"][1]) for p in row["curve"]["latency_s"]]) * 1000
            ax.plot(x, y, "-", color=c, lw=1.4, label=fam)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax.fill_between(x, lo, hi, color=c, alpha=0.12, lw=0)
            m = {k: {"value": _num(v["value"]), "ci": [_num(v["ci"][0]), _num(v["ci"][1])]} for k, v in row["metrics"].items()}
            if not math.isnan(m["frr"]["value"]) and not math.isnan(m["latency"]["value"]):
                ax.errorbar(m["frr"]["value"] * 100, m["latency"]["value"] * 1000,
                            xerr=[[max(0, (m["frr"]["value"] - m["frr"]["ci"][0]) * 100)],
                                  [max(0, (m["frr"]["ci"][1] - m["frr"]["value"]) * 100)]],
                            yerr=[[max(0, (m["latency"]["value"] - m["latency"]["ci"][0]) * 1000)],
                                  [max(0, (m["latency"]["ci"][1] - m["latency"]["value"]) * 1000)]],
                            fmt="o", color=c, ms=5, capsize=3)
        ax.set_title(f"{TASK_TITLES[task]}, {model}", fontsize=9)
        ax.set_xlabel("FRR on test (%)")
        ax.set_ylabel("mean detection latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title=f"● operating point at {fa:g} FA/h", title_fontsize=7)
    fig.suptitle("Latency vs false rejects: mean over seeds, bands and bars = bootstrap 95 % intervals", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
