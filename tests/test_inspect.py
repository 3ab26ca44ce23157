"""`anchorprep validate | stats | plot` on real runs (LJSpeech alignments, AMI audio, raise samples)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.inspect import validate_run
from anchorprep.shards.io import sha256_file

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RAISE = REPO / "sample_data" / "accel" / "raise_seated.csv"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def needs_matplotlib():
    return pytest.importorskip("matplotlib", reason="plotting needs matplotlib: pip install 'anchorprep[plot]'")


@pytest.fixture(scope="module")
def lj(realdata) -> Path:
    return realdata / "textgrid" / "ljspeech_mfa"


@pytest.fixture(scope="module")
def lj_manifest(lj, tmp_path_factory) -> Path:
    """Two aligned LJSpeech clips with audio, one whose files do not exist, one without audio, one without an id."""
    folder = tmp_path_factory.mktemp("lj")
    manifest = folder / "items.csv"
    manifest.write_text(
        "utt_id,audio_path,alignment_path,speaker\n"
        f"LJ002-0035,{lj / 'LJ002-0035.wav'},{lj / 'LJ002-0035.TextGrid'},lj\n"
        f"LJ002-0020,{lj / 'LJ002-0020.wav'},{lj / 'LJ002-0020.TextGrid'},lj\n"
        f"missing,{lj / 'nope.wav'},{lj / 'nope.TextGrid'},x\n"
        f"LJ001-0001,,{lj / 'LJ001-0001.TextGrid'},lj\n"
        f",,{lj / 'LJ001-0002.TextGrid'},lj\n"
    )
    return manifest


@pytest.fixture(scope="module")
def lj_run(lj_manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "kw"
    result = invoke("align", lj_manifest, "-o", out, "-k", "press", "-k", "thirteen", "--shard-size", "2", "-q")
    assert result.exit_code == 1, result.output  # two items fail: a missing file and an empty utt_id
    return out


@pytest.fixture()
def run_copy(lj_run, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(lj_run, out)
    return out


@pytest.fixture(scope="module")
def ami(realdata) -> Path:
    return realdata / "audio_vad" / "ami_lhotse" / "ES2011a.Headset-0-40s-46s.wav"


@pytest.fixture(scope="module")
def ami_manifest(ami, tmp_path_factory) -> Path:
    # raise_seated.csv has a raise at 1.996 s of sensor time: -0.596 s puts it at 1.40 s, near the
    # first VAD onset (about 1.49 s).
    manifest = tmp_path_factory.mktemp("ami") / "items.csv"
    manifest.write_text(f"utt_id,audio_path,accel_path,time_offset_s\nami,{ami},{RAISE},-0.596\n")
    return manifest


@pytest.fixture(scope="module")
def ami_runs(ami_manifest, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ami_runs")
    runs = {name: base / name for name in ("vad", "vadtargets", "accel", "merged")}
    assert invoke("vad", ami_manifest, "-o", runs["vad"], "--offsets", "-q").exit_code == 0
    assert invoke("vad", ami_manifest, "-o", runs["vadtargets"], "--targets", "vad", "-q").exit_code == 0
    result = invoke("accel", ami_manifest, "-o", runs["accel"], "--preset", "raise", "--vad", "--use-source", "vad",
                    "--use-source", "accel", "--agree-within-ms", "200", "-q")
    assert result.exit_code == 0, result.output
    result = invoke("merge", runs["vad"], runs["accel"], "-o", runs["merged"], "--use-source", "accel", "-q")
    assert result.exit_code == 0, result.output
    return runs


def rewrite_shard(out: Path, name: str, change, schema=None) -> None:
    """Rewrite one shard's rows through ``change(rows)`` and keep manifest.json's sha256 in step."""
    table = pq.read_table(out / name)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or table.schema), out / name, compression="zstd")
    manifest = json.loads((out / "manifest.json").read_text())
    for shard in manifest["shards"]:
        if shard["file"] == name:
            shard["sha256"] = sha256_file(out / name)
    (out / "manifest.json").write_text(json.dumps(manifest))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def problems(out: Path, *args) -> dict:
    result = invoke("validate", out, "--json", *args)
    report = json.loads(result.output)
    assert result.exit_code == (0 if report["ok"] else 1), result.output
    return report


SHARD0, SHARD1 = "data/anchors-00000-of-00003.parquet", "data/anchors-00001-of-00003.parquet"


# ------------------------------------------------------------------------------------------------
# validate


def test_validate_a_clean_run(lj_run):
    result = invoke("validate", lj_run)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "3 row(s)" in result.output and "2 error line(s)" in result.output
    report = problems(lj_run)
    assert report["ok"] and report["problems"] == []
    assert report["checked"]["shards"] == 3 and report["checked"]["rows"] == 3
    assert {"sha256", "distance", "target", "anchor_frames", "report", "items"} <= set(report["checked"]["checks"])


def test_validate_from_a_subprocess(lj_run):
    done = subprocess.run([sys.executable, "-m", "anchorprep", "validate", str(lj_run), "--json"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_validate_deep_rederives_alignment_rows(lj_run, lj_manifest):
    result = invoke("validate", lj_run, "--deep", "5")
    assert result.exit_code == 2 and "--inputs" in result.output
    report = problems(lj_run, "--deep", "5", "--inputs", lj_manifest)
    assert report["ok"], report["problems"]
    assert report["checked"]["deep_rows"] == 3 and report["checked"]["deep_inputs_fingerprint"] == "match"


def test_deep_catches_rows_that_are_consistent_but_not_what_the_inputs_give(run_copy, lj_manifest):
    # Move "press" from 1.09 s to 0.80 s and recompute frames, distance and targets to match:
    # every shallow check passes, only re-deriving from the alignment notices.
    from anchorprep.anchors import TargetWindow, anchor_distances, frame_targets
    from anchorprep.grid import FrameGrid

    def move(rows):
        row = next(r for r in rows if r["utt_id"] == "LJ002-0035")
        frames, _, _ = FrameGrid().time_to_frame(np.array([0.80]), row["num_frames"])
        row["anchor_times_s"], row["anchor_frames"] = [0.80], frames.tolist()
        row["distance"] = anchor_distances(frames, row["num_frames"]).tolist()
        row["target"] = frame_targets(frames, [1], row["num_frames"], TargetWindow(0, 30)).tolist()

    rewrite_shard(run_copy, SHARD0, move)
    assert problems(run_copy)["ok"]
    report = problems(run_copy, "--deep", "3", "--inputs", lj_manifest)
    assert report["problems_by_check"] == {"deep": 4}  # anchor times, frames, distance, target
    assert all(p["utt_id"] == "LJ002-0035" for p in report["problems"])
    assert "stored [0.8], re-derived [1.09]" in report["problems"][0]["detail"]


def _bump_distance(rows):
    rows[0]["distance"][5] += 1


def _bump_frame(rows):
    # The frame moves, and the distance and targets follow it: only the frame/time check fails.
    from anchorprep.anchors import TargetWindow, anchor_distances, frame_targets

    row = rows[0]
    row["anchor_frames"] = [row["anchor_frames"][0] + 3]
    row["distance"] = anchor_distances(np.array(row["anchor_frames"]), row["num_frames"]).tolist()
    row["target"] = frame_targets(np.array(row["anchor_frames"]), [1], row["num_frames"], TargetWindow(0, 30)).tolist()


def _flip_target(rows):
    rows[0]["target"][0] = 1


def _short_target(rows):
    rows[0]["target"] = rows[0]["target"][:-1]


def _unknown_label(rows):
    rows[0]["anchor_labels"] = ["yard"]


def _duration(rows):
    rows[0]["duration_s"] += 0.05


def _duplicate(rows):
    rows[0]["utt_id"] = "LJ002-0035"


@pytest.mark.parametrize("shard,change,check", [
    (SHARD0, _bump_distance, "distance"),
    (SHARD0, _bump_frame, "anchor_frames"),
    (SHARD0, _flip_target, "target"),
    (SHARD0, _short_target, "lengths"),
    (SHARD0, _unknown_label, "anchors"),
    (SHARD0, _duration, "num_frames"),
    (SHARD1, _duplicate, "utt_id"),
])
def test_validate_finds_inconsistent_rows(run_copy, shard, change, check):
    rewrite_shard(run_copy, shard, change)
    result = invoke("validate", run_copy)
    assert result.exit_code == 1 and "invalid" in result.output
    assert check in result.output
    report = problems(run_copy)
    assert set(report["problems_by_check"]) == {check}, report["problems"]


def test_validate_finds_edited_files(run_copy):
    # Same rows, different bytes: the hash notices, and the format (snappy, not zstd).
    table = pq.read_table(run_copy / SHARD0)
    pq.write_table(table, run_copy / SHARD0, compression="snappy")
    assert set(problems(run_copy)["problems_by_check"]) == {"sha256", "format"}


@pytest.mark.parametrize("how", ["uncompressed", "row_groups"])
def test_validate_finds_shards_rewritten_by_another_tool(run_copy, how):
    """Same rows and a manifest sha256 kept in step: before the format check only --deep could tell."""
    table = pq.read_table(run_copy / SHARD0)
    if how == "uncompressed":
        pq.write_table(table, run_copy / SHARD0, compression="none")
    else:
        pq.write_table(table, run_copy / SHARD0, compression="zstd", row_group_size=1)
    edit_json(run_copy / "manifest.json",
              lambda m: m["shards"][0].update(sha256=sha256_file(run_copy / SHARD0)))
    report = problems(run_copy)
    assert set(report["problems_by_check"]) == {"format"}, report["problems"]
    assert ("UNCOMPRESSED" if how == "uncompressed" else "2 row groups") in report["problems"][0]["detail"]


def test_validate_never_opens_a_shard_listed_outside_the_folder(run_copy):
    outside = run_copy.parent / Path(SHARD0).name
    shutil.copyfile(run_copy / SHARD0, outside)
    edit_json(run_copy / "manifest.json", lambda m: m["shards"][0].update(file="../" + outside.name))
    report = problems(run_copy)
    assert any(p["check"] == "layout" and "not a plain file name" in p["detail"] for p in report["problems"])
    assert report["checked"]["shards"] == 2  # the outside file was not read


def _swap_between_shards(out: Path) -> None:
    first, second = pq.read_table(out / SHARD0).to_pylist(), pq.read_table(out / SHARD1).to_pylist()
    rewrite_shard(out, SHARD0, lambda rows: rows.__setitem__(1, second[0]))
    rewrite_shard(out, SHARD1, lambda rows: rows.__setitem__(0, first[1]))


def _rename_error_line(out: Path) -> None:
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert lines[0]["utt_id"] == "missing"
    lines[0]["utt_id"] = "LJ002-0035"  # a written id
    (out / "errors.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize("tamper", ["reversed", "swapped", "renamed_error"])
def test_validate_checks_the_shard_plan_against_the_inputs(run_copy, lj_manifest, tamper):
    """Rows reversed within a shard, swapped between shards, or an error line renamed to a written
    id passed validate, even --deep; with the inputs, each shard must hold its planned items in order."""
    assert problems(run_copy, "--inputs", lj_manifest)["ok"]
    if tamper == "reversed":
        rewrite_shard(run_copy, SHARD0, lambda rows: rows.reverse())
    elif tamper == "swapped":
        _swap_between_shards(run_copy)
    else:
        _rename_error_line(run_copy)
    report = problems(run_copy, "--inputs", lj_manifest)
    assert set(report["problems_by_check"]) == {"plan"}, report["problems"]
    assert report["checked"]["plan_shards"] == 3


def test_validate_finds_shard_metadata_that_differs_from_the_manifest(run_copy):
    schema = pq.read_schema(run_copy / SHARD1)
    settings = json.loads(schema.metadata[b"anchorprep"])
    settings["anchor_rule"] = "nearest"
    rewrite_shard(run_copy, SHARD1, lambda rows: None,
                  schema.with_metadata({b"anchorprep": json.dumps(settings).encode()}))
    report = problems(run_copy)
    assert set(report["problems_by_check"]) == {"metadata"}
    assert "anchor_rule" in report["problems"][0]["detail"]


def test_validate_finds_edited_settings(run_copy):
    edit_json(run_copy / "manifest.json", lambda m: m["settings"]["targets"].update(positive_window=[0, 10]))
    checks = problems(run_copy)["problems_by_check"]
    assert {"settings", "metadata", "manifest", "target"} <= set(checks)  # hash, shards, run.json, targets


@pytest.mark.parametrize("edit,check", [
    (lambda out: edit_json(out / "report.json", lambda r: r.update(written=4)), "report"),
    (lambda out: edit_json(out / "report.json", lambda r: r.update(positives=3)), "report"),
    (lambda out: edit_json(out / "manifest.json", lambda m: m["shards"][0].update(rows=3)), "row_count"),
    (lambda out: edit_json(out / "manifest.json", lambda m: m.update(schema_version=2)), "schema"),
    (lambda out: (out / SHARD1).unlink(), "layout"),
    (lambda out: shutil.copy(out / SHARD0, out / "data" / "anchors-00000-of-00001.parquet"), "layout"),
    (lambda out: (out / "errors.jsonl").write_text((out / "errors.jsonl").read_text() + "{not json\n"), "errors"),
    (lambda out: (out / "errors.jsonl").write_text((out / "errors.jsonl").read_text().splitlines()[0] + "\n"), "items"),
])
def test_validate_finds_broken_run_files(run_copy, edit, check):
    edit(run_copy)
    result = invoke("validate", run_copy)
    assert result.exit_code == 1, result.output
    assert check in problems(run_copy)["problems_by_check"]


def test_validate_refuses_what_is_not_a_run(tmp_path, lj_run):
    assert invoke("validate", tmp_path / "nowhere").exit_code == 2
    assert invoke("validate", tmp_path).exit_code == 2
    assert invoke("validate", lj_run, "--deep", "-1").exit_code == 2
    unfinished = tmp_path / "unfinished"
    shutil.copytree(lj_run, unfinished)
    (unfinished / "manifest.json").unlink()
    result = invoke("validate", unfinished)
    assert result.exit_code == 1 and "unfinished" in result.output


def test_validate_multi_source_runs_deep(ami_runs, ami_manifest):
    for name in ("vad", "vadtargets", "merged"):
        report = validate_run(ami_runs[name], deep=1)
        assert report.ok, (name, report.problems)
        assert report.checked["deep_rows"] == 1
    assert invoke("validate", ami_runs["accel"], "--deep", "1").exit_code == 2  # sensor paths are not stored
    report = validate_run(ami_runs["accel"], deep=1, inputs=ami_manifest)
    assert report.ok, report.problems
    assert report.checked["deep_inputs_fingerprint"] == "match"


def test_validate_recomputes_the_distance_from_the_sources_it_uses(ami_runs, tmp_path):
    # The merged run's distance follows accel only; recomputing it from every anchor would differ.
    out = tmp_path / "merged"
    shutil.copytree(ami_runs["merged"], out)
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert settings["combine"]["distance_sources"] == ["accel"]

    def all_sources(rows):
        from anchorprep.anchors import anchor_distances

        rows[0]["distance"] = anchor_distances(np.array(rows[0]["anchor_frames"]), rows[0]["num_frames"]).tolist()

    rewrite_shard(out, "data/anchors-00000-of-00001.parquet", all_sources)
    assert set(problems(out)["problems_by_check"]) >= {"distance"}


# ------------------------------------------------------------------------------------------------
# stats


def test_stats_json(lj_run):
    result = invoke("stats", lj_run, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["utterances"] == {"in": 5, "written": 3, "failed": 2, "positives": 2, "negatives": 1,
                                   "positive_share": pytest.approx(2 / 3)}
    anchors = stats["anchors"]
    assert anchors["total"] == 2 and anchors["by_label"] == {"press": 1, "thirteen": 1}
    assert anchors["by_source"] == {"alignment": 2}
    assert anchors["time_s"]["min"] == pytest.approx(1.09) and anchors["time_s"]["max"] == pytest.approx(1.46)
    assert anchors["per_utterance"]["histogram"] == {"0": 1, "1": 2}
    assert anchors["relative_position"]["max"] == pytest.approx(1.46 / 1.5396, abs=1e-3)
    assert stats["durations_s"]["count"] == 3 and stats["durations_s"]["max"] == pytest.approx(9.655, abs=1e-3)
    assert stats["errors"]["by_stage"] == {"manifest": 1, "read_alignment": 1}
    assert {g["stage"] for g in stats["errors"]["by_reason"]} == {"manifest", "read_alignment"}
    assert stats["event_durations"]["available"] is False and "--edge" in stats["event_durations"]["reason"]
    assert stats["frames"]["targets"]["press"] == 31  # frames 107..137 of LJ002-0035


def test_stats_table(lj_run):
    result = invoke("stats", lj_run)
    assert result.exit_code == 0, result.output
    for text in ("positives / negatives", "anchors by label and source", "read_alignment", "distributions",
                 "event durations: keyword durations are not stored"):
        assert text in result.output


def test_stats_keyword_durations_from_a_second_edge(lj_manifest, lj_run, tmp_path):
    start = tmp_path / "start"
    invoke("align", lj_manifest, "-o", start, "-k", "press", "-k", "thirteen", "--edge", "start", "--shard-size", "2", "-q")
    stats = json.loads(invoke("stats", lj_run, "--json", "--other-edge", start).output)
    durations = stats["event_durations"]
    assert durations["available"] and durations["unpaired"] == 0
    # press 0.69-1.09 s and thirteen 0.71-1.46 s by the alignments.
    assert durations["seconds"]["min"] == pytest.approx(0.40) and durations["seconds"]["max"] == pytest.approx(0.75)
    assert invoke("stats", lj_run, "--other-edge", lj_run).exit_code == 2  # same edge twice


def test_stats_speech_segment_durations_and_png(ami_runs, tmp_path):
    stats = json.loads(invoke("stats", ami_runs["vad"], "--json").output)
    assert stats["event_durations"]["kind"] == "speech segment" and stats["event_durations"]["seconds"]["count"] == 2
    assert stats["anchors"]["by_label"] == {"speech_onset": 2, "speech_offset": 2}
    needs_matplotlib()
    png = tmp_path / "stats.png"
    result = invoke("stats", ami_runs["accel"], "--png", png)
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 20_000


# ------------------------------------------------------------------------------------------------
# plot


def png_facts(path: Path) -> tuple[tuple[int, int], int]:
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        return image.size, len(np.unique(pixels, axis=0))


def test_plot_an_alignment_run(lj, lj_run, tmp_path):
    needs_matplotlib()
    png = tmp_path / "lj.png"
    done = subprocess.run([sys.executable, "-m", "anchorprep", "plot", str(lj_run), "LJ002-0035", "-o", str(png),
                           "--alignment", str(lj / "LJ002-0035.TextGrid"), "--kernel", "linear", "--width", "20",
                           "--gain", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "panels: waveform, spectrogram, alignment, distance, weight" in done.stdout
    assert "note" not in done.stdout  # the alignment reproduces the row's anchor
    size, colours = png_facts(png)
    assert size == (1400, 1000)
    assert colours > 500 and png.stat().st_size > 50_000  # a spectrogram, not a blank canvas


def test_plot_says_when_the_alignment_is_not_the_runs(lj, lj_run, tmp_path):
    needs_matplotlib()
    result = invoke("plot", lj_run, "LJ002-0035", "-o", tmp_path / "x.png", "--alignment", lj / "LJ002-0020.TextGrid",
                    "--size", "900x700")
    assert result.exit_code == 0, result.output
    assert "is it the alignment this run used?" in result.output
    assert png_facts(tmp_path / "x.png")[0] == (900, 700)


def test_plot_without_audio_or_alignment(lj_run, tmp_path):
    needs_matplotlib()
    result = invoke("plot", lj_run, "LJ002-0020", "-o", tmp_path / "a.png", "--kernel", "gaussian",
                    "--width-before", "5", "--width-after", "40", "--gain", "3")
    assert result.exit_code == 0, result.output
    assert "pass --alignment" in result.output
    result = invoke("plot", lj_run, "LJ001-0001", "-o", tmp_path / "b.png")
    assert result.exit_code == 0 and "no waveform" in result.output
    assert "panels: distance, weight" in result.output


def test_plot_vad_and_accelerometer_panels(ami_runs, tmp_path):
    needs_matplotlib()
    png = tmp_path / "accel.png"
    result = invoke("plot", ami_runs["accel"], "ami", "-o", png, "--accel", RAISE, "--time-offset-s", "-0.596")
    assert result.exit_code == 0, result.output
    assert "panels: waveform, spectrogram, vad, accel, distance, weight" in result.output
    assert png_facts(png)[1] > 500
    result = invoke("plot", ami_runs["vadtargets"], "ami", "-o", tmp_path / "vad.png")
    assert result.exit_code == 0 and "vad" in result.output


def test_plot_usage_errors(lj_run, tmp_path):
    needs_matplotlib()
    png = tmp_path / "x.png"
    missing = invoke("plot", lj_run, "no-such-utt", "-o", png)
    assert missing.exit_code == 2 and "not in" in missing.output
    failed = invoke("plot", lj_run, "missing", "-o", png)
    assert failed.exit_code == 2 and "read_alignment" in failed.output
    assert invoke("plot", lj_run, "LJ002-0035", "-o", png, "--kernel", "triangle").exit_code == 2
    assert invoke("plot", lj_run, "LJ002-0035", "-o", png, "--size", "big").exit_code == 2
    assert not png.exists()


def test_plot_without_matplotlib_names_the_extra(lj_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    result = invoke("plot", lj_run, "LJ002-0035", "-o", tmp_path / "x.png")
    assert result.exit_code == 2
    assert "pip install 'anchorprep[plot]'" in result.output
    assert invoke("stats", lj_run, "--png", tmp_path / "s.png").exit_code == 2
