"""lhotse / RTTM inputs and lhotse / WeKws / Hugging Face outputs, on the shared real data.

Real files first: the lhotse AMI fixture (``audio_vad/ami_lhotse/cuts.json`` + its WAV), the
MFA LJSpeech alignments with their audio, and RTTMs written from the AMI supervisions. Tests that
need lhotse or datasets skip, saying so, when the package is not installed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.errors import InputError, UsageError
from anchorprep.interop import MissingDependencyError, export_wekws, hf_data_files, run_rows, wekws_label, wekws_token
from anchorprep.interop.lhotse_export import MISSING as MISSING_MODES
from anchorprep.pipeline.align import AlignJob, AlignOptions
from anchorprep.pipeline.rows import Labelling
from anchorprep.pipeline.runner import RunOptions, run
from anchorprep.anchors import SPEECH_ONSET, TargetWindow
from anchorprep.grid import FrameGrid
from anchorprep.sources.alignments.keywords import select_word_tier, speech_run_starts
from anchorprep.sources.alignments.lhotse import is_lhotse_manifest, lhotse_items, manifest_kind, read_lhotse
from anchorprep.sources.alignments.rttm import is_rttm, read_rttm, write_rttm
from anchorprep.sources.alignments.textgrid import read_textgrid
from anchorprep.sources.items import item_table, rttm_items

runner = CliRunner()

AMI_WAV = "ES2011a.Headset-0-40s-46s.wav"
AMI_CUT = "a7889ee6-1703-4d0d-98b3-91f1d45a790d"
H1, H2 = "ES2011a.Headset-1", "ES2011a.Headset-2"
SUP1, SUP2 = "ES2011a.Headset-0-40s-46s-0-3", "ES2011a.Headset-0-40s-46s-0-4"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_lhotse = pytest.mark.skipif(not _has("lhotse"), reason="lhotse is not installed (pip install 'anchorprep[lhotse]')")
needs_datasets = pytest.mark.skipif(not _has("datasets"), reason="datasets is not installed (pip install 'anchorprep[hf]')")


def labelling(labels: tuple[str, ...], snip_edges: bool = True) -> Labelling:
    return Labelling(FrameGrid(snip_edges=snip_edges), TargetWindow.parse("0:30", 0), labels, "causal")


def run_align(items, out: Path, snip_edges: bool = True, unit: str = "auto", **options) -> list[dict]:
    labels = (SPEECH_ONSET,) if options.get("speech_onsets") else tuple(options["keywords"])
    job = AlignJob(labelling(labels, snip_edges), AlignOptions(**options, lhotse_unit=unit))
    result = run(job, items, RunOptions(out_dir=out, quiet=True))
    assert result.exit_code == 0, (out / "errors.jsonl").read_text() if (out / "errors.jsonl").exists() else result
    return shard_rows(out)


def shard_rows(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [r for s in manifest["shards"] for r in pq.read_table(out / s["file"]).to_pylist()]


# --------------------------------------------------------------------------------------------
# Fixtures: the real lhotse AMI cut and the LJSpeech MFA alignments


@pytest.fixture()
def ami_cuts(realdata) -> Path:
    return realdata / "audio_vad" / "ami_lhotse" / "cuts.json"


@pytest.fixture()
def ami_tree(realdata, ami_cuts, tmp_path) -> tuple[Path, Path]:
    """The cut manifest and an audio root laid out as lhotse's repository has it.

    The manifest's source is ``test/fixtures/ami/<wav>``, relative to the lhotse checkout (lhotse
    resolves relative sources against the working directory); ``audio_root`` plays that role.
    """
    root = tmp_path / "lhotse"
    (root / "test" / "fixtures" / "ami").mkdir(parents=True)
    (root / "test" / "fixtures" / "ami" / AMI_WAV).symlink_to(ami_cuts.parent / AMI_WAV)
    cuts = tmp_path / "cuts.json"
    shutil.copy(ami_cuts, cuts)
    return cuts, root


@pytest.fixture()
def lj(realdata) -> Path:
    return realdata / "textgrid" / "ljspeech_mfa"


def lj_words(lj: Path, utt: str) -> list[list]:
    """The MFA word intervals of an LJSpeech utterance as lhotse AlignmentItems (serialised)."""
    tier = read_textgrid(lj / f"{utt}.TextGrid").get_tier("words")
    return [[iv.label, iv.start, round(iv.end - iv.start, 8), None] for iv in tier.intervals if iv.label]


def lj_cut(lj: Path, utt: str, cut_id: str, start: float = 0.0, words: bool = True) -> dict:
    """A MonoCut record as lhotse >= 1.8 serialises it, cut ``start`` seconds into the recording.

    Like ``cut.truncate(offset=start)``: the supervision start becomes relative to the cut
    (negative here) while the alignment items stay relative to the recording.
    """
    import soundfile

    info = soundfile.info(str(lj / f"{utt}.wav"))
    duration = info.frames / info.samplerate
    sup = {"id": utt, "recording_id": utt, "start": -start, "duration": duration, "channel": 0,
           "text": "whatever", "speaker": "LJ"}
    if words:
        sup["alignment"] = {"word": lj_words(lj, utt)}
    recording = {"id": utt, "sources": [{"type": "file", "channels": [0], "source": str(lj / f"{utt}.wav")}],
                 "sampling_rate": info.samplerate, "num_samples": info.frames, "duration": duration, "channel_ids": [0]}
    return {"id": cut_id, "start": start, "duration": round(duration - start, 8), "channel": 0,
            "supervisions": [sup], "recording": recording, "type": "MonoCut"}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def tiers(alignment) -> dict[str, list[tuple[float, float, str]]]:
    return {t.name: [(iv.start, iv.end, iv.label) for iv in t.intervals] for t in alignment.tiers}


# --------------------------------------------------------------------------------------------
# lhotse input


def test_lhotse_real_cut_manifest_gives_per_speaker_tiers_in_cut_time(ami_cuts):
    assert is_lhotse_manifest(ami_cuts) and manifest_kind(ami_cuts) == "cut"
    [(cut_id, alignment)] = read_lhotse(ami_cuts).items()
    assert cut_id == AMI_CUT and (alignment.xmin, alignment.xmax) == (0.0, 6.0)
    assert tiers(alignment) == {
        f"{H1} - words": [(1.46, 2.82, "<unk>")],  # no word alignment: the supervision as unknown speech
        f"{H2} - words": [(3.36, 4.36, "<unk>")],
        "speech": [(1.46, 2.82, "speech"), (3.36, 4.36, "speech")],
    }
    assert alignment.meta["speakers"] == [H1, H2] and alignment.meta["unaligned"] == [SUP1, SUP2]
    # --speaker picks a speaker; the speech tier holds everyone's speech.
    assert speech_run_starts(select_word_tier(alignment, speaker=H2)) == [3.36]
    assert speech_run_starts(select_word_tier(alignment, tier="speech")) == [1.46, 3.36]
    with pytest.raises(InputError, match="2 speakers"):
        select_word_tier(alignment)


def test_lhotse_supervision_unit_is_relative_to_the_supervision(ami_cuts):
    by_id = read_lhotse(ami_cuts, unit="supervision")
    assert list(by_id) == [SUP1, SUP2]
    assert tiers(by_id[SUP1]) == {"words": [(0.0, 1.36, "<unk>")], "speech": [(0.0, 1.36, "speech")]}
    assert by_id[SUP2].xmax == 1.0 and by_id[SUP2].meta["start"] == 3.36
    # A single speaker: the plain tier is picked, and --speaker naming that speaker is accepted.
    assert select_word_tier(by_id[SUP1], speaker=H1).name == "words"


@pytest.mark.parametrize("name", ["cuts.jsonl", "cuts.jsonl.gz", "cuts.json.gz"])
def test_lhotse_jsonl_and_gzip_read_like_the_json_list(ami_cuts, tmp_path, name):
    records = json.loads(ami_cuts.read_text())
    path = tmp_path / name
    if name == "cuts.json.gz":
        path.write_bytes(gzip.compress(json.dumps(records, indent=1).encode()))
    else:
        write_jsonl(path, records)
    assert is_lhotse_manifest(path)
    assert {k: tiers(a) for k, a in read_lhotse(path).items()} == {k: tiers(a) for k, a in read_lhotse(ami_cuts).items()}
    assert lhotse_items(path).drop_columns("alignment_path").equals(lhotse_items(ami_cuts).drop_columns("alignment_path"))


def test_lhotse_items_take_audio_from_file_sources(ami_tree, tmp_path):
    cuts, root = ami_tree
    [item] = lhotse_items(cuts, audio_root=root).to_pylist()
    assert item["utt_id"] == AMI_CUT and Path(item["audio_path"]).resolve() == (cuts.parent / "lhotse" / "test" / "fixtures" / "ami" / AMI_WAV).resolve()
    assert Path(item["audio_path"]).is_file() and os.path.isabs(item["audio_path"])
    assert (float(item["start_s"]), float(item["duration_s"])) == (0.0, 6.0)
    assert item["text"] == "I'M ABIGAIL CLAFLIN YOU CAN CALL ME ABBIE" and item["speaker"] == f"{H1},{H2}"
    sups = lhotse_items(cuts, "supervision", audio_root=root)
    assert sups["utt_id"].to_pylist() == [SUP1, SUP2]
    assert [float(v) for v in sups["start_s"].to_pylist()] == [1.46, 3.36]
    assert [float(v) for v in sups["duration_s"].to_pylist()] == [1.36, 1.0]
    assert sups["text"].to_pylist() == ["I'M ABIGAIL CLAFLIN", "YOU CAN CALL ME ABBIE"]
    # Speed perturbation changes the timing: the raw file is not the cut's audio any more.
    record = json.loads(cuts.read_text())[0]
    record["recording"]["transforms"] = [{"name": "Speed", "kwargs": {"factor": 1.1}}]
    assert lhotse_items(write_jsonl(tmp_path / "sp.jsonl", [record]), audio_root=root)["audio_path"].to_pylist() == [""]
    record["recording"]["transforms"] = [{"name": "Resample", "kwargs": {"source_sampling_rate": 16000, "target_sampling_rate": 8000}}]
    assert lhotse_items(write_jsonl(tmp_path / "rs.jsonl", [record]), audio_root=root)["audio_path"].to_pylist() != [""]


def test_lhotse_word_alignments_are_shifted_from_recording_to_utterance_time(lj, tmp_path):
    """lhotse keeps AlignmentItem.start relative to the recording, even inside a truncated cut."""
    path = write_jsonl(tmp_path / "cuts.jsonl.gz", [lj_cut(lj, "LJ002-0035", "whole"),
                                                      lj_cut(lj, "LJ002-0035", "from-0.5", start=0.5)])
    by_id = read_lhotse(path)
    assert tiers(by_id["whole"])["words"] == [(0.0, 0.36, "eight"), (0.57, 0.69, "the"), (0.69, 1.09, "press"), (1.09, 1.51, "yard")]
    # Cut 0.5 s in: "eight" (midpoint 0.18 s) is before the cut and dropped, "the" (midpoint
    # 0.63 s) is clipped to the cut start, "press" ends at 1.09 - 0.5 = 0.59 s.
    assert tiers(by_id["from-0.5"])["words"] == [(0.07, 0.19, "the"), (0.19, 0.59, "press"), (0.59, 1.01, "yard")]
    assert by_id["from-0.5"].xmax == pytest.approx(1.5976871 - 0.5)
    assert by_id["whole"].meta["unaligned"] == [] and tiers(by_id["whole"])["speech"] == [(0.0, 1.59768707, "speech")]
    # Supervision unit in a truncated cut: the supervision starts 0.5 + (-0.5) = 0 s into the recording.
    sup = read_lhotse(write_jsonl(tmp_path / "one.jsonl", [lj_cut(lj, "LJ002-0035", "from-0.5", start=0.5)]), unit="supervision")
    assert tiers(sup["LJ002-0035"])["words"][3] == (1.09, 1.51, "yard")
    # The pre-1.8 serialisation of AlignmentItem (objects) reads the same.
    old = lj_cut(lj, "LJ002-0035", "whole")
    old["supervisions"][0]["alignment"]["word"] = [dict(zip(("symbol", "start", "duration"), w)) for w in lj_words(lj, "LJ002-0035")]
    assert tiers(read_lhotse(write_jsonl(tmp_path / "old.jsonl", [old]))["whole"]) == tiers(by_id["whole"])


def test_lhotse_supervision_set_mixed_cut_and_phones(lj, tmp_path):
    record = lj_cut(lj, "LJ002-0035", "c")
    sup = dict(record["supervisions"][0], start=0.25, duration=1.0)
    sup["alignment"] = {"word": [["press", 0.69, 0.4]], "phone": [["P", 0.69, 0.1], ["R", 0.79, 0.1]]}
    path = write_jsonl(tmp_path / "supervisions.jsonl", [sup])
    assert manifest_kind(path) == "supervision"
    [(sid, alignment)] = read_lhotse(path).items()
    assert sid == "LJ002-0035" and tiers(alignment)["words"] == [(0.44, 0.84, "press")]
    assert tiers(alignment)["phones"] == [(0.44, 0.54, "P"), (0.54, 0.64, "R")]
    with pytest.raises(UsageError, match="SupervisionSet has no cuts"):
        read_lhotse(path, unit="cut")
    recordings = write_jsonl(tmp_path / "recordings.jsonl", [record["recording"]])
    [item] = lhotse_items(path, recordings=recordings).to_pylist()
    assert item["audio_path"] == str(lj / "LJ002-0035.wav") and float(item["start_s"]) == 0.25
    with pytest.raises(InputError, match="RecordingSet"):
        read_lhotse(recordings)
    # A MixedCut (e.g. after cut.pad or mix): the track offset moves its supervisions.
    padding = {"id": "pad", "duration": 0.3, "num_frames": 30, "num_features": 80, "frame_shift": 0.01,
               "num_samples": 6615, "sampling_rate": 22050, "type": "PaddingCut"}
    mixed = {"id": "mix", "type": "MixedCut",
             "tracks": [{"cut": padding}, {"cut": lj_cut(lj, "LJ002-0035", "c", start=0.5), "offset": 0.3}]}
    by_id = read_lhotse(write_jsonl(tmp_path / "mixed.jsonl", [mixed]))
    assert tiers(by_id["mix"])["words"][1] == (0.49, 0.89, "press")  # 1.09 - 0.5 + 0.3
    assert by_id["mix"].xmax == pytest.approx(0.3 + 1.0976871)
    assert lhotse_items(tmp_path / "mixed.jsonl")["audio_path"].to_pylist() == [""]  # no single file holds a mix


def test_lhotse_bad_records_fail_their_own_utterance(lj, tmp_path):
    good = lj_cut(lj, "LJ002-0035", "good")
    bad_time = lj_cut(lj, "LJ002-0035", "bad-time")
    bad_time["supervisions"][0]["alignment"]["word"][1][1] = "0.57"
    overlap = lj_cut(lj, "LJ002-0035", "overlap")
    overlap["supervisions"].append(dict(overlap["supervisions"][0], id="second"))
    negative = dict(lj_cut(lj, "LJ002-0035", "negative"), duration=-1.0)
    path = write_jsonl(tmp_path / "cuts.jsonl", [good, bad_time, overlap, negative, good])
    errors: dict = {}
    result = read_lhotse(path, errors=errors)
    assert list(result) == ["good"]  # the repeated id keeps its first record
    assert set(errors) == {"bad-time", "overlap", "negative"}
    assert "line 2" in str(errors["bad-time"]) and "start '0.57' is not a finite number" in str(errors["bad-time"])
    assert "overlap" in str(errors["overlap"]) and "duration is negative" in str(errors["negative"])
    with pytest.raises(InputError, match="line 2"):
        read_lhotse(path)
    # Every utterance stays an item, so failures end in errors.jsonl.
    assert lhotse_items(path)["utt_id"].to_pylist() == ["good", "bad-time", "overlap", "negative", "good"]
    # Whole-file problems.
    (tmp_path / "broken.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        read_lhotse(tmp_path / "broken.jsonl")
    with pytest.raises(UsageError, match="not valid JSON"):
        lhotse_items(tmp_path / "broken.jsonl")


def test_lhotse_sniffing_keeps_anchorprep_manifests_and_mfa_json_apart(realdata, tmp_path, ami_cuts):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(json.dumps({"utt_id": "a", "audio_path": "a.wav", "alignment_path": "a.TextGrid"}) + "\n")
    mfa = tmp_path / "mfa.json"
    mfa.write_text(json.dumps({"start": 0, "end": 1, "tiers": {"words": {"type": "interval", "entries": []}}}))
    assert not is_lhotse_manifest(manifest) and not is_lhotse_manifest(mfa)
    assert not is_lhotse_manifest(realdata / "textgrid" / "ljspeech_mfa" / "LJ002-0035.TextGrid")
    assert is_lhotse_manifest(ami_cuts) and is_lhotse_manifest(manifest, "lhotse") and not is_lhotse_manifest(ami_cuts, "ctm")


@needs_lhotse
def test_lhotse_reader_agrees_with_lhotse_itself(lj, tmp_path):
    """Cuts made and saved by lhotse: word times equal lhotse's own trim_to_alignments pieces."""
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem

    recording = Recording.from_file(lj / "LJ002-0035.wav", recording_id="LJ002-0035")
    words = [AlignmentItem(symbol, start, duration) for symbol, start, duration, _ in lj_words(lj, "LJ002-0035")]
    sup = SupervisionSegment("LJ002-0035", "LJ002-0035", 0.0, recording.duration, channel=0, text="eight the press yard",
                             speaker="LJ", alignment={"word": words})
    cut = MonoCut("whole", start=0.0, duration=recording.duration, channel=0, recording=recording, supervisions=[sup])
    cuts = CutSet.from_cuts([cut, cut.truncate(offset=0.5, preserve_id=False).with_id("from-0.5")])
    path = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(path)
    by_id = read_lhotse(path)
    back = {c.id: c for c in CutSet.from_file(path)}
    whole = back["whole"]
    pieces = [(p.start - whole.start, p.start - whole.start + p.duration, p.supervisions[0].text)
              for p in whole.trim_to_alignments("word")]
    got = tiers(by_id["whole"])["words"]
    assert [w for _, _, w in got] == [w for _, _, w in pieces] == ["eight", "the", "press", "yard"]
    for (b, e, _), (pb, pe, _) in zip(got, pieces):  # lhotse snaps its pieces to whole samples
        assert b == pytest.approx(pb, abs=1 / 22050) and e == pytest.approx(pe, abs=1 / 22050)
    # lhotse's truncate shifts the supervision (start -0.5) but leaves the words on recording time.
    truncated = back["from-0.5"].supervisions[0]
    assert truncated.start == -0.5 and truncated.alignment["word"][2] == ("press", 0.69, 0.4, None)
    assert tiers(by_id["from-0.5"])["words"] == [(0.07, 0.19, "the"), (0.19, 0.59, "press"), (0.59, 1.01, "yard")]
    [item] = [i for i in lhotse_items(path, unit="cut").to_pylist() if i["utt_id"] == "from-0.5"]
    assert float(item["start_s"]) == 0.5 and item["audio_path"] == str(lj / "LJ002-0035.wav")


