"""`anchorprep evaluate RUN SCORES`: a scores file against a run's anchors, and the same numbers
from a training loader's batches (which carry ``anchor_times_s`` and ``duration_s``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader
from typer.testing import CliRunner

import anchorprep
from anchorprep.cli.app import app
from anchorprep.data import ShardDataset, collate
from anchorprep.errors import UsageError
from anchorprep.metrics import evaluate
from anchorprep.metrics.run_scores import evaluate_run, read_scores, scores_grid
from anchorprep.shards.run import open_run

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "sample_data" / "manifest.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The sample corpus aligned to "hey computer": 24 utterances (12 with an anchor) in 3 shards."""
    out = tmp_path_factory.mktemp("evaluate") / "kw"
    assert anchorprep.align(MANIFEST, out, keyword="hey computer", shard_size=10).exit_code == 0
    return out


def detector(distance: np.ndarray) -> np.ndarray:
    """A deterministic, imperfect detector: a bump a few frames after the anchor, plus ripple."""
    d = distance.astype(np.float64)
    frames = np.arange(d.shape[-1], dtype=np.float64)
    ripple = 0.35 * (0.5 + 0.5 * np.sin(frames * 0.37))
    bump = np.where(np.abs(d) < 32767, np.exp(-np.abs(d - 6.0) / 5.0), 0.0)
    return np.maximum(ripple, 0.9 * bump)


def rows(run: Path) -> list[dict]:
    return list(open_run(run).iter_rows(["utt_id", "num_frames", "duration_s", "anchor_times_s", "distance"]))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score_records(run: Path) -> list[dict]:
    return [{"utt_id": r["utt_id"], "scores": detector(r["distance"]).tolist()} for r in rows(run)]


def cli(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def test_batches_carry_anchor_times_and_durations(run):
    loader = DataLoader(ShardDataset(run), batch_size=5, collate_fn=collate())
    stored = {r["utt_id"]: r for r in rows(run)}
    seen = 0
    for batch in loader:
        assert batch["duration_s"].dtype == torch.float64 and batch["duration_s"].shape == (len(batch["utt_id"]),)
        for utt, times, duration in zip(batch["utt_id"], batch["anchor_times_s"], batch["duration_s"].tolist()):
            assert times.dtype == torch.float64
            assert times.tolist() == stored[utt]["anchor_times_s"].tolist() and duration == stored[utt]["duration_s"]
            seen += 1
    assert seen == 24


def test_evaluate_over_loader_batches_equals_the_cli_report(run, tmp_path):
    scores = tmp_path / "scores.parquet"
    records = score_records(run)
    pq.write_table(pa.table({"utt_id": [r["utt_id"] for r in records],
                             "scores": pa.array([r["scores"] for r in records], pa.list_(pa.float64()))}), scores)
    shell = cli(run, scores, "-o", tmp_path / "report.json", "--fa-per-hour", "50", "--fa-per-hour", "200")
    assert shell.exit_code == 0, shell.output
    report = json.loads((tmp_path / "report.json").read_text())

    dataset = ShardDataset(run)
    traces, anchors, durations = [], [], []
    for batch in DataLoader(dataset, batch_size=7, collate_fn=collate()):
        padded = detector(batch["distance"].numpy())  # the "model": (B, T) scores, garbage on padding
        for i, length in enumerate(batch["lengths"].tolist()):
            traces.append(padded[i, :length])
        anchors += batch["anchor_times_s"]
        durations += batch["duration_s"].tolist()
    python = evaluate(traces, anchors, dataset.grid, durations_s=durations, fa_per_hour_targets=(50.0, 200.0))
    expected = python.to_dict(include_det=True)
    assert {key: report[key] for key in expected} == expected
    assert report["utterances"]["evaluated"] == 24 and report["problems"] == []
    assert report["num_positive"] == 12 and report["at_targets"][0]["latency"]["count"] > 0
    assert 0.5 < report["auc"] <= 1.0 and len(report["det"]["frr"]) == len(report["det"]["thresholds"]) > 2


def test_python_result_is_the_cli_report_and_the_png_shows_it(run, tmp_path):
    scores = write_jsonl(tmp_path / "scores.jsonl", score_records(run))
    result = evaluate_run(run, scores, fa_per_hour=(100.0,))
    assert result.exit_code == 0 and result.evaluated == 24
    shell = cli(run, scores, "-o", tmp_path / "r.json", "--fa-per-hour", "100", "--png", tmp_path / "det.png")
    assert shell.exit_code == 0, shell.output
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(result.to_dict(), sort_keys=True))
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "AUC" in shell.stderr and "FA/h <= 100: FRR" in shell.stderr


