"""CLI start-up: `anchorprep --help` against importing typer + rich, and `anchorprep align` on one
file against importing pandas + pyarrow, in the same run.

Each command is a fresh process (what a user or a batch script pays), run ``--repeat`` times in
interleaved rounds; the table gives the median wall time and its ratio to the same-run baseline.

Run: ``python benchmarks/bench_cli.py [--repeat 15] [--compare-pythonpath ../main]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORPREP = [sys.executable, "-m", "anchorprep"]


def commands(work: Path, compare: Path | None = None) -> list[tuple[str, list[str], str | None, str]]:
    """(label, argv, baseline label, PYTHONPATH) in table order; with ``compare``, ``anchorprep
    align`` also runs with that checkout's code (e.g. the main branch) for a same-run before/after."""
    manifest = work / "one.csv"
    manifest.write_text("utt_id,audio_path,alignment_path\n"
                        f"u,{REPO}/sample_data/audio/utt00001-pos.flac,{REPO}/sample_data/alignments/utt00001-pos.TextGrid\n")
    align = [*ANCHORPREP, "align", str(manifest), "-o", str(work / "out"), "-k", "hey computer", "-q", "--overwrite"]
    here = str(REPO)
    table = [
        ("python -c pass", [sys.executable, "-c", "pass"], None, here),
        ('python -c "import typer, rich"', [sys.executable, "-c", "import typer, rich"], None, here),
        ("anchorprep --help", [*ANCHORPREP, "--help"], 'python -c "import typer, rich"', here),
        ("anchorprep align --help", [*ANCHORPREP, "align", "--help"], 'python -c "import typer, rich"', here),
        ('python -c "import pandas, pyarrow"', [sys.executable, "-c", "import pandas, pyarrow"], None, here),
        ("anchorprep align (one file)", align, 'python -c "import pandas, pyarrow"', here),
    ]
    if compare is not None:
        table.append((f"anchorprep align (one file), code of {compare}", align, 'python -c "import pandas, pyarrow"',
                      str(compare.resolve())))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--compare-pythonpath", type=Path, default=None,
                        help="also time `anchorprep align` with this checkout's code (e.g. the main branch)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="anchorprep-bench-cli-"))
    try:
        table = commands(work, args.compare_pythonpath)
        times: dict[str, list[float]] = {label: [] for label, *_ in table}
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            for label, argv, _, pythonpath in table:
                env = {**os.environ, "PYTHONPATH": pythonpath}
                started = time.perf_counter()
                # cwd outside the checkout: `python -m` puts the working directory first on sys.path.
                subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=work)
                times[label].append(time.perf_counter() - started)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {label: statistics.median(values) for label, values in times.items()}
    print("| command | median wall s | min s | baseline | ratio |")
    print("|---|---:|---:|---|---:|")
    for label, _, baseline, _ in table:
        ratio = f"{median[label] / median[baseline]:.2f}" if baseline else "-"
        print(f"| {label} | {median[label]:.3f} | {min(times[label]):.3f} | {baseline or '-'} | {ratio} |")
    print(f"\n{args.repeat} interleaved rounds, Python {sys.version.split()[0]}, "
          f"1-min load average {load_before:.2f} -> {load_after:.2f}")


if __name__ == "__main__":
    main()