# --------------------------------------------------------------------------------------------
# lhotse -> align


def test_align_keyword_from_lhotse_word_alignment_in_a_truncated_cut(lj, tmp_path):
    path = write_jsonl(tmp_path / "cuts.jsonl.gz", [lj_cut(lj, "LJ002-0035", "whole"),
                                                      lj_cut(lj, "LJ002-0035", "from-0.5", start=0.5),
                                                      lj_cut(lj, "LJ002-0020", "other")])
    rows = {r["utt_id"]: r for r in run_align(lhotse_items(path), tmp_path / "out", keywords=("press",))}
    assert rows["whole"]["anchor_times_s"] == [1.09] and rows["whole"]["audio_path"] == str(lj / "LJ002-0035.wav")
    assert rows["from-0.5"]["anchor_times_s"] == [pytest.approx(0.59)] and rows["from-0.5"]["start_s"] == 0.5
    assert rows["other"]["anchor_times_s"] == [] and set(rows["other"]["distance"]) == {32767}


def test_align_speech_onsets_from_the_real_lhotse_segmentation(ami_tree, tmp_path):
    cuts, root = ami_tree
    [row] = run_align(lhotse_items(cuts, audio_root=root), tmp_path / "all", speech_onsets=True, tier="speech")
    assert row["utt_id"] == AMI_CUT and row["num_frames"] == 598
    assert row["anchor_times_s"] == [1.46, 3.36] and row["anchor_labels"] == [SPEECH_ONSET] * 2
    # Causal rule: the first frame whose end (t * 10 ms + 25 ms) reaches the onset.
    assert row["anchor_frames"] == [144, 334]
    [row] = run_align(lhotse_items(cuts, audio_root=root), tmp_path / "h2", speech_onsets=True, speaker=H2)
    assert row["anchor_times_s"] == [3.36]


