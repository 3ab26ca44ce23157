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