def test_missing_extra_and_wrong_length_utterances_are_left_out_with_exit_1(run, tmp_path):
    records = score_records(run)
    missing, short = records.pop(0), records[0]
    short["scores"] = short["scores"][:-1]
    records.append({"utt_id": "not-in-the-run", "scores": [0.1, 0.2]})
    scores = write_jsonl(tmp_path / "scores.jsonl", records)
    shell = cli(run, scores, "-o", tmp_path / "r.json", "--fa-per-hour", "100")
    assert shell.exit_code == 1, shell.output
    report = json.loads((tmp_path / "r.json").read_text())
    kinds = {p["utt_id"]: p["kind"] for p in report["problems"]}
    assert kinds == {missing["utt_id"]: "missing", short["utt_id"]: "wrong_length", "not-in-the-run": "extra"}
    assert report["utterances"] == {"in_run": 24, "in_scores": 24, "evaluated": 22, "skipped_missing": 0,
                                    "missing": 1, "extra": 1, "wrong_length": 1}
    assert f"{short['utt_id']}: wrong_length: {len(short['scores'])} scores, expected {len(short['scores']) + 1}" \
        in shell.stderr
    # The numbers are those of the 22 good utterances.
    good = [r for r in rows(run) if r["utt_id"] not in kinds]
    expected = evaluate([detector(r["distance"]) for r in good], [r["anchor_times_s"] for r in good],
                        open_run(run).settings.grid, durations_s=[r["duration_s"] for r in good],
                        fa_per_hour_targets=(100.0,))
    assert report["auc"] == expected.auc and report["det"]["frr"] == expected.det.frr.tolist()


def test_allow_missing_skips_unscored_utterances(run, tmp_path):
    scores = write_jsonl(tmp_path / "scores.jsonl", score_records(run)[:10])
    result = evaluate_run(run, scores, allow_missing=True)
    assert (result.exit_code, result.evaluated, result.skipped_missing) == (0, 10, 14)
    assert evaluate_run(run, scores).exit_code == 1


def test_scores_on_their_own_frame_shift(run, tmp_path):
    grid = scores_grid(open_run(run).settings.grid, 20.0)
    assert (grid.frame_shift_ms, grid.subsampling) == (10.0, 2)  # 20 ms = 2 feature frames of the run
    records, traces = [], []
    for r in rows(run):
        trace = detector(np.asarray(r["distance"])[::2][:grid.num_frames(grid.num_samples(r["duration_s"]))])
        records.append({"utt_id": r["utt_id"], "scores": trace.tolist(), "frame_shift_ms": 20})
        traces.append(trace)
    by_column = evaluate_run(run, write_jsonl(tmp_path / "column.jsonl", records), fa_per_hour=(100.0,))
    assert by_column.exit_code == 0, by_column.problems
    for record in records:
        del record["frame_shift_ms"]
    plain = write_jsonl(tmp_path / "plain.jsonl", records)
    by_option = evaluate_run(run, plain, frame_shift_ms=20.0, fa_per_hour=(100.0,))
    expected = evaluate(traces, [r["anchor_times_s"] for r in rows(run)], grid,
                        durations_s=[r["duration_s"] for r in rows(run)], fa_per_hour_targets=(100.0,))
    assert {**by_column.to_dict(), "scores": ""} == {**by_option.to_dict(), "scores": ""}
    assert by_option.metrics.to_dict(include_det=True) == expected.to_dict(include_det=True)
    # Without the shift every trace has the wrong length for the run's 10 ms frames.
    with pytest.raises(UsageError, match=r"expected \d+ \(one per 10 ms frame.*give it as `frame_shift_ms`"):
        evaluate_run(run, plain)
    # A 15 ms shift is not a multiple of the run's 10 ms: its own grid.
    assert scores_grid(open_run(run).settings.grid, 15.0).frame_shift_ms == 15.0
    with pytest.raises(UsageError, match="`frame_shift_ms` 10 differs"):
        evaluate_run(run, tmp_path / "column.jsonl", frame_shift_ms=10.0)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda recs: recs[3]["scores"].__setitem__(2, float("nan")), "contain NaN"),
    (lambda recs: recs[3]["scores"].__setitem__(2, None), "contain NaN, null"),
    (lambda recs: recs.append(dict(recs[0])), "appears more than once"),
    (lambda recs: recs.__setitem__(slice(None), [{"utt_id": "x", "scores": [0.1]}]), "no utterance could be evaluated"),
    (lambda recs: recs[0].pop("scores"), "line 1: expected"),
])
def test_bad_scores_files_are_usage_errors(run, tmp_path, mutate, fragment):
    records = score_records(run)
    mutate(records)
    scores = write_jsonl(tmp_path / "scores.jsonl", records)
    with pytest.raises(UsageError, match=fragment):
        evaluate_run(run, scores)
    shell = cli(run, scores, "-o", tmp_path / "r.json")
    assert shell.exit_code == 2 and shell.stderr.startswith("error: ") and "Traceback" not in shell.output
    assert not (tmp_path / "r.json").exists()