# --------------------------------------------------------------------------------------------
# RTTM


@pytest.fixture()
def ami_rttm(ami_cuts, tmp_path) -> Path:
    """An RTTM of the AMI fixture's human segmentation, written from the lhotse supervisions."""
    [cut] = json.loads(ami_cuts.read_text())
    path = tmp_path / "ami.rttm"
    write_rttm(path, [(s["recording_id"], s["speaker"], s["start"], s["duration"]) for s in cut["supervisions"]])
    return path


def test_rttm_from_ami_supervisions_gives_the_human_onsets(ami_rttm):
    assert ami_rttm.read_text().splitlines()[0] == f"SPEAKER {AMI_WAV} 1 1.46 1.36 <NA> <NA> {H1} <NA> <NA>"
    [(recording, alignment)] = read_rttm(ami_rttm).items()
    assert recording == AMI_WAV and alignment.meta["speakers"] == [H1, H2]
    assert tiers(alignment) == {f"{H1} - words": [(1.46, 2.82, "speech")], f"{H2} - words": [(3.36, 4.36, "speech")],
                                "speech": [(1.46, 2.82, "speech"), (3.36, 4.36, "speech")]}
    assert speech_run_starts(select_word_tier(alignment, speaker=H1)) == [1.46]
    assert speech_run_starts(select_word_tier(alignment, speaker=H2)) == [3.36]
    assert speech_run_starts(alignment.get_tier("speech")) == [1.46, 3.36]


