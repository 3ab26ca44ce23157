"""The align fast paths change no output (issue 17).

Each fast path is compared with the reference path it short-cuts, on the same inputs:

* TextGrid parsing: columnar tiers (intervals built only for the tiers a job reads) and the
  canonical-indentation grammar against the general grammar and praatio (every real TextGrid,
  generated grids); the fuzz corpus comparison is tests/test_fuzz.py's `same_outcome`;
* `FrameGrid.time_to_frame`'s scalar path and `label_frames`' one-anchor path against their
  numpy paths;
* whole runs: shard bytes, errors.jsonl and stats of `anchorprep.align` with every fast path on
  and with all of them off (praatio parsing, numpy framing and labelling), on a 2,000-item
  synthetic corpus, sample_data, and the bad-inputs corpus (tests/badinputs.py, with realdata).
"""

from __future__ import annotations

import contextlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anchorprep
import badinputs
from anchorprep import anchors as anchors_module
from anchorprep import grid as grid_module
from anchorprep.anchors import TargetWindow, label_frames
from anchorprep.errors import InputError
from anchorprep.grid import FrameGrid
from anchorprep.sources.alignments import textgrid as textgrid_module
from anchorprep.sources.alignments.keywords import find_phrase, select_word_tier
from anchorprep.sources.alignments.model import Interval, Tier
from anchorprep.sources.alignments.textgrid import parse_textgrid_praatio, parse_textgrid_text, read_textgrid
from anchorprep.synthetic import synthetic_utterance, textgrid_text, write_synthetic_alignments
from conftest import REALDATA

REPO = Path(__file__).resolve().parents[1]
TG = "textgrid"


@contextlib.contextmanager
def reference_paths():
    """Every align fast path off: praatio parses (every tier), numpy frames and labels."""
    saved = (textgrid_module._parse_fast, textgrid_module._parse_lazy, grid_module._SCALAR_EVENTS,
             anchors_module._one_anchor)
    textgrid_module._parse_fast = textgrid_module._parse_lazy = lambda text, path, encoding: None
    grid_module._SCALAR_EVENTS = -1
    anchors_module._one_anchor = lambda *args: None
    try:
        yield
    finally:
        (textgrid_module._parse_fast, textgrid_module._parse_lazy, grid_module._SCALAR_EVENTS,
         anchors_module._one_anchor) = saved


def run_files(out: Path) -> dict[str, bytes]:
    """Every file of a run folder that holds results (shards, manifest, errors, report)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".anchorprep" not in p.parts}


def align_both_ways(inputs: Path, tmp: Path, **options) -> tuple[dict, dict]:
    fast_out, reference_out = tmp / "fast", tmp / "reference"
    anchorprep.align(inputs, fast_out, workers=1, **options)
    with reference_paths():
        anchorprep.align(inputs, reference_out, workers=1, **options)
    return run_files(fast_out), run_files(reference_out)


# --------------------------------------------------------------------------------------------
# Whole runs


def test_same_bytes_on_a_2000_item_synthetic_corpus(tmp_path: Path) -> None:
    manifest = write_synthetic_alignments(tmp_path / "corpus", 2000, seed=3)
    fast, reference = align_both_ways(manifest, tmp_path, keyword="hey computer", shard_size=500)
    assert sorted(fast) == sorted(reference) and len([f for f in fast if f.endswith(".parquet")]) == 4
    assert fast == reference


def test_same_bytes_on_sample_data(tmp_path: Path) -> None:
    fast, reference = align_both_ways(REPO / "sample_data" / "manifest.csv", tmp_path,
                                      keyword=["hey computer", "okay computer"])
    assert fast == reference


def test_same_rows_and_errors_on_the_bad_inputs_corpus(tmp_path: Path) -> None:
    realdata = REALDATA if REALDATA.is_dir() else None
    cases = badinputs.align_cases(tmp_path / "inputs", realdata)
    items = badinputs.good_align_items(tmp_path / "inputs", n=12) + [case.item() for case in cases]
    manifest = badinputs.write_manifest(tmp_path / "manifest.csv", items)
    fast, reference = align_both_ways(manifest, tmp_path, keyword="hey computer", shard_size=16)
    errors = [json.loads(line) for line in fast["errors.jsonl"].decode().splitlines()]
    assert errors and {e["stage"] for e in errors} >= {"read_alignment", "read_audio"}
    assert fast == reference


# --------------------------------------------------------------------------------------------
# TextGrid parsing


def _real_textgrids() -> list[Path]:
    root = REALDATA / TG
    return sorted(root.rglob("*.TextGrid")) if root.is_dir() else []


def outcome(function, *args):
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc), str(exc)


@pytest.mark.skipif(not _real_textgrids(), reason="realdata missing")
def test_every_real_textgrid_same_alignment_and_keywords_as_praatio() -> None:
    """Columnar tiers equal praatio's eager ones, and keyword search on them finds the same."""
    for path in _real_textgrids():
        text, encoding = textgrid_module.decode_textgrid_bytes(path.read_bytes(), str(path))
        try:
            reference = parse_textgrid_praatio(text, str(path), encoding)
        except InputError as exc:
            with pytest.raises(InputError) as raised:
                parse_textgrid_text(text, str(path), encoding)
            assert str(raised.value) == str(exc)
            continue
        fast = parse_textgrid_text(text, str(path), encoding)
        for tier, expected in zip(fast.tiers, reference.tiers):
            assert tier.columns() == expected.columns()
            words = sorted({iv.label for iv in expected.intervals if iv.label.strip()})[:5]
            for word in words:
                assert outcome(find_phrase, tier, word) == outcome(find_phrase, expected, word)
        assert fast == reference and fast.meta == reference.meta


