"""The batch runner through `anchorprep align`: determinism, resume, array jobs, errors, exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.synthetic import write_synthetic_alignments

runner = CliRunner()
KEYWORD = ["-k", "hey computer"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_synthetic_alignments(tmp_path_factory.mktemp("corpus"), n=120, seed=3)


def align(manifest: Path, out: Path, *extra: str):
    return runner.invoke(app, ["align", str(manifest), "-o", str(out), *KEYWORD, "-q", *extra])


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("data/anchors-*.parquet"))}


def test_workers_and_array_split_give_identical_bytes(corpus, tmp_path):
    one = align(corpus, tmp_path / "j1", "--shard-size", "25")
    assert one.exit_code == 0, one.output
    two = align(corpus, tmp_path / "j2", "--shard-size", "25", "-j", "2")
    assert two.exit_code == 0, two.output
    for index in range(3):
        split = align(corpus, tmp_path / "split", "--shard-size", "25", "--shard-index", str(index), "--num-shards", "3")
        assert split.exit_code == 0, split.output
    reference = shard_bytes(tmp_path / "j1")
    assert len(reference) == 5
    assert shard_bytes(tmp_path / "j2") == reference
    assert shard_bytes(tmp_path / "split") == reference
    for name in ("manifest.json", "report.json", "errors.jsonl"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "j1" / name).read_bytes()


def test_shards_hold_every_item_and_explain_themselves(corpus, tmp_path):
    assert align(corpus, tmp_path / "out", "--shard-size", "50").exit_code == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["rows"] for s in manifest["shards"]] == [50, 50, 20]
    table = pq.read_table(tmp_path / "out" / manifest["shards"][0]["file"])
    settings = json.loads(table.schema.metadata[b"anchorprep"])
    assert settings == manifest["settings"]
    assert settings["label_map"] == {"background": 0, "hey computer": 1}
    rows = table.to_pylist()
    for row in rows:
        assert len(row["distance"]) == len(row["target"]) == row["num_frames"] == 998  # 10 s at 16 kHz
    positives = [r for r in rows if r["anchor_frames"]]
    assert len(positives) == 25  # every other utterance carries the phrase
    assert all(r["anchor_sources"] == ["alignment"] for r in positives)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["in"], report["written"], report["failed"]) == (120, 120, 0)
    assert report["positives"] == 60 and report["negatives"] == 60


def test_resume_after_sigkill_is_byte_identical(corpus, tmp_path):
    big = write_synthetic_alignments(tmp_path / "big", n=600, seed=5)
    reference = tmp_path / "reference"
    assert align(big, reference, "--shard-size", "10").exit_code == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "anchorprep", "align", str(big), "-o", str(out), *KEYWORD, "-q", "--shard-size", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / ".anchorprep" / "done"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not done.is_dir() or len(list(done.iterdir())) < 5):
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed"
    assert not [p for p in out.glob("data/anchors-*.parquet") if p.name.startswith(".")]
    resumed = align(big, out, "--shard-size", "10", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert shard_bytes(out) == shard_bytes(reference)
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


def test_resume_with_other_settings_is_refused(corpus, tmp_path):
    assert align(corpus, tmp_path / "out", "--shard-size", "50").exit_code == 0
    refused = align(corpus, tmp_path / "out", "--shard-size", "50", "--resume", "--positive-window", "0:10")
    assert refused.exit_code == 2
    assert "different settings" in refused.output and "targets" in refused.output
    replaced = align(corpus, tmp_path / "out", "--shard-size", "50", "--positive-window", "0:10", "--overwrite")
    assert replaced.exit_code == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["settings"]["targets"]["positive_window"] == [0, 10]


def test_dry_run_prints_the_plan_and_writes_nothing(corpus, tmp_path):
    result = align(corpus, tmp_path / "out", "--shard-size", "50", "--dry-run")
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["items"] == 120 and plan["shards"] == 3 and plan["to_run"] == 3
    assert not (tmp_path / "out").exists()


def test_bad_items_become_error_lines_and_exit_1(corpus, tmp_path):
    grids = corpus.parent / "grids"
    (tmp_path / "garbage.TextGrid").write_bytes(b"\x00\xff\x13garbage" * 10)
    lines = [line.replace("grids/", f"{grids}/") for line in corpus.read_text().splitlines()]
    lines += [
        f"missing,{tmp_path / 'nope.TextGrid'},10.0,x",
        f"garbage,{tmp_path / 'garbage.TextGrid'},10.0,x",
        f"utt0000001,{grids / 'utt0000001.TextGrid'},10.0,x",  # duplicate id
        f"badnum,{grids / 'utt0000002.TextGrid'},ten,x",
        f",{grids / 'utt0000003.TextGrid'},10.0,x",
    ]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    result = align(manifest, tmp_path / "out")
    assert result.exit_code == 1
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["utt_id"], e["stage"]) for e in errors] == [
        ("missing", "read_alignment"), ("garbage", "read_alignment"), ("utt0000001", "manifest"),
        ("badnum", "read_audio"), ("", "manifest"),
    ]
    assert "duplicate utt_id" in errors[2]["reason"] and "first used at input row 1" in errors[2]["reason"]
    assert "duration_s" in errors[3]["reason"]
    assert all(e["reason"] and "path" in e for e in errors)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["in"] == 125 and report["written"] == 120 and report["failed"] == 5


def test_max_errors_stops_early(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,alignment_path\n" + "".join(f"u{i},missing{i}.TextGrid\n" for i in range(30)))
    result = align(manifest, tmp_path / "out", "--shard-size", "5", "--max-errors", "3")
    assert result.exit_code == 1
    assert len(list((tmp_path / "out").glob("data/anchors-*.parquet"))) == 1
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_usage_errors_exit_2(corpus, tmp_path):
    assert align(tmp_path / "nope.csv", tmp_path / "o").exit_code == 2
    assert align(corpus, tmp_path / "o", "--shard-index", "1").exit_code == 2
    assert align(corpus, tmp_path / "o", "--edge", "middle").exit_code == 2
    assert runner.invoke(app, ["align", str(corpus), "-o", str(tmp_path / "o")]).exit_code == 2  # no keyword
    manifest = tmp_path / "latin1.csv"
    manifest.write_bytes("utt_id,alignment_path\nd\xe9j\xe0,x.TextGrid\n".encode("latin-1"))
    result = align(manifest, tmp_path / "o")
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_cli_as_a_subprocess(corpus, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "anchorprep", "align", str(corpus), "-o", str(tmp_path / "out"), *KEYWORD],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "in / written / failed" in proc.stderr and "120 / 120 / 0" in proc.stderr


# ------------------------------------------------------------------------------------------------
# One folder, one run (issue 14: concurrent runs, broken run state, unwritable folders)


def align_process(manifest: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "anchorprep", "align", str(manifest), "-o", str(out), *KEYWORD, "-q", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stored_edge(out: Path) -> str:
    return json.loads((out / ".anchorprep" / "run.json").read_text())["align"]["edge"]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "out"
    assert align(corpus, out, "--shard-size", "25").exit_code == 0
    return out


def test_two_runs_with_other_settings_started_together_one_is_refused(corpus, tmp_path):
    """Before the lock, both were accepted in 8 of 30 tries and the folder mixed their settings."""
    from anchorprep.inspect.validate import validate_run

    for attempt in range(4):
        out = tmp_path / f"out{attempt}"
        procs = {edge: align_process(corpus, out, "--shard-size", "25", "--edge", edge) for edge in ("end", "start")}
        codes = {edge: proc.wait() for edge, proc in procs.items()}
        stderr = {edge: proc.stderr.read() for edge, proc in procs.items()}
        assert sorted(codes.values()) == [0, 2], (codes, stderr)
        winner = next(edge for edge, code in codes.items() if code == 0)
        loser = next(edge for edge, code in codes.items() if code == 2)
        assert "different settings" in stderr[loser] or "another anchorprep run" in stderr[loser], stderr[loser]
        assert "Traceback" not in stderr[loser]
        assert stored_edge(out) == winner
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["settings"]["align"]["edge"] == winner
        assert validate_run(out).ok


def test_array_tasks_started_together_cooperate(corpus, reference, tmp_path):
    out = tmp_path / "out"
    procs = [align_process(corpus, out, "--shard-size", "25", "--shard-index", str(i), "--num-shards", "3")
             for i in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    assert shard_bytes(out) == shard_bytes(reference)
    for name in ("manifest.json", "report.json", "errors.jsonl"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_a_killed_run_leaves_no_stuck_lock(tmp_path):
    big = write_synthetic_alignments(tmp_path / "big", n=600, seed=5)
    out = tmp_path / "out"
    proc = align_process(big, out, "--shard-size", "10")
    done = out / ".anchorprep" / "done"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not done.is_dir() or len(list(done.iterdir())) < 2):
        time.sleep(0.002)
    busy = align(big, out, "--shard-size", "10", "--edge", "start", "--overwrite")
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if alive:  # the holder was still running: even --overwrite must not clear under it
        assert busy.exit_code == 2 and "another anchorprep run is writing" in busy.output, busy.output
    replaced = align(big, out, "--shard-size", "10", "--edge", "start", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert stored_edge(out) == "start"


def test_broken_run_state_is_one_line_and_overwrite_recovers(corpus, reference, tmp_path):
    out = tmp_path / "out"
    assert align(corpus, out, "--shard-size", "25").exit_code == 0
    for garbage in ("", "[]", "{"):
        (out / ".anchorprep" / "done" / "00001.json").write_text(garbage)
        resumed = align(corpus, out, "--shard-size", "25", "--resume")
        assert resumed.exit_code == 0, resumed.output
        assert shard_bytes(out) == shard_bytes(reference)
        assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()
    (out / ".anchorprep" / "run.json").write_text("{")
    refused = align(corpus, out, "--shard-size", "25", "--resume")
    assert refused.exit_code == 2 and "unreadable" in refused.output and "--overwrite" in refused.output
    assert "Traceback" not in refused.output
    recovered = align(corpus, out, "--shard-size", "25", "--overwrite")
    assert recovered.exit_code == 0, recovered.output
    assert shard_bytes(out) == shard_bytes(reference)
    (out / ".anchorprep" / "done" / "00000.json").write_text("[]")
    assemble = runner.invoke(app, ["assemble", str(out)])
    assert assemble.exit_code == 2 and "unreadable shard summary" in assemble.output


def test_symlinked_run_state_is_refused(corpus, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".anchorprep").symlink_to(elsewhere)
    for extra in ((), ("--overwrite",)):
        result = align(corpus, out, *extra)
        assert result.exit_code == 2 and "symlink" in result.output, result.output
    assert not list(elsewhere.iterdir())


def test_overwrite_never_ignores_a_failed_clear(corpus, tmp_path):
    out = tmp_path / "out"
    assert align(corpus, out).exit_code == 0
    (out / "anchors-00007-of-00009.parquet").mkdir()  # cannot be unlinked like a shard file
    result = align(corpus, out, "--edge", "start", "--overwrite")
    assert result.exit_code == 2 and "anchors-00007-of-00009.parquet" in result.output, result.output
    assert stored_edge(out) == "end"


@pytest.mark.parametrize("case", ["file", "under_file", "proc"])
def test_unusable_output_folder_is_one_line(corpus, tmp_path, case):
    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "under_file": tmp_path / "afile" / "out", "proc": Path("/proc/anchorprep/out")}[case]
    result = align(corpus, out)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "--out" in result.output


def test_read_only_output_folder_is_one_line(corpus, tmp_path, monkeypatch):
    """Simulated in-process (the tests run as root, for whom chmod does not make a folder read-only):
    creating the folder raises EROFS."""
    import errno

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = align(corpus, tmp_path / "out")
    assert result.exit_code == 2 and "Read-only file system" in result.output, result.output
    assert result.output.count("\n") == 1


def test_disk_full_is_one_line_and_resume_is_byte_identical(corpus, reference, tmp_path, monkeypatch):
    """ENOSPC is simulated in-process: the shard writer raises it from the third shard on."""
    import errno

    import anchorprep.pipeline.runner as runner_module

    real = runner_module.write_parquet_atomic
    written = []

    def filling_up(path, table):
        if len(written) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real(path, table)

    out = tmp_path / "out"
    monkeypatch.setattr(runner_module, "write_parquet_atomic", filling_up)
    full = align(corpus, out, "--shard-size", "25")
    assert full.exit_code == 2 and "no space left" in full.output and "--resume" in full.output, full.output
    assert full.output.count("\n") == 1
    monkeypatch.setattr(runner_module, "write_parquet_atomic", real)
    resumed = align(corpus, out, "--shard-size", "25", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert shard_bytes(out) == shard_bytes(reference)
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


def test_workers_are_capped_at_the_shard_count(tmp_path):
    """-j 10000 used to fork 10000 pool workers up front (not finished in 120 s)."""
    small = write_synthetic_alignments(tmp_path / "small", n=50, seed=2)
    plan = json.loads(align(small, tmp_path / "out", "-j", "10000", "--shard-size", "1", "--dry-run").stdout)
    assert (plan["workers"], plan["workers_requested"]) == (50, 10000)
    result = runner.invoke(app, ["align", str(small), "-o", str(tmp_path / "out"), *KEYWORD, "-j", "10000",
                                 "--shard-size", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "capped from 10000" in result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["written"] == 50


def test_resume_after_an_input_file_was_edited_reruns_its_shard(tmp_path):
    """The inputs fingerprint covers the manifest only; an edited TextGrid used to keep its stale row."""
    import shutil

    corpus = write_synthetic_alignments(tmp_path / "c", n=40, seed=4)
    out = tmp_path / "out"
    assert align(corpus, out, "--shard-size", "10").exit_code == 0
    grids = corpus.parent / "grids"
    # utt0000001 carries the phrase, utt0000002 does not: swap the file's content (a new size/mtime).
    shutil.copyfile(grids / "utt0000002.TextGrid", grids / "utt0000001.TextGrid")
    resumed = align(corpus, out, "--shard-size", "10", "--resume")
    assert resumed.exit_code == 0, resumed.output
    fresh = tmp_path / "fresh"
    assert align(corpus, fresh, "--shard-size", "10").exit_code == 0
    assert shard_bytes(out) == shard_bytes(fresh)
    assert (out / "manifest.json").read_bytes() == (fresh / "manifest.json").read_bytes()


def test_merge_of_a_run_with_itself_is_refused(corpus, reference, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    for runs in ([reference, reference], [reference, copy], [reference, tmp_path / ".." / tmp_path.name / "copy"]):
        result = runner.invoke(app, ["merge", *map(str, runs), "-o", str(tmp_path / "merged"), "-q"])
        assert result.exit_code == 2 and "same run" in result.output, result.output
    assert not (tmp_path / "merged" / "manifest.json").exists()


def test_a_shard_whose_submit_finds_the_pool_broken_is_still_run(tmp_path, monkeypatch):
    """A worker can die between `wait` and the next `submit`: `submit` then raises
    BrokenProcessPool, and the shard it was given must be run later, not dropped."""
    from concurrent.futures.process import BrokenProcessPool

    from anchorprep.pipeline import runner as runner_module

    real_pool = runner_module._pool
    broken_once = []

    class BreaksOnFirstSubmit:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, *args, **kwargs):
            if not broken_once:
                broken_once.append(True)
                raise BrokenProcessPool("a worker died")
            return self.pool.submit(*args, **kwargs)

    from contextlib import contextmanager

    @contextmanager
    def pool(workers):
        with real_pool(workers) as inner:
            yield BreaksOnFirstSubmit(inner)

    monkeypatch.setattr(runner_module, "_pool", pool)
    manifest = write_synthetic_alignments(tmp_path / "corpus", n=12)
    import anchorprep

    result = anchorprep.align(manifest, tmp_path / "out", keyword="hey computer", shard_size=3, workers=2)
    assert broken_once and result.complete and result.exit_code == 0
    assert result.report.written == 12 and len(list((tmp_path / "out" / "data").glob("anchors-*.parquet"))) == 4


def test_duplicate_rows_name_the_first_row_of_every_repeated_id():
    import random

    import pyarrow as pa

    from anchorprep.pipeline.runner import duplicate_rows, shard_records

    def expected(ids):
        first, repeats = {}, {}
        for row, utt in enumerate(ids):
            if utt in first:
                repeats[row] = first[utt]
            else:
                first[utt] = row
        return repeats

    rng = random.Random(0)
    cases = [[], ["a"], ["a", "b"], ["", "", "y"], ["a", "b", "a", "c", "b", "a"]]
    cases += [[rng.choice("abcdef") * rng.randint(0, 2) for _ in range(rng.randint(0, 40))] for _ in range(200)]
    for ids in cases:
        for chunks in ([ids], [ids[: len(ids) // 2], ids[len(ids) // 2:]]):  # one chunk or two
            items = pa.table({"utt_id": pa.chunked_array(chunks, pa.string())})
            assert duplicate_rows(items) == expected(ids), ids
    items = pa.table({"utt_id": ["a", "b", "a"], "x": ["1", "2", "3"]})
    assert shard_records(items, 1, 3, duplicate_rows(items)) == [
        {"utt_id": "b", "x": "2", "_row": 1, "_duplicate_of": ""},
        {"utt_id": "a", "x": "3", "_row": 2, "_duplicate_of": "0"},
    ]


AWKWARD_CELLS = ["", "plain", 'say "hi"', "a,b", "line\nbreak", "cr\rlf\r\n", " padded ", '"', ",", "\t",
                 "café 日本 🎉", "\u2028", "NaN", "0", "-", "''"]


def pandas_fingerprint(frame) -> tuple[int, str]:
    """The fingerprint as anchorprep computed it while item tables were DataFrames (run.json)."""
    import hashlib

    digest = hashlib.sha256(json.dumps(list(frame.columns)).encode())
    for start in range(0, len(frame), 10000):
        digest.update(frame.iloc[start:start + 10000].to_csv(index=False, header=False).encode())
    return len(frame), digest.hexdigest()


@pytest.mark.parametrize("shape", ["one column", "three columns", "no rows", "many rows"])
def test_inputs_fingerprint_is_the_bytes_pandas_to_csv_hashed(shape):
    """run.json of a run made before the item table was Arrow must still match on `resume`."""
    import random

    import pandas as pd
    import pyarrow as pa

    from anchorprep.pipeline.runner import inputs_fingerprint

    rng = random.Random(shape)
    width, rows = {"one column": (1, 60), "three columns": (3, 200), "no rows": (2, 0),
                   "many rows": (2, 25_003)}[shape]
    columns = {f"c{i}" if i else "utt_id": [rng.choice(AWKWARD_CELLS) + rng.choice(AWKWARD_CELLS) * rng.randint(0, 1)
                                           for _ in range(rows)] for i in range(width)}
    if shape == "one column":
        columns["utt_id"][:3] = ["", "", "x"]  # a lone "" cell is written as "" (quoted), not a blank line
    frame = pd.DataFrame(columns, dtype=str)
    fingerprint = inputs_fingerprint(pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}))
    assert (fingerprint.count, fingerprint.sha256) == pandas_fingerprint(frame)


@pytest.mark.parametrize("name", ["manifest.csv", "trigger_manifest.csv"])
def test_inputs_fingerprint_of_the_sample_manifests_is_unchanged(name):
    import pandas as pd

    from anchorprep.pipeline.runner import inputs_fingerprint
    from anchorprep.sources.items import read_manifest

    from anchorprep.sources.items import PATH_COLUMNS
    from anchorprep.storage import join

    path = Path(__file__).resolve().parents[1] / "sample_data" / name
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # the reader before
    for column in PATH_COLUMNS:
        if column in frame.columns:
            frame[column] = [join(path.parent.resolve(), value) for value in frame[column]]
    fingerprint = inputs_fingerprint(read_manifest(path, required=()))
    assert (fingerprint.count, fingerprint.sha256) == pandas_fingerprint(frame) and fingerprint.count > 0
