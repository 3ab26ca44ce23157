"""Accelerometer anchors: read 3-axis recordings, pick peaks, map them onto the utterance clock.

docs/FORMAT.md ("Anchors"): an accelerometer anchor is a peak of the (filtered) acceleration magnitude or of one axis,
mapped from the sensor's clock to the utterance with an explicit offset. The chain is

    read_accel(path) -> AccelRecording          # seconds from the file's first timestamp
    detect_peaks(recording, settings) -> AccelPeaks   # same clock as the recording
    map_to_utterance(peaks.times_s, offset_s)   # seconds from the start of the utterance

Reading policy (each choice is recorded in `AccelRecording.dropped_rows`):

* Clock origin. `times_s` counts seconds from the first row that has a valid timestamp, *before*
  warm-up rows are dropped, so times stay comparable with anything else measured "from the first
  row" of the file (for example the Oxford ground-truth steps). Without a time column (`rate=`)
  row ``i`` of the data sits at ``i / rate`` seconds, blank lines excluded.
* Warm-up rows. Leading rows whose x, y and z are all exactly 0.0 are dropped ("warmup_zero"):
  phones emit them before the sensor delivers its first sample (the Oxford user1_hand file
  starts with one). A real accelerometer at rest reads gravity, never an exact zero vector.
* Missing values. Rows with an empty, non-numeric, NaN or infinite time/x/y/z value are dropped
  ("invalid") when they are at most `max_invalid_fraction` (default 1 %) of the data rows; more
  than that refuses the file, naming the first offending lines. Dropped rows become gaps that the
  resampler bridges by linear interpolation (`AccelRecording.max_gap_s` reports the widest).
  Lines that are blank or hold only delimiters are ignored ("blank").
* Timestamps. A timestamp equal to the previous one (sensor batching) drops the later row
  ("duplicate_timestamp"), under the same fraction limit. A timestamp that goes *backwards*
  refuses the file with its line number: it usually means two sessions were concatenated or the
  clock was reset, and sorting would silently interleave them.
* Timestamp jumps. A step longer than `max_gap_s` (default 60 s) refuses the file with its line:
  the resampler would bridge it with a straight line of up to millions of frames (one +1e6 s jump
  is an 11.6-day utterance). Split the file at the gap, or raise `max_gap_s` on purpose.
* Mixed time units. The median sample step of each twentieth of the file must stay within a
  factor of 20 of the others; a file whose step jumps by about 1000x part-way (half seconds, half
  milliseconds) is refused with the line where it changes, rather than squashed onto one unit.
* Time unit. ``time_unit="auto"`` reads the unit from the median step of the raw timestamps,
  assuming a sample rate between 2 Hz and 2 kHz: a median step below 0.5 is seconds, below 500
  milliseconds, below 5e5 microseconds ("us", an addition), otherwise nanoseconds. Pass the unit
  for anything else. Date-time columns (Parquet timestamps, ISO 8601 strings in a CSV) are read as
  nanoseconds whatever `time_unit` says; date-times read as ISO 8601 (``2019-08-06T10:25:50.02Z``,
  any offset converted to UTC), with a colon before the milliseconds (GENEActiv's
  ``2019-08-06 10:25:50:020``), or in the format pandas infers from the first stamp (ActiGraph's
  ``8/6/2019 10:25:50.000``: month first unless the day cannot be a month).
* Device exports. When `skip_rows` is 0 and the file starts with a metadata block (ActiGraph's
  ``------------ Data File Created By ActiGraph ...`` lines, GENEActiv's 100 ``key,value`` lines),
  the data start is sniffed: the first line with at least three numbers (a date-time counts as
  one in the first field) followed by lines of the same shape; the line before it is the header
  when it has as many fields and is not data. The skipped lines are counted in
  ``dropped_rows["metadata"]``. Extra columns (light, button, temperature) are ignored.
* Units. Devices export g, phones m/s². ``units="auto"`` reads them from gravity: the median
  magnitude of the samples is ~1 in g and ~9.81 in m/s² (a sensor at rest or walking reads
  gravity on average). A median within 0.6-1.6 is g, within 5.9-15.7 (the same band times
  9.80665) is m/s²; anything else (gravity already removed, mg, raw counts) is refused: pass
  `units`. Samples in g are multiplied by 9.80665, so `xyz` (and every preset) is in m/s²;
  `AccelRecording.units` says what the file held.
* Columns. Without `columns`, the first four columns are t, x, y, z (extra columns such as the
  Oxford step counts are ignored), or the first three are x, y, z when `rate` is given. Columns
  may be named (needs a header row, or a Parquet / structured NPY file) or 0-based indices.

Detection (`detect_peaks`): the samples are linearly interpolated onto a uniform grid at
`resample_hz` (phones deliver jittered sample times; filters assume a uniform grid), reduced to the
magnitude or one axis, band- or high-pass filtered with a Butterworth filter (which also removes
gravity and drift), optionally smoothed by a moving average, and handed to
`scipy.signal.find_peaks`. `zero_phase=True` filters forwards and backwards (`sosfiltfilt`) so a
peak stays where it happened; `zero_phase=False` filters causally (`sosfilt`), as a streaming device
would, which moves peaks later by `AccelPeaks.filter_delay_s`. Peak times are refined to sub-sample
precision by a parabola through the peak and its two neighbours. A recording must span at least
one period of the lowest filter edge (2 s at 0.5 Hz). Near the first and last second the
zero-phase filter's edge padding can bend the signal; peaks there deserve less trust.
"""

from __future__ import annotations

import gzip
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from itertools import islice
from typing import IO, Literal

import numpy as np
import pandas as pd

from anchorprep.errors import InputError, UsageError
from anchorprep.storage import local_copy

__all__ = [
    "AccelPeaks",
    "AccelRecording",
    "AccelSettings",
    "RAISE_PRESET",
    "STEP_PRESET",
    "STANDARD_GRAVITY",
    "UNITS",
    "detect_peaks",
    "filtered_signal",
    "map_to_utterance",
    "read_accel",
]

Axis = Literal["magnitude", "x", "y", "z"]
FilterKind = Literal["highpass", "bandpass", "none"]
TimeUnit = Literal["auto", "ns", "us", "ms", "s"]
Column = int | str

