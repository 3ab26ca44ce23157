"""The pipelines as Python functions: `align`, `vad`, `accel`, `merge` and `assemble`.

Each function is what the CLI command of the same name runs, argument for argument: keyword
arguments are named like the command's options (``--min-pause-ms`` is ``min_pause_ms``, a
repeatable option such as ``-k/--keyword`` takes a string or a list), the frame grid, target and
run options shared by every pipeline are `PipelineOptions` keyword arguments, and the result is a
`RunResult`. So a notebook and a batch job write byte-identical run folders.

Example:
    >>> import anchorprep
    >>> result = anchorprep.align("sample_data/manifest.csv", "out/sample",
    ...                           keyword="hey computer")                    # doctest: +SKIP
    >>> result.exit_code, result.report.written                               # doctest: +SKIP
    (0, 24)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path

from anchorprep.anchors import SPEECH_ONSET, TargetWindow
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.align import AlignJob, AlignOptions
from anchorprep.pipeline.options import PipelineOptions
from anchorprep.pipeline.rows import Labelling
from anchorprep.pipeline.runner import RunOptions, RunResult, run
from anchorprep.pipeline.runner import assemble as assemble_run
from anchorprep.sources.items import alignment_items
from anchorprep.storage import location

# The other pipelines' job and input modules load in their own function: `anchorprep align` on
# one file pays for align's imports only (start-up time).

PathLike = str | os.PathLike
ACCEL_PRESETS = ("step", "raise", "default")


def align(
    inputs: PathLike,
    out: PathLike,
    *,
    keyword: str | Sequence[str] | None = None,
    speech_onsets: bool = False,
    min_pause_ms: float = 0.0,
    edge: str = "end",
    tier: str | None = None,
    speaker: str | None = None,
    level: str = "words",
    regex: bool = False,
    require_keyword: bool = False,
    format: str = "auto",
    encoding: str = "utf-8",
    segments: PathLike | None = None,
    wav_scp: PathLike | None = None,
    lhotse_unit: str = "auto",
    recordings: PathLike | None = None,
    audio_root: PathLike | None = None,
    audio_dir: PathLike | None = None,
    progress=None,
    **options,
) -> RunResult:
    """Keyword anchors (or speech-run onsets) from forced alignments: `anchorprep align`.

    ``inputs`` is a manifest (csv/tsv/jsonl/parquet with ``utt_id, alignment_path`` and optional
    ``audio_path, start_s, duration_s``; ``"-"`` reads it from stdin), a folder of TextGrids
    (+ audio, or ``audio_dir``), a Kaldi CTM (+ ``segments``, ``wav_scp``), an RTTM (+ ``wav_scp``)
    or a lhotse cuts/supervisions manifest (+ ``recordings``, ``audio_root``). Every occurrence of
    each ``keyword`` (class ids 1, 2, ... in order) is an anchor at its ``edge``; with
    ``speech_onsets`` the start of every speech run after ``min_pause_ms`` of silence is.
    ``speaker`` picks the tier of multi-speaker alignments: a name, ``"all"`` (every speaker's
    tier; anchor sources ``alignment:<speaker>``) or ``"column"`` (the item's ``speaker`` column).
    ``progress`` is an optional object with ``start(total)``, ``advance(n, failed)`` and ``stop()``;
    ``**options`` are the `PipelineOptions` (grid, targets, run).
    """
    arguments = dict(locals())  # the call's parameters, before any other local name exists
    keywords = _as_list(keyword, "keyword")
    shared = PipelineOptions.from_kwargs("align", options)
    align_options = AlignOptions(tuple(keywords or ()), edge, tier, speaker, level, regex, require_keyword, format,
                                 encoding, _path_or_none(segments), speech_onsets, min_pause_ms / 1000.0, lhotse_unit)
    labels = (SPEECH_ONSET,) if speech_onsets else tuple(keywords or ())
    job = AlignJob(_labelling(shared, labels), align_options)
    items = alignment_items(inputs, alignment_format=format, audio_dir=audio_dir, segments=segments, wav_scp=wav_scp,
                            encoding=encoding, lhotse_unit=lhotse_unit, recordings=recordings, audio_root=audio_root,
                            spill=True)
    return _run(align, arguments, job, items, shared)


def vad(
    inputs: PathLike,
    out: PathLike,
    *,
    backend: str = "webrtc",
    mode: int = 3,
    frame_ms: int = 10,
    vad_rate: int = 16000,
    window_ms: int = 300,
    start_ratio: float = 0.5,
    stop_ratio: float = 0.9,
    min_speech_ms: float = 100.0,
    min_silence_ms: float = 300.0,
    channel: int | str = "mix",
    offsets: bool = False,
    onsets: str = "all",
    targets: str = "window",
    anchors_from: PathLike | None = None,
    progress=None,
    **options,
) -> RunResult:
    """Speech-onset anchors from webrtcvad (or Silero): `anchorprep vad`.

    ``inputs`` is a manifest (``utt_id, audio_path`` and optional ``start_s, duration_s``; ``"-"``
    reads stdin) or a folder of wav/flac/ogg files. The onset is the first speech sample of each
    accepted speech run (``onsets="first"``: only the first; ``offsets``: also the ends).
    ``anchors_from``: an earlier run; only onsets after each utterance's first anchor there count.
    ``**options`` are the `PipelineOptions` (grid, targets, run).
    """
    arguments = dict(locals())  # the call's parameters, before any other local name exists
    from anchorprep.pipeline.inputs import add_search_region
    from anchorprep.pipeline.vad import VadJob, VadOptions, vad_labels
    from anchorprep.sources.items import audio_items
    from anchorprep.sources.vad import VadSettings

    shared = PipelineOptions.from_kwargs("vad", options)
    settings = VadSettings(backend=backend, mode=mode, frame_ms=frame_ms, sample_rate=vad_rate, window_ms=window_ms,
                           start_ratio=start_ratio, stop_ratio=stop_ratio, min_speech_ms=min_speech_ms,
                           min_silence_ms=min_silence_ms)
    job = VadJob(_labelling(shared, vad_labels(offsets)),
                 VadOptions(settings, _channel(channel), offsets, onsets, targets))
    items = audio_items(inputs, spill=anchors_from is None)
    if anchors_from is not None:
        items = add_search_region(items, location(anchors_from))
    return _run(vad, arguments, job, items, shared)


def accel(
    inputs: PathLike,
    out: PathLike,
    *,
    preset: str = "default",
    axis: str | None = None,
    filter: str | None = None,
    band: str | tuple[float, float] | None = None,
    cutoff_hz: float | None = None,
    order: int | None = None,
    causal: bool = False,
    resample_hz: float | None = None,
    smooth_ms: float | None = None,
    height: float | None = None,
    prominence: float | None = None,
    refractory_ms: float | None = None,
    width_ms: float | None = None,
    time_unit: str = "auto",
    rate: float | None = None,
    skip_rows: int = 0,
    columns: str | Sequence[str | int] | None = None,
    units: str = "auto",
    max_gap_s: float = 60.0,
    time_offset_s: float = 0.0,
    vad: bool = False,
    use_source: str | Sequence[str] | None = None,
    agree_within_ms: float | None = None,
    progress=None,
    **options,
) -> RunResult:
    """Anchors at accelerometer peaks, on the audio's frame grid: `anchorprep accel`.

    ``inputs`` is a manifest (``utt_id, accel_path`` and optional ``audio_path, time_offset_s,
    start_s, duration_s``; ``"-"`` reads stdin) or a folder of sensor files. ``preset`` (step,
    raise, default) gives the starting `AccelSettings`; the other peak options override it
    (``band`` as ``"LOW:HIGH"`` Hz or a pair). Sensor files: ``columns`` picks the time and x, y, z
    columns (``"t,x,y,z"`` or a list; names, or digits for 0-based indices; x, y, z only with
    ``rate``), ``units`` is ``"auto"`` (g or m/s² from gravity), ``"g"`` or ``"m/s2"``, and a
    timestamp step over ``max_gap_s`` refuses the file. With ``vad`` the audio's speech onsets are a second
    source; ``use_source`` picks the sources the distance uses (first = primary) and
    ``agree_within_ms`` keeps primary anchors that every other source agrees with.
    ``**options`` are the `PipelineOptions` (grid, targets, run).
    """
    arguments = dict(locals())  # the call's parameters, before any other local name exists
    from anchorprep.pipeline.accel import PEAK, AccelJob, AccelReadOptions
    from anchorprep.pipeline.vad import ONSET, VadOptions
    from anchorprep.sources.accel import RAISE_PRESET, STEP_PRESET, AccelSettings
    from anchorprep.sources.items import accel_items

    if preset not in ACCEL_PRESETS:
        raise UsageError(f"`preset` must be one of {', '.join(ACCEL_PRESETS)}; got {preset!r}")
    shared = PipelineOptions.from_kwargs("accel", options)
    sources = _as_list(use_source, "use_source")
    overrides = dict(axis=axis, filter=filter, band_hz=_band(band), cutoff_hz=cutoff_hz, order=order,
                     zero_phase=False if causal else None, resample_hz=resample_hz, smooth_ms=smooth_ms,
                     height=height, prominence=prominence, distance_ms=refractory_ms, width_ms=width_ms)
    base = {"step": STEP_PRESET, "raise": RAISE_PRESET, "default": AccelSettings()}[preset]
    settings = AccelSettings(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    job = AccelJob(_labelling(shared, (PEAK, ONSET) if vad else (PEAK,)), settings,
                   AccelReadOptions(time_unit=time_unit, rate=rate, skip_rows=skip_rows,
                                    columns=_accel_columns(columns), units=units, max_gap_s=float(max_gap_s)),
                   float(time_offset_s),
                   VadOptions() if vad else None, _combine(sources, agree_within_ms))
    items = accel_items(inputs, spill=True)
    return _run(accel, arguments, job, items, shared)


def merge(
    runs: Sequence[PathLike],
    out: PathLike,
    *,
    use_source: str | Sequence[str] | None = None,
    agree_within_ms: float | None = None,
    progress=None,
    **options,
) -> RunResult:
    """Merge the anchors of earlier runs by utt_id (e.g. VAD onsets + accelerometer peaks):
    `anchorprep merge`. The runs must share a frame grid and anchor rule, which the merged run
    keeps; ``**options`` are the target and run options of `PipelineOptions` (no grid options)."""
    arguments = dict(locals())  # the call's parameters, before any other local name exists
    from anchorprep.pipeline.merge import MergeJob, read_merge_inputs

    shared = PipelineOptions.from_kwargs("merge", options, grid=False)
    sources = _as_list(use_source, "use_source")
    merged = read_merge_inputs([location(r) for r in runs])
    labelling = Labelling(merged.grid, _window(shared), merged.labels, merged.anchor_rule)
    return _run(merge, arguments, MergeJob(labelling, merged.runs, _combine(sources, agree_within_ms)), merged.items,
                shared)


def assemble(out: PathLike):
    """Write manifest.json, errors.jsonl and report.json of an array-job run once every shard is
    finished (`anchorprep assemble`); a `UsageError` names the unfinished shards."""
    return assemble_run(location(out), require_complete=True)


def _as_list(value, name: str) -> list[str] | None:
    """A repeatable option: one string, a sequence of strings, or None (not given)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise UsageError(f"`{name}` must be a string or a list of strings, got {value!r}")
    return list(value) or None


def _accel_columns(value) -> tuple[str | int, ...] | None:
    """``columns`` as read_accel takes them: a comma-separated string or a sequence; an entry of
    digits is a 0-based index, anything else a column name."""
    if value is None:
        return None
    entries = value.split(",") if isinstance(value, str) else list(value)
    columns: list[str | int] = []
    for entry in entries:
        if isinstance(entry, int) and not isinstance(entry, bool):
            columns.append(entry)
        elif isinstance(entry, str) and entry.strip():
            columns.append(int(entry.strip()) if entry.strip().isdigit() else entry.strip())
        else:
            raise UsageError(f"`columns` must be names or 0-based indices such as 't,x,y,z' or '0,1,2,3'; got {value!r}")
    return tuple(columns)


def _path_or_none(value: PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)


def _channel(value: int | str) -> int | str:
    if value == "mix":
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"`channel` must be a channel index or 'mix', got {value!r}") from None


