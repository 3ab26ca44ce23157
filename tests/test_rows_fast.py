"""The per-item fast paths after the parse change no output (issue 17).

Each fast path of keyword search, labelling and shard writing is compared with the reference
path it short-cuts:

* `phrase_times`/`find_phrase`'s one-word-per-label search against the general word-run search,
  and the tier layout cache against analysing every file's tier names afresh;
* `KeywordSearch` (phrases prepared once per job; first words found as offsets in the joined
  labels' text; `sorted()` order check) against `phrase_times` one phrase at a time, and `align`
  reusing the tiers chosen while reading against choosing them again;
* `row_labels`' shared-template slices against `label_frames`, `build_row` against its previous
  implementation, `FrameGrid.time_to_frame_list` against `time_to_frame`, `item_float` against
  its previous form;
* `rows_to_table`'s itemgetter transposition and Arrow-pool list columns against per-column
  ``dict.get`` and numpy concatenation;
* `file_stamp`'s direct ``os.stat`` against its route through `location`, and the grouped item counters
  against ``Counter.update`` item by item;
* whole runs (align with many options, on synthetic, sample and real data, the bad-inputs
  corpus and a corpus of keyword and labelling edge cases; vad, accel and merge on sample_data):
  every result file byte for byte, fast paths on and off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import operator
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import anchorprep
import badinputs
from anchorprep import anchors as anchors_module
from anchorprep import storage as storage_module
from anchorprep.anchors import NO_ANCHOR, TargetWindow, label_frames, row_labels
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline import align as align_module
from anchorprep.pipeline import rows as rows_module
from anchorprep.pipeline import runner as runner_module
from anchorprep.shards import rows_to_table, shard_schema
from anchorprep.shards import schema as schema_module
from anchorprep.sources.alignments import keywords as keywords_module
from anchorprep.sources.alignments.keywords import (
    KeywordSearch, find_phrase, phrase_times, select_word_tier, select_word_tiers,
)
from anchorprep.sources.alignments.model import Alignment, Tier
from anchorprep.storage import file_stamp
from anchorprep.synthetic import write_synthetic_alignments
from conftest import REALDATA

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"


class _NoCache(dict):
    """A cache that never keeps anything: every lookup computes afresh."""

    def __setitem__(self, key, value) -> None:
        pass


def _general_labels(anchor_frames, anchor_classes, num_frames, window):
    return label_frames(anchor_frames, anchor_classes, num_frames, window)


def _replayed_stats(per_item):
    total = Counter()
    for item_stats in per_item:
        total.update(item_stats)
    return total


def _digest_with_file_stamp(items, read=None):
    """`inputs_stamp` as it was: a new `file_stamp` of every file (the stamps taken as the files
    were read, `read`, are not used)."""
    digest = hashlib.sha256()
    for item in items:
        for column in runner_module.INPUT_FILE_COLUMNS:
            path = item.get(column)
            if isinstance(path, str) and path:
                digest.update(f"{path}\0{file_stamp(path)}\n".encode())
    return digest.hexdigest()


def _phrase_times_one_by_one(self, tier):
    return [(t, phrase) for phrase in self.phrases
            for t in phrase_times(tier, phrase, edge=self.edge, regex=self.regex)]


def _alignment_without_tiers(self, item):
    """`AlignJob._alignment` without the tiers chosen while reading: `process` chooses them again."""
    alignment, utterance_relative, _ = _ALIGNMENT_WITH_TIERS(self, item)
    return alignment, utterance_relative, None


_ALIGNMENT_WITH_TIERS = align_module.AlignJob._alignment


@contextlib.contextmanager
def reference_paths():
    """Every fast path of this file off (the code as it was before them)."""
    patches = [
        (keywords_module.KeywordSearch, "times", _phrase_times_one_by_one),
        (keywords_module, "_nondecreasing", lambda values: all(map(operator.le, values, values[1:]))),
        (align_module.AlignJob, "_alignment", _alignment_without_tiers),
        (keywords_module, "_phrase_spans", lambda labels, firsts, words, cache:
            keywords_module._phrase_spans_multi(labels, words, cache)),
        (keywords_module, "_TIER_LAYOUTS", _NoCache()),
        (rows_module, "row_labels", _general_labels),
        (schema_module, "_pooled_flat", lambda values, dtype, total: None),
        (schema_module, "_transposed", lambda rows, names: None),
        (storage_module, "_plain_local", lambda path: False),
        (runner_module, "_total_stats", _replayed_stats),
        (runner_module, "inputs_stamp", _digest_with_file_stamp),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def run_files(out: Path) -> dict[str, bytes]:
    """Every file of a run folder that holds results (shards, summaries, manifest, errors, report)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "lock"}