STANDARD_GRAVITY = 9.80665  # m/s² per g
UNITS = ("auto", "g", "m/s2")
# Median magnitude (in the file's units) that identifies g; the m/s² band is this times gravity.
_G_BAND = (0.6, 1.6)
# Each of `_STEP_CHUNKS` parts of the file has a median step within this factor of the others.
_STEP_RATIO_LIMIT = 20.0
_STEP_CHUNKS = 20
_UNIT_SCALE: dict[str, float] = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
# Upper bounds of the median timestamp step for each unit under "auto" (2 Hz .. 2 kHz sensors).
_AUTO_UNIT_LIMITS: tuple[tuple[float, str], ...] = ((0.5, "s"), (500.0, "ms"), (5e5, "us"))
_NPY_SUFFIXES = {".npy"}
_COLON_FRACTION = r"^(.*\d{2}:\d{2}:\d{2}):(\d+)$"
_SNIFF_LINES = 2000  # a metadata block is looked for in this many lines (GENEActiv writes 100)
# A date-time in a device export's first field: ISO 8601, GENEActiv's "2019-08-06 10:25:50:020",
# ActiGraph's "8/6/2019 10:25:50.000".
_DATE_TIME = re.compile(r"""^\s*["']?\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}\S*)?["']?\s*$""")
_PARQUET_SUFFIXES = {".parquet", ".pq"}


