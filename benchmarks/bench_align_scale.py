"""CPU per utterance of `anchorprep align -j 2` at corpus scale, against its floors, same run.

    python benchmarks/bench_align_scale.py --corpus /work/corpus/c281k           # the 281k corpus
    python benchmarks/bench_align_scale.py --n 20000                              # generate 20k
    python benchmarks/bench_align_scale.py --corpus DIR --n 20000 --script-n 5000 --json out.json

The corpus is ``write_synthetic_alignments(dir, n, seed=3)`` (10 s MFA-like TextGrids, words and
phones tiers; LibriSpeech-960 has 281,241 utterances): ``--corpus DIR`` reuses one
(``DIR/manifest.csv``; ``--n`` takes its first rows), else N are generated under the work folder.
Every number is CPU seconds (user + system) of the processes it starts, children included
(`resource.getrusage(RUSAGE_CHILDREN)` around each), divided by the utterances:

* ``floor``: reading every byte of every TextGrid from the (warmed) page cache (``xargs cat``);
* ``anchorprep align -j 2``: the CLI end to end (start-up, manifest, workers, shards, manifest);
* ``minimal script``: a hand-written per-corpus script, praatio + numpy + pyarrow, one process
  (`minimal_script` below: parse, find "hey computer" on the words tier, causal frames,
  distances, targets, 1000-row zstd Parquet shards); ``--script-n`` runs it on the first rows
  only (it costs about 1 ms per utterance) and scales per utterance;
* the per-stage breakdown: the worker's shard function (`process_shard`) run in this process
  over ``--breakdown-n`` items (unprofiled total), split by a cProfile run of the same items
  into the cumulative time of the parse (`utterance_alignment`), keyword search
  (`select_word_tiers`, `find_phrase`/`phrase_times`, `KeywordSearch.times`), labelling
  (`utterance_extent`, `build_row`), shard writing (`_write_shard`) and the rest (per-item
  overhead); the shares of the profiled run are applied to the unprofiled total, so they are
  estimates.

``--baseline-checkout PATH`` also runs `align` from another checkout (e.g. the main branch),
alternating with this one for ``--rounds`` rounds so both see the same load, and checks that
their shards are byte-identical. The whole benchmark runs against another checkout with
``PYTHONPATH=that/checkout`` (its breakdown then profiles that code).
The 1-minute load average is printed with every number: the machine is shared, and other
processes' CPU use shows up as higher CPU time here.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARD_SIZE = 1000
KEYWORD = "hey computer"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(cmd: list[str], **kwargs) -> dict:
    """Run `cmd` to the end: CPU seconds of it and its children, wall seconds, load average."""
    load_before = os.getloadavg()[0]
    cpu, wall = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)
    return {"cpu_s": children_cpu() - cpu, "wall_s": time.perf_counter() - wall,
            "load_avg": round(max(load_before, os.getloadavg()[0]), 2)}


def corpus_manifest(args, work: Path) -> tuple[Path, int]:
    """The manifest to run on (first `--n` rows of `--corpus`, or a generated corpus), its size."""
    if args.corpus is None:
        from anchorprep.synthetic import write_synthetic_alignments

        started = time.perf_counter()
        manifest = write_synthetic_alignments(work / "corpus", args.n, seed=3)
        print(f"generated {args.n} TextGrids in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return manifest, args.n
    source = args.corpus / "manifest.csv"
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    if args.n is not None:
        body = body[: args.n]
    column = header.index("alignment_path")
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in body:
            row[column] = str((args.corpus / row[column]).resolve())
            writer.writerow(row)
    return manifest, len(body)


def alignment_files(manifest: Path) -> list[str]:
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [str((manifest.parent / row["alignment_path"]).resolve()) for row in reader]


def read_every_byte(files: list[str], work: Path) -> dict:
    listing = work / "files.txt"
    listing.write_text("\n".join(files) + "\n", encoding="utf-8")
    return measured(["sh", "-c", f"xargs -d '\\n' -a '{listing}' cat > /dev/null"])


def this_checkout() -> str:
    import anchorprep

    return str(Path(anchorprep.__file__).resolve().parents[1])  # the code this benchmark imports


def run_align(manifest: Path, out: Path, workers: int, checkout: str | None = None) -> dict:
    """`anchorprep align` of `checkout` (default: the code this benchmark imports)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "anchorprep", "align", str(manifest), "-o", str(out), "-k", KEYWORD,
           "-q", "-j", str(workers), "--shard-size", str(SHARD_SIZE)]
    path = os.pathsep.join(p for p in (checkout or this_checkout(), os.environ.get("PYTHONPATH")) if p)
    # Run from the work folder: `python -m` puts the working directory first on sys.path, so
    # started inside a checkout it would import that checkout whatever PYTHONPATH says.
    return measured(cmd, env={**os.environ, "PYTHONPATH": path}, cwd=out.parent)