def both_ways(run, tmp: Path) -> tuple[dict, dict]:
    """`run(out)` with the fast paths and with the reference paths, into folders of the same name."""
    run(tmp / "fast" / "out")
    with reference_paths():
        run(tmp / "reference" / "out")
    return run_files(tmp / "fast" / "out"), run_files(tmp / "reference" / "out")


def assert_same(fast: dict, reference: dict) -> None:
    assert sorted(fast) == sorted(reference)
    assert any(name.endswith(".parquet") for name in fast)
    different = [name for name in fast if fast[name] != reference[name]]
    assert not different


# --------------------------------------------------------------------------------------------
# Whole runs


ALIGN_OPTIONS = [
    dict(keyword="hey computer", shard_size=70),
    dict(keyword=["hey computer", "computer"], edge="start", anchor_rule="nearest", positive_window="-5:12", guard=3),
    dict(keyword=["hey", "hey computer"], edge="centre", subsampling=4, frame_shift_ms=12.5, snip_edges=False),
    dict(keyword=["hey|comp.*"], regex=True, shard_size=33),
    dict(keyword=["AH[012]", "k"], regex=True, level="phones", edge="centre"),
    dict(speech_onsets=True, min_pause_ms=80),
    dict(keyword="hey computer", require_keyword=True, speaker="all", sample_rate=22050),
    dict(keyword="hey computer", speaker="column", positive_window="-40:40", guard=50),
]


@pytest.mark.parametrize("options", ALIGN_OPTIONS, ids=lambda o: ",".join(sorted(o)))
def test_align_same_bytes_on_a_synthetic_corpus(tmp_path: Path, options: dict) -> None:
    manifest = write_synthetic_alignments(tmp_path / "corpus", 240, seed=5)
    assert_same(*both_ways(lambda out: anchorprep.align(manifest, out, **options), tmp_path))


@pytest.mark.parametrize("options", [
    dict(keyword=["hey computer", "okay computer"]),
    dict(keyword=["hey computer", "okay computer"], speaker="all", require_keyword=True, guard=4,
         positive_window="-3:20"),
    dict(speech_onsets=True, min_pause_ms=150, speaker="all"),
], ids=["keywords", "speaker-all", "onsets"])
def test_align_same_bytes_on_sample_data(tmp_path: Path, options: dict) -> None:
    assert_same(*both_ways(lambda out: anchorprep.align(SAMPLE / "manifest.csv", out, **options), tmp_path))


def _real_textgrid_manifest(tmp: Path) -> Path:
    grids = sorted((REALDATA / "textgrid").rglob("*.TextGrid"))
    items = [{"utt_id": f"real{i:04d}", "alignment_path": str(g)} for i, g in enumerate(grids)]
    return badinputs.write_manifest(tmp / "real.csv", items, ("utt_id", "alignment_path"))


@pytest.mark.skipif(not (REALDATA / "textgrid").is_dir(), reason="realdata missing")
@pytest.mark.parametrize("options", [
    dict(keyword=["the", "of the", "a"], speaker="all"),
    dict(keyword=["the"], shard_size=7),
    dict(keyword=["AH[012]", "s"], regex=True, level="phones", speaker="all", edge="start"),
    dict(speech_onsets=True, speaker="all", min_pause_ms=150),
], ids=["phrases", "plain", "phones-regex", "onsets"])
def test_align_same_bytes_on_every_real_textgrid(tmp_path: Path, options: dict) -> None:
    manifest = _real_textgrid_manifest(tmp_path)
    fast, reference = both_ways(lambda out: anchorprep.align(manifest, out, **options), tmp_path)
    assert_same(fast, reference)
    assert fast["errors.jsonl"]  # the real data includes files that fail, and how they fail is kept


def test_align_same_rows_and_errors_on_the_bad_inputs_corpus(tmp_path: Path) -> None:
    realdata = REALDATA if REALDATA.is_dir() else None
    cases = badinputs.align_cases(tmp_path / "inputs", realdata)
    items = badinputs.good_align_items(tmp_path / "inputs", n=12) + [case.item() for case in cases]
    manifest = badinputs.write_manifest(tmp_path / "manifest.csv", items)
    fast, reference = both_ways(
        lambda out: anchorprep.align(manifest, out, keyword="hey computer", shard_size=16), tmp_path)
    errors = [json.loads(line) for line in fast["errors.jsonl"].decode().splitlines()]
    assert {e["stage"] for e in errors} >= {"read_alignment", "read_audio", "find_keyword"}
    assert_same(fast, reference)


