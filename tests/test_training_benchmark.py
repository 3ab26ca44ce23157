"""Smoke test of the SAL training benchmark (benchmarks/sal_training/run.py --quick).

Checks the pipeline end to end — espeak-ng corpus -> `anchorprep align` / `align --speech-onsets` /
`accel` + `merge` shards -> `anchorprep.data` loader and fbank (+ accelerometer features) ->
`anchorprep.loss` -> `anchorprep.metrics` -> tuning, bootstrap statistics, tables — and the
fairness rules of the design, not the numbers (the quick corpus is far too small to mean anything).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "sal_training"
SCRIPT = BENCH / "run.py"
TASKS = ("keyword", "onset", "trigger")
FAMILIES = ("FCE", "FCE+α", "FL", "SAL")


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
                          cwd=str(REPO), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"run.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    results = json.loads((out / "results.json").read_text())
    return {"out": out, "results": results, "stdout": proc.stdout}


def test_shards_come_from_the_anchorprep_cli(quick_run):
    work = quick_run["out"] / "work"
    sources = {"keyword": "alignment", "onset": "alignment", "accel": "accel"}
    for run, source in sources.items():
        folder = work / "shards" / run
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["settings"]["source"] == source
        assert sum(s["rows"] for s in manifest["shards"]) > 0
        assert (folder / "errors.jsonl").read_text().strip() == ""
        table = pq.read_table(folder / manifest["shards"][0]["file"])
        assert {"utt_id", "distance", "target", "anchor_times_s", "split"} <= set(table.column_names)
        assert any(table.column("anchor_times_s").to_pylist()), f"{run}: no anchors at all"
    commands = quick_run["results"]["anchorprep_commands"]
    assert commands["keyword"].startswith("python -m anchorprep align ") and "-k 'hey computer'" in commands["keyword"]
    assert commands["onset"].startswith("python -m anchorprep align ") and "--speech-onsets" in commands["onset"]
    assert commands["accel"].startswith("python -m anchorprep accel ") and "--preset raise" in commands["accel"]
    assert commands["trigger"].startswith("python -m anchorprep merge ") and "--agree-within-ms" in commands["trigger"]


def test_trigger_labels_follow_the_gesture(quick_run):
    """Merged labels: a raise without speech, or no raise and no speech, is never a positive;
    speech with a raise is positive (accel peak within 1 s of the onset)."""
    roles = quick_run["results"]["data"]["trigger_labels_by_role"]
    assert roles["raise, no speech"]["positive"] == 0
    assert roles["neither"]["positive"] == 0
    assert roles["speech+raise"]["positive"] > 0
    assert roles["speech+raise"]["positive"] >= roles["speech, no raise"]["positive"]


def test_confusables_and_voices(quick_run):
    results = quick_run["results"]
    conf = results["confusables"]
    accents = results["config"]["accents"]
    assert set(conf["wake"]) == set(accents)
    bare = lambda ph: "".join(ch for ch in ph if ch not in "'`, _:;|")  # noqa: E731
    for phrase in conf["kept"]:
        for accent in accents:
            assert bare(conf["wake"][accent]) not in bare(conf["phrases"][phrase][accent]), (phrase, accent)
    voices = results["config"]["voices"]
    variant = lambda v: v.partition("+")[2]  # noqa: E731
    by_split = {s: {v for v, sp in voices if sp == s} for s in ("train", "valid", "test")}
    assert len(by_split["test"]) >= 4
    train_variants = {variant(v) for v in by_split["train"]}
    assert not ({variant(v) for v in by_split["test"]} & (train_variants | {variant(v) for v in by_split["valid"]}))
    tested = set(results["data"]["tasks"]["keyword"]["test"]["voices"])
    assert tested and tested <= by_split["test"]


def test_equal_tuning_budget_and_selection_on_valid(quick_run):
    results = quick_run["results"]
    cfg = results["config"]
    runs = results["runs"]
    for t in TASKS:
        for fam in FAMILIES:
            sweep = [r for r in runs if r["phase"] == "sweep" and r["task"] == t and r["family"] == fam]
            assert len(sweep) == cfg["settings_per_family"], (t, fam)
            assert all(r["seed"] == cfg["tuning_seed"] and set(r["eval"]) == {"valid"} for r in sweep)
            chosen = results["tuning"][f"{t}/cnn/{fam}"]["chosen"]
            main = [r for r in runs if r["phase"] == "main" and r["task"] == t and r["family"] == fam]
            assert len(main) == cfg["seeds"] and all(r["setting"] == chosen for r in main)
            assert all(set(r["eval"]) == {"test"} for r in main)  # the test split is scored only here
            assert cfg["tuning_seed"] not in {r["seed"] for r in main}


def test_every_run_trained_with_finite_decreasing_loss(quick_run):
    runs = [r for r in quick_run["results"]["runs"] if r["model"] != "energy"]
    main = {(r["task"], r["family"]) for r in runs if r["phase"] == "main"}
    assert main == {(t, f) for t in TASKS for f in FAMILIES}
    for r in runs:
        losses = r["epoch_loss"]
        assert len(losses) == r["epochs"] >= 2
        assert all(math.isfinite(x) and x > 0 for x in losses), r["key"]
        assert losses[-1] < losses[0], f"{r['key']}: loss did not decrease: {losses}"
        assert 0 < r["parameters"] <= 100_000
        if r["family"] == "SAL":
            # the collate's anchor weight at the anchor frame is 1 + gain (K(0) = 1)
            assert r["anchor_weight_at_anchor"] == pytest.approx(1 + r["setting"]["gain"])
    energy = [r for r in quick_run["results"]["runs"] if r["model"] == "energy"]
    assert {r["task"] for r in energy} == {"onset", "trigger"}


def test_same_initialisation_and_batches_per_seed(quick_run):
    """Every family and setting of one (task, model, seed) starts from the same weights."""
    runs = [r for r in quick_run["results"]["runs"] if r["model"] == "cnn"]
    for t in TASKS:
        for seed in {r["seed"] for r in runs}:
            cell = [r for r in runs if r["task"] == t and r["seed"] == seed]
            assert len({r["init_checksum"] for r in cell}) == 1, (t, seed)
            assert len({r["steps"] for r in cell}) == 1, (t, seed)


def test_metrics_and_intervals(quick_run):
    results = quick_run["results"]
    cfg = results["config"]
    lo, hi = -cfg["tolerance_s"] * 1000, cfg["max_latency_s"] * 1000 + 1e-6
    for r in results["runs"]:
        for ev in r["eval"].values():
            assert ev["num_positive"] > 0 and ev["num_negative"] > 0
            assert ev["auc"] is None or 0.0 <= ev["auc"] <= 1.0
            for point in ev["at_targets"]:
                if point["frr"] is not None:
                    assert 0.0 <= point["frr"] <= 1.0
                    assert point["fa_per_hour"] <= point["target_fa_per_hour"] * (1 + 1e-9)
                for key in ("mean", "p50", "p90"):
                    if point["latency"][key] is not None:
                        assert lo - 1e-6 <= point["latency"][key] * 1000 <= hi
    for cell, st in results["statistics"].items():
        assert "vs_fce" in st["families"]["SAL"], cell
        for fam, row in st["families"].items():
            for metric, s in row["metrics"].items():
                if s["value"] is not None and s["ci"][0] is not None:
                    assert s["ci"][0] <= s["ci"][1], (cell, fam, metric)
            for metric, d in row.get("vs_fce", {}).items():
                if d["verdict"] in ("better", "worse"):
                    assert d["ci"][0] > 0 or d["ci"][1] < 0, (cell, fam, metric)
                elif d["verdict"] == "no evidence":
                    assert d["ci"][0] <= 0 <= d["ci"][1], (cell, fam, metric)


def test_evidence_matches_anchorprep_metrics(quick_run):
    """The bootstrap's per-utterance outcomes reproduce anchorprep.metrics at a threshold."""
    sys.path.insert(0, str(BENCH))
    from sal_train import Evidence

    run = next(r for r in quick_run["results"]["runs"] if r["phase"] == "main" and r["task"] == "keyword"
               and r["family"] == "FCE")
    ev = Evidence.load(run["evidence"])
    assert ev.neg_alarms.shape == (len(ev.neg_max), len(ev.thresholds))
    assert ev.latency.shape == (len(ev.event_utt), len(ev.thresholds))
    assert np.all(np.diff(ev.thresholds) > 0)
    assert ev.neg_alarms[:, -1].sum() == 0  # the last threshold lies above every negative's maximum
    assert run["eval"]["test"]["num_negative"] == len(ev.neg_max)
    assert run["eval"]["test"]["num_events"] == len(ev.event_utt)


