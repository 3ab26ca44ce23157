"""Input discovery: the item table a pipeline runs on, from a folder, a manifest or a corpus file.

Every pipeline (align, vad, accel) takes a table of items, one per utterance: a DataFrame of
strings in input order (``""`` for missing values; numbers are parsed per item by the job, so one
bad cell fails one item, not the whole run). This module is the one place that builds it:

* `read_manifest` — a CSV, TSV, JSONL or Parquet manifest, or ``"-"`` for one on standard input;
* `alignment_items` — a folder of TextGrids (+ audio), a Kaldi CTM (+ ``segments`` + ``wav.scp``),
  an RTTM, a lhotse CutSet/SupervisionSet, or a manifest;
* `audio_items` — a folder of audio files or a manifest (for VAD);
* `accel_items` — a folder of accelerometer files or a manifest.

Folder items have ids that are relative paths without suffix, in sorted order. A problem with the
input as a whole (missing folder, unreadable manifest, no files) is a `UsageError`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Iterator, Union

import pandas as pd

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.formats import is_ctm
from anchorprep.sources.alignments.lhotse import is_lhotse_manifest, lhotse_items
from anchorprep.sources.alignments.rttm import is_rttm
from anchorprep.sources.files import special_file_kind
from anchorprep.sources.kaldi import read_segments, read_wav_scp
from anchorprep.storage import StoragePath, join, list_files, location

PathLike = Union[str, "os.PathLike[str]"]

#: Manifest formats by file suffix; ``"-"`` (standard input) takes csv, tsv or jsonl.
MANIFEST_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
#: Manifest columns holding paths: relative values resolve against the manifest's folder.
PATH_COLUMNS = ("audio_path", "alignment_path", "accel_path", "anchors_path")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
ALIGNMENT_SUFFIXES = (".textgrid",)
#: Accelerometer files found in a folder (see `anchorprep.sources.accel.read_accel`).
ACCEL_SUFFIXES = (".csv", ".tsv", ".txt", ".npy", ".parquet", ".gz")
STDIN = "-"


# --------------------------------------------------------------------------------------------
# Manifests


def read_manifest(
    path: PathLike, required: tuple[str, ...] = ("utt_id",), *, manifest_format: str | None = None
) -> pd.DataFrame:
    """Read a manifest into a DataFrame of strings ("" for missing); resolve relative paths.

    The format comes from the suffix (`MANIFEST_FORMATS`) or `manifest_format` ("csv", "tsv",
    "jsonl", "parquet"). ``path="-"`` reads standard input: the format is `manifest_format`, or
    sniffed (JSONL when the first non-blank character is ``{``, else TSV when the first line has
    a tab, else CSV). Relative values in path columns resolve against the manifest's folder (the
    current folder for standard input). Every cell is text exactly as written: JSONL numbers
    keep their literal text and Parquet integers their exact decimal text (an id never passes
    through float64), ``null`` is missing (""), and a JSONL ``NaN`` stays ``"NaN"`` so the item's
    number check refuses it as it refuses a CSV ``nan``. Raises `UsageError` when the manifest
    itself is unusable: unknown format, not UTF-8, a JSONL line that is not a JSON object, a
    list/struct/map column or non-UTF-8 binary column, a required column missing.

    The manifest is read `MANIFEST_CHUNK_ROWS` rows at a time and each chunk becomes text columns
    (pandas' ``str`` dtype: Arrow-backed from pandas 3 on) before the next is read, so a
    million-row manifest never exists as one Python object per cell.
    """
    from_stdin = os.fspath(path) == STDIN
    if manifest_format is not None and manifest_format not in MANIFEST_FORMATS.values():
        raise UsageError(f"`manifest_format` must be one of {', '.join(MANIFEST_FORMATS.values())}; got {manifest_format!r}")
    if from_stdin:
        data = sys.stdin.buffer.read()
        fmt = manifest_format or _sniff_manifest(data)
        where, base, source = "standard input", Path.cwd(), io.BytesIO(data)
    else:
        path = location(path)
        fmt = manifest_format or MANIFEST_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise UsageError(f"{path}: unknown manifest format; use one of {', '.join(MANIFEST_FORMATS)}")
        _refuse_special_input(path)
        if not _is_file(path):
            raise UsageError(f"{path}: manifest not found")
        where, base, source = str(path), path.parent.resolve(), path
        if isinstance(path, StoragePath):  # one GET; relative paths inside resolve against its URL
            source = io.BytesIO(_read_input(path, "manifest"))
    chunks = [_text_chunk(chunk, base) for chunk in _read_chunks(source, fmt, where)]
    frame = _concat_text_chunks(chunks)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UsageError(f"{where}: manifest lacks column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")
    return frame.reset_index(drop=True)


#: Rows per manifest chunk: bounds the Python objects alive while a manifest is read.
MANIFEST_CHUNK_ROWS = 20_000


def _concat_text_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks as one frame ("" where a JSONL key first appears after the first chunk)."""
    if len(chunks) < 2:
        return chunks[0] if chunks else pd.DataFrame()
    frame = pd.concat(chunks, ignore_index=True)
    return frame.fillna("") if frame.isna().any(axis=None) else frame


def _text_chunk(chunk: pd.DataFrame, base: Path) -> pd.DataFrame:
    """A chunk as stripped column names and text cells ("" for missing), path columns resolved."""
    chunk.columns = [str(c).strip() for c in chunk.columns]
    if not all(dtype == str for dtype in chunk.dtypes) or chunk.isna().any(axis=None):
        chunk = chunk.astype(object).where(chunk.notna(), "").astype(str)
    for column in PATH_COLUMNS:
        if column in chunk.columns:
            chunk[column] = [join(base, value) for value in chunk[column]]
    return chunk


def _sniff_manifest(data: bytes) -> str:
    text = data.lstrip()
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:].lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    return "tsv" if b"\t" in text.split(b"\n", 1)[0] else "csv"


