"""`anchorprep weights`: a run with per-frame SAL weights precomputed for trainers outside PyTorch.

The output is read back with pyarrow alone (no anchorprep reader) and every row's ``weight``
is compared with `anchorprep.loss.anchor_weights` of that row's stored distance.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

import anchorprep
from anchorprep.cli.app import app
from anchorprep.errors import UsageError
from anchorprep.interop import WeightSettings, write_weights
from anchorprep.loss import DEFAULT_GAIN, DEFAULT_KERNEL, DEFAULT_WIDTH, anchor_weights

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "sample_data" / "manifest.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The bundled sample corpus aligned to "hey computer": 24 utterances in 3 shards."""
    out = tmp_path_factory.mktemp("weights") / "kw"
    result = anchorprep.align(MANIFEST, out, keyword="hey computer", shard_size=10)
    assert result.exit_code == 0
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_rows_weight_read_with_pyarrow_alone_equals_anchor_weights(source, tmp_path):
    out = tmp_path / "weighted"
    result = write_weights(source, out, kernel="linear", width_before=10, width_after=30, gain=3)
    assert (result.shards, result.rows) == (3, 24)

    manifest = json.loads((out / "manifest.json").read_text())
    source_manifest = json.loads((source / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == [s["file"] for s in source_manifest["shards"]]
    block = manifest["settings"]["weights"]
    assert (block["kernel"], block["width_before"], block["width_after"], block["gain"]) == ("linear", 10.0, 30.0, 3.0)
    assert block["source_settings_sha256"] == source_manifest["settings_sha256"]
    assert manifest["settings_sha256"] != source_manifest["settings_sha256"]

    frames = checked_rows = 0
    for entry, source_entry in zip(manifest["shards"], source_manifest["shards"]):
        path = out / entry["file"]
        assert entry["sha256"] == sha256(path) and entry["rows"] == source_entry["rows"]
        table = pq.read_table(path)
        assert table.schema.field("weight").type == pa.list_(pa.float32())
        assert json.loads(table.schema.metadata[b"anchorprep"])["weights"] == block
        original = pq.read_table(source / source_entry["file"])
        assert table.drop_columns(["weight"]).equals(original)  # the input rows, unchanged
        for distance, weight in zip(table.column("distance").to_pylist(), table.column("weight").to_pylist()):
            expected = anchor_weights(torch.tensor(distance, dtype=torch.int16), "linear", width_before=10.0,
                                      width_after=30.0, gain=3.0)
            assert torch.equal(torch.tensor(weight, dtype=torch.float32), expected)
            frames += len(weight)
            checked_rows += 1
    assert checked_rows == 24 and frames == result.frames
    assert any(max(w) > 1.0 for w in pq.read_table(out / manifest["shards"][0]["file"]).column("weight").to_pylist())

    assert (out / "report.json").read_text() == (source / "report.json").read_text()
    from anchorprep.inspect import validate_run

    report = validate_run(out)
    assert report.ok, [str(p) for p in report.problems]
    assert WeightSettings.of_run(anchorprep.shards.run.open_run(out).settings) == result.settings


def test_defaults_are_the_loss_packages(source, tmp_path):
    result = write_weights(source, tmp_path / "w")
    assert (result.settings.kernel, result.settings.width_before, result.settings.width_after,
            result.settings.gain) == (DEFAULT_KERNEL, DEFAULT_WIDTH, DEFAULT_WIDTH, DEFAULT_GAIN)


def test_cli_writes_the_same_run_as_the_library(source, tmp_path):
    write_weights(source, tmp_path / "py", kernel="box", width=2, gain=1.5)
    shell = runner.invoke(app, ["weights", str(source), "-o", str(tmp_path / "sh"), "--kernel", "box", "--width", "2",
                                "--gain", "1.5"])
    assert shell.exit_code == 0, shell.output
    assert json.loads(shell.stdout)["weights"]["kernel"] == "box"
    assert folder_digest(tmp_path / "py") == folder_digest(tmp_path / "sh")


@pytest.mark.parametrize("kwargs, option", [
    ({"kernel": "triangle"}, "--kernel"),
    ({"width": 0.0}, "--width"),
    ({"width": float("inf")}, "--width"),
    ({"width_before": -1.0}, "--width-before"),
    ({"width_after": float("nan")}, "--width-after"),
    ({"gain": -0.5}, "--gain"),
    ({"gain": float("nan")}, "--gain"),
])
def test_bad_kernel_width_or_gain_is_a_usage_error(source, tmp_path, kwargs, option):
    with pytest.raises(UsageError, match=f"`{option[2:].replace('-', '_')}`"):
        write_weights(source, tmp_path / "w", **kwargs)
    assert not (tmp_path / "w").exists()
    argv = ["weights", str(source), "-o", str(tmp_path / "w")]
    for key, value in kwargs.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    shell = runner.invoke(app, argv)
    assert shell.exit_code == 2 and f"error: {option} " in shell.stderr, shell.output
    assert "Traceback" not in shell.output


def test_box_allows_width_zero(source, tmp_path):
    assert write_weights(source, tmp_path / "w", kernel="box", width=0).settings.width_before == 0.0


def test_refuses_to_write_into_the_input_run(source, tmp_path):
    before = folder_digest(source)
    with pytest.raises(UsageError, match="`out` .* is the input run"):
        write_weights(source, source, kernel="linear")
    shell = runner.invoke(app, ["weights", str(source), "-o", str(source), "--overwrite"])
    assert shell.exit_code == 2 and "error: --out" in shell.stderr
    assert folder_digest(source) == before


def test_an_existing_run_in_out_needs_overwrite(source, tmp_path):
    out = tmp_path / "w"
    write_weights(source, out, gain=1)
    with pytest.raises(UsageError, match="already holds a run"):
        write_weights(source, out, gain=2)
    assert write_weights(source, out, gain=2, overwrite=True).settings.gain == 2.0
    assert json.loads((out / "manifest.json").read_text())["settings"]["weights"]["gain"] == 2.0


def test_a_folder_that_is_not_a_finished_run_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        write_weights(tmp_path / "nothing", tmp_path / "w")


def test_the_torch_loader_pads_the_stored_weights_like_computed_ones(source, tmp_path):
    from torch.utils.data import DataLoader

    from anchorprep.data import AnchorWeightConfig, ShardDataset, collate

    write_weights(source, tmp_path / "w", kernel="gaussian", width=8, gain=2)
    stored = next(iter(DataLoader(ShardDataset(tmp_path / "w", columns=("weight",)), batch_size=6,
                                  collate_fn=collate())))
    computed = next(iter(DataLoader(ShardDataset(source), batch_size=6,
                                    collate_fn=collate(AnchorWeightConfig(kernel="gaussian", width=8, gain=2)))))
    assert stored["weight"].dtype == torch.float32 and torch.equal(stored["weight"], computed["weight"])


def test_a_run_with_failed_items_keeps_its_errors(tmp_path, sample_run_with_a_failed_item):
    sample_run_with_a_failed_item()
    write_weights(tmp_path / "kw", tmp_path / "w")
    assert (tmp_path / "w" / "errors.jsonl").read_text() == (tmp_path / "kw" / "errors.jsonl").read_text() != ""
    from anchorprep.inspect import validate_run

    assert validate_run(tmp_path / "w").ok


def test_deep_validation_rederives_a_weights_run_and_checks_its_weight_column(source, tmp_path):
    """`validate --deep` re-derives a weights run's rows from the inputs (its `weights` block is not
    a job setting) and recomputes each sampled row's weight from its stored distance."""
    from anchorprep.inspect import validate_run

    out = tmp_path / "weighted"
    write_weights(source, out, kernel="linear", width=12, gain=2)
    report = validate_run(out, deep=24, inputs=MANIFEST)
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked["deep_rows"] == 24

    shard = sorted((out / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    weights = table.column("weight").to_pylist()
    weights[0] = [w * 2 for w in weights[0]]
    pq.write_table(table.set_column(table.schema.get_field_index("weight"), table.schema.field("weight"),
                                    pa.array(weights, pa.list_(pa.float32()))), shard)
    problems = [p for p in validate_run(out, deep=24, inputs=MANIFEST).problems if p.check == "deep"]
    assert len(problems) == 1 and "weight: not the linear kernel" in str(problems[0])
