"""Scaling of the batch runner: workers, executors (local pool vs Dask) and driver memory.

    python benchmarks/bench_scale.py --rss-n 10000           # align 10k, vad 1k, RSS at 10k
    python benchmarks/bench_scale.py --rss-only --corpus /work/corpus/c281k \
        --compare-pythonpath ../main                          # the memory curve, before and after
    python benchmarks/bench_scale.py --json results/scale.json

The memory curve (``--rss-n``, default 10k, 100k and 281,241 utterances: LibriSpeech-960's size)
runs on the first N rows of one corpus: ``--corpus DIR`` reuses a folder written by
`anchorprep.synthetic.write_synthetic_alignments` (``DIR/manifest.csv`` + ``DIR/grids/``; its
first N rows are the N-row corpus of the same seed), otherwise the largest N is generated
(seed 3; 281k 10 s TextGrids are 5 GB and take minutes). ``--compare-pythonpath DIR`` runs every
size a second time with another checkout's code (e.g. the main branch) in the same run, so the
table shows driver memory before and after.

What it measures, each as the wall time of one `anchorprep` CLI process (start-up included):

* ``align`` over N synthetic 10 s MFA-like TextGrids (`anchorprep.synthetic`), keyword
  "hey computer", and ``vad`` (webrtcvad, defaults) over N 4-second segments of real 16 kHz
  speech from ../shared/realdata (every 16 kHz WAV there, cut into consecutive 4 s segments by
  the manifest's start_s/duration_s and cycled to N items; ``--vad-audio synthetic`` uses
  generated noise + voiced-burst WAVs instead, e.g. where realdata is absent);
* each with the local executor and a Dask LocalCluster that anchorprep starts
  (``--executor dask``: 2 single-threaded worker processes), at 1 and 2 workers: the 2-worker
  speed-up per executor and the Dask / local time ratio;
* the fixed cost of a run (20 items), so steady-state throughput can be told from start-up;
* the driver's peak RSS (VmHWM of the ``anchorprep`` process itself, read from
  /proc/<pid>/status every 50 ms; the worker processes are not counted) of
  ``align MANIFEST -k "hey computer" -j 2 --shard-size 1000`` at each ``--rss-n`` size, and its
  ratio to the RSS at the smallest size.

Prints markdown tables; ``--json PATH`` writes every measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from anchorprep.synthetic import write_synthetic_alignments

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("ANCHORPREP_REALDATA", REPO.parent / "shared" / "realdata"))
SEGMENT_S = 4.0


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


def run_cli(args: list[str], env: dict | None = None, attempts: int = 2) -> dict:
    """`run_once`, retried once (with a fresh output folder) if the run did not finish."""
    for attempt in range(attempts):
        try:
            return run_once(args, env)
        except RuntimeError as exc:
            if attempt + 1 == attempts:
                raise SystemExit(str(exc)) from None
            print(f"  retrying after a failed run: {str(exc)[-500:]}", file=sys.stderr)
            shutil.rmtree(args[args.index("-o") + 1], ignore_errors=True)
            time.sleep(2)


def run_once(args: list[str], env: dict | None = None) -> dict:
    """Run one CLI process to the end; wall time and the driver's peak RSS (VmHWM)."""
    cmd = [sys.executable, "-m", "anchorprep", *args, "-q"]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    # Not from the checkout's folder: `python -m` puts the working directory first on sys.path,
    # which would shadow the PYTHONPATH that picks the code (--compare-pythonpath).
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=tempfile.gettempdir())
    peak = 0
    while proc.poll() is None:
        peak = max(peak, status_kb(proc.pid, "VmHWM"))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    out = Path(args[args.index("-o") + 1])
    report = json.loads((out / "report.json").read_text()) if (out / "manifest.json").is_file() else None
    # Exit 1 also means "an uncaught exception": a run only counts when it wrote its manifest.
    if proc.returncode not in (0, 1) or report is None:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode} without finishing\n{stderr[-3000:]}")
    # The 1-minute load average around the run: on a shared machine, other processes' CPU use
    # shows up here (and in the times); compare runs with similar load only.
    return {"seconds": elapsed, "driver_peak_rss_mb": peak / 1024, "exit_code": proc.returncode,
            "load_avg": max(load_before, os.getloadavg()[0]), "written": report["written"], "failed": report["failed"]}


