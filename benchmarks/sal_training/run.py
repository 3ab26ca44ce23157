#!/usr/bin/env python3
"""Streaming Anchor Loss vs fairly tuned controls, end to end through anchorprep, in one command.

    python benchmarks/sal_training/run.py [--quick] [--out DIR] [--seeds 5] [--workers 2] [--device cuda]

1. Data (sal_prep.py): an espeak-ng corpus with 85 voices (77 train over 71 voice variants; 4 valid
   and 4 test voices whose voice variants no other split uses), confusables checked with
   ``espeak-ng -x`` against every accent, >= 3 h of test negatives per task; a remix for speech onset (lower SNR, distractor bursts
   in the leading silence, noise-only clips); synthetic accelerometer traces for the multi-modal
   trigger task.
2. Labels, all from anchorprep's CLI: ``align -k "hey computer"`` (keyword end), ``align
   --speech-onsets`` (exact first-word onset), ``accel --preset raise`` + ``merge`` (speech onset
   confirmed by a raise gesture within 1 s).
3. Features: 40-bin fbank from ``anchorprep.data`` (+ per-frame accelerometer features).
4. Tuning: every loss family (FCE, FCE+α, FL, SAL) gets the same number of settings, trained with
   seed 0 and chosen by the same rule on the validation voices (sal_report.select_settings).
5. Main runs: the chosen setting of each family x seeds 1..N; for a seed every family starts from
   the same initial weights and sees the same batches in the same order. Plus a causal energy
   detector as a baseline row for the onset and trigger tasks.
6. Report (sal_report.py): paired differences to FCE with bootstrap 95 % CIs (resampling seeds and
   test utterances), latency at fixed FA/h and at equal FRR, per-voice and per-negative-category
   tables, latency-vs-FRR plot, README evidence section.

``--quick`` runs a tiny corpus, one seed, four epochs and two settings per family: a smoke test of
the pipeline, not a measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import sal_prep  # noqa: E402
import sal_report  # noqa: E402

DEFAULT_OUT = HERE / "results"
README = REPO / "README.md"
_CODE = ""  # digest of the code a job's result depends on (set by train_all)

# Four settings per family (the first two in --quick). FCE has no loss parameter: its settings
# are learning rates; the other families train at --lr.
GRIDS = {
    "FCE": [{"lr": x} for x in (3e-3, 1.5e-3, 6e-3, 1e-3)],
    "FCE+α": [{"alpha": a} for a in (0.8, 0.6, 0.9, 0.7)],
    "FL": [{"gamma": g} for g in (2.0, 1.0, 0.5, 4.0)],
    "SAL": [{"kernel": "exponential", "width": w, "gain": g} for w, g in ((5.0, 4.0), (15.0, 1.0), (15.0, 4.0), (5.0, 1.0))],
    "SA+FL": [{"kernel": "exponential", "width": w, "gain": g, "gamma": 2.0}
              for w, g in ((5.0, 4.0), (15.0, 1.0), (15.0, 4.0), (5.0, 1.0))],
}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--quick", action="store_true", help="tiny corpus, one seed, 4 epochs: pipeline smoke test")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {DEFAULT_OUT.relative_to(REPO)})")
    ap.add_argument("--work", type=Path, default=None, help="corpus, shards, feature cache, evidence (default OUT/work)")
    ap.add_argument("--tasks", nargs="+", default=list(sal_prep.TASKS), choices=sal_prep.TASKS)
    ap.add_argument("--models", nargs="+", default=["cnn"], choices=["cnn", "gru"], help="default cnn (gru: slower)")
    ap.add_argument("--families", nargs="+", default=["FCE", "FCE+α", "FL", "SAL"], choices=list(GRIDS))
    ap.add_argument("--settings", type=int, default=None, help="tuning settings per family (default 4; quick 2)")
    ap.add_argument("--seeds", type=int, default=None, help="main-run seeds per family (default 5; quick 1)")
    ap.add_argument("--workers", type=int, default=2, help="parallel training processes (and corpus/CLI workers)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    ap.add_argument("--device", default="cpu", help="torch device for training (e.g. cuda)")
    ap.add_argument("--epochs", type=int, default=None, help="keyword-task epochs (default 6; quick 4)")
    ap.add_argument("--onset-epochs", type=int, default=None, help="onset and trigger epochs (default 4)")
    ap.add_argument("--voices-per-accent", type=int, default=None, help="train voices per accent (default 11; quick 1)")
    ap.add_argument("--positives", type=int, default=None, help="corpus positives, all voices (default 3300)")
    ap.add_argument("--negatives", type=int, default=None, help="corpus negatives, all voices (default 3300)")
    ap.add_argument("--test-positives", type=int, default=None, help="extra positives by the test voices (default 200)")
    ap.add_argument("--test-negatives", type=int, default=None, help="extra negatives by the test voices (default 3000)")
    ap.add_argument("--valid-positives", type=int, default=None, help="extra positives by the valid voices (default 100)")
    ap.add_argument("--valid-negatives", type=int, default=None, help="extra negatives by the valid voices (default 1000)")
    ap.add_argument("--onset-train", type=int, default=None, help="train utterances of the onset tasks (default 900)")
    ap.add_argument("--noise-clips", type=int, default=None, help="noise-only clips, all splits (default 300)")
    ap.add_argument("--eval-noise-clips", type=int, default=None, help="extra valid/test noise clips, 8-15 s (default 2100)")
    ap.add_argument("--augment", action="store_true",
                    help="train with the feature augmentation sal_train.Augmentation (off: it hurt on the valid voices)")
    ap.add_argument("--fa-per-hour", type=float, nargs="+", default=[5.0, 1.0],
                    help="FA/h targets; the first is the operating point of the tables and of tuning")
    ap.add_argument("--equal-frr", type=float, default=0.1, help="FRR at which latencies are compared (default 0.1)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates")
    ap.add_argument("--subsampling", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-frames", type=int, default=None, help="padded model frames per batch (default 6000; quick 1500)")
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="delete the work folder first")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render the outputs from OUT/results.json and the evidence files in the work folder")
    args = ap.parse_args(argv)
    q = args.quick
    args.out = (args.out or DEFAULT_OUT).resolve()
    args.work = (args.work or args.out / "work").resolve()

    def pick(value, quick, full):
        return value if value is not None else (quick if q else full)

    args.settings = pick(args.settings, 2, 4)
    args.max_frames = pick(args.max_frames, 1500, 6000)
    args.seeds = pick(args.seeds, 1, 5)
    args.epochs = pick(args.epochs, 4, 6)
    args.onset_epochs = pick(args.onset_epochs, 4, 4)
    args.voices_per_accent = pick(args.voices_per_accent, 1, 11)
    args.positives = pick(args.positives, 60, 3300)
    args.negatives = pick(args.negatives, 60, 3300)
    args.test_positives = pick(args.test_positives, 4, 200)
    args.test_negatives = pick(args.test_negatives, 16, 3000)
    args.valid_positives = pick(args.valid_positives, 4, 100)
    args.valid_negatives = pick(args.valid_negatives, 8, 1000)
    args.onset_train = pick(args.onset_train, 40, 900)
    args.noise_clips = pick(args.noise_clips, 16, 300)
    args.eval_noise_clips = pick(args.eval_noise_clips, 12, 2100)
    args.window = round(300 / (10 * args.subsampling))  # positive window: 300 ms after the anchor
    if min(args.seeds, args.workers, args.epochs, args.onset_epochs, args.settings) < 1:
        ap.error("--seeds, --workers, --epochs, --onset-epochs and --settings must be >= 1")
    if args.settings > 4:
        ap.error("--settings: at most 4 (the grids have 4 settings per family)")
    return args


class Log:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f} s] {msg}", flush=True)


class LoadSampler:
    """The 1-minute load average, sampled every 30 s in a daemon thread (the machine may be shared)."""

    def __init__(self, every_s: float = 30.0) -> None:
        import threading

        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(every_s,), daemon=True).start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.samples.append(os.getloadavg()[0])

    def mean(self) -> float:
        self._stop.set()
        return round(sum(self.samples) / len(self.samples), 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = Log()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        sal_report.derive(results)
        write_outputs(args, results, log)
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

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    loads = LoadSampler()
    t = time.perf_counter()
    data_info = prepare_data(args, log)
    stage("data", t)

    t = time.perf_counter()
    runs = train_all(args, data_info["caches"], log)
    stage("training", t)

    t = time.perf_counter()
    results = assemble(args, data_info, runs)
    sal_report.derive(results)
    stage("report", t)
    results["timing"] = {**timing, "total_s": round(time.perf_counter() - log.start, 1)}
    results["environment"]["load"] = {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()],
                                      "mean_1min_samples": loads.mean()}
    write_outputs(args, results, log)
    log(f"done in {results['timing']['total_s'] / 60:.1f} min; results in {args.out}")
    return 0


def prepare_data(args, log) -> dict:
    """Corpus, remixes, accelerometer traces, anchorprep shards and the feature caches."""
    gen = sal_prep.load_generator()
    timing = {}
    t = time.perf_counter()
    check = sal_prep.check_confusables(sal_prep.ACCENTS, gen.CONFUSABLES)
    log(f"confusables: kept {len(check.kept)}/{len(gen.CONFUSABLES)}; rejected {check.rejected or 'none'}")
    voices = sal_prep.voice_table(args.voices_per_accent)
    test_voices = [v for v in voices if v[1] == "test"]
    valid_voices = [v for v in voices if v[1] == "valid"]
    made = [sal_prep.make_corpus(args.work, "corpus", args.positives, args.negatives, args.corpus_seed, voices,
                                 check.kept, args.workers, log)]
    prefixes = [""]
    for name, positives, negatives, seed, split_voices, prefix in (
            ("corpus_test_extra", args.test_positives, args.test_negatives, 1, test_voices, "tx-"),
            ("corpus_valid_extra", args.valid_positives, args.valid_negatives, 2, valid_voices, "vx-")):
        if positives or negatives:
            made.append(sal_prep.make_corpus(args.work, name, positives, negatives, args.corpus_seed + seed,
                                             split_voices, check.kept, args.workers, log))
            prefixes.append(prefix)
    corpora = [(manifest, prefix) for (manifest, _), prefix in zip(made, prefixes)]
    keyword_manifest, truth = sal_prep.combine_corpora(args.work, corpora)
    timing["corpus_s"] = round(time.perf_counter() - t, 1)
    timing["corpus_reused"] = all(reused for _, reused in made)

    t = time.perf_counter()
    main_rows = [r for r in sal_prep._read_csv(keyword_manifest) if not r["utt_id"].startswith(("tx-", "vx-"))]
    onset_rows = [r for r in main_rows if r["split"] == "train"][: args.onset_train] + \
                 [r for r in main_rows if r["split"] != "train"]
    categories: dict[str, dict[str, str]] = {"keyword": sal_prep.keyword_categories(truth, check.kept)}
    onset_manifest, info, accel_manifest = None, {}, None
    if {"onset", "trigger"} & set(args.tasks):
        params = {"rows": _digest(onset_rows), "noise_clips": args.noise_clips, "eval_noise_clips": args.eval_noise_clips,
                  "seed": args.corpus_seed, "code": _digest([_sha(HERE / "sal_prep.py"),
                                                             _sha(REPO / "scripts" / "make_accel_samples.py")])}
        stamp = args.work / "onset_stamp.json"
        if stamp.is_file() and json.loads(stamp.read_text())["params"] == params:
            saved = json.loads(stamp.read_text())
            onset_manifest, accel_manifest, info = Path(saved["onset"]), Path(saved["accel"]), saved["info"]
            log("onset remix and accelerometer traces: reusing (same parameters)")
        else:
            stamp.unlink(missing_ok=True)
            onset_manifest, info = sal_prep.make_onset_audio(args.work, onset_rows, truth, args.noise_clips,
                                                             args.eval_noise_clips, args.corpus_seed)
            accel_manifest = sal_prep.make_accel_traces(args.work, onset_manifest, info, args.corpus_seed)
            stamp.write_text(json.dumps({"params": params, "onset": str(onset_manifest), "accel": str(accel_manifest),
                                         "info": info}))
        categories["onset"] = {u: ("speech" if s["speech"] else
                                   "noise + distractors" if s["distractors"] else "noise only") for u, s in info.items()}
        categories["trigger"] = {u: s["role"] for u, s in info.items()}
    if "trigger" not in args.tasks:
        accel_manifest = None
    timing["remix_and_accel_s"] = round(time.perf_counter() - t, 1)
    log(f"onset remix and accelerometer traces: {timing['remix_and_accel_s']} s")

    t = time.perf_counter()
    commands = sal_prep.cli_commands(keyword_manifest, onset_manifest, accel_manifest, args.work / "shards",
                                     args.subsampling, args.window, args.workers, args.tasks)
    reports = sal_prep.build_shards(commands, log)
    timing["shards_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    accel_paths = {}
    if accel_manifest is not None:
        accel_paths = {r["utt_id"]: r["accel_path"] for r in sal_prep._read_csv(accel_manifest)}
    shards = {t: _digest([(p.name, _sha(p)) for p in sorted((args.work / "shards" / t).rglob("*.parquet"))])
              for t in args.tasks}
    params = {"shards": shards, "tasks": args.tasks, "categories": _digest(categories), "bins": 40,
              "code": _sha(HERE / "sal_prep.py")}
    stamp = args.work / "cache" / "stamp.json"
    caches = {t: args.work / "cache" / f"{t}.pt" for t in args.tasks}
    if stamp.is_file() and json.loads(stamp.read_text()) == params and all(p.is_file() for p in caches.values()):
        log("features: reusing the cache (identical shards)")
    else:
        stamp.unlink(missing_ok=True)
        caches = sal_prep.cache_features(args.work / "shards", args.work / "cache", args.tasks, 40, args.workers,
                                         categories, accel_paths, log)
        stamp.write_text(json.dumps(params))
    timing["features_s"] = round(time.perf_counter() - t, 1)
    data = sal_prep.summarise(caches)
    if "trigger" in caches:
        data["trigger_labels_by_role"] = sal_prep.trigger_label_check(caches["trigger"])
    if info:
        data["onset_remix"] = onset_summary(info)
    return {"caches": caches, "commands": commands, "reports": reports, "data": data, "timing": timing,
            "confusables": asdict(check), "voices": voices}


def onset_summary(info: dict) -> dict:
    speech = [s for s in info.values() if s["speech"]]
    kinds: dict[str, int] = {}
    for s in info.values():
        for d in s["distractors"]:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    return {"speech_utterances": len(speech), "noise_clips": len(info) - len(speech),
            "speech_with_distractors": sum(1 for s in speech if s["distractors"]),
            "noise_clips_with_distractors": sum(1 for s in info.values() if not s["speech"] and s["distractors"]),
            "distractors_by_kind": kinds,
            "snr_db_p10_p50_p90": [round(float(x), 1) for x in __import__("numpy").percentile(
                [s["snr_db"] for s in speech], [10, 50, 90])]}


# ----------------------------------------------------------------------------------------------
# training


def base_job(args, task: str, caches: dict) -> dict:
    return {"task": task, "cache": str(caches[task]), "epochs": args.epochs if task == "keyword" else args.onset_epochs,
            "lr": args.lr, "max_frames": args.max_frames, "fa_per_hour": tuple(args.fa_per_hour),
            "threads": args.threads, "device": args.device, "evidence_dir": str(args.work / "evidence"),
            "augment": args.augment}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _code_digest() -> str:
    """The code a job's result depends on: anchorprep's loss, data and metrics packages and sal_train.py."""
    files = sorted(p for pkg in ("loss", "data", "metrics") for p in (REPO / "anchorprep" / pkg).rglob("*.py"))
    return _digest([(str(p.relative_to(REPO)), _sha(p)) for p in files + [HERE / "sal_train.py"]])


def _job_file(args, job) -> Path:
    stat = Path(job.cache).stat()
    ident = json.dumps([job.key(), asdict(job), stat.st_size, stat.st_mtime_ns, _CODE], sort_keys=True, default=str)
    return args.work / "jobs" / (hashlib.sha256(ident.encode()).hexdigest()[:20] + ".json")


def train_all(args, caches: dict, log) -> list[dict]:
    """Tuning runs (seed 0, valid split), then each family's chosen setting x seeds 1..N (test split).

    A (task, model, family)'s main runs are submitted as soon as its tuning runs are complete.
    Finished jobs are stored under WORK/jobs (keyed by the job and its feature cache), so an
    interrupted run resumes where it stopped.
    """
    import sal_train
    from sal_train import Job

    global _CODE
    _CODE = _code_digest()
    (args.work / "jobs").mkdir(parents=True, exist_ok=True)
    cells = [(t, m, f) for t in args.tasks for m in args.models for f in args.families]
    tuning = {c: [Job(phase="sweep", model=c[1], family=c[2], setting=s, seed=0, **base_job(args, c[0], caches))
                  for s in GRIDS[c[2]][: args.settings]] for c in cells}
    baselines = [Job(phase="main", model="energy", family="energy", setting={}, seed=0, **base_job(args, t, caches))
                 for t in args.tasks if t != "keyword"]
    total = sum(len(v) for v in tuning.values()) + len(cells) * args.seeds + len(baselines)
    results: list[dict] = []
    pending = {c: len(v) for c, v in tuning.items()}
    done_tuning: dict[tuple, list[dict]] = {c: [] for c in cells}
    ctx = get_context("spawn")  # fresh interpreters: no inherited torch thread pools

    def finish(job, res) -> list:
        res["job_file"] = str(_job_file(args, job))
        results.append(res)
        lat = next(iter(res["eval"].values()))["operating"]["latency"]["mean"]
        log(f"{len(results)}/{total} {res['key']}: {res['seconds']:.0f} s, loss "
            f"{(res['epoch_loss'] or [float('nan')])[0]:.3f} -> {(res['epoch_loss'] or [float('nan')])[-1]:.3f}"
            + "".join(f", {split} AUC {ev['auc'] or float('nan'):.4f}" for split, ev in res["eval"].items())
            + (f", latency {lat * 1000:.0f} ms" if lat is not None else ""))
        if job.phase != "sweep":
            return []
        cell = (job.task, job.model, job.family)
        done_tuning[cell].append(res)
        pending[cell] -= 1
        if pending[cell]:
            return []
        chosen = sal_report.select_settings(done_tuning[cell], args.fa_per_hour[0])["chosen"]
        log(f"tuning {'/'.join(cell)}: chose {chosen}")
        return [Job(phase="main", model=job.model, family=job.family, setting=chosen, seed=s,
                    **base_job(args, job.task, caches)) for s in range(1, args.seeds + 1)]

    queue = [j for c in cells for j in tuning[c]] + baselines
    queue.sort(key=lambda j: (j.task != "keyword", j.model != "gru"))  # longest first
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        futures: dict[Future, object] = {}

        def submit(jobs) -> None:
            for job in jobs:
                cached = _job_file(args, job)
                if cached.is_file() and (job.phase == "sweep" or Path(json.loads(cached.read_text()).get("evidence", "")).is_file()):
                    submit(finish(job, {**json.loads(cached.read_text()), "reused": True}))
                else:
                    futures[pool.submit(sal_train.run_job, job)] = job

        submit(queue)
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures.pop(fut)
                res = fut.result()
                _job_file(args, job).write_text(json.dumps(_finite(res)))
                submit(finish(job, res))
    return results


# ----------------------------------------------------------------------------------------------
# results


def assemble(args, data_info: dict, runs: list[dict]) -> dict:
    import torch

    import sal_train

    argv = ["python", "benchmarks/sal_training/run.py"] + list(sys.argv[1:])
    return {
        "command": " ".join(shlex.quote(a) for a in argv),
        "config": {
            "quick": args.quick, "seeds": args.seeds, "tuning_seed": 0, "settings_per_family": args.settings,
            "grids": {f: GRIDS[f][: args.settings] for f in args.families}, "families": args.families,
            "tasks": args.tasks, "models": args.models, "epochs": {"keyword": args.epochs, "onset": args.onset_epochs,
                                                                 "trigger": args.onset_epochs},
            "lr": args.lr, "augment": asdict(sal_train.Augmentation()) if args.augment else None, "optimiser": "AdamW (weight decay 1e-4), linear warm-up 5% then cosine decay, grad-norm clip 5",
            "max_frames_per_batch": args.max_frames, "workers": args.workers, "threads": args.threads,
            "device": args.device, "corpus": {
                "positives": args.positives, "negatives": args.negatives, "test_positives": args.test_positives,
                "test_negatives": args.test_negatives, "valid_positives": args.valid_positives,
                "valid_negatives": args.valid_negatives, "voices_per_accent": args.voices_per_accent,
                "onset_train": args.onset_train, "noise_clips": args.noise_clips,
                "eval_noise_clips": args.eval_noise_clips, "seed": args.corpus_seed, "wake_phrase": sal_prep.WAKE_PHRASE},
            "voices": data_info["voices"], "accents": list(sal_prep.ACCENTS),
            "subsampling": args.subsampling, "positive_window_frames": [0, args.window], "fbank_bins": 40,
            "accel_features": list(sal_prep.ACCEL_FEATURES),
            "fa_per_hour": list(args.fa_per_hour), "equal_frr": args.equal_frr, "bootstrap": args.bootstrap,
            "tolerance_s": 0.2, "max_latency_s": 1.0, "debounce_s": 1.0,
        },
        "confusables": data_info["confusables"],
        "anchorprep_commands": {t: "python -m anchorprep " + " ".join(shlex.quote(a) for a in c)
                                for t, c in data_info["commands"].items()},
        "shard_reports": data_info["reports"],
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": f"torch {torch.__version__}",
                        "platform": platform.platform()},
        "data": data_info["data"],
        "data_timing": data_info["timing"],
        "runs": [_slim(r) for r in runs],
    }


def _slim(run: dict) -> dict:
    """A run without the DET curves (the evidence files hold the per-utterance outcomes)."""
    out = dict(run)
    out["eval"] = {split: {k: v for k, v in ev.items() if k not in ("det", "curve")} for split, ev in run["eval"].items()}
    return out


def write_outputs(args, results: dict, log) -> None:
    out = args.out
    body = sal_report.markdown(results)
    (out / "results.md").write_text("# SAL training benchmark: results\n\n" + body, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(_finite(results), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    try:
        sal_report.plot(results, out / "latency_vs_frr.png")
    except ImportError:
        log("matplotlib is not installed (pip install 'anchorprep[plot]'): no latency_vs_frr.png")
    if not args.quick and out == DEFAULT_OUT.resolve():
        if sal_report.update_readme(README, sal_report.readme_section(results)):
            log("README.md evidence section updated")
        if sal_report.update_bench_readme(HERE / "README.md", body):
            log("benchmarks/sal_training/README.md results section updated")


def _finite(value):
    """NaN and infinities become null (strict JSON); numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item() if getattr(value, "ndim", 0) == 0 else value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
