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
