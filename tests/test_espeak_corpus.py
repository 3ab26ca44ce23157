"""Tests for scripts/espeak_corpus.py and the bundled sample_data/ it generated.

Tests that synthesise need libespeak-ng (Debian: ``apt-get install -y espeak-ng libespeak-ng1``) and
are skipped without it; the sample_data checks and the event-logic unit tests always run.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"


def _load_module():
    spec = importlib.util.spec_from_file_location("espeak_corpus", REPO / "scripts" / "espeak_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("espeak_corpus", module)
    spec.loader.exec_module(module)
    return module


ec = _load_module()

needs_espeak = pytest.mark.skipif(
    not ec.espeak_available(),
    reason=f"libespeak-ng.so.1 is not installed; install it with: {ec.APT_HINT}",
)


# ----------------------------------------------------------------------------------------------
# helpers


def read_manifest(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def tier(grid_path: Path, name: str) -> list[tuple[float, float, str]]:
    grid = textgrid.openTextgrid(str(grid_path), includeEmptyIntervals=True)
    return [(e.start, e.end, e.label) for e in grid.getTier(name).entries]


def words(grid_path: Path) -> list[tuple[float, float, str]]:
    return [e for e in tier(grid_path, "words") if e[2]]


def phrase_intervals(word_list: list[tuple[float, float, str]], phrase: list[str]) -> list[float]:
    """Flat [start, end, start, end, ...] of each occurrence of ``phrase`` on the word tier."""
    labels = [w[2] for w in word_list]
    k = len(phrase)
    return [t for i in range(len(labels) - k + 1) if labels[i:i + k] == phrase
            for t in (word_list[i][0], word_list[i + k - 1][1])]


def level_db(audio: np.ndarray, sr: int, start_s: float, end_s: float) -> float:
    segment = audio[max(0, int(round(start_s * sr))):max(0, int(round(end_s * sr)))].astype(np.float64)
    return 10 * np.log10(np.mean(segment ** 2) + 1e-12)


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------
# event logic (no espeak needed)


def _synth(events: list[tuple[int, int, int, str]], n: int) -> object:
    """Events as (kind, sample, text_position, name)."""
    return ec.Synthesis(np.zeros(n, np.int16), 22050,
                        [ec.SynthEvent(kind, sample, pos, 0, name) for kind, sample, pos, name in events])


def test_word_starts_at_word_event_and_ends_at_its_mark() -> None:
    # "hey<w0> computer<w1>." : closure before /k/ belongs to "computer"; silence before the pause
    # phoneme's event does not.
    text_spans = [(0, 3), (17, 25)]
    events = [
        (ec.EVENT_WORD, 0, 1, ""), (ec.EVENT_PHONEME, 100, 1, "h"), (ec.EVENT_PHONEME, 300, 1, "eI"),
        (ec.EVENT_MARK, 800, 1, "w0"), (ec.EVENT_WORD, 800, 18, ""), (ec.EVENT_PHONEME, 900, 18, "k"),
        (ec.EVENT_PHONEME, 1000, 18, "@"), (ec.EVENT_MARK, 1500, 18, "w1"),
        (ec.EVENT_PHONEME, 1700, 18, "_:"), (ec.EVENT_END, 1800, 18, ""),
    ]
    ali = ec.align_events(_synth(events, 2000), text_spans)
    assert [(w.start, w.end) for w in ali.words] == [(0, 800), (800, 1500)]
    assert [(p.start, p.end, p.label) for p in ali.phones] == [
        (0, 300, "h"), (300, 800, "eI"), (800, 1000, "k"), (1000, 1500, "@")]
    assert ali.end_marks == {0: 800, 1: 1500}


def test_pause_after_word_event_is_not_part_of_the_word_and_bad_marks_are_ignored() -> None:
    text_spans = [(0, 4), (6, 9)]
    events = [
        (ec.EVENT_WORD, 0, 1, ""), (ec.EVENT_PHONEME, 0, 1, "w"), (ec.EVENT_PHONEME, 200, 1, "E"),
        (ec.EVENT_PHONEME, 600, 1, "_:"), (ec.EVENT_END, 900, 5, ""),
        (ec.EVENT_WORD, 900, 7, ""), (ec.EVENT_PHONEME, 900, 7, "_"), (ec.EVENT_PHONEME, 1000, 7, "h"),
        (ec.EVENT_PHONEME, 1200, 7, "eI"),
        (ec.EVENT_MARK, 1450, 7, "w0"),  # a misplaced mark: outside word 0's last phone
        (ec.EVENT_PHONEME, 1500, 7, "_"),
    ]
    ali = ec.align_events(_synth(events, 1600), text_spans)
    assert [(w.start, w.end) for w in ali.words] == [(0, 600), (1000, 1500)]
    assert ali.end_marks == {}


def test_a_token_without_its_own_word_event_is_an_error() -> None:
    events = [(ec.EVENT_WORD, 0, 1, ""), (ec.EVENT_PHONEME, 0, 1, "0"), (ec.EVENT_PHONEME, 100, 1, "n"),
              (ec.EVENT_PHONEME, 200, 1, "D"), (ec.EVENT_PHONEME, 300, 1, "@")]
    with pytest.raises(ValueError, match="no word of its own"):
        ec.align_events(_synth(events, 400), [(0, 2), (3, 6)])  # "on the"


def test_word_event_reported_at_a_preceding_tag_maps_to_the_next_word() -> None:
    spans = [(0, 7), (40, 43)]  # "tonight. <mark .../>Hey"
    assert ec._token_at(9, spans, previous=0) == 1
    assert ec._token_at(41, spans, previous=0) == 1
    assert ec._token_at(9, spans, previous=1) is None  # a stray event after the last word


# ----------------------------------------------------------------------------------------------
# generated corpora


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    ec.make_corpus(out, n_positive=12, n_negative=12, seed=5, workers=2)
    return out


@pytest.fixture(scope="module")
def quiet_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """High SNR, so energy shows where speech is."""
    out = tmp_path_factory.mktemp("quiet")
    ec.make_corpus(out, n_positive=16, n_negative=0, seed=9, snr_db=(30.0, 30.0), workers=2)
    return out


@needs_espeak
def test_wake_phrase_interval_matches_truth(corpus: Path) -> None:
    truth = json.loads((corpus / "truth.json").read_text())
    phrase = truth["wake_phrase"].split()
    positives = 0
    for row in read_manifest(corpus):
        expected = [t for w in truth["utterances"][row["utt_id"]]["wake"] for t in (w["start_s"], w["end_s"])]
        found = phrase_intervals(words(corpus / row["alignment_path"]), phrase)
        assert found == pytest.approx(expected, abs=1e-6), row["utt_id"]
        assert bool(found) == truth["utterances"][row["utt_id"]]["positive"]
        positives += bool(found)
    assert positives == 12


@needs_espeak
def test_word_boundaries_are_monotonic_and_inside_the_audio(corpus: Path) -> None:
    for row in read_manifest(corpus):
        info = sf.info(str(corpus / row["audio_path"]))
        assert info.samplerate == 16000
        duration = info.frames / info.samplerate
        grid = textgrid.openTextgrid(str(corpus / row["alignment_path"]), includeEmptyIntervals=True)
        assert grid.maxTimestamp == pytest.approx(duration, abs=1e-9)
        for name in ("words", "phones"):
            entries = tier(corpus / row["alignment_path"], name)
            assert entries[0][0] == 0 and entries[-1][1] == pytest.approx(duration, abs=1e-9)
            for (s0, e0, _), (s1, _, _) in zip(entries, entries[1:]):
                assert s0 < e0 <= s1 + 1e-9
        word_list = words(corpus / row["alignment_path"])
        assert " ".join(w[2] for w in word_list) == row["text"]
        for start, end, _ in [e for e in tier(corpus / row["alignment_path"], "phones") if e[2]]:
            assert any(ws - 1e-9 <= start and end <= we + 1e-9 for ws, we, _ in word_list)


@needs_espeak
def test_labels_sit_where_the_speech_is(quiet_corpus: Path) -> None:
    # At 30 dB SNR the 50 ms before a phrase that follows silence hold only noise, while the phrase's
    # first 50 ms hold /h/ (weak) and its first 100 ms the vowel; likewise at its end.
    truth = json.loads((quiet_corpus / "truth.json").read_text())["utterances"]
    checked_start = checked_end = 0
    for row in read_manifest(quiet_corpus):
        audio, sr = sf.read(str(quiet_corpus / row["audio_path"]), dtype="int16")
        utt = truth[row["utt_id"]]
        word_list = words(quiet_corpus / row["alignment_path"])
        for wake in utt["wake"]:
            start, end = wake["start_s"], wake["end_s"]
            if wake["word_index"] == 0:  # the phrase opens the utterance, after the leading silence
                assert start == pytest.approx(utt["leading_silence_s"], abs=1e-6)
                before = level_db(audio, sr, start - 0.05, start)
                assert before < level_db(audio, sr, start, start + 0.05) - 6, row["utt_id"]
                assert before < level_db(audio, sr, start, start + 0.1) - 15, row["utt_id"]
                checked_start += 1
            later = [w for w in word_list if w[0] >= end - 1e-9]
            if not later or later[0][0] >= end + 0.06:  # silence follows the phrase
                after = level_db(audio, sr, end, end + 0.05)
                assert after < level_db(audio, sr, end - 0.05, end) - 15, row["utt_id"]
                checked_end += 1
        onset = utt["speech_onset_s"]
        assert level_db(audio, sr, onset - 0.05, onset) < level_db(audio, sr, onset, onset + 0.1) - 15
        assert onset <= utt["first_sound_s"] < onset + 0.1
    assert checked_start >= 3 and checked_end >= 3


@needs_espeak
def test_same_seed_gives_identical_bytes_for_any_worker_count(tmp_path: Path) -> None:
    ec.make_corpus(tmp_path / "a", 3, 3, seed=21, workers=1)
    ec.make_corpus(tmp_path / "b", 3, 3, seed=21, workers=3)
    ec.make_corpus(tmp_path / "c", 3, 3, seed=22, workers=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


@needs_espeak
def test_splits_keep_test_voices_unseen(corpus: Path) -> None:
    rows = read_manifest(corpus)
    split_of: dict[str, set[str]] = {}
    for row in rows:
        split_of.setdefault(row["speaker"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {s for splits in split_of.values() for s in splits} == {"train", "valid", "test"}


@needs_espeak
def test_every_built_in_phrase_gets_one_boundary_per_word() -> None:
    # Guards the texts against word pairs espeak speaks as one dictionary entry ("in the").
    templates = [p + "." for p in ec.COMMANDS + ec.CHATTER + ec.CONFUSABLES]
    templates += [f"{p} {{W}}, turn the fan on." for p in ec.PREAMBLES]
    specs = [(t, *ec.Utterance(t).render(ec.DEFAULT_WAKE_PHRASE)) for t in templates]
    ec._engine()
    errors = ec.run_forked(specs, _alignment_error, workers=2)
    assert [e for e in errors if e] == []


def _alignment_error(args: tuple) -> str | None:
    template, ssml, _tokens, spans, _ranges = args
    try:
        ec.align_events(ec._render_here(ssml, "en-us", 175, 50, 50), spans)
    except ValueError as exc:
        return f"{template}: {exc}"
    return None


@needs_espeak
def test_unknown_voice_and_existing_output_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="en-gb"):
        ec.make_corpus(tmp_path / "x", 1, 1, voices=["en-us", "en-gb", "en+m3"])
    ec.make_corpus(tmp_path / "y", 1, 1, seed=1)
    with pytest.raises(FileExistsError):
        ec.make_corpus(tmp_path / "y", 1, 1, seed=1)
    ec.make_corpus(tmp_path / "y", 1, 0, seed=1, overwrite=True)
    assert len(read_manifest(tmp_path / "y")) == 1
    assert len(list((tmp_path / "y" / "audio").iterdir())) == 1


# ----------------------------------------------------------------------------------------------
# the bundled sample_data (no espeak needed)


def test_sample_data_manifest_points_at_files_that_parse() -> None:
    rows = read_manifest(SAMPLE_DATA)
    assert list(rows[0]) == ["utt_id", "audio_path", "alignment_path", "speaker", "text", "split"]
    assert len(rows) >= 20
    truth = json.loads((SAMPLE_DATA / "truth.json").read_text())
    phrase = truth["wake_phrase"].split()
    for row in rows:
        audio_path, grid_path = SAMPLE_DATA / row["audio_path"], SAMPLE_DATA / row["alignment_path"]
        assert audio_path.is_file() and grid_path.is_file(), row["utt_id"]
        info = sf.info(str(audio_path))
        grid = textgrid.openTextgrid(str(grid_path), includeEmptyIntervals=True)
        assert grid.tierNames == ("words", "phones")
        assert grid.maxTimestamp == pytest.approx(info.frames / info.samplerate, abs=1e-9)
        expected = [t for w in truth["utterances"][row["utt_id"]]["wake"] for t in (w["start_s"], w["end_s"])]
        assert phrase_intervals(words(grid_path), phrase) == pytest.approx(expected, abs=1e-6)
    assert {r["split"] for r in rows} == {"train", "valid", "test"}
    ours = [SAMPLE_DATA / "audio", SAMPLE_DATA / "alignments", SAMPLE_DATA / "manifest.csv", SAMPLE_DATA / "truth.json"]
    size = sum(f.stat().st_size for p in ours for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    assert size < 2.2e6