def interleaved(manifest: Path, work: Path, workers: int, baseline: str, rounds: int) -> dict:
    """This checkout's and `baseline`'s align, alternating for `rounds` rounds (so both see the
    same machine load): CPU seconds of each round, and whether their shards are identical."""
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    for _ in range(rounds):
        for name, checkout in (("this", None), ("baseline", baseline)):
            runs[name].append(run_align(manifest, work / f"out-{name}", workers, checkout))
    shards = [sorted((work / f"out-{name}" / "data").glob("*.parquet")) for name in ("this", "baseline")]
    identical = len(shards[0]) == len(shards[1]) and all(a.read_bytes() == b.read_bytes() for a, b in zip(*shards))
    return {"baseline": baseline, "rounds": runs, "identical_shards": identical}


# --------------------------------------------------------------------------------------------
# The minimal per-corpus script (the baseline a user would write by hand)


def minimal_script(manifest: Path, out: Path, limit: int | None) -> None:
    """praatio + numpy + pyarrow: the anchors, distances and targets of `anchorprep align`'s
    defaults (16 kHz, 10 ms shift, 25 ms frames, causal rule, window 0:30) in plain code."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from praatio import textgrid

    out.mkdir(parents=True, exist_ok=True)
    phrase = KEYWORD.split()
    with open(manifest, newline="", encoding="utf-8") as handle:
        items = list(csv.DictReader(handle))[:limit]
    rows: list[dict] = []

    def flush(index: int) -> None:
        table = pa.table({key: [row[key] for row in rows] for key in rows[0]})
        pq.write_table(table, str(out / f"shard-{index:05d}.parquet"), compression="zstd")
        rows.clear()

    for n, item in enumerate(items):
        grid = textgrid.openTextgrid(str(manifest.parent / item["alignment_path"]), includeEmptyIntervals=True)
        entries = [e for e in grid.getTier("words").entries if e.label.strip()]
        words = [e.label.strip().lower() for e in entries]
        times = [entries[i + len(phrase) - 1].end for i in range(len(words) - len(phrase) + 1)
                 if words[i:i + len(phrase)] == phrase]
        num_samples = int(float(item["duration_s"]) * 16000 + 0.5)
        num_frames = 1 + (num_samples - 400) // 160
        frames = np.clip(np.ceil((np.array(times) * 16000 - 400) / 160), 0, num_frames - 1).astype(np.int64)
        t = np.arange(num_frames)
        if len(frames):
            nearest = frames[np.abs(t[:, None] - frames[None, :]).argmin(axis=1)]
            distance = np.clip(t - nearest, -32767, 32767).astype(np.int16)
            target = ((distance >= 0) & (distance <= 30)).astype(np.int16)
        else:
            distance = np.full(num_frames, 32767, dtype=np.int16)
            target = np.zeros(num_frames, dtype=np.int16)
        rows.append({"utt_id": item["utt_id"], "num_frames": num_frames, "anchor_times_s": times,
                     "anchor_frames": frames.astype(np.int32), "distance": distance, "target": target})
        if len(rows) == SHARD_SIZE:
            flush(n // SHARD_SIZE)
    if rows:
        flush(len(items) // SHARD_SIZE)


# --------------------------------------------------------------------------------------------
# Per-stage breakdown of the worker's shard function


STAGES = {  # stage -> functions (file name, function name) whose cumulative time it is
    "parse": [("formats.py", "utterance_alignment")],
    "keyword": [("keywords.py", "select_word_tiers"), ("keywords.py", "find_phrase"), ("keywords.py", "phrase_times"),
                ("keywords.py", "times")],  # (`KeywordSearch.times`)
    "label": [("rows.py", "utterance_extent"), ("rows.py", "build_row")],
    "shard write": [("runner.py", "_write_shard")],
}


def breakdown(manifest: Path, n: int, work: Path, lean_rounds: int = 0) -> dict:
    """µs per utterance of the worker's shard function, total and by stage (see the module doc)."""
    from anchorprep.anchors import TargetWindow
    from anchorprep.grid import FrameGrid
    from anchorprep.pipeline.align import AlignJob, AlignOptions
    from anchorprep.pipeline.rows import Labelling
    from anchorprep.pipeline.runner import process_shard, run_settings
    from anchorprep.sources.items import read_manifest

    table = read_manifest(manifest)  # paths resolved beside the manifest, as the CLI reads it
    if hasattr(table, "slice"):  # an Arrow item table (this code)
        table = table.slice(0, n)
        items = table.to_pylist()
    else:  # a pandas one (checkouts before the Arrow item table)
        table = table.iloc[:n].reset_index(drop=True)
        items = table.to_dict("records")
    for row, item in enumerate(items):
        item["_row"] = row
    job = AlignJob(Labelling(FrameGrid(), TargetWindow(0, 30), (KEYWORD,)), AlignOptions(keywords=(KEYWORD,)))
    settings = run_settings(job, table, SHARD_SIZE)
    out = work / "breakdown"
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / ".anchorprep" / "done").mkdir(parents=True, exist_ok=True)
    shards = [items[i:i + SHARD_SIZE] for i in range(0, len(items), SHARD_SIZE)]

    def run_all() -> None:
        for index, shard in enumerate(shards):
            process_shard(job, index, len(shards), shard, str(out), settings)

    run_all()  # warm caches (label parts, imports) as a long-running worker has them
    started = time.process_time()
    run_all()
    total = time.process_time() - started
    profiler = cProfile.Profile()
    profiler.runcall(run_all)
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    profiled_total = sum(tt for _, _, tt, _, _ in stats.values())
    shares = {}
    for stage, functions in STAGES.items():
        shares[stage] = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                            if any(file.endswith(f) and name == fn for f, fn in functions))
    per_utt = 1e6 * total / len(items)
    result = {stage: per_utt * share / profiled_total for stage, share in shares.items()}
    result["other (per-item overhead)"] = per_utt - sum(result.values())
    result["total"] = per_utt
    if lean_rounds:
        result["lean"] = lean_floor(shards, out, settings, lean_rounds, run_all)
    return result


