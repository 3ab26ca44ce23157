"""Instructions per utterance of the align worker, counted by valgrind: an A/B free of CPU noise.

    python benchmarks/bench_align_instructions.py --corpus DIR --baseline-checkout ../before

On a shared machine CPU time varies by tens of percent from one minute to the next; the number of
instructions a piece of code executes does not. This runs the worker's shard function
(`process_shard`, job "hey computer" on the words tier, default grid) under ``valgrind
--tool=callgrind`` twice per checkout: a warm-up shard of ``--warm`` items (rows ``[warm, 2 warm)``
of the corpus manifest), then either nothing or a shard of the first ``--n`` rows. The difference
of the two totals divided by ``--n`` is the instructions per utterance, start-up and imports
cancelled out. Hash seeds and BLAS threads are fixed (``PYTHONHASHSEED=0``,
``OPENBLAS_NUM_THREADS=1``) so a rerun gives the same count.

Instructions are not time: the Parquet writer runs more instructions per cycle than the
interpreter, and the kernel's side of open and read is not counted. Use it to compare two versions
of the same code, next to `bench_align_scale.py`'s CPU times. The corpus is
``write_synthetic_alignments(dir, n, seed=3)`` (``DIR/manifest.csv``). Needs ``valgrind`` (Debian:
``apt-get install -y valgrind``); about two minutes per checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEYWORD = "hey computer"


def inner(corpus: Path, n: int, warm: int, out: Path) -> None:
    """The measured process: the warm-up shard, then the first `n` rows (0: nothing more)."""
    from anchorprep.anchors import TargetWindow
    from anchorprep.grid import FrameGrid
    from anchorprep.pipeline.align import AlignJob, AlignOptions
    from anchorprep.pipeline.rows import Labelling
    from anchorprep.pipeline.runner import process_shard, run_settings
    from anchorprep.sources.items import read_manifest

    table = read_manifest(corpus / "manifest.csv").slice(0, 2 * warm)
    items = table.to_pylist()
    for row, item in enumerate(items):
        item["_row"] = row
    job = AlignJob(Labelling(FrameGrid(), TargetWindow(0, 30), (KEYWORD,)), AlignOptions(keywords=(KEYWORD,)))
    settings = run_settings(job, table, warm)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / ".anchorprep" / "done").mkdir(parents=True, exist_ok=True)
    process_shard(job, 0, 2, items[warm:], str(out), settings)
    if n:
        process_shard(job, 1, 2, items[:n], str(out), settings)


def instructions(checkout: str, corpus: Path, n: int, warm: int, work: Path) -> int:
    """Total instructions callgrind counts for `inner` run from `checkout`."""
    tag = f"{len(list(work.iterdir()))}"
    env = {**os.environ, "PYTHONPATH": checkout, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / ('callgrind.' + tag)}", sys.executable,
         os.path.abspath(__file__), "--inner", str(corpus), str(n), str(warm), str(work / f"out.{tag}")],
        env=env, cwd=work, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({checkout}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_utterance(checkout: str, args, work: Path) -> float:
    return (instructions(checkout, args.corpus, args.n, args.warm, work)
            - instructions(checkout, args.corpus, 0, args.warm, work)) / args.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="a corpus folder with manifest.csv (at least 2 x --warm rows)")
    parser.add_argument("--n", type=int, default=500, help="measured items")
    parser.add_argument("--warm", type=int, default=1000, help="items of the warm-up shard")
    parser.add_argument("--baseline-checkout", default=None, help="another checkout, counted the same way")
    parser.add_argument("--inner", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        corpus, n, warm, out = args.inner
        inner(Path(corpus), int(n), int(warm), Path(out))
        return
    if args.corpus is None:
        parser.error("--corpus is required")
    if not 0 < args.n <= args.warm:
        parser.error("--n must be between 1 and --warm")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install -y valgrind)")
    checkouts = {"this checkout": str(Path(__file__).resolve().parents[1])}
    if args.baseline_checkout:
        checkouts["baseline"] = str(Path(args.baseline_checkout).resolve())
    with tempfile.TemporaryDirectory(prefix="bench_align_instructions_") as tmp:
        counts = {name: per_utterance(path, args, Path(tmp)) for name, path in checkouts.items()}
    print(f"\ninstructions per utterance of the worker's shard function ({args.n} items after a "
          f"{args.warm}-item warm-up; valgrind callgrind, PYTHONHASHSEED=0):\n")
    print("| checkout | instructions per utterance | / baseline |")
    print("|---|---:|---:|")
    for name, count in counts.items():
        ratio = f"{count / counts['baseline']:.3f}×" if "baseline" in counts else "-"
        print(f"| {name} ({checkouts[name]}) | {count:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
