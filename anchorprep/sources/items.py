"""Input discovery: the item table a pipeline runs on, from a folder, a manifest or a corpus file.

Every pipeline (align, vad, accel) takes a table of items, one per utterance: a ``pyarrow.Table``
of string columns in input order (``""`` for missing values; numbers are parsed per item by the
job, so one bad cell fails one item, not the whole run). Columnar, so a driver holding millions
of items holds a few Arrow buffers, not a Python object per cell; and pandas stays unimported.
This module is the one place that builds it:

* `read_manifest` — a CSV, TSV, JSONL or Parquet manifest, or ``"-"`` for one on standard input;
* `alignment_items` — a folder of TextGrids (+ audio), a Kaldi CTM (+ ``segments`` + ``wav.scp``),
  an RTTM, a lhotse CutSet/SupervisionSet, or a manifest;
* `audio_items` — a folder of audio files or a manifest (for VAD);
* `accel_items` — a folder of accelerometer files or a manifest.

Folder items have ids that are relative paths without suffix, in sorted order. A problem with the
input as a whole (missing folder, unreadable manifest, no files) is a `UsageError`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterable, Iterator, Union

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.formats import is_ctm
from anchorprep.sources.alignments.lhotse import is_lhotse_manifest, lhotse_items
from anchorprep.sources.alignments.rttm import is_rttm
from anchorprep.sources.files import special_file_kind
from anchorprep.sources.kaldi import read_segments, read_wav_scp
from anchorprep.storage import StoragePath, join_all, list_files, location

if TYPE_CHECKING:
    import pyarrow as pa

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
    path: PathLike, required: tuple[str, ...] = ("utt_id",), *, manifest_format: str | None = None,
    spill: bool = False,
) -> "pa.Table | SpilledItems":
    """Read a manifest into an item table (a ``pyarrow.Table`` of string columns, "" for
    missing); resolve relative paths.

    The format comes from the suffix (`MANIFEST_FORMATS`) or `manifest_format` ("csv", "tsv",
    "jsonl", "parquet"). ``path="-"`` reads standard input: the format is `manifest_format`, or
    sniffed (JSONL when the first non-blank character is ``{``, else TSV when the first line has
    a tab, else CSV). Relative values in path columns resolve against the manifest's folder (the
    current folder for standard input). Every cell is text exactly as written: JSONL numbers
    keep their literal text and Parquet integers their exact decimal text (an id never passes
    through float64), ``null`` is missing (""), and a JSONL ``NaN`` stays ``"NaN"`` so the item's
    number check refuses it as it refuses a CSV ``nan``. CSV/TSV: blank lines are skipped, a row
    with fewer cells than the header gets "" for the rest, one with more is refused, an empty
    header cell ``i`` is named ``Unnamed: i`` and a repeated name gets ``.1``, ``.2``, ... (as
    pandas names them). Raises `UsageError` when the manifest itself is unusable: unknown
    format, not UTF-8, a row with more cells than the header, a JSONL line that is not a JSON
    object, a list/struct/map column or non-UTF-8 binary column, a required column missing.

    The manifest is read in blocks (`MANIFEST_CHUNK_ROWS` rows at a time where rows become
    Python values), each turned into Arrow text columns before the next is read, so a
    million-row manifest never exists as one Python object per cell. With `spill`, the blocks go
    to a temporary file as they are read (`SpilledItems`: what runs use, so the driver's memory
    does not grow with the manifest).
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
        where, base = str(path), path.parent.resolve()
        # One GET for object storage (relative paths inside resolve against its URL).
        source = io.BytesIO(_read_input(path, "manifest")) if isinstance(path, StoragePath) else path
    chunks = (_resolve_paths(chunk, base) for chunk in _read_chunks(source, fmt, where))
    table = SpilledItems(chunks) if spill else concat_text_tables(list(chunks))
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise UsageError(f"{where}: manifest lacks column(s) {', '.join(missing)}; it has {', '.join(table.column_names)}")
    return table


#: Rows per manifest chunk: bounds the Python objects alive while a manifest is read.
MANIFEST_CHUNK_ROWS = 20_000