def test_vad_accel_and_merge_same_bytes_on_sample_data(tmp_path: Path) -> None:
    manifest, trigger = SAMPLE / "manifest.csv", SAMPLE / "trigger_manifest.csv"
    anchorprep.align(manifest, tmp_path / "kw", keyword=["hey computer", "okay computer"])
    calls = [
        lambda out: anchorprep.vad(manifest, out, offsets=True, shard_size=9),
        lambda out: anchorprep.vad(manifest, out, targets="vad", onsets="first"),
        lambda out: anchorprep.vad(trigger, out, anchors_from=tmp_path / "kw", onsets="first"),
        lambda out: anchorprep.accel(trigger, out, preset="raise"),
        lambda out: anchorprep.merge([tmp_path / "kw", tmp_path / "vad-inputs"], out),
        lambda out: anchorprep.merge([tmp_path / "kw", tmp_path / "vad-inputs"], out, use_source=["alignment", "vad"],
                                     agree_within_ms=300),
    ]
    anchorprep.vad(manifest, tmp_path / "vad-inputs", offsets=True)
    for index, call in enumerate(calls):
        assert_same(*both_ways(call, tmp_path / f"call{index}"))


# --------------------------------------------------------------------------------------------
# Keyword search


VOCAB = ["hey", "Hey", "HEY,", "computer", "computer.", "okay", "the", "", "sil", "<unk>", "spn", "!", "sp",
         "hey computer", "computer hey", "the hey", "  hey  ", "Ω", "ǅ"]
PHRASES = ["hey", "hey computer", "computer hey", "hey hey", "the hey computer", "spn", "<unk> computer",
           "computer computer"]


def _tier(labels: list[str], shuffled: bool = False) -> Tier:
    starts = [float(i) for i in range(len(labels))]
    intervals = [(s, s + 1.0, label) for s, label in zip(starts, labels)]
    if shuffled:
        intervals = intervals[1::2] + intervals[0::2]
    from anchorprep.sources.alignments.model import Interval
    return Tier("words", tuple(Interval(*iv) for iv in intervals))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=40), st.sampled_from(PHRASES), st.booleans(),
       st.sampled_from(["end", "start", "centre"]))
@example(["hey", "", "sil", "computer", "hey", "Computer."], "hey computer", False, "end")
def test_phrase_search_equals_the_general_search(labels, phrase, shuffled, edge) -> None:
    tier = _tier(labels, shuffled)
    fast = find_phrase(tier, phrase, edge=edge)
    with reference_paths():
        keywords_module._PARTS_CACHES.clear()  # the reference starts without the fast path's cache
        reference = find_phrase(tier, phrase, edge=edge)
    assert fast == reference
    assert phrase_times(tier, phrase, edge=edge) == [m.time for m in reference]


def test_phrase_search_equals_the_general_search_on_many_random_tiers() -> None:
    rng = np.random.default_rng(17)
    weights = np.array([4 if label in ("hey", "computer", "", "sil") else 1 for label in VOCAB], dtype=float)
    tiers = [_tier(list(rng.choice(VOCAB, size=int(rng.integers(0, 30)), p=weights / weights.sum())),
                   bool(rng.integers(0, 2))) for _ in range(1500)]
    fast = [[find_phrase(tier, phrase, edge="start") for phrase in PHRASES] for tier in tiers]
    with reference_paths():
        keywords_module._PARTS_CACHES.clear()
        reference = [[find_phrase(tier, phrase, edge="start") for phrase in PHRASES] for tier in tiers]
    assert fast == reference
    assert sum(len(matches) for per_tier in fast for matches in per_tier) > 1000


def test_regex_and_onsets_unchanged_by_the_label_cache() -> None:
    tier = _tier(["", "hey", "sil", "Computer", "<unk>", "", "hey"], shuffled=True)
    assert phrase_times(tier, "hey|comp.*", regex=True) == [m.time for m in find_phrase(tier, "hey|comp.*", regex=True)]
    assert keywords_module.speech_run_starts(tier, 0.5) == [1.0, 3.0, 6.0]