def test_align_speech_onsets_from_rttm(ami_rttm, ami_cuts, tmp_path):
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text(f"{AMI_WAV} {ami_cuts.parent / AMI_WAV}\n")
    items = rttm_items(ami_rttm, wav_scp)
    assert items.to_pylist() == [{"utt_id": AMI_WAV, "audio_path": str(ami_cuts.parent / AMI_WAV),
                                         "alignment_path": str(ami_rttm)}]
    [row] = run_align(items, tmp_path / "h1", speech_onsets=True, speaker=H1)
    assert row["anchor_times_s"] == [1.46] and row["anchor_frames"] == [144] and row["num_frames"] == 598
    [row] = run_align(items, tmp_path / "all", speech_onsets=True, tier="speech")
    assert row["anchor_times_s"] == [1.46, 3.36]
    # A segment of the recording (manifest with recording_id/start_s): onsets in segment time.
    segment = item_table([{**items.to_pylist()[0], "utt_id": "seg", "recording_id": AMI_WAV, "start_s": "3.0",
                           "duration_s": "2.0"}])
    [row] = run_align(segment, tmp_path / "seg", speech_onsets=True, tier="speech")
    assert row["anchor_times_s"] == [pytest.approx(0.36)]


def test_rttm_odd_lines(tmp_path):
    path = tmp_path / "odd.rttm"
    path.write_text(
        ";; a comment\n"
        "SPKR-INFO rec1 1 <NA> <NA> <NA> unknown A <NA> <NA>\n"
        "SPEAKER rec1 1 5.0 1.0 <NA> <NA> A <NA> <NA>\n"
        "\n"
        "SPEAKER rec1 1 0.5 1.0 <NA> <NA> A\n"  # 8 fields: accepted
        "SPEAKER rec1 1 1.2 0.8 <NA> <NA> A <NA> <NA>\n"  # overlaps the previous: merged
        "SPEAKER rec1 1 1.9 1.0 <NA> <NA> B <NA> <NA>\n"
        "SPEAKER rec2 1 nan 1.0 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER rec3 1 1.0 -2 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER rec4 1 1.0\n"
    )
    errors: dict = {}
    by_id = read_rttm(path, errors=errors)
    assert list(by_id) == ["rec1"] and set(errors) == {"rec2", "rec3", "rec4"}
    assert "line 8: onset 'nan'" in str(errors["rec2"]) and "duration '-2'" in str(errors["rec3"])
    assert "expected at least 8 fields" in str(errors["rec4"])
    rec = by_id["rec1"]
    assert tiers(rec)["A - words"] == [(0.5, 2.0, "speech"), (5.0, 6.0, "speech")]
    assert tiers(rec)["speech"] == [(0.5, 2.9, "speech"), (5.0, 6.0, "speech")]
    assert rec.meta["merged"] == 1 and rec.meta["skipped_lines"] == 1 and rec.xmax == 6.0
    with pytest.raises(InputError, match="line 8"):
        read_rttm(path)
    assert rttm_items(path).column("utt_id").to_pylist() == ["rec1", "rec2", "rec3", "rec4"]
    with pytest.raises(UsageError, match="whitespace"):
        write_rttm(tmp_path / "x.rttm", [("rec 1", "A", 0.0, 1.0)])
    assert is_rttm(path) and is_rttm("x.txt", "rttm") and not is_rttm(path, "ctm")


# --------------------------------------------------------------------------------------------
# Exports
#
# lhotse behaviour relied on, read in lhotse 1.33.0 (lhotse/cut/data.py: DataCut.truncate keeps
# supervisions via with_offset and moves cut.start, perturb_speed perturbs supervisions; lhotse/
# supervision.py: AlignmentItem times are recording time, not shifted by with_offset, scaled by
# perturb_speed; lhotse/cut/mixed.py: MixedCut tracks carry offsets) and exercised on lhotse itself.


@pytest.fixture()
def ami_run(ami_tree, tmp_path) -> tuple[Path, Path]:
    """A speech-onset run over the real lhotse cut (utt_id = cut id), on lhotse's frame grid."""
    cuts, root = ami_tree
    run_align(lhotse_items(cuts, audio_root=root), tmp_path / "run", snip_edges=False, speech_onsets=True, tier="speech")
    return tmp_path / "run", cuts


@needs_lhotse
@pytest.mark.parametrize("name", ["cuts_anchors.jsonl.gz", "cuts_anchors.json"])
def test_export_lhotse_round_trip(ami_run, tmp_path, name, monkeypatch):
    from lhotse import CutSet

    from anchorprep.interop import collate_anchors, cut_anchors, export_lhotse

    run_dir, cuts = ami_run
    [row] = shard_rows(run_dir)
    summary = export_lhotse(run_dir, cuts, tmp_path / "out" / name)
    assert summary.written == summary.with_anchors == 1 and summary.missing == 0
    assert summary.frame_count_differs == 0 and summary.frame_shift == 0.01  # --no-snip-edges: 600 frames
    assert summary.label_map == {"background": 0, SPEECH_ONSET: 1}
    monkeypatch.chdir(tmp_path)
    [cut] = CutSet.from_file(tmp_path / "out" / name)
    [original] = CutSet.from_file(cuts)
    # The cut's own supervisions, recording and features are untouched; one anchor supervision is added.
    *own, anchor_sup = cut.supervisions
    assert cut.id == AMI_CUT and own == original.supervisions and cut.features == original.features
    assert cut.recording == original.recording
    assert anchor_sup.id == f"{AMI_CUT}-anchors" and (anchor_sup.start, anchor_sup.duration) == (0.0, cut.duration)
    assert anchor_sup.text is None and anchor_sup.custom["anchorprep"]["label_map"] == summary.label_map
    # Alignment items in recording time, like lhotse's word alignments.
    assert [(a.symbol, a.start, a.duration) for a in anchor_sup.alignment["anchors"]] == [
        (SPEECH_ONSET, pytest.approx(cut.start + 1.46), 0.0), (SPEECH_ONSET, pytest.approx(cut.start + 3.36), 0.0)]
    labels = cut_anchors(cut)
    assert labels.times_s == (1.46, 3.36) and labels.labels == (SPEECH_ONSET,) * 2 and labels.frame_shift == 0.01
    assert labels.num_frames == row["num_frames"] == 600
    assert labels.distance.dtype == np.int16 and labels.distance.tolist() == row["distance"]
    assert labels.target.dtype == np.int16 and labels.target.tolist() == row["target"]
    batch = collate_anchors([cut, cut.truncate(duration=2.0)])
    assert batch.num_frames.tolist() == [600, 200] and batch.target.shape == (2, 600)
    assert batch.target[0].tolist() == row["target"] and batch.distance[1, :200].tolist() == row["distance"][:200]
    assert set(batch.target[1, 200:].tolist()) == {-100} and set(batch.distance[1, 200:].tolist()) == {32767}