# --------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True, eq=False)
class AccelRecording:
    """A 3-axis accelerometer recording on the sensor's clock.

    `times_s` (float64, strictly increasing) counts seconds from the file's first valid timestamp
    (0 for fixed-rate input); `xyz` is (N, 3) float64 in m/s² (`units` is what the file held:
    "g" samples were multiplied by `STANDARD_GRAVITY` when read; `from_arrays` takes m/s²).
    `source_rate_hz` is 1 / median sample step. `time_unit` is the unit the timestamps were read
    in ("ns", "us", "ms", "s") or "rate" for fixed-rate input; `time_origin_s` is the first
    timestamp on the sensor's own clock in seconds, so `time_origin_s + times_s` recovers it.
    `dropped_rows` counts rows removed while reading, by reason (see the module docstring).
    """

    times_s: np.ndarray
    xyz: np.ndarray
    source_rate_hz: float
    path: str | None = None
    time_unit: str = "s"
    time_origin_s: float = 0.0
    dropped_rows: Mapping[str, int] = field(default_factory=dict)
    units: str = "m/s2"

    @classmethod
    def from_arrays(
        cls, times_s: Sequence[float] | np.ndarray, xyz: Sequence[Sequence[float]] | np.ndarray,
        *, path: str | None = None,
    ) -> AccelRecording:
        """Build a recording from in-memory arrays (seconds, (N, 3)); raises `InputError` if invalid."""
        t = np.asarray(times_s, dtype=np.float64)
        a = np.asarray(xyz, dtype=np.float64)
        if t.ndim != 1 or a.ndim != 2 or a.shape[1] != 3 or a.shape[0] != t.shape[0]:
            raise InputError(
                f"need times of shape (N,) and xyz of shape (N, 3); got {t.shape} and {a.shape}", path
            )
        if t.size < 2:
            raise InputError(f"only {t.size} samples; need at least 2", path)
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
            raise InputError("times or xyz contain NaN or infinite values", path)
        steps = np.diff(t)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise InputError(f"times must increase strictly; sample {i} is at {t[i]} s after {t[i - 1]} s", path)
        return cls(times_s=t, xyz=a, source_rate_hz=float(1.0 / np.median(steps)), path=path)

    @property
    def num_samples(self) -> int:
        return int(self.times_s.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def max_gap_s(self) -> float:
        """The widest step between consecutive samples (dropped rows and sensor stalls show here)."""
        return float(np.max(np.diff(self.times_s)))


def read_accel(
    path: str | Path,
    *,
    columns: Sequence[Column] | None = None,
    time_unit: TimeUnit = "auto",
    rate: float | None = None,
    skip_rows: int = 0,
    has_header: bool | Literal["auto"] = "auto",
    max_invalid_fraction: float = 0.01,
    units: Literal["auto", "g", "m/s2"] = "auto",
    max_gap_s: float = 60.0,
) -> AccelRecording:
    """Read a 3-axis accelerometer recording from CSV (optionally .gz), NPY or Parquet.

    `columns` names or indexes (t, x, y, z), or (x, y, z) when `rate` (Hz) is given because the
    file has no time column. `skip_rows` skips metadata lines at the top of a CSV before its header
    or first data row; `has_header="auto"` treats the first remaining line as a header when any of
    its fields is not a number. CSV delimiters: comma, semicolon, tab or whitespace, guessed from
    that line; with `skip_rows` 0 a device's metadata block is found and skipped. `units` is
    "g", "m/s2" or "auto" (from gravity); the samples come back in m/s². `max_gap_s` bounds one
    step between timestamps. Raises `UsageError` for invalid arguments and `InputError` for a
    file that cannot be read as a recording; see the module docstring for what is dropped and
    what is refused.
    """
    _check_read_args(columns, time_unit, rate, skip_rows, has_header, max_invalid_fraction)
    if units not in UNITS:
        raise UsageError(f"`units` must be one of {', '.join(UNITS)}; got {units!r}")
    if not _positive(max_gap_s):
        raise UsageError(f"`max_gap_s` must be a positive number of seconds; got {max_gap_s!r}")
    spath = str(path)
    try:
        with local_copy(path) as p:  # an object on object storage: downloaded once to a temporary
            if not p.is_file():
                raise InputError("file not found" if not p.exists() else "not a regular file", spath)
            suffix = p.suffix.lower()
            if suffix in _NPY_SUFFIXES:
                (table, named), first_line, metadata_lines = _load_npy(p), None, 0
            elif suffix in _PARQUET_SUFFIXES:
                table, named, first_line, metadata_lines = _load_parquet(p), True, None, 0
            else:
                table, named, first_line, metadata_lines = _load_csv(p, skip_rows, has_header)
    except InputError as exc:
        if exc.path == spath or "://" not in spath:
            raise
        raise InputError(exc.reason, spath) from None  # named by its URL, not the temporary
    except OSError as exc:  # downloading the object
        if "://" not in spath:
            raise
        raise InputError(f"cannot read file: {exc.strerror or exc}", spath) from None

    if len(table) == 0:
        raise InputError("no data rows", spath)
    t_key, xyz_keys = _resolve_columns(table, named, columns, rate, spath)
    recording = _build_recording(table, t_key, xyz_keys, first_line, time_unit, rate, max_invalid_fraction,
                                 max_gap_s, spath)
    recording = _in_metres_per_second2(recording, units)
    if metadata_lines:
        return replace(recording, dropped_rows={**recording.dropped_rows, "metadata": metadata_lines})
    return recording



def _check_read_args(
    columns: Sequence[Column] | None, time_unit: str, rate: float | None, skip_rows: int,
    has_header: object, max_invalid_fraction: float,
) -> None:
    if time_unit not in ("auto", *_UNIT_SCALE):
        raise UsageError(f"`time_unit` must be one of auto, ns, us, ms, s; got {time_unit!r}")
    if rate is not None and not (_positive(rate) or (isinstance(rate, np.number) and _positive(float(rate)))):
        raise UsageError(f"`rate` must be a positive number of Hz; got {rate!r}")
    if not isinstance(skip_rows, int) or isinstance(skip_rows, bool) or skip_rows < 0:
        raise UsageError(f"`skip_rows` must be a non-negative integer; got {skip_rows!r}")
    if has_header not in ("auto", True, False):
        raise UsageError(f"`has_header` must be 'auto', True or False; got {has_header!r}")
    if not (isinstance(max_invalid_fraction, (int, float)) and 0.0 <= max_invalid_fraction < 1.0):
        raise UsageError(f"`max_invalid_fraction` must be in [0, 1); got {max_invalid_fraction!r}")
    if columns is not None:
        if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
            raise UsageError(f"`columns` must be a sequence of names or indices; got {columns!r}")
        want = 3 if rate is not None else 4
        if len(columns) != want:
            what = "(x, y, z) because `rate` means there is no time column" if rate is not None else "(t, x, y, z)"
            raise UsageError(f"`columns` must list {want} entries {what}; got {list(columns)!r}")
        for c in columns:
            if isinstance(c, bool) or not isinstance(c, (int, str)):
                raise UsageError(f"each of `columns` must be a name or a 0-based index; got {c!r}")
        if has_header is False and any(isinstance(c, str) for c in columns):
            raise UsageError("column names need a header row; with `has_header` False give 0-based indices")


def _open_text(p: Path) -> IO[str]:
    if p.suffix.lower() == ".gz":
        return gzip.open(p, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return open(p, encoding="utf-8-sig", errors="replace", newline="")


def _first_line(p: Path, skip_rows: int) -> tuple[int, str] | None:
    """(0-based line number, text) of the first non-blank line after `skip_rows` lines, or None."""
    try:
        with _open_text(p) as fh:
            for i, line in enumerate(fh):
                if i >= skip_rows and line.strip():
                    return i, line.rstrip("\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read file: {exc}", str(p)) from exc
    return None


def _guess_sep(line: str) -> str:
    for sep in (",", ";", "\t"):
        if sep in line:
            return sep
    return r"\s+"


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"').strip("'"))
    except ValueError:
        return False
    return True


def _split_fields(line: str, sep: str) -> list[str]:
    return line.split() if sep == r"\s+" else line.split(sep)


def _is_data_row(fields: list[str]) -> bool:
    """At least three numbers, the first field a number or a date-time (which counts as one)."""
    first_is_time = _is_number(fields[0]) or bool(_DATE_TIME.match(fields[0]))
    numbers = sum(_is_number(f) for f in fields[1:]) + first_is_time
    return first_is_time and numbers >= 3


def _sniff_data_start(p: Path) -> tuple[int, bool, int] | None:
    """Where a device export's data starts, when metadata lines come before its header or data.

    Returns (0-based line to start reading at, whether that line is a header, non-blank metadata
    lines skipped), or None when the file starts with its header or data (the usual path). The data
    start is the first line that looks like a data row and is followed by up to 4 lines of the
    same shape; anything else (a data-like line among the metadata, ragged rows, a header line
    with another number of fields than the data) is left to the usual path and its errors.
    """
    try:
        with _open_text(p) as fh:
            lines = [line.rstrip("\r\n") for line in islice(fh, _SNIFF_LINES)]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read file: {exc}", str(p)) from exc
    non_blank = [i for i, line in enumerate(lines) if line.strip()]
    for k, i in enumerate(non_blank):
        sep = _guess_sep(lines[i])
        fields = _split_fields(lines[i], sep)
        if not _is_data_row(fields):
            continue
        following = [_split_fields(lines[j], sep) for j in non_blank[k + 1 : k + 5]]
        if not all(len(f) == len(fields) and _is_data_row(f) for f in following):
            return None
        previous = len(_split_fields(lines[non_blank[k - 1]], sep)) if k > 0 else 0
        if previous >= 3 and previous != len(fields):
            return None  # a header that does not fit its data: the usual path says so
        header = previous == len(fields)
        skipped = k - 1 if header else k
        if skipped == 0:
            return None
        return (non_blank[k - 1] if header else i), header, skipped
    return None


def _load_csv(
    p: Path, skip_rows: int, has_header: bool | str
) -> tuple[pd.DataFrame, bool, int, int]:
    """Parse a CSV into a DataFrame: (table, has named columns, file line of data row 0, metadata
    lines skipped). With `skip_rows` 0 a metadata block is sniffed (`_sniff_data_start`)."""
    metadata_lines = 0
    if skip_rows == 0:
        sniffed = _sniff_data_start(p)
        if sniffed is not None:
            skip_rows, sniffed_header, metadata_lines = sniffed
            has_header = sniffed_header if has_header == "auto" else has_header
    found = _first_line(p, skip_rows)
    if found is None:
        extra = f" after skipping {skip_rows} lines" if skip_rows else ""
        raise InputError(f"file is empty{extra}: no header and no data rows", str(p))
    start, line = found
    sep = _guess_sep(line)
    fields = line.split(",") if sep == "," else line.split(";") if sep == ";" else line.split()
    header = has_header if isinstance(has_header, bool) else not all(_is_number(f) for f in fields if f.strip())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            table = pd.read_csv(
                p, sep=sep, header=0 if header else None, skiprows=start, index_col=False,
                skip_blank_lines=False, encoding="utf-8-sig", encoding_errors="replace",
                engine="c", low_memory=False,  # one dtype per column, no mixed-chunk warnings
            )
        except pd.errors.EmptyDataError as exc:
            raise InputError("no data rows (the file has only blank or skipped lines)", str(p)) from exc
        except pd.errors.ParserError as exc:
            msg = str(exc).replace("Error tokenizing data. C error: ", "")
            raise InputError(
                f"inconsistent number of fields: {msg}; every row needs the same columns "
                "(use `skip_rows` for metadata lines at the top)", str(p)
            ) from exc
        except (OSError, EOFError, UnicodeError, ValueError, gzip.BadGzipFile) as exc:
            raise InputError(f"cannot parse as CSV: {exc}", str(p)) from exc
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning) and "Length of header" in str(w.message):
            raise InputError(
                "data rows have more fields than the header row; fix the header or pass `has_header` False",
                str(p),
            )
    first_data_line = start + (1 if header else 0) + 1  # 1-based line number of data row 0
    if header:
        table.columns = [str(c).strip() for c in table.columns]
    return table, header, first_data_line, metadata_lines


def _load_npy(p: Path) -> tuple[pd.DataFrame, bool]:
    """An NPY array as a table; structured arrays (named fields) give named columns."""
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read NPY array: {exc}", str(p)) from exc
    if arr.dtype.names:
        if arr.ndim != 1:
            raise InputError(f"structured NPY array must be 1-D; got shape {arr.shape}", str(p))
        return pd.DataFrame({name: arr[name] for name in arr.dtype.names}), True
    if arr.ndim != 2:
        raise InputError(f"NPY array must be 2-D (N, 3) or (N, 4); got shape {arr.shape}", str(p))
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"NPY array must be numeric; got dtype {arr.dtype}", str(p))
    return pd.DataFrame(arr), False