def _outcome(function, *args):
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc), str(exc)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=40),
       st.lists(st.sampled_from(PHRASES + ["!!", "Hey, computer", "hey|comp.*"]), min_size=1, max_size=3),
       st.booleans(), st.sampled_from(["end", "start", "centre", "center", "middle"]), st.booleans())
@example(["hey", "computer", "hey", "computer"], ["hey computer", "computer"], False, "end", False)
@example(["computer", "hey", "sil", "Computer."], ["hey computer", "hey"], False, "start", False)
def test_keyword_search_equals_phrase_times_one_by_one(labels, phrases, shuffled, edge, regex) -> None:
    tier = _tier(labels, shuffled)
    search = KeywordSearch(phrases, edge, regex=regex)
    expected = _outcome(_phrase_times_one_by_one, search, tier)
    assert _outcome(search.times, tier) == expected
    assert _outcome(search.times, tier) == expected  # labels now cached


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 1.0 - 1e-10, 1.0 + 1e-10, 2.0]), st.sampled_from(VOCAB)),
                max_size=12), st.sampled_from(PHRASES), st.sampled_from(["end", "start", "centre"]))
def test_keyword_search_on_tiers_out_of_order_and_tied(entries, phrase, edge) -> None:
    from anchorprep.sources.alignments.model import Interval
    tier = Tier("words", tuple(Interval(start, start + 0.25, label) for start, label in entries))
    search = KeywordSearch([phrase], edge)
    assert search.times(tier) == [(t, phrase) for t in phrase_times(tier, phrase, edge=edge)]
    with reference_paths():
        assert search.times(tier) == [(t, phrase) for t in phrase_times(tier, phrase, edge=edge)]


_LABEL_PIECES = ["hey", "HEY", "they", "he", "y", "-", ",", "'", '"', " ", "\t", "\n", "\x1c", "<", ">", "[unk]",
                 "[UNK]",
                 "é", "e\u0301", "_", ".", "!", ":", "$", "+", "sil", "w"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_LABEL_PIECES), max_size=5).map("".join), max_size=6),
       st.sampled_from(["hey", "they", "he", "y", "<hey>", "[unk]", "e", "hey-hey", "é", "h'e"]))
@example(["they", "whey"], "hey")
@example(["x", "-hey!"], "hey")
@example(["'Hey'\x1cthey"], "hey")
@example(["[UNK]"], "[unk]")
@example([" ,hey"], "hey")
def test_substring_filter_never_hides_a_first_word(labels, word) -> None:
    """Every label whose first word is `word` holds one of `_first_word_offsets` (so none means
    no such label), and on one-word lines `_lines_starting_with` finds exactly those labels."""
    text = keywords_module._ascii_text(labels)
    if not text:
        return
    unknown = keywords_module._UNKNOWN_FOLDED | {"[unk]", "<hey>"}
    cache = keywords_module._PartsCache(keywords_module._SILENCE_FOLDED, unknown)
    starting = [i for i, label in enumerate(labels) if cache.first[label] == word]
    offsets = keywords_module._first_word_offsets(word, text)
    label_starts = [sum(len(label) + 1 for label in labels[:i]) for i in range(len(labels))]
    for i in starting:
        assert any(label_starts[i] <= at < label_starts[i] + len(labels[i]) for at in offsets), (labels, i)
    if not offsets:
        assert not starting
    if keywords_module._one_word_lines(text, len(labels)):
        assert all(len(label.split()) <= 1 for label in labels)
        assert keywords_module._lines_starting_with(word, offsets, text, labels, cache.first) == starting


_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.sampled_from([0.0, -0.0]))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_NUMBERS, max_size=8),
                 st.lists(st.floats(allow_nan=False), max_size=8).map(sorted),
                 st.lists(st.floats(allow_nan=False), min_size=1, max_size=8).map(lambda v: sorted(v) + [math.nan]),
                 st.lists(st.integers(-5, 5), max_size=8).map(sorted)))
@example([math.nan])
@example([1.0, math.nan, 2.0])
@example([math.inf, math.inf])
@example([-math.inf, 0.0, math.inf])
@example([1e308, 1e308, 1e308])
@example([0.0, -0.0, 0.0])
def test_nondecreasing_equals_the_pairwise_test(values) -> None:
    assert keywords_module._nondecreasing(values) == all(map(operator.le, values, values[1:]))


