"""CTM and Kaldi segments reading: real SCTK / lhotse / Eesen files, synthetic edge cases, fuzzing."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.ctm import (
    _parse_floats,
    _strip_tags,
    ctm_to_utterances,
    read_ctm,
)
from anchorprep.sources.alignments.formats import read_alignment
from anchorprep.sources.alignments.model import Alignment, Interval
from anchorprep.sources.kaldi import Segment, read_segments
from anchorprep.sources.text import safe_float

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path: Path, text: str | bytes, name: str = "x.ctm") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def labels(alignment: Alignment, tier: int = 0) -> list[str]:
    return [iv.label for iv in alignment.tiers[tier].intervals]


def spans(alignment: Alignment, tier: int = 0) -> list[tuple[float, float, str]]:
    return [(iv.start, iv.end, iv.label) for iv in alignment.tiers[tier].intervals]


def assert_well_formed(result: dict[str, Alignment]) -> None:
    for alignment in result.values():
        for tier in alignment.tiers:
            starts = [iv.start for iv in tier.intervals]
            assert starts == sorted(starts)
            for iv in tier.intervals:
                assert math.isfinite(iv.start) and math.isfinite(iv.end)
                assert 0 <= iv.start <= iv.end <= alignment.xmax
                assert iv.label


# --------------------------------------------------------------------------------------------
# Real files (../shared/realdata/ctm)


def test_tima_ref_channels_alternations_and_order(realdata: Path) -> None:
    result = read_ctm(realdata / "ctm/sctk/tima_ref.ctm")
    assert list(result) == ["5555"]
    conv = result["5555"]
    assert conv.tier_names == ["A - words", "B - words"]
    assert conv.meta["channels"] == ("A", "B") and conv.meta["level"] == "words"
    a, b = conv.tiers
    assert a.intervals[0] == Interval(1.31, 1.43, "WHAT")
    assert b.intervals[0] == Interval(2.54, 3.07, "OH")
    # 602 A and 421 B lines, less 75 ALT markers and the 17 lines of second alternatives.
    assert (len(a.intervals), len(b.intervals)) == (574, 357)
    every = labels(conv, 0) + labels(conv, 1)
    assert not {"<ALT_BEGIN>", "<ALT>", "<ALT_END>"} & set(every)
    # First alternative kept: INTEREST- (second alternative empty), UM (not UH).
    assert Interval(22.8, 22.97, "INTEREST-") in a.intervals
    at_23_98 = [iv.label for iv in a.intervals if iv.start == 23.98]
    assert at_23_98 == ["UM"]
    # Lines 473-474 (IT'S 184.98, THAT 184.88) and B's BUT 156.89 / I 156.51 are out of order.
    near = [iv.label for iv in a.intervals if 184.8 < iv.start < 185.0]
    assert near == ["THAT", "IT'S"]
    near_b = [iv.label for iv in b.intervals if 156.5 < iv.start < 156.9]
    assert near_b == ["I", "BUT"]
    assert_well_formed(result)
    assert conv.xmax == max(iv.end for t in conv.tiers for iv in t.intervals)


def test_tima_channel_selection(realdata: Path) -> None:
    only_b = read_ctm(realdata / "ctm/sctk/tima_ref.ctm", channel="B")["5555"]
    assert only_b.tier_names == ["words"] and only_b.meta["channels"] == ("B",)
    assert only_b.tiers[0].intervals[0] == Interval(2.54, 3.07, "OH")
    with pytest.raises(InputError, match=r"channel 'C' does not occur.*'A', 'B'"):
        read_ctm(realdata / "ctm/sctk/tima_ref.ctm", channel="C")


def test_tima_channels_work_with_select_word_tier(realdata: Path) -> None:
    from anchorprep.sources.alignments.keywords import select_word_tier

    conv = read_ctm(realdata / "ctm/sctk/tima_ref.ctm")["5555"]
    assert select_word_tier(conv, speaker="B").intervals[0].label == "OH"
    assert select_word_tier(conv, speaker="A").intervals[0].label == "WHAT"


def test_tima_hyp_negative_durations_are_rejected(realdata: Path) -> None:
    """SCTK's tima_hyp.ctm has two words with negative durations (A AND 101.23 -0.01, line 201;
    B AND 5.97 -0.02): a time that runs backwards is an error, not something to guess about."""
    with pytest.raises(InputError, match=r": line 201: duration '-0.01' must be a finite number >= 0$"):
        read_ctm(realdata / "ctm/sctk/tima_hyp.ctm")
    errors: dict[str, InputError] = {}
    assert read_ctm(realdata / "ctm/sctk/tima_hyp.ctm", errors=errors) == {}
    assert list(errors) == ["5555"]


def test_lvc_tags_are_stripped(realdata: Path) -> None:
    result = read_ctm(realdata / "ctm/sctk/lvc_hyp.ctm")
    first = result["2347"]
    assert labels(first)[:5] == ["THEY", "PRIDE", "ABOUT", "A;S", "FAR"]
    assert first.tiers[0].intervals[3] == Interval(1.94, 2.11, "A;S")
    assert not any("tag" in lab for a in result.values() for t in a.tiers for lab in (iv.label for iv in t.intervals))
    assert_well_formed(result)


def test_mandarin_gb_bytes_need_an_encoding(realdata: Path) -> None:
    path = realdata / "ctm/sctk/mand_hyp.ctm"
    with pytest.raises(InputError, match=r"line 1: .*not valid utf-8.*`encoding`") as info:
        read_ctm(path)
    assert info.value.path == str(path)
    first_word = path.read_bytes().split(b"\n")[0].split()[4].decode("gb18030")
    readings = [read_ctm(path, encoding=enc) for enc in ("gb2312", "gbk", "gb18030")]
    assert readings[0] == readings[1] == readings[2]
    conv = readings[0]["ma_0029"]
    assert conv.tier_names == ["1 - words", "2 - words"]
    assert [len(t.intervals) for t in conv.tiers] == [5, 32]
    assert conv.tiers[0].intervals[0] == Interval(119.99, 120.19, first_word)
    assert first_word == "可能"
    # Two words with the same start keep their order in the file.
    assert labels(conv)[:2] == ["可能", "OK"]


def test_cantonese_utf8_with_confidence(realdata: Path) -> None:
    conv = read_ctm(realdata / "ctm/sctk/test.cantonese.ctm")["file"]
    assert conv.tiers[0].intervals[:3] == (
        Interval(11.24, 11.647, "食"),
        Interval(11.647, 11.851, "左"),
        Interval(11.851, 12.055, "左左"),
    )
    assert set(conv.meta["confidence"]["words"]) == {0.5}


def test_rover_negative_confidence(realdata: Path) -> None:
    result = read_ctm(realdata / "ctm/sctk/rover.ctm")
    assert list(result) == [f"file{i}" for i in range(1, 7)]
    assert [len(a.tiers[0].intervals) for a in result.values()] == [54, 55, 56, 56, 53, 49]
    assert {c for a in result.values() for c in a.meta["confidence"]["words"]} == {-1.0}


def test_overlap_ctm(realdata: Path) -> None:
    conv = read_ctm(realdata / "ctm/sctk/overlap.ctm")["CMU_20030109-1530_D_NONE"]
    assert conv.tiers[0].intervals[:2] == (Interval(108.74, 109.05, "AMONG"), Interval(109.05, 109.25, "EACH"))


@pytest.mark.parametrize("name", ["supervision.ctm", "supervision_with_scores.ctm"])
def test_lhotse_ctm(realdata: Path, name: str) -> None:
    result = read_ctm(realdata / "ctm/lhotse" / name)
    conv = result["recording-1"]
    assert conv.tier_names == ["words"] and conv.meta["channels"] == ("0",)
    assert spans(conv) == [
        (0.1, 0.18, "transcript"),
        (0.18, 0.2, "of"),
        (0.2, 0.23, "the"),
        (0.23, 0.3, "first"),
        (0.3, 0.4, "segment"),
    ]
    assert conv.xmin == 0.0 and conv.xmax == 0.4
    expected = {"words": (0.9, 0.8, 0.85, 0.7, 0.98)} if "scores" in name else {}
    assert conv.meta["confidence"] == expected


# test00.ctm is SCTK's ctmValidator negative test. Line numbers of its malformed data lines:
# 4 missing word (so "lex" is read as the confidence), 13/15 non-numeric times, 28 confidence
# "oNe", 40/41 only 4 fields, 57 "*" times outside an alternation. Lines 48-56 are one
# alternation. A leading space (line 2), a path or extension in the file id (9, 11), extra
# columns and zero durations are accepted.
TEST00_BAD = {4: "confidence 'lex'", 13: "'begtime' is not a number", 15: "'durtime' is not a number",
              28: "confidence 'oNe'", 40: "got 4", 41: "got 4", 57: "'*' is only allowed"}  # fmt: skip
TEST00_ALT_BLOCK = range(48, 57)


def test_test00_strict_raises_first_bad_line(realdata: Path) -> None:
    with pytest.raises(InputError, match=r": line 4: confidence 'lex' is not a finite number$"):
        read_ctm(realdata / "ctm/sctk/test00.ctm")


def test_test00_every_bad_line_names_its_line(realdata: Path, tmp_path: Path) -> None:
    lines = (realdata / "ctm/sctk/test00.ctm").read_text().split("\n")
    data = [n for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith(";;")]
    for n in [n for n in data if n not in TEST00_ALT_BLOCK]:
        # Keep only line n, blank the rest, so the line number is preserved.
        alone = "\n".join(line if i == n else "" for i, line in enumerate(lines, 1))
        path = write(tmp_path, alone)
        if n in TEST00_BAD:
            with pytest.raises(InputError) as info:
                read_ctm(path)
            assert info.value.reason.startswith(f"line {n}: ") and TEST00_BAD[n] in info.value.reason
        else:
            assert len(read_ctm(path)) == 1, n
    block = "\n".join(line if i in TEST00_ALT_BLOCK else "" for i, line in enumerate(lines, 1))
    assert labels(read_ctm(write(tmp_path, block))["ES2009b-Headset-18_T0"]) == ["S.'S"]


def test_test00_recovers_per_file_id(realdata: Path) -> None:
    errors: dict[str, InputError] = {}
    result = read_ctm(realdata / "ctm/sctk/test00.ctm", errors=errors)
    assert list(result) == ["AIT_2006102-0B_A", "path/AIT_20061020B_A", "AIT_20061020B_A.sph"]
    assert spans(result["AIT_2006102-0B_A"]) == [(2.0, 2.0, "F-"), (2.07, 2.47, "I'M")]
    assert set(errors) == {"AIT_20061020B_A", "ES2009b-Headset-18_T0"}
    assert errors["AIT_20061020B_A"].reason.startswith("line 4: ")
    assert errors["ES2009b-Headset-18_T0"].reason.startswith("line 57: ")
    assert all(e.path and e.path.endswith("test00.ctm") for e in errors.values())


EESEN_FIRST = [("things", 0.0, 0.81), ("will", 0.81, 1.02), ("change", 1.02, 1.5), ("in", 1.5, 1.65),
               ("ways", 1.65, 2.49), ("that", 2.49, 2.64), ("their", 2.64, 2.91), ("fragile", 2.91, 3.48),
               ("environment", 3.48, 4.5), ("simply", 4.5, 4.92), ("can't", 4.92, 5.25),
               ("support", 5.25, 6.45)]  # fmt: skip
EESEN_SECOND_ABSOLUTE = [("and", 6.46, 6.58), ("that", 6.58, 6.76), ("leads", 6.76, 6.97), ("to", 6.97, 7.15),
                         ("starvation", 7.15, 7.87), ("it", 7.87, 7.99)]  # fmt: skip
ID_TIMES = re.compile(r"^(?P<rec>.+)---(?P<start>\d+\.\d+)-(?P<end>\d+\.\d+)$")


def eesen_segments(ids: list[str], tmp_path: Path) -> Path:
    """A Kaldi segments file built from ids like ``test2-1---0000.000-0006.460``."""
    lines = []
    for utt in ids:
        m = ID_TIMES.match(utt)
        assert m, utt
        lines.append(f"{utt} {m['rec']} {float(m['start']):.3f} {float(m['end']):.3f}")
    return write(tmp_path, "\n".join(lines) + "\n", "segments")


def triples(alignment: Alignment) -> list[tuple[str, float, float]]:
    return [(iv.label, iv.start, iv.end) for iv in alignment.tiers[0].intervals]


def test_eesen_ctm_as_read(realdata: Path) -> None:
    result = read_ctm(realdata / "ctm/eesen/test2.partial.ctm")
    first, second = result.values()
    assert sum(len(a.tiers[0].intervals) for a in result.values()) == 18
    assert triples(first) == EESEN_FIRST
    # The README: the times are absolute although the ids are utterance ids.
    assert triples(second) == EESEN_SECOND_ABSOLUTE


def test_eesen_utterance_keyed_absolute_times(realdata: Path, tmp_path: Path) -> None:
    ctm = read_ctm(realdata / "ctm/eesen/test2.partial.ctm")
    segments = read_segments(eesen_segments(list(ctm), tmp_path))
    assert segments["test2-1---0006.460-0010.690"] == Segment("test2-1", 6.46, 10.69)
    utts = ctm_to_utterances(ctm, segments, keyed_by="utterance")
    first, second = utts.values()
    assert triples(first) == EESEN_FIRST and first.xmax == 6.46
    assert triples(second) == [(w, round(s - 6.46, 9), round(e - 6.46, 9)) for w, s, e in EESEN_SECOND_ABSOLUTE]
    assert triples(second)[0] == ("and", 0.0, 0.12) and triples(second)[-1] == ("it", 1.41, 1.53)
    assert second.xmax == 4.23 and second.meta["recording"] == "test2-1"
    assert second.meta["segment_start"] == 6.46


def test_eesen_recording_keyed_gives_the_same(realdata: Path, tmp_path: Path) -> None:
    text = (realdata / "ctm/eesen/test2.partial.ctm").read_text()
    by_utt = read_ctm(realdata / "ctm/eesen/test2.partial.ctm")
    by_rec = read_ctm(write(tmp_path, re.sub(r"(?m)^(\S+)---\S+", r"\1", text)))
    assert list(by_rec) == ["test2-1"]
    segments = read_segments(eesen_segments(list(by_utt), tmp_path))
    from_rec = ctm_to_utterances(by_rec, segments)
    from_utt = ctm_to_utterances(by_utt, segments, keyed_by="utterance")
    assert [triples(a) for a in from_rec.values()] == [triples(a) for a in from_utt.values()]


def test_utterance_keyed_with_relative_times_is_caught(realdata: Path, tmp_path: Path) -> None:
    """Converting a CTM whose times are already utterance-relative: utterance 2's words all lie
    before its segment, which is reported rather than silently giving an empty utterance."""
    lines = []
    for line in (realdata / "ctm/eesen/test2.partial.ctm").read_text().splitlines():
        utt, ch, start, dur, word = line.split()
        offset = float(ID_TIMES.match(utt)["start"])  # type: ignore[index]
        lines.append(f"{utt} {ch} {float(start) - offset:.2f} {dur} {word}")
    ctm = read_ctm(write(tmp_path, "\n".join(lines)))
    segments = read_segments(eesen_segments(list(ctm), tmp_path))
    with pytest.raises(InputError, match=r"none of its 6 CTM words.*already utterance-relative"):
        ctm_to_utterances(ctm, segments, keyed_by="utterance")
    errors: dict[str, InputError] = {}
    kept = ctm_to_utterances(ctm, segments, keyed_by="utterance", errors=errors)
    assert list(kept) == ["test2-1---0000.000-0006.460"] and list(errors) == ["test2-1---0006.460-0010.690"]


# --------------------------------------------------------------------------------------------
# Phones


PHONE_CTM = """\
utt1 1 0.00 0.30 SIL
utt1 1 0.30 0.05 HH_B
utt1 1 0.35 0.07 EY1_E
utt1 1 0.42 0.06 S_B
utt1 1 0.48 0.08 IH1_I
utt1 1 0.56 0.09 R_I
utt1 1 0.65 0.11 IY0_E
utt1 1 0.76 0.10 AH0_S
utt1 1 0.86 0.20 SIL_S
"""


def test_phone_ctm_auto_detects_and_strips(tmp_path: Path) -> None:
    conv = read_ctm(write(tmp_path, PHONE_CTM))["utt1"]
    assert conv.tier_names == ["phones"] and conv.meta["level"] == "phones"
    assert labels(conv) == ["SIL", "HH", "EY1", "S", "IH1", "R", "IY0", "AH0", "SIL"]
    assert conv.tiers[0].intervals[-1] == Interval(0.86, 1.06, "SIL")


def test_phone_ctm_options(tmp_path: Path) -> None:
    path = write(tmp_path, PHONE_CTM)
    kept = read_ctm(path, level="phones", strip_position_suffixes=False)["utt1"]
    assert labels(kept)[1:3] == ["HH_B", "EY1_E"] and kept.tier_names == ["phones"]
    as_words = read_ctm(path, level="words")["utt1"]
    assert as_words.tier_names == ["words"] and labels(as_words)[1] == "HH_B"
    plain = write(tmp_path, "u 1 0 0.1 AH\nu 1 0.1 0.1 T\n", "plain.ctm")
    assert read_ctm(plain)["u"].tier_names == ["words"]  # nothing to detect phones by
    assert read_ctm(plain, level="phones")["u"].tier_names == ["phones"]


# --------------------------------------------------------------------------------------------
# Syntax details


@pytest.mark.parametrize(
    ("token", "expected"),
    [("THEY;tag1", "THEY"), ("PRIDE;tag1;tag2", "PRIDE"), ("ABOUT;;tag2", "ABOUT"), ("A\\;S;tag1", "A;S"),
     ("A\\;S", "A;S"), ("back\\slash", "back\\slash"), (";tag", ""), ("X\\", "X\\")],
)  # fmt: skip
def test_strip_tags(token: str, expected: str) -> None:
    assert _strip_tags(token) == expected


def test_whitespace_bom_crlf_and_comments(tmp_path: Path) -> None:
    text = "\ufeff;; comment\r\n\r\n  u1\t1  0.5\t0.25 hello  0.9 \r\n   \r\nu1 1 0.1 0.2 a\u3000b\x1cc\r\n"
    conv = read_ctm(write(tmp_path, text))["u1"]
    assert spans(conv) == [(0.1, 0.3, "a\u3000b\x1cc"), (0.5, 0.75, "hello")]
    assert conv.meta["confidence"] == {"words": (None, 0.9)}


def test_sorting_is_stable_and_minus_zero_is_zero(tmp_path: Path) -> None:
    text = "u 1 0.5 0.1 c\nu 1 -0 0.1 a\nu 1 0.5 0.2 d\nu 1 0.2 0.1 b\nv 1 0 1 x\n"
    result = read_ctm(write(tmp_path, text))
    assert list(result) == ["u", "v"]
    assert spans(result["u"]) == [(0.0, 0.1, "a"), (0.2, 0.3, "b"), (0.5, 0.6, "c"), (0.5, 0.7, "d")]
    assert math.copysign(1.0, result["u"].tiers[0].intervals[0].start) == 1.0


def test_numeric_channels_order_by_value(tmp_path: Path) -> None:
    conv = read_ctm(write(tmp_path, "u 10 0 1 b\nu 2 0 1 a\nu \u00b2 0 1 c\nu B 0 1 d\n"))["u"]
    assert conv.tier_names == ["2 - words", "10 - words", "B - words", "\u00b2 - words"]
    assert conv.meta["speakers"] == ("2", "10", "B", "\u00b2")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("u 1 0.1 0.2", "line 2: expected at least 5 fields"),
        ("u 1 x 0.2 w", "line 2: start time 'x' is not a number"),
        ("u 1 0.1 y w", "line 2: duration 'y' is not a number"),
        ("u 1 nan 0.2 w", "line 2: start time 'nan' must be a finite number >= 0"),
        ("u 1 0.1 inf w", "line 2: duration 'inf' must be a finite number >= 0"),
        ("u 1 -0.1 0.2 w", "line 2: start time '-0.1' must be a finite number >= 0"),
        ("u 1 0.1 -0.2 w", "line 2: duration '-0.2' must be a finite number >= 0"),
        ("u 1 1e308 1e308 w", "line 2: start + duration is too large"),
        ("u 1 1_0 0.2 w", "line 2: start time '1_0' is not a number"),
        ("u 1 0.1 0.2 w high", "line 2: confidence 'high' is not a finite number"),
        ("u 1 0.1 0.2 w nan", "line 2: confidence 'nan' is not a finite number"),
        ("u 1 * * w", "line 2: start time '*' is only allowed on <ALT_BEGIN>"),
        ("u 1 0.1 0.2 ;tag", "line 2: token ';tag' is empty"),
        ("u 1 * * <ALT_BEGIN>", "line 2: <ALT_BEGIN> is never closed"),
        ("u 1 * * <ALT>", "line 2: <ALT> outside"),
        ("u 1 * * <ALT_END>", "line 2: <ALT_END> without"),
    ],
)
def test_malformed_lines(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, f"u 1 0 0.1 ok\n{line}\nu 1 0.5 0.1 fine\n")
    with pytest.raises(InputError) as info:
        read_ctm(path)
    assert info.value.reason.startswith(message), info.value.reason
    assert info.value.path == str(path)


def test_nested_alternation(tmp_path: Path) -> None:
    text = "u 1 * * <ALT_BEGIN>\nu 1 0 1 a\nu 1 * * <ALT_BEGIN>\nu 1 * * <ALT_END>\n"
    with pytest.raises(InputError, match=r": line 3: <ALT_BEGIN> inside the alternation opened at line 1"):
        read_ctm(write(tmp_path, text))


def test_alternation_keeps_first_alternative_only(tmp_path: Path) -> None:
    text = (
        "u 1 0 0.5 before\nu 1 * * <ALT_BEGIN>\nu 1 0.5 0.2 one\nu 1 0.7 0.2 two\nu 1 * * <ALT>\n"
        "u 1 0.5 0.4 other\nu 1 * * <ALT>\nu 1 0.5 0.1 third\nu 1 * * <ALT_END>\nu 1 0.9 0.1 after\n"
        "u 1 * * <ALT_BEGIN>\nu 1 * * <ALT>\nu 1 1.0 0.2 skipped\nu 1 * * <ALT_END>\n"
    )
    assert labels(read_ctm(write(tmp_path, text))["u"]) == ["before", "one", "two", "after"]


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read file"):
        read_ctm(tmp_path / "missing.ctm")
    with pytest.raises(InputError, match="cannot read file"):
        read_ctm(tmp_path)
    path = write(tmp_path, "u 1 0 1 a\n")
    with pytest.raises(UsageError, match="unknown text encoding"):
        read_ctm(path, encoding="no-such-codec")
    with pytest.raises(UsageError, match="level must be"):
        read_ctm(path, level="sentences")  # type: ignore[arg-type]
    assert read_ctm(write(tmp_path, "", "empty.ctm")) == {}
    assert read_ctm(write(tmp_path, ";; only a comment\n\n", "c.ctm")) == {}


def test_decode_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"u 1 0 1 ok\nu 1 1 1 \xff\xfe\n")
    with pytest.raises(InputError, match=r": line 2: bytes b'\\xff' are not valid utf-8.*`encoding`"):
        read_ctm(path)
    errors: dict[str, InputError] = {}
    with pytest.raises(InputError):  # a wrong encoding is a problem of the whole file
        read_ctm(path, errors=errors)
    assert read_ctm(path, encoding="latin-1")["u"].tiers[0].intervals[1].label == "\xff\xfe"


def test_errors_dict_keeps_good_ids(tmp_path: Path) -> None:
    text = "a 1 0 1 x\nb 1 0 1\nc 1 0 1 y\nb 1 1 1 z\nd 1 q 1 w\n"
    errors: dict[str, InputError] = {}
    result = read_ctm(write(tmp_path, text), errors=errors)
    assert list(result) == ["a", "c"]
    assert {k: e.reason.split(":")[0] for k, e in errors.items()} == {"b": "line 2", "d": "line 5"}


def test_read_alignment_takes_one_file_id_of_a_ctm(realdata: Path, tmp_path: Path) -> None:
    assert read_alignment(realdata / "ctm/lhotse/supervision.ctm").tiers[0].intervals[0].label == "transcript"
    rover = realdata / "ctm/sctk/rover.ctm"
    assert read_alignment(rover, utterance="file2").meta["confidence"]["words"][0] == -1.0
    with pytest.raises(InputError, match=r"holds 6 utterances \('file1', .*pass `utterance`"):
        read_alignment(rover)
    with pytest.raises(InputError, match="no utterance 'nope' in the CTM"):
        read_alignment(rover, utterance="nope")
    [only_a] = read_ctm(realdata / "ctm/sctk/tima_ref.ctm", channel="A").values()
    assert only_a.tier_names == ["words"]


# --------------------------------------------------------------------------------------------
# Segments


def test_read_segments(tmp_path: Path) -> None:
    text = "u1 rec 0.00 1.50\n\nu2 rec 1.50 -1\nu3 rec2 0 2.25\n"
    assert read_segments(write(tmp_path, text, "segments")) == {
        "u1": Segment("rec", 0.0, 1.5),
        "u2": Segment("rec", 1.5, math.inf),
        "u3": Segment("rec2", 0.0, 2.25),
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("u2 rec 1.0", "line 2: expected 4 fields"),
        ("u2 rec 1.0 2.0 extra", "line 2: expected 4 fields"),
        ("u2 rec x 2.0", "line 2: start 'x'"),
        ("u2 rec -1 2.0", "line 2: start '-1'"),
        ("u2 rec 1.0 inf", "line 2: end 'inf'"),
        ("u2 rec 2.0 1.0", "line 2: end 1.0 is not after start 2.0"),
        ("u2 rec 1.0 1.0", "line 2: end 1.0 is not after start"),
        ("u1 rec 3.0 4.0", "line 2: utterance 'u1' repeats line 1"),
    ],
)
def test_malformed_segments(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, f"u1 rec 0 1\n{line}\n", "segments")
    with pytest.raises(InputError) as info:
        read_segments(path)
    assert info.value.reason.startswith(message), info.value.reason
    errors: dict[str, InputError] = {}
    kept = read_segments(path, errors=errors)
    assert len(errors) == 1 and set(kept) | set(errors) == {"u1", line.split()[0]}
    assert not set(kept) & set(errors)


def test_boundary_words_go_by_midpoint_and_are_clipped(tmp_path: Path) -> None:
    ctm = read_ctm(
        write(tmp_path, "rec 1 0.2 0.6 a 0.5\nrec 1 0.8 0.4 b 0.6\nrec 1 1.85 0.2 c 0.7\nrec 1 3.5 0.5 d 0.8\n")
    )
    segments = {"u1": Segment("rec", 0.0, 1.0), "u2": Segment("rec", 1.0, 2.0), "u3": Segment("rec", 2.0, math.inf)}
    utts = ctm_to_utterances(ctm, segments)
    # b (0.8-1.2) has its midpoint 1.0 at u2's start: it goes to u2, clipped to 1.0-1.2.
    # c (1.85-2.05) has its midpoint 1.95 in u2: clipped to 1.85-2.0.
    assert triples(utts["u1"]) == [("a", 0.2, 0.8)]
    assert triples(utts["u2"]) == [("b", 0.0, 0.2), ("c", 0.85, 1.0)]
    assert triples(utts["u3"]) == [("d", 1.5, 2.0)]
    assert utts["u1"].xmax == 1.0 and utts["u3"].xmax == 2.0
    assert utts["u2"].meta["confidence"] == {"words": (0.6, 0.7)}


def test_missing_recordings_and_utterances(tmp_path: Path) -> None:
    ctm = read_ctm(write(tmp_path, "rec 1 0.2 0.6 a\n"))
    segments = {"u1": Segment("rec", 0.0, 1.0), "u2": Segment("gone", 0.0, 1.0), "u3": Segment("rec", 5, 6)}
    with pytest.raises(InputError, match="utterance 'u2': no CTM lines for recording 'gone'"):
        ctm_to_utterances(ctm, segments)
    errors: dict[str, InputError] = {}
    utts = ctm_to_utterances(ctm, segments, errors=errors)
    assert list(utts) == ["u1", "u3"] and list(errors) == ["u2"]
    assert utts["u3"].tiers[0].intervals == ()  # a segment without words: empty tier
    by_utt = read_ctm(write(tmp_path, "u1 1 0.2 0.6 a\nstray 1 0 1 b\n", "u.ctm"))
    errors = {}
    ctm_to_utterances(by_utt, {"u1": Segment("rec", 0.0, 1.0), "u9": Segment("rec", 1, 2)}, keyed_by="utterance", errors=errors)
    assert set(errors) == {"u9", "stray"}
    with pytest.raises(UsageError):
        ctm_to_utterances(ctm, segments, keyed_by="speaker")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Property tests


@given(st.text(alphabet="0123456789.-+eE_xnaifNI*\u0661\uff11 ", max_size=8))
@settings(max_examples=300, deadline=None)
def test_fast_and_slow_float_parsers_agree(text: str) -> None:
    texts = [text, "1.5"]
    fast = _parse_floats(texts)
    slow = [safe_float(t) for t in texts]
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(fast.tolist(), slow))


WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=6)
ROW = st.tuples(
    st.sampled_from(["u1", "u2", "sw02001-A_000098-001156"]),
    st.sampled_from(["1", "A", "B"]),
    st.integers(0, 100_000),
    st.integers(0, 5_000),
    WORDS.filter(lambda w: ";" not in w and not w.startswith(";;") and not w.startswith("<ALT")),
    st.one_of(st.none(), st.integers(-1000, 1000)),
)


@given(rows=st.lists(ROW, max_size=40), data=st.data())
@FUZZ
def test_generated_ctm_round_trips(tmp_path: Path, rows: list[tuple], data: st.DataObject) -> None:
    lines = [
        f"{f} {c} {s / 100:.2f} {d / 100:.2f} {w}" + ("" if conf is None else f" {conf / 1000}")
        for f, c, s, d, w, conf in rows
    ]
    order = data.draw(st.permutations(range(len(lines))))
    result = read_ctm(write(tmp_path, "\n".join(lines[i] for i in order) + "\n"), level="words")
    assert_well_formed(result)
    for file_id, alignment in result.items():
        channels = sorted({c for f, c, *_ in rows if f == file_id}, key=lambda c: (not c.isdigit(), c))
        assert alignment.meta["channels"] == tuple(channels)
        for channel, tier in zip(channels, alignment.tiers):
            expected = sorted(
                ((round(s / 100, 2), round((s + d) / 100, 2), w) for f, c, s, d, w, _ in rows if (f, c) == (file_id, channel)),
                key=lambda x: x[0],
            )
            got = [(iv.start, iv.end, iv.label) for iv in tier.intervals]
            assert sorted(got) == sorted(expected)
            assert [g[0] for g in got] == [e[0] for e in expected]
    assert set(result) == {r[0] for r in rows}


FIELD = st.one_of(
    st.sampled_from(["u", "u2", "1", "A", "0", "0.5", "1e3", "-1", "*", "nan", "inf", "-0", "1e400", "<ALT_BEGIN>",
                     "<ALT>", "<ALT_END>", ";;", ";tag", "W;t", "A\\;B", "_S", "AH_B", "x_E", "\u00b2", "\u0661", "1\u00a0"]),
    st.text(max_size=5),
)  # fmt: skip
SEP = st.sampled_from([" ", "  ", "\t", " \t", "\u3000", "\xa0"])


@st.composite
def ctm_texts(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        fields = draw(st.lists(FIELD, max_size=8))
        sep = draw(SEP)
        line = sep.join(fields)
        if draw(st.booleans()):
            line = draw(st.sampled_from(["", " ", ";; "])) + line + draw(st.sampled_from(["", " ", "\r"]))
        lines.append(line)
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # sometimes splice in arbitrary bytes
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=6)) + raw[at:]
    return raw


@given(raw=ctm_texts(), level=st.sampled_from(["auto", "words", "phones"]), channel=st.sampled_from([None, "1", "A"]))
@FUZZ
def test_fuzzed_ctm_raises_only_input_error(tmp_path: Path, raw: bytes, level: str, channel: str | None) -> None:
    path = write(tmp_path, raw)
    try:
        result = read_ctm(path, level=level, channel=channel)  # type: ignore[arg-type]
    except InputError as exc:
        assert exc.path == str(path)
        result = None
    if result is not None:
        assert_well_formed(result)
    errors: dict[str, InputError] = {}
    try:
        lenient = read_ctm(path, level=level, channel=channel, errors=errors)  # type: ignore[arg-type]
    except InputError as exc:  # only whole-file problems may still raise
        assert "not valid utf-8" in exc.reason or "does not occur" in exc.reason
        return
    assert_well_formed(lenient)
    assert not set(lenient) & set(errors)
    if result is not None:
        assert lenient == result and not errors


@given(
    words=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 300)), max_size=30),
    cuts=st.lists(st.integers(1, 2400), max_size=6, unique=True),
)
@FUZZ
def test_segments_partition_words(tmp_path: Path, words: list[tuple[int, int]], cuts: list[int]) -> None:
    """Adjacent segments covering the recording: every word lands in exactly one utterance,
    inside its bounds."""
    text = "".join(f"rec 1 {s / 100:.2f} {d / 100:.2f} w{i}\n" for i, (s, d) in enumerate(words))
    ctm = read_ctm(write(tmp_path, text or "rec 1 0 0.01 w\n"))
    bounds = [0, *sorted(cuts), None]
    segments = {
        f"u{i}": Segment("rec", a / 100, math.inf if b is None else b / 100) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    }
    utts = ctm_to_utterances(ctm, segments)
    assert list(utts) == list(segments)
    seen = [iv.label for a in utts.values() for iv in a.tiers[0].intervals]
    assert sorted(seen) == sorted(iv.label for iv in ctm["rec"].tiers[0].intervals)
    for utt, alignment in utts.items():
        seg = segments[utt]
        for iv in alignment.tiers[0].intervals:
            assert 0 <= iv.start <= iv.end
            assert math.isinf(seg.end) or iv.end <= round(seg.end - seg.start, 9)