def _load_parquet(p: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable files
        raise InputError(f"cannot read Parquet file: {exc}", str(p)) from exc


def _resolve_columns(
    table: pd.DataFrame, named: bool, columns: Sequence[Column] | None, rate: float | None, path: str
) -> tuple[object | None, list[object]]:
    """Map the user's column spec onto the table's column labels: (time key or None, [x, y, z])."""
    labels = list(table.columns)
    ncols = len(labels)
    want = 3 if rate is not None else 4
    if columns is None:
        if ncols < want:
            hint = "t, x, y, z" if rate is None else "x, y, z"
            fix = "" if rate is not None else " (or x, y, z with `rate` for a file without a time column)"
            raise InputError(f"file has {ncols} column(s); need at least {want}: {hint}{fix}", path)
        picked: list[object] = labels[:want]
    else:
        picked = []
        lowered = {str(lbl).strip().lower(): lbl for lbl in labels}
        for c in columns:
            if isinstance(c, int):
                if not -ncols <= c < ncols:
                    raise InputError(f"column index {c} does not exist; the file has {ncols} column(s)", path)
                picked.append(labels[c])
            elif not named:
                raise InputError(
                    f"column {c!r} requested by name, but the file has no header row; give 0-based indices",
                    path,
                )
            elif c in labels:
                picked.append(c)
            elif c.strip().lower() in lowered:
                picked.append(lowered[c.strip().lower()])
            else:
                raise InputError(f"column {c!r} not found; the file has columns {[str(x) for x in labels]}", path)
    if rate is not None:
        return None, picked
    return picked[0], picked[1:]


def _numeric(col: pd.Series) -> np.ndarray:
    """A column as numbers: int64 stays int64 (exact nanosecond stamps), anything else float64."""
    if pd.api.types.is_integer_dtype(col.dtype) and not pd.api.types.is_extension_array_dtype(col.dtype):
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _time_column(col: pd.Series) -> tuple[np.ndarray, str | None]:
    """The time column as numbers, plus "ns" when it held dates or durations (which fix the unit).

    Datetime and timedelta columns (Parquet timestamps) and date-time strings in a CSV (see
    `_parse_date_times`) become integer nanoseconds; missing or unparseable entries become NaN
    like any other bad value.
    """
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype):
        return _ns_from_temporal(col), "ns"
    values = _numeric(col)
    if values.dtype == np.float64 and not pd.api.types.is_numeric_dtype(col.dtype):
        present = col.notna().to_numpy()
        if np.count_nonzero(np.isnan(values) & present) > 0.5 * max(1, np.count_nonzero(present)):
            parsed = _parse_date_times(col, 0.5 * max(1, np.count_nonzero(present)))
            if parsed is not None:
                return _ns_from_temporal(parsed), "ns"
    return values, None


def _parse_date_times(col: pd.Series, enough: float) -> pd.Series | None:
    """Date-time strings as UTC datetimes, or None when fewer than `enough` parse.

    Tried in order: ISO 8601 (offsets converted to UTC); ISO 8601 after turning a colon before
    the fraction of a second into a dot (GENEActiv's ``10:25:50:020``); the format pandas infers
    from the first stamp (ActiGraph's ``8/6/2019 10:25:50.000``).
    """
    text = col.astype("string").str.strip().str.strip("\"'")
    attempts = [lambda: pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)]
    first = text.dropna()
    # Only for date-times: on other text pandas' inference falls back to slow per-value parsing.
    if len(first) and _DATE_TIME.match(first.iloc[0]):
        attempts += [
            lambda: pd.to_datetime(text.str.replace(_COLON_FRACTION, r"\1.\2", regex=True), errors="coerce",
                                   format="ISO8601", utc=True),
            lambda: pd.to_datetime(text, errors="coerce", utc=True),
        ]
    for attempt in attempts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = attempt()
            except (ValueError, TypeError, OverflowError):
                continue
        if parsed.notna().sum() > enough:
            return parsed
    return None


def _ns_from_temporal(col: pd.Series) -> np.ndarray:
    """Datetime/timedelta values as float64 nanoseconds (NaT -> NaN); exact below 2**53 ns steps."""
    if pd.api.types.is_timedelta64_dtype(col.dtype):
        ns = col.astype("timedelta64[ns]")
    else:
        ns = col.dt.tz_convert(None) if getattr(col.dt, "tz", None) is not None else col
        ns = ns.astype("datetime64[ns]")
    out = ns.to_numpy().astype("int64")
    nat = col.isna().to_numpy()
    if nat.any():
        result = out.astype(np.float64)
        result[nat] = np.nan
        return result
    return out