def lean_floor(shards: list[list[dict]], out: Path, settings, rounds: int, run_all) -> dict:
    """`lean_shards` against the worker's shard function `run_all`, interleaved for `rounds`
    rounds (CPU µs/utt of each, same items); its shard files must equal the pipeline's byte
    for byte."""
    from anchorprep.shards.schema import shard_schema

    try:
        from anchorprep.shards.run import shard_name
    except ImportError:
        return {}  # an older checkout
    schema = shard_schema(settings.passthrough_columns, settings.to_dict())
    names = [shard_name(index, len(shards)) for index in range(len(shards))]
    lean_out = out.parent / "lean"
    lean_out.mkdir(parents=True, exist_ok=True)
    items = [item for shard in shards for item in shard]
    lean_shards(items, lean_out, schema, names)  # warm
    pipeline, lean = [], []
    for _ in range(rounds):
        started = time.process_time()
        run_all()
        pipeline.append(1e6 * (time.process_time() - started) / len(items))
        started = time.process_time()
        lean_shards(items, lean_out, schema, names)
        lean.append(1e6 * (time.process_time() - started) / len(items))
    identical = all((lean_out / name).read_bytes() == (out / "data" / name).read_bytes() for name in names)
    if not identical:
        raise SystemExit("the lean floor's shards differ from the pipeline's: its numbers would mean nothing")
    return {"pipeline_us": pipeline, "lean_us": lean, "identical_shards": identical}


