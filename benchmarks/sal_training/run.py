#!/usr/bin/env python3
"""Streaming Anchor Loss vs frame-wise cross entropy, end to end through anchorprep, in one command.

    python benchmarks/sal_training/run.py [--quick] [--out DIR] [--seeds 3] [--workers 2]

1. Corpus: scripts/espeak_corpus.py synthesises positives (carrier sentences around "hey
   computer") and negatives (other commands, chatter and confusable phrases) with 12 espeak-ng
   voice variants (8 train, 2 valid, 2 test: test voices are unseen), random speed, pitch and
   leading silence, coloured noise at 5-20 dB SNR; noise-only clips are added as the onset task's
   negatives.
2. Shards: ``python -m anchorprep align -k "hey computer"`` (keyword-end anchors) and
   ``python -m anchorprep vad --onsets first`` (speech-onset anchors), 30 ms model frames.
3. Features: 40-bin fbank from ``anchorprep.data`` (computed once, cached in the work folder).
4. Sweep: SAL kernel x width x gain on the validation split (seed 0); the best setting is used by
   SAL, SA+FL and SAFL in the main runs.
5. Main runs: causal CNN and GRU (< 100k parameters) x FCE, FL, SAL, SA+FL, SAFL x seeds, same
   optimiser, epochs, batches and initial weights for every loss; metrics from
   ``anchorprep.metrics.evaluate`` on the test split.
6. Output in ``--out``: results.md, results.json, latency_vs_frr.png (and, for the full run into the
   default folder, the README's results section).

``--quick`` runs a tiny corpus, one seed, three epochs and a two-setting sweep: a smoke test of
the pipeline (shards -> loader -> loss -> metrics), not a measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import sal_prep
import sal_report

DEFAULT_OUT = HERE / "results"

# Sweep grid for the SAL anchor weights (widths in model frames: 30 ms each with the default grid).
SWEEP_FULL = [{"kernel": k, "width": w, "gain": g} for k in ("linear", "exponential") for w in (5.0, 15.0) for g in (1.0, 4.0)]
SWEEP_QUICK = [{"kernel": "linear", "width": 5.0, "gain": 4.0}, {"kernel": "exponential", "width": 15.0, "gain": 1.0}]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--quick", action="store_true", help="tiny corpus, one seed, 3 epochs: pipeline smoke test")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {DEFAULT_OUT.relative_to(REPO)})")
    ap.add_argument("--work", type=Path, default=None, help="corpus, shards and feature cache (default OUT/work)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per (task, model, loss) (default 3; quick 1)")
    ap.add_argument("--workers", type=int, default=2, help="parallel training processes (and corpus/CLI workers)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default 10; quick 3)")
    ap.add_argument("--positives", type=int, default=None, help="corpus positives (default 750; quick 36)")
    ap.add_argument("--negatives", type=int, default=None, help="corpus negatives (default 750; quick 36)")
    ap.add_argument("--eval-negatives", type=int, default=None,
                    help="extra negatives spoken by the valid and test voices only (default 400; quick 12)")
    ap.add_argument("--noise-clips", type=int, default=None, help="noise-only clips, all splits (default 500; quick 24)")
    ap.add_argument("--eval-noise-clips", type=int, default=None,
                    help="extra noise-only clips for valid and test (default 300; quick 8)")
    ap.add_argument("--fa-per-hour", type=float, nargs="+", default=[20.0, 5.0, 10.0, 50.0],
                    help="FA/h targets; the first is the table's operating point (default 20, also 5 10 50)")
    ap.add_argument("--subsampling", type=int, default=3, help="feature frames per model frame (default 3: 30 ms)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-frames", type=int, default=6000, help="padded model frames per batch")
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="delete the work folder first (no reuse of an earlier corpus)")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render results.md, the plot (and README section) from OUT/results.json; no training")
    args = ap.parse_args(argv)
    q = args.quick
    args.out = (args.out or DEFAULT_OUT).resolve()
    args.work = (args.work or args.out / "work").resolve()
    args.seeds = args.seeds or (1 if q else 3)
    args.epochs = args.epochs or (3 if q else 10)
    args.positives = args.positives or (36 if q else 750)
    args.negatives = args.negatives or (36 if q else 750)
    args.eval_negatives = args.eval_negatives if args.eval_negatives is not None else (12 if q else 400)
    args.noise_clips = args.noise_clips if args.noise_clips is not None else (24 if q else 500)
    args.eval_noise_clips = args.eval_noise_clips if args.eval_noise_clips is not None else (8 if q else 300)
    args.window = round(300 / (10 * args.subsampling))  # positive window: 300 ms after the anchor
    if args.seeds < 1 or args.workers < 1 or args.epochs < 1:
        ap.error("--seeds, --workers and --epochs must be >= 1")
    return args


class Log:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f} s] {msg}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = Log()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        args.quick = results["config"]["quick"]
        results = sal_report.derive(_nan(results))
        write_outputs(args, results, results["runs"], log)
        return 0
    gen = sal_prep.load_generator()
    if not gen.espeak_available():
        print(f"error: libespeak-ng is not available; install it with: {gen.APT_HINT}", file=sys.stderr)
        return 2
    if args.fresh and args.work.exists():
        shutil.rmtree(args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}

    def stage(name: str, started: float) -> None:
        timing[f"{name}_s"] = round(time.perf_counter() - started, 1)

    # 1-3: data through the product
    t = time.perf_counter()
    corpus, reused = sal_prep.make_corpus(args.work, args.positives, args.negatives, args.corpus_seed, args.workers, log)
    eval_neg = None
    if args.eval_negatives:
        eval_neg, reused2 = sal_prep.make_corpus(args.work, 0, args.eval_negatives, args.corpus_seed + 1, args.workers, log,
                                                 name="corpus_eval_negatives", voices=sal_prep.eval_voices())
        reused = reused and reused2
    stage("corpus_reused" if reused else "corpus", t)
    t = time.perf_counter()
    truth = sal_prep.load_truth(corpus, eval_neg)
    keyword_manifest = sal_prep.speech_manifest(args.work, corpus, eval_neg)
    onset_manifest = sal_prep.make_noise_clips(args.work, keyword_manifest, truth, args.noise_clips,
                                               args.eval_noise_clips, args.corpus_seed)
    stage("noise_clips", t)
    t = time.perf_counter()
    commands = sal_prep.cli_commands(keyword_manifest, onset_manifest, args.work / "shards", args.subsampling,
                                     args.window, args.workers)
    reports = sal_prep.build_shards(commands, log)
    stage("shards", t)
    t = time.perf_counter()
    caches = sal_prep.cache_features(args.work / "shards", args.work / "cache", 40, args.workers, log)
    data = sal_prep.summarise(caches, truth, args.work / "shards" / "onset")
    stage("features", t)

    # 4-5: training
    t = time.perf_counter()
    runs, sweep, parameters = train_all(args, caches, log)
    stage("training", t)

    # 6: report
    t = time.perf_counter()
    results = assemble(args, commands, reports, data, runs, sweep, parameters, timing, log)
    stage("report", t)
    results["timing"] = {**timing, "total_s": round(time.perf_counter() - log.start, 1)}
    write_outputs(args, results, runs, log)
    log(f"done in {results['timing']['total_s'] / 60:.1f} min; results in {args.out}")
    return 0


def base_job(args, task: str, caches: dict) -> dict:
    return {"task": task, "cache": str(caches[task]), "epochs": args.epochs, "lr": args.lr,
            "max_frames": args.max_frames, "fa_per_hour": tuple(args.fa_per_hour), "threads": args.threads}


def train_all(args, caches: dict, log):
    """Run the sweep and the main grid in a process pool; return (runs, sweep ranking, model sizes).

    Phase A submits the sweep (seed 0, every SAL setting) and the FCE / FL main runs; once the
    sweep is complete the best setting is chosen and the SAL / SA+FL / SAFL main runs follow (the
    SAL seed-0 main run is the sweep's run of the chosen setting: identical job, not repeated).
    """
    import sal_train
    from sal_train import Job

    tasks, models = sal_prep.TASKS, sal_train.MODELS
    grid = SWEEP_QUICK if args.quick else SWEEP_FULL
    sweep_seed = 0
    sweep_jobs = [Job(phase="sweep", model=m, loss="SAL", seed=sweep_seed, weights=w, **base_job(args, t, caches))
                  for w in grid for t in tasks for m in models]
    baseline_jobs = [Job(phase="main", model=m, loss=loss, seed=s, **base_job(args, t, caches))
                     for s in range(args.seeds) for loss in ("FCE", "FL") for t in tasks for m in models]
    # GRU jobs are the slowest: start them first so the pool drains evenly.
    order = lambda j: (j.phase != "sweep", j.model != "gru")
    pending_a = sorted(sweep_jobs, key=order) + sorted(baseline_jobs, key=order)
    results: list[dict] = []
    total = len(sweep_jobs) + len(baseline_jobs) + (args.seeds * 3 - 1) * len(tasks) * len(models)
    ctx = get_context("spawn")  # fresh interpreters: no inherited torch thread pools
    sweep_done: list[dict] = []
    best = None
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        futures: dict[Future, Job] = {pool.submit(sal_train.run_job, j): j for j in pending_a}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures.pop(fut)
                res = fut.result()
                results.append(res)
                ev = res["eval"]["test"]
                log(f"{len(results)}/{total} {res['key']}: {res['seconds']:.0f} s, loss {res['epoch_loss'][0]:.3f} -> "
                    f"{res['epoch_loss'][-1]:.3f}, valid AUC {res['eval']['valid']['auc'] or float('nan'):.3f}, "
                    f"test AUC {ev['auc'] or float('nan'):.3f} FRR {ev['operating']['frr'] if ev['operating']['frr'] is not None else float('nan'):.3f}")
                if job.phase == "sweep":
                    sweep_done.append(res)
                    if len(sweep_done) == len(sweep_jobs):
                        fce0 = [r for r in results if r["loss"] == "FCE" and r["seed"] == sweep_seed and r["phase"] == "main"]
                        best = sal_report.sweep_ranking(sweep_done, fce0)["best"]
                        log(f"sweep done: best SAL setting on valid = {sal_report.setting_label(best)}")
                        for s in range(args.seeds):
                            for loss in ("SAL", "SA+FL", "SAFL"):
                                for t in tasks:
                                    for m in models:
                                        if loss == "SAL" and s == sweep_seed:
                                            continue
                                        j = Job(phase="main", model=m, loss=loss, seed=s, weights=best, **base_job(args, t, caches))
                                        futures[pool.submit(sal_train.run_job, j)] = j
    # The SAL seed-0 main runs are the sweep runs of the chosen setting.
    for res in sweep_done:
        if res["weights"] == best:
            results.append({**res, "phase": "main", "key": res["key"].replace("sweep/", "main/", 1), "reused_from_sweep": True})
    fce0 = [r for r in results if r["phase"] == "main" and r["loss"] == "FCE" and r["seed"] == sweep_seed]
    sweep = sal_report.sweep_ranking(sweep_done, fce0)
    parameters = {}
    for r in results:
        parameters[r["model"]] = r["parameters"]
    return results, sweep, parameters


def assemble(args, commands, reports, data, runs, sweep, parameters, timing, log) -> dict:
    import torch

    argv = ["python", "benchmarks/sal_training/run.py"] + [a for a in sys.argv[1:]]
    results = {
        "command": " ".join(shlex.quote(a) for a in argv),
        "config": {
            "quick": args.quick, "seeds": args.seeds, "sweep_seed": 0, "epochs": args.epochs, "lr": args.lr,
            "optimiser": "AdamW (weight decay 1e-4), linear warm-up 5% then cosine decay, grad-norm clip 5",
            "max_frames_per_batch": args.max_frames, "workers": args.workers, "threads": args.threads,
            "corpus": {"positives": args.positives, "negatives": args.negatives, "eval_negatives": args.eval_negatives,
                       "noise_clips": args.noise_clips, "eval_noise_clips": args.eval_noise_clips,
                       "seed": args.corpus_seed, "wake_phrase": sal_prep.WAKE_PHRASE},
            "subsampling": args.subsampling, "positive_window_frames": [0, args.window], "fbank_bins": 40,
            "fa_per_hour": list(args.fa_per_hour), "tolerance_s": 0.2, "max_latency_s": 1.0, "debounce_s": 1.0,
            "gamma": __import__("anchorprep.loss", fromlist=["DEFAULT_GAMMA"]).DEFAULT_GAMMA,
            "sweep_grid": SWEEP_QUICK if args.quick else SWEEP_FULL,
            "tasks": list(sal_prep.TASKS), "models": ["cnn", "gru"],
        },
        "anchorprep_commands": {t: "python -m anchorprep " + " ".join(shlex.quote(a) for a in c) for t, c in commands.items()},
        "shard_reports": reports,
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": f"torch {torch.__version__}",
                        "platform": platform.platform()},
        "data": data,
        "allowed_alarms": {t: sal_prep.allowed_alarms(args.fa_per_hour[0], d["test"]["negative_hours"])
                           for t, d in data["tasks"].items()},
        "parameters": parameters,
        "runs": [_slim(r) for r in runs],
    }
    sal_report.derive(results)
    assert results["sweep"]["best"] == sweep["best"]
    return results


def _slim(run: dict) -> dict:
    """A run without the validation curve (the test curve feeds the plot)."""
    out = dict(run)
    out["eval"] = {split: {k: v for k, v in ev.items() if not (split == "valid" and k == "curve")}
                   for split, ev in run["eval"].items()}
    return out


def write_outputs(args, results: dict, runs: list[dict], log) -> None:
    out = args.out
    body = sal_report.markdown(results)
    (out / "results.md").write_text("# SAL training benchmark: results\n\n" + body, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(_finite(results), indent=1, allow_nan=False, default=_json_default)
                                      + "\n", encoding="utf-8")
    try:
        sal_report.plot(results, [r for r in runs if r["phase"] == "main"], out / "latency_vs_frr.png")
    except ImportError:
        log("matplotlib is not installed (pip install 'anchorprep[plot]'): no latency_vs_frr.png")
    if not args.quick and out == DEFAULT_OUT.resolve() and sal_report.update_readme(HERE / "README.md", body):
        log("README.md results section updated")


def _finite(value):
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _nan(value):
    """Inverse of `_finite` for the numbers the report reads (null -> NaN inside metric dicts)."""
    if isinstance(value, dict):
        return {k: (float("nan") if v is None and k in _NUMERIC_KEYS else _nan(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan(v) for v in value]
    return value


_NUMERIC_KEYS = {"mean", "std", "auc", "frr", "fa_per_hour", "latency_mean", "latency_p50", "latency_p90",
                 "mean_diff", "mean_valid_frr", "p50", "p90", "threshold"}


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


if __name__ == "__main__":
    sys.exit(main())