def _edge_case_manifest(root: Path) -> Path:
    """TextGrids and manifest cells at the edges of keyword search and labelling."""
    def grid(name: str, tiers: list[tuple], xmax: str = "10") -> str:
        path = root / name
        path.write_text(badinputs.long_tg(tiers, xmax=xmax), encoding="utf-8")
        return str(path)

    at_end = [("0", "8.5", ""), ("8.5", "9.2", "hey"), ("9.2", "10", "computer")]
    two = [("0", "1", "hey"), ("1", "2", "computer"), ("2", "3", "Hey,"), ("3", "3.5", "sil"),
           ("3.5", "4", "computer.")]
    tied = [("0", "1", ""), ("1", "2", "hey"), ("2", "2", "sil"), ("1.9999999999", "3", "computer"), ("3", "10", "")]
    multi = [("0", "1", ""), ("1", "2.5", "hey computer"), ("2.5", "3", "hey"), ("3", "10", "computer")]
    speakers = [badinputs.words_tier(name="ann - words"), badinputs.words_tier(at_end, name="bob - words")]
    items = [
        ("end", grid("end.TextGrid", [badinputs.words_tier(at_end)]), "10.0"),
        ("end_cut", grid("end_cut.TextGrid", [badinputs.words_tier(at_end)]), "9.999"),
        ("end_no_duration", grid("end_nd.TextGrid", [badinputs.words_tier(at_end)]), ""),
        ("end_blank_duration", grid("end_bd.TextGrid", [badinputs.words_tier(at_end)]), "  "),
        ("two", grid("two.TextGrid", [badinputs.words_tier(two)]), "10"),
        ("tied", grid("tied.TextGrid", [badinputs.words_tier(tied)]), "10"),
        ("multi", grid("multi.TextGrid", [badinputs.words_tier(multi)]), "10"),
        ("speakers", grid("speakers.TextGrid", speakers), "10"),
        ("none", grid("none.TextGrid", [badinputs.words_tier([("0", "10", "hello")])]), "10"),
        ("empty", grid("empty.TextGrid", [badinputs.words_tier([])]), "10"),
        ("bad_duration", grid("bad.TextGrid", [badinputs.words_tier()]), "ten"),
        ("zero_duration", grid("zero.TextGrid", [badinputs.words_tier()]), "0"),
        ("huge_duration", grid("huge.TextGrid", [badinputs.words_tier()]), "1e400"),
        ("tiny_duration", grid("tiny.TextGrid", [badinputs.words_tier()]), "0.01"),
        ("phones_only", grid("phones.TextGrid", [badinputs.words_tier(name="phones")]), "10"),
    ]
    rows = [{"utt_id": utt, "alignment_path": path, "duration_s": duration,
             "speaker": "bob" if "speakers" in utt else ""} for utt, path, duration in items]
    return badinputs.write_manifest(root / "manifest.csv", rows, ("utt_id", "alignment_path", "duration_s", "speaker"))


@pytest.mark.parametrize("options", [
    dict(keyword="hey computer"),
    dict(keyword=["hey computer", "computer", "hey"], require_keyword=True, edge="centre"),
    dict(keyword=["computer", "hey computer"], speaker="all", edge="start", require_keyword=True),
    dict(keyword=["hey computer"], speaker="column"),
    dict(keyword=["hey computer"], speaker="bob", tier=None),
    dict(keyword=["hey computer"], tier="ann - words"),
    dict(keyword=["!!"]),
], ids=["plain", "require", "speaker-all", "column", "bob", "tier", "no-words"])
def test_align_same_bytes_on_keyword_and_label_edge_cases(tmp_path: Path, options: dict) -> None:
    manifest = _edge_case_manifest(tmp_path)

    def run(out: Path):
        try:
            anchorprep.align(manifest, out, shard_size=4, **options)
        except UsageError as exc:
            out.mkdir(parents=True, exist_ok=True)
            (out / "usage-error.txt").write_text(str(exc))

    fast, reference = both_ways(run, tmp_path)
    assert sorted(fast) == sorted(reference)
    assert all(fast[name] == reference[name] for name in fast)
    if options["keyword"] != ["!!"]:
        assert any(name.endswith(".parquet") for name in fast) and fast["errors.jsonl"]


def _alignment(*tiers: tuple[str, str]) -> Alignment:
    return Alignment(tuple(Tier(name, (), kind) for name, kind in tiers), 0.0, 1.0, path="x.TextGrid")


