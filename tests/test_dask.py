"""`--executor dask`: the same bytes as the local executor, on a cluster we start or one anchorprep starts.

Skips (with the install hint) when Dask is not installed: it is an optional extra,
``pip install 'anchorprep[dask]'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.synthetic import write_synthetic_alignments

distributed = pytest.importorskip(
    "distributed", reason="Dask is an optional extra: pip install 'anchorprep[dask]' (or 'dask[distributed]')")
dask = pytest.importorskip("dask", reason="Dask is an optional extra: pip install 'anchorprep[dask]'")

runner = CliRunner()
KEYWORD = ("-k", "hey computer")
OUTPUTS = ("manifest.json", "errors.jsonl", "report.json")

HELPER = textwrap.dedent('''
    """A test-only align job that records the worker's environment in each row (audio_path)."""
    import os
    from dataclasses import dataclass
    from anchorprep.pipeline.align import AlignJob

    @dataclass(frozen=True)
    class EnvRecordingAlignJob(AlignJob):
        def process(self, item):
            row, stats = super().process(item)
            row["audio_path"] = "MALLOC_TRIM_THRESHOLD_=" + os.environ.get("MALLOC_TRIM_THRESHOLD_", "<unset>")
            return row, stats
''')
RECORDING_CLI = ("import sys, envhelper, anchorprep.pipeline.api as api; api.AlignJob = envhelper.EnvRecordingAlignJob; "
                 "from anchorprep.cli import main; sys.argv = ['anchorprep', *sys.argv[1:]]; main()")


def outputs(out: Path) -> dict[str, bytes]:
    files = sorted(out.glob("data/anchors-*.parquet")) + [out / name for name in OUTPUTS]
    return {p.name: p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """48 synthetic TextGrids and two bad items (errors.jsonl is not empty), 6 shards of 9."""
    tmp = tmp_path_factory.mktemp("dask")
    write_synthetic_alignments(tmp, n=48, seed=21)
    lines = (tmp / "manifest.csv").read_text().splitlines()
    lines[7:7] = [f"missing,{tmp / 'nope.TextGrid'},10.0,spk0"]
    lines[30:30] = ["utt0000002,grids/utt0000002.TextGrid,10.0,spk2"]
    manifest = tmp / "mixed.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    result = runner.invoke(app, ["align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9"])
    assert result.exit_code == 1, result.output
    assert len(list(out.glob("data/anchors-*.parquet"))) == 6
    return out


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    return {**env, **extra}


def test_dask_cluster_output_is_byte_identical_to_local(corpus, reference, cluster, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9",
         "--executor", "dask", "--address", cluster.scheduler_address],
        env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert outputs(out) == outputs(reference)
    # Both workers took part (the shards were spread over the cluster, not run in the driver).
    with distributed.Client(cluster.scheduler_address) as client:
        assert len(client.scheduler_info()["workers"]) == 2


def test_two_runs_on_one_cluster_into_two_folders_do_not_mix(corpus, reference, cluster, tmp_path):
    """Task keys once named only the shard and settings: two identical runs into X and Y at once
    shared tasks, split the shards between the folders and both exited without a manifest."""
    args = [*KEYWORD, "-q", "--shard-size", "9", "--executor", "dask", "--address", cluster.scheduler_address]
    procs = [subprocess.Popen([sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(tmp_path / name),
                               *args], env=cli_env(), stderr=subprocess.PIPE, text=True) for name in ("x", "y")]
    codes = [proc.wait(timeout=300) for proc in procs]
    assert codes == [1, 1], [proc.stderr.read() for proc in procs]  # 1: the corpus's two bad items
    for name in ("x", "y"):
        assert outputs(tmp_path / name) == outputs(reference)


@pytest.mark.slow
def test_dask_address_from_the_environment_and_resume(corpus, reference, cluster, tmp_path):
    """DASK_SCHEDULER_ADDRESS is used when --address is absent; --resume on Dask skips done shards."""
    out = tmp_path / "out"
    args = ["align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9", "--executor", "dask"]
    env = cli_env(DASK_SCHEDULER_ADDRESS=cluster.scheduler_address)
    first = subprocess.run([sys.executable, "-m", "anchorprep", *args, "--shard-index", "0", "--num-shards", "2"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1, first.stderr  # half the shards: no manifest yet, exit 1 (bad items seen)
    assert not (out / "manifest.json").exists()
    rest = subprocess.run([sys.executable, "-m", "anchorprep", *args, "--resume"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert rest.returncode == 1, rest.stderr
    assert outputs(out) == outputs(reference)


def test_dask_without_an_address_starts_its_own_cluster(corpus, reference, tmp_path):
    """anchorprep's own LocalCluster gives the same bytes, and its workers run without Dask's
    MALLOC_TRIM_THRESHOLD_=65536 (runner._execute_dask strips it from the nanny's environment)."""
    (tmp_path / "envhelper.py").write_text(HELPER)
    out = tmp_path / "out"
    env = cli_env(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    proc = subprocess.run(
        [sys.executable, "-c", RECORDING_CLI, "align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9",
         "--executor", "dask", "-j", "2"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    recorded = {v for shard in out.glob("data/anchors-*.parquet") for v in pq.read_table(shard).column("audio_path").to_pylist()}
    assert recorded == {"MALLOC_TRIM_THRESHOLD_=<unset>"}
    # Apart from the recorded column, the rows are the local executor's.
    columns = [c for c in pq.read_schema(next(reference.glob("data/anchors-*.parquet"))).names if c != "audio_path"]
    for shard in sorted(reference.glob("data/anchors-*.parquet")):
        assert pq.read_table(out / "data" / shard.name, columns=columns).equals(pq.read_table(shard, columns=columns))
    for name in ("errors.jsonl", "report.json"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    manifest, ref_manifest = (json.loads((d / "manifest.json").read_text()) for d in (out, reference))
    assert manifest["settings"] == ref_manifest["settings"]
    assert [s["rows"] for s in manifest["shards"]] == [s["rows"] for s in ref_manifest["shards"]]


@pytest.mark.slow
def test_own_cluster_plain_run_is_byte_identical(corpus, reference, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9",
         "--executor", "dask", "-j", "2"], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert outputs(out) == outputs(reference)


def test_dask_default_workers_do_set_malloc_trim(cluster):
    """The control for the test above: a cluster started with Dask's defaults (like the module
    fixture) does set MALLOC_TRIM_THRESHOLD_=65536 in its workers, so "<unset>" is meaningful."""
    if "MALLOC_TRIM_THRESHOLD_" not in dask.config.get("distributed.nanny.pre-spawn-environ", {}):
        pytest.skip("this Dask version does not set MALLOC_TRIM_THRESHOLD_ in its workers")
    with distributed.Client(cluster.scheduler_address) as client:
        values = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert set(values.values()) == {"65536"}


DYING = textwrap.dedent('''
    import os, signal
    from dataclasses import dataclass
    from anchorprep.pipeline.align import AlignJob

    @dataclass(frozen=True)
    class DyingAlignJob(AlignJob):
        def process(self, item):
            if item.get("utt_id") == os.environ.get("ANCHORPREP_DIE_ON"):
                os.kill(os.getpid(), signal.SIGKILL)
            return super().process(item)
