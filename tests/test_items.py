"""Input discovery (`anchorprep.sources.items`): one place for every pipeline, the CLI and `validate --deep`."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
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
    assert items.to_pylist() == [{"utt_id": "a", "audio_path": str(tmp_path / "x.wav")}]


def test_manifest_format_is_checked(tmp_path):
    with pytest.raises(UsageError, match="`manifest_format` must be one of"):
        read_manifest(tmp_path / "x.csv", manifest_format="xml")
    with pytest.raises(UsageError, match="unknown manifest format"):
        read_manifest(tmp_path / "x.rttm")


def test_accel_suffixes_are_defined_once(tmp_path):
    for suffix in ACCEL_SUFFIXES + (".wav",):
        (tmp_path / f"s{suffix.replace('.', '_')}{suffix}").write_text("t,x,y,z\n")
    found = accel_items(tmp_path)
    assert sorted(Path(p).suffix for p in found["accel_path"].to_pylist()) == sorted(ACCEL_SUFFIXES)
    assert found.column_names == ["utt_id", "accel_path"]


def test_alignment_items_picks_the_reader_by_input(ami_rttm, ami_cuts, tmp_path):
    rttm, wav_scp = ami_rttm
    assert alignment_items(rttm, wav_scp=wav_scp).to_pylist() == [
        {"utt_id": AMI_WAV, "audio_path": str(ami_cuts.parent / AMI_WAV), "alignment_path": str(rttm)}]
    [cut] = alignment_items(ami_cuts).to_pylist()
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


# --------------------------------------------------------------------------------------------
# Manifest cells are text exactly as written (issue 14.3)

JSONL_IDS = ('{"utt_id": 9007199254740993, "speaker": 7, "duration_s": 1.50}\n'
             '{"utt_id": 9007199254740992, "speaker": null, "duration_s": 2}\n'
             '{"utt_id": null, "speaker": 8, "flag": true}\n')


def test_jsonl_numbers_keep_their_written_text_when_a_column_has_nulls(tmp_path):
    """pandas read the ids through float64: 9007199254740993 became "9007199254740992.0"."""
    path = tmp_path / "m.jsonl"
    path.write_text(JSONL_IDS)
    frame = read_manifest(path)
    assert frame.column("utt_id").to_pylist() == ["9007199254740993", "9007199254740992", ""]
    assert frame.column("speaker").to_pylist() == ["7", "", "8"]
    assert frame.column("duration_s").to_pylist() == ["1.50", "2", ""]
    assert frame.column("flag").to_pylist() == ["", "", "true"]


def test_parquet_integers_are_exact_decimal_text_and_null_stays_missing(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"utt_id": pa.array([9007199254740993, 9007199254740992, None], pa.int64()),
                             "speaker": pa.array([7, None, 8], pa.int32()),
                             "duration_s": pa.array([1.5, None, 0.1], pa.float32()),
                             "split": pa.array(["a", "b", "a"]).dictionary_encode(),
                             "text": pa.array([b"hey", None, b"computer"], pa.binary())}), path)
    frame = read_manifest(path)
    assert frame.column("utt_id").to_pylist() == ["9007199254740993", "9007199254740992", ""]
    assert frame.column("speaker").to_pylist() == ["7", "", "8"]
    assert frame.column("duration_s").to_pylist() == ["1.5", "", "0.1"]
    assert frame.column("split").to_pylist() == ["a", "b", "a"]
    assert frame.column("text").to_pylist() == ["hey", "", "computer"]


def test_numeric_ids_with_nulls_are_not_lost_as_false_duplicates(tmp_path):
    """End to end: both big ids are rows (one was a false duplicate), speaker 7 stays "7"."""
    from anchorprep.shards import open_run

    grid = tmp_path / "g.TextGrid"
    grid.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 2\ntiers? <exists>\n'
                    'size = 1\nitem []:\n    item [1]:\n        class = "IntervalTier"\n        name = "words"\n'
                    '        xmin = 0\n        xmax = 2\n        intervals: size = 1\n        intervals [1]:\n'
                    '            xmin = 0\n            xmax = 2\n            text = "hey"\n')
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"utt_id": i, "alignment_path": str(grid), "speaker": s}).replace('"@', "").replace('@"', "") + "\n"
                            for i, s in [("@9007199254740993@", "@7@"), ("@9007199254740992@", None), (None, "@8@")]))
    result = invoke("align", path, "-k", "hey", "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output  # the null id is one errors.jsonl line
    rows = {r["utt_id"]: r["speaker"] for r in open_run(tmp_path / "out").iter_rows(["utt_id", "speaker"])}
    assert rows == {"9007199254740993": "7", "9007199254740992": ""}


@pytest.mark.parametrize("line, message", [
    ("[1, 2, 3]", r"line 2 is not a JSON object \(\[1, 2, 3\]\)"),
    ("42", r"line 2 is not a JSON object \(42\)"),
    ('{"utt_id": ["good000"]}', "line 2: column utt_id holds a JSON list"),
    ('{"utt_id": "a", "meta": {"x": 1}}', "line 2: column meta holds a JSON dict"),
    ('{"utt_id": "a"', "line 2 is not JSON"),
])
def test_jsonl_lines_that_are_not_flat_objects_are_usage_errors(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"utt_id": "ok"}\n' + line + "\n")
    with pytest.raises(UsageError, match=message):
        read_manifest(path)


@pytest.mark.parametrize("column, values, message", [
    ("utt_id", [["good000"], ["good001"]], "column utt_id holds list<"),
    ("utt_id", [{"a": "good000"}, {"a": "good001"}], "column utt_id holds struct"),
    ("text", [b"\xff\xfe", b"ok"], "column text holds binary data that is not UTF-8"),
])
def test_parquet_columns_that_are_not_text_or_numbers_are_usage_errors(tmp_path, column, values, message):
    """Lists became "['good000']"; a binary column was a UnicodeDecodeError traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    data = {"utt_id": ["a", "b"], column: values}
    pq.write_table(pa.table(data), path)
    with pytest.raises(UsageError, match=message):
        read_manifest(path)