LAYOUTS = [
    [("words", "interval"), ("phones", "interval")],
    [("ann - words", "interval"), ("ann - phones", "interval"), ("bob - word", "interval"), ("bob - words", "point")],
    [("Words", "point"), ("ORT", "interval"), ("MAU", "interval")],
    [("ann - words", "interval"), ("words", "interval")],
    [("x", "interval")],
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("speaker", [None, "ann", "all", "bob", "nobody"])
@pytest.mark.parametrize("level", ["words", "phones"])
def test_tier_layout_cache_chooses_as_a_fresh_analysis(layout, speaker, level) -> None:
    def outcome(function, *args, **kwargs):
        try:
            found = function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - compared, not hidden
            return type(exc), str(exc)
        if isinstance(found, Tier):
            return found.name
        return [(s.speaker, s.tier.name) if hasattr(s, "tier") else s for s in found]

    alignment = _alignment(*layout)
    for _ in range(2):  # the second call hits the cache
        fast = [outcome(select_word_tiers, alignment, speaker=speaker, level=level),
                outcome(select_word_tier, alignment, speaker=None if speaker == "all" else speaker, level=level),
                outcome(keywords_module.speakers, alignment, level)]
        with reference_paths():
            reference = [outcome(select_word_tiers, alignment, speaker=speaker, level=level),
                         outcome(select_word_tier, alignment, speaker=None if speaker == "all" else speaker,
                                 level=level),
                         outcome(keywords_module.speakers, alignment, level)]
        assert fast == reference


# --------------------------------------------------------------------------------------------
# Labelling


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(-40, 200), max_size=3), st.integers(1, 160), st.integers(-35, 35), st.integers(0, 40),
       st.integers(0, 6), st.booleans())
def test_row_labels_equal_label_frames(frames, num_frames, lo, width, guard, windowed) -> None:
    window = TargetWindow(lo, lo + width, guard) if windowed else None
    anchor_frames = np.array(sorted(frames), dtype=np.int64)
    classes = [1 + i % 2 for i in range(len(frames))]
    fast = row_labels(anchor_frames, classes, num_frames, window)
    reference = label_frames(anchor_frames, classes, num_frames, window)
    for got, want in zip(fast, reference):
        if want is None:
            assert got is None
            continue
        assert got.dtype == want.dtype == np.int16 and not got.flags.writeable
        np.testing.assert_array_equal(got, want)


def test_row_labels_at_the_template_edges() -> None:
    window = TargetWindow(-100_000, 100_000, 3)  # bounds beyond int16
    for frame, num_frames in [(0, 1), (0, NO_ANCHOR), (NO_ANCHOR - 1, NO_ANCHOR), (5, NO_ANCHOR + 1), (0, 70_000)]:
        for win in (window, TargetWindow(0, 30), TargetWindow(-7, -2, 2), None):
            fast = row_labels(np.array([frame]), [3], num_frames, win)
            reference = label_frames(np.array([frame]), [3], num_frames, win)
            for got, want in zip(fast, reference):
                assert (got is None) == (want is None)
                if want is not None:
                    np.testing.assert_array_equal(got, want)
    grown = row_labels(np.zeros(0, dtype=np.int64), [], 100_000, TargetWindow())
    assert len(grown[0]) == 100_000 and (grown[0] == NO_ANCHOR).all() and not grown[1].any()


def test_rows_of_a_shard_share_no_writable_state() -> None:
    """Rows hold read-only views of shared templates: writing into one cannot change another."""
    a, _ = row_labels(np.array([3]), [1], 50, TargetWindow())
    with pytest.raises(ValueError):
        a[0] = 7
    assert anchors_module._RAMP.flags.writeable is False


# --------------------------------------------------------------------------------------------
# Shard tables, stamps and counters


