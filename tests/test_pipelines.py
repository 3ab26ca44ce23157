"""`vad`, `accel` and `merge` end to end on real recordings and the bundled accelerometer samples."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.anchors import NO_ANCHOR
from anchorprep.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RAISES = REPO / "sample_data" / "accel"


def invoke(*args: str):
    result = runner.invoke(app, [*map(str, args), "-q"])
    return result


def rows(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [r for s in manifest["shards"] for r in pq.read_table(out / s["file"]).to_pylist()]


@pytest.fixture()
def ami(realdata) -> Path:
    return realdata / "audio_vad" / "ami_lhotse" / "ES2011a.Headset-0-40s-46s.wav"


def test_vad_first_onset_on_ami_matches_the_human_segmentation(ami, tmp_path):
    result = invoke("vad", ami.parent, "-o", tmp_path / "out", "--onsets", "first", "--offsets")
    assert result.exit_code == 0, result.output
    [row] = rows(tmp_path / "out")
    onset = row["anchor_times_s"][row["anchor_labels"].index("speech_onset")]
    assert abs(onset - 1.46) <= 0.05
    assert row["anchor_sources"] == ["vad", "vad"] and row["anchor_labels"] == ["speech_onset", "speech_offset"]
    settings = json.loads((tmp_path / "out" / "manifest.json").read_text())["settings"]
    assert settings["vad"]["mode"] == 3 and settings["vad"]["backend"] == "webrtc"
    assert settings["label_map"] == {"background": 0, "speech_onset": 1, "speech_offset": 2}


def test_vad_targets_mark_speech_frames(ami, tmp_path):
    assert invoke("vad", ami.parent, "-o", tmp_path / "out", "--targets", "vad").exit_code == 0
    [row] = rows(tmp_path / "out")
    target = np.array(row["target"])
    assert len(target) == row["num_frames"] == 598
    assert set(np.unique(target)) == {0, 1}
    # Silence before the first onset, speech right after it (frame centres at 12.5 ms + 10 ms * t).
    first = row["anchor_frames"][0]
    assert (target[: first - 2] == 0).all() and (target[first + 2: first + 20] == 1).all()


def test_vad_segments_and_search_region_from_an_earlier_alignment_run(realdata, tmp_path):
    lj = realdata / "textgrid" / "ljspeech_mfa"
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"utt_id,audio_path,alignment_path\nLJ002-0035,{lj / 'LJ002-0035.wav'},{lj / 'LJ002-0035.TextGrid'}\n")
    assert invoke("align", manifest, "-o", tmp_path / "kw", "-k", "eight").exit_code == 0
    [kw] = rows(tmp_path / "kw")
    assert kw["anchor_times_s"] == [pytest.approx(0.36)]
    # The 0.21 s pause after "eight" is shorter than the default smoothing keeps apart.
    short_pauses = ["--window-ms", "50", "--stop-ratio", "0.6", "--min-silence-ms", "50"]
    result = invoke("vad", manifest, "-o", tmp_path / "after", "--anchors-from", tmp_path / "kw", "--onsets", "first",
                    *short_pauses)
    assert result.exit_code == 0, result.output
    [row] = rows(tmp_path / "after")
    # "eight" ends at 0.36 s, then a pause; "the" starts at 0.57 s by the alignment.
    assert len(row["anchor_times_s"]) == 1 and 0.5 <= row["anchor_times_s"][0] <= 0.7
    assert invoke("vad", manifest, "-o", tmp_path / "all", "--onsets", "first", *short_pauses).exit_code == 0
    assert rows(tmp_path / "all")[0]["anchor_times_s"][0] < 0.05  # without the region: the first word


def accel_manifest(tmp_path: Path, audio: Path, offset_s: float) -> Path:
    manifest = tmp_path / f"accel_{offset_s}.csv"
    manifest.write_text(f"utt_id,audio_path,accel_path,time_offset_s\nami,{audio},{RAISES / 'raise_seated.csv'},{offset_s}\n")
    return manifest


def test_accel_peaks_land_on_the_audio_grid(ami, tmp_path):
    # raise_seated.csv has raises at 1.996, 5.494 and 8.994 s of sensor time; shift them by -1 s.
    result = invoke("accel", accel_manifest(tmp_path, ami, -1.0), "-o", tmp_path / "out", "--preset", "raise")
    assert result.exit_code == 0, result.output
    [row] = rows(tmp_path / "out")
    assert row["num_frames"] == 598  # the audio's grid (6 s), not the sensor's 12 s
    assert row["anchor_times_s"] == pytest.approx([0.996, 4.494], abs=0.02)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accel_peaks_outside_utterance"] == 1


def test_accel_and_vad_agreement_decides_positives(ami, tmp_path):
    # Shift the first raise to 1.40 s: within 200 ms of the VAD onset (about 1.49 s).
    near = invoke("accel", accel_manifest(tmp_path, ami, 1.40 - 1.996), "-o", tmp_path / "near", "--preset", "raise",
                  "--vad", "--use-source", "vad", "--use-source", "accel", "--agree-within-ms", "200")
    assert near.exit_code == 0, near.output
    [row] = rows(tmp_path / "near")
    assert set(row["anchor_sources"]) == {"vad", "accel"}
    onset_frame = row["anchor_frames"][row["anchor_sources"].index("vad")]
    assert row["distance"][onset_frame] == 0  # the distance follows the agreeing VAD onset
    # A raise 2.5 s after the first speech onset agrees with nothing: a negative, anchors kept.
    far = invoke("accel", accel_manifest(tmp_path, ami, 4.0 - 1.996), "-o", tmp_path / "far", "--preset", "raise",
                 "--vad", "--use-source", "vad", "--use-source", "accel", "--agree-within-ms", "200")
    assert far.exit_code == 0, far.output
    [far_row] = rows(tmp_path / "far")
    vad_onsets = [t for t, s in zip(far_row["anchor_times_s"], far_row["anchor_sources"]) if s == "vad"]
    accel_peaks = [t for t, s in zip(far_row["anchor_times_s"], far_row["anchor_sources"]) if s == "accel"]
    assert accel_peaks == [pytest.approx(4.0, abs=0.02)] and len(vad_onsets) == 2  # AMI: about 1.49 and 3.37 s
    assert all(abs(accel_peaks[0] - v) > 0.2 for v in vad_onsets)
    assert set(far_row["distance"]) == {NO_ANCHOR} and set(far_row["target"]) == {0}
    report = json.loads((tmp_path / "far" / "report.json").read_text())
    assert report["negatives"] == 1 and report["anchors_without_agreement"] == 2


def test_merge_combines_runs_by_utt_id(ami, tmp_path):
    manifest = accel_manifest(tmp_path, ami, -1.0)
    assert invoke("vad", manifest, "-o", tmp_path / "vad").exit_code == 0
    assert invoke("accel", manifest, "-o", tmp_path / "accel", "--preset", "raise").exit_code == 0
    result = invoke("merge", tmp_path / "vad", tmp_path / "accel", "-o", tmp_path / "merged", "--use-source", "accel")
    assert result.exit_code == 0, result.output
    [vad_row], [accel_row], [merged] = rows(tmp_path / "vad"), rows(tmp_path / "accel"), rows(tmp_path / "merged")
    assert sorted(merged["anchor_times_s"]) == sorted(vad_row["anchor_times_s"] + accel_row["anchor_times_s"])
    assert merged["distance"] == accel_row["distance"]  # only accel anchors drive the distance
    settings = json.loads((tmp_path / "merged" / "manifest.json").read_text())["settings"]
    assert settings["label_map"] == {"background": 0, "speech_onset": 1, "accel_peak": 2}
    assert settings["combine"]["distance_sources"] == ["accel"]


def test_merge_of_runs_with_different_passthrough_columns(tmp_path):
    """An utterance only a run without `speaker`/`text`/`split` has gets "" there (it crashed the run)."""
    assert invoke("vad", REPO / "sample_data" / "manifest.csv", "-o", tmp_path / "vad").exit_code == 0
    assert invoke("accel", RAISES, "-o", tmp_path / "accel", "--preset", "raise").exit_code == 0
    result = invoke("merge", tmp_path / "vad", tmp_path / "accel", "-o", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    merged = {row["utt_id"]: row for row in rows(tmp_path / "merged")}
    accel_only = [row for utt, row in merged.items() if utt.startswith("raise_")]
    assert len(merged) == 24 + len(accel_only) and accel_only
    assert all(row["speaker"] == "" and set(row["anchor_sources"]) == {"accel"} for row in accel_only)
    assert merged["utt00001-pos"]["speaker"] == "en-us"


def test_merge_refuses_runs_on_different_grids(ami, tmp_path):
    manifest = accel_manifest(tmp_path, ami, -1.0)
    assert invoke("vad", manifest, "-o", tmp_path / "vad").exit_code == 0
    assert invoke("accel", manifest, "-o", tmp_path / "accel", "--preset", "raise", "--frame-shift-ms", "20").exit_code == 0
    result = invoke("merge", tmp_path / "vad", tmp_path / "accel", "-o", tmp_path / "merged")
    assert result.exit_code == 2 and "same grid" in result.output


def test_align_from_kaldi_ctm_files(realdata, tmp_path):
    lhotse = realdata / "ctm" / "lhotse" / "supervision.ctm"
    result = invoke("align", lhotse, "-o", tmp_path / "lhotse", "-k", "first segment")
    assert result.exit_code == 0, result.output
    [row] = rows(tmp_path / "lhotse")
    assert row["utt_id"] == "recording-1" and row["anchor_times_s"] == [pytest.approx(0.40)]
    assert row["duration_s"] == pytest.approx(0.40)  # no audio: the CTM's last word end

    # SCTK reference CTM with channels A and B: pick a speaker (channel).
    tima = realdata / "ctm" / "sctk" / "tima_ref.ctm"
    result = invoke("align", tima, "-o", tmp_path / "tima", "-k", "what", "--speaker", "A", "--edge", "start")
    assert result.exit_code == 0, result.output
    [row] = rows(tmp_path / "tima")
    assert row["anchor_times_s"][0] == pytest.approx(1.31)


def test_align_ctm_with_segments_and_audio(realdata, tmp_path):
    eesen = realdata / "ctm" / "eesen"
    # The CTM's file id names a recording-relative segment; give Kaldi data-dir files for it.
    recording = "test2-1---0000.000-0006.460"
    (tmp_path / "segments").write_text(f"utt-a {recording} 0.00 5.00\nutt-b {recording} 5.00 6.46\n")
    (tmp_path / "wav.scp").write_text(f"{recording} {eesen / 'test2.wav'}\n")
    result = invoke("align", eesen / "test2.partial.ctm", "-o", tmp_path / "out", "-k", "support",
                    "--segments", tmp_path / "segments", "--wav-scp", tmp_path / "wav.scp")
    assert result.exit_code == 0, result.output
    by_id = {r["utt_id"]: r for r in rows(tmp_path / "out")}
    # "support" spans 5.25-6.45 s of the recording: utterance-relative end 1.45 s in utt-b.
    assert by_id["utt-b"]["anchor_times_s"] == [pytest.approx(1.45)]
    assert by_id["utt-b"]["start_s"] == pytest.approx(5.0) and by_id["utt-b"]["duration_s"] == pytest.approx(1.46)
    assert by_id["utt-a"]["anchor_times_s"] == []


def test_align_speech_onsets_from_alignments_match_the_ground_truth(realdata, tmp_path):
    """Speech onsets from MFA alignments: the realdata README's onset truths."""
    grids = realdata / "textgrid"
    truth = {"acoustic_corpus": 1.05, "cold_corpus": 1.24, "cold_corpus3": 0.88}
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,audio_path,alignment_path\n" + "".join(
        f"{u},{grids / 'mfa_tests' / (u + '.wav')},{grids / 'mfa_tests' / (u + '.TextGrid')}\n" for u in truth))
    result = invoke("align", manifest, "-o", tmp_path / "out", "--speech-onsets", "--min-pause-ms", "300")
    assert result.exit_code == 0, result.output
    for row in rows(tmp_path / "out"):
        assert row["anchor_times_s"][0] == pytest.approx(truth[row["utt_id"]], abs=1e-6)
        assert set(row["anchor_labels"]) == {"speech_onset"}
        assert len(row["anchor_times_s"]) > 1  # pauses of 300 ms or more start new speech runs
    assert invoke("align", manifest, "-o", tmp_path / "x", "--speech-onsets", "-k", "this").exit_code == 2


