"""benchmarks/bench_loss.py runs and reports every variant against the same-run baseline."""

from __future__ import annotations

import importlib.util
import json
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


def test_bench_loss_reports_every_variant_at_every_target_shape(tmp_path, capsys):
    bench = _bench()
    out = tmp_path / "loss.json"
    assert bench.main(["--repeats", "2", "--inner", "1", "--no-info", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    table = capsys.readouterr().out
    for b, t, c in bench.SHAPES:
        shape = f"({b},{t},{c})"
        rows = {r["variant"]: r for r in results if r["shape"] == shape}
        assert set(bench.VARIANTS) | {"F.cross_entropy"} <= set(rows)
        for row in rows.values():
            assert row["ms"] > 0 and row["ratio"] > 0 and row["faults_per_step"] >= 0
            assert row["target"] is True
        assert f"| SAFL | {shape} |" in table
    assert "target 1.3x" in table


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