def _reference_row(labelling: rows_module.Labelling, item: dict, extent: rows_module.Extent, events: list,
                   targets=None, used=None) -> tuple[dict, Counter]:
    """`Labelling.build_row` as it was: numpy frames, per-event comprehensions, general labels."""
    grid = labelling.grid
    num_frames = rows_module.check_item_frames(grid, extent.grid_samples)
    if num_frames == 0:
        raise rows_module.InputError("utterance is shorter than one frame")
    window = labelling.window if targets is None else None
    stats = Counter(utterances=1)
    if not events:
        times, frames, labels, sources = np.zeros(0), np.zeros(0, dtype=np.int32), [], []
        stats["negatives"] = 1
        distance, window_targets = label_frames(np.zeros(0, dtype=np.int64), (), num_frames, window)
    else:
        events = sorted(events, key=lambda e: (e.time_s, e.source, e.label))
        ids = labelling.label_ids
        times = np.array([e.time_s for e in events], dtype=np.float64)
        all_frames, after, before = grid.time_to_frame(times, num_frames, labelling.anchor_rule)
        stats.update(anchors=len(events), anchors_clipped_after_end=after, anchors_clipped_before_start=before)
        stats.update(f"anchors_from_{e.source}" for e in events)
        is_used = np.array([used is None or e in set(used) for e in events], dtype=bool)
        classes = [ids[e.label] for e, keep in zip(events, is_used) if keep]
        stats["positives" if is_used.any() else "negatives"] = 1
        distance, window_targets = label_frames(all_frames[is_used], classes, num_frames, window)
        frames = all_frames.astype(np.int32)
        labels, sources = [e.label for e in events], [e.source for e in events]
    if targets is not None and len(targets) != num_frames:
        raise rows_module.InputError("per-frame targets have the wrong length")
    return {
        "utt_id": str(item["utt_id"]), "audio_path": item.get("audio_path") or None, "start_s": extent.start_s,
        "duration_s": extent.duration_s, "sample_rate": extent.sample_rate, "num_frames": num_frames,
        "anchor_times_s": times, "anchor_frames": frames, "anchor_labels": labels, "anchor_sources": sources,
        "distance": distance, "target": np.asarray(window_targets if targets is None else targets, dtype=np.int16),
    }, stats


_LABELS = ("hey computer", "hey", "speech_onset")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.5, 3.5), st.sampled_from(_LABELS),
                          st.sampled_from(["alignment", "alignment:ann", "vad"])), max_size=5),
       st.floats(0.03, 3.0), st.sampled_from(["causal", "nearest"]), st.sampled_from([1, 4]),
       st.sampled_from(["all", "some", "none"]), st.booleans(), st.integers(-5, 5), st.integers(0, 40),
       st.integers(0, 4))
@example([(1.0, "hey", "vad")], 2.0, "causal", 1, "all", False, 0, 30, 0)
@example([(1.0, "hey", "vad"), (1.0, "hey", "alignment")], 2.0, "nearest", 4, "some", True, -3, 3, 2)
def test_build_row_equals_the_reference_row(events, duration, rule, subsampling, which, own_targets,
                                            lo, width, guard) -> None:
    labelling = rows_module.Labelling(FrameGrid(subsampling=subsampling),
                                      TargetWindow(lo, lo + width, guard), _LABELS, rule)
    item = {"utt_id": "u", "duration_s": str(duration)}
    extent = rows_module.utterance_extent(item, labelling.grid)
    events = [rows_module.AnchorEvent(*e) for e in events]
    used = None if which == "all" else events[::2] if which == "some" else []
    num_frames = labelling.grid.num_frames(extent.grid_samples)
    targets = np.arange(num_frames, dtype=np.int64) % 3 if own_targets else None

    def outcome(function):
        try:
            return function(labelling, item, extent, list(events), targets, used)
        except rows_module.InputError:
            return "InputError"

    fast, reference = outcome(rows_module.Labelling.build_row), outcome(_reference_row)
    if reference == "InputError":
        assert fast == reference
        return
    (row, stats), (want, want_stats) = fast, reference
    assert stats == want_stats and type(stats) is Counter
    assert row.keys() == want.keys()
    for name, value in want.items():
        if isinstance(value, np.ndarray):
            assert row[name].dtype == value.dtype and np.array_equal(row[name], value), name
        else:
            assert row[name] == value and type(row[name]) is type(value), name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-2.0, 12.0), st.sampled_from([0.0, 1.09, 0.0250625, -1e-12, 1e12])), max_size=20),
       st.integers(1, 1200), st.sampled_from(["causal", "nearest"]), st.sampled_from([1, 3]))
def test_time_to_frame_list_equals_time_to_frame(times, num_frames, rule, subsampling) -> None:
    grid = FrameGrid(subsampling=subsampling)
    frames, after, before = grid.time_to_frame(np.array(times, dtype=np.float64), num_frames, rule)
    listed = grid.time_to_frame_list(list(times), num_frames, rule)
    assert listed == (frames.tolist(), after, before)
    assert all(type(frame) is int for frame in listed[0])


_CELLS = st.one_of(st.none(),
                   st.sampled_from(["", " ", "\t", "10", " 2.5 ", "1e400", "nan", "-inf", "ten", "1,5", "0x10"]),
                   st.floats(allow_nan=True), st.integers(-3, 3), st.booleans())


