"""Corpora and runs on object storage: a real S3 API on this machine (moto's standalone server) and s3fs.

The server starts and stops inside the test session (`s3` fixture: a free port, dummy
credentials, ``AWS_ENDPOINT_URL`` pointing at it, so s3fs and every subprocess or Dask worker
find it the way they would find a real endpoint). What is checked:

* inputs on the bucket, the run written locally and written to the bucket: byte-identical
  shards, manifest, errors.jsonl and report.json (align with TextGrids + audio, vad, accel);
* inputs local vs on the bucket: the same rows (only the path columns differ: URLs vs paths);
* kill + ``--resume`` on the bucket, array-job tasks on the bucket, a Dask cluster of worker
  processes reading the corpus from the bucket and writing the run to it: byte-identical;
* the bucket run read back by pandas, pyarrow and anchorprep's own readers;
* one-line errors (exit 2) for a bad URL, a missing bucket, an unknown protocol; per-item error
  lines for missing objects; local paths with a colon stay local.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import badinputs
from anchorprep.cli import app
from anchorprep.synthetic import synthetic_utterance, textgrid_text

s3fs = pytest.importorskip("s3fs", reason="object storage is an optional extra: pip install 'anchorprep[s3]'")
pytest.importorskip("moto.server", reason="the tests need moto[server] (in the test extra)")
from s3server import S3Server  # noqa: E402  (needs moto)

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("manifest.json", "errors.jsonl", "report.json")
BUCKET = "anchorprep-test"
SHARD = ("--shard-size", "4")


@pytest.fixture(scope="session")
def server():
    with S3Server() as running:
        yield running


@pytest.fixture(scope="session")
def s3(server):
    """The session's moto S3 server as an s3fs filesystem (bucket `BUCKET` created); the
    environment points every client (subprocesses and Dask workers too) at it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "FSSPEC_S3_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        try:
            yield fs
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


def _wav_and_grid(folder: Path, i: int, rng) -> dict:
    """A 1.6 s speech-like WAV and a TextGrid of the same length (every second one has the keyword)."""
    audio = folder / "audio" / f"u{i:02d}.wav"
    grid = folder / "grids" / f"u{i:02d}.TextGrid"
    audio.parent.mkdir(parents=True, exist_ok=True)
    grid.parent.mkdir(parents=True, exist_ok=True)
    badinputs.write_audio(audio, badinputs.speechlike(1.6, seed=i, onset_s=0.3 + 0.04 * i))
    words, phones = synthetic_utterance(rng, 1.6, 4, ["hey", "computer"] if i % 2 == 0 else None)
    grid.write_text(textgrid_text(words, phones, 1.6), encoding="utf-8")
    return {"utt_id": f"u{i:02d}", "audio_path": f"audio/u{i:02d}.wav", "alignment_path": f"grids/u{i:02d}.TextGrid",
            "speaker": f"spk{i % 2}"}


@pytest.fixture(scope="module")
def corpus(s3, tmp_path_factory) -> Path:
    """A local corpus (manifests with relative paths) and its copy at s3://BUCKET/corpus/."""
    root = tmp_path_factory.mktemp("storage") / "corpus"
    rng = np.random.default_rng(5)
    items = [_wav_and_grid(root, i, rng) for i in range(10)]
    items.insert(4, {"utt_id": "gone", "audio_path": "audio/gone.wav", "alignment_path": "grids/gone.TextGrid",
                     "speaker": "spk0"})  # a missing item: one errors.jsonl line, local or on the bucket
    pd.DataFrame(items).to_csv(root / "align.csv", index=False)
    pd.DataFrame(items)[["utt_id", "audio_path", "speaker"]].to_csv(root / "vad.csv", index=False)
    (root / "accel").mkdir()
    for path in sorted((REPO / "sample_data" / "accel").glob("raise_*.csv")):
        shutil.copy(path, root / "accel" / path.name)
    s3.put(str(root), f"{BUCKET}/corpus", recursive=True)
    return root


COMMANDS = {
    "align": ("align.csv", ("-k", "hey computer")),
    "vad": ("vad.csv", ()),
    "accel": ("accel", ("--preset", "raise")),
}


def invoke(*argv: str, code: int | tuple[int, ...] = (0, 1)):
    result = runner.invoke(app, [str(a) for a in argv])
    codes = (code,) if isinstance(code, int) else code
    assert result.exit_code in codes, (argv, result.exit_code, result.output, result.exception)
    return result


def local_outputs(out: Path) -> dict[str, bytes]:
    files = sorted(out.glob("data/anchors-*.parquet")) + [out / name for name in OUTPUTS]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in files}


