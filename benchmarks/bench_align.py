"""End-to-end `anchorprep align` throughput against a praatio parse-only loop, same files, same run.

    python benchmarks/bench_align.py --n 20000 --workers 2
    python benchmarks/bench_align.py --n 100000 --workers 2 --skip-baseline   # driver memory at scale

Generates N synthetic MFA-like 10-second TextGrids (about 30 words and 100 phones each), then
times (a) `praatio.textgrid.openTextgrid` over every file in one process and (b) the full
`anchorprep align` command (manifest read, parse, keyword search, frame labels, Parquet shards,
manifest), and reports the driver's peak RSS sampled from /proc while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anchorprep.synthetic import write_synthetic_alignments


def praatio_loop(grid_dir: Path) -> tuple[float, int]:
    from praatio import textgrid

    files = sorted(grid_dir.glob("*.TextGrid"))
    started = time.perf_counter()
    for path in files:
        textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    return time.perf_counter() - started, len(files)


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def run_align(manifest: Path, out: Path, workers: int, shard_size: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "anchorprep", "align", str(manifest), "-o", str(out), "-k", "hey computer",
           "-q", "-j", str(workers), "--shard-size", str(shard_size)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"anchorprep align exited with {proc.returncode}")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--skip-baseline", action="store_true", help="skip the praatio loop (memory runs)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_align_"))
    started = time.perf_counter()
    manifest = write_synthetic_alignments(work / "corpus", args.n, seed=1)
    print(f"generated {args.n} TextGrids in {time.perf_counter() - started:.1f} s under {work}", file=sys.stderr)

    rows = []
    baseline = None
    if not args.skip_baseline:
        baseline, count = praatio_loop(work / "corpus" / "grids")
        rows.append({"what": "praatio openTextgrid loop (1 process, parse only)", "workers": 1, "seconds": baseline,
                     "utt_per_s": count / baseline, "ratio_to_parse_loop": 1.0, "driver_peak_rss_mb": None})
    for workers in args.workers:
        out = work / f"out-j{workers}"
        elapsed, peak = run_align(manifest, out, workers, args.shard_size)
        rows.append({"what": "anchorprep align (end to end)", "workers": workers, "seconds": elapsed,
                     "utt_per_s": args.n / elapsed,
                     "ratio_to_parse_loop": None if baseline is None else elapsed / baseline,
                     "driver_peak_rss_mb": peak})

    print(f"\nN = {args.n:,} synthetic 10 s MFA-like TextGrids, {os.cpu_count()} cores\n")
    print("| what | workers | seconds | utt/s | time / parse loop | driver peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = "-" if row["ratio_to_parse_loop"] is None else f"{row['ratio_to_parse_loop']:.2f}×"
        rss = "-" if row["driver_peak_rss_mb"] is None else f"{row['driver_peak_rss_mb']:.0f}"
        print(f"| {row['what']} | {row['workers']} | {row['seconds']:.1f} | {row['utt_per_s']:,.0f} | {ratio} | {rss} |")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