@pytest.mark.skipif(not _real_textgrids(), reason="realdata missing")
def test_canonical_grammar_matches_the_general_grammar_on_real_files() -> None:
    taken = 0
    for path in _real_textgrids():
        text = textgrid_module.decode_textgrid_bytes(path.read_bytes(), str(path))[0].replace("\r\n", "\n")
        assert_canonical_agrees(text)
        taken += _canonical_tiers(text) is not None
    assert taken > 0


def _canonical_tiers(text: str):
    header = textgrid_module._LONG_HEADER.match(text)
    if header is None:
        return None
    found = textgrid_module._LONG_ITEMS_CANONICAL.findall(text, header.end())
    return textgrid_module._tiers_in(found, text, header.end(), int(header.group(3)), True)


def assert_canonical_agrees(text: str) -> None:
    canonical = _canonical_tiers(text)
    if canonical is not None:
        header = textgrid_module._LONG_HEADER.match(text)
        found = textgrid_module._LONG_ITEMS.findall(text, header.end())
        assert canonical == textgrid_module._tiers_in(found, text, header.end(), int(header.group(3)), True)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 4000), edit=st.sampled_from(
    ["", " ", "\t", "  ", "x", "\n", "1", "-", '"', "[", "e5"]))
def test_canonical_grammar_matches_the_general_grammar_on_edited_grids(seed: int, cut: int, edit: str) -> None:
    rng = np.random.default_rng(seed)
    words, phones = synthetic_utterance(rng, 10.0, 8, ["hey", "computer"])
    text = textgrid_text(words, phones, 10.0)
    cut %= len(text)
    edited = text[:cut] + edit + text[cut:]
    assert_canonical_agrees(edited)
    try:
        reference = parse_textgrid_praatio(edited)
    except InputError:
        with pytest.raises(InputError):
            parse_textgrid_text(edited)
        return
    assert parse_textgrid_text(edited) == reference


def test_columnar_tier_equals_the_eager_tier(tmp_path: Path) -> None:
    words, phones = synthetic_utterance(np.random.default_rng(5), 10.0, 12, ["hey", "computer"])
    path = tmp_path / "x.TextGrid"
    path.write_text(textgrid_text(words, phones, 10.0).replace('"hey"', '" hey "'), encoding="utf-8")
    alignment = read_textgrid(path)
    tier = alignment.get_tier("words")
    assert "_pending" in tier.__dict__ and "intervals" not in tier.__dict__  # nothing built yet
    eager = Tier(tier.name, tuple(Interval(s, e, label) for s, e, label in zip(*tier.columns())), tier.kind,
                 tier.xmin, tier.xmax)
    assert "intervals" not in tier.__dict__  # columns alone build no intervals
    assert " hey " not in tier.columns()[2] and "hey" in tier.columns()[2]  # labels stripped as praatio does
    assert [m.time for m in find_phrase(tier, "hey computer")] == [m.time for m in find_phrase(eager, "hey computer")]
    assert tier == eager and eager == tier and hash(tier) == hash(eager) and repr(tier) == repr(eager)
    restored = pickle.loads(pickle.dumps(alignment))
    assert restored == alignment and "_pending" not in restored.get_tier("phones").__dict__
    assert select_word_tier(restored).intervals == eager.intervals
    with pytest.raises(AttributeError):
        tier.no_such_attribute  # noqa: B018