def test_jsonl_nan_is_refused_per_item_like_csv_nan(tmp_path):
    """One rule: a NaN duration (JSONL `NaN`, CSV `nan`) is refused for its item, not read as missing."""
    path = tmp_path / "m.jsonl"
    path.write_text('{"utt_id": "a", "duration_s": NaN}\n{"utt_id": "b", "duration_s": Infinity}\n')
    assert read_manifest(path).column("duration_s").to_pylist() == ["NaN", "Infinity"]
    from anchorprep.errors import InputError
    from anchorprep.pipeline.rows import item_float

    for item in read_manifest(path).to_pylist():
        with pytest.raises(InputError, match="not finite"):
            item_float(item, "duration_s")


# --------------------------------------------------------------------------------------------
# Named pipes and devices (issue 14.7). Opening a FIFO blocks forever, so these run the CLI in a
# subprocess with a generous timeout: a regression fails the test instead of hanging the suite.

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def run_cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SAMPLE.parent)}
    return subprocess.run([sys.executable, "-m", "anchorprep", *map(str, args), "-q"], capture_output=True,
                          text=True, timeout=600, env=env)


def error_lines(out: Path) -> dict[str, dict]:
    return {e["utt_id"]: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifos_in_a_manifest_are_refused_per_item_without_opening_them(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    good_audio, good_grid = SAMPLE / "audio" / "utt00001-pos.flac", SAMPLE / "alignments" / "utt00001-pos.TextGrid"
    align = tmp_path / "align.csv"
    align.write_text(f"utt_id,alignment_path,audio_path\ngood,{good_grid},{good_audio}\n"
                     f"fifo_grid,{fifo}.TextGrid,{good_audio}\nfifo_audio,{good_grid},{fifo}.flac\n"
                     f"fifo_ctm,{fifo}.ctm,\n")
    for name in ("pipe.TextGrid", "pipe.flac", "pipe.ctm", "pipe.csv"):
        os.mkfifo(tmp_path / name)
    result = run_cli("align", align, "-k", "hey computer", "-o", tmp_path / "a")
    assert result.returncode == 1, result.stderr
    errors = error_lines(tmp_path / "a")
    assert sorted(errors) == ["fifo_audio", "fifo_ctm", "fifo_grid"]
    assert [errors[u]["stage"] for u in sorted(errors)] == ["read_audio", "read_alignment", "read_alignment"]
    assert all("named pipe (fifo)" in e["reason"].lower() for e in errors.values())

    vad = tmp_path / "vad.csv"
    vad.write_text(f"utt_id,audio_path\ngood,{good_audio}\nfifo,{fifo}.flac\ndevice,/dev/zero\n")
    result = run_cli("vad", vad, "-o", tmp_path / "v")
    assert result.returncode == 1, result.stderr
    assert {u: "not a regular file" in e["reason"] for u, e in error_lines(tmp_path / "v").items()} == \
        {"fifo": True, "device": True}

    accel = tmp_path / "accel.csv"
    accel.write_text(f"utt_id,accel_path\ngood,{SAMPLE / 'accel' / 'raise_seated.csv'}\nfifo,{fifo}.csv\n")
    result = run_cli("accel", accel, "--preset", "raise", "-o", tmp_path / "c")
    assert result.returncode == 1, result.stderr
    assert "not a regular file" in error_lines(tmp_path / "c")["fifo"]["reason"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifos_in_a_folder_input_are_skipped_and_a_fifo_input_is_a_usage_error(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SAMPLE / "alignments" / "utt00001-pos.TextGrid", folder / "good.TextGrid")
    shutil.copy(SAMPLE / "audio" / "utt00001-pos.flac", folder / "good.flac")
    shutil.copy(SAMPLE / "accel" / "raise_seated.csv", folder / "good.csv")
    for name in ("pipe.TextGrid", "pipe.flac", "pipe.csv", "good2.flac"):
        os.mkfifo(folder / name)
    shutil.copy(SAMPLE / "alignments" / "utt00001-pos.TextGrid", folder / "good2.TextGrid")  # its audio is a FIFO
    assert audio_items(folder).column("utt_id").to_pylist() == ["good"]
    assert accel_items(folder).column("utt_id").to_pylist() == ["good"]
    assert alignment_items(folder).to_pylist() == [
        {"utt_id": "good", "audio_path": str(folder / "good.flac"), "alignment_path": str(folder / "good.TextGrid")},
        {"utt_id": "good2", "audio_path": "", "alignment_path": str(folder / "good2.TextGrid")}]
    result = run_cli("align", folder, "-k", "hey computer", "-o", tmp_path / "a")
    assert result.returncode == 0, result.stderr

    manifest = tmp_path / "m.csv"
    os.mkfifo(manifest)
    for command in (["align", "-k", "hey"], ["vad"], ["accel", "--preset", "raise"]):
        result = run_cli(command[0], manifest, *command[1:], "-o", tmp_path / "x")
        assert result.returncode == 2 and "named pipe (FIFO)" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------
# One huge item must not take the run down (issue 14.8)


def test_an_item_beyond_max_item_frames_is_refused_before_labelling():
    from anchorprep.errors import InputError
    from anchorprep.grid import FrameGrid
    from anchorprep.pipeline.rows import MAX_ITEM_FRAMES, utterance_extent

    grid = FrameGrid()
    seconds_at_limit = (MAX_ITEM_FRAMES - 1) * grid.shift / grid.sample_rate + grid.length / grid.sample_rate
    extent = utterance_extent({"duration_s": repr(seconds_at_limit)}, grid)
    assert grid.num_frames(extent.grid_samples) == MAX_ITEM_FRAMES
    with pytest.raises(InputError, match="too long: 8640001 frames"):
        utterance_extent({"duration_s": repr(seconds_at_limit + 0.01)}, grid)
    with pytest.raises(InputError, match="too long"):
        utterance_extent({"duration_s": "1e7"}, grid)


def test_the_item_that_would_overflow_its_shards_list_offsets_is_refused(tmp_path, monkeypatch):
    """int32 offsets wrapped negative past 2**31 frames; the runner now refuses the overflowing
    item (shown with the limit lowered to 2 utterances of 1000 frames)."""
    import anchorprep
    import anchorprep.pipeline.runner as runner_module
    from anchorprep.shards import open_run

    monkeypatch.setattr(runner_module, "MAX_LIST_VALUES", 2500)
    grid = SAMPLE / "alignments" / "utt00001-pos.TextGrid"
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,alignment_path,duration_s\n" + "".join(f"u{i},{grid},10.015\n" for i in range(4)))
    result = anchorprep.align(manifest, tmp_path / "out", keyword="hey computer", shard_size=3)
    rows = [r["utt_id"] for r in open_run(tmp_path / "out").iter_rows(["utt_id"])]
    assert rows == ["u0", "u1", "u3"]
    [line] = error_lines(tmp_path / "out").values()
    assert line["utt_id"] == "u2" and "smaller `shard_size`" in line["reason"]
    assert result.items_failed == 1


def test_list_offsets_never_wrap_to_negative(monkeypatch):
    import numpy as np

    import anchorprep.shards.schema as schema

    monkeypatch.setattr(schema, "MAX_LIST_VALUES", 5)
    assert schema._list_array([np.zeros(2), np.zeros(3)], schema.pa.int16()).offsets.to_pylist() == [0, 2, 5]
    with pytest.raises(OverflowError, match="at most 5 per column"):
        schema._list_array([np.zeros(2), np.zeros(4)], schema.pa.int16())


# --------------------------------------------------------------------------------------------
# Manifests, fuzzed: exact text for every scalar; anything else a UsageError, never a traceback

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
int64s = st.integers(-(2**63), 2**63 - 1)
cells = st.one_of(st.none(), int64s, st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                  st.sampled_from(["a\u2028b", "\x1c", "x\x85y", "\ufeff", "9007199254740993"]))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                           max_leaves=6)


def expected_text(value) -> str:
    return "" if value is None else str(value)


@FUZZ
@given(st.lists(cells, min_size=1, max_size=12))
def test_fuzzed_jsonl_cells_read_back_exactly(tmp_path_factory, column):
    path = tmp_path_factory.mktemp("jsonl") / "m.jsonl"
    path.write_text("".join(json.dumps({"utt_id": value}, ensure_ascii=False) + "\r\n" for value in column),
                    encoding="utf-8")
    assert read_manifest(path).column("utt_id").to_pylist() == [expected_text(v) for v in column]


@FUZZ
@given(st.lists(st.one_of(st.none(), int64s), min_size=1, max_size=12))
def test_fuzzed_parquet_integer_ids_read_back_exactly(tmp_path_factory, column):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("parquet") / "m.parquet"
    pq.write_table(pa.table({"utt_id": pa.array(column, pa.int64())}), path)
    assert read_manifest(path).column("utt_id").to_pylist() == [expected_text(v) for v in column]


@FUZZ
@given(st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=20)), min_size=1, max_size=5))
def test_fuzzed_jsonl_lines_are_read_or_a_usage_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "m.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines), encoding="utf-8")
    try:
        read_manifest(path, required=())
    except UsageError as exc:
        assert "\n" not in str(exc)


