"""Reading a finished run back: its files, its rows, and the job that wrote them.

Shared by `validate`, `stats` and `plot`. Nothing here writes to the run folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anchorprep.anchors import BACKGROUND, TargetWindow
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.rows import AnchorEvent, Labelling
from anchorprep.pipeline.runner import STATE_DIR
from anchorprep.shards.schema import LIST_COLUMNS

MANIFEST = "manifest.json"
ERRORS = "errors.jsonl"
REPORT = "report.json"

#: Settings keys `runner.run_settings` adds around a job's own settings.
COMMON_SETTINGS = ("schema_version", "tool", "tool_version", "command", "time_reference", "shard_size",
                   "passthrough_columns", "inputs", "config", "settings_sha256")


@dataclass
class Run:
    """A run folder whose manifest.json could be read."""

    out: Path
    manifest: dict
    settings: dict

    @property
    def shard_files(self) -> list[str]:
        return [s.get("file", "") for s in self.manifest.get("shards", [])]

    @property
    def command(self) -> str:
        return str(self.settings.get("command", ""))

    def report(self) -> dict | None:
        path = self.out / REPORT
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def error_lines(self) -> list[dict]:
        """Well-formed lines of errors.jsonl (malformed ones are skipped here; `validate` reports them)."""
        path = self.out / ERRORS
        if not path.is_file():
            return []
        lines = []
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                lines.append(value)
        return lines


def check_out_dir(out: Path) -> Path:
    out = Path(out)
    if not out.exists():
        raise UsageError(f"{out}: no such folder")
    if not out.is_dir():
        raise UsageError(f"{out}: not a folder (give the output folder of an anchorprep run)")
    return out


def open_run(out: Path) -> Run:
    """Read ``out/manifest.json``; `UsageError` when ``out`` is not a finished anchorprep run."""
    out = check_out_dir(out)
    path = out / MANIFEST
    if not path.is_file():
        hint = (" (the run is unfinished: run `anchorprep assemble` once every shard is done)"
                if (out / STATE_DIR / "run.json").is_file() else " (is this the output folder of an anchorprep run?)")
        raise UsageError(f"{out}: no {MANIFEST}{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
        raise UsageError(f"{path}: not an anchorprep manifest (no settings)")
    return Run(out, manifest, manifest["settings"])


# ------------------------------------------------------------------------------------------------
# Rows


def list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray | list]:
    """A list column as ``(offsets, values)``: row ``i`` is ``values[offsets[i]:offsets[i+1]]``.

    Numeric values come back as a numpy array, strings as a Python list.
    """
    array = table.column(name).combine_chunks()
    if isinstance(array, pa.ChunkedArray):  # an empty table
        array = pa.array([], type=array.type)
    offsets = array.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0] if len(offsets) else np.zeros(1, dtype=np.int64)
    flat = array.flatten()
    values = flat.to_pylist() if pa.types.is_string(flat.type) else flat.to_numpy(zero_copy_only=False)
    return offsets, values


def iter_rows(table: pa.Table) -> Iterator[dict]:
    """Rows of a shard table as dicts; list columns as numpy arrays (strings as lists)."""
    lists = {name: list_column(table, name) for name in LIST_COLUMNS if name in table.column_names}
    scalars = {name: table.column(name).to_pylist() for name in table.column_names if name not in lists}
    for i in range(table.num_rows):
        row = {name: values[i] for name, values in scalars.items()}
        for name, (offsets, values) in lists.items():
            row[name] = values[offsets[i]:offsets[i + 1]]
        yield row


def find_row(run: Run, utt_id: str) -> tuple[dict, str]:
    """The row of ``utt_id`` and the shard file holding it; `UsageError` when absent."""
    for name in run.shard_files:
        path = run.out / name
        ids = pq.read_table(path, columns=["utt_id"]).column("utt_id").to_pylist()
        if utt_id in ids:
            table = pq.read_table(path).slice(ids.index(utt_id), 1)
            return next(iter_rows(table)), name
    errors = [e for e in run.error_lines() if e.get("utt_id") == utt_id]
    if errors:
        e = errors[0]
        raise UsageError(f"{utt_id!r} has no row in {run.out}: it failed at stage {e.get('stage')!r}: {e.get('reason')}")
    raise UsageError(f"{utt_id!r} is not in {run.out} (no shard row, no errors.jsonl line)")


# ------------------------------------------------------------------------------------------------
# Settings → grid, labelling, combine rule, job


def grid_of(settings: dict) -> FrameGrid:
    return FrameGrid(**settings["grid"])


def labels_of(settings: dict) -> tuple[str, ...]:
    ids = settings.get("label_map", {})
    return tuple(sorted((label for label in ids if label != BACKGROUND), key=ids.get))


def window_of(settings: dict) -> TargetWindow | None:
    """The positive window of a window-target run; None when targets are something else (vad)."""
    targets = settings.get("targets", {})
    if "positive_window" not in targets:
        return None
    lo, hi = targets["positive_window"]
    return TargetWindow(int(lo), int(hi), int(targets.get("guard", 0)))


def labelling_of(settings: dict) -> Labelling:
    return Labelling(grid_of(settings), window_of(settings) or TargetWindow(), labels_of(settings),
                     settings.get("anchor_rule", "causal"))


def combine_of(settings: dict) -> CombineOptions | None:
    """The rule choosing the anchors the distance uses; None: every anchor (single-source runs)."""
    block = settings.get("combine")
    if not block:
        return None
    sources = block.get("distance_sources", "all")
    return CombineOptions(() if sources == "all" else tuple(sources), block.get("agree_within_s"))


def used_mask(settings: dict, times, labels, sources, combine: CombineOptions | None = None) -> np.ndarray:
    """Which of a row's anchors its distance and window targets were computed from."""
    if combine is None:
        combine = combine_of(settings)
    if combine is None:
        return np.ones(len(times), dtype=bool)
    events = [AnchorEvent(float(t), str(label), str(source)) for t, label, source in zip(times, labels, sources)]
    used = set(combine.select(events)[0])
    return np.array([e in used for e in events], dtype=bool)