def _read_chunks(source, fmt: str, where: str) -> Iterator[pd.DataFrame]:
    """The manifest's raw cells, `MANIFEST_CHUNK_ROWS` rows at a time; `UsageError` if unreadable."""
    import pyarrow as pa

    try:
        if fmt in ("csv", "tsv"):
            reader = pd.read_csv(source, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                                 encoding="utf-8-sig", chunksize=MANIFEST_CHUNK_ROWS)
            with reader:
                yield from reader
        elif fmt == "jsonl":
            data = source.read() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
            yield from _jsonl_chunks(data.decode("utf-8-sig"), where)
        else:
            yield from _parquet_chunks(source, where)
    except UsageError:
        raise
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: manifest is not UTF-8 ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from None
    except (ValueError, OSError, pd.errors.ParserError, pa.ArrowException) as exc:
        raise UsageError(f"{where}: cannot read manifest: {exc}") from None


def _jsonl_chunks(text: str, where: str) -> Iterator[pd.DataFrame]:
    """One JSON object per line; every value as the text written (``null`` and absent keys: "").

    Numbers keep their literal text (``9007199254740993`` stays exact, ``1`` does not become
    ``1.0``); ``NaN``/``Infinity`` stay text too, so a per-item number check refuses them as
    it refuses a CSV ``nan``.
    """
    records = []
    # Lines end at "\n" only (not splitlines(): U+2028 may sit inside a string), read one at a time.
    for number, line in enumerate(io.StringIO(text, newline="\n"), 1):
        line = line[:-1] if line.endswith("\n") else line
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: line {number} is not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: line {number} is not a JSON object ({_clip(line)}); "
                             'each line must be one object of columns, e.g. {"utt_id": "a", ...}')
        for column, value in record.items():
            if isinstance(value, (list, dict)):
                raise UsageError(f"{where}: line {number}: column {column} holds a JSON {type(value).__name__}, "
                                 "not text or a number; flatten it or drop the column")
            record[column] = _JSON_LITERALS.get(value, value) if not isinstance(value, str) else value
        records.append(record)
        if len(records) == MANIFEST_CHUNK_ROWS:
            yield pd.DataFrame.from_records(records).fillna("")
            records = []
    if records:
        yield pd.DataFrame.from_records(records).fillna("")