def bucket_outputs(fs, url: str) -> dict[str, bytes]:
    key = url.removeprefix("s3://")
    shards = sorted(p for p in fs.find(f"{key}/data") if p.endswith(".parquet"))
    return {p[len(key) + 1:]: fs.cat_file(p) for p in [*shards, *(f"{key}/{n}" for n in OUTPUTS)]}


def _run(command: str, inputs: str, out: str, *extra: str):
    return invoke(command, inputs, "-o", out, *COMMANDS[command][1], "-q", *SHARD, *extra)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bucket_run_is_byte_identical_to_a_local_run(s3, corpus, tmp_path, command):
    name = COMMANDS[command][0]
    bucket_inputs = f"s3://{BUCKET}/corpus/{name}"
    _run(command, bucket_inputs, tmp_path / "local-out")
    _run(command, bucket_inputs, f"s3://{BUCKET}/runs/{command}")
    local = local_outputs(tmp_path / "local-out")
    assert len(local) >= 4 and local == bucket_outputs(s3, f"s3://{BUCKET}/runs/{command}")
    # Nothing else on the bucket: no temporaries, no local-style tree.
    keys = {k.split(f"runs/{command}/", 1)[1] for k in s3.find(f"{BUCKET}/runs/{command}")}
    assert keys - set(local) <= {".anchorprep/run.json", *(f".anchorprep/done/{i:05d}.json" for i in range(9))}
    assert not Path("s3:").exists()

    # Local inputs: the same rows; only the path columns name local files instead of objects.
    _run(command, str(corpus / name), tmp_path / "from-local")
    bucket_rows = pq.read_table(tmp_path / "local-out" / "data").to_pandas()
    local_rows = pq.read_table(tmp_path / "from-local" / "data").to_pandas()
    prefix_local, prefix_bucket = str(corpus), f"s3://{BUCKET}/corpus"
    bucket_rows["audio_path"] = bucket_rows["audio_path"].str.replace(prefix_bucket, prefix_local, regex=False)
    pd.testing.assert_frame_equal(bucket_rows, local_rows)
    errors = [json.loads(line) for line in (tmp_path / "local-out" / "errors.jsonl").read_text().splitlines()]
    if command != "accel":
        assert [(e["utt_id"], e["path"].startswith("s3://")) for e in errors] == [("gone", True)]


def test_folder_input_on_the_bucket_is_one_listing(s3, server, corpus, tmp_path):
    """A folder of TextGrids + audio on the bucket: the same items as the local folder, from a
    listing per folder (a few requests whatever the number of files), not a request per file."""
    from anchorprep.sources.items import textgrid_folder_items

    local = textgrid_folder_items(corpus / "grids", corpus / "audio")
    server.log.reset()
    remote = textgrid_folder_items(f"s3://{BUCKET}/corpus/grids", f"s3://{BUCKET}/corpus/audio")
    assert server.log.total <= 5, server.log.requests  # folder check (HEAD + listing) + one listing each
    local, remote = local.to_pylist(), remote.to_pylist()
    for item in remote:
        for column in ("audio_path", "alignment_path"):
            item[column] = item[column].replace(f"s3://{BUCKET}/corpus", str(corpus))
    assert local == remote
    assert len(local) == 10 and all(item["audio_path"] for item in local)


CRASH = textwrap.dedent('''
    import json, os, signal, sys
    spec = json.loads(os.environ["ANCHORPREP_CRASH"])
    import anchorprep.pipeline.runner as runner
    original, calls = runner.write_json_atomic, [0]

    def patched(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == spec["n"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    runner.write_json_atomic = patched
    from anchorprep.cli import main
    sys.argv = ["anchorprep", *spec["argv"]]
    main()
''')


