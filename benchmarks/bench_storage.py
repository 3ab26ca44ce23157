"""align and vad with the corpus and the run on object storage vs local files, in the same run.

A local S3 API (moto's standalone server, `tests/s3server.py`, in this process) counts every
request and byte at the server. For each command the same items run twice, in a subprocess
calling the Python API (so the server thread does not share the client's interpreter): corpus
and run folder local, then corpus and run folder on the bucket. Reported per command and place:
items/s (the run's own elapsed time, one worker), requests per item, MB downloaded and uploaded.

Items: ``--items`` synthetic utterances (MFA-like TextGrid + a 4 s 16 kHz PCM-16 WAV), or, with
``--corpus DIR`` (e.g. /work/corpus/c281k, TextGrids only), the first ``--items`` rows of its
manifest.csv for align (vad then uses the synthetic WAVs). The moto server is an in-process
Python server on the loopback interface: its latency is far below a real bucket's and its
throughput lower, so read the request counts and bytes as what a cloud run would do, and the
items/s as this machine's overhead of the object-storage path, not as cloud throughput.

Run: ``python benchmarks/bench_storage.py [--items 200] [--corpus DIR] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from anchorprep.synthetic import synthetic_utterance, textgrid_text  # noqa: E402
from s3server import S3Server  # noqa: E402

BUCKET = "bench"
SHARD_SIZE = 50
CLIENT = """
import json, sys, time
import anchorprep
command, inputs, out = sys.argv[1:4]
kwargs = {"keyword": ["hey computer"]} if command == "align" else {}
started = time.perf_counter()
result = getattr(anchorprep, command)(inputs, out, shard_size=%d, workers=1, **kwargs)
print(json.dumps({"elapsed_s": time.perf_counter() - started, "items": result.items_run,
                  "failed": result.items_failed}))
""" % SHARD_SIZE


def write_corpus(root: Path, items: int, corpus: Path | None) -> None:
    """align.csv (TextGrid + WAV, or the given corpus's TextGrids) and vad.csv (WAVs), relative paths."""
    import soundfile as sf

    rng = np.random.default_rng(7)
    (root / "audio").mkdir(parents=True)
    (root / "grids").mkdir()
    rows = []
    t = np.arange(4 * 16000) / 16000
    for i in range(items):
        samples = 0.01 * rng.standard_normal(len(t))
        onset = 0.5 + (i % 10) * 0.2
        samples[int(onset * 16000):] += 0.3 * np.sin(2 * np.pi * 180 * t[int(onset * 16000):]) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t[int(onset * 16000):]))
        sf.write(root / "audio" / f"u{i:05d}.wav", samples.astype(np.float32), 16000, subtype="PCM_16")
        words, phones = synthetic_utterance(rng, 4.0, 8, ["hey", "computer"] if i % 2 == 0 else None)
        (root / "grids" / f"u{i:05d}.TextGrid").write_text(textgrid_text(words, phones, 4.0), encoding="utf-8")
        rows.append({"utt_id": f"u{i:05d}", "audio_path": f"audio/u{i:05d}.wav",
                     "alignment_path": f"grids/u{i:05d}.TextGrid"})
    frame = pd.DataFrame(rows)
    frame[["utt_id", "audio_path"]].to_csv(root / "vad.csv", index=False)
    if corpus is None:
        frame.to_csv(root / "align.csv", index=False)
        return
    given = pd.read_csv(corpus / "manifest.csv", dtype=str, nrows=items)
    (root / "corpus-grids").mkdir()
    for i, path in enumerate(given["alignment_path"]):
        source = corpus / path
        (root / "corpus-grids" / source.name).write_bytes(source.read_bytes())
        given.loc[i, "alignment_path"] = f"corpus-grids/{source.name}"
    given.to_csv(root / "align.csv", index=False)


def run_client(command: str, inputs: str, out: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CLIENT, command, inputs, out], env=env, capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--corpus", type=Path, default=None, help="a folder with manifest.csv + TextGrids (align)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import s3fs

    results = []
    with tempfile.TemporaryDirectory() as tmp, S3Server() as server:
        root = Path(tmp) / "corpus"
        write_corpus(root, args.items, args.corpus)
        env = {**os.environ, **server.environment(), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        os.environ.update(server.environment())
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        fs.put(str(root), f"{BUCKET}/corpus", recursive=True)
        corpus_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        for command in ("align", "vad"):
            manifest = f"{command}.csv"
            for place, inputs, out in (("local", str(root / manifest), str(Path(tmp) / f"out-{command}")),
                                       ("s3 (moto)", f"s3://{BUCKET}/corpus/{manifest}", f"s3://{BUCKET}/runs/{command}")):
                server.log.reset()
                timing = run_client(command, inputs, out, env)
                log = server.log
                results.append({
                    "command": command, "place": place, "items": timing["items"], "failed": timing["failed"],
                    "items_per_s": timing["items"] / timing["elapsed_s"], "elapsed_s": timing["elapsed_s"],
                    "requests": log.total, "requests_by_method": dict(log.requests),
                    "requests_per_item": log.total / timing["items"], "mb_down": log.bytes_out / 1e6,
                    "mb_up": log.bytes_in / 1e6,
                })
    load = os.getloadavg()
    print(f"{args.items} items, shard size {SHARD_SIZE}, one worker; corpus {corpus_bytes / 1e6:.1f} MB; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| command | corpus + run | items/s | vs local | requests/item | requests (GET/HEAD/PUT/other) | MB down | MB up |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    local_rate = {}
    for r in results:
        if r["place"] == "local":
            local_rate[r["command"]] = r["items_per_s"]
        methods = r["requests_by_method"]
        split = "/".join(str(methods.get(m, 0)) for m in ("GET", "HEAD", "PUT")) + \
            f"/{sum(v for k, v in methods.items() if k not in ('GET', 'HEAD', 'PUT'))}"
        print(f"| {r['command']} | {r['place']} | {r['items_per_s']:.0f} | {r['items_per_s'] / local_rate[r['command']]:.2f} | "
              f"{r['requests_per_item']:.2f} | {split} | {r['mb_down']:.2f} | {r['mb_up']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "items": args.items, "results": results}, indent=2))


if __name__ == "__main__":
    main()
