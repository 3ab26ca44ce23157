"""Accelerometer benchmark: one hour of 100 Hz 3-axis data with jittered timestamps.

Writes a synthetic CSV (t_ns, ax, ay, az; walking-like steps plus noise, phone-like timestamp
jitter) to a temporary folder, then times `read_accel` (CSV parsing) and `detect_peaks` with
`STEP_PRESET` (resample onto a 100 Hz grid, band-pass, find_peaks) separately. The target is under
1 s for processing (without parsing). Prints a markdown table; `--json PATH` also writes the numbers.

    python benchmarks/bench_accel.py [--hours 1] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchorprep.sources.accel import STEP_PRESET, detect_peaks, read_accel  # noqa: E402

TARGET_PROCESS_S = 1.0


def write_synthetic_csv(path: Path, hours: float, rate_hz: float = 100.0, seed: int = 0) -> int:
    """One recording: 1.8 Hz steps on gravity plus noise; times jittered by ±2 ms. Returns rows."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * rate_hz)
    t = np.arange(n) / rate_hz + rng.uniform(-0.002, 0.002, n)
    t[0] = 0.0
    t_ns = (t * 1e9).astype(np.int64) + 1_000_000_000_000
    step = 2.0 * np.maximum(0.0, np.sin(2 * np.pi * 1.8 * t)) ** 4
    xyz = rng.normal(0.0, 0.3, (n, 3))
    xyz[:, 2] += 9.81 + step
    with open(path, "w") as fh:
        np.savetxt(fh, np.column_stack([t_ns, xyz]), fmt=["%d", "%.5f", "%.5f", "%.5f"], delimiter=",")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accel_1h.csv"
        rows = write_synthetic_csv(path, args.hours)
        size_mb = path.stat().st_size / 1e6
        read_s, proc_s, peaks = [], [], 0
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            rec = read_accel(path)
            t1 = time.perf_counter()
            found = detect_peaks(rec, STEP_PRESET)
            t2 = time.perf_counter()
            read_s.append(t1 - t0)
            proc_s.append(t2 - t1)
            peaks = len(found)

    best_read, best_proc = min(read_s), min(proc_s)
    result = {
        "hours": args.hours,
        "rows": rows,
        "csv_mb": round(size_mb, 1),
        "peaks": peaks,
        "read_csv_s": round(best_read, 4),
        "process_s": round(best_proc, 4),
        "total_s": round(best_read + best_proc, 4),
        "target_process_s": TARGET_PROCESS_S,
        "meets_target": best_proc < TARGET_PROCESS_S,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"Accelerometer benchmark: {args.hours:g} h, {rows} rows at 100 Hz, CSV {size_mb:.1f} MB "
          f"(best of {args.repeat})\n")
    print("| stage | seconds |")
    print("| --- | ---: |")
    print(f"| read CSV (`read_accel`) | {best_read:.3f} |")
    print(f"| process (`detect_peaks`: resample + band-pass + find_peaks) | {best_proc:.3f} |")
    print(f"| total (read + process) | {best_read + best_proc:.3f} |")
    print(f"\nprocessing target < {TARGET_PROCESS_S:g} s: {'met' if result['meets_target'] else 'MISSED'}; "
          f"{peaks} peaks")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