def real_speech_segments() -> list[tuple[str, float]]:
    """(path, start) of consecutive 4 s segments of every 16 kHz WAV in realdata."""
    segments = []
    for path in sorted(REALDATA.rglob("*.wav")):
        info = sf.info(str(path))
        if info.samplerate != 16000:
            continue
        for k in range(int(info.duration // SEGMENT_S)):
            segments.append((str(path), k * SEGMENT_S))
    return segments


def synthetic_wavs(folder: Path, count: int = 50) -> list[tuple[str, float]]:
    """Noise plus a voiced-like burst (150 Hz harmonics, 4 Hz syllable rhythm), 4 s at 16 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(SEGMENT_S * 16000)) / 16000
    out = []
    for i in range(count):
        x = 0.003 * rng.standard_normal(t.size)
        onset = 0.3 + 0.05 * (i % 40)
        burst = (t >= onset) & (t < onset + 1.5)
        voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
        x[burst] += (0.25 * voiced * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * (t - onset))))[burst]
        path = folder / f"syn{i:03d}.wav"
        sf.write(str(path), np.clip(x, -0.99, 0.99), 16000, subtype="PCM_16")
        out.append((str(path), 0.0))
    return out


def vad_manifest(folder: Path, n: int, source: str) -> tuple[Path, str]:
    segments = real_speech_segments() if source == "real" and REALDATA.is_dir() else []
    used = "real 16 kHz speech (realdata), 4 s segments" if segments else "synthetic noise + voiced bursts, 4 s"
    if not segments:
        segments = synthetic_wavs(folder / "wavs")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "vad.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "audio_path", "start_s", "duration_s"])
        for i in range(n):
            path, start = segments[i % len(segments)]
            writer.writerow([f"seg{i:07d}", path, f"{start:.3f}", f"{SEGMENT_S:.3f}"])
    return manifest, f"{used}; {len(segments)} distinct segments cycled"


def scaling(pipeline: str, manifest: Path, n: int, work: Path, executors: list[str], workers: list[int],
            shard_size: int, audio_s: float | None) -> list[dict]:
    rows = []
    extra = ["-k", "hey computer"] if pipeline == "align" else []
    for executor in executors:
        for w in workers:
            out = work / f"{pipeline}-{executor}-j{w}"
            shutil.rmtree(out, ignore_errors=True)
            result = run_cli([pipeline, str(manifest), "-o", str(out), *extra, "-j", str(w),
                              "--shard-size", str(shard_size), "--executor", executor])
            row = {"pipeline": pipeline, "executor": executor, "workers": w, "items": n, **result,
                   "items_per_s": n / result["seconds"]}
            if audio_s is not None:
                row["x_real_time"] = audio_s / result["seconds"]
            rows.append(row)
            print(f"  {pipeline} {executor} -j {w}: {result['seconds']:.1f} s", file=sys.stderr, flush=True)
            shutil.rmtree(out, ignore_errors=True)
    return rows


def head_manifest(corpus: Path, n: int, folder: Path) -> Path:
    """The first ``n`` rows of ``corpus``/manifest.csv with absolute paths (what reading the corpus
    manifest itself resolves them to), written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"head-{n}.csv"
    base = corpus.resolve()
    with open(corpus / "manifest.csv", newline="", encoding="utf-8") as source, \
            open(manifest, "w", newline="", encoding="utf-8") as sink:
        reader, writer = csv.reader(source), csv.writer(sink)
        header = next(reader)
        path_column = header.index("alignment_path")
        writer.writerow(header)
        for count, row in enumerate(reader):
            if count == n:
                break
            row[path_column] = str(base / row[path_column])
            writer.writerow(row)
        else:
            if count + 1 < n:
                raise SystemExit(f"{corpus}/manifest.csv has {count + 1} rows, fewer than --rss-n {n}")
    return manifest


def memory_curve(sizes: list[int], corpus: Path, work: Path, pythonpaths: dict[str, str]) -> list[dict]:
    """Driver peak RSS of ``align -j 2`` on the first N rows of ``corpus``, for each code tree."""
    rows = []
    for n in sizes:
        manifest = head_manifest(corpus, n, work / "heads")
        for code, pythonpath in pythonpaths.items():
            out = work / f"rss-out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            env = {**os.environ, "PYTHONPATH": pythonpath}
            result = run_cli(["align", str(manifest), "-o", str(out), "-k", "hey computer", "-j", "2",
                              "--shard-size", "1000"], env=env)
            rows.append({"utterances": n, "code": code, "pythonpath": pythonpath, "workers": 2, "shard_size": 1000,
                         **result, "items_per_s": n / result["seconds"]})
            print(f"  rss {n} ({code}): {result['seconds']:.1f} s, {result['driver_peak_rss_mb']:.0f} MB, "
                  f"load {result['load_avg']:.1f}", file=sys.stderr, flush=True)
            shutil.rmtree(out, ignore_errors=True)
        manifest.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--align-n", type=int, default=10000)
    parser.add_argument("--vad-n", type=int, default=1000)
    parser.add_argument("--rss-n", type=int, nargs="*", default=[10000, 100000, 281241])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="a write_synthetic_alignments folder for the memory curve (default: generate one)")
    parser.add_argument("--compare-pythonpath", type=Path, default=None,
                        help="also measure the memory curve with this checkout's code (e.g. the main branch)")
    parser.add_argument("--rss-only", action="store_true", help="only the memory curve")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--executors", nargs="+", default=["local", "dask"], choices=["local", "dask"])
    parser.add_argument("--align-shard-size", type=int, default=500)
    parser.add_argument("--vad-shard-size", type=int, default=50)
    parser.add_argument("--vad-audio", choices=["real", "synthetic"], default="real")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tables-from", type=Path, default=None, help="print the tables of a saved --json file")
    args = parser.parse_args()
    if args.tables_from:
        print_tables(json.loads(args.tables_from.read_text()))
        return
    if "dask" in args.executors:
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("Dask not installed (pip install 'anchorprep[dask]'): local executor only", file=sys.stderr)
            args.executors = ["local"]

    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_avg_at_start": os.getloadavg()}, "scaling": [], "overhead": [], "rss": []}

    if not args.rss_only:
        started = time.perf_counter()
        align_manifest = write_synthetic_alignments(work / "align", args.align_n, seed=1)
        print(f"generated {args.align_n} TextGrids in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        vad_csv, vad_source = vad_manifest(work / "vad", args.vad_n, args.vad_audio)
        results["vad_audio"] = vad_source
        print("scaling runs:", file=sys.stderr)
        results["scaling"] += scaling("align", align_manifest, args.align_n, work, args.executors, args.workers,
                                      args.align_shard_size, None)
        results["scaling"] += scaling("vad", vad_csv, args.vad_n, work, args.executors, args.workers,
                                      args.vad_shard_size, args.vad_n * SEGMENT_S)
        tiny = write_synthetic_alignments(work / "tiny", 20, seed=2)
        for executor in args.executors:
            out = work / f"tiny-{executor}"
            result = run_cli(["align", str(tiny), "-o", str(out), "-k", "hey computer", "-j", "2",
                              "--executor", executor])
            results["overhead"].append({"executor": executor, "workers": 2, "items": 20, **result})
            shutil.rmtree(out, ignore_errors=True)

    if args.rss_n:
        corpus = args.corpus.resolve() if args.corpus is not None else None
        if corpus is None:
            t0 = time.perf_counter()
            corpus = write_synthetic_alignments(work / "rss-corpus", max(args.rss_n), seed=3).parent
            print(f"generated {max(args.rss_n)} TextGrids in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        pythonpaths = {"this": str(REPO)}
        if args.compare_pythonpath is not None:
            pythonpaths = {"compared": str(args.compare_pythonpath.resolve()), **pythonpaths}
        results["rss_corpus"] = str(corpus)
        results["rss"] = memory_curve(sorted(args.rss_n), corpus, work, pythonpaths)
        if args.corpus is None and not args.keep:
            shutil.rmtree(corpus, ignore_errors=True)
    results["machine"]["load_avg_at_end"] = os.getloadavg()

    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


def print_tables(results: dict) -> None:
    """Markdown tables of `results` (also usable on a saved --json file: see --tables-from)."""
    machine = results["machine"]
    print(f"\n{machine['cpus']} CPUs, Python {machine['python']}, load average at start "
          f"{machine['load_avg_at_start'][0]:.1f}, at end {machine['load_avg_at_end'][0]:.1f}")
    if results["scaling"]:
        print_scaling(results)
    if results["overhead"]:
        print("\n| fixed cost: align of 20 items, 2 workers | seconds | load avg |")
        print("|---|---:|---:|")
        for r in results["overhead"]:
            print(f"| {r['executor']} | {r['seconds']:.1f} | {r.get('load_avg', float('nan')):.1f} |")

    if results["rss"]:
        print_memory_curve(results["rss"])


def print_scaling(results: dict) -> None:
    """The workers × executors table and its speed-ups."""
    print(f"vad audio: {results['vad_audio']}\n")
    print("| pipeline | executor | workers | items | seconds | items/s | × real time | driver peak RSS MB | load avg |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["scaling"]:
        rt = f"{r['x_real_time']:.0f}×" if "x_real_time" in r else "-"
        print(f"| {r['pipeline']} | {r['executor']} | {r['workers']} | {r['items']:,} | {r['seconds']:.1f} | "
              f"{r['items_per_s']:,.0f} | {rt} | {r['driver_peak_rss_mb']:.0f} | {r.get('load_avg', float('nan')):.1f} |")

    by = {(r["pipeline"], r["executor"], r["workers"]): r["seconds"] for r in results["scaling"]}
    print("\n| pipeline | 2 vs 1 workers, local | 2 vs 1 workers, Dask | Dask / local time, 2 workers |")
    print("|---|---:|---:|---:|")
    for pipeline in ("align", "vad"):
        def ratio(a, b):
            return f"{by[a] / by[b]:.2f}×" if a in by and b in by else "-"
        print(f"| {pipeline} | {ratio((pipeline, 'local', 1), (pipeline, 'local', 2))} | "
              f"{ratio((pipeline, 'dask', 1), (pipeline, 'dask', 2))} | {ratio((pipeline, 'dask', 2), (pipeline, 'local', 2))} |")
    print("\n(speed-up = time with 1 worker / time with 2; Dask / local > 1 means Dask is slower)")


def print_memory_curve(rows: list[dict]) -> None:
    """Driver peak RSS per corpus size and code tree, with its ratio to the smallest size's."""
    smallest = {}
    for r in rows:
        smallest.setdefault(r.get("code", "this"), r["driver_peak_rss_mb"])
    print("\n| align utterances (-j 2, shards of 1000) | code | seconds | utt/s | driver peak RSS MB | × its RSS at the "
          "smallest size | load avg |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        code = r.get("code", "this")
        print(f"| {r['utterances']:,} | {code} | {r['seconds']:.1f} | {r['items_per_s']:,.0f} | "
              f"{r['driver_peak_rss_mb']:.0f} | {r['driver_peak_rss_mb'] / smallest[code]:.2f} | "
              f"{r.get('load_avg', float('nan')):.1f} |")
    print("\n(driver = the `anchorprep` process itself, VmHWM; workers not counted. 'compared' = "
          "--compare-pythonpath, 'this' = this checkout)")


if __name__ == "__main__":
    main()
