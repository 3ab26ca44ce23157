"""Finding the shards of a run and the settings they share.

A *source* is an anchorprep output folder, a single shard file, or a list of shard files:

* A folder with ``manifest.json`` (a finished run, in the current layout with its shards in
  ``data/`` or in anchorprep 0.1.0's with them beside the manifest) is read in the manifest's
  shard order, with the manifest's row counts, sha256s and settings (no shard is opened until it
  is needed; the datasets check a shard's sha256 when they open it).
* A folder without a manifest (a run still in progress, a run's ``data/`` folder, or shards
  copied by hand) is globbed for ``data/anchors-*.parquet``, else ``anchors-*.parquet``, in
  sorted order; each shard's footer gives its row count and settings.
* A list of paths is taken in the given order, footers likewise.

Shards from different runs may be combined as long as they agree on the frame grid and the label
map, because both decide what a target and a distance mean; anything else may differ.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from anchorprep.shards import rows_to_table, shard_schema
    >>> from anchorprep.shards.io import write_parquet_atomic
    >>> folder = Path(tempfile.mkdtemp())
    >>> settings = {"grid": {"sample_rate": 16000}, "label_map": {"background": 0}}
    >>> (folder / "data").mkdir()
    >>> _ = write_parquet_atomic(folder / "data" / "anchors-00000-of-00001.parquet",
    ...                          rows_to_table([], shard_schema((), settings)))
    >>> source = open_source(folder)
    >>> len(source.shards), source.num_rows, source.grid.frame_shift_ms
    (1, 0, 10.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import pyarrow.parquet as pq

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.shards.io import sha256_file
from anchorprep.shards.run import DATA_DIR, MANIFEST_FILE, SHARD_GLOB, RunFolder, open_run
from anchorprep.shards.schema import read_settings
from anchorprep.storage import location, parquet_file

#: What the datasets accept as a source: a folder, one shard file, or shard files in order.
Source = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


@dataclass(frozen=True)
class ShardInfo:
    """One shard file, its row count and (from a manifest) its sha256."""

    path: Path
    num_rows: int
    sha256: str | None = None

    def check_sha256(self) -> None:
        """`UsageError` unless the file's sha256 is the manifest's (no-op without one)."""
        if self.sha256 and sha256_file(self.path) != self.sha256:
            raise UsageError(f"{self.path} does not match the sha256 in {MANIFEST_FILE} (corrupted or replaced "
                             "after the run?); rerun the run with `resume`, or check it with `anchorprep validate`")


@dataclass(frozen=True)
class ShardSource:
    """The shards of a source, in order, and the settings JSON they carry.

    ``settings`` stays the JSON (a dict) because hand-copied or foreign shards may carry partial
    or no anchorprep settings; `grid` and `label_map` are what the datasets need from it.
    """

    shards: tuple[ShardInfo, ...]
    settings: dict

    @property
    def num_rows(self) -> int:
        return sum(s.num_rows for s in self.shards)

    @property
    def grid(self) -> FrameGrid | None:
        """The shards' frame grid, or ``None`` for shards written without anchorprep settings."""
        grid = self.settings.get("grid")
        return None if grid is None else FrameGrid(**grid)

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.settings.get("label_map", {}))


def _footer(path: Path) -> tuple[int, dict]:
    try:
        handle = parquet_file(path)
    except Exception as exc:  # a truncated or foreign file: say which one
        raise UsageError(f"cannot read shard {path}: {exc}") from exc
    return handle.metadata.num_rows, read_settings(handle.schema_arrow)


def _check_compatible(first: tuple[Path, dict], other: tuple[Path, dict]) -> None:
    for key in ("grid", "label_map"):
        if first[1].get(key) != other[1].get(key):
            raise UsageError(
                f"shards disagree on {key}: {first[0]} has {first[1].get(key)!r}, "
                f"{other[0]} has {other[1].get(key)!r}; read them as separate datasets"
            )


def _from_files(paths: list[Path]) -> ShardSource:
    if not paths:
        raise UsageError("no shard files given")
    shards, settings = [], []
    for path in paths:
        if not path.is_file():
            raise UsageError(f"shard {path} does not exist")
        rows, shard_settings = _footer(path)
        shards.append(ShardInfo(path, rows))
        settings.append((path, shard_settings))
    for other in settings[1:]:
        _check_compatible(settings[0], other)
    return ShardSource(tuple(shards), settings[0][1])


def _from_manifest(folder: Path) -> ShardSource:
    run = open_run(folder)
    shards = [ShardInfo(path, entry.rows, entry.sha256 or None) for entry, path in zip(run.shards, run.shard_paths)]
    if not shards:
        raise UsageError(f"{run.folder.manifest_file} lists no shards")
    return ShardSource(tuple(shards), run.settings.to_dict())


def open_source(source: Source) -> ShardSource:
    """Resolve a folder, a shard file or a list of shard files to a `ShardSource`."""
    if isinstance(source, ShardSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = location(source)
        if path.is_dir():
            folder = RunFolder(path)
            if folder.manifest_file.is_file():
                return _from_manifest(path)
            files = folder.shard_files() or folder.legacy_shard_files()
            if not files:
                raise UsageError(f"{path} holds neither {MANIFEST_FILE} nor {DATA_DIR}/{SHARD_GLOB} files")
            return _from_files(files)
        return _from_files([path])
    return _from_files([location(p) for p in source])