def lean_shards(items: list[dict], out: Path, schema, names: list[str]) -> None:
    """The lean floor: the worker's work on a canonical MFA corpus with every generality left out.

    Per item it does what `process_shard` does for these files and this job ("hey computer" on
    the words tier, the default grid, causal rule, window 0:30): one stat + read, UTF-8 decode,
    the lazy parse's structure checks of every tier (file header, tier headers, newline and "["
    counts with numpy), the words tier through the canonical interval grammar and
    `_checked_times`, stripped labels, the phrase search, the frames, distances and targets
    (`row_labels`), then each shard through `rows_to_table` and `write_parquet_atomic` (fsync,
    sha256). It leaves out everything else: other formats, encodings, tier names, speakers,
    audio, options, per-item error handling and stage names, counters, done markers, resume
    stamps. It raises on anything outside that corpus, and `breakdown` checks its rows equal the
    pipeline's. So it is what this design (a per-file Python parse, the same checks, the same
    shard bytes) costs at the least.
    """
    import numpy as np

    from anchorprep.anchors import TargetWindow, row_labels
    from anchorprep.grid import FrameGrid
    from anchorprep.shards.io import write_parquet_atomic
    from anchorprep.shards.schema import rows_to_table
    from anchorprep.sources.alignments import textgrid as tg
    from anchorprep.storage import read_regular_bytes

    grid, window = FrameGrid(), TargetWindow(0, 30)
    first, second = KEYWORD.split()
    header, tier_header, interval = tg._LONG_HEADER, tg._LONG_TIER_HEADER_CANONICAL, tg._LONG_INTERVAL_CANONICAL
    for index in range(0, len(items), SHARD_SIZE):
        rows = []
        for item in items[index:index + SHARD_SIZE]:
            text = read_regular_bytes(item["alignment_path"]).decode("utf-8")
            if not text.isascii() or "\r" in text:
                raise ValueError("the lean floor reads canonical ASCII TextGrids only")
            codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
            found = header.match(text)
            position, tier_count, words = found.end(), int(found.group(3)), None
            for k in range(tier_count):
                found = tier_header.match(text, position)
                name, size, body = found.group(1), int(found.group(4)), found.end()
                if k + 1 < tier_count:
                    line_end = text.rfind("\n", body, text.find('"IntervalTier"', body))
                    stop = text.rfind("\n", body - 1, line_end) + 1
                else:
                    stop = len(text)
                part = codes[body:stop]
                if np.count_nonzero(part == 10) != 4 * size or np.count_nonzero(part == 91) != size:
                    raise ValueError("not a canonical TextGrid")
                if name == "words":
                    words = interval.findall(text, body, stop)
                    if len(words) != size:
                        raise ValueError("not a canonical words tier")
                position = stop
            starts, ends = tg._checked_times([w[0] for w in words], [w[1] for w in words])
            labels = [w[2].strip() for w in words]
            times = []
            if first in labels:  # one occurrence at most in this corpus
                i = labels.index(first)
                j = next((j for j in range(i + 1, len(labels)) if labels[j]), None)
                if j is not None and labels[j] == second:
                    times.append(ends[j])
            duration = float(item["duration_s"])
            num_frames = grid.num_frames(grid.num_samples(duration))
            frames = grid.time_to_frame(times, num_frames, "causal")[0] if times else np.zeros(0, np.int64)
            distance, target = row_labels(frames, [1] * len(times), num_frames, window)
            rows.append({"utt_id": item["utt_id"], "audio_path": None, "start_s": 0.0, "duration_s": duration,
                         "sample_rate": grid.sample_rate, "num_frames": num_frames,
                         "anchor_times_s": np.array(times, dtype=np.float64), "anchor_frames": frames.astype(np.int32),
                         "anchor_labels": [KEYWORD] * len(times), "anchor_sources": ["alignment"] * len(times),
                         "distance": distance, "target": target, "speaker": item["speaker"]})
        write_parquet_atomic(str(out / names[index // SHARD_SIZE]), rows_to_table(rows, schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=None, help="a corpus folder with manifest.csv")
    parser.add_argument("--n", type=int, default=None, help="items (first rows of --corpus; default all, "
                                                            "or 20000 when generating)")
    parser.add_argument("--script-n", type=int, default=5000, help="items for the minimal script (0: skip)")
    parser.add_argument("--breakdown-n", type=int, default=5000, help="items for the stage breakdown (0: skip)")
    parser.add_argument("--lean-rounds", type=int, default=3,
                        help="interleaved rounds of the breakdown's shard function and the lean floor (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--baseline-checkout", default=None,
                        help="also run align from this checkout (e.g. the main branch), interleaved with this one")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds with --baseline-checkout")
    parser.add_argument("--minimal-script", nargs=3, metavar=("MANIFEST", "OUT", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minimal_script:
        manifest, out, limit = args.minimal_script
        minimal_script(Path(manifest), Path(out), int(limit) or None)
        return
    if args.corpus is None and args.n is None:
        args.n = 20000

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_align_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    manifest, n = corpus_manifest(args, work)
    files = alignment_files(manifest)
    read_every_byte(files, work)  # warm the page cache for everyone
    floor = read_every_byte(files, work)
    align = run_align(manifest, work / "out", args.workers)
    results = {"n": n, "workers": args.workers, "python": platform.python_version(), "cpus": os.cpu_count(),
               "floor": floor, "align": align}
    if args.script_n:
        script_n = min(args.script_n, n)
        script = measured([sys.executable, __file__, "--minimal-script", str(manifest), str(work / "script"),
                           str(script_n)])
        script["n"] = script_n
        results["minimal_script"] = script
    if args.breakdown_n:
        results["breakdown_us_per_utt"] = breakdown(manifest, min(args.breakdown_n, n), work, args.lean_rounds)
    if args.baseline_checkout:
        results["interleaved"] = interleaved(manifest, work, args.workers, args.baseline_checkout, args.rounds)

    def us(entry: dict, count: int) -> float:
        return 1e6 * entry["cpu_s"] / count

    align_us = us(align, n)
    print(f"\nN = {n:,} synthetic 10 s MFA-like TextGrids, Python {results['python']}, {results['cpus']} cores\n")
    print("| what | items | CPU s | µs/utt | align / this | wall s | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    lines = [("read every byte (`cat`, warm cache): the floor", floor, n),
             (f"`anchorprep align -j {args.workers}` end to end", align, n)]
    if "minimal_script" in results:
        lines.append(("minimal praatio + numpy + pyarrow script (1 process)", results["minimal_script"],
                      results["minimal_script"]["n"]))
    for what, entry, count in lines:
        print(f"| {what} | {count:,} | {entry['cpu_s']:.1f} | {us(entry, count):.1f} | "
              f"{align_us / us(entry, count):.2f}× | {entry['wall_s']:.1f} | {entry['load_avg']:.2f} |")
    if "breakdown_us_per_utt" in results:
        print(f"\nworker shard function, {min(args.breakdown_n, n):,} items in one process, µs/utt "
              f"(load {os.getloadavg()[0]:.2f}):\n")
        print("| stage | µs/utt |")
        print("|---|---:|")
        lean = results["breakdown_us_per_utt"].pop("lean", None)
        for stage, value in results["breakdown_us_per_utt"].items():
            print(f"| {stage} | {value:.1f} |")
        if lean:
            print(f"\nthe lean floor (`lean_shards`: the same checks and shard bytes, no generality) against the "
                  f"worker's shard function, same items, interleaved, µs/utt (shards byte-identical: "
                  f"{lean['identical_shards']}; load {os.getloadavg()[0]:.2f}):\n")
            print("| round | shard function | lean floor | lean / shard function |")
            print("|---:|---:|---:|---:|")
            for i, (full, bare) in enumerate(zip(lean["pipeline_us"], lean["lean_us"]), 1):
                print(f"| {i} | {full:.1f} | {bare:.1f} | {bare / full:.2f}× |")
            results["lean_floor"] = lean
    if "interleaved" in results:
        runs = results["interleaved"]["rounds"]
        print(f"\n`align -j {args.workers}` of this checkout and of {args.baseline_checkout}, interleaved, µs/utt "
              f"(shards identical: {results['interleaved']['identical_shards']}):\n")
        print("| round | this | baseline | this / baseline | load avg |")
        print("|---:|---:|---:|---:|---:|")
        for i, (mine, theirs) in enumerate(zip(runs["this"], runs["baseline"]), 1):
            print(f"| {i} | {us(mine, n):.1f} | {us(theirs, n):.1f} | {mine['cpu_s'] / theirs['cpu_s']:.2f}× | "
                  f"{max(mine['load_avg'], theirs['load_avg']):.2f} |")
    results["align_us_per_utt"] = align_us
    results["floor_us_per_utt"] = us(floor, n)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
