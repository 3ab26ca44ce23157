"""Precomputed SAL weights for any trainer: a run whose rows also carry ``weight``.

`write_weights` reads a finished run and writes a NEW run folder with the same shards (same
names, same shard plan, same rows in the same order) plus one column::

    weight: list<float32>, one value per frame,  weight = anchorprep.loss.anchor_weights(distance, ...)
          = 1 + gain * K(distance)     (K = 0 where distance is 32767, "no anchor": weight 1)

so a trainer that cannot run anchorprep's torch loss (TensorFlow, JAX, Kaldi/k2, anything that
reads Parquet) multiplies its per-frame loss by ``weight`` and gets SAL. The weights are the loss
package's own numbers (computed by `anchorprep.loss.anchor_weights` on the stored int16
distances), not a second implementation of the formula.

The kernel settings are a `WeightSettings` block stored under ``weights`` in the run settings
(``manifest.json``, ``.anchorprep/run.json`` and every shard's Parquet metadata); the settings
hash changes with them. errors.jsonl and report.json are the input run's (the rows are the same).

Example::

    import anchorprep
    from anchorprep.interop import write_weights

    anchorprep.align("sample_data/manifest.csv", "out/kw", keyword="hey computer")
    write_weights("out/kw", "out/kw-weights", kernel="linear", width=20, gain=4)
    # pyarrow.parquet.read_table("out/kw-weights/anchors-00000-of-00001.parquet")["weight"]
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from anchorprep.errors import UsageError
from anchorprep.shards.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from anchorprep.shards.run import (
    Run,
    RunFolder,
    RunManifest,
    RunSettings,
    ShardEntry,
    list_column,
    open_run,
    settings_hash,
)
from anchorprep.shards.schema import WEIGHT_COLUMN, shard_schema
from anchorprep.shards.weights import FORMULA, WEIGHTS_KEY, WeightSettings
from anchorprep.storage import Location, StoragePath, location

@dataclass(frozen=True)
class WeightsResult:
    """What `write_weights` wrote: the new run folder, its kernel settings, shards, rows and frames."""

    source: Path
    out: Path
    settings: WeightSettings
    shards: int
    rows: int
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "out": str(self.out), "weights": self.settings.to_dict(),
                "shards": self.shards, "rows": self.rows, "frames": self.frames}


def weight_column(distance: pa.Array | pa.ChunkedArray, settings: WeightSettings) -> pa.ListArray:
    """The ``weight`` column for a ``distance`` column: same offsets, float32 values."""
    offsets, values = list_column(distance)
    weights = settings.weights(values)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(weights, pa.float32()),
                                    type=pa.list_(pa.float32()))


def write_weights(run: str | os.PathLike, out: str | os.PathLike, *, kernel: str | None = None,
                  width: float | None = None, width_before: float | None = None, width_after: float | None = None,
                  gain: float | None = None, overwrite: bool = False) -> WeightsResult:
    """Write ``out``: the run in ``run`` with a per-frame ``weight`` column (module docstring).

    `UsageError` for bad kernel settings, an unfinished or unreadable ``run``, ``out`` being the
    input run, or ``out`` holding a run (pass ``overwrite`` to replace it). One shard is in
    memory at a time; every file is written atomically, ``manifest.json`` last.
    """
    source = open_run(run)
    weights = WeightSettings.resolve(kernel, width, width_before, width_after, gain,
                                     source.settings.settings_sha256)
    folder = _prepare_out(source, location(out), overwrite)
    settings = _weighted_settings(source.settings, weights)
    count = settings.planned_shards
    if len(source.shards) != count:
        raise UsageError(f"{source.path} lists {len(source.shards)} shard(s), its plan has {count}; "
                         "check it with `anchorprep validate`")
    schema = shard_schema(settings.passthrough_columns, settings.to_dict())
    folder.state_dir.mkdir(parents=True, exist_ok=True)
    folder.data_dir.mkdir(exist_ok=True)
    write_json_atomic(folder.settings_file, settings.to_dict())
    entries, frames = [], 0
    for index, entry in enumerate(source.shards):
        table = source.read_shard(entry)
        try:
            weight = weight_column(table.column("distance"), weights)
            columns = [weight if f.name == WEIGHT_COLUMN else table.column(f.name) for f in schema]
            weighted = pa.Table.from_arrays(columns, schema=schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise UsageError(f"{source.path / entry.file}: not a shard of this run's schema ({exc}); check the run "
                             "with `anchorprep validate`") from None
        path = folder.shard(index, count)
        digest = write_parquet_atomic(path, weighted)
        entries.append(ShardEntry(folder.shard_entry(index, count), weighted.num_rows, digest))
        frames += len(weight.values)
    _copy_side_files(source, folder)
    manifest = RunManifest(settings, tuple(entries), folder.errors_file.name, folder.report_file.name)
    write_json_atomic(folder.manifest_file, manifest.to_dict())
    return WeightsResult(source.path, folder.path, weights, len(entries), sum(e.rows for e in entries), frames)


def _prepare_out(source: Run, out: Location, overwrite: bool) -> RunFolder:
    """``out`` as a run folder to write; refuses the input run itself and (without ``overwrite``)
    a folder that holds a run."""
    if out.exists() and out.resolve() == source.path.resolve():
        raise UsageError(f"`out` {out} is the input run; write the weighted run to a new folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"`out` {out} is a file; give a folder")
    folder = RunFolder(out)
    holds_run = folder.shard_files() or folder.manifest_file.exists() or folder.state_dir.exists()
    if holds_run:
        if not overwrite:
            raise UsageError(f"`out` {out} already holds a run; use a new folder, or pass `overwrite` to replace it")
        for path in folder.shard_files() + folder.side_files():
            path.unlink(missing_ok=True)
        if isinstance(folder.state_dir, StoragePath):
            for path in folder.state_dir.files():
                path.unlink(missing_ok=True)
        else:
            shutil.rmtree(folder.state_dir, ignore_errors=True)
    folder.path.mkdir(parents=True, exist_ok=True)
    return folder


def _weighted_settings(settings: RunSettings, weights: WeightSettings) -> RunSettings:
    data = settings.to_dict()
    data[WEIGHTS_KEY] = weights.to_dict()
    data["settings_sha256"] = settings_hash(data)
    return RunSettings.from_dict(data)


def _copy_side_files(source: Run, folder: RunFolder) -> None:
    """errors.jsonl and report.json of the input run (the rows, and so the counts, are the same)."""
    report = source.report()
    if report is None:
        raise UsageError(f"{source.path}: no readable {source.manifest.report_file}; check it with `anchorprep validate`")
    errors = source.errors()
    write_text_atomic(folder.errors_file, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in errors))
    write_json_atomic(folder.report_file, report.to_dict())


__all__ = ["FORMULA", "WEIGHTS_KEY", "WeightSettings", "WeightsResult", "weight_column", "write_weights"]
