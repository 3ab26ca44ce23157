"""Input discovery (`anchorprep.sources.items`): one place for every pipeline, the CLI and `validate --deep`."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.errors import UsageError
from anchorprep.sources.alignments.rttm import write_rttm
from anchorprep.sources.items import ACCEL_SUFFIXES, accel_items, alignment_items, audio_items, read_manifest

runner = CliRunner()
AMI_WAV = "ES2011a.Headset-0-40s-46s.wav"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))


@pytest.fixture()
def ami_cuts(realdata) -> Path:
    return realdata / "audio_vad" / "ami_lhotse" / "cuts.json"


@pytest.fixture()
def ami_rttm(ami_cuts, tmp_path) -> tuple[Path, Path]:
    """An RTTM of the AMI fixture's human segmentation, and a wav.scp for its recording."""
    [cut] = json.loads(ami_cuts.read_text())
    rttm = tmp_path / "ami.rttm"
    write_rttm(rttm, [(s["recording_id"], s["speaker"], s["start"], s["duration"]) for s in cut["supervisions"]])
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text(f"{AMI_WAV} {ami_cuts.parent / AMI_WAV}\n")
    return rttm, wav_scp


@pytest.mark.parametrize(
    "text, fmt",
    [("utt_id,audio_path\na,x.wav\n", None), ("utt_id\taudio_path\na\tx.wav\n", None),
     ('\n{"utt_id": "a", "audio_path": "x.wav"}\n', None), ("utt_id;audio_path\na;x.wav\n", "csv")],
)
def test_manifest_from_stdin_is_sniffed_and_resolves_against_the_current_folder(monkeypatch, tmp_path, text, fmt):
    monkeypatch.chdir(tmp_path)
    stdin(monkeypatch, text)
    if fmt == "csv":  # a semicolon file read as CSV has one column: the required one is missing
        with pytest.raises(UsageError, match="standard input: manifest lacks column"):
            audio_items("-")
        return
    items = audio_items("-")
    assert items.to_dict("records") == [{"utt_id": "a", "audio_path": str(tmp_path / "x.wav")}]


def test_manifest_format_is_checked(tmp_path):
    with pytest.raises(UsageError, match="`manifest_format` must be one of"):
        read_manifest(tmp_path / "x.csv", manifest_format="xml")
    with pytest.raises(UsageError, match="unknown manifest format"):
        read_manifest(tmp_path / "x.rttm")


def test_accel_suffixes_are_defined_once(tmp_path):
    for suffix in ACCEL_SUFFIXES + (".wav",):
        (tmp_path / f"s{suffix.replace('.', '_')}{suffix}").write_text("t,x,y,z\n")
    found = accel_items(tmp_path)
    assert sorted(Path(p).suffix for p in found["accel_path"]) == sorted(ACCEL_SUFFIXES)
    assert list(found.columns) == ["utt_id", "accel_path"]


def test_alignment_items_picks_the_reader_by_input(ami_rttm, ami_cuts, tmp_path):
    rttm, wav_scp = ami_rttm
    assert alignment_items(rttm, wav_scp=wav_scp).to_dict("records") == [
        {"utt_id": AMI_WAV, "audio_path": str(ami_cuts.parent / AMI_WAV), "alignment_path": str(rttm)}]
    [cut] = alignment_items(ami_cuts).to_dict("records")
    assert cut["alignment_path"] == str(ami_cuts) and cut["duration_s"]
    with pytest.raises(UsageError, match="unknown manifest format"):  # lhotse only when the format allows it
        alignment_items(ami_cuts, alignment_format="ctm")


def test_validate_deep_rederives_rttm_runs(ami_rttm, tmp_path):
    rttm, wav_scp = ami_rttm
    out = tmp_path / "run"
    done = invoke("align", rttm, "--wav-scp", wav_scp, "--speech-onsets", "--tier", "speech", "-o", out, "-q")
    assert done.exit_code == 0, done.output
    result = invoke("validate", out, "--json", "--deep", "1", "--inputs", rttm)
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"], result.output
    assert report["checked"]["deep_rows"] == 1 and report["checked"]["deep_inputs_fingerprint"] == "match"


def test_validate_deep_rederives_lhotse_runs(ami_cuts, tmp_path):
    root = tmp_path / "lhotse"
    (root / "test" / "fixtures" / "ami").mkdir(parents=True)
    (root / "test" / "fixtures" / "ami" / AMI_WAV).symlink_to(ami_cuts.parent / AMI_WAV)
    cuts = tmp_path / "cuts.json"
    shutil.copy(ami_cuts, cuts)
    out = tmp_path / "run"
    done = invoke("align", cuts, "--audio-root", root, "--speech-onsets", "--tier", "speech", "-o", out, "-q")
    assert done.exit_code == 0, done.output
    result = invoke("validate", out, "--json", "--deep", "1", "--inputs", cuts)
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"], result.output
    assert report["checked"]["deep_rows"] == 1 and report["checked"]["deep_inputs_fingerprint"] == "match"
