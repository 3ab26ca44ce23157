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


# --------------------------------------------------------------------------------------------
# Lazy tiers: an align job validates in full only the tiers it reads (issue 17)


def _exact_tier(tier: Tier) -> tuple:
    starts, ends, labels = tier.columns()
    return tier.kind, repr(tier.xmin), repr(tier.xmax), list(map(repr, starts)), list(map(repr, ends)), labels


def _only_tiers(text: str, lazy, indices: list[int]) -> str:
    """`text` cut down to the tiers `indices` of its lazy parse `lazy` (declared count adjusted)."""
    header = textgrid_module._LONG_HEADER.match(text)
    stops = [tier.__dict__["_pending"].stop for tier in lazy.tiers]
    starts = [header.end(), *stops[:-1]]
    kept = "".join(text[starts[i]:stops[i]] for i in indices)
    return text[:header.start(3)] + str(len(indices)) + text[header.end(3):header.end()] + kept


def assert_lazy_agrees(text: str, indices: list[int]) -> str:
    """The lazy parse with tiers `indices` loaded against the full parse of `text`:

    * the full path accepts: the lazy one gives the same grid, names, renames, meta, tier bounds,
      and the same read tiers (floats by repr);
    * the lazy path fails: with the full path's own message;
    * only the full path fails: the damage is outside the read tiers, i.e. the text cut down to
      the read tiers is accepted by the full path, with the same tiers.
    Returns which of the three happened."""
    path = "x.TextGrid"
    try:
        full, full_error = parse_textgrid_text(text, path, "utf-8"), None
    except InputError as exc:
        full, full_error = None, str(exc)
    try:
        lazy = parse_textgrid_text(text, path, "utf-8", lazy=True)
        read = [lazy.tiers[i].load() for i in indices if i < len(lazy.tiers)]
    except InputError as exc:
        assert str(exc) == full_error
        return "both fail"
    if full is not None:
        assert [(t.name, t.kind, repr(t.xmin), repr(t.xmax)) for t in lazy.tiers] == \
            [(t.name, t.kind, repr(t.xmin), repr(t.xmax)) for t in full.tiers]
        assert (repr(lazy.xmin), repr(lazy.xmax), lazy.path, lazy.meta) == (repr(full.xmin), repr(full.xmax), full.path,
                                                                             full.meta)
        assert [_exact_tier(t) for t in read] == [_exact_tier(full.tiers[i]) for i in indices if i < len(full.tiers)]
        assert all(find_phrase(t, "hey computer") == find_phrase(full.tiers[i], "hey computer")
                   for t, i in zip(read, indices))
        return "same"
    indices = [i for i in indices if i < len(lazy.tiers)]
    cut = parse_textgrid_text(_only_tiers(text, lazy, indices), path, "utf-8")
    names_in_file = [lazy.meta["renamed_tiers"].get(lazy.tiers[i].name, lazy.tiers[i].name) for i in indices]
    assert [t.name for t in cut.tiers] == names_in_file
    assert [_exact_tier(t) for t in cut.tiers] == [_exact_tier(t) for t in read]
    return "unread tier damaged"


@pytest.mark.skipif(not _real_textgrids(), reason="realdata missing")
def test_lazy_tiers_equal_the_full_parse_on_every_real_textgrid() -> None:
    outcomes = []
    for path in _real_textgrids():
        text = textgrid_module.decode_textgrid_bytes(path.read_bytes(), str(path))[0].replace("\r\n", "\n")
        try:
            count = len(parse_textgrid_text(text, lazy=True).tiers)
        except InputError:
            count = 1
        for indices in [[i] for i in range(count)] + [list(range(count))]:
            outcomes.append(assert_lazy_agrees(text, indices))
    assert "same" in outcomes