# --------------------------------------------------------------------------------------------
# Framing and labelling


@settings(max_examples=500, deadline=None)
@given(times=st.lists(st.one_of(st.floats(-5, 50, allow_nan=False), st.integers(0, 5000).map(lambda k: k / 1000)),
                      max_size=6),
       num_frames=st.integers(1, 5000), rule=st.sampled_from(["causal", "nearest"]),
       grid_args=st.sampled_from([{}, {"snip_edges": False}, {"subsampling": 3}, {"sample_rate": 22050},
                                  {"sample_rate": 8000, "frame_shift_ms": 12.5, "frame_length_ms": 30}]))
def test_scalar_time_to_frame_equals_numpy(times: list[float], num_frames: int, rule: str, grid_args: dict) -> None:
    grid = FrameGrid(**grid_args)
    fast = grid.time_to_frame(list(times), num_frames, rule)
    reference = grid.time_to_frame(np.array(times, dtype=np.float64), num_frames, rule)
    assert fast[0].dtype == reference[0].dtype == np.int64
    assert fast[0].tolist() == reference[0].tolist() and fast[1:] == reference[1:]


@settings(max_examples=500, deadline=None)
@given(frame=st.integers(-3, 400), num_frames=st.integers(1, 400), lo=st.integers(-40, 40), width=st.integers(0, 40),
       guard=st.integers(0, 5), label=st.integers(1, 3), windowed=st.booleans())
def test_one_anchor_labels_equal_the_general_path(frame, num_frames, lo, width, guard, label, windowed) -> None:
    window = TargetWindow(lo, lo + width, guard) if windowed else None
    fast = label_frames(np.array([frame], dtype=np.int64), [label], num_frames, window)
    saved, anchors_module._one_anchor = anchors_module._one_anchor, lambda *args: None
    try:
        reference = label_frames(np.array([frame], dtype=np.int64), [label], num_frames, window)
    finally:
        anchors_module._one_anchor = saved
    assert fast[0].dtype == reference[0].dtype and np.array_equal(fast[0], reference[0])
    assert (fast[1] is None) == (reference[1] is None)
    if fast[1] is not None:
        assert fast[1].dtype == reference[1].dtype and np.array_equal(fast[1], reference[1])


def test_label_map_and_grid_constants_are_built_once() -> None:
    from anchorprep.pipeline.rows import Labelling

    labelling = Labelling(FrameGrid(), TargetWindow(), ("hey computer", "okay computer"))
    assert labelling._label_ids is labelling._label_ids
    assert labelling.label_ids == {"background": 0, "hey computer": 1, "okay computer": 2}
    labelling.label_ids["x"] = 9  # the public map is a copy
    assert "x" not in labelling._label_ids
    grid = FrameGrid(sample_rate=22050)
    assert (grid.shift, grid.length) == (220, 551) and "shift" in grid.__dict__
    assert grid == FrameGrid(sample_rate=22050) and grid.to_dict() == FrameGrid(sample_rate=22050).to_dict()
    assert pickle.loads(pickle.dumps(grid)) == grid
    assert grid.num_samples(1.0) == 22050 and grid.resampled_length(22050, 22050) == 22050
    assert grid.resampled_length(16000, 8000) == int(np.floor(16000 * 22050 / 8000 + 0.5))
    for value in (float("nan"), float("inf")):
        with pytest.raises((ValueError, OverflowError)) as raised:
            grid.num_samples(value)
        with pytest.raises(raised.type):
            int(np.floor(value * 22050 + 0.5))