def test_parquet_nulls_and_formats(run, tmp_path):
    bad = tmp_path / "null.parquet"
    pq.write_table(pa.table({"utt_id": ["a"], "scores": pa.array([[0.1, None]], pa.list_(pa.float32()))}), bad)
    with pytest.raises(UsageError, match="NaN, null"):
        read_scores(bad)
    wrong = tmp_path / "scores.csv"
    wrong.write_text("utt_id,scores\n")
    with pytest.raises(UsageError, match="give a Parquet"):
        read_scores(wrong)
    no_column = tmp_path / "nocol.parquet"
    pq.write_table(pa.table({"utt_id": ["a"], "posterior": [[0.1]]}), no_column)
    with pytest.raises(UsageError, match="no 'scores' column"):
        read_scores(no_column)


@pytest.mark.parametrize("argv, option", [
    (["--fa-per-hour", "-1"], "--fa-per-hour"),
    (["--tolerance-s", "-1"], "--tolerance-s"),
    (["--debounce-s", "nan"], "--debounce-s"),
    (["--frame-shift-ms", "0"], "--frame-shift-ms"),
])
def test_bad_options_name_the_option(run, tmp_path, argv, option):
    scores = write_jsonl(tmp_path / "scores.jsonl", score_records(run))
    shell = cli(run, scores, "-o", tmp_path / "r.json", *argv)
    assert shell.exit_code == 2 and f"error: {option} " in shell.stderr, shell.output


def test_report_is_json_without_nan(run, tmp_path):
    """No negatives left (only positives scored, allow_missing): FA/h is undefined and written as null."""
    positives = {r["utt_id"] for r in rows(run) if len(r["anchor_times_s"])}
    scores = write_jsonl(tmp_path / "s.jsonl", [r for r in score_records(run) if r["utt_id"] in positives])
    shell = cli(run, scores, "-o", tmp_path / "r.json", "--allow-missing")
    assert shell.exit_code == 0, shell.output
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and json.loads(text)["at_targets"][0]["frr"] is None
    assert math.isnan(evaluate_run(run, scores, allow_missing=True).metrics.auc)


def test_an_extra_utterance_the_run_failed_names_the_runs_error(tmp_path, sample_run_with_a_failed_item):
    sample_run_with_a_failed_item(6)
    records = score_records(tmp_path / "kw") + [{"utt_id": "broken", "scores": [0.5] * 10}]
    result = evaluate_run(tmp_path / "kw", write_jsonl(tmp_path / "s.jsonl", records))
    assert result.exit_code == 1 and result.evaluated == 6
    (problem,) = result.problems
    assert problem.kind == "extra" and problem.reason.startswith("not in the run: it failed at stage ")
    assert "missing.TextGrid" in problem.reason or "no such file" in problem.reason.lower()