def test_kill_and_resume_on_the_bucket_is_byte_identical(s3, corpus, tmp_path):
    inputs = f"s3://{BUCKET}/corpus/align.csv"
    reference = f"s3://{BUCKET}/runs/align"
    if not s3.exists(f"{BUCKET}/runs/align/manifest.json"):
        _run("align", inputs, reference)
    out = f"s3://{BUCKET}/runs/align-killed"
    argv = ["align", inputs, "-o", out, *COMMANDS["align"][1], "-q", *SHARD]
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    env = {**os.environ, "ANCHORPREP_CRASH": json.dumps({"n": 2, "argv": argv}),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    key = out.removeprefix("s3://")
    assert len(s3.find(f"{key}/.anchorprep/done")) == 2 and not s3.exists(f"{key}/manifest.json")
    result = invoke(*argv, "--resume")
    assert result.exit_code == 1  # the missing item
    assert bucket_outputs(s3, out) == bucket_outputs(s3, reference)


def test_array_job_tasks_on_the_bucket(s3, corpus):
    inputs = f"s3://{BUCKET}/corpus/vad.csv"
    reference = f"s3://{BUCKET}/runs/vad"
    if not s3.exists(f"{BUCKET}/runs/vad/manifest.json"):
        _run("vad", inputs, reference)
    out = f"s3://{BUCKET}/runs/vad-array"
    _run("vad", inputs, out, "--num-shards", "2", "--shard-index", "1", "-j", "2")  # forked pool workers
    assert not s3.exists(f"{out.removeprefix('s3://')}/manifest.json")  # task 0 has not run yet
    _run("vad", inputs, out, "--num-shards", "2", "--shard-index", "0")
    assert bucket_outputs(s3, out) == bucket_outputs(s3, reference)


def test_setup_lock_is_a_conditional_put(s3, corpus):
    """A fresh setup.lock (another run setting the folder up) refuses the run; a stale one (left
    by a killed run) is taken over; the lock is gone once the run is set up."""
    import time

    out = f"s3://{BUCKET}/runs/locked"
    lock = f"{BUCKET}/runs/locked/.anchorprep/setup.lock"
    s3.pipe_file(lock, json.dumps({"host": "elsewhere", "pid": 1, "time": time.time()}).encode())
    result = invoke("vad", str(corpus / "vad.csv"), "-o", out, "-q", code=2)
    assert "another anchorprep run is setting up" in result.output and result.output.count("\n") == 1
    s3.pipe_file(lock, json.dumps({"host": "elsewhere", "pid": 1, "time": time.time() - 3600}).encode())
    invoke("vad", str(corpus / "vad.csv"), "-o", out, "-q")
    assert s3.exists(f"{BUCKET}/runs/locked/manifest.json") and not s3.exists(lock)


def test_dask_workers_read_and_write_the_bucket(s3, corpus):
    distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'anchorprep[dask]'")
    inputs = f"s3://{BUCKET}/corpus/align.csv"
    reference = f"s3://{BUCKET}/runs/align"
    if not s3.exists(f"{BUCKET}/runs/align/manifest.json"):
        _run("align", inputs, reference)
    out = f"s3://{BUCKET}/runs/align-dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        _run("align", inputs, out, "--executor", "dask", "--address", cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # the workers opened the bucket themselves
            pids = client.run(os.getpid)
    assert os.getpid() not in pids.values() and len(pids) == 2
    assert bucket_outputs(s3, out) == bucket_outputs(s3, reference)


def test_bucket_run_reads_back_everywhere(s3, corpus, tmp_path):
    out = f"s3://{BUCKET}/runs/vad"
    if not s3.exists(f"{BUCKET}/runs/vad/manifest.json"):
        _run("vad", f"s3://{BUCKET}/corpus/vad.csv", out)
    options = {"client_kwargs": {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}}
    frame = pd.read_parquet(f"{out}/data", storage_options=options)
    import pyarrow.dataset as ds

    table = ds.dataset(f"{BUCKET}/runs/vad/data", filesystem=s3, format="parquet").to_table()
    assert len(frame) == table.num_rows == 10
    from anchorprep.shards import open_run

    run = open_run(out)
    assert run.num_rows == 10 and sum(1 for _ in run.iter_rows(["utt_id"])) == 10
    from anchorprep.data import IterableShardDataset, ShardDataset

    dataset = ShardDataset(out)
    assert len(dataset) == 10 and dataset[3]["utt_id"] == frame["utt_id"].iloc[3]
    assert sum(1 for _ in IterableShardDataset(out)) == 10
    assert invoke("validate", out, code=0).exit_code == 0
    invoke("stats", out, code=0)
    invoke("vad", f"s3://{BUCKET}/corpus/vad.csv", "-o", f"s3://{BUCKET}/runs/vad-from", "-q", *SHARD,
           "--anchors-from", out)
    invoke("weights", out, "-o", f"s3://{BUCKET}/runs/vad-weighted", code=0)
    invoke("validate", f"s3://{BUCKET}/runs/vad-weighted", code=0)
    result = invoke("stats", out, "--png", f"s3://{BUCKET}/stats.png", code=2)  # PNGs are written locally only
    assert result.output.count("\n") == 1 and not Path("s3:").exists()


@pytest.mark.parametrize("argv, message", [
    (("-o", "s3://"), "needs a bucket"),
    (("-o", "s3://no-such-bucket/run"), "does not exist"),
    (("-o", "xyz://bucket/run"), "unknown storage protocol"),
])
def test_bad_output_urls_are_one_line_usage_errors(s3, corpus, argv, message):
    result = invoke("vad", str(corpus / "vad.csv"), *argv, "-q", code=2)
    assert message in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not Path("s3:").exists() and not Path("xyz:").exists()


def test_a_missing_filesystem_library_names_the_extra(corpus):
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    result = invoke("vad", str(corpus / "vad.csv"), "-o", "gs://bucket/run", "-q", code=2)
    assert "pip install 'anchorprep[gcs]'" in result.output and result.output.count("\n") == 1


def test_missing_inputs_on_the_bucket(s3, corpus):
    result = invoke("vad", f"s3://no-such-bucket/vad.csv", "-o", f"s3://{BUCKET}/runs/x", "-q", code=2)
    assert "manifest not found" in result.output and result.output.count("\n") == 1
    result = invoke("align", f"s3://{BUCKET}/corpus/nothing-here", "-o", f"s3://{BUCKET}/runs/x", "-q",
                    "-k", "hey", code=2)
    assert result.output.count("\n") == 1


def test_permission_denied(s3, server, corpus):
    """A 403 on the output is a one-line usage error; on an item's file, that item's error line."""
    server.denied_prefixes.append(f"/{BUCKET}/private")
    try:
        result = invoke("vad", str(corpus / "vad.csv"), "-o", f"s3://{BUCKET}/private/run", "-q", code=2)
        assert "forbidden" in result.output.lower() and result.output.count("\n") == 1, result.output
        s3.put(str(corpus / "audio" / "u01.wav"), f"{BUCKET}/open/u01.wav")
        manifest = f"s3://{BUCKET}/open/denied.csv"
        s3.pipe_file(manifest.removeprefix("s3://"), (
            "utt_id,audio_path\n"
            f"ok,s3://{BUCKET}/open/u01.wav\n"
            f"denied,s3://{BUCKET}/private/u02.wav\n").encode())
        out = f"s3://{BUCKET}/runs/denied"
        invoke("vad", manifest, "-o", out, "-q", code=1)
        errors = [json.loads(line) for line in s3.cat_file(f"{BUCKET}/runs/denied/errors.jsonl").splitlines()]
        assert [e["utt_id"] for e in errors] == ["denied"] and "forbidden" in errors[0]["reason"].lower()
    finally:
        server.denied_prefixes.clear()


def test_a_segment_of_a_long_recording_is_read_by_byte_range(s3, server, tmp_path):
    """120 s of 16 kHz PCM-16 (3.8 MB): one second from the middle fetches a few blocks, not the file."""
    from anchorprep.sources.audio import load_audio

    local = tmp_path / "long.wav"
    badinputs.write_audio(local, badinputs.speechlike(120.0, seed=3, onset_s=1.0))
    s3.put(str(local), f"{BUCKET}/long/long.wav")
    size = local.stat().st_size
    server.log.reset()
    remote, rate = load_audio(f"s3://{BUCKET}/long/long.wav", start_s=60.0, duration_s=1.0)
    segment_bytes = server.log.bytes_out
    expected, _ = load_audio(str(local), start_s=60.0, duration_s=1.0)
    np.testing.assert_array_equal(remote, expected)
    assert segment_bytes < size / 4, (segment_bytes, size)
    server.log.reset()
    whole, _ = load_audio(f"s3://{BUCKET}/long/long.wav")
    # The whole file: the blocks still cached from the segment read are not fetched again.
    assert len(whole) == 120 * rate and size <= segment_bytes + server.log.bytes_out < size + segment_bytes


def test_local_paths_with_a_colon_stay_local(corpus, tmp_path, monkeypatch):
    from anchorprep.storage import location

    for text in ("run:v2", "a:b/c", "C:\\x", "file:name"):
        assert location(text) == Path(text)
    assert location(f"file://{tmp_path}") == tmp_path
    monkeypatch.chdir(tmp_path)
    shutil.copytree(corpus, tmp_path / "a:b")
    invoke("vad", "a:b/vad.csv", "-o", "run:v2", "-q", *SHARD)
    assert (tmp_path / "run:v2" / "manifest.json").is_file()


def test_file_and_memory_urls_write_the_same_run(corpus, tmp_path):
    """``file://`` is the local folder; ``memory://`` (fsspec's in-process store, no buckets) takes
    the object-storage path (whole-object writes, conditional-put setup lock): same bytes."""
    import fsspec  # a base dependency

    invoke("vad", str(corpus / "vad.csv"), "-o", f"file://{tmp_path}/out", "-q", *SHARD)
    invoke("vad", str(corpus / "vad.csv"), "-o", "memory://runs/vad", "-q", *SHARD)
    memory = fsspec.filesystem("memory")
    local = local_outputs(tmp_path / "out")
    assert len(local) > 4 and local == {name: memory.cat_file(f"/runs/vad/{name}") for name in local}