def test_results_table_readme_section_and_plot(quick_run):
    out = quick_run["out"]
    table = (out / "results.md").read_text()
    for title in ("### keyword spotting, cnn", "### speech onset, cnn", "### multi-modal trigger"):
        assert title in table
    for fam in FAMILIES:
        assert f"| {fam} | " in table
    assert "| SAL − FCE | " in table and "energy detector (no training)" in table
    assert "Tuning on the validation voices" in table
    sys.path.insert(0, str(BENCH))
    import sal_report

    section = sal_report.readme_section(quick_run["results"])
    assert section.startswith(sal_report.README_SECTION + "\n")
    assert "Paper's headline" in section and "97.61" in section
    if importlib.util.find_spec("matplotlib") is not None:
        png = out / "latency_vs_frr.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_augmentation_is_seeded_per_batch_and_leaves_accelerometer_features_alone():
    import torch

    sys.path.insert(0, str(BENCH))
    from sal_train import Augmentation, augment_batch, noise_floor

    bins = 40
    features = torch.randn(3, 50, 3 * bins + 5) + 4.0
    floors = torch.stack([noise_floor(f, bins) for f in features])

    def run(seed: int, config: Augmentation = Augmentation()) -> torch.Tensor:
        return augment_batch(features, floors, bins, torch.Generator().manual_seed(seed), config)

    assert torch.equal(run(7), run(7))
    assert not torch.allclose(run(7)[..., :3 * bins], run(8)[..., :3 * bins])
    assert torch.equal(run(7)[..., 3 * bins:], features[..., 3 * bins:])
    identity = Augmentation(warp=(1.0, 1.0), gain_db=(0.0, 0.0), noise_p=0.0, mask_bins=0)
    assert torch.allclose(run(7, identity), features)
    gain = Augmentation(warp=(1.0, 1.0), gain_db=(10.0, 10.0), noise_p=0.0, mask_bins=0)
    assert torch.allclose(run(7, gain)[..., :3 * bins] - features[..., :3 * bins], torch.tensor(math.log(10.0)), atol=1e-5)
    # A warp a > 1 reads bin k from k / a: a bin's content moves up the axis (formants rise).
    up = Augmentation(warp=(1.25, 1.25), gain_db=(0.0, 0.0), noise_p=0.0, mask_bins=0)
    peaked = torch.zeros(1, 1, bins)
    peaked[..., 16] = 1.0
    moved = augment_batch(peaked, torch.zeros(1, bins), bins, torch.Generator().manual_seed(0), up)
    assert int(moved[0, 0].argmax()) == 20