@settings(max_examples=300, deadline=None)
@given(_CELLS, st.sampled_from([None, 0.0, 7.5]))
def test_item_float_equals_the_reference(raw, default) -> None:
    def reference(item, key, default):
        raw = item.get(key)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return default
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise rows_module.InputError(f"column {key} is not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise rows_module.InputError(f"column {key} is not finite: {raw!r}")
        return value

    item = {"duration_s": raw}
    assert _outcome(rows_module.item_float, item, "duration_s", default) == \
        _outcome(reference, item, "duration_s", default)


def _random_rows(rng: np.random.Generator, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        frames = int(rng.integers(0, 300))
        k = int(rng.integers(0, 3))
        rows.append({
            "utt_id": f"u{i}", "audio_path": None if i % 3 else f"a{i}.wav", "start_s": float(i), "duration_s": 1.5,
            "sample_rate": 16000, "num_frames": frames, "anchor_times_s": rng.random(k),
            "anchor_frames": rng.integers(0, 99, k).astype(np.int32), "anchor_labels": ["kw"] * k,
            "anchor_sources": ["alignment"] * k, "distance": rng.integers(-300, 300, frames).astype(np.int16),
            "target": rng.integers(-100, 3, frames).astype(np.int16), "speaker": f"s{i % 4}",
        })
    return rows


@pytest.mark.parametrize("variant", ["arrays", "lists", "mixed dtypes", "a missing column", "no rows"])
def test_rows_to_table_equals_the_reference_conversion(tmp_path: Path, variant: str) -> None:
    rows = _random_rows(np.random.default_rng(7), 0 if variant == "no rows" else 40)
    if variant == "lists":
        for row in rows:
            row["distance"], row["anchor_times_s"] = row["distance"].tolist(), row["anchor_times_s"].tolist()
    if variant == "mixed dtypes":
        rows[3]["target"] = rows[3]["target"].astype(np.int64)
        rows[5]["anchor_frames"] = rows[5]["anchor_frames"].astype(np.float64)
    if variant == "a missing column":
        del rows[2]["speaker"]
    schema = shard_schema(("speaker",), {"job": "test"})
    fast = rows_to_table(rows, schema)
    with reference_paths():
        reference = rows_to_table(rows, schema)
    assert fast.equals(reference) and fast.schema.metadata == reference.schema.metadata
    from anchorprep.shards.io import write_parquet_atomic
    assert write_parquet_atomic(tmp_path / "a.parquet", fast) == write_parquet_atomic(tmp_path / "b.parquet", reference)


def test_inputs_stamp_equals_the_file_stamp_digest(tmp_path: Path) -> None:
    present = tmp_path / "a.TextGrid"
    present.write_text("x")
    os.symlink(present, tmp_path / "link.TextGrid")
    items = [
        {"alignment_path": str(present), "audio_path": ""},
        {"alignment_path": str(present) + "/", "audio_path": None},  # a trailing slash: Path drops it
        {"alignment_path": str(present) + "/.", "audio_path": str(tmp_path) + "//a.TextGrid"},
        {"alignment_path": str(tmp_path / "missing.TextGrid"), "accel_path": f"file://{present}"},
        {"alignment_path": str(tmp_path / "link.TextGrid"), "audio_path": str(tmp_path / "." / "a.TextGrid")},
        {"alignment_path": "relative/not/there.TextGrid", "audio_path": str(tmp_path)},
        {"alignment_path": str(present), "accel_path": 3.5},
    ]
    assert runner_module.inputs_stamp(items) == _digest_with_file_stamp(items)
    paths = [path for item in items for path in item.values() if isinstance(path, str) and path]
    assert [file_stamp(path) for path in paths] == [storage_module._located_stamp(path) for path in paths]


@pytest.mark.parametrize("counts", [
    [Counter(utterances=1, anchors=2, positives=1), Counter(utterances=1, negatives=1, anchors_clipped=0)] * 5,
    [Counter(utterances=1, flag=True), Counter(utterances=1)],  # a bool stays what Counter.update makes of it
    [Counter(seconds=0.1), Counter(seconds=0.2), Counter(seconds=0.1)] * 3,  # float sums in item order
    [Counter(utterances=1, odd=[1])],  # unhashable
    [],
])
def test_grouped_counters_equal_counter_update(counts) -> None:
    fast, reference = runner_module._total_stats(counts), _replayed_stats(counts)
    assert fast == reference
    assert {k: (type(v), v) for k, v in fast.items()} == {k: (type(v), v) for k, v in reference.items()}