''')


@pytest.mark.slow
def test_dask_worker_that_always_dies_fails_only_its_shard(corpus, reference, tmp_path):
    """KilledWorker (Dask gave up after its allowed-failures) fails that shard's items, like the
    local pool, instead of aborting the run with a traceback; every other shard is intact."""
    (tmp_path / "dyinghelper.py").write_text(DYING)
    out = tmp_path / "out"
    script = ("import sys, dyinghelper, anchorprep.pipeline.api as api; api.AlignJob = dyinghelper.DyingAlignJob; "
              "from anchorprep.cli import main; sys.argv = ['anchorprep', *sys.argv[1:]]; main()")
    env = cli_env(PYTHONPATH=str(tmp_path), ANCHORPREP_DIE_ON="utt0000020")
    proc = subprocess.run([sys.executable, "-c", script, "align", str(corpus), "-o", str(out), *KEYWORD, "-q",
                           "--shard-size", "9", "--executor", "dask", "-j", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr.split("KilledWorker")[-1] or (out / "manifest.json").exists()
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    worker = [e for e in errors if e["stage"] == "worker"]
    assert len(worker) == 9 and "utt0000020" in {e["utt_id"] for e in worker}
    assert all("KilledWorker" in e["reason"] and "tcp://" not in e["reason"] for e in worker)
    culprit = worker[0]["shard"]
    for shard in reference.glob("data/anchors-*.parquet"):
        if f"data/{shard.name}" != culprit:
            assert (out / "data" / shard.name).read_bytes() == shard.read_bytes()
    assert pq.read_table(out / culprit).num_rows == 0


def test_unreachable_scheduler_is_a_usage_error(corpus, tmp_path):
    """A wrong --address exits 2 with a message, not a 30 s wait and an OSError traceback."""
    env = cli_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    proc = subprocess.run(
        [sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(tmp_path / "out"), *KEYWORD, "-q",
         "--executor", "dask", "--address", "tcp://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:9" in " ".join(proc.stderr.split())


def test_resume_of_a_finished_run_needs_no_cluster(corpus, reference, tmp_path):
    """Nothing left to do: --resume with --executor dask neither starts nor contacts a cluster."""
    out = tmp_path / "out"
    assert runner.invoke(app, ["align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9"]).exit_code == 1
    env = cli_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    proc = subprocess.run(
        [sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(out), *KEYWORD, "-q", "--shard-size", "9",
         "--resume", "--executor", "dask", "--address", "tcp://127.0.0.1:9"], env=env, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert outputs(out) == outputs(reference)
