"""`anchorprep.shards.run`: the typed run-folder files round-trip the JSON anchorprep writes,
`open_run` refuses what is not a finished run, and list columns unpack once, correctly."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.errors import UsageError
from anchorprep.pipeline.runner import RunOptions, run, run_settings
from anchorprep.shards.run import (
    ItemError, RunFolder, RunManifest, RunReport, RunSettings, ShardSummary, iter_rows, list_column, open_run,
    settings_hash,
)
from anchorprep.synthetic import write_synthetic_alignments


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """An align run with several shards and one failed item (a missing alignment file)."""
    root = tmp_path_factory.mktemp("run")
    manifest = write_synthetic_alignments(root / "corpus", n=12, seed=5)
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write("broken,grids/missing.TextGrid,10.0,spk9\n")
    out = root / "out"
    result = CliRunner().invoke(app, ["align", str(manifest), "-o", str(out), "-k", "hey computer", "-q",
                                      "--shard-size", "5"])
    assert result.exit_code == 1, result.output  # one item failed
    return out


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_json_file_round_trips_exactly(finished):
    folder = RunFolder(finished)
    settings = _read(folder.settings_file)
    assert RunSettings.from_dict(settings).to_dict() == settings
    manifest = _read(folder.manifest_file)
    assert RunManifest.from_dict(manifest).to_dict() == manifest
    report = _read(folder.report_file)
    assert RunReport.from_dict(report).to_dict() == report
    done = sorted(folder.done_dir.glob("*.json"))
    assert len(done) == RunSettings.from_dict(settings).planned_shards == 3
    for path in done:
        summary = _read(path)
        assert ShardSummary.from_dict(summary).to_dict() == summary
    lines = folder.errors_file.read_text(encoding="utf-8").splitlines()
    assert lines, "the fixture should have failed one item"
    for line in lines:
        assert json.dumps(ItemError.from_dict(json.loads(line)).to_dict(), ensure_ascii=False) == line


def test_typed_settings_read_like_the_json(finished):
    run_ = open_run(finished)
    settings = run_.settings
    raw = _read(RunFolder(finished).manifest_file)["settings"]
    assert settings.command == "align" and settings.labels == ("hey computer",)
    assert settings.grid.to_dict() == raw["grid"] and settings.job["align"] == raw["align"]
    assert settings.window is not None and (settings.window.lo, settings.window.hi) == tuple(raw["targets"]["positive_window"])
    assert settings_hash(settings.to_dict()) == settings.settings_sha256 == raw["settings_sha256"]
    report = run_.report()
    assert report.items_in == report.written + report.failed and report.failed == len(run_.errors()) >= 1
    assert sum(1 for _ in run_.iter_rows(["utt_id"])) == run_.num_rows == report.written


def test_settings_hash_is_what_runs_before_the_typed_settings_stored(finished):
    """Resume compatibility: the hash of a rebuilt settings object equals the stored one."""
    stored = _read(RunFolder(finished).settings_file)
    rebuilt = RunSettings.from_dict(stored)
    body = {k: v for k, v in stored.items() if k != "settings_sha256"}
    import hashlib

    assert rebuilt.settings_sha256 == hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def test_open_run_refuses_what_is_not_a_finished_run(finished, tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        open_run(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        open_run(tmp_path / "file")
    with pytest.raises(UsageError, match="is this the output folder"):
        open_run(tmp_path)
    with pytest.raises(UsageError, match=f"give the run folder {finished}, not its data/"):
        open_run(finished / "data")
    result = CliRunner().invoke(app, ["validate", str(finished / "data")])
    assert result.exit_code == 2 and "give the run folder" in result.output, result.output
    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished, unfinished)
    (unfinished / "manifest.json").unlink()
    with pytest.raises(UsageError, match="unfinished: run `anchorprep assemble`"):
        open_run(unfinished)
    (unfinished / "manifest.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        open_run(unfinished)
    (unfinished / "manifest.json").write_text(json.dumps({"shards": []}))
    with pytest.raises(UsageError, match="not an anchorprep manifest") as caught:
        open_run(unfinished)
    assert "\n" not in str(caught.value)


def test_list_column_unpacks_sliced_chunked_and_string_columns():
    ints = pa.array([[1, 2], [], [3, 4, 5], [6]], type=pa.list_(pa.int16()))
    strings = pa.array([["a"], ["b", "c"], [], ["d"]], type=pa.list_(pa.string()))
    for column, expected in ((ints, [[1, 2], [], [3, 4, 5], [6]]), (strings, [["a"], ["b", "c"], [], ["d"]])):
        for piece, rows in ((column, expected), (column.slice(1, 2), expected[1:3]),
                            (pa.chunked_array([column.slice(0, 1), column.slice(1)]), expected)):
            offsets, values = list_column(piece)
            assert offsets[0] == 0 and len(values) == offsets[-1]
            assert [list(values[offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)] == rows
    offsets, values = list_column(ints)
    assert isinstance(values, np.ndarray) and values.dtype == np.int16 and not values.flags.writeable  # a view
    table = pa.table({"utt_id": ["u0", "u1", "u2", "u3"], "target": ints, "anchor_labels": strings})
    rows = list(iter_rows(table.slice(2, 2)))
    assert [r["utt_id"] for r in rows] == ["u2", "u3"]
    assert rows[0]["target"].tolist() == [3, 4, 5] and rows[1]["anchor_labels"] == ["d"]


def test_run_result_and_dry_run_are_typed(tmp_path):
    manifest = write_synthetic_alignments(tmp_path / "corpus", n=4, seed=1)
    from anchorprep.anchors import TargetWindow
    from anchorprep.grid import FrameGrid
    from anchorprep.pipeline.align import AlignJob, AlignOptions
    from anchorprep.sources.items import read_manifest
    from anchorprep.pipeline.rows import Labelling

    job = AlignJob(Labelling(FrameGrid(), TargetWindow.parse("0:30"), ("hey computer",), "causal"),
                   AlignOptions(keywords=("hey computer",)))
    items = read_manifest(manifest, required=("utt_id", "alignment_path"))
    plan = run(job, items, RunOptions(tmp_path / "out", dry_run=True)).plan
    assert plan.to_dict()["to_run"] == 1 and plan.settings_sha256 == run_settings(job, items, 1000).settings_sha256
    result = run(job, items, RunOptions(tmp_path / "out", quiet=True))
    assert isinstance(result.report, RunReport) and result.report.to_dict() == _read(tmp_path / "out" / "report.json")
    assert result.exit_code == 0


def test_folder_inputs_store_absolute_audio_paths(tmp_path, monkeypatch):
    """`align ALIGNMENTS/ --audio-dir AUDIO/` with relative folders stores absolute `audio_path`s,
    so features load from any working directory (0.1.0 stored ``audio/utt00000-neg.flac``)."""
    from anchorprep.data import ShardDataset

    repo = Path(__file__).resolve().parents[1]
    work = tmp_path / "work"
    work.mkdir()
    for name in ("alignments", "audio"):
        shutil.copytree(repo / "sample_data" / name, work / name)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["align", "alignments", "--audio-dir", "audio", "-o", "out", "-k", "hey computer",
                                      "-q"])
    assert result.exit_code == 0, result.output
    paths = [row["audio_path"] for row in open_run("out").iter_rows(["audio_path"])]
    assert len(paths) == 24 and all(Path(p).is_absolute() and Path(p).is_file() for p in paths), paths[:2]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    example = ShardDataset(work / "out", features="fbank")[0]
    assert example["features"].shape == (len(example["target"]), 80)


def to_legacy_layout(out: Path) -> None:
    """Rewrite a run folder as anchorprep 0.1.0 wrote it: shards beside manifest.json, every
    shard named by its bare file name (manifest, done markers, errors.jsonl)."""
    for shard in (out / "data").iterdir():
        shard.rename(out / shard.name)
    (out / "data").rmdir()

    def bare(name: str) -> str:
        return name.removeprefix("data/")

    manifest = _read(out / "manifest.json")
    for entry in manifest["shards"]:
        entry["file"] = bare(entry["file"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for marker in (out / ".anchorprep" / "done").iterdir():
        summary = _read(marker)
        summary["file"] = bare(summary["file"])
        summary["errors"] = [{k: v for k, v in e.items() if k != "shard"} for e in summary["errors"]]
        marker.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    (out / "errors.jsonl").write_text("".join(json.dumps({**e, "shard": bare(e["shard"])}) + "\n" for e in lines))


def test_runs_in_the_0_1_0_layout_are_read_but_never_written_into(tmp_path):
    """0.1.0 runs (shards beside manifest.json) open in every reader of anchorprep; resuming or
    rerunning into one is refused in one line, and `overwrite` leaves only the current layout."""
    from anchorprep.data import ShardDataset
    from anchorprep.inspect import validate_run

    manifest = write_synthetic_alignments(tmp_path / "corpus", n=7, seed=2)
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write("broken,grids/missing.TextGrid,10.0,spk9\n")
    out = tmp_path / "old"
    argv = ["align", str(manifest), "-o", str(out), "-k", "hey computer", "-q", "--shard-size", "5"]
    assert CliRunner().invoke(app, argv).exit_code == 1
    rows = [row["utt_id"] for row in open_run(out).iter_rows(["utt_id"])]
    to_legacy_layout(out)
    assert RunFolder(out).legacy and sorted(p.name for p in out.glob("anchors-*.parquet")) == [
        "anchors-00000-of-00002.parquet", "anchors-00001-of-00002.parquet"]

    assert [row["utt_id"] for row in open_run(out).iter_rows(["utt_id"])] == rows
    assert [example["utt_id"] for example in ShardDataset(out)] == rows
    assert validate_run(out).ok, validate_run(out).problems
    for command in (["stats", str(out)], ["validate", str(out)]):
        assert CliRunner().invoke(app, command).exit_code == 0, command

    for extra in (["--resume"], []):
        result = CliRunner().invoke(app, argv + extra)
        assert result.exit_code == 2 and "0.1.0" in result.output and "--overwrite" in result.output, result.output
        assert result.output.strip().count("\n") == 0, result.output
    assert not (out / "data").exists()

    assert CliRunner().invoke(app, argv + ["--overwrite"]).exit_code == 1
    assert not list(out.glob("*.parquet")) and not RunFolder(out).legacy
    assert [row["utt_id"] for row in open_run(out).iter_rows(["utt_id"])] == rows
    assert validate_run(out).ok