def _line_list(lines: np.ndarray, mask: np.ndarray, limit: int = 5) -> str:
    hits = lines[mask][:limit]
    more = "" if int(mask.sum()) <= limit else ", …"
    return ", ".join(str(int(x)) for x in hits) + more


def _build_recording(
    table: pd.DataFrame, t_key: object | None, xyz_keys: list[object], first_line: int | None,
    time_unit: str, rate: float | None, max_invalid_fraction: float, max_gap_s: float, path: str,
) -> AccelRecording:
    where = "line" if first_line is not None else "row (0-based)"
    lines = np.arange(len(table), dtype=np.int64) + (first_line if first_line is not None else 0)
    xyz = np.column_stack([_numeric(table[k]).astype(np.float64) for k in xyz_keys])
    t_raw, forced_unit = _time_column(table[t_key]) if t_key is not None else (None, None)

    # Rows with no value in any column are blank (or delimiter-only) lines: ignored, not samples.
    used = xyz if t_raw is None else np.column_stack([t_raw.astype(np.float64), xyz])
    blank = table.isna().to_numpy().all(axis=1)
    n_blank = int(blank.sum())
    keep = ~blank
    index = np.cumsum(keep) - 1  # sample index among non-blank rows (fixed-rate clock)
    lines, xyz, index = lines[keep], xyz[keep], index[keep]
    if t_raw is not None:
        t_raw = t_raw[keep]
        used = used[keep]
    else:
        used = xyz
    n_rows = int(xyz.shape[0])
    if n_rows == 0:
        raise InputError("no data rows (only blank lines)", path)
    _check_columns_readable(table[keep], t_key, xyz_keys, used, path)

    invalid = ~np.all(np.isfinite(used), axis=1)
    n_invalid = int(invalid.sum())
    if n_invalid > max_invalid_fraction * n_rows:
        raise InputError(
            f"{n_invalid} of {n_rows} rows ({100.0 * n_invalid / n_rows:.1f}%) have a missing, non-numeric "
            f"or infinite value (first at {where} {_line_list(lines, invalid)}); at most "
            f"{100.0 * max_invalid_fraction:g}% are dropped (max_invalid_fraction)",
            path,
        )
    ok = ~invalid
    lines, xyz, index = lines[ok], xyz[ok], index[ok]
    if t_raw is not None:
        t_raw = t_raw[ok]

    if xyz.shape[0] == 0:
        raise InputError("no valid rows", path)
    if t_raw is not None:
        origin_raw = t_raw[0]
        steps = np.diff(t_raw)
        back = steps < 0
        if np.any(back):
            i = int(np.argmax(back)) + 1
            raise InputError(
                f"timestamps go backwards at {where} {int(lines[i])} ({t_raw[i]} after {t_raw[i - 1]}); "
                "the file may join two sessions or the clock was reset: split it, anchorprep does not sort",
                path,
            )
        dup = np.concatenate([[False], steps == 0])
        n_dup = int(dup.sum())
        if n_dup > max_invalid_fraction * n_rows:
            raise InputError(
                f"{n_dup} of {n_rows} rows repeat the previous timestamp (first at {where} "
                f"{_line_list(lines, dup)}); the timestamps may be rounded to too coarse a unit",
                path,
            )
        lines, xyz, t_raw = lines[~dup], xyz[~dup], t_raw[~dup]
    else:
        n_dup = 0

    nonzero = np.any(xyz != 0.0, axis=1)
    n_warm = int(np.argmax(nonzero)) if np.any(nonzero) else int(xyz.shape[0])
    xyz, lines = xyz[n_warm:], lines[n_warm:]
    if t_raw is not None:
        t_raw = t_raw[n_warm:]
    else:
        index = index[n_warm:]
    if xyz.shape[0] < 2:
        raise InputError(
            f"only {xyz.shape[0]} usable sample(s) (after dropping {n_warm} all-zero warm-up rows, "
            f"{n_invalid} invalid and {n_dup} duplicate-timestamp rows); need at least 2",
            path,
        )

    if t_raw is None:
        assert rate is not None
        times = index.astype(np.float64) / float(rate)
        unit, origin_s = "rate", 0.0
    else:
        raw_steps = np.diff(t_raw)
        if forced_unit is not None:
            unit = forced_unit
        else:
            unit = time_unit if time_unit != "auto" else _auto_unit(float(np.median(raw_steps)))
        scale = _UNIT_SCALE[unit]
        if t_raw.dtype == np.int64:
            times = (t_raw - origin_raw).astype(np.float64) * scale  # exact difference first
        else:
            times = (t_raw - origin_raw) * scale
        origin_s = float(origin_raw) * scale
        _check_steps(t_raw, times, lines, where, max_gap_s, path)
    steps_s = np.diff(times)
    source_rate = float(rate) if rate is not None else float(1.0 / np.median(steps_s))
    return AccelRecording(
        times_s=np.ascontiguousarray(times, dtype=np.float64),
        xyz=np.ascontiguousarray(xyz, dtype=np.float64),
        source_rate_hz=source_rate,
        path=path,
        time_unit=unit,
        time_origin_s=origin_s,
        dropped_rows={
            "warmup_zero": n_warm, "invalid": n_invalid, "duplicate_timestamp": n_dup, "blank": n_blank,
        },
    )


def _check_columns_readable(
    table: pd.DataFrame, t_key: object | None, xyz_keys: list[object], values: np.ndarray, path: str
) -> None:
    """Name a column none of whose values could be read, rather than counting its rows as invalid."""
    keys = ([t_key] if t_key is not None else []) + list(xyz_keys)
    for k, key in enumerate(keys):
        present = table[key].notna().to_numpy()
        if present.any() and not np.isfinite(values[present, k]).any():
            first = table[key][present].iloc[0]
            if key is t_key:
                raise InputError(
                    f"time column {str(key)!r} is non-numeric and not a date-time (first value {first!r}); "
                    "readable: numbers (ns, us, ms, s), ISO 8601, '2019-08-06 10:25:50:020', "
                    "'8/6/2019 10:25:50.000'; pick the columns with `columns`, or give `rate` and x, y, z",
                    path,
                )
            raise InputError(
                f"column {str(key)!r} is non-numeric (first value {first!r}); pick the time and x, y, z columns "
                "with `columns`",
                path,
            )