def _band(value) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = (float(v) for v in (value.split(":") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise UsageError(f"`band` must look like LOW:HIGH in Hz (e.g. 0.5:2.5), got {value!r}") from None
    return low, high


def _band_text(value) -> str | None:
    return value if value is None or isinstance(value, str) else ":".join(str(float(v)) for v in value)


def _combine(sources: list[str] | None, agree_within_ms: float | None):
    from anchorprep.pipeline.combine import CombineOptions

    return CombineOptions(tuple(sources or ()), None if agree_within_ms is None else agree_within_ms / 1000.0)


def _window(shared: PipelineOptions) -> TargetWindow:
    return TargetWindow.parse(shared.positive_window, shared.guard)


def _labelling(shared: PipelineOptions, labels: tuple[str, ...]) -> Labelling:
    grid = FrameGrid(shared.sample_rate, shared.frame_shift_ms, shared.frame_length_ms, shared.snip_edges,
                     shared.subsampling)
    return Labelling(grid, _window(shared), labels, shared.anchor_rule)


def _run(function, arguments: dict, job, items, shared: PipelineOptions) -> RunResult:
    """Run ``job`` over ``items`` into the call's ``out``, storing the call's configuration."""
    return run(job, items, RunOptions(out_dir=location(arguments["out"]), **shared.execution()),
               progress=arguments["progress"], config=stored_config(function, arguments))


def stored_config(function, arguments: dict) -> dict:
    """The configuration a run stores (its settings' ``config``): every option of the pipeline
    ``function`` that shapes the output, as given or defaulted, so the run can be repeated.

    Input and output paths and the options that only change how the run executes are left out;
    path options are stored absolute, a repeatable option as a list, numbers as their declared
    type (``20`` and ``20.0`` store the same). The CLI's ``--print-config`` prints this.
    """
    own = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD or name in ("inputs", "runs", "out", "progress"):
            continue
        value = arguments.get(name, parameter.default)
        own[name] = None if value is None else _stored_value(name, parameter.annotation, value)
    grid = function is not merge
    shared = PipelineOptions.from_kwargs(function.__name__, dict(arguments.get("options") or {}), grid=grid)
    return {**own, **shared.stored(grid)}


def _stored_value(name: str, annotation: str, value):
    if "PathLike" in annotation:
        return str(location(value).resolve())
    if "Sequence[str | int]" in annotation:
        return list(_accel_columns(value))
    if "Sequence[str]" in annotation:
        return _as_list(value, name)
    if annotation.startswith("float"):
        return float(value)
    if annotation.startswith("int | str"):
        return str(value)
    if "tuple[float, float]" in annotation:
        return _band_text(value)
    return value