def item_table(records: list[dict[str, str]]) -> "pa.Table":
    """Records (dicts of text) as an item table: one string column per key in order of first
    appearance, "" where a record lacks a key."""
    import pyarrow as pa

    from anchorprep.sources.arrow import string_array

    names = list(dict.fromkeys(name for record in records for name in record))
    return pa.table({name: string_array([record.get(name, "") for record in records]) for name in names})


def concat_text_tables(tables: list["pa.Table"]) -> "pa.Table":
    """Item tables one after the other; a column missing from some table is "" in its rows
    (JSONL keys first seen after the first chunk). Columns in order of first appearance."""
    import pyarrow as pa

    from anchorprep.sources.arrow import string_array

    if not tables:
        return pa.table({})
    names = list(dict.fromkeys(name for table in tables for name in table.column_names))
    if any(table.column_names != names for table in tables):
        tables = [pa.table({name: table[name] if name in table.column_names
                            else string_array([""] * table.num_rows) for name in names})
                  for table in tables]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]  # no copy: the chunks stay


class SpilledItems:
    """An item table kept in an unlinked temporary Arrow IPC file, read back a slice at a time.

    What a run's driver holds instead of the table (`spill=True` of the discovery functions):
    the chunks are written as they are read, so the driver's memory does not grow with the
    number of items. Offers the table methods the runner uses: `num_rows`, `column_names` and
    `slice` (returning in-memory Arrow data).
    """

    #: Rows per record batch of the file (a shard's slice reads the batches it overlaps).
    BATCH_ROWS = 4096

    def __init__(self, chunks: Iterable["pa.Table"]) -> None:
        import tempfile

        import numpy as np
        import pyarrow as pa

        chunks = iter(chunks)
        # Native Arrow files only (a `pa.PythonFile` would be read from Arrow's I/O threads, which
        # then need the GIL and can abort the process at exit). On Linux the file is unlinked at
        # once and reopened through /proc/self/fd, so a run killed while it is written leaves
        # nothing behind; elsewhere it is unlinked as soon as it is written. It lives in TMPDIR.
        handle, path = tempfile.mkstemp(prefix="anchorprep-items-", suffix=".arrow")
        reopen = f"/proc/self/fd/{handle}"
        if os.path.exists(reopen):
            os.unlink(path)
            path = reopen
        try:
            starts, rows, late = self._write(path, chunks)
            if late is not None:  # a JSONL key first seen late: join in memory, then write again
                with pa.OSFile(path, "rb") as written:
                    table = concat_text_tables([pa.ipc.open_file(written).read_all(), late, *chunks])
                starts, rows, _ = self._write(path, iter([table]))
            self._file = pa.OSFile(path, "rb")
        finally:
            if path != reopen:
                os.unlink(path)  # the open file stays readable
            os.close(handle)
        self._reader = pa.ipc.open_file(self._file)
        self.schema = self._reader.schema
        self.num_rows = rows
        self._starts = np.array(starts + [rows], dtype=np.int64)

    @classmethod
    def _write(cls, path: str, chunks: Iterator["pa.Table"]):
        """Write chunks until one has other columns than the first: (batch starts, rows, that chunk)."""
        import pyarrow as pa

        writer, starts, rows, late, names = None, [], 0, None, None
        with pa.OSFile(path, "wb") as sink:
            for chunk in chunks:
                if writer is None:
                    writer, names = pa.ipc.new_file(sink, chunk.schema), chunk.column_names
                elif chunk.column_names != names:
                    late = chunk
                    break
                for batch in chunk.to_batches(max_chunksize=cls.BATCH_ROWS):
                    writer.write_batch(batch)
                    starts.append(rows)
                    rows += batch.num_rows
            if writer is None:
                writer = pa.ipc.new_file(sink, pa.schema([]))
            writer.close()
        return starts, rows, late

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    def __len__(self) -> int:
        return self.num_rows

    def slice(self, offset: int = 0, length: int | None = None) -> "pa.Table":
        """Rows ``[offset, offset + length)`` as an in-memory table (``pa.Table.slice``)."""
        import numpy as np
        import pyarrow as pa

        stop = self.num_rows if length is None else min(self.num_rows, offset + length)
        if stop <= offset:
            return self.schema.empty_table()
        first = int(np.searchsorted(self._starts, offset, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left"))
        table = pa.Table.from_batches([self._reader.get_batch(i) for i in range(first, last)], self.schema)
        return table.slice(offset - int(self._starts[first]), stop - offset)



def _resolve_paths(table: "pa.Table", base: Path) -> "pa.Table":
    """The table with relative values in `PATH_COLUMNS` joined to the manifest's folder."""
    from anchorprep.sources.arrow import string_array

    for column in PATH_COLUMNS:
        if column in table.column_names and _has_relative_values(table[column]):
            index = table.column_names.index(column)
            resolved = string_array(join_all(base, table[column].to_pylist()))
            table = table.set_column(index, column, resolved)
    return table


def _has_relative_values(column) -> bool:
    """Whether some value is neither empty nor an absolute POSIX path (so `join` may change it);
    columnar, so a manifest of absolute paths is not turned into Python strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    relative = pc.and_(pc.invert(pc.starts_with(column, "/")), pc.cast(pc.binary_length(column), pa.bool_()))
    return bool(pc.any(relative).as_py())


def _sniff_manifest(data: bytes) -> str:
    text = data.lstrip()
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:].lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    return "tsv" if b"\t" in text.split(b"\n", 1)[0] else "csv"


def _read_chunks(source, fmt: str, where: str) -> Iterator["pa.Table"]:
    """The manifest's cells as text tables, a block at a time; `UsageError` if unreadable."""
    import pyarrow as pa

    try:
        if fmt in ("csv", "tsv"):
            yield from _csv_tables(source, "," if fmt == "csv" else "\t", where)
        elif fmt == "jsonl":
            data = source.read() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
            yield from _jsonl_chunks(data.decode("utf-8-sig"), where)
        else:
            yield from _parquet_chunks(source, where)
    except UsageError:
        raise
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: manifest is not UTF-8 ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from None
    except (ValueError, OSError, csv.Error, pa.ArrowException) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "invalid UTF8" in message:
            raise UsageError(f"{where}: manifest is not UTF-8 ({message}); re-encode it as UTF-8") from None
        raise UsageError(f"{where}: cannot read manifest: {message}") from None


#: Bytes Arrow's CSV reader parses at a time. Small: the parse buffers of every block stay in
#: the allocator after they are freed, so the driver's peak grows with the block (1 MiB blocks
#: cost ~20 MB more than 64 KiB ones at 281k rows).
CSV_BLOCK_BYTES = 1 << 16
#: Arrow errors that `_python_csv_tables` reads past: a row of another length than the header,
#: a row longer than `CSV_BLOCK_BYTES`.
_ARROW_CSV_REFUSALS = re.compile(r"Expected \d+ columns, got \d+|straddling object")


def _csv_tables(source, delimiter: str, where: str) -> Iterator["pa.Table"]:
    """A CSV/TSV as text tables, Arrow's CSV reader streaming it block by block.

    When Arrow refuses a row whose length differs from the header's (a short row, a
    whitespace-only line) or a row longer than a block, `_python_csv_tables` reads on from that
    row (skipping such lines and padding short rows as pandas did); a file with a single column
    (where Arrow would keep a whitespace-only line as a row) is read by it whole. Both parsers
    accept a quoted cell left open at the end of the file; pandas refused it, and so does
    `_require_closed_quote`.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)

    def reader(column_types=None):
        if isinstance(source, io.BytesIO):
            source.seek(0)
        convert = pacsv.ConvertOptions(column_types=column_types or {}, strings_can_be_null=False)
        return pacsv.open_csv(source if isinstance(source, io.BytesIO) else os.fspath(source),
                              read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES), parse_options=parse,
                              convert_options=convert)

    names = _python_csv_header(source, delimiter)
    if len(names) < 2:
        yield from _python_csv_tables(source, delimiter, where)
        return
    done, last, batches = 0, None, None
    try:
        batches = reader({name: pa.string() for name in names})
        if batches.schema.names != names or any(t != pa.string() for t in batches.schema.types):
            # Arrow read another header than Python's csv module: take its names from a first pass.
            batches.close()
            try:
                with reader() as first_pass:
                    names = first_pass.schema.names
            except UnicodeDecodeError:
                raise UsageError(f"{where}: manifest is not UTF-8 (its header); re-encode it as UTF-8") from None
            batches = reader({name: pa.string() for name in names})
        header = _manifest_names(names)
        for batch in batches:
            if batch.num_rows:
                last = pa.Table.from_batches([batch]).rename_columns(header)
                yield last
                done += batch.num_rows
    except pa.ArrowInvalid as exc:
        if not _ARROW_CSV_REFUSALS.search(str(exc)):
            raise
        yield from _python_csv_tables(source, delimiter, where, skip=done)
        return
    finally:
        # A streaming reader left to the interpreter's final teardown (e.g. held by the frames of
        # an exception's traceback) can still have a read-ahead thread, which then aborts the
        # process at exit ("terminate called without an active exception", apache/arrow#34314).
        if batches is not None:
            batches.close()
    if last is None:
        yield pa.Table.from_batches([], pa.schema([(name, pa.string()) for name in header]))
    else:
        _require_closed_quote(source, last.column(last.num_columns - 1)[-1].as_py(), where)


def _python_csv_header(source, delimiter: str) -> list[str]:
    """The first non-blank row as Python's csv module reads it (the column names Arrow's reader
    is told to read as text); [] for an empty file."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        stream = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    else:
        stream = open(source, encoding="utf-8-sig", newline="")
    try:
        return next((row for row in csv.reader(stream, delimiter=delimiter) if row), [])
    finally:
        if isinstance(source, io.BytesIO):
            stream.detach()
        else:
            stream.close()


def _require_closed_quote(source, last_cell: str, where: str) -> None:
    """`UsageError` when the file's last cell (`last_cell`, as parsed) is a quoted cell never closed.

    Such a cell runs to the end of the file, so the file ends with ``"`` and the cell's text;
    a closed quoted cell ends the file with ``"`` (plus a line end), an unquoted one cannot
    begin with ``"``.
    """
    last = last_cell.encode("utf-8")
    if isinstance(source, io.BytesIO):
        tail = bytes(source.getbuffer()[-(len(last) + 1):])
    else:
        with open(source, "rb") as stream:
            stream.seek(max(0, os.path.getsize(source) - len(last) - 1))
            tail = stream.read()
    if tail == b'"' + last:
        raise UsageError(f"{where}: cannot read manifest: a quoted cell is never closed (its opening \" is "
                         "followed by the rest of the file)")


def _python_csv_tables(source, delimiter: str, where: str, skip: int = 0) -> Iterator["pa.Table"]:
    """The CSV read by Python's csv module, `MANIFEST_CHUNK_ROWS` rows at a time, from data row
    ``skip`` on: blank and whitespace-only lines skipped, short rows padded with "", a row longer
    than the header a `UsageError`."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        stream = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    else:
        stream = open(source, encoding="utf-8-sig", newline="")
    limit = csv.field_size_limit(2**31 - 1)  # pandas had no cell size limit (the module's default: 128 KiB)
    try:
        rows = (row for row in csv.reader(stream, delimiter=delimiter)
                if row and not (len(row) == 1 and row[0] and not row[0].strip()))
        header = _manifest_names(next(rows, []))
        if not header:
            raise UsageError(f"{where}: cannot read manifest: no columns in the first line")
        chunk: list[list[str]] = []
        row, produced = [], False
        for number, row in enumerate(rows, 1):
            if len(row) > len(header):
                raise UsageError(f"{where}: cannot read manifest: data row {number} has {len(row)} cells, "
                                 f"the header {len(header)}")
            if number <= skip:
                continue
            chunk.append(row + [""] * (len(header) - len(row)))
            if len(chunk) == MANIFEST_CHUNK_ROWS:
                yield _rows_table(chunk, header)
                chunk, produced = [], True
        if chunk or not (produced or skip):
            yield _rows_table(chunk, header)
        if row:
            _require_closed_quote(source, row[-1], where)
    finally:
        csv.field_size_limit(limit)
        if isinstance(source, io.BytesIO):
            stream.detach()  # leave the caller's buffer open
        else:
            stream.close()


def _rows_table(rows: list[list[str]], names: list[str]) -> "pa.Table":
    import pyarrow as pa

    from anchorprep.sources.arrow import string_array

    columns = list(zip(*rows)) if rows else [()] * len(names)
    return pa.Table.from_arrays([string_array(column) for column in columns], names=names)


def _manifest_names(names: list[str]) -> list[str]:
    """Header names as pandas made them: an empty one is ``Unnamed: i``, a repeat gets ``.1``,
    ``.2``, ... (skipping names the header already has); then stripped of surrounding blanks."""
    names = [name if name else f"Unnamed: {i}" for i, name in enumerate(names)]
    counts: dict[str, int] = {}
    for i, name in enumerate(names):
        count = counts.get(name, 0)
        renamed = name
        while count > 0:
            counts[name] = count + 1
            renamed = f"{name}.{count}"
            count = count + 1 if renamed in names else counts.get(renamed, 0)
        names[i] = renamed
        counts[renamed] = count + 1
    return [name.strip() for name in names]


def _jsonl_chunks(text: str, where: str) -> Iterator["pa.Table"]:
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
            yield item_table(records)
            records = []
    if records:
        yield item_table(records)


_JSON_LITERALS = {None: "", True: "true", False: "false"}


def _clip(line: str, width: int = 40) -> str:
    line = line.strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def _parquet_chunks(source, where: str) -> Iterator["pa.Table"]:
    """The Parquet manifest (read whole into Arrow memory) as text, `MANIFEST_CHUNK_ROWS` rows at a
    time (`_parquet_text`); its schema alone when it has no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    batches = [batch for batch in table.to_batches(max_chunksize=MANIFEST_CHUNK_ROWS) if batch.num_rows]
    if not batches:
        yield _parquet_text(table, where)
    for batch in batches:
        yield _parquet_text(pa.Table.from_batches([batch], table.schema), where)


def _parquet_text(table: "pa.Table", where: str) -> "pa.Table":
    """Every column as text: integers as their exact decimal text (never through float64), null
    as "", UTF-8 binary decoded; nested (list, struct, map) or non-UTF-8 binary columns refused."""
    import numpy as np
    import pyarrow as pa

    from anchorprep.sources.arrow import string_array

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
                column, kind = column.cast(pa.string()), pa.string()
            except pa.ArrowInvalid:
                raise UsageError(f"{where}: column {name} holds binary data that is not UTF-8 text; "
                                 "drop the column or store it as text") from None
        if not column.null_count and (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                                      or pa.types.is_integer(kind)):
            columns[name] = column.cast(pa.string())  # integers: their exact decimal text
            continue
        if pa.types.is_floating(kind) and kind.bit_width < 64:
            # float32 0.1 is 0.10000000149011612 as a Python float; its own shortest text is 0.1
            values = [None if v is None else str(np.float32(v)) for v in column.to_pylist()]
        else:
            values = column.to_pylist()
        columns[name] = string_array([_cell_text(v) for v in values])
    return pa.table(columns) if columns else pa.table({})


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


def textgrid_folder_items(
    alignment_dir: PathLike, audio_dir: PathLike | None = None, *, spill: bool = False
) -> "pa.Table | SpilledItems":
    """Pair ``X.TextGrid`` with ``X.wav|flac|ogg`` recursively (MFA's output layout); paths absolute.

    MFA writes alignments to an output folder mirroring the corpus folder, so `audio_dir`
    (default: the alignment folder) is searched at the same relative path. Item ids are the
    relative paths without suffix, in sorted order; an alignment with no audio gets an empty
    ``audio_path`` (its duration then comes from the alignment). `spill`: a `SpilledItems`.
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

    table = _file_table(rows(), ("utt_id", "audio_path", "alignment_path"), spill)
    if not table.num_rows:
        raise UsageError(f"{alignment_dir}: no .TextGrid files found")
    return table


def folder_items(
    folder: PathLike, suffixes: tuple[str, ...], column: str, *, spill: bool = False
) -> "pa.Table | SpilledItems":
    """Every file with one of `suffixes` under `folder` (recursive, sorted) as an item whose
    `column` is the file's absolute path; ids are relative paths without suffix. `spill`: a
    `SpilledItems`."""
    folder = location(folder)
    if not _is_dir(folder):
        raise UsageError(f"{folder}: not a folder")
    folder = folder.resolve()  # absolute paths, as for manifests
    rows = ((str(PurePosixPath(f).with_suffix("")), _join(folder, f)) for f in _relative_files(folder, suffixes))
    table = _file_table(rows, ("utt_id", column), spill)
    if not table.num_rows:
        raise UsageError(f"{folder}: no {'/'.join(suffixes)} files found")
    return table


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


def _file_table(rows: Iterator[tuple[str, ...]], names: tuple[str, ...], spill: bool) -> "pa.Table | SpilledItems":
    """Rows of file-name text as an item table, converted `MANIFEST_CHUNK_ROWS` rows at a time;
    every name must be UTF-8 (`_require_utf8_names`)."""

    def chunks() -> Iterator["pa.Table"]:
        batch, produced = [], False
        for row in rows:
            batch.append(row)
            if len(batch) == MANIFEST_CHUNK_ROWS:
                yield _file_chunk(batch, names)
                batch, produced = [], True
        if batch or not produced:
            yield _file_chunk(batch, names)

    return SpilledItems(chunks()) if spill else concat_text_tables(list(chunks()))


def _file_chunk(rows: list[tuple[str, ...]], names: tuple[str, ...]) -> "pa.Table":
    _require_utf8_names(rows)
    return _rows_table(rows, list(names))


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
) -> "pa.Table":
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
    return item_table(rows)


def rttm_items(rttm: PathLike, wav_scp: PathLike | None = None, encoding: str = "utf-8") -> "pa.Table":
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
    return item_table(rows)


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
    spill: bool = False,
) -> "pa.Table | SpilledItems":
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

    Returns the item table (`spill`: a `SpilledItems` for folders and manifests).
    """
    if _is_stdin(inputs):
        return read_manifest(inputs, required=("utt_id", "alignment_path"), spill=spill)
    for given in (inputs, segments, wav_scp, recordings):
        _refuse_special_input(given)
    where = location(inputs)
    if _is_dir(where):
        return textgrid_folder_items(where, audio_dir, spill=spill)
    inputs = str(where)  # a file: its readers take path strings (URLs included)
    if is_rttm(inputs, alignment_format):
        return rttm_items(inputs, wav_scp, encoding)
    if alignment_format in ("auto", "lhotse") and is_lhotse_manifest(inputs):
        return lhotse_items(inputs, lhotse_unit, recordings=recordings, audio_root=audio_root)
    if is_ctm(where.name):  # by name, whatever `alignment_format` says
        return ctm_items(inputs, segments, wav_scp, encoding)
    return read_manifest(inputs, required=("utt_id", "alignment_path"), spill=spill)


def audio_items(inputs: PathLike, *, spill: bool = False) -> "pa.Table | SpilledItems":
    """The items of a ``vad`` run: every wav/flac/ogg file under a folder, or a manifest
    (``"-"``: standard input) with ``utt_id`` and ``audio_path``; an item table (`spill`: a
    `SpilledItems`)."""
    if not _is_stdin(inputs) and _is_dir(location(inputs)):
        return folder_items(inputs, AUDIO_SUFFIXES, "audio_path", spill=spill)
    return read_manifest(inputs, required=("utt_id", "audio_path"), spill=spill)


def accel_items(inputs: PathLike, *, spill: bool = False) -> "pa.Table | SpilledItems":
    """The items of an ``accel`` run: every sensor file (`ACCEL_SUFFIXES`) under a folder, or a
    manifest (``"-"``: standard input) with ``utt_id`` and ``accel_path``; an item table
    (`spill`: a `SpilledItems`)."""
    if not _is_stdin(inputs) and _is_dir(location(inputs)):
        return folder_items(inputs, ACCEL_SUFFIXES, "accel_path", spill=spill)
    return read_manifest(inputs, required=("utt_id", "accel_path"), spill=spill)
