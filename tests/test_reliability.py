"""The bad-input corpus (tests/badinputs.py) through whole batch runs, plus output-folder safety.

Each pipeline (align, vad, accel) runs once over its bad and odd cases interleaved with good
items, across several shards and two worker processes. Every case must end as a correct shard
row or exactly one errors.jsonl line at the expected stage with a reason the user can act on;
rows + error lines == items; the run exits 1 without a traceback; and the good items' rows are
identical to a run over the good items alone.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import badinputs
from anchorprep.cli import app
from conftest import REALDATA

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SAMPLE_ACCEL = REPO / "sample_data" / "accel"
REAL = REALDATA if REALDATA.is_dir() else None

COMMANDS = {
    "align": ["-k", badinputs.KEYWORD],
    "vad": [],
    "accel": ["--preset", "raise"],
}


def invoke(command: str, manifest: Path, out: Path, *extra: str):
    return runner.invoke(app, [command, str(manifest), "-o", str(out), *COMMANDS[command], "-q", *extra])


def read_rows(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [r for s in manifest["shards"] for r in pq.read_table(out / s["file"]).to_pylist()]


def read_errors(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]


def interleave(good: list[dict], cases: list[badinputs.Case]) -> list[tuple[dict, badinputs.Case | None]]:
    """Good items spread evenly among the cases, deterministic order."""
    mixed: list[tuple[dict, badinputs.Case | None]] = []
    step = max(1, len(cases) // max(1, len(good)))
    g = iter(good)
    for i, case in enumerate(cases):
        if i % step == 0:
            item = next(g, None)
            if item is not None:
                mixed.append((item, None))
        mixed.append((case.item(), case))
    mixed += [(item, None) for item in g]
    return mixed


def assert_clean_folder(out: Path) -> None:
    """Only the documented outputs; no temporary file anywhere; manifest sha256s match."""
    manifest = json.loads((out / "manifest.json").read_text())
    shards = [s["file"] for s in manifest["shards"]]
    assert sorted(p.name for p in out.iterdir()) == [".anchorprep", "data", "errors.jsonl", "manifest.json", "report.json"]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "data").iterdir()) == sorted(shards)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for shard in manifest["shards"]:
        assert hashlib.sha256((out / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]


def run_corpus(command: str, good: list[dict], cases: list[badinputs.Case], work: Path, *extra: str) -> None:
    mixed = interleave(good, cases)
    manifest = badinputs.write_manifest(work / "mixed.csv", [item for item, _ in mixed])
    result = invoke(command, manifest, work / "out", "--shard-size", "9", "-j", "2", *extra)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output

    out = work / "out"
    rows, errors = read_rows(out), read_errors(out)
    report = json.loads((out / "report.json").read_text())
    assert len(rows) + len(errors) == len(mixed) == report["in"]
    assert (report["written"], report["failed"]) == (len(rows), len(errors))
    assert_clean_folder(out)

    # Every error line belongs to one input row; no input row has two outcomes.
    by_row = {e["row"]: e for e in errors}
    assert len(by_row) == len(errors)
    rows_by_id: dict[str, list[dict]] = {}
    for r in rows:
        rows_by_id.setdefault(r["utt_id"], []).append(r)
    problems = []
    for index, (item, case) in enumerate(mixed):
        expect = "row" if case is None else case.expect
        if expect == "error":
            line = by_row.get(index)
            if line is None:
                problems.append(f"{case.utt_id!r} ({case.note}): expected an error at {case.stage}, got a row")
                continue
            reason = line["reason"].lower()
            missing = [f for f in case.reason if f.lower() not in reason]
            if line["stage"] != case.stage or missing or line["utt_id"] != case.utt_id:
                problems.append(f"{case.utt_id!r} ({case.note}): got {line['stage']}: {line['reason']!r}, "
                                f"expected {case.stage} with {case.reason}")
            assert set(line) == {"utt_id", "row", "path", "stage", "reason", "shard"}
            assert line["reason"].strip()
            if line["stage"] not in ("manifest",) and any(item.get(c) for c in ("alignment_path", "audio_path", "accel_path")):
                assert line["path"], line  # the user is told which file to look at
        else:
            if index in by_row:
                line = by_row[index]
                problems.append(f"{item['utt_id']!r} ({'' if case is None else case.note}): expected a row, "
                                f"got {line['stage']}: {line['reason']!r}")
                continue
            if item["utt_id"] not in rows_by_id:
                problems.append(f"{item['utt_id']!r}: neither a row nor an error line")
                continue
            found = rows_by_id[item["utt_id"]][0]
            assert len(found["distance"]) == len(found["target"]) == found["num_frames"] > 0
            if case is not None and case.check is not None:
                try:
                    case.check(found)
                except AssertionError as exc:
                    problems.append(f"{case.utt_id!r} ({case.note}): row check failed: {exc}")
    assert not problems, "\n".join(problems)
    # Ids are unique among rows (the duplicate id became an error line, not a second row).
    assert all(len(v) == 1 for v in rows_by_id.values())

    # The good items' rows are exactly what a run over the good items alone writes.
    reference = badinputs.write_manifest(work / "good.csv", good)
    alone = invoke(command, reference, work / "good_out", "--shard-size", "9", *extra)
    assert alone.exit_code == 0, alone.output
    good_rows = {r["utt_id"]: r for r in read_rows(work / "good_out")}
    assert len(good_rows) == len(good)
    for utt, r in good_rows.items():
        assert rows_by_id[utt] == [r], utt


def test_the_corpus_is_big_enough(tmp_path):
    cases = (badinputs.align_cases(tmp_path, REAL) + badinputs.vad_cases(tmp_path, REAL)
             + badinputs.accel_cases(tmp_path, SAMPLE_ACCEL, REAL))
    distinct = {(c.utt_id, c.note) for c in cases}
    assert len(distinct) == len(cases) >= 100
    assert sum(c.expect == "error" for c in cases) >= 60
    assert all(c.expect == "row" or c.reason for c in cases)


def test_align_bad_input_corpus(tmp_path):
    good = badinputs.good_align_items(tmp_path)
    run_corpus("align", good, badinputs.align_cases(tmp_path, REAL), tmp_path)


def test_vad_bad_input_corpus(tmp_path):
    good = badinputs.good_vad_items(tmp_path)
    run_corpus("vad", good, badinputs.vad_cases(tmp_path, REAL), tmp_path)


def test_accel_bad_input_corpus(tmp_path):
    good = badinputs.good_accel_items(SAMPLE_ACCEL)
    run_corpus("accel", good, badinputs.accel_cases(tmp_path, SAMPLE_ACCEL, REAL), tmp_path)


def test_realdata_odd_files_are_in_the_corpus(realdata, tmp_path):
    """The odd real files (README) join the corpus whenever ../shared/realdata exists."""
    ids = {c.utt_id for c in badinputs.align_cases(tmp_path, realdata) + badinputs.vad_cases(tmp_path, realdata)
           + badinputs.accel_cases(tmp_path, SAMPLE_ACCEL, realdata)}
    assert {"real_vietnamese_utf16be_crlf", "real_duplicate_tier_names", "AIT_20061020B_A", "mand_hyp_gb",
            "real_fave_stereo_18k", "real_mp3_8k", "real_oxford_warmup_and_extra_columns"} <= ids


# ---------------------------------------------------------------------------------------------
# Whole-run problems: exit 2, nothing written


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_non_utf8_manifest_is_a_usage_error(tmp_path, encoding):
    good = badinputs.good_align_items(tmp_path, n=2)
    text = "utt_id,alignment_path\n" + "".join(f"caf\xe9-{i},{it['alignment_path']}\n" for i, it in enumerate(good))
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(text.encode(encoding))
    result = invoke("align", manifest, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "not UTF-8" in result.output and "re-encode" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command,content,fragment", [
    ("align", "utt_id,audio_path\nu1,a.wav\n", "lacks column(s) alignment_path"),
    ("vad", "id,path\nu1,a.wav\n", "lacks column(s) utt_id, audio_path"),
    ("accel", "", "cannot read manifest"),
    ("align", 'utt_id,alignment_path\n"u1,a.TextGrid\n', "cannot read manifest"),
])
def test_unusable_manifests_exit_2(tmp_path, command, content, fragment):
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    result = invoke(command, manifest, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_manifest_that_is_a_directory_or_missing_exits_2(tmp_path):
    (tmp_path / "m.csv").mkdir()
    for path in (tmp_path / "m.csv", tmp_path / "absent.jsonl", tmp_path / "m.xlsx"):
        result = invoke("align", path, tmp_path / "out")
        assert result.exit_code == 2, result.output


def test_unreadable_files_are_error_lines(tmp_path):
    """chmod 000 files: one error line each naming the permission problem (needs a non-root user)."""
    if not badinputs.permissions_block_reads(tmp_path):
        pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not block reads here; "
                    "the corpus covers unreadable paths with directories and symlink loops instead")
    grid = badinputs.unreadable_file(tmp_path / "locked.TextGrid", badinputs.long_tg([badinputs.words_tier()]).encode())
    manifest = badinputs.write_manifest(tmp_path / "m.csv", [{"utt_id": "locked", "alignment_path": str(grid)}])
    result = invoke("align", manifest, tmp_path / "out")
    assert result.exit_code == 1
    [line] = read_errors(tmp_path / "out")
    assert line["stage"] == "read_alignment" and "permission denied" in line["reason"].lower()


def test_jsonl_manifest_gives_the_same_rows_and_errors(tmp_path):
    """The same corpus from a JSONL manifest (numbers as JSON numbers) gives the same outcome."""
    good = badinputs.good_align_items(tmp_path, n=6)
    cases = [c for c in badinputs.align_cases(tmp_path, None) if c.utt_id.startswith(("tg_", "cell_", "ctm_"))]
    items = [item for item, _ in interleave(good, cases)]
    csv_manifest = badinputs.write_manifest(tmp_path / "m.csv", items)
    jsonl = tmp_path / "m.jsonl"
    with open(jsonl, "w", encoding="utf-8") as handle:
        for item in items:
            record = {k: v for k, v in item.items() if v != ""}
            if record.get("duration_s") == "10":
                record["duration_s"] = 10  # a JSON number
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    assert invoke("align", csv_manifest, tmp_path / "a").exit_code == 1
    assert invoke("align", jsonl, tmp_path / "b").exit_code == 1
    strip = lambda rows: sorted((r["utt_id"], r["anchor_times_s"], r["num_frames"]) for r in rows)  # noqa: E731
    assert strip(read_rows(tmp_path / "a")) == strip(read_rows(tmp_path / "b"))
    assert [(e["utt_id"], e["stage"], e["reason"]) for e in read_errors(tmp_path / "a")] == \
        [(e["utt_id"], e["stage"], e["reason"]) for e in read_errors(tmp_path / "b")]


# ---------------------------------------------------------------------------------------------
# Safety: identifiers never become paths; nothing unpickles or evaluates input

HOSTILE_IDS = [
    "../../etc/passwd", "../outside", "/abs/path", "/tmp/anchorprep-escape", "..", ".", "~/x",
    "anchors-00000-of-00001.parquet", "manifest.json", ".anchorprep/run.json", "C:\\Windows\\x", "a/../../b",
    "nul\u0000byte", "$(touch pwned)", "`id`", "%s%n", "\u202eevil", "名前/../..",
]


def test_hostile_utt_ids_never_escape_the_output_folder(tmp_path):
    good = badinputs.good_align_items(tmp_path / "src", n=len(HOSTILE_IDS))
    items = [{**item, "utt_id": utt} for item, utt in zip(good, HOSTILE_IDS)]
    manifest = tmp_path / "m.jsonl"  # JSONL carries the NUL byte that CSV would not
    manifest.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(work)  # relative ids would land here if they were ever used as paths
    try:
        result = invoke("align", manifest, tmp_path / "out" / "run", "--shard-size", "5")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "run"
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_relative_to(out))
    assert after == sorted(before + ["out"])  # nothing new outside the output folder
    assert list(work.iterdir()) == []
    names = sorted(p.name for p in out.iterdir())
    assert names == [".anchorprep", "data", "errors.jsonl", "manifest.json", "report.json"]
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"anchors-0000{i}-of-00004.parquet" for i in range(4)]
    assert sorted(p.name for p in (out / ".anchorprep").iterdir()) == ["done", "lock", "run.json", "setup.lock"]
    assert sorted(p.name for p in (out / ".anchorprep" / "done").iterdir()) == [f"{i:05d}.json" for i in range(4)]
    assert [r["utt_id"] for r in read_rows(out)] == HOSTILE_IDS  # kept verbatim, as data
    assert not Path("/tmp/anchorprep-escape").exists() and not (work / "pwned").exists()


DANGEROUS_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("cPickle", "load"), ("dill", "load"), ("dill", "loads"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("marshal", "loads"), ("marshal", "load"),
    ("shelve", "open"), ("pd", "read_pickle"), ("pandas", "read_pickle"), ("joblib", "load"),
}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str, filename: str) -> list[str]:
    """Calls that can run code from data: eval/exec, unpickling, yaml.load without SafeLoader,
    np.load(allow_pickle=True), torch.load without weights_only=True, subprocess with shell=True."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve") for n in names):
                found.append(f"{filename}:{node.lineno}: imports an unpickler")
        if not isinstance(node, ast.Call):
            continue
        func, kwargs = node.func, {k.arg: k.value for k in node.keywords}
        where = f"{filename}:{node.lineno}"
        if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile", "__import__"):
            found.append(f"{where}: {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else getattr(func.value, "attr", "")
            if (owner, func.attr) in DANGEROUS_CALLS:
                found.append(f"{where}: {owner}.{func.attr}()")
            if owner == "yaml" and func.attr in ("load", "load_all", "unsafe_load", "full_load"):
                loader = kwargs.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
                name = getattr(loader, "attr", getattr(loader, "id", ""))
                if func.attr in ("unsafe_load", "full_load") or "Safe" not in str(name):
                    found.append(f"{where}: yaml.{func.attr} without SafeLoader")
            if func.attr == "load" and owner in ("np", "numpy") and _is_true(kwargs.get("allow_pickle")):
                found.append(f"{where}: np.load(allow_pickle=True)")
            if func.attr == "load" and owner == "torch" and not _is_true(kwargs.get("weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
        if _is_true(kwargs.get("shell")):
            found.append(f"{where}: shell=True")
    return found


def test_nothing_unpickles_or_evaluates_input():
    package = REPO / "anchorprep"
    files = sorted(package.rglob("*.py"))
    assert len(files) > 20
    found = [hit for path in files for hit in unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]
    assert not found, "\n".join(found)
    # A plain-text sweep too, for anything the AST walk would miss (e.g. getattr tricks).
    pattern = re.compile(r"pickle\.load|\beval\(|\bexec\(|yaml\.load\(|allow_pickle\s*=\s*True|read_pickle")
    text_hits = [f"{p}:{n}" for p in files for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line) and not line.lstrip().startswith("#")]
    assert not text_hits, text_hits


def test_the_unsafe_call_detector_detects():
    sample = ("import pickle\nimport yaml\nimport numpy as np\nimport torch\nimport subprocess\n"
              "pickle.loads(b'')\neval('1')\nexec('x=1')\nyaml.load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\n"
              "np.load(p, allow_pickle=True)\nnp.load(p)\ntorch.load(p)\ntorch.load(p, weights_only=True)\n"
              "subprocess.run(c, shell=True)\n")
    hits = unsafe_calls(sample, "sample.py")
    assert len(hits) == 8, hits  # import pickle, loads, eval, exec, yaml.load, np.load, torch.load, shell


def test_non_utf8_file_names_in_a_folder_are_a_usage_error(tmp_path):
    """Latin-1 file names cannot become utt_ids (Parquet strings are UTF-8): exit 2 naming the
    file, not a UnicodeEncodeError traceback."""
    grids, wavs = tmp_path / "grids", tmp_path / "wavs"
    grids.mkdir()
    wavs.mkdir()
    text = badinputs.long_tg([badinputs.words_tier()])
    (grids / "good.TextGrid").write_text(text)
    try:
        with open(os.fsencode(grids) + b"/caf\xe9.TextGrid", "w") as handle:
            handle.write(text)
        badinputs.write_audio(wavs / "tmp.wav", badinputs.speechlike(1.0))
        os.rename(os.fsencode(wavs / "tmp.wav"), os.fsencode(wavs) + b"/caf\xe9.wav")
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses non-UTF-8 names: {exc}")
    result = runner.invoke(app, ["align", str(grids), "-o", str(tmp_path / "out"), "-k", "hey", "-q"])
    assert result.exit_code == 2, result.output
    assert "not UTF-8" in result.output and "caf\\xe9.TextGrid" in result.output
    result = runner.invoke(app, ["vad", str(wavs), "-o", str(tmp_path / "out2"), "-q"])
    assert result.exit_code == 2 and "caf\\xe9.wav" in result.output, result.output


def test_accel_items_name_their_file_in_every_error_line(tmp_path):
    """A duplicate accel item fails before any file is read: its line still names the file."""
    path = str(SAMPLE_ACCEL / "raise_seated.csv")
    manifest = badinputs.write_manifest(tmp_path / "m.csv", [{"utt_id": "a", "accel_path": path},
                                                            {"utt_id": "a", "accel_path": path}])
    assert invoke("accel", manifest, tmp_path / "out").exit_code == 1
    [line] = read_errors(tmp_path / "out")
    assert line["stage"] == "manifest" and line["path"] == path


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    """Shards and manifests get 0666 & ~umask like any file the user writes (they used to be
    0600 whatever the umask: unreadable to a training job running as another user)."""
    manifest = badinputs.write_manifest(tmp_path / "m.csv", badinputs.good_align_items(tmp_path, n=3))
    previous = os.umask(umask)
    try:
        assert invoke("align", manifest, tmp_path / "out").exit_code == 0
    finally:
        os.umask(previous)
    out = tmp_path / "out"
    files = [*out.glob("data/anchors-*.parquet"), out / "manifest.json", out / "report.json", out / "errors.jsonl"]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


# ------------------------------------------------------------------------------------------------
# Broken and corrupted run folders (issue 14)

SAMPLE_MANIFEST = REPO / "sample_data" / "manifest.csv"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "good"
    result = runner.invoke(app, ["align", str(SAMPLE_MANIFEST), "-o", str(out), "-k", "hey computer", "-q",
                                 "--shard-size", "10"])
    assert result.exit_code == 0, result.output
    return out


def broken_copy(run: Path, tmp_path: Path, damage: str) -> Path:
    import shutil

    out = tmp_path / damage
    shutil.copytree(run, out)
    manifest = json.loads((out / "manifest.json").read_text())
    second = out / manifest["shards"][1]["file"]
    if damage == "missing_shard":
        second.unlink()
    elif damage == "shards_not_a_list":
        manifest["shards"] = 5
    elif damage == "path_traversal":
        manifest["shards"][0]["file"] = "../../" + manifest["shards"][0]["file"]
    elif damage == "corrupted_footer":
        data = bytearray(second.read_bytes())
        data[-12:-8] = b"\xff\xff\xff\x7f"  # the footer's length and the end of its thrift
        second.write_bytes(bytes(data))
    elif damage == "flipped_byte":  # the first flip from the middle on that still reads, with other values
        original = second.read_bytes()
        expected = pq.read_table(second)
        for offset in range(len(original) // 2, 4, -1):
            data = bytearray(original)
            data[offset] ^= 0x01
            second.write_bytes(bytes(data))
            try:
                if not pq.read_table(second).equals(expected):
                    break
            except Exception:  # noqa: BLE001 - this flip breaks the file; try the next
                continue
        else:
            raise AssertionError("no readable one-byte corruption found")
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


READERS = {
    "vad --anchors-from": lambda run, tmp: ["vad", str(SAMPLE_MANIFEST), "-o", str(tmp / "v"), "-q", "--anchors-from", str(run)],
    "merge": lambda run, tmp: ["merge", str(run), str(run.parent / "good"), "-o", str(tmp / "m"), "-q"],
    "plot": lambda run, tmp: ["plot", str(run), "utt00001-pos", "-o", str(tmp / "p.png")],
    "stats": lambda run, tmp: ["stats", str(run)],
    "export": lambda run, tmp: ["export", "wekws", str(run), "-o", str(tmp / "data.list")],
}


@pytest.mark.parametrize("damage", ["missing_shard", "shards_not_a_list", "path_traversal", "corrupted_footer"])
def test_every_reader_of_a_broken_run_says_so_in_one_line(sample_run, tmp_path, damage):
    """These were tracebacks (validate already caught them); all readers now go through open_run's checks."""
    (tmp_path / "copies").mkdir()
    (tmp_path / "copies" / "good").symlink_to(sample_run)
    broken = broken_copy(sample_run, tmp_path / "copies", damage)
    for reader, args in READERS.items():
        result = runner.invoke(app, args(broken, tmp_path))
        assert result.exit_code == 2, (reader, result.output)
        assert result.output.startswith("error: ") and result.output.count("\n") == 1, (reader, result.output)


def test_plot_into_a_folder_is_one_line(sample_run, tmp_path):
    result = runner.invoke(app, ["plot", str(sample_run), "utt00001-pos", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize("damage", ["flipped_byte", "missing_shard"])
def test_assemble_refuses_a_deleted_or_corrupted_shard(sample_run, tmp_path, damage):
    broken = broken_copy(sample_run, tmp_path, damage)
    (broken / "manifest.json").unlink()
    result = runner.invoke(app, ["assemble", str(broken)])
    assert result.exit_code == 2, result.output
    assert ("does not match the sha256" if damage == "flipped_byte" else "is missing") in result.output
    assert not (broken / "manifest.json").exists()


def test_the_loader_checks_shard_checksums(sample_run, tmp_path):
    from anchorprep.data import IterableShardDataset, ShardDataset
    from anchorprep.errors import UsageError

    broken = broken_copy(sample_run, tmp_path, "flipped_byte")
    with pytest.raises(UsageError, match="does not match the sha256"):
        ShardDataset(broken)
    with pytest.raises(UsageError, match="does not match the sha256"):
        list(IterableShardDataset(broken, shuffle=False))
    lazy = ShardDataset(broken, preload=False)  # the check runs when a shard is opened
    assert lazy[0]["utt_id"]
    with pytest.raises(UsageError, match="does not match the sha256"):
        lazy[10]  # the first row of the second shard
    unchecked = IterableShardDataset(sample_run, shuffle=False, check_sha256=False)
    assert len(list(unchecked)) == len(ShardDataset(sample_run))