# --------------------------------------------------------------------------------------------
# Chunked reading: a manifest read a few rows at a time is the manifest read at once


CHUNKED_MANIFESTS = {
    "a.csv": "utt_id,alignment_path,x\nu1,a.TextGrid,1\nu2,/abs/b.TextGrid,\nu3,./c/../d.TextGrid,3\n\nu4,,x\nu5,e,5\n",
    "short.csv": "utt_id , alignment_path,x\nu1,a\nu2\nu3,c,z\nu4,d\nu5,e\n",
    "dup.csv": "utt_id,utt_id,alignment_path\nu1,v,a\nu2,w,b\nu3,x,c\n",
    "quoted.csv": 'utt_id,alignment_path\n"u,1","a\nb"\nu2,"x""y"\nu3,z\n',
    "t.tsv": "utt_id\taudio_path\tz\nu1\ta.wav\tNA\nu2\tnan\tNULL\nu3\t\t\n",
    "late.jsonl": '{"utt_id": "u1", "alignment_path": "a"}\n\n{"utt_id": 2, "x": 1.50}\n{"utt_id": "u3", "y": null}\r\n'
                  '{"utt_id": "u4\\u2028", "alignment_path": "b"}\n{"utt_id": "u5", "late": NaN}\n',
}


@pytest.mark.parametrize("name", [*CHUNKED_MANIFESTS, "a.parquet"])
def test_a_manifest_read_in_chunks_equals_it_read_at_once(tmp_path, monkeypatch, name):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import anchorprep.sources.items as items

    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.table({"utt_id": pa.array([1, 2, None, 9007199254740993]),
                                 "alignment_path": ["a", None, "/b", "c"],
                                 "f": pa.array([0.1, None, 2.5, 1e20], pa.float32())}), path, row_group_size=3)
    else:
        path.write_text(CHUNKED_MANIFESTS[name], encoding="utf-8", newline="")
    whole = read_manifest(path, required=())
    for rows in (1, 2):
        monkeypatch.setattr(items, "MANIFEST_CHUNK_ROWS", rows)
        chunked = read_manifest(path, required=())
        assert chunked.column_names == whole.column_names
        assert chunked.to_pylist() == whole.to_pylist()
        assert chunked.schema == whole.schema
    assert len(whole) >= 3 and all(isinstance(v, str) for r in whole.to_pylist() for v in r.values())