@needs_lhotse
def test_export_lhotse_checks(ami_run, tmp_path):
    from anchorprep.interop import NoCutMatchedError, export_lhotse

    run_dir, cuts = ami_run
    records = json.loads(cuts.read_text())
    other = dict(records[0], id="not-in-run")
    both = write_jsonl(tmp_path / "both.jsonl", [records[0], other])
    assert export_lhotse(run_dir, both, tmp_path / "a.jsonl").missing_ids == ("not-in-run",)
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 1
    assert export_lhotse(run_dir, both, tmp_path / "b.jsonl", missing="keep").written == 2
    with pytest.raises(UsageError, match="no row"):
        export_lhotse(run_dir, both, tmp_path / "c.jsonl", missing="error")
    assert not (tmp_path / "c.jsonl").exists()
    shorter = write_jsonl(tmp_path / "short.jsonl", [dict(records[0], duration=5.0)])
    with pytest.raises(UsageError, match="lasts 5.0 s"):
        export_lhotse(run_dir, shorter, tmp_path / "d.jsonl")
    # No cut has a row: a failure (it used to write 0 cuts and succeed), nothing written.
    strangers = write_jsonl(tmp_path / "strangers.jsonl", [other, dict(records[0], id="also-not")])
    for mode in MISSING_MODES:
        with pytest.raises(NoCutMatchedError, match=r"no cut of .* \(2 cuts\) has a row"):
            export_lhotse(run_dir, strangers, tmp_path / "e.jsonl", missing=mode)
    assert not (tmp_path / "e.jsonl").exists()
    result = runner.invoke(app, ["export", "lhotse", str(run_dir), "--cuts", str(strangers), "-o", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 1 and "has a row" in result.stderr and result.stdout == ""


@pytest.fixture()
def lj_cuts_run(lj, tmp_path):
    """LJ002-0035 ("press" at 1.09 s) as a whole cut and as a cut 0.5 s into it, aligned and exported."""
    from lhotse import CutSet

    from anchorprep.interop import export_lhotse

    path = write_jsonl(tmp_path / "cuts.jsonl", [lj_cut(lj, "LJ002-0035", "whole"), lj_cut(lj, "LJ002-0035", "from-0.5", start=0.5)])
    rows = {r["utt_id"]: r for r in run_align(lhotse_items(path), tmp_path / "run", keywords=("press",))}
    summary = export_lhotse(tmp_path / "run", path, tmp_path / "out.jsonl.gz")
    assert summary.frame_count_differs == 2  # the default grid snips edges; lhotse's frames do not
    return {c.id: c for c in CutSet.from_file(tmp_path / "out.jsonl.gz")}, rows


@needs_lhotse
def test_export_lhotse_anchors_follow_truncate(lj_cuts_run):
    from anchorprep.interop import cut_anchors

    cuts, rows = lj_cuts_run
    late = cut_anchors(cuts["from-0.5"])
    assert late.times_s == (0.59,) and late.target.tolist() == rows["from-0.5"]["target"]
    # lhotse's truncate of the whole cut gives what anchorprep computed for the cut made 0.5 s in.
    truncated = cut_anchors(cuts["whole"].truncate(offset=0.5))
    assert truncated.times_s == (0.59,)
    assert truncated.distance.tolist() == rows["from-0.5"]["distance"]
    assert truncated.target.tolist() == rows["from-0.5"]["target"]
    # An anchor cut away is gone: no positives, distances say "no anchor".
    tail = cut_anchors(cuts["whole"].truncate(offset=1.2))
    assert tail.times_s == () and set(tail.distance.tolist()) == {32767} and set(tail.target.tolist()) == {0}


@needs_lhotse
def test_export_lhotse_padding_labels_the_padded_frames(lj_cuts_run):
    """``cut.pad`` used to fill distance with 0 ("at the anchor") and target with 0 unless the
    caller passed pad_value_dict; now the padded frames are labelled like any other frame."""
    from anchorprep.interop import cut_anchors

    cuts, rows = lj_cuts_run
    row = rows["whole"]
    anchor_frame = row["anchor_frames"][0]
    padded = cuts["whole"].pad(duration=2.0)
    assert type(padded).__name__ == "MixedCut"
    right = cut_anchors(padded)
    assert right.times_s == (1.09,) and right.num_frames == FrameGrid().num_frames(32000) == 198
    assert right.distance[: row["num_frames"]].tolist() == row["distance"]
    assert right.distance[row["num_frames"]:].tolist() == [t - anchor_frame for t in range(row["num_frames"], 198)]
    assert right.target[: row["num_frames"]].tolist() == row["target"] and set(right.target[row["num_frames"]:].tolist()) == {0}
    left = cut_anchors(cuts["whole"].pad(duration=2.0, direction="left"))
    shift = 2.0 - cuts["whole"].duration
    assert left.times_s == (pytest.approx(1.09 + shift, abs=1e-6),)
    frame = int(FrameGrid().time_to_frame([1.09 + shift], 198)[0][0])
    assert left.distance[frame] == 0 and left.target[frame] == 1 and left.target[:frame].tolist() == [0] * frame


@needs_lhotse
def test_export_lhotse_speed_perturbation_moves_the_anchors(lj_cuts_run):
    """``perturb_speed(1.1)`` used to keep the unperturbed labels. The anchor moves as lhotse 1.33
    moves a supervision (``perturb_num_samples`` of its start sample)."""
    from lhotse.utils import compute_num_samples, perturb_num_samples

    from anchorprep.interop import cut_anchors

    cuts, rows = lj_cuts_run
    whole = cuts["whole"]
    fast = whole.perturb_speed(1.1)
    labels = cut_anchors(fast)
    rate = whole.sampling_rate

    def moved(t: float, factor: float) -> float:
        return perturb_num_samples(compute_num_samples(t, rate), factor) / rate

    assert labels.times_s == (pytest.approx(moved(1.09, 1.1), abs=1e-8),) and moved(1.09, 1.1) == pytest.approx(0.991, abs=1e-3)
    grid = FrameGrid()
    assert labels.num_frames == grid.num_frames(grid.resampled_length(fast.num_samples, rate)) < rows["whole"]["num_frames"]
    frame = int(grid.time_to_frame(list(labels.times_s), labels.num_frames)[0][0])
    assert labels.distance.tolist() == [t - frame for t in range(labels.num_frames)]
    assert labels.target.tolist() == [1 if 0 <= t - frame <= 30 else 0 for t in range(labels.num_frames)]
    slow = cut_anchors(whole.perturb_speed(0.9))
    assert slow.times_s == (pytest.approx(moved(1.09, 0.9), abs=1e-8),) and slow.num_frames > rows["whole"]["num_frames"]


@needs_lhotse
def test_export_lhotse_transformed_cuts_survive_a_manifest_round_trip(lj_cuts_run, tmp_path):
    from lhotse import CutSet

    from anchorprep.interop import cut_anchors

    cuts, _ = lj_cuts_run
    whole = cuts["whole"]
    transformed = [whole.truncate(offset=0.5, preserve_id=True).perturb_speed(1.1),
                   whole.pad(duration=2.0, direction="both"), whole.perturb_speed(0.9).pad(duration=2.5)]
    CutSet.from_cuts(transformed).to_file(tmp_path / "t.jsonl.gz")
    reloaded = list(CutSet.from_file(tmp_path / "t.jsonl.gz"))
    for before, after in zip(transformed, reloaded):
        a, b = cut_anchors(before), cut_anchors(after)
        assert a.times_s == b.times_s and a.distance.tolist() == b.distance.tolist() and a.target.tolist() == b.target.tolist()
    assert cut_anchors(reloaded[0]).times_s == (pytest.approx(0.59 / 1.1, abs=1e-4),)


@needs_lhotse
def test_cut_anchors_refuses_what_it_cannot_label(lj_cuts_run):
    from lhotse.utils import fastcopy

    from anchorprep.interop import cut_anchors

    cuts, _ = lj_cuts_run
    whole = cuts["whole"]
    with pytest.raises(UsageError, match="no anchor supervision"):
        cut_anchors(whole.truncate(offset=0.5, keep_excessive_supervisions=False))
    *own, anchor_sup = whole.supervisions
    vad_settings = dict(anchor_sup.custom["anchorprep"], targets={"mode": "vad"})
    vad_cut = fastcopy(whole, supervisions=[*own, fastcopy(anchor_sup, custom={"anchorprep": vad_settings})])
    with pytest.raises(UsageError, match="per-frame vad decisions"):
        cut_anchors(vad_cut)


def test_export_lhotse_without_lhotse_says_what_to_install(ami_run, tmp_path, monkeypatch):
    from anchorprep.interop import export_lhotse

    monkeypatch.setitem(sys.modules, "lhotse", None)
    run_dir, cuts = ami_run
    with pytest.raises(MissingDependencyError, match=r"pip install 'anchorprep\[lhotse\]'"):
        export_lhotse(run_dir, cuts, tmp_path / "x.jsonl")
    result = runner.invoke(app, ["export", "lhotse", str(run_dir), "--cuts", str(cuts), "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "anchorprep[lhotse]" in result.output


@needs_lhotse
def test_cli_export_lhotse(ami_run, tmp_path):
    run_dir, cuts = ami_run
    result = runner.invoke(app, ["export", "lhotse", str(run_dir), "--cuts", str(cuts), "--out", str(tmp_path / "c.jsonl.gz")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["with_anchors"] == 1


@needs_datasets
def test_hugging_face_datasets_reads_the_shards_offline(ami_run, lj, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    run_dir, _ = ami_run
    ds = datasets.load_dataset("parquet", data_files=hf_data_files(run_dir), split="train", cache_dir=str(tmp_path / "hf"))
    [row] = shard_rows(run_dir)
    from anchorprep.interop import load_hf_dataset

    assert load_hf_dataset(run_dir, cache_dir=str(tmp_path / "hf2"))[0]["target"] == row["target"]

    def inner(feature):  # List (datasets >= 4) and Sequence both have .feature
        return feature.feature.dtype

    features = ds.features
    assert inner(features["distance"]) == inner(features["target"]) == "int16"
    assert inner(features["anchor_times_s"]) == "float64" and inner(features["anchor_frames"]) == "int32"
    assert inner(features["anchor_labels"]) == inner(features["anchor_sources"]) == "string"
    assert features["utt_id"].dtype == "string" and features["num_frames"].dtype == "int32"
    assert ds[0]["distance"] == row["distance"] and ds[0]["anchor_times_s"] == [1.46, 3.36]
    # The Arrow table keeps int16 (the torch/numpy formatters upcast integers to int64 on access).
    assert ds.data.schema.field("target").type == pa.list_(pa.int16())
    assert ds.data.schema.field("anchor_times_s").type == pa.list_(pa.float64())


# --------------------------------------------------------------------------------------------
# WeKws
#
# What WeKws' training path reads from a data.list line, from the sources of
#   wenet-e2e/wekws @ 1a8ee651620f49a8a7779be4d30668157fc23350: wekws/bin/train.py (CharTokenizer(
#     dict.txt, words.txt, unk='<filler>', split_with_space=True)), wekws/dataset/init_dataset.py
#     (wenet's Dataset, data_type 'raw'), wekws/bin/compute_det.py (txt.upper() == keyword),
#     examples/hey_snips/s0/run.sh (dict.txt "<FILLER> -1", "<HEY_SNIPS> 0"; words.txt = column 1);
#   wenet-e2e/wenet @ 015469960db73eb19c49a48c020d5ac9db69bae5: wenet/dataset/processor.py
#     (parse_json, decode_wav, tokenize, filter), wenet/text/char_tokenizer.py,
#     wenet/text/base_tokenizer.py, wenet/utils/file_utils.py (read_symbol_table, read_lists,
#     read_non_lang_symbols).
# `PortedWenet` restates those rules (same names, same steps); `mirror_wenet` runs the functions
# themselves, taken from a wenet git mirror when one is on this machine (not in CI).

WENET_GIT = Path(os.environ.get("ANCHORPREP_WENET_GIT", Path(__file__).resolve().parents[2] / ".mirror" / "wenet-e2e+wenet" / "repo"))
NON_LANG_SYMS = re.compile(r"(\[[^\[\]]+\]|<[^<>]+>|{[^{}]+})")


class PortedWenet:
    """wenet's parse_json / decode_wav / CharTokenizer rules as read at 0154699 (see above)."""

    @staticmethod
    def parse_json(elem: dict) -> dict:
        obj = json.loads(elem["line"])
        obj["file_name"] = elem["file_name"]
        return dict(obj)

    @staticmethod
    def decode_wav(sample: dict) -> dict:
        import soundfile

        assert "key" in sample and "wav" in sample
        if "start" in sample:
            assert "end" in sample
            rate = soundfile.info(sample["wav"]).samplerate
            start_frame, end_frame = int(sample["start"] * rate), int(sample["end"] * rate)
            waveform, _ = SoundfileAudio.load(sample["wav"], num_frames=end_frame - start_frame, frame_offset=start_frame)
        else:
            waveform, rate = SoundfileAudio.load(sample["wav"])
        sample["wav"], sample["sample_rate"] = waveform, rate
        return sample

    @staticmethod
    def tokenizer(dict_txt: Path, words_txt: Path):
        symbols = dict(line.split() for line in dict_txt.read_text(encoding="utf8").splitlines())
        symbol_table = {k: int(v) for k, v in symbols.items()}
        non_lang = [line.strip() for line in words_txt.read_text(encoding="utf8").splitlines()]
        assert all(NON_LANG_SYMS.fullmatch(s) for s in non_lang)  # read_non_lang_symbols' check

        class Tokenizer:
            @staticmethod
            def tokenize(line: str):
                line = line.strip()  # str only: an int txt fails here ('int' object has no attribute 'strip')
                parts = [w.strip() for w in NON_LANG_SYMS.split(line.upper()) if len(w.strip()) > 0]
                tokens = []
                for part in parts:
                    tokens += [part] if part in non_lang else ["▁" if ch == " " else ch for ch in part.split(" ")]
                ids = [symbol_table[t] for t in tokens if t in symbol_table]  # unk '<filler>' is not in dict.txt
                return tokens, ids

        return Tokenizer()

    @staticmethod
    def tokenize(sample: dict, tokenizer) -> dict:
        assert "txt" in sample
        sample["tokens"], sample["label"] = tokenizer.tokenize(sample["txt"])
        return sample


class SoundfileAudio:
    """Stands in for torchaudio (not installed here) in wenet's decode_wav: same calls, soundfile reads."""

    @staticmethod
    def info(path):
        import soundfile

        return types.SimpleNamespace(sample_rate=soundfile.info(path).samplerate)

    @staticmethod
    def load(path, num_frames: int = -1, frame_offset: int = 0):
        import soundfile

        data, rate = soundfile.read(path, start=frame_offset, frames=num_frames, dtype="float32", always_2d=True)
        return data.T, rate


def _git_show(path: str) -> str:
    return subprocess.run(["git", f"--git-dir={WENET_GIT}", "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def _definitions(source: str, names: set[str]) -> str:
    import ast

    tree = ast.parse(source)
    return "\n\n".join(ast.get_source_segment(source, node) for node in tree.body
                       if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names)


def mirror_wenet():
    """wenet's own parse_json, decode_wav, tokenize and CharTokenizer, executed from the mirror."""
    if not (WENET_GIT / "HEAD").exists():
        pytest.skip(f"no wenet git mirror at {WENET_GIT} (set ANCHORPREP_WENET_GIT); the ported rules still run")
    import typing
    from abc import ABC, abstractmethod, abstractproperty

    ns = {"json": json, "re": re, "io": io, "torchaudio": SoundfileAudio, "PathLike": os.PathLike, "ABC": ABC,
          "abstractmethod": abstractmethod, "abstractproperty": abstractproperty,
          **{name: getattr(typing, name) for name in ("Dict", "List", "Optional", "Tuple", "Union")}}
    exec(_definitions(_git_show("wenet/utils/file_utils.py"), {"read_lists", "read_non_lang_symbols", "read_symbol_table"}), ns)
    exec(_git_show("wenet/text/base_tokenizer.py"), ns)
    exec(_definitions(_git_show("wenet/text/char_tokenizer.py"), {"CharTokenizer"}), ns)
    exec(_definitions(_git_show("wenet/dataset/processor.py"), {"parse_json", "decode_wav", "tokenize"}), ns)

    class MirrorWenet:
        parse_json, decode_wav, tokenize = staticmethod(ns["parse_json"]), staticmethod(ns["decode_wav"]), staticmethod(ns["tokenize"])

        @staticmethod
        def tokenizer(dict_txt: Path, words_txt: Path):  # as wekws/bin/train.py builds it
            return ns["CharTokenizer"](str(dict_txt), str(words_txt), unk="<filler>", split_with_space=True)

    return MirrorWenet


@pytest.fixture(params=["ported", "mirror"])
def wenet(request):
    return PortedWenet if request.param == "ported" else mirror_wenet()


def check_loads_in_wekws(wenet, data_list: Path, dict_dir: Path, grid: FrameGrid = FrameGrid()) -> list[dict]:
    """Every line of ``data_list`` through wenet's parse_json -> decode_wav -> tokenize as WeKws
    trains: a string txt that tokenizes to one keyword id (non-empty label: ``filter`` keeps it),
    and audio whose feature frames on the run's grid equal the line's ``num_frames``."""
    tokenizer = wenet.tokenizer(dict_dir / "dict.txt", dict_dir / "words.txt")
    index = {token: int(i) for token, i in (line.split() for line in (dict_dir / "dict.txt").read_text().splitlines())}
    samples = []
    for line in data_list.read_text(encoding="utf8").splitlines():
        sample = wenet.parse_json({"line": line, "file_name": str(data_list)})
        raw = dict(sample)
        assert isinstance(sample["txt"], str) and isinstance(sample["key"], str) and isinstance(sample["wav"], str)
        assert isinstance(sample["start"], float) and isinstance(sample["end"], float) and sample["end"] > sample["start"] >= 0
        sample = wenet.tokenize(wenet.decode_wav(sample), tokenizer)
        assert sample["tokens"] == [sample["txt"]] and sample["label"] == [index[sample["txt"]]]
        loaded = sample["wav"].shape[1]
        assert loaded == round(raw["duration"] * sample["sample_rate"])
        assert grid.num_frames(grid.resampled_length(loaded, sample["sample_rate"])) == raw["num_frames"]
        if "target" in raw:
            assert len(raw["target"]) == len(raw["distance"]) == raw["num_frames"]
            # compute_det.py: a line is a keyword line iff txt.upper() is that keyword.
            assert (raw["txt"].upper() != "<FILLER>") == any(t > 0 for t in raw["target"])
        samples.append(raw)
    return samples


@pytest.fixture()
def lj_run(lj, tmp_path) -> Path:
    """`anchorprep align` on the two LJSpeech alignments with audio, keyword "press"."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,audio_path,alignment_path\n" + "".join(
        f"{u},{lj / (u + '.wav')},{lj / (u + '.TextGrid')}\n" for u in ("LJ002-0035", "LJ002-0020")))
    result = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "run"), "-k", "press", "-q"])
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


def test_export_wekws_max_pooling_list(lj_run, lj, tmp_path, wenet):
    summary = export_wekws(lj_run, tmp_path / "data.list", dict_dir=tmp_path / "dict")
    lines = check_loads_in_wekws(wenet, tmp_path / "data.list", tmp_path / "dict")
    rows = {r["utt_id"]: r for r in shard_rows(lj_run)}
    assert [line["key"] for line in lines] == ["LJ002-0035", "LJ002-0020"]
    press, other = lines
    assert press["wav"] == str(lj / "LJ002-0035.wav") and press["txt"] == "<PRESS>" and other["txt"] == "<FILLER>"
    assert (tmp_path / "dict" / "dict.txt").read_text() == "<FILLER> -1\n<PRESS> 0\n"
    assert (tmp_path / "dict" / "words.txt").read_text() == "<FILLER>\n<PRESS>\n"
    assert press["duration"] == pytest.approx(1.5977, abs=1e-4) and press["anchor_times"] == [1.09]
    assert press["start"] == 0.0 and press["end"] == pytest.approx(press["duration"], abs=1 / 22050)
    assert press["anchor_labels"] == ["press"] and press["anchor_frames"] == rows["LJ002-0035"]["anchor_frames"]
    assert press["target"] == rows["LJ002-0035"]["target"] and press["distance"] == rows["LJ002-0035"]["distance"]
    assert len(press["target"]) == press["num_frames"] == rows["LJ002-0035"]["num_frames"]
    assert summary.wekws_labels == ("press",) and summary.wekws_tokens == ("<PRESS>",)
    assert (summary.positives, summary.negatives) == (1, 1)
    assert wekws_label(np.array([0, -100, 2, 2, 1])) == 1 and wekws_label(np.zeros(3, np.int16)) == -1
    export_wekws(lj_run, tmp_path / "small.list", per_frame=False)
    assert "target" not in json.loads((tmp_path / "small.list").read_text().splitlines()[0])


def test_export_wekws_segments_load_only_their_samples(lj, tmp_path, wenet):
    """A segment at 0 s used to get no start/end, so wenet loaded the whole recording against
    the segment's frames; every line now has start/end that wenet turns into exactly its samples."""
    wav = lj / "LJ002-0035.wav"
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,audio_path,alignment_path,start_s,duration_s\n"
                        f"head,{wav},{lj / 'LJ002-0035.TextGrid'},0,1.2\n"
                        f"middle,{wav},{lj / 'LJ002-0035.TextGrid'},0.3,0.9\n"
                        f"odd,{wav},{lj / 'LJ002-0035.TextGrid'},0.123457,1.0001\n")
    result = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "run"), "-k", "press", "-q"])
    assert result.exit_code == 0, result.output
    export_wekws(tmp_path / "run", tmp_path / "data.list", dict_dir=tmp_path / "dict")
    lines = {line["key"]: line for line in check_loads_in_wekws(wenet, tmp_path / "data.list", tmp_path / "dict")}
    assert (lines["head"]["start"], lines["head"]["end"]) == (0.0, 1.2) and lines["head"]["txt"] == "<PRESS>"
    assert (lines["middle"]["start"], lines["middle"]["end"]) == (0.3, 1.2)
    assert lines["middle"]["anchor_times"] == [pytest.approx(0.79)]


def test_export_wekws_supervision_segments_of_a_lhotse_recording(ami_tree, tmp_path, wenet):
    cuts, root = ami_tree
    # Supervision-level items are segments (start_s > 0) of the 6 s recording.
    run_align(lhotse_items(cuts, "supervision", audio_root=root), tmp_path / "run", unit="supervision",
              speech_onsets=True)
    export_wekws(tmp_path / "run", tmp_path / "data.list", dict_dir=tmp_path / "dict")
    first, *_ = check_loads_in_wekws(wenet, tmp_path / "data.list", tmp_path / "dict")
    assert (first["start"], first["end"]) == (1.46, 2.82) and first["anchor_times"] == [0.0]
    assert first["txt"] == "<SPEECH_ONSET>" == wekws_token(SPEECH_ONSET)


def test_wenet_seconds_survive_wenet_truncation():
    from anchorprep.interop.wekws import wenet_seconds

    for rate in (8000, 16000, 22050, 44100, 48000):
        for sample in [0, 1, 7, 12345, 26349, 10**7 + 3, *range(70000, 70300)]:
            t = wenet_seconds(sample, rate)
            assert int(t * rate) == sample and abs(t - sample / rate) < 1.0 / rate


def test_wekws_tokens():
    from anchorprep.interop.wekws import _tokens

    assert wekws_token("hey computer") == "<HEY_COMPUTER>" and wekws_token("Hey-Snips!") == "<HEY_SNIPS>"
    assert NON_LANG_SYMS.fullmatch(wekws_token("ok google"))
    with pytest.raises(UsageError, match="both become the WeKws token <A_B>"):
        _tokens({"background": 0, "a b": 1, "a-b": 2})
    with pytest.raises(UsageError, match="<FILLER>"):
        _tokens({"background": 0, "filler": 1})
    with pytest.raises(UsageError, match="no letter or digit"):
        wekws_token("¿?")


def test_export_wekws_extends_an_existing_ctc_list(lj_run, tmp_path):
    base = tmp_path / "base.list"
    base.write_text(
        json.dumps({"key": "LJ002-0020", "tok": ["in", "eighteen"], "txt": [5, 9], "duration": 1.5396, "wav": "/data/b.wav"}) + "\n"
        + json.dumps({"key": "unknown-utt", "txt": [1], "duration": 1.0, "wav": "/data/u.wav"}) + "\n"
    )
    summary = export_wekws(lj_run, tmp_path / "data.list", base_list=base)
    [line] = [json.loads(x) for x in (tmp_path / "data.list").read_text().splitlines()]
    assert line["tok"] == ["in", "eighteen"] and line["txt"] == [5, 9] and line["wav"] == "/data/b.wav"
    assert line["anchor_times"] == [] and set(line["distance"]) == {32767}
    assert line["start"] == 0.0 and line["end"] == pytest.approx(1.5396, abs=1e-4)
    assert summary.missing_ids == ("unknown-utt",)
    export_wekws(lj_run, tmp_path / "keep.list", base_list=base, missing="keep")
    assert len((tmp_path / "keep.list").read_text().splitlines()) == 2
    with pytest.raises(UsageError, match="no row"):
        export_wekws(lj_run, tmp_path / "err.list", base_list=base, missing="error")


def test_export_wekws_with_a_base_list_of_other_utterances_exits_1(lj_run, tmp_path):
    from anchorprep.interop import NoKeyMatchedError

    base = tmp_path / "base.list"
    base.write_text(json.dumps({"key": "other-corpus-utt", "txt": [1], "duration": 1.0, "wav": "/data/o.wav"}) + "\n")
    with pytest.raises(NoKeyMatchedError, match=r"no key of .* \(1 keys\) has a row"):
        export_wekws(lj_run, tmp_path / "data.list", base_list=base)
    result = runner.invoke(app, ["export", "wekws", str(lj_run), "-o", str(tmp_path / "x.list"), "--base-list", str(base)])
    assert result.exit_code == 1 and "has a row" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data.list").exists() and not (tmp_path / "x.list").exists()


def test_export_wekws_refuses_rows_without_audio(lj, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"utt_id,alignment_path\nx,{lj / 'LJ002-0035.TextGrid'}\n")
    assert runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "run"), "-k", "press", "-q"]).exit_code == 0
    with pytest.raises(UsageError, match="no audio_path"):
        export_wekws(tmp_path / "run", tmp_path / "data.list")
    assert not (tmp_path / "data.list").exists()
    result = runner.invoke(app, ["export", "wekws", str(tmp_path / "run"), "-o", str(tmp_path / "x.list")])
    assert result.exit_code == 2 and "--base-list" in result.output


def test_cli_export_wekws(lj_run, tmp_path):
    result = runner.invoke(app, ["export", "wekws", str(lj_run), "-o", str(tmp_path / "data.list"), "--no-per-frame",
                                 "--dict-dir", str(tmp_path / "dict")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lines"] == 2 and json.loads(result.stdout)["wekws_tokens"] == ["<PRESS>"]
    assert "distance" not in (tmp_path / "data.list").read_text()
    assert (tmp_path / "dict" / "dict.txt").read_text() == "<FILLER> -1\n<PRESS> 0\n"


def test_run_rows_streams_the_shard_columns(lj_run):
    rows = list(run_rows(lj_run))
    assert [r["utt_id"] for r in rows] == ["LJ002-0035", "LJ002-0020"]
    assert rows[0]["distance"].dtype == np.int16 and rows[0]["anchor_labels"] == ["press"]


def test_module_examples():
    import doctest

    import anchorprep.sources.alignments.rttm as rttm_module

    result = doctest.testmod(rttm_module)
    assert result.attempted > 0 and result.failed == 0
