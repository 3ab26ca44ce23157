"""SIGKILL at chosen points of `anchorprep align|vad`, then `--resume`: byte-identical output.

Fault injection needs no product hooks: the CLI runs in a subprocess through a small wrapper
(written to a temporary folder) that replaces one function — ``pyarrow.parquet.write_table``,
``os.fsync``, ``os.replace``, the runner's ``write_json_atomic`` / ``write_text_atomic``, a
job's ``process`` — by one that SIGKILLs its own process at the N-th call: before the original
runs, after it, or after truncating the file it wrote (a torn temporary). After every kill:

* every visible ``data/anchors-*.parquet`` is a finished shard, byte-identical to the uninterrupted
  run's (a temporary never shows up as a shard);
* ``--resume`` then exits as the uninterrupted run did and leaves shards, manifest.json,
  errors.jsonl and report.json byte-identical to it.

The local pool's handling of dying workers is tested the same way, with a job subclass (in a
generated, importable helper module) whose ``process`` SIGKILLs the worker on one item.

CI runs a handful of kill points; the full matrix (>= 10 points each for align and vad, double
crashes, random-time kills) is marked slow: ``pytest -m slow tests/test_crash_resume.py``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import badinputs
from anchorprep.cli import app
from anchorprep.synthetic import write_synthetic_alignments

runner = CliRunner()
SHARD = re.compile(r"^anchors-\d{5}-of-\d{5}\.parquet$")
TEMP = re.compile(r"^\.(anchors-\d{5}-of-\d{5}\.parquet|manifest\.json|errors\.jsonl|report\.json|\d{5}\.json|run\.json)\.[0-9a-f]+\.tmp$")
OUTPUTS = ("manifest.json", "errors.jsonl", "report.json")

WRAPPER = textwrap.dedent('''
    """Run the anchorprep CLI with one function replaced by a SIGKILL at its N-th call."""
    import importlib, json, os, signal, sys

    spec = json.loads(os.environ["ANCHORPREP_CRASH"])

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    module, _, attr = spec["target"].partition(":")
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    def patched(*args, **kwargs):
        calls[0] += 1
        hit = calls[0] == spec["n"]
        if hit and spec["when"] == "before":
            die()
        result = original(*args, **kwargs)
        if hit and spec["when"] == "torn":  # the written file loses its second half, then the crash
            written = args[spec.get("path_arg", 1)]
            with open(written, "r+b") as handle:
                handle.truncate(os.path.getsize(written) // 2)
            die()
        if hit and spec["when"] == "after":
            die()
        return result

    setattr(owner, name, patched)
    from anchorprep.cli import main
    sys.argv = ["anchorprep", *spec["argv"]]
    main()
''')

HELPER = textwrap.dedent('''
    """Job subclasses whose process() SIGKILLs the worker on one item (importable by pool workers)."""
    import os, signal, time
    from dataclasses import dataclass
    from anchorprep.pipeline.align import AlignJob

    def maybe_die(item):
        if item.get("utt_id") == os.environ.get("ANCHORPREP_HANG_ON"):
            time.sleep(3600)
        if item.get("utt_id") != os.environ.get("ANCHORPREP_DIE_ON"):
            return
        once = os.environ.get("ANCHORPREP_DIE_ONCE")
        if once:
            if os.path.exists(once):
                return
            open(once, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)

    @dataclass(frozen=True)
    class DyingAlignJob(AlignJob):
        def process(self, item):
            maybe_die(item)
            return super().process(item)
''')


@dataclass(frozen=True)
class Corpus:
    command: str
    manifest: Path
    args: tuple[str, ...]
    reference: Path
    shards: int
    exit_code: int

    def argv(self, out: Path, *extra: str) -> list[str]:
        return [self.command, str(self.manifest), "-o", str(out), *self.args, *extra]


@dataclass(frozen=True)
class Kill:
    """Replace ``target`` ("module:attr") by a SIGKILL at its ``n``-th call, ``when`` before/after/torn."""

    target: str
    n: int
    when: str
    what: str
    visible: tuple[str, ...] | None = None  # the final outputs that must exist after the kill

    def __str__(self) -> str:
        return f"{self.what} [{self.target} #{self.n} {self.when}]"


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("data/anchors-*.parquet"))} | {
        name: (out / name).read_bytes() for name in OUTPUTS if (out / name).exists()}


def _reference(tmp: Path, command: str, manifest: Path, args: tuple[str, ...]) -> Corpus:
    out = tmp / f"reference-{command}"
    result = runner.invoke(app, [command, str(manifest), "-o", str(out), *args])
    assert result.exit_code in (0, 1), result.output
    shards = len(list(out.glob("data/anchors-*.parquet")))
    return Corpus(command, manifest, args, out, shards, result.exit_code)


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tools")
    (folder / "crashwrap.py").write_text(WRAPPER)
    (folder / "dyinghelper.py").write_text(HELPER)
    return folder


@pytest.fixture(scope="module")
def align_corpus(tmp_path_factory) -> Corpus:
    """60 synthetic TextGrids plus three bad items, 7 shards of 9: errors.jsonl is not empty."""
    tmp = tmp_path_factory.mktemp("align")
    write_synthetic_alignments(tmp, n=60, seed=9)
    lines = (tmp / "manifest.csv").read_text().splitlines()
    (tmp / "garbage.TextGrid").write_bytes(b"\x00\x01garbage" * 20)
    lines[5:5] = [f"missing,{tmp / 'nope.TextGrid'},10.0,spk0"]
    lines[30:30] = [f"garbage,{tmp / 'garbage.TextGrid'},10.0,spk1"]
    lines[50:50] = [f"utt0000003,grids/utt0000003.TextGrid,10.0,spk3"]  # a duplicate id
    manifest = tmp / "mixed.csv"
    manifest.write_text("\n".join(lines) + "\n")
    corpus = _reference(tmp, "align", manifest, ("-k", "hey computer", "-q", "--shard-size", "9"))
    assert corpus.shards == 7 and corpus.exit_code == 1
    return corpus


@pytest.fixture(scope="module")
def vad_corpus(tmp_path_factory) -> Corpus:
    """22 synthetic WAVs plus two bad items, 6 shards of 4."""
    tmp = tmp_path_factory.mktemp("vad")
    items = badinputs.good_vad_items(tmp, n=22)
    (tmp / "empty.wav").write_bytes(b"")
    items[3:3] = [{"utt_id": "empty", "audio_path": str(tmp / "empty.wav")}]
    items[17:17] = [{"utt_id": "missing", "audio_path": str(tmp / "missing.wav")}]
    manifest = badinputs.write_manifest(tmp / "mixed.csv", items, ("utt_id", "audio_path", "speaker"))
    corpus = _reference(tmp, "vad", manifest, ("-q", "--shard-size", "4"))
    assert corpus.shards == 6 and corpus.exit_code == 1
    return corpus


def crash_run(tools: Path, corpus: Corpus, out: Path, kill: Kill, *extra: str) -> None:
    env = {**os.environ, "ANCHORPREP_CRASH": json.dumps(
        {"target": kill.target, "n": kill.n, "when": kill.when, "argv": corpus.argv(out, *extra)})}
    proc = subprocess.run([sys.executable, str(tools / "crashwrap.py")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"{kill}: not killed (exit {proc.returncode})\n{proc.stderr[-2000:]}"


def assert_partial_state_is_sound(corpus: Corpus, out: Path, where: str) -> None:
    """After a kill: visible shards are finished and final; leftovers are dot-named temporaries."""
    reference = snapshot(corpus.reference)
    for shard in out.glob("data/anchors-*.parquet"):
        assert SHARD.match(shard.name), f"{where}: {shard.name} looks like a temporary"
        name = shard.relative_to(out).as_posix()
        assert shard.read_bytes() == reference[name], f"{where}: {name} differs from the final shard"
        pq.read_metadata(shard)
    for path in out.rglob("*"):
        if path.is_file() and path.name.startswith("."):
            assert TEMP.match(path.name), f"{where}: unexpected file {path}"
    assert not (out / "manifest.json").exists() or where.endswith("manifest written"), where


def resume_and_compare(corpus: Corpus, out: Path, where: str) -> None:
    result = runner.invoke(app, corpus.argv(out, "--resume"))
    assert result.exit_code == corpus.exit_code, f"{where}: resume exited {result.exit_code}\n{result.output}"
    got, want = snapshot(out), snapshot(corpus.reference)
    assert sorted(got) == sorted(want), where
    for name in want:
        assert got[name] == want[name], f"{where}: {name} differs after --resume"
    visible = sorted(p.relative_to(out).as_posix() for p in [*out.iterdir(), *(out / "data").iterdir()]
                     if p.is_file() and not p.name.startswith("."))
    assert visible == sorted(want), where


def kill_then_resume(tools: Path, corpus: Corpus, tmp_path: Path, kill: Kill) -> None:
    out = tmp_path / "out"
    crash_run(tools, corpus, out, kill)
    assert_partial_state_is_sound(corpus, out, str(kill))
    if kill.visible is not None:  # the kill landed where it says (all shards done, some outputs)
        assert len(list(out.glob("data/anchors-*.parquet"))) == corpus.shards
        assert tuple(name for name in OUTPUTS if (out / name).exists()) == tuple(
            name for name in OUTPUTS if name in kill.visible), str(kill)
    resume_and_compare(corpus, out, str(kill))


def kill_points(job_process: str, shards: int) -> list[Kill]:
    """>= 10 distinct points, from start-up to the last output file. run.json is written by the
    run folder's claim (`anchorprep.shards.run`); calls of the runner's write_json_atomic:
    1..shards = done markers, then report.json, manifest.json; of os.replace: 1 = run.json,
    2 + 2i = shard i, 3 + 2i = its marker, then errors.jsonl, report.json, manifest.json
    (2 * shards + 4)."""
    runner_mod = "anchorprep.pipeline.runner"
    return [
        Kill("anchorprep.shards.run:write_json_atomic", 1, "before",
             "start-up: state folder made and locked, run.json not written"),
        Kill(job_process, 2, "before", "inside the first shard, after one item"),
        Kill(job_process, 12, "after", "inside a later shard, between items"),
        Kill("pyarrow.parquet:write_table", 2, "before", "shard 2: temporary created, nothing written"),
        Kill("pyarrow.parquet:write_table", 3, "torn", "mid-shard-write: shard 3's temporary half written"),
        Kill("pyarrow.parquet:write_table", 1, "after", "shard 1 written to its temporary, not synced"),
        Kill("os:fsync", 5, "before", "before an fsync of a written temporary"),
        Kill("os:replace", 4, "before", "shard 2's temporary synced, before its rename"),
        Kill("os:replace", 6, "after", "shard 3 renamed into place, before the directory fsync and done marker"),
        Kill(f"{runner_mod}:write_json_atomic", 2, "before", "shard file final, its done marker not written"),
        Kill(f"{runner_mod}:write_json_atomic", 3, "after", "done marker written, before the next shard"),
        Kill(f"{runner_mod}:write_parquet_atomic", shards, "before", "before the last shard"),
        Kill(f"{runner_mod}:write_text_atomic", 1, "before", "all shards done, before errors.jsonl", ()),
        Kill(f"{runner_mod}:write_text_atomic", 1, "after", "errors.jsonl written, before report.json",
             ("errors.jsonl",)),
        Kill(f"{runner_mod}:write_json_atomic", shards + 2, "before", "report.json written, before manifest.json",
             ("errors.jsonl", "report.json")),
        Kill("os:replace", 2 * shards + 4, "before", "manifest.json synced, before its rename",
             ("errors.jsonl", "report.json")),
    ]


ALIGN_POINTS = kill_points("anchorprep.pipeline.align:AlignJob.process", 7)
VAD_POINTS = kill_points("anchorprep.pipeline.vad:VadJob.process", 6)
CI_ALIGN = {4, 8, 13}  # torn temporary, renamed-without-marker, between errors.jsonl and report.json
CI_VAD = {4, 9}


def _params(points: list[Kill], ci: set[int]):
    return [pytest.param(k, id=f"{i:02d}-{k.what[:40]}", marks=() if i in ci else pytest.mark.slow)
            for i, k in enumerate(points)]


def test_the_matrix_has_ten_distinct_points_per_pipeline():
    for points in (ALIGN_POINTS, VAD_POINTS):
        assert len({(k.target, k.n, k.when) for k in points}) == len(points) >= 10


@pytest.mark.parametrize("kill", _params(ALIGN_POINTS, CI_ALIGN))
def test_align_kill_and_resume(tools, align_corpus, tmp_path, kill):
    kill_then_resume(tools, align_corpus, tmp_path, kill)


@pytest.mark.parametrize("kill", _params(VAD_POINTS, CI_VAD))
def test_vad_kill_and_resume(tools, vad_corpus, tmp_path, kill):
    kill_then_resume(tools, vad_corpus, tmp_path, kill)


RESUME_KILLS = [  # points the --resume run itself reaches (its call counts start afresh)
    (4, Kill("pyarrow.parquet:write_table", 2, "torn", "resume: its second shard write torn")),
    (9, Kill("anchorprep.pipeline.align:AlignJob.process", 5, "before", "resume: inside its first shard")),
    (13, Kill("anchorprep.pipeline.runner:write_json_atomic", 1, "after", "resume: report.json written, not manifest")),
]


@pytest.mark.slow
@pytest.mark.parametrize("first,second", RESUME_KILLS, ids=[str(k) for _, k in RESUME_KILLS])
def test_align_killed_again_while_resuming(tools, align_corpus, tmp_path, first, second):
    """A crash, a crash of the --resume run, then a clean --resume."""
    out = tmp_path / "out"
    crash_run(tools, align_corpus, out, ALIGN_POINTS[first])
    assert_partial_state_is_sound(align_corpus, out, "first crash")
    crash_run(tools, align_corpus, out, second, "--resume")
    assert_partial_state_is_sound(align_corpus, out, "second crash")
    resume_and_compare(align_corpus, out, f"{ALIGN_POINTS[first]} then {second}")


def random_kill(corpus: Corpus, tmp_path: Path, seed: int, workers: int) -> None:
    """SIGKILL the CLI (and its pool: a process group we started) at a random moment: after a
    random number of finished shards plus a random few milliseconds. Meanwhile the folder is
    watched: any shard that ever becomes visible is already the final file."""
    rng = random.Random(seed)
    out = tmp_path / f"out-{seed}"
    reference = snapshot(corpus.reference)
    after_shards, extra_s = rng.randrange(0, corpus.shards - 1), rng.uniform(0.0, 0.03)
    cmd = [sys.executable, "-m", "anchorprep", *corpus.argv(out, "-j", str(workers))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done = out / ".anchorprep" / "done"
    seen: set[str] = set()
    kill_at = None
    try:
        while proc.poll() is None and (kill_at is None or time.monotonic() < kill_at):
            for shard in out.glob("data/anchors-*.parquet"):
                name = shard.relative_to(out).as_posix()
                assert SHARD.match(shard.name) and name in reference, name
                if name not in seen:
                    assert shard.read_bytes() == reference[name], f"{name} visible before it was final"
                    seen.add(name)
            if kill_at is None and done.is_dir() and len(list(done.iterdir())) >= after_shards:
                kill_at = time.monotonic() + extra_s
            time.sleep(0.001)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and the pool workers it started
        except ProcessLookupError:
            pass
        proc.wait()
    where = f"random kill seed {seed} (after {after_shards} shards + {extra_s * 1000:.0f} ms)"
    assert_partial_state_is_sound(corpus, out, where)
    resume_and_compare(corpus, out, where)


@pytest.fixture(scope="module")
def align_big(tmp_path_factory) -> Corpus:
    tmp = tmp_path_factory.mktemp("align_big")
    manifest = write_synthetic_alignments(tmp, n=400, seed=4)
    return _reference(tmp, "align", manifest, ("-k", "hey computer", "-q", "--shard-size", "10"))


@pytest.fixture(scope="module")
def vad_big(tmp_path_factory) -> Corpus:
    tmp = tmp_path_factory.mktemp("vad_big")
    manifest = badinputs.write_manifest(tmp / "m.csv", badinputs.good_vad_items(tmp, n=160), ("utt_id", "audio_path"))
    return _reference(tmp, "vad", manifest, ("-q", "--shard-size", "8"))


def test_align_random_time_kill_with_a_pool(align_big, tmp_path):
    random_kill(align_big, tmp_path, seed=1, workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 10))
def test_random_time_kills(align_big, vad_big, tmp_path, seed):
    random_kill(align_big if seed % 2 else vad_big, tmp_path, seed, workers=1 + seed % 2)


# ---------------------------------------------------------------------------------------------
# The local pool when a worker dies


def dying_run(tools: Path, corpus: Corpus, out: Path, die_on: str, once: Path | None = None,
              workers: int = 2, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    script = ("import sys, dyinghelper, anchorprep.pipeline.api as api; api.AlignJob = dyinghelper.DyingAlignJob; "
              "from anchorprep.cli import main; sys.argv = ['anchorprep', *sys.argv[1:]]; main()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tools), os.environ.get("PYTHONPATH", "")]),
           "ANCHORPREP_DIE_ON": die_on}
    if once is not None:
        env["ANCHORPREP_DIE_ONCE"] = str(once)
    return subprocess.run([sys.executable, "-c", script, *corpus.argv(out, "-j", str(workers), *extra)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_worker_that_always_dies_fails_only_its_shard(tools, align_corpus, tmp_path):
    out = tmp_path / "out"
    proc = dying_run(tools, align_corpus, out, die_on="utt0000020")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    reference, got = snapshot(align_corpus.reference), snapshot(out)
    rows = {name: pq.read_table(out / name).column("utt_id").to_pylist() for name in got if name.endswith(".parquet")}
    ref_rows = {name: pq.read_table(align_corpus.reference / name).column("utt_id").to_pylist()
                for name in reference if name.endswith(".parquet")}
    [culprit] = [name for name, ids in ref_rows.items() if "utt0000020" in ids]
    for name in ref_rows:
        if name != culprit:
            assert got[name] == reference[name], name  # every other shard intact, byte for byte
    assert rows[culprit] == []
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    worker = [e for e in errors if e["stage"] == "worker"]
    ref_errors = [json.loads(line) for line in (align_corpus.reference / "errors.jsonl").read_text().splitlines()]
    ref_culprit_errors = [e for e in ref_errors if e["shard"] == culprit]
    # Every item of the culprit's shard is one "worker" line (items that failed anyway included).
    assert len(worker) == len(ref_rows[culprit]) + len(ref_culprit_errors) == 9
    assert "utt0000020" in {e["utt_id"] for e in worker}
    assert all("worker process died 2 time(s)" in e["reason"] for e in worker)
    assert [e for e in errors if e["stage"] != "worker"] == [e for e in ref_errors if e["shard"] != culprit]
    report = json.loads((out / "report.json").read_text())
    assert report["in"] == report["written"] + report["failed"]
    assert report["failed_by_stage"]["worker"] == 9


def test_a_worker_that_dies_once_is_retried_to_identical_output(tools, align_corpus, tmp_path):
    out = tmp_path / "out"
    proc = dying_run(tools, align_corpus, out, die_on="utt0000033", once=tmp_path / "died-once")
    assert (tmp_path / "died-once").exists(), "the worker never died"
    assert proc.returncode == align_corpus.exit_code, proc.stderr
    assert snapshot(out) == snapshot(align_corpus.reference)


@pytest.mark.slow
def test_retries_zero(tools, align_corpus, tmp_path):
    """--retries 0: a shard whose worker died in the pool still gets one isolated run (that is
    how the culprit is told from the shards that were merely in flight), but no retry."""
    once = dying_run(tools, align_corpus, tmp_path / "once", die_on="utt0000033", once=tmp_path / "died",
                     extra=("--retries", "0"))
    assert (tmp_path / "died").exists() and once.returncode == align_corpus.exit_code, once.stderr
    assert snapshot(tmp_path / "once") == snapshot(align_corpus.reference)
    always = dying_run(tools, align_corpus, tmp_path / "always", die_on="utt0000033", extra=("--retries", "0"))
    assert always.returncode == 1, always.stderr
    errors = [json.loads(line) for line in (tmp_path / "always" / "errors.jsonl").read_text().splitlines()]
    worker = [e for e in errors if e["stage"] == "worker"]
    assert len(worker) == 9 and all("died 1 time(s)" in e["reason"] for e in worker)


def test_pool_workers_exit_when_the_driver_is_killed(tools, align_corpus, tmp_path):
    """A SIGKILLed driver (e.g. by the OOM killer) must not leave its pool workers running.

    One worker hangs on an item (so the pool is certainly alive), the other idles; the driver
    is killed; both workers must go away on their own."""
    script = ("import sys, dyinghelper, anchorprep.pipeline.api as api; api.AlignJob = dyinghelper.DyingAlignJob; "
              "from anchorprep.cli import main; sys.argv = ['anchorprep', *sys.argv[1:]]; main()")
    env = {**os.environ, "PYTHONPATH": str(tools), "ANCHORPREP_HANG_ON": "utt0000004"}
    proc = subprocess.Popen([sys.executable, "-c", script, *align_corpus.argv(tmp_path / "out", "-j", "2")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        workers: list[int] = []
        done = tmp_path / "out" / ".anchorprep" / "done"
        deadline = time.monotonic() + 120
        # Wait until the pool is up and the other shards are finished (the hanging one never is).
        while time.monotonic() < deadline and proc.poll() is None and not (
                len(workers) >= 2 and done.is_dir() and len(list(done.iterdir())) >= align_corpus.shards - 1):
            workers = _children(proc.pid)
            time.sleep(0.02)
        assert len(workers) >= 2 and proc.poll() is None, "the pool never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers), "orphaned pool workers kept running"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    resume_and_compare(align_corpus, tmp_path / "out", "driver killed while a worker hung")


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state and "State:\tX" not in state