# Non-ASCII edits send the structure counts through `str.count` instead of numpy (ASCII texts).
_EDITS = ["", " ", "x", "\n", "1", "-", '"', "[", "e5", "0.0", ".", "item [", "\n        intervals [9]:", "é",
          "\u3000[", "\u2028"]


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 10**6), edit=st.sampled_from(_EDITS),
       removed=st.integers(0, 30), truncate=st.booleans(), indices=st.sampled_from([[0], [1], [0, 1]]))
def test_lazy_tiers_on_edited_mfa_grids(seed: int, cut: int, edit: str, removed: int, truncate: bool,
                                        indices: list[int]) -> None:
    rng = np.random.default_rng(seed)
    words, phones = synthetic_utterance(rng, 10.0, 8, ["hey", "computer"])
    text = textgrid_text(words, phones, 10.0)
    cut %= len(text)
    edited = text[:cut] if truncate else text[:cut] + edit + text[cut + removed:]
    assert_lazy_agrees(edited, indices)


def test_lazy_tiers_on_the_fuzz_grids() -> None:
    from test_fuzz import mutate_text, mutation, textgrids

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(textgrids(), st.lists(mutation, max_size=3), st.integers(0, 4))
    def check(grid, ops, index) -> None:
        assert_lazy_agrees(mutate_text(grid[0], ops), [index])

    check()