def _check_steps(t_raw: np.ndarray, times: np.ndarray, lines: np.ndarray, where: str, max_gap_s: float,
                 path: str) -> None:
    """Refuse timestamps whose unit changes part-way, or that jump by more than `max_gap_s` seconds.

    The unit check compares the median step of `_STEP_CHUNKS` consecutive parts of the file; the
    change is reported at the first step after the earlier part that lies closer (in ratio) to the
    later part's median.
    """
    raw_steps = np.diff(t_raw).astype(np.float64)
    if raw_steps.size >= 2 * _STEP_CHUNKS:
        bounds = np.linspace(0, raw_steps.size, _STEP_CHUNKS + 1).astype(np.int64)
        medians = np.array([np.median(raw_steps[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
        low, high = int(np.argmin(medians)), int(np.argmax(medians))
        if medians[high] > _STEP_RATIO_LIMIT * medians[low]:
            first, second = sorted((low, high))
            before, after = medians[first], medians[second]
            tail = np.log(raw_steps[bounds[first]:])
            changed = np.abs(tail - np.log(after)) < np.abs(tail - np.log(before))
            k = int(bounds[first]) + int(np.argmax(changed)) + 1
            raise InputError(
                f"the median time step changes from {before:.4g} to {after:.4g} (x{after / before:.3g}, in the "
                f"time column's units) near {where} {int(lines[k])}: the timestamps may mix units (seconds and "
                "milliseconds) or sample rates; fix the time column or split the file",
                path,
            )
    steps = np.diff(times)
    big = steps > max_gap_s
    if np.any(big):
        i = int(np.argmax(big)) + 1
        raise InputError(
            f"timestamps jump by {steps[i - 1]:.6g} s at {where} {int(lines[i])} ({int(big.sum())} step(s) longer "
            f"than max_gap_s={max_gap_s:g} s): split the file at the gap, or raise `max_gap_s` if it is real",
            path,
        )


def _in_metres_per_second2(recording: AccelRecording, units: str) -> AccelRecording:
    """The recording with `xyz` in m/s² and `units` set to the file's units (see the module docstring)."""
    if units == "auto":
        median = float(np.median(np.sqrt(np.einsum("ij,ij->i", recording.xyz, recording.xyz))))
        low, high = _G_BAND
        if low <= median <= high:
            units = "g"
        elif low * STANDARD_GRAVITY <= median <= high * STANDARD_GRAVITY:
            units = "m/s2"
        else:
            raise InputError(
                f"cannot tell the units from gravity: the median acceleration magnitude is {median:.4g}, "
                f"neither ~1 (g: {low:g}-{high:g}) nor ~9.81 (m/s²: {low * STANDARD_GRAVITY:.3g}-"
                f"{high * STANDARD_GRAVITY:.3g}); gravity removed, mg or raw counts? pass `units` g or m/s2 "
                "(after converting mg or counts to g)",
                recording.path,
            )
    if units == "g":
        return replace(recording, xyz=recording.xyz * STANDARD_GRAVITY, units="g")
    return replace(recording, units="m/s2")


def _auto_unit(median_step: float) -> str:
    for limit, unit in _AUTO_UNIT_LIMITS:
        if median_step < limit:
            return unit
    return "ns"


# --------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class AccelSettings:
    """How peaks are found. Thresholds are in the units of the filtered signal: m/s² (`read_accel` converts g).

    - `axis`: "magnitude" (|xyz|, orientation-free) or one of "x", "y", "z".
    - `filter`: "bandpass" (`band_hz` = (low, high)), "highpass" (`cutoff_hz`) or "none". The
      high-pass edge removes gravity and drift. Butterworth of `order` (scipy's N: a band-pass of
      order N has 2N poles), applied as second-order sections.
    - `zero_phase`: True filters forwards and backwards (`sosfiltfilt`, no delay, the squared
      magnitude response); False filters causally (`sosfilt`, started in steady state), like a
      streaming device, and delays peaks by `AccelPeaks.filter_delay_s`.
    - `resample_hz`: rate of the uniform grid the samples are linearly interpolated onto before
      filtering; None uses the recording's median rate. Linear interpolation has no anti-alias
      filter, so keep it at or above the source rate when the signal has energy near Nyquist.
    - `smooth_ms`: moving-average length after filtering (0 = off); centred when zero_phase,
      trailing otherwise.
    - `height`, `prominence`, `distance_ms` (refractory period), `width_ms`: `find_peaks` limits.
    - `refine`: parabolic sub-sample refinement of each peak's time and value.
    """

    axis: Axis = "magnitude"
    filter: FilterKind = "bandpass"
    cutoff_hz: float = 0.5
    band_hz: tuple[float, float] = (0.5, 3.0)
    order: int = 4
    zero_phase: bool = True
    resample_hz: float | None = None
    smooth_ms: float = 0.0
    height: float | None = None
    prominence: float | None = 1.0
    distance_ms: float = 300.0
    width_ms: float | None = None
    refine: bool = True

    def __post_init__(self) -> None:
        if self.axis not in ("magnitude", "x", "y", "z"):
            raise UsageError(f"axis must be 'magnitude', 'x', 'y' or 'z'; got {self.axis!r}")
        if self.filter not in ("highpass", "bandpass", "none"):
            raise UsageError(f"filter must be 'highpass', 'bandpass' or 'none'; got {self.filter!r}")
        if not isinstance(self.order, int) or isinstance(self.order, bool) or not 1 <= self.order <= 8:
            raise UsageError(f"order must be an integer from 1 to 8; got {self.order!r}")
        if self.filter == "highpass" and not _positive(self.cutoff_hz):
            raise UsageError(f"cutoff_hz must be a positive number of Hz; got {self.cutoff_hz!r}")
        if self.filter == "bandpass":
            band = self.band_hz
            if (
                not isinstance(band, (tuple, list)) or len(band) != 2
                or not (_positive(band[0]) and _positive(band[1])) or band[0] >= band[1]
            ):
                raise UsageError(f"band_hz must be (low, high) Hz with 0 < low < high; got {band!r}")
        if self.resample_hz is not None:
            if not _positive(self.resample_hz):
                raise UsageError(f"resample_hz must be a positive number of Hz or None; got {self.resample_hz!r}")
            top = self.top_edge_hz
            if top is not None and top >= self.resample_hz / 2:
                raise UsageError(
                    f"filter edge {top:g} Hz must be below the Nyquist frequency {self.resample_hz / 2:g} Hz "
                    f"of resample_hz={self.resample_hz:g}"
                )
        for name in ("smooth_ms", "distance_ms"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise UsageError(f"{name} must be a non-negative number of ms; got {v!r}")
        if self.width_ms is not None and not _positive(self.width_ms):
            raise UsageError(f"width_ms must be a positive number of ms or None; got {self.width_ms!r}")
        if self.height is not None and not (isinstance(self.height, (int, float)) and math.isfinite(self.height)):
            raise UsageError(f"height must be a finite number or None; got {self.height!r}")
        if self.prominence is not None and not (
            isinstance(self.prominence, (int, float)) and math.isfinite(self.prominence) and self.prominence >= 0
        ):
            raise UsageError(f"prominence must be a non-negative number or None; got {self.prominence!r}")

    @property
    def top_edge_hz(self) -> float | None:
        """The highest filter edge, which must stay below Nyquist (None without a filter)."""
        if self.filter == "bandpass":
            return float(self.band_hz[1])
        if self.filter == "highpass":
            return float(self.cutoff_hz)
        return None

    @property
    def low_edge_hz(self) -> float | None:
        """The lowest pass frequency: a recording must last at least one period of it."""
        if self.filter == "bandpass":
            return float(self.band_hz[0])
        if self.filter == "highpass":
            return float(self.cutoff_hz)
        return None


def _positive(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


# Walking steps from a phone in the hand or a trouser pocket, tuned on the Oxford step-counter
# validation recordings (tests/test_accel.py). Step cadence is 1.4-2.2 Hz, so a 0.5-2.5 Hz band on
# the orientation-free magnitude keeps one bump per step and removes gravity; 300 ms of refractory
# period is shorter than any step at a walking pace; 1 m/s² of prominence rejects the wobble
# between steps. Measured: counts within +1.8 % on all three files; steps matched within ±150 ms:
# 92.9 % (hand), 92.4 % (front pocket), 98.5 % (back pocket). The upper band edge is the sensitive
# knob: 2.2-2.6 Hz keeps the front pocket above 91 %, 3.0 Hz drops it to about 88 %.
STEP_PRESET = AccelSettings(
    axis="magnitude", filter="bandpass", band_hz=(0.5, 2.5), order=4, zero_phase=True,
    resample_hz=100.0, smooth_ms=0.0, height=None, prominence=1.0, distance_ms=300.0,
)

# Raise-to-speak wrist raises (sample_data/accel/): a quick lift whose linear-acceleration push is
# 3-5 m/s² over about 0.2 s. A 0.3-4 Hz band keeps that push and drops gravity; 1 s of refractory
# period allows one gesture per second; 2 m/s² of prominence rejects the slower arm lowering
# (at most 1.4 m/s² in the samples, where raises give at least 2.6). Checked only on the synthetic
# samples, not on real gesture recordings.
RAISE_PRESET = AccelSettings(
    axis="magnitude", filter="bandpass", band_hz=(0.3, 4.0), order=2, zero_phase=True,
    resample_hz=100.0, smooth_ms=0.0, height=None, prominence=2.0, distance_ms=1000.0,
)


@dataclass(frozen=True, eq=False)
class AccelPeaks:
    """Peaks found by `detect_peaks`, on the recording's clock (`AccelRecording.times_s`).

    `values` and `prominences` are in the filtered signal's units. `fs_hz` is the processing rate.
    `filter_delay_s` is how much later than the event the filter chain puts an impulse's peak:
    0 for zero-phase filtering, the time to the impulse response's maximum for causal filtering.
    It is recorded, not subtracted: a causal chain reports what a streaming device would see.
    """

    times_s: np.ndarray
    values: np.ndarray
    prominences: np.ndarray
    fs_hz: float
    filter_delay_s: float
    settings: AccelSettings
    path: str | None = None

    def __len__(self) -> int:
        return int(self.times_s.shape[0])


def filtered_signal(recording: AccelRecording, settings: AccelSettings) -> tuple[np.ndarray, np.ndarray]:
    """The uniform grid (seconds, recording clock) and the filtered signal `detect_peaks` searches."""
    fs = _processing_rate(recording, settings)
    n = int(math.floor(recording.duration_s * fs + 1e-9)) + 1
    _check_length(recording, settings, fs, n)
    grid = recording.times_s[0] + np.arange(n, dtype=np.float64) / fs
    if settings.axis == "magnitude":
        uniform = np.empty((n, 3), dtype=np.float64)
        for k in range(3):
            uniform[:, k] = np.interp(grid, recording.times_s, recording.xyz[:, k])
        raw = np.sqrt(np.einsum("ij,ij->i", uniform, uniform))
    else:
        k = "xyz".index(settings.axis)
        raw = np.interp(grid, recording.times_s, recording.xyz[:, k])
    return grid, _apply_chain(raw, settings, fs)


def detect_peaks(recording: AccelRecording, settings: AccelSettings = AccelSettings()) -> AccelPeaks:
    """Find acceleration peaks in `recording`; times are on the recording's clock (seconds).

    Raises `InputError` when the recording is too short for the filter or its rate is too low for
    the filter edges (with `resample_hz=None`).
    """
    from scipy import signal  # imported here: scipy.signal costs ~0.5 s at CLI start-up
    grid, y = filtered_signal(recording, settings)
    fs = _processing_rate(recording, settings)
    kwargs: dict[str, object] = {
        "height": settings.height,
        "prominence": settings.prominence if settings.prominence is not None else 0.0,
        "distance": max(1, int(round(settings.distance_ms * fs / 1000.0))),
    }
    if settings.width_ms is not None:
        kwargs["width"] = settings.width_ms * fs / 1000.0
    idx, props = signal.find_peaks(y, **kwargs)
    offset = np.zeros(idx.shape[0])
    values = y[idx]
    if settings.refine and idx.size:
        inner = (idx > 0) & (idx < y.shape[0] - 1)
        i = idx[inner]
        left, mid, right = y[i - 1], y[i], y[i + 1]
        curv = left - 2.0 * mid + right
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(curv < 0, 0.5 * (left - right) / curv, 0.0)
        d = np.clip(d, -0.5, 0.5)
        offset[inner] = d
        values = values.copy()
        values[inner] = mid - 0.25 * (left - right) * d
    return AccelPeaks(
        times_s=grid[idx] + offset / fs,
        values=np.asarray(values, dtype=np.float64),
        prominences=np.asarray(props["prominences"], dtype=np.float64),
        fs_hz=fs,
        filter_delay_s=_chain_delay_s(settings, fs),
        settings=settings,
        path=recording.path,
    )


def _processing_rate(recording: AccelRecording, settings: AccelSettings) -> float:
    if settings.resample_hz is not None:
        return float(settings.resample_hz)
    fs = float(recording.source_rate_hz)
    top = settings.top_edge_hz
    if top is not None and top >= fs / 2:
        raise InputError(
            f"recording is sampled at {fs:.3g} Hz, so the filter edge {top:g} Hz is above its Nyquist "
            f"frequency {fs / 2:.3g} Hz; lower the filter edge or set resample_hz",
            recording.path,
        )
    return fs


def _design(settings: AccelSettings, fs: float) -> np.ndarray | None:
    from scipy import signal  # imported here: scipy.signal costs ~0.5 s at CLI start-up
    if settings.filter == "bandpass":
        return signal.butter(settings.order, settings.band_hz, btype="bandpass", fs=fs, output="sos")
    if settings.filter == "highpass":
        return signal.butter(settings.order, settings.cutoff_hz, btype="highpass", fs=fs, output="sos")
    return None


def _smooth_len(settings: AccelSettings, fs: float) -> int:
    m = int(round(settings.smooth_ms * fs / 1000.0))
    if m <= 1:
        return 1
    return m if m % 2 == 1 or not settings.zero_phase else m + 1  # odd, so a centred window is centred


def _min_samples(settings: AccelSettings, fs: float) -> int:
    """Fewest grid samples the chain accepts: scipy's filtfilt padding, and one period of the low edge."""
    need = 3
    sos = _design(settings, fs)
    if sos is not None and settings.zero_phase:
        need = max(need, 3 * (2 * sos.shape[0] + 1) + 1)
    low = settings.low_edge_hz
    if low is not None:
        need = max(need, int(math.ceil(fs / low)) + 1)
    return max(need, _smooth_len(settings, fs))


def _check_length(recording: AccelRecording, settings: AccelSettings, fs: float, n: int) -> None:
    need = _min_samples(settings, fs)
    if n < need:
        low = settings.low_edge_hz
        why = f"one period of the {low:g} Hz filter edge" if low is not None else "the peak picker"
        raise InputError(
            f"too few samples to filter: {recording.duration_s:.3g} s gives {n} samples at {fs:g} Hz; "
            f"{why} needs at least {need} ({(need - 1) / fs:.3g} s)",
            recording.path,
        )


def _apply_chain(x: np.ndarray, settings: AccelSettings, fs: float) -> np.ndarray:
    from scipy import ndimage, signal  # imported here: scipy.signal costs ~0.5 s at CLI start-up
    sos = _design(settings, fs)
    y = x
    if sos is not None:
        if settings.zero_phase:
            y = signal.sosfiltfilt(sos, y)
        else:
            # Start in steady state on the first sample: from rest, the 9.8 m/s² gravity offset
            # would enter as a step and ring into a false peak at the start.
            y, _ = signal.sosfilt(sos, y, zi=signal.sosfilt_zi(sos) * y[0])
    m = _smooth_len(settings, fs)
    if m > 1:
        if settings.zero_phase:
            y = ndimage.uniform_filter1d(y, size=m, mode="nearest")
        else:
            b = np.full(m, 1.0 / m)
            y, _ = signal.lfilter(b, [1.0], y, zi=signal.lfilter_zi(b, [1.0]) * y[0])
    return np.asarray(y, dtype=np.float64)


def _chain_delay_s(settings: AccelSettings, fs: float) -> float:
    """Where the chain puts the peak of an impulse: the lag of its impulse response's maximum.

    A flat-topped maximum (a moving average alone) counts at the centre of the flat top, which is
    where `find_peaks` reports a plateau and where the peak of a bump wider than the window lands.
    """
    from scipy import signal  # imported here: scipy.signal costs ~0.5 s at CLI start-up
    if settings.zero_phase or (settings.filter == "none" and _smooth_len(settings, fs) == 1):
        return 0.0
    low = settings.low_edge_hz or 1.0
    m = _smooth_len(settings, fs)
    n = int(math.ceil(8.0 * fs / low)) + 2 * m + 16
    impulse = np.zeros(n)
    impulse[0] = 1.0
    sos = _design(settings, fs)
    h = signal.sosfilt(sos, impulse) if sos is not None else impulse
    if m > 1:
        h = signal.lfilter(np.full(m, 1.0 / m), [1.0], h)
    top = np.flatnonzero(h >= h.max() * (1.0 - 1e-9))
    run_end = int(np.argmax(np.append(np.diff(top), 2) > 1))  # the first flat top only
    return float(top[0] + top[run_end]) / 2.0 / fs


# --------------------------------------------------------------------------------------------
# Clock mapping


def map_to_utterance(peak_times_s: Sequence[float] | np.ndarray, offset_s: float) -> np.ndarray:
    """Move peak times from the sensor clock to the utterance clock: ``anchor = sensor + offset_s``.

    docs/FORMAT.md ("Anchors") measures anchor times in seconds from the start of the utterance (segment). Peak times
    from `detect_peaks` count from the sensor file's first timestamp, so `offset_s` is the
    utterance time of that first timestamp: if the utterance (segment) starts 12.5 s after the
    accelerometer file does, `offset_s = -12.5`; if the accelerometer started 0.2 s after the
    audio segment, `offset_s = +0.2`. Times that land outside the utterance are returned as they
    are; the frame grid clips them and counts the clipping (docs/FORMAT.md, "Frame grid").
    """
    numeric = isinstance(offset_s, (int, float, np.floating, np.integer)) and not isinstance(offset_s, bool)
    if not numeric or not math.isfinite(offset_s):
        raise InputError(f"clock offset must be a finite number of seconds; got {offset_s!r}")
    try:
        t = np.asarray(peak_times_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"peak times must be numbers of seconds: {exc}") from exc
    if t.ndim != 1:
        raise InputError(f"peak times must be a 1-D sequence; got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InputError("peak times contain NaN or infinite values")
    return t + float(offset_s)