_JSON_LITERALS = {None: "", True: "true", False: "false"}


def _clip(line: str, width: int = 40) -> str:
    line = line.strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def _parquet_chunks(source, where: str) -> Iterator[pd.DataFrame]:
    """The Parquet manifest (read whole into Arrow memory) as text, `MANIFEST_CHUNK_ROWS` rows at a
    time (`_parquet_frame`); its schema alone when it has no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    batches = [batch for batch in table.to_batches(max_chunksize=MANIFEST_CHUNK_ROWS) if batch.num_rows]
    if not batches:
        yield _parquet_frame(table, where)
    for batch in batches:
        yield _parquet_frame(pa.Table.from_batches([batch], table.schema), where)


def _parquet_frame(table, where: str) -> pd.DataFrame:
    """Every column as text: integers as their exact decimal text (never through float64), null
    as "", UTF-8 binary decoded; nested (list, struct, map) or non-UTF-8 binary columns refused."""
    import numpy as np
    import pyarrow as pa

    columns = {}
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_nested(kind):
            raise UsageError(f"{where}: column {name} holds {kind} values, not text or numbers; "
                             "flatten it or drop the column")
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
            try:
                column = column.cast(pa.string())
            except pa.ArrowInvalid:
                raise UsageError(f"{where}: column {name} holds binary data that is not UTF-8 text; "
                                 "drop the column or store it as text") from None
        if pa.types.is_floating(kind) and kind.bit_width < 64:
            # float32 0.1 is 0.10000000149011612 as a Python float; its own shortest text is 0.1
            values = [None if v is None else str(np.float32(v)) for v in column.to_pylist()]
        else:
            values = column.to_pylist()
        columns[name] = [_cell_text(v) for v in values]
    return pd.DataFrame(columns, dtype=object) if columns else pd.DataFrame()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _is_file(path) -> bool:
    """``path.is_file()``; an object store refusing access is a `UsageError` (one line), not a traceback."""
    try:
        return path.is_file()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _is_dir(path) -> bool:
    try:
        return path.is_dir()
    except FileNotFoundError:  # an object store's missing bucket
        return False
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _read_input(path: StoragePath, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def _is_stdin(inputs: PathLike) -> bool:
    return not isinstance(inputs, StoragePath) and os.fspath(inputs) == STDIN


def _refuse_special_input(path: PathLike | None) -> None:
    """A run input that is a FIFO or device would block the run before it starts: `UsageError`."""
    kind = None if path is None or _is_stdin(path) else special_file_kind(path)
    if kind is not None:
        raise UsageError(f"{os.fspath(path)}: not a regular file: it is {kind}; give a file, or `-` for standard input")


# --------------------------------------------------------------------------------------------
# Folders


def textgrid_folder_items(alignment_dir: PathLike, audio_dir: PathLike | None = None) -> pd.DataFrame:
    """Pair ``X.TextGrid`` with ``X.wav|flac|ogg`` recursively (MFA's output layout); paths absolute.

    MFA writes alignments to an output folder mirroring the corpus folder, so `audio_dir`
    (default: the alignment folder) is searched at the same relative path. Item ids are the
    relative paths without suffix, in sorted order; an alignment with no audio gets an empty
    ``audio_path`` (its duration then comes from the alignment).
    """
    alignment_dir = location(alignment_dir)
    if not _is_dir(alignment_dir):
        raise UsageError(f"{alignment_dir}: not a folder")
    # Absolute (as manifest paths are), so the stored audio_path works from any working directory.
    alignment_dir = alignment_dir.resolve()
    audio_dir = location(audio_dir).resolve() if audio_dir is not None else alignment_dir
    # On object storage one listing per folder answers "is there audio?" (not a request per file).
    audio_objects = set(_relative_files(audio_dir, AUDIO_SUFFIXES)) if isinstance(audio_dir, StoragePath) else None

    def has_audio(relative: str) -> bool:
        if audio_objects is None:
            return os.path.isfile(os.path.join(audio_dir, relative))
        return relative in audio_objects

    def rows() -> Iterator[tuple[str, str, str]]:
        for relative in _relative_files(alignment_dir, ALIGNMENT_SUFFIXES):
            stem = PurePosixPath(relative).with_suffix("")
            audio = next((_join(audio_dir, str(stem.with_suffix(s))) for s in AUDIO_SUFFIXES
                          if has_audio(str(stem.with_suffix(s)))), "")
            yield str(stem), audio, _join(alignment_dir, relative)

    frame = _file_frame(rows(), ("utt_id", "audio_path", "alignment_path"))
    if frame.empty:
        raise UsageError(f"{alignment_dir}: no .TextGrid files found")
    return frame


def folder_items(folder: PathLike, suffixes: tuple[str, ...], column: str) -> pd.DataFrame:
    """Every file with one of `suffixes` under `folder` (recursive, sorted) as an item whose
    `column` is the file's absolute path; ids are relative paths without suffix."""
    folder = location(folder)
    if not _is_dir(folder):
        raise UsageError(f"{folder}: not a folder")
    folder = folder.resolve()  # absolute paths, as for manifests
    rows = ((str(PurePosixPath(f).with_suffix("")), _join(folder, f)) for f in _relative_files(folder, suffixes))
    frame = _file_frame(rows, ("utt_id", column))
    if frame.empty:
        raise UsageError(f"{folder}: no {'/'.join(suffixes)} files found")
    return frame


def _relative_files(folder, suffixes: tuple[str, ...]) -> Iterator[str]:
    """The files under ``folder`` (a local `Path` or a `StoragePath`) with one of ``suffixes``, as
    sorted relative POSIX paths: `_files_under` locally, one recursive listing on object storage."""
    if not isinstance(folder, StoragePath):
        return _files_under(str(folder), suffixes)
    try:
        listed = list_files(folder)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot list: {exc.strerror or exc}") from None
    return (path.relative_to(folder).as_posix() for path in listed if path.suffix.lower() in suffixes)


def _join(folder, relative: str) -> str:
    return str(folder / relative) if isinstance(folder, StoragePath) else os.path.join(folder, relative)


def _files_under(folder: str, suffixes: tuple[str, ...]) -> Iterator[str]:
    """The regular files (symlinks followed) under `folder` whose suffix, lower-cased, is one of
    `suffixes`, as relative POSIX paths in sorted path order (component by component, as
    sorting ``Path`` objects does). Like ``Path.rglob``, links to folders are not entered and
    unreadable folders are skipped; FIFOs and devices are not regular files, so never listed
    (opening a FIFO would hang the run). Strings only, one folder listing at a time: a
    million-file corpus is listed without a ``Path`` object per file."""

    def is_folder(entry: os.DirEntry) -> bool:
        try:
            return entry.is_dir() and not entry.is_symlink()
        except OSError:
            return False

    def visit(directory: str, prefix: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as listing:
                entries = sorted((entry.name, is_folder(entry)) for entry in listing)
        except PermissionError:
            return
        for name, folder_entry in entries:
            if folder_entry:
                yield from visit(os.path.join(directory, name), f"{prefix}{name}/")
            elif PurePosixPath(name).suffix.lower() in suffixes and os.path.isfile(os.path.join(directory, name)):
                yield prefix + name

    return visit(folder, "")


def _file_frame(rows: Iterator[tuple[str, ...]], names: tuple[str, ...]) -> pd.DataFrame:
    """Rows of file-name text as text columns, converted `MANIFEST_CHUNK_ROWS` rows at a time;
    every name must be UTF-8 (`_require_utf8_names`)."""
    chunks, batch = [], []
    for row in rows:
        batch.append(row)
        if len(batch) == MANIFEST_CHUNK_ROWS:
            chunks.append(_file_chunk(batch, names))
            batch = []
    if batch or not chunks:
        chunks.append(_file_chunk(batch, names))
    return _concat_text_chunks(chunks)


def _file_chunk(rows: list[tuple[str, ...]], names: tuple[str, ...]) -> pd.DataFrame:
    _require_utf8_names(rows)
    return pd.DataFrame(rows, columns=list(names), dtype=str)


def _require_utf8_names(rows: list[tuple[str, ...]]) -> None:
    """File names that are not UTF-8 (e.g. Latin-1 bytes from an old corpus) cannot become
    utt_ids or Parquet strings: a usage error naming the file, not a crash."""
    for row in rows:
        for value in reversed(row):  # the path columns come after utt_id
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raw = os.fsencode(value)
                raise UsageError(
                    f"file name is not UTF-8: {raw!r}; rename it (e.g. convmv -f latin1 -t utf8) "
                    "or list the items in a UTF-8 manifest"
                ) from None


# --------------------------------------------------------------------------------------------
# Corpus files that list their own utterances


def ctm_items(
    ctm: PathLike, segments: PathLike | None = None, wav_scp: PathLike | None = None, encoding: str = "utf-8"
) -> pd.DataFrame:
    """Items for a Kaldi-style run without a manifest: one per utterance of the CTM (or segments).

    With `segments`, the CTM's file ids are recordings and each segment is an item (its
    ``start_s``/``duration_s`` come from the segments file); `wav_scp` maps recording (or
    utterance) ids to audio files (plain paths only: piped commands are refused).
    """
    from anchorprep.sources.alignments.ctm import read_ctm

    audio = read_wav_scp(wav_scp) if wav_scp else {}
    if segments is not None:
        try:
            table = read_segments(str(segments))
        except InputError as exc:
            raise UsageError(str(exc)) from None
        # A Kaldi end of -1 means "to the end of the recording": leave duration_s empty.
        rows = [{"utt_id": utt, "audio_path": audio.get(seg.recording, ""), "alignment_path": str(ctm),
                 "start_s": repr(seg.start), "duration_s": repr(seg.end - seg.start) if seg.end != float("inf") else ""}
                for utt, seg in table.items()]
    else:
        try:
            errors: dict[str, InputError] = {}
            # Utterances with bad lines stay items: they end as errors.jsonl lines, not silently lost.
            ids = sorted(set(read_ctm(str(ctm), encoding=encoding, errors=errors)) | set(errors))
        except InputError as exc:
            raise UsageError(str(exc)) from None
        rows = [{"utt_id": utt, "audio_path": audio.get(utt, ""), "alignment_path": str(ctm)} for utt in ids]
    if not rows:
        raise UsageError(f"{ctm}: no utterances found")
    return pd.DataFrame(rows, dtype=str)


def rttm_items(rttm: PathLike, wav_scp: PathLike | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Items for ``align`` on an RTTM: one per recording (file id), in file order.

    ``utt_id`` is the file id and ``alignment_path`` the RTTM; `wav_scp` (a Kaldi ``wav.scp``,
    plain paths only) gives ``audio_path``. Without audio the utterance ends at the last segment
    end (the RTTM does not know the recording length), which is enough for onsets; give audio
    for correct negatives after the last segment. File ids with malformed lines stay items (they
    end as ``errors.jsonl`` lines). To label segments of a recording instead, write a manifest
    with ``utt_id``, ``recording_id`` (the RTTM file id), ``start_s``, ``duration_s``,
    ``audio_path`` and ``alignment_path``. Raises `UsageError` for an unreadable RTTM or one
    without ``SPEAKER`` lines.
    """
    from anchorprep.sources.alignments.rttm import read_rttm

    try:
        errors: dict[str, InputError] = {}
        ids = list(read_rttm(rttm, encoding, errors=errors))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    ids += [i for i in errors if i not in ids]
    if not ids:
        raise UsageError(f"{rttm}: no SPEAKER lines found")
    audio = read_wav_scp(wav_scp) if wav_scp is not None else {}
    rows = [{"utt_id": i, "audio_path": audio.get(i, ""), "alignment_path": os.fspath(rttm)} for i in ids]
    return pd.DataFrame(rows, dtype=str)


# --------------------------------------------------------------------------------------------
# Per pipeline


def alignment_items(
    inputs: PathLike,
    *,
    alignment_format: str = "auto",
    audio_dir: PathLike | None = None,
    segments: PathLike | None = None,
    wav_scp: PathLike | None = None,
    encoding: str = "utf-8",
    lhotse_unit: str = "auto",
    recordings: PathLike | None = None,
    audio_root: PathLike | None = None,
) -> pd.DataFrame:
    """The items of an ``align`` run, whatever `inputs` is, checked in this order:

    * a folder: TextGrids paired with audio (`textgrid_folder_items`; audio under `audio_dir`);
    * an RTTM (`alignment_format` ``"rttm"`` or a ``.rttm`` name): one item per recording,
      audio from `wav_scp` (`rttm_items`);
    * a lhotse CutSet/SupervisionSet (`alignment_format` ``"auto"``/``"lhotse"`` and a cut or
      supervision as first record): one item per `lhotse_unit`, audio from the manifest or
      `recordings`, relative sources under `audio_root`
      (`anchorprep.sources.alignments.lhotse.lhotse_items`);
    * a ``.ctm`` file: one item per utterance, or per line of `segments`, audio from `wav_scp`
      (`ctm_items`);
    * otherwise a manifest (``"-"``: standard input) with ``utt_id`` and ``alignment_path``.
    """
    if _is_stdin(inputs):
        return read_manifest(inputs, required=("utt_id", "alignment_path"))
    for given in (inputs, segments, wav_scp, recordings):
        _refuse_special_input(given)
    where = location(inputs)
    if _is_dir(where):
        return textgrid_folder_items(where, audio_dir)
    inputs = str(where)  # a file: its readers take path strings (URLs included)
    if is_rttm(inputs, alignment_format):
        return rttm_items(inputs, wav_scp, encoding)
    if alignment_format in ("auto", "lhotse") and is_lhotse_manifest(inputs):
        return lhotse_items(inputs, lhotse_unit, recordings=recordings, audio_root=audio_root)
    if is_ctm(where.name):  # by name, whatever `alignment_format` says
        return ctm_items(inputs, segments, wav_scp, encoding)
    return read_manifest(inputs, required=("utt_id", "alignment_path"))


def audio_items(inputs: PathLike) -> pd.DataFrame:
    """The items of a ``vad`` run: every wav/flac/ogg file under a folder, or a manifest
    (``"-"``: standard input) with ``utt_id`` and ``audio_path``."""
    if not _is_stdin(inputs) and _is_dir(location(inputs)):
        return folder_items(inputs, AUDIO_SUFFIXES, "audio_path")
    return read_manifest(inputs, required=("utt_id", "audio_path"))


def accel_items(inputs: PathLike) -> pd.DataFrame:
    """The items of an ``accel`` run: every sensor file (`ACCEL_SUFFIXES`) under a folder, or a
    manifest (``"-"``: standard input) with ``utt_id`` and ``accel_path``."""
    if not _is_stdin(inputs) and _is_dir(location(inputs)):
        return folder_items(inputs, ACCEL_SUFFIXES, "accel_path")
    return read_manifest(inputs, required=("utt_id", "accel_path"))
