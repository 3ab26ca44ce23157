"""benchmarks/bench_loss.py runs and reports every variant against the same-run baseline."""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_loss", REPO / "benchmarks" / "bench_loss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_loss_reports_ratios_and_training_shares(tmp_path, capsys):
    """A quick run: every variant at every target shape with a finite ratio to the same-run
    baseline, and every variant's finite share of a CNN and a GRU training step."""
    bench = _bench()
    out = tmp_path / "loss.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    table = capsys.readouterr().out
    for b, t, c in bench.SHAPES:
        shape = f"({b},{t},{c})"
        rows = {r["variant"]: r for r in report["results"] if r["shape"] == shape}
        assert set(rows) == set(bench.VARIANTS) | {bench.BASELINE}
        assert rows[bench.BASELINE]["ratio"] == 1.0
        for row in rows.values():
            assert math.isfinite(row["ratio"]) and row["ratio"] > 0 and row["ms"] > 0
            assert row["target"] is True and row["faults_per_step"] >= 0
        assert f"| SAFL | {shape} |" in table
    shares = {(r["model"], r["variant"]): r for r in report["training"]}
    assert set(shares) == {(m, v) for m in bench.MODELS for v in (*bench.VARIANTS, bench.BASELINE)}
    for row in shares.values():
        # two separate timings: on a busy machine the loss alone can even outlast a step
        assert math.isfinite(row["share"]) and row["share"] > 0
        assert row["step_ms"] > 0 and row["batch"] == "8x100x80"
    assert "| loss (batch 8x100x80) | cnn step ms | cnn loss share | gru step ms | gru loss share |" in table
    assert "| SAFL | " in table.split("loss (batch")[1]
    meta = report["meta"]
    assert meta["threads"] >= 1 and len(meta["loadavg_1min_before_after"]) == 2
    assert f"torch {meta['torch']}" in table and "1-min load average" in table


def test_bench_loss_shapes_and_batches_match_the_shard_convention():
    bench = _bench()
    batch = bench.make_batch(8, 40, 3, "cpu")
    target, distance, lengths = batch["target"], batch["distance"], batch["lengths"]
    padded = target == -100
    assert (padded.sum(1) == 40 - lengths).all()  # padding carries ignore_index
    no_anchor = (distance == 32767).all(1)
    assert ((target[no_anchor] <= 0)).all()  # negatives: background or padding only
    assert str(distance.dtype) == "torch.int16"


@pytest.mark.skipif(platform.system() != "Linux" or "musl" in sys.version, reason="glibc only")
def test_keep_freed_memory_reaches_glibc():
    # in a child process: mallopt would change this test process's allocator for good
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('b', sys.argv[1]); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(m.keep_freed_memory())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "benchmarks" / "bench_loss.py")],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "True"