CSV_CASES = [  # (file text, the table pandas' read_csv made of it and read_manifest still makes)
    ("a,b,c\n1,2\n", {"a": ["1"], "b": ["2"], "c": [""]}),  # short rows padded
    ("a,b\n1,2\n\n  \n3,4\n", {"a": ["1", "3"], "b": ["2", "4"]}),  # blank and whitespace-only lines
    ("a\n1\n  \n\n3\n", {"a": ["1", "3"]}),
    ('a\n""\n\nx\n', {"a": ["", "x"]}),
    ("a,,a\n1,2,3\n", {"a": ["1"], "Unnamed: 1": ["2"], "a.1": ["3"]}),  # pandas' column names
    ("a,a,a.1\n1,2,3\n", {"a": ["1"], "a.2": ["2"], "a.1": ["3"]}),
    ("a,b,\n1,2,\n", {"a": ["1"], "b": ["2"], "Unnamed: 2": [""]}),
    ('a,b\nx"y,"p"q\n', {"a": ['x"y'], "b": ["pq"]}),
    ('a,b\r\n1,2\r\n\r\n3,"x\r\ny"\r\n', {"a": ["1", "3"], "b": ["2", "x\r\ny"]}),
    ("a,b\r1,2\r3,4", {"a": ["1", "3"], "b": ["2", "4"]}),
    ("\ufeff\"utt_id\",b\n1,2\n", {"utt_id": ["1"], "b": ["2"]}),
    ("a , b\n 1 , 2 \n", {"a": [" 1 "], "b": [" 2 "]}),
    ("a,b\nnan,NA\nNULL,#N/A\n007,1e3\n", {"a": ["nan", "NULL", "007"], "b": ["NA", "#N/A", "1e3"]}),
    ("a,b\n", {"a": [], "b": []}),
    ("a,b\n" + "1,2\n" * 30_000 + "3\n", {"a": ["1"] * 30_000 + ["3"], "b": ["2"] * 30_000 + [""]}),  # late short row
    ('a,b\n1,"' + "x\n" * 100_000 + '"\n2,y\n', {"a": ["1", "2"], "b": ["x\n" * 100_000, "y"]}),  # a cell > a block
]