def test_sample_trigger_corpus_vad_accel_merge(tmp_path):
    """The bundled multi-modal sample: wrist raises 0.3 s before speech, merged with agreement."""
    manifest = REPO / "sample_data" / "trigger_manifest.csv"
    assert invoke("vad", manifest, "-o", tmp_path / "vad", "--onsets", "first").exit_code == 0
    assert invoke("accel", manifest, "-o", tmp_path / "accel", "--preset", "raise").exit_code == 0
    for tolerance, positives in (("500", 3), ("100", 0)):
        out = tmp_path / f"merged{tolerance}"
        result = invoke("merge", tmp_path / "vad", tmp_path / "accel", "-o", out,
                        "--use-source", "vad", "--use-source", "accel", "--agree-within-ms", tolerance)
        assert result.exit_code == 0, result.output
        merged = rows(out)
        assert len(merged) == 3 and all(sorted(r["anchor_sources"]) == ["accel", "vad"] for r in merged)
        for row in merged:
            raise_time = row["anchor_times_s"][row["anchor_sources"].index("accel")]
            onset = row["anchor_times_s"][row["anchor_sources"].index("vad")]
            assert 0.2 <= onset - raise_time <= 0.45  # the raise peaks about 0.3 s before speech
        assert json.loads((out / "report.json").read_text()).get("positives", 0) == positives