def _phones_value(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with the first `count` `old` in the phones tier's intervals (not its header) replaced."""
    phones = text.index("intervals [1]:", text.index('name = "phones"'))
    return text[:phones] + text[phones:].replace(old, new, count)


def test_a_damaged_unread_tier_no_longer_fails_the_item(tmp_path: Path) -> None:
    """The one change of lazy tiers: a bad value in the phones tier of an MFA grid no longer
    fails a words job; a cut phones tier, a bad words value, still fail with the same error."""
    clean = write_synthetic_alignments(tmp_path / "clean", 5, seed=3)
    manifest = write_synthetic_alignments(tmp_path / "corpus", 5, seed=3)
    grids = sorted((tmp_path / "corpus" / "grids").glob("*.TextGrid"))
    text = [g.read_text(encoding="utf-8") for g in grids]
    grids[1].write_text(_phones_value(text[1], "xmax = ", "xmax = 1.2.3"), encoding="utf-8")  # garbled time
    grids[2].write_text(text[2][:-80], encoding="utf-8")  # cut inside the phones tier
    words_value = text[3].index("xmax = ", text[3].index('name = "words"') + 60)
    grids[3].write_text(text[3][:words_value] + "xmax = x" + text[3][words_value + 7:], encoding="utf-8")
    grids[4].write_text(_phones_value(text[4], "xmin = ", "xmin = 9", 3), encoding="utf-8")  # overlapping phones

    lazy = parse_textgrid_text(grids[1].read_text(encoding="utf-8"), str(grids[1]), lazy=True)
    assert lazy.get_tier("words").load().columns() == read_textgrid(clean.parent / "grids" / grids[1].name).get_tier(
        "words").columns()
    with pytest.raises(InputError, match="interval 1 of tier .phones. is .1.2.3"):
        lazy.get_tier("phones").columns()  # read after all: the full path's error

    fast, reference = align_both_ways(manifest, tmp_path, keyword="hey computer")
    anchorprep.align(clean, tmp_path / "clean_out", workers=1, keyword="hey computer")
    errors = {json.loads(line)["utt_id"]: line for line in fast["errors.jsonl"].decode().splitlines()}
    reference_errors = {json.loads(line)["utt_id"]: line for line in reference["errors.jsonl"].decode().splitlines()}
    assert sorted(reference_errors) == ["utt0000001", "utt0000002", "utt0000003", "utt0000004"]
    assert {utt: reference_errors[utt] for utt in errors} == errors  # same errors, byte for byte
    assert sorted(errors) == ["utt0000002", "utt0000003"]
    assert {json.loads(line)["stage"] for line in errors.values()} == {"read_alignment"}
    assert "truncated" in errors["utt0000002"] or "malformed" in errors["utt0000002"]

    import pyarrow.parquet as pq

    def rows(folder: Path) -> dict:
        table = pq.read_table(sorted(folder.glob("**/*.parquet"))).to_pylist()
        return {row["utt_id"]: row for row in table}

    fixed, clean_rows = rows(tmp_path / "fast"), rows(tmp_path / "clean_out")
    assert sorted(fixed) == ["utt0000000", "utt0000001", "utt0000004"]
    assert all(fixed[utt] == clean_rows[utt] for utt in fixed)


def test_lazy_tiers_pickle_and_compare_like_eager_ones(tmp_path: Path) -> None:
    words, phones = synthetic_utterance(np.random.default_rng(7), 10.0, 12, ["hey", "computer"])
    text = textgrid_text(words, phones, 10.0)
    lazy, full = parse_textgrid_text(text, lazy=True), parse_textgrid_text(text)
    assert all(callable(t.__dict__["_pending"]) for t in lazy.tiers)  # nothing parsed yet
    restored = pickle.loads(pickle.dumps(lazy))
    assert restored == full == lazy and restored.meta == full.meta
    assert all("_pending" not in t.__dict__ for t in restored.tiers)
    assert textgrid_module.fast_path_counts()["lazy"] > 0


# --------------------------------------------------------------------------------------------
# The plain-TextGrid route of `utterance_alignment` (a local `.TextGrid` path read with one stat,
# open and read, no format sniffing) against the general route, on every kind of odd input


@contextlib.contextmanager
def general_route():
    """`utterance_alignment` and `storage.read_bytes` as before the plain-TextGrid route."""
    from anchorprep import storage
    from anchorprep.sources.alignments import formats

    saved = formats._plain_textgrid, storage.read_regular_bytes
    formats._plain_textgrid = lambda path, format: False
    storage.read_regular_bytes = lambda path: None
    try:
        yield
    finally:
        formats._plain_textgrid, storage.read_regular_bytes = saved


def alignment_outcome(path, format: str = "auto", lazy: bool = True):
    """What `utterance_alignment` gives: the tiers' columns and meta, or the error's type and text."""
    from anchorprep.sources.alignments.formats import utterance_alignment

    try:
        alignment, relative = utterance_alignment(path, "utt", format, reads=(lambda a: a.tiers[:1]) if lazy else None)
    except Exception as exc:  # noqa: BLE001 - the outcome compared
        return type(exc).__name__, str(exc)
    return ([(t.name, t.kind, t.xmin, t.xmax, [list(c) for c in t.columns()]) for t in alignment.tiers],
            alignment.xmin, alignment.xmax, alignment.meta, relative)


def odd_alignment_paths(tmp_path: Path) -> list[tuple[str, str]]:
    import os
    import socket

    words, phones = synthetic_utterance(np.random.default_rng(1), 10.0, 8, ["hey", "computer"])
    good = textgrid_text(words, phones, 10.0)
    grids = tmp_path / "grids"
    grids.mkdir()
    cases = {"good.TextGrid": good.encode(), "upper.TEXTGRID": good.encode(), "other.txt": good.encode(),
             ".TextGrid": good.encode(), "empty.TextGrid": b"", "blank.TextGrid": b" \n\t\n",
             "binary.TextGrid": b"\x00\x01ooBinaryFile\x00" * 40, "utf16.TextGrid": good.encode("utf-16"),
             "utf16be-nobom.TextGrid": good.encode("utf-16-be"), "latin1.TextGrid": good.replace("a", "\xe9", 3).encode("latin-1"),
             "crlf.TextGrid": good.replace("\n", "\r\n").encode(), "cut.TextGrid": good.encode()[: len(good) // 2]}
    for name, data in cases.items():
        (grids / name).write_bytes(data)
    (grids / "folder.TextGrid").mkdir()
    os.mkfifo(grids / "fifo.TextGrid")
    os.symlink(grids / "fifo.TextGrid", grids / "link-to-fifo.TextGrid")
    os.symlink(grids / "good.TextGrid", grids / "link.TextGrid")
    os.symlink(grids / "nowhere.TextGrid", grids / "dangling.TextGrid")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(grids / "socket.TextGrid"))
    sock.close()
    paths = [str(grids / name) for name in [*cases, "folder.TextGrid", "fifo.TextGrid", "link-to-fifo.TextGrid",
                                            "link.TextGrid", "dangling.TextGrid", "socket.TextGrid", "missing.TextGrid"]]
    paths += [str(grids / "good.TextGrid") + "/", str(grids / "good.TextGrid") + "/.", str(grids) + "//good.TextGrid",
              str(grids / "good.TextGrid" / "inside.TextGrid"), "/dev/null.TextGrid", "relative/missing.TextGrid",
              "bad\0name.TextGrid", f"file://{grids}/good.TextGrid", "nosuchproto://x/y.TextGrid", "/dev/null"]
    return [(path, fmt) for path in paths for fmt in ("auto", "textgrid", "TextGrid")]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_plain_textgrid_route_gives_what_the_general_route_gives(tmp_path: Path) -> None:
    """Same tiers or the same error (type and text) for odd paths and contents: missing, a
    folder, a FIFO (refused without blocking), a socket, a device, trailing ``/`` and ``/.``,
    empty, blank, binary, UTF-16, Latin-1, CRLF, cut, symlinks, URLs; lazy and eager."""
    cases = odd_alignment_paths(tmp_path)
    fast = [alignment_outcome(path, fmt, lazy) for path, fmt in cases for lazy in (True, False)]
    with general_route():
        general = [alignment_outcome(path, fmt, lazy) for path, fmt in cases for lazy in (True, False)]
    for (path, fmt), ours, theirs in zip([c for c in cases for _ in (0, 1)], fast, general):
        assert ours == theirs, (path, fmt)
    assert any(isinstance(outcome[0], list) for outcome in fast)  # some read, some refused
    assert any("named pipe (FIFO)" in str(outcome) for outcome in fast)
    assert any("socket" in str(outcome) for outcome in fast)


def test_read_regular_bytes_reads_regular_files_only(tmp_path: Path) -> None:
    """The local read behind `storage.read_bytes`: a regular file's bytes (also larger than one
    read), None for everything `Path` would rewrite or that is not a regular file."""
    import os

    from anchorprep.storage import read_bytes, read_regular_bytes

    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20000)
    small = tmp_path / "small.txt"
    small.write_bytes(b"abc")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")
    assert read_regular_bytes(str(big)) == big.read_bytes() == read_bytes(str(big))
    assert read_regular_bytes(str(small)) == b"abc" and read_regular_bytes(str(empty)) == b""
    for declined in (big, str(small) + "/", str(small) + "/.", str(tmp_path), str(tmp_path / "fifo"), "/dev/zero",
                     str(tmp_path / "missing"), "", f"file://{small}", "a\0b"):
        assert read_regular_bytes(declined) is None, declined
    assert read_bytes(f"file://{small}") == b"abc" and read_bytes(small) == b"abc"
    if os.path.exists("/proc/version"):  # a regular file that reports no size: read to its end
        assert read_regular_bytes("/proc/version") == Path("/proc/version").read_bytes() != b""


@pytest.mark.parametrize("grown", [1, 2, 70_000, 200_000])
def test_read_regular_bytes_reads_a_file_that_grew_since_its_stat_to_its_end(tmp_path: Path, monkeypatch,
                                                                               grown: int) -> None:
    import os

    from anchorprep import storage

    data = bytes(range(256)) * 1000
    path = tmp_path / "grown.bin"
    path.write_bytes(data)
    real_stat = os.stat

    def stale_stat(name, *args, **kwargs):  # the size the file had before `grown` bytes were appended
        found = real_stat(name, *args, **kwargs)
        if os.fspath(name) != str(path):
            return found
        fields = list(found)
        fields[6] = max(0, found.st_size - grown)  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(storage.os, "stat", stale_stat)
    assert storage.read_regular_bytes(str(path)) == data


@pytest.mark.parametrize("tail", ["", "\n", "\n\n", " \n", "\t\n", "\n ", "\n\t \n", " ", "x\n", "\n\nx"])
def test_lazy_tiers_with_any_blank_tail(tail: str) -> None:
    """The end of the last non-blank line is found with or without a copy of the text: same outcome."""
    words, phones = synthetic_utterance(np.random.default_rng(2), 10.0, 8, ["hey", "computer"])
    text = textgrid_text(words, phones, 10.0).rstrip(" \t\n") + tail
    for indices in ([0], [1], [0, 1]):
        assert_lazy_agrees(text, indices)
    lazy_before = textgrid_module.fast_path_counts()["lazy"]
    try:
        parse_textgrid_text(text, lazy=True)
    except InputError:
        pass
    if tail in ("\n", "\n\n", "\n ", "\n\t \n"):
        assert textgrid_module.fast_path_counts()["lazy"] == lazy_before + 1


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_shard_stamp_from_the_reads_equals_a_fresh_stat(tmp_path: Path, monkeypatch) -> None:
    """`process_shard` stamps the files it read from the stat it read them after
    (`stamps_of_reads`), and only stats the others: the same stamp as `inputs_stamp` with a new
    stat of every file, for good, missing, folder, FIFO, duplicate and non-TextGrid paths."""
    import os

    from anchorprep.grid import FrameGrid
    from anchorprep.pipeline import runner as runner_module
    from anchorprep.pipeline.align import AlignJob, AlignOptions
    from anchorprep.pipeline.rows import Labelling
    from anchorprep.sources.items import read_manifest

    manifest = write_synthetic_alignments(tmp_path / "corpus", 12, seed=3)
    grids = manifest.parent
    (grids / "folder.TextGrid").mkdir()
    os.mkfifo(grids / "fifo.TextGrid")
    (grids / "other.csv").write_text("start,end,label\n")
    with open(manifest, "a", encoding="utf-8") as handle:
        for i, name in enumerate(["missing.TextGrid", "folder.TextGrid", "fifo.TextGrid", "other.csv",
                                  "grids/utt0000001.TextGrid"]):
            handle.write(f"odd{i},{name},10.0,spk0\n")
    table = read_manifest(manifest)
    items = table.to_pylist()
    for row, item in enumerate(items):
        item["_row"] = row
    job = AlignJob(Labelling(FrameGrid(), TargetWindow(0, 30), ("hey computer",)),
                   AlignOptions(keywords=("hey computer",)))
    settings = runner_module.run_settings(job, table, 1000)
    out = tmp_path / "run"
    (out / "data").mkdir(parents=True)
    (out / ".anchorprep" / "done").mkdir(parents=True)
    fresh = runner_module.inputs_stamp(items)
    statted = []
    real_file_stamp = runner_module.file_stamp
    monkeypatch.setattr(runner_module, "file_stamp", lambda path: statted.append(path) or real_file_stamp(path))
    summary = runner_module.process_shard(job, 0, 1, items, str(out), settings)
    assert summary.inputs_stamp == fresh
    # read by `read_regular_bytes` (the TextGrids and the MFA csv) or not read at all:
    assert sorted(os.path.basename(p) for p in statted) == ["fifo.TextGrid", "folder.TextGrid", "missing.TextGrid"]
    assert len(summary.errors) == 4 and summary.rows == len(items) - 4


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(["\n", "[", "a", " ", "]", "é"]), max_size=200),
       start=st.integers(0, 220), stop=st.integers(0, 220))
def test_structure_counts_agree_with_str_count(text: str, start: int, stop: int) -> None:
    from anchorprep.sources.alignments.textgrid import _newlines_and_brackets

    expected = (text.count("\n", start, stop), text.count("[", start, stop))
    assert _newlines_and_brackets(text, None, start, stop) == expected
    if text.isascii() and 0 <= start <= stop <= len(text):  # the slices `_parse_lazy` takes
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        assert _newlines_and_brackets(text, codes, start, stop) == expected
