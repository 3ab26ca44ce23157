"""Smoke test of the SAL training benchmark (benchmarks/sal_training/run.py --quick).

Checks the pipeline end to end — espeak-ng corpus -> `anchorprep align` / `anchorprep vad` shards
-> `anchorprep.data` loader and fbank -> `anchorprep.loss` -> `anchorprep.metrics` -> results
table — not the numbers (the quick corpus is far too small to mean anything).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "sal_training" / "run.py"
TASKS = ("keyword", "onset")
MODELS = ("cnn", "gru")
LOSSES = ("FCE", "FL", "SAL", "SA+FL", "SAFL")


def _espeak_available() -> bool:
    """scripts/espeak_corpus.py's own check (the module is loaded as tests/test_espeak_corpus.py does)."""
    module = sys.modules.get("espeak_corpus")
    if module is None:
        spec = importlib.util.spec_from_file_location("espeak_corpus", REPO / "scripts" / "espeak_corpus.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["espeak_corpus"] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return module.espeak_available()


pytestmark = pytest.mark.skipif(
    not _espeak_available(),
    reason="libespeak-ng.so.1 is not installed (the benchmark synthesises its corpus); "
           "install it with: apt-get install -y espeak-ng libespeak-ng1",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sal_bench") / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--workers", "2"],
                          cwd=str(REPO), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"run.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    results = json.loads((out / "results.json").read_text())
    return {"out": out, "results": results, "stdout": proc.stdout}


def test_shards_come_from_the_anchorprep_cli(quick_run):
    work = quick_run["out"] / "work"
    sources = {"keyword": "alignment", "onset": "vad"}
    for task in TASKS:
        folder = work / "shards" / task
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["settings"]["source"] == sources[task]
        rows = sum(s["rows"] for s in manifest["shards"])
        assert rows > 0
        assert (folder / "errors.jsonl").read_text().strip() == ""
        table = pq.read_table(folder / manifest["shards"][0]["file"])
        assert {"utt_id", "distance", "target", "anchor_times_s", "split"} <= set(table.column_names)
        assert set(table.column("split").to_pylist()) <= {"train", "valid", "test"}
        assert any(table.column("anchor_times_s").to_pylist()), f"{task}: no anchors at all"
    commands = quick_run["results"]["anchorprep_commands"]
    assert commands["keyword"].startswith("python -m anchorprep align ")
    assert commands["onset"].startswith("python -m anchorprep vad ")
    assert "--onsets first" in commands["onset"]


def test_every_run_trained_with_finite_decreasing_loss(quick_run):
    runs = [r for r in quick_run["results"]["runs"] if r["phase"] == "main"]
    seen = {(r["task"], r["model"], r["loss"]) for r in runs}
    assert seen == {(t, m, l) for t in TASKS for m in MODELS for l in LOSSES}
    for r in quick_run["results"]["runs"]:
        losses = r["epoch_loss"]
        assert len(losses) == r["epochs"] >= 2
        assert all(math.isfinite(x) and x > 0 for x in losses), r["key"]
        assert losses[-1] < losses[0], f"{r['key']}: loss did not decrease: {losses}"
        assert 0 < r["parameters"] <= 100_000
        if r["loss"] in ("SAL", "SA+FL", "SAFL"):
            # the collate's anchor weight at the anchor frame is 1 + gain (K(0) = 1)
            assert r["anchor_weight_at_anchor"] == pytest.approx(1 + r["weights"]["gain"])


def test_same_initialisation_across_losses(quick_run):
    """Every loss of one (task, model, seed) starts from the same weights."""
    runs = quick_run["results"]["runs"]
    for t in TASKS:
        for m in MODELS:
            cell = [r for r in runs if r["task"] == t and r["model"] == m and r["seed"] == 0]
            assert len(cell) >= len(LOSSES)
            assert len({r["init_checksum"] for r in cell}) == 1, (t, m)


def test_metrics_in_valid_ranges(quick_run):
    results = quick_run["results"]
    cfg = results["config"]
    lo, hi = -cfg["tolerance_s"] * 1000, cfg["max_latency_s"] * 1000 + 1e-6
    for r in results["runs"]:
        for split in ("valid", "test"):
            ev = r["eval"][split]
            assert ev["num_positive"] > 0 and ev["num_negative"] > 0
            assert ev["auc"] is None or 0.0 <= ev["auc"] <= 1.0
            for point in ev["at_targets"]:
                if point["frr"] is not None:
                    assert 0.0 <= point["frr"] <= 1.0
                    assert point["fa_per_hour"] <= point["target_fa_per_hour"] * (1 + 1e-9)
                lat = point["latency"]
                for key in ("mean", "p50", "p90"):
                    if lat[key] is not None:
                        assert lo - 1e-6 <= lat[key] * 1000 <= hi
    for key, agg in results["aggregate"].items():
        assert agg["auc"]["mean"] is None or 0.0 <= agg["auc"]["mean"] <= 1.0, key


def test_results_table_and_plot(quick_run):
    out = quick_run["out"]
    table = (out / "results.md").read_text()
    titles = {"keyword": "keyword spotting", "onset": "speech onset"}
    rows = [line for line in table.splitlines() if line.startswith("| ") and " | " in line]
    for t in TASKS:
        for m in MODELS:
            for l in LOSSES:
                prefix = f"| {titles[t]} | {m} ("
                assert any(row.startswith(prefix) and f") | {l} | " in row for row in rows), (t, m, l)
    assert "SAL sweep on the validation split" in table
    results = quick_run["results"]
    assert results["sweep"]["best"] in results["config"]["sweep_grid"]
    assert len(results["sweep"]["rows"]) == len(results["config"]["sweep_grid"])
    if importlib.util.find_spec("matplotlib") is not None:
        png = out / "latency_vs_frr.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