@pytest.mark.parametrize("text, expected", CSV_CASES)
def test_csv_manifests_read_as_pandas_read_them(tmp_path, text, expected):
    """Arrow's CSV reader (or Python's csv module for short rows and one-column files) gives the
    table pandas' read_csv(dtype=str, keep_default_na=False) gave."""
    import pandas as pd

    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    table = read_manifest(path, required=())
    assert table.to_pydict() == expected
    assert all(str(t) == "string" for t in table.schema.types)
    before = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    before.columns = [str(c).strip() for c in before.columns]
    assert before.fillna("").to_dict("list") == expected


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2,3\n", "data row 1 has 3 cells, the header 2"),  # pandas made column a the index, shifting b
    ("a,b\n1,2,\n3,4,\n", "data row 1 has 3 cells, the header 2"),
    ("a,b\n" + "1,2\n" * 30_000 + "3,4,5\n", "data row 30001 has 3 cells"),
    ('utt_id,alignment_path\n"u1,a.TextGrid\n', "a quoted cell is never closed"),
    ('utt_id,alignment_path\nu1,"a.TextGrid', "a quoted cell is never closed"),
    ("", "cannot read manifest"),
])
def test_csv_manifests_pandas_misread_or_refused_are_usage_errors(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(UsageError, match=message):
        read_manifest(path, required=())


@pytest.mark.parametrize("values", [[], ["a"], ["", None, "é", "日本🎉", "x" * 1000], [None, None]])
def test_arrow_arrays_from_buffers_equal_pyarrow_array(values):
    import numpy as np
    import pyarrow as pa

    from anchorprep.sources.arrow import numeric_array, string_array

    built = string_array(values)
    assert built.equals(pa.array(values, pa.string())) and built.null_count == values.count(None)
    built.validate(full=True)
    for dtype in (pa.int16(), pa.int32(), pa.int64(), pa.float64(), pa.float32()):
        numbers = list(range(len(values)))
        assert numeric_array(numbers, dtype).equals(pa.array(numbers, dtype))
        assert numeric_array(np.array(numbers), dtype).equals(pa.array(numbers, dtype))
    with pytest.raises(OverflowError):
        numeric_array([40_000], pa.int16())
    with pytest.raises(UnicodeEncodeError):
        string_array(["\udce9"])


@pytest.mark.parametrize("name", [*CHUNKED_MANIFESTS, "big.csv"])
def test_a_spilled_manifest_reads_back_as_the_table(tmp_path, monkeypatch, name):
    """`SpilledItems` (what runs hold): the same rows, slices, fingerprint and repeats as
    the in-memory table, and no file left in the temporary folder."""
    import random
    import tempfile

    import anchorprep.sources.items as items
    from anchorprep.pipeline.runner import duplicate_rows, inputs_fingerprint

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = tmp_path / name
    if name == "big.csv":
        path.write_text("utt_id,alignment_path,x\n" + "".join(f"u{i % 9000},a{i}.TextGrid,{i}\n" for i in range(20_000)))
    else:
        path.write_text(CHUNKED_MANIFESTS[name], encoding="utf-8", newline="")
    monkeypatch.setattr(items, "MANIFEST_CHUNK_ROWS", 2)  # JSONL keys first seen in a later chunk
    monkeypatch.setattr(items.SpilledItems, "BATCH_ROWS", 3 if name != "big.csv" else 1000)
    whole = read_manifest(path, required=())
    spilled = read_manifest(path, required=(), spill=True)
    assert spilled.num_rows == whole.num_rows and spilled.column_names == whole.column_names
    assert spilled.slice(0, whole.num_rows).equals(whole)
    rng = random.Random(0)
    for _ in range(50):
        start, length = rng.randrange(whole.num_rows + 1), rng.randrange(whole.num_rows + 2)
        assert spilled.slice(start, length).to_pylist() == whole.slice(start, length).to_pylist()
    assert inputs_fingerprint(spilled) == inputs_fingerprint(whole)
    assert duplicate_rows(spilled) == duplicate_rows(whole)
    assert not list((tmp_path / "tmp").iterdir())


@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(["a", "b", "/", ".", ":", "\\", " ", "é"]),
                                                     max_size=8)), max_size=8),
       base=st.sampled_from(["/", ".", "/tmp/x", "rel/dir", "/tmp/x/", "..", "a b/é"]))
def test_join_all_joins_like_join_value_by_value(values, base):
    """The string route of `join_all` (plain relative values) gives `join`'s `str(base / value)`."""
    from anchorprep.storage import join, join_all

    assert join_all(Path(base), values) == [join(Path(base), value) for value in values]
