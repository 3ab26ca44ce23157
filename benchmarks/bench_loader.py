"""Loader throughput: frames per second from shards to padded SAL batches.

Writes synthetic shards (random distances and targets, lengths uniform around ``--frames``) with
anchorprep's own writer into a temporary folder, then times full passes over them, all in one
process (``num_workers=0``) and the same run:

* ``IterableShardDataset`` → ``DataLoader(collate_fn=collate(weights))`` (shuffled, buffer 8192),
  with each shard's sha256 checked against ``manifest.json`` as it is read (the default) and
  with ``check_sha256=False``: the difference is the checksum's cost;
* ``ShardDataset`` + ``LengthBucketBatchSampler`` (shuffled) → the same collate;
* a plain pandas reader: ``pd.read_parquet`` per shard, ``iterrows``, ``torch.tensor`` per
  column, then the same collate (no shuffling, which only favours it).

A second table (``--sweep``) repeats the shuffled ``IterableShardDataset`` pass over the same
utterances cut into shards of 10 rows, ``--shard-size`` rows and one shard, with the time to the
first batch and one shard's read (`ShardTable.read`, batched) against one ``pq.read_table``
call over the same shard: a shard is a single Parquet row group, so that is the "one large shard"
cliff.

``--compare-pythonpath DIR`` measures another checkout (e.g. the code before a change) against
this one on the same shards: one long-lived subprocess per checkout (``--read-folder``) times one
pass at a time, the two checkouts back to back in alternating order, ``--rounds`` times per
reader. The table gives per-reader medians, the median (and range) of the paired passes' speed
ratio this/other, the same ratio in CPU seconds (every thread of the process), each checkout's
ratio to its own pandas baseline, and the 1-minute load average. On a shared machine those
ratios are the claim; absolute frames/s need a quiet one.

Every batch holds ``target``, ``distance``, ``mask`` and ``weight`` (linear kernel); no features.
Torch runs with one intra-op thread by default (``--torch-threads``), as in DataLoader workers.
The target for anchorprep's readers is >= 15 million frames/s at the default shard size (issue 17).

    python benchmarks/bench_loader.py                  # 20k utterances × ~500 frames
    python benchmarks/bench_loader.py --utterances 2000 --json results.json
    python benchmarks/bench_loader.py --compare-pythonpath /path/to/other/checkout --rounds 9
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from anchorprep.anchors import TargetWindow
from anchorprep.data import (
    AnchorWeightConfig,
    IterableShardDataset,
    LengthBucketBatchSampler,
    ShardDataset,
    collate,
)
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.rows import Labelling
from anchorprep.pipeline.runner import shard_name
from anchorprep.shards import rows_to_table, shard_schema
from anchorprep.shards.io import sha256_file, write_json_atomic, write_parquet_atomic
from anchorprep.shards.run import InputsFingerprint, RunFolder, RunManifest, RunSettings, ShardEntry

TARGET_FRAMES_PER_S = 15e6  # issue 17, at the default shard size


def write_synthetic_shards(folder: Path, utterances: int, frames: int, shard_size: int, seed: int) -> int:
    """Write the shards; returns the total number of frames."""
    rng = np.random.default_rng(seed)
    settings = Labelling(FrameGrid(), TargetWindow(0, 30), ("kw",)).settings()
    schema = shard_schema((), settings)
    count = -(-utterances // shard_size)
    total = 0
    entries = []
    for index in range(count):
        rows = []
        for i in range(index * shard_size, min(utterances, (index + 1) * shard_size)):
            n = int(rng.integers(frames // 2, frames * 3 // 2 + 1))
            anchor = np.array([rng.integers(0, n)], dtype=np.int32)
            distance = (np.arange(n) - anchor[0]).astype(np.int16)
            target = np.where((distance >= 0) & (distance <= 30), 1, 0).astype(np.int16)
            rows.append({
                "utt_id": f"utt{i:07d}", "audio_path": None, "start_s": 0.0, "duration_s": n / 100.0,
                "sample_rate": 16000, "num_frames": n, "anchor_times_s": anchor / 100.0,
                "anchor_frames": anchor, "anchor_labels": ["kw"], "anchor_sources": ["manual"],
                "distance": distance, "target": target,
            })
            total += n
        path = folder / shard_name(index, count)
        write_parquet_atomic(path, rows_to_table(rows, schema))
        entries.append(ShardEntry(path.name, len(rows), sha256_file(path)))
    # A manifest, so the datasets know each shard's sha256 (and check it) as after a real run.
    run_settings = RunSettings.build("bench", settings, InputsFingerprint(utterances, ""), shard_size, ())
    write_json_atomic(RunFolder(folder).manifest_file, RunManifest(run_settings, tuple(entries)).to_dict())
    return total


def pandas_batches(folder: Path, batch_size: int, collate_fn):
    """The baseline: a row-by-row pandas reader building tensors per row."""
    batch = []
    for path in sorted(folder.glob("anchors-*.parquet")):
        frame = pd.read_parquet(path, columns=["utt_id", "num_frames", "target", "distance", "anchor_frames"])
        for _, row in frame.iterrows():
            batch.append({
                "utt_id": row["utt_id"], "num_frames": int(row["num_frames"]),
                "target": torch.tensor(row["target"]), "distance": torch.tensor(row["distance"]),
                "anchor_frames": torch.tensor(row["anchor_frames"]),
            })
            if len(batch) == batch_size:
                yield collate_fn(batch)
                batch = []
    if batch:
        yield collate_fn(batch)


def shard_size_sweep(sizes: list[int], utterances: int, frames: int, batch_size: int, seed: int, weights,
                     repeats: int) -> list[dict]:
    """The shuffled IterableShardDataset pass per shard size (median), its time to the first batch,
    and one shard's read batched (`ShardTable.read`) against one ``pq.read_table`` call (best of
    interleaved tries)."""
    from anchorprep.data.table import ITEM_COLUMNS, ShardTable

    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="anchorprep-bench-sweep-") as tmp:
            folder = Path(tmp)
            total = write_synthetic_shards(folder, utterances, frames, size, seed)
            stream = IterableShardDataset(folder, shuffle=True, seed=seed)
            passes, firsts = [], []
            for repeat in range(repeats):
                stream.set_epoch(repeat)
                started = time.perf_counter()
                loader = iter(DataLoader(stream, batch_size=batch_size, num_workers=0, collate_fn=weights))
                next(loader)
                firsts.append(time.perf_counter() - started)
                for _ in loader:
                    pass
                passes.append(time.perf_counter() - started)
            shard = sorted(folder.glob("anchors-*.parquet"))[0]
            batched, whole = [], []
            ShardTable.read(shard, ITEM_COLUMNS)  # warm: the first call in a process imports and allocates
            for _ in range(max(3, repeats)):
                started = time.perf_counter()
                ShardTable.read(shard, ITEM_COLUMNS)
                batched.append(time.perf_counter() - started)
                started = time.perf_counter()
                ShardTable(pq.read_table(shard, columns=list(ITEM_COLUMNS)), ITEM_COLUMNS)
                whole.append(time.perf_counter() - started)
            seconds = statistics.median(passes)
            rows.append({"shard_size": size, "shards": -(-utterances // size), "frames": total, "seconds": seconds,
                         "frames_per_s": total / seconds, "first_batch_s": statistics.median(firsts),
                         "shard_rows": min(size, utterances), "read_batched_s": min(batched),
                         "read_table_s": min(whole)})
    return rows


READERS = ("anchorprep IterableShardDataset (shuffled)",
           "anchorprep IterableShardDataset (shuffled, check_sha256=False)",
           "anchorprep ShardDataset + LengthBucketBatchSampler",
           "pandas read_parquet + iterrows")


def reader_passes(folder: Path, args, weights) -> tuple[list, int]:
    """For each of `READERS` over the shards in ``folder``: ``(make batches, set_epoch or None)``; and
    the total frame count."""
    stream = IterableShardDataset(folder, shuffle=True, seed=args.seed)
    unchecked = IterableShardDataset(folder, shuffle=True, seed=args.seed, check_sha256=False)
    mapped = ShardDataset(folder)
    sampler = LengthBucketBatchSampler(mapped.lengths, args.max_frames, shuffle=True, seed=args.seed)
    makers = [
        (lambda: DataLoader(stream, batch_size=args.batch_size, num_workers=0, collate_fn=weights), stream.set_epoch),
        (lambda: DataLoader(unchecked, batch_size=args.batch_size, num_workers=0, collate_fn=weights),
         unchecked.set_epoch),
        (lambda: DataLoader(mapped, batch_sampler=sampler, num_workers=0, collate_fn=weights), sampler.set_epoch),
        (lambda: pandas_batches(folder, args.batch_size, weights), None),
    ]
    return makers, int(mapped.lengths.sum())


def measure_readers(folder: Path, args, weights) -> list[dict]:
    """`READERS` over the shards in ``folder``, ``args.repeats`` passes each (median), in this process."""
    makers, total = reader_passes(folder, args, weights)
    results = []
    for name, (make, set_epoch) in zip(READERS, makers):
        runs, cpu = [], []
        for repeat in range(args.repeats):
            if set_epoch is not None:
                set_epoch(repeat)
            seconds, frames, batches = timed_pass(make, cpu)
            assert frames == total, f"{name} saw {frames} frames of {total}"
            runs.append(seconds)
        seconds = statistics.median(runs)
        results.append({"reader": name, "seconds": seconds, "runs": runs, "cpu_runs": cpu, "frames": total,
                        "batches": batches, "frames_per_s": total / seconds, "utterances_per_s": args.utterances / seconds})
    return results


def serve_passes(folder: Path, args, weights) -> None:
    """One side of --compare-pythonpath: for each ``reader epoch`` line on stdin, time one pass of
    that reader and answer ``seconds cpu_seconds`` on stdout."""
    makers, total = reader_passes(folder, args, weights)
    print("ready", flush=True)
    for line in sys.stdin:
        reader, epoch = map(int, line.split())
        make, set_epoch = makers[reader]
        if set_epoch is not None:
            set_epoch(epoch)
        cpu: list[float] = []
        seconds, frames, _ = timed_pass(make, cpu)
        assert frames == total
        print(seconds, cpu[0], flush=True)


def compare_checkouts(folder: Path, total: int, args) -> dict:
    """This checkout against ``args.compare_pythonpath`` on the shards in ``folder``: one long-lived
    subprocess per checkout, one pass at a time, alternating, so both see the same load."""
    checkouts = {"this": str(Path(__file__).resolve().parents[1]), "other": str(Path(args.compare_pythonpath).resolve())}
    forwarded = ["--seed", str(args.seed), "--batch-size", str(args.batch_size), "--max-frames", str(args.max_frames),
                 "--torch-threads", str(args.torch_threads), "--read-folder", str(folder)]
    wall = {side: {name: [] for name in READERS} for side in checkouts}
    cpu = {side: {name: [] for name in READERS} for side in checkouts}
    loads = []
    with tempfile.TemporaryDirectory(prefix="anchorprep-bench-cwd-") as cwd:  # outside any checkout
        servers = {side: subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *forwarded],
                                          env={**os.environ, "PYTHONPATH": path}, cwd=cwd, text=True,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                   for side, path in checkouts.items()}
        try:
            for server in servers.values():
                assert server.stdout.readline().strip() == "ready"
            for round_ in range(args.rounds):
                for reader, name in enumerate(READERS):
                    for side in (("this", "other") if (round_ + reader) % 2 else ("other", "this")):
                        servers[side].stdin.write(f"{reader} {round_}\n")
                        servers[side].stdin.flush()
                        seconds, cpu_seconds = map(float, servers[side].stdout.readline().split())
                        wall[side][name].append(seconds)
                        cpu[side][name].append(cpu_seconds)
                loads.append(os.getloadavg()[0])
        finally:
            for server in servers.values():
                server.stdin.close()
                server.wait()
    rows = []
    for name in READERS:
        # Passes of the two checkouts ran back to back: their ratio, then its median over rounds.
        ratios = [o / t for t, o in zip(wall["this"][name], wall["other"][name])]
        cpu_ratios = [o / t for t, o in zip(cpu["this"][name], cpu["other"][name])]
        this, other = (statistics.median(wall[side][name]) for side in ("this", "other"))
        rows.append({"reader": name, "this_s": this, "other_s": other, "this_frames_per_s": total / this,
                     "other_frames_per_s": total / other, "this_over_other": statistics.median(ratios),
                     "round_ratios": ratios, "cpu_this_over_other": statistics.median(cpu_ratios),
                     "cpu_round_ratios": cpu_ratios})
    pandas = rows[-1]
    print(f"{args.utterances} utterances, {total} frames, shard size {args.shard_size}; {args.rounds} rounds, each "
          "one pass per reader per checkout, back to back in alternating order (one long-lived process per "
          f"checkout); medians\nthis = {checkouts['this']}, other = {checkouts['other']}\n")
    print("| reader | this frames/s | other frames/s | speed this / other, paired passes: median (range) | "
          "CPU-time speed this / other | this × pandas | other × pandas |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['reader']} | {r['this_frames_per_s'] / 1e6:.2f} M | {r['other_frames_per_s'] / 1e6:.2f} M | "
              f"{r['this_over_other']:.2f} ({min(r['round_ratios']):.2f}–{max(r['round_ratios']):.2f}) | "
              f"{r['cpu_this_over_other']:.2f} | {r['this_frames_per_s'] / pandas['this_frames_per_s']:.2f} | "
              f"{r['other_frames_per_s'] / pandas['other_frames_per_s']:.2f} |")
    print(f"\n1-minute load average after each round: {', '.join(f'{x:.1f}' for x in loads)} "
          f"(median {statistics.median(loads):.1f})")
    report = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "total_frames": total, "checkouts": checkouts, "comparison": rows, "wall": wall, "cpu": cpu,
              "load_avg": loads}
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


def timed_pass(make_batches, cpu: list[float] | None = None) -> tuple[float, int, int]:
    """Seconds, frames (real, unpadded) and batches of one full pass; its CPU seconds (every thread
    of the process) are appended to ``cpu`` if given."""
    frames = batches = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    for batch in make_batches():
        frames += int(batch["lengths"].sum())
        batches += 1
        assert batch["weight"].shape == batch["target"].shape
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start, frames, batches


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=20000)
    parser.add_argument("--frames", type=int, default=500, help="mean frames per utterance (uniform ±50%%)")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-frames", type=int, default=32000, help="frame budget for the bucketing sampler")
    parser.add_argument("--repeats", type=int, default=3, help="passes per reader; the median is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (DataLoader workers use 1; more threads only add "
                             "OpenMP synchronisation to these small tensor ops, badly so on a busy machine)")
    parser.add_argument("--sweep", type=int, nargs="*", default=None,
                        help="shard sizes for the sweep table (default: 10, --shard-size and --utterances; "
                             "none: skip it)")
    parser.add_argument("--json", type=Path, default=None, help="save results to this file")
    parser.add_argument("--compare-pythonpath", type=Path, default=None,
                        help="another checkout to measure against this one, interleaved (see above)")
    parser.add_argument("--rounds", type=int, default=9, help="passes per reader and checkout with --compare-pythonpath")
    parser.add_argument("--read-folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)

    weights = collate(AnchorWeightConfig(kernel="linear"))
    if args.read_folder is not None:  # one side of --compare-pythonpath
        serve_passes(args.read_folder, args, weights)
        return {}
    with tempfile.TemporaryDirectory(prefix="anchorprep-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        total = write_synthetic_shards(folder, args.utterances, args.frames, args.shard_size, args.seed)
        write_s = time.perf_counter() - started
        if args.compare_pythonpath is not None:
            return compare_checkouts(folder, total, args)
        results = measure_readers(folder, args, weights)
        # The checksum alone (what check_sha256 adds per epoch), timed apart from the noisy passes.
        shard_files = sorted(folder.glob("anchors-*.parquet"))
        hash_runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            for path in shard_files:
                sha256_file(path)
            hash_runs.append(time.perf_counter() - started)
        checksum = {"seconds": statistics.median(hash_runs), "bytes": sum(p.stat().st_size for p in shard_files)}

    sizes = [10, args.shard_size, args.utterances] if args.sweep is None else args.sweep
    sweep = shard_size_sweep(sizes, args.utterances, args.frames, args.batch_size, args.seed, weights, args.repeats)

    baseline = results[-1]["frames_per_s"]
    for result in results:
        result["speedup_vs_pandas"] = result["frames_per_s"] / baseline
    report = {
        "config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                   "total_frames": total, "write_seconds": write_s},
        "environment": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                        "torch_threads": torch.get_num_threads()},
        "target_frames_per_s": TARGET_FRAMES_PER_S,
        "results": results,
        "checksum": checksum,
        "shard_size_sweep": sweep,
        "load_avg": os.getloadavg(),
    }
    print(f"{args.utterances} utterances, {total} frames, {-(-args.utterances // args.shard_size)} shards; "
          f"batch size {args.batch_size} (bucketing: {args.max_frames} frames); median of {args.repeats} passes, "
          "num_workers=0, batches hold target, distance, mask, weight\n")
    print("| reader | frames/s | utterances/s | batches | s/pass | × pandas |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['reader']} | {r['frames_per_s'] / 1e6:.2f} M | {r['utterances_per_s']:,.0f} | {r['batches']} | "
              f"{r['seconds']:.3f} | {r['speedup_vs_pandas']:.1f} |")
    checked = results[0]["seconds"]
    print(f"\nsha256 of every shard ({checksum['bytes'] / 1e6:.1f} MB): {checksum['seconds']:.3f} s per epoch, "
          f"{100 * checksum['seconds'] / checked:.1f}% of the checked IterableShardDataset pass")
    ours = min(r["frames_per_s"] for r in results[:-1])
    print(f"\nslowest anchorprep reader: {ours / 1e6:.2f} M frames/s "
          f"({'meets' if ours >= TARGET_FRAMES_PER_S else 'MISSES'} the {TARGET_FRAMES_PER_S / 1e6:.0f} M target)")
    if sweep:
        print("\n| shard size (IterableShardDataset, shuffled) | shards | frames/s | first batch s | "
              "one shard read: batched s | one pq.read_table s | read_table / batched |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in sweep:
            print(f"| {r['shard_size']:,} | {r['shards']:,} | {r['frames_per_s'] / 1e6:.2f} M | {r['first_batch_s']:.3f} | "
                  f"{r['read_batched_s']:.3f} | {r['read_table_s']:.3f} | {r['read_table_s'] / r['read_batched_s']:.2f} |")
    print(f"\n1-minute load average {report['load_avg'][0]:.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