def dataclass_from(cls, data: dict, **overrides):
    names = {f.name for f in fields(cls)}
    return cls(**{**{k: v for k, v in data.items() if k in names}, **overrides})


def tuple_or_none(value):
    return None if value is None else tuple(value)


def rebuild_job(settings: dict):
    """The job (AlignJob, VadJob, AccelJob, MergeJob) that wrote a run, rebuilt from its settings.

    Raises `UsageError` for commands it cannot rebuild. Callers should compare ``job.settings()``
    with the stored settings (`job_settings_mismatch`) before trusting the job.
    """
    command = settings.get("command")
    labelling = labelling_of(settings)
    if command == "align":
        from anchorprep.pipeline.align import AlignJob, AlignOptions

        options = settings["align"]
        return AlignJob(labelling, dataclass_from(AlignOptions, options, keywords=tuple(options.get("keywords", ()))))
    if command == "vad":
        from anchorprep.pipeline.vad import VadJob, VadOptions
        from anchorprep.sources.vad import VadSettings

        vad = settings["vad"]
        mode = "vad" if settings.get("targets", {}).get("mode") == "vad" else "window"
        options = VadOptions(dataclass_from(VadSettings, vad), vad.get("channel", "mix"), vad.get("offsets", False),
                             vad.get("onsets", "all"), mode)
        return VadJob(labelling, options)
    if command == "accel":
        from anchorprep.pipeline.accel import AccelJob, AccelReadOptions
        from anchorprep.pipeline.vad import VadOptions
        from anchorprep.sources.accel import AccelSettings
        from anchorprep.sources.vad import VadSettings

        accel = settings["accel"]
        detect = dataclass_from(AccelSettings, accel, band_hz=tuple(accel.get("band_hz", (0.5, 3.0))))
        read = dataclass_from(AccelReadOptions, accel, columns=tuple_or_none(accel.get("columns")))
        vad = None
        if "vad" in settings:
            vad = VadOptions(dataclass_from(VadSettings, settings["vad"]), settings["vad"].get("channel", "mix"))
        return AccelJob(labelling, detect, read, accel.get("default_time_offset_s", 0.0), vad,
                        combine_of(settings) or CombineOptions())
    if command == "merge":
        from anchorprep.pipeline.merge import MergeJob

        return MergeJob(labelling, tuple(settings.get("merged_runs", ())), combine_of(settings) or CombineOptions())
    raise UsageError(f"cannot re-derive rows of an `anchorprep {command}` run")


def job_settings_mismatch(job, settings: dict) -> list[str]:
    """Settings keys where the rebuilt job disagrees with the stored settings (empty: faithful)."""
    rebuilt = json.loads(json.dumps(job.settings()))
    differ = [key for key, value in rebuilt.items() if settings.get(key) != value]
    extra = [key for key in settings if key not in rebuilt and key not in COMMON_SETTINGS]
    return sorted(differ + extra)


def config_of(settings: dict) -> dict:
    config = settings.get("config")
    return config if isinstance(config, dict) else {}


def command_items(settings: dict, inputs: Path):
    """The item table the run's command builds from ``inputs``, with the options the run stored
    in its ``config`` block (``audio_dir``, ``segments``, ``wav_scp``, ``recordings``,
    ``audio_root``, ``anchors_from``) and its ``align`` settings: the discovery functions of
    `anchorprep.sources.items`, as the pipeline commands call them.
    """
    from anchorprep.sources.items import accel_items, alignment_items, audio_items

    inputs = Path(inputs)
    if str(inputs) != "-" and not inputs.exists():
        raise UsageError(f"`inputs` {inputs}: no such file or folder")
    command, config = settings.get("command"), config_of(settings)

    def path(key: str) -> Path | None:
        return Path(config[key]) if config.get(key) else None

    if command == "align":
        align = settings.get("align", {})
        return alignment_items(inputs, alignment_format=align.get("alignment_format", "auto"),
                               audio_dir=path("audio_dir"), segments=path("segments"), wav_scp=path("wav_scp"),
                               encoding=align.get("encoding", "utf-8"), lhotse_unit=align.get("lhotse_unit", "auto"),
                               recordings=path("recordings"), audio_root=path("audio_root"))
    if command == "vad":
        items = audio_items(inputs)
        if path("anchors_from") is not None:
            from anchorprep.pipeline.inputs import add_search_region

            items = add_search_region(items, path("anchors_from"))
        return items
    if command == "accel":
        return accel_items(inputs)
    raise UsageError(f"`inputs` does not apply to `anchorprep {command}` runs")
