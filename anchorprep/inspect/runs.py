"""A finished run's rows and the job that wrote them, rebuilt from its `RunSettings`.

Shared by `validate` and `plot`; the run folder itself is `anchorprep.shards.run`'s.
Nothing here writes to the run folder.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from anchorprep.anchors import TargetWindow
from anchorprep.errors import UsageError
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.rows import AnchorEvent, Labelling
from anchorprep.shards.run import Run, RunSettings, iter_rows
from anchorprep.shards.weights import WEIGHTS_KEY
from anchorprep.storage import location


def find_row(run: Run, utt_id: str) -> tuple[dict, str]:
    """The row of ``utt_id`` and the shard file holding it; `UsageError` when absent."""
    for shard in run.shards:
        ids = run.read_shard(shard, ["utt_id"]).column("utt_id").to_pylist()
        if utt_id in ids:
            table = run.read_shard(shard).slice(ids.index(utt_id), 1)
            return next(iter_rows(table)), shard.file
    errors = [e for e in run.errors() if e.utt_id == utt_id]
    if errors:
        e = errors[0]
        raise UsageError(f"{utt_id!r} has no row in {run.path}: it failed at stage {e.stage!r}: {e.reason}")
    raise UsageError(f"{utt_id!r} is not in {run.path} (no shard row, no errors.jsonl line)")


# ------------------------------------------------------------------------------------------------
# Settings → grid, labelling, combine rule, job


def labelling_of(settings: RunSettings) -> Labelling:
    return Labelling(settings.grid, settings.window or TargetWindow(), settings.labels, settings.anchor_rule)


def combine_of(settings: RunSettings) -> CombineOptions | None:
    """The rule choosing the anchors the distance uses; None: every anchor (single-source runs)."""
    block = settings.job.get("combine")
    if not block:
        return None
    sources = block.get("distance_sources", "all")
    return CombineOptions(() if sources == "all" else tuple(sources), block.get("agree_within_s"))


def used_mask(settings: RunSettings, times, labels, sources, combine: CombineOptions | None = None) -> np.ndarray:
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


def rebuild_job(settings: RunSettings):
    """The job (AlignJob, VadJob, AccelJob, MergeJob) that wrote a run, rebuilt from its settings.

    Raises `UsageError` for commands it cannot rebuild. Callers should compare ``job.settings()``
    with the stored settings (`job_settings_mismatch`) before trusting the job.
    """
    command, job = settings.command, settings.job
    labelling = labelling_of(settings)
    if command == "align":
        from anchorprep.pipeline.align import AlignJob, AlignOptions

        options = job["align"]
        return AlignJob(labelling, dataclass_from(AlignOptions, options, keywords=tuple(options.get("keywords", ()))))
    if command == "vad":
        from anchorprep.pipeline.vad import VadJob, VadOptions
        from anchorprep.sources.vad import VadSettings

        vad = job["vad"]
        mode = "vad" if settings.vad_targets else "window"
        options = VadOptions(dataclass_from(VadSettings, vad), vad.get("channel", "mix"), vad.get("offsets", False),
                             vad.get("onsets", "all"), mode)
        return VadJob(labelling, options)
    if command == "accel":
        from anchorprep.pipeline.accel import AccelJob, AccelReadOptions
        from anchorprep.pipeline.vad import VadOptions
        from anchorprep.sources.accel import AccelSettings
        from anchorprep.sources.vad import VadSettings

        accel = job["accel"]
        detect = dataclass_from(AccelSettings, accel, band_hz=tuple(accel.get("band_hz", (0.5, 3.0))))
        read = dataclass_from(AccelReadOptions, accel, columns=tuple_or_none(accel.get("columns")))
        vad = None
        if "vad" in job:
            vad = VadOptions(dataclass_from(VadSettings, job["vad"]), job["vad"].get("channel", "mix"))
        return AccelJob(labelling, detect, read, accel.get("default_time_offset_s", 0.0), vad,
                        combine_of(settings) or CombineOptions())
    if command == "merge":
        from anchorprep.pipeline.merge import MergeJob

        return MergeJob(labelling, tuple(job.get("merged_runs", ())), combine_of(settings) or CombineOptions())
    raise UsageError(f"cannot re-derive rows of an `anchorprep {command}` run")


def job_settings_mismatch(job, settings: RunSettings) -> list[str]:
    """Settings keys where the rebuilt job disagrees with the stored settings (empty: faithful)."""
    rebuilt = json.loads(json.dumps(job.settings()))
    stored = settings.to_dict()
    differ = [key for key, value in rebuilt.items() if stored.get(key) != value]
    # A `weights` block is added by `write_weights` after the job ran; `validate` checks it apart.
    extra = [key for key in settings.job if key not in rebuilt and key != WEIGHTS_KEY]
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

    inputs = location(inputs) if str(inputs) != "-" else Path(inputs)
    if str(inputs) != "-" and not inputs.exists():
        raise UsageError(f"`inputs` {inputs}: no such file or folder")
    command, config = settings.get("command"), config_of(settings)

    def path(key: str) -> Path | None:
        return location(config[key]) if config.get(key) else None

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
