"""The run folder, in one place: its file names, its JSON files as typed objects, its rows.

Layout of an output folder (docs/FORMAT.md, "The run folder")::

    data/anchors-00000-of-00012.parquet ...   the shards, alone in their folder
    manifest.json  errors.jsonl  report.json
    .anchorprep/run.json                      the run's settings (written first; checked on resume)
    .anchorprep/done/00000.json               one summary per finished shard: rows, sha256, errors, stats
    .anchorprep/lock, setup.lock              flock(2) targets: a run holds ``lock`` shared while it runs
                                              (object storage: ``setup.lock`` is a conditional-put object)

The shards have ``data/`` to themselves because that is the one layout every common Parquet
reader opens from a folder path: polars refuses a folder holding any file that is not Parquet
(hidden or ``_``-prefixed ones included) and Hugging Face ``datasets`` reads ``_``-prefixed JSON
as data, so side files beside the shards break one reader or another, whatever their names.
pandas, pyarrow.dataset, polars, DuckDB and ``datasets`` all read ``OUT/data``.

Runs written by anchorprep 0.1.0 kept the shards beside ``manifest.json`` (the *legacy* layout);
their manifests list bare file names, so they are read as before, but never resumed or written
into (`RunFolder.legacy`).

Every module that reads or writes a run folder names its files through `RunFolder` and reads its
JSON through `RunSettings`, `RunManifest`, `RunReport`, `ShardSummary` and `ItemError`, whose
``to_dict()`` is exactly the JSON written (files are written with sorted keys, so
``from_dict(d).to_dict() == d`` for every file anchorprep writes). `open_run` opens a finished
run; `list_column` is the one place a list column is unpacked into ``(offsets, values)``.

A run folder may be a URL (``s3://bucket/run``, any fsspec protocol; `anchorprep.storage`):
``RunFolder.path`` is then a `StoragePath`. Every file is written whole and published in one PUT
(shards/io.py), shards before their done markers, the manifest last; how the folder is claimed
there is `claim_run`'s docstring.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anchorprep.version import __version__
from anchorprep.anchors import BACKGROUND, TargetWindow
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.shards.io import write_json_atomic
from anchorprep.shards.schema import SCHEMA_VERSION
from anchorprep.storage import EXTRAS as BUCKET_PROTOCOLS
from anchorprep.storage import Location, StoragePath, arrow_filesystem, create_exclusive, location

SHARD_PREFIX = "anchors-"
SHARD_GLOB = f"{SHARD_PREFIX}*.parquet"
DATA_DIR = "data"
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
REPORT_FILE = "report.json"
STATE_DIR = ".anchorprep"
RUN_SETTINGS_FILE = f"{STATE_DIR}/run.json"
DONE_DIR = f"{STATE_DIR}/done"
RUN_LOCK_FILE = f"{STATE_DIR}/lock"
SETUP_LOCK_FILE = f"{STATE_DIR}/setup.lock"
TIME_REFERENCE = "seconds from the start of the utterance (segment), not the recording"


def shard_name(index: int, count: int) -> str:
    """``anchors-{index:05d}-of-{count:05d}.parquet``."""
    return f"{SHARD_PREFIX}{index:05d}-of-{count:05d}.parquet"


def shard_file(index: int, count: int) -> str:
    """``data/anchors-{index:05d}-of-{count:05d}.parquet``: a shard's path in the run folder, as
    the manifest, the done markers and errors.jsonl name it."""
    return f"{DATA_DIR}/{shard_name(index, count)}"


def shard_count(items: int, shard_size: int) -> int:
    """Shards planned for ``items`` input items: ``max(1, ceil(items / shard_size))``."""
    return max(1, -(-items // shard_size))


def settings_hash(settings: Mapping[str, Any]) -> str:
    """sha256 of the settings JSON (sorted keys), ignoring any stored ``settings_sha256``."""
    body = {k: v for k, v in settings.items() if k != "settings_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _plain(value):
    """``value`` as the JSON reader gives it back (tuples become lists)."""
    return json.loads(json.dumps(value))


# ------------------------------------------------------------------------------------------------
# The JSON files


@dataclass(frozen=True)
class InputsFingerprint:
    """Count and sha256 of a run's input item table (columns and values, in order)."""

    count: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputsFingerprint":
        return cls(int(data["count"]), str(data["sha256"]))


#: Keys of the settings JSON that `RunSettings` holds as fields; the rest is the job's own block.
_SETTINGS_FIELDS = ("schema_version", "tool", "tool_version", "command", "time_reference", "shard_size",
                    "passthrough_columns", "inputs", "grid", "anchor_rule", "label_map", "targets", "config",
                    "settings_sha256")


@dataclass(frozen=True)
class RunSettings:
    """What ``.anchorprep/run.json`` and the manifest's ``settings`` hold: every option that
    shapes the output, so a run explains (and can repeat) itself.

    ``job`` holds the command's own settings (``source``, the ``align``/``vad``/``accel`` blocks,
    ``merged_runs``, ``combine``, ...) as written; ``config`` the command's effective options.
    ``settings_sha256`` is `settings_hash` of the rest; resume compares it.
    """

    command: str
    grid: FrameGrid
    anchor_rule: str
    label_map: Mapping[str, int]
    targets: Mapping[str, Any]
    inputs: InputsFingerprint
    shard_size: int
    passthrough_columns: tuple[str, ...] = ()
    job: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    tool: str = "anchorprep"
    tool_version: str = __version__
    time_reference: str = TIME_REFERENCE
    settings_sha256: str = ""

    @classmethod
    def build(cls, command: str, job_settings: Mapping[str, Any], inputs: InputsFingerprint, shard_size: int,
              passthrough_columns: Sequence[str], config: Mapping[str, Any] | None = None) -> "RunSettings":
        """The settings of a new run, hashed (``job_settings`` is ``Job.settings()``)."""
        data = {
            "schema_version": SCHEMA_VERSION, "tool": "anchorprep", "tool_version": __version__, "command": command,
            "time_reference": TIME_REFERENCE, "shard_size": shard_size,
            "passthrough_columns": list(passthrough_columns), "inputs": inputs.to_dict(), **job_settings,
        }
        if config:
            data["config"] = config
        data = _plain(data)
        data["settings_sha256"] = settings_hash(data)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSettings":
        """Parse the settings JSON; `UsageError` naming the first missing or unusable key."""
        try:
            return cls(
                command=str(data["command"]), grid=FrameGrid(**data["grid"]), anchor_rule=str(data["anchor_rule"]),
                label_map=dict(data["label_map"]), targets=dict(data["targets"]),
                inputs=InputsFingerprint.from_dict(data["inputs"]), shard_size=int(data["shard_size"]),
                passthrough_columns=tuple(data.get("passthrough_columns", ())),
                job={k: v for k, v in data.items() if k not in _SETTINGS_FIELDS},
                config=data.get("config"), schema_version=data["schema_version"], tool=data["tool"],
                tool_version=data["tool_version"], time_reference=data["time_reference"],
                settings_sha256=data["settings_sha256"],
            )
        except KeyError as exc:
            raise UsageError(f"the run settings lack {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"unusable run settings: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema_version": self.schema_version, "tool": self.tool, "tool_version": self.tool_version,
            "command": self.command, "time_reference": self.time_reference, "shard_size": self.shard_size,
            "passthrough_columns": list(self.passthrough_columns), "inputs": self.inputs.to_dict(),
            "grid": self.grid.to_dict(), "anchor_rule": self.anchor_rule, "label_map": dict(self.label_map),
            "targets": dict(self.targets), **self.job, "settings_sha256": self.settings_sha256,
        }
        if self.config:
            data["config"] = self.config
        return data

    @property
    def planned_shards(self) -> int:
        return shard_count(self.inputs.count, self.shard_size)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels (not background) in class-id order."""
        return tuple(sorted((label for label in self.label_map if label != BACKGROUND), key=self.label_map.get))

    @property
    def window(self) -> TargetWindow | None:
        """The positive window of a window-target run; None when targets are something else (vad)."""
        if "positive_window" not in self.targets:
            return None
        lo, hi = self.targets["positive_window"]
        return TargetWindow(int(lo), int(hi), int(self.targets.get("guard", 0)))

    @property
    def vad_targets(self) -> bool:
        return self.targets.get("mode") == "vad"


@dataclass(frozen=True)
class ItemError:
    """One failed input item: one ``errors.jsonl`` line (``shard`` is set there, not in a summary)."""

    utt_id: str
    row: int
    path: str
    stage: str
    reason: str
    shard: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # errors.jsonl lines have always listed these keys sorted, then ``shard`` (they were copied
        # from the sorted summary JSON); kept so the file's bytes do not change.
        data = {"path": self.path, "reason": self.reason, "row": self.row, "stage": self.stage, "utt_id": self.utt_id}
        if self.shard is not None:
            data["shard"] = self.shard
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ItemError":
        """Lenient: missing fields read as empty (`validate` is what checks the lines)."""
        return cls(data.get("utt_id", ""), data.get("row", -1), data.get("path", ""), data.get("stage", ""),
                   data.get("reason", ""), data.get("shard"))


@dataclass(frozen=True)
class ShardSummary:
    """``.anchorprep/done/NNNNN.json``: one finished shard (written after its Parquet file);
    ``file`` is its path relative to the run folder (`shard_file`)."""

    shard: int
    file: str
    rows: int
    items: int
    sha256: str
    errors: tuple[ItemError, ...] = ()
    stats: Mapping[str, int] = field(default_factory=dict)
    #: sha256 of the shard's input files' (path, size, mtime); resume reruns the shard when it changed.
    inputs_stamp: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "file": self.file, "rows": self.rows, "items": self.items,
                "sha256": self.sha256, "errors": [e.to_dict() for e in self.errors], "stats": dict(self.stats),
                "inputs_stamp": self.inputs_stamp}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ShardSummary":
        return cls(data["shard"], data["file"], data["rows"], data["items"], data["sha256"],
                   tuple(ItemError.from_dict(e) for e in data["errors"]), dict(data["stats"]),
                   str(data.get("inputs_stamp", "")))


@dataclass(frozen=True)
class ShardEntry:
    """One shard as the manifest lists it; ``file`` is relative to the run folder (`shard_file`)."""

    file: str
    rows: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ShardEntry":
        return cls(str(data["file"]), int(data["rows"]), str(data.get("sha256", "")))


#: report.json keys `RunReport` holds as fields; every other key is a stat counter.
_REPORT_FIELDS = ("in", "written", "failed", "failed_by_stage", "skipped")


@dataclass(frozen=True)
class RunReport:
    """``report.json``: item counts and the jobs' stat counters summed over the shards.

    ``items_in`` is the JSON's ``in``; ``counters`` holds the rest (``utterances``,
    ``positives``, ``negatives``, ``anchors``, ``anchors_clipped_after_end``,
    ``anchors_from_<source>``, ...), which the properties read with 0 for absent.
    """

    items_in: int
    written: int
    failed: int
    failed_by_stage: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0
    counters: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"in": self.items_in, "written": self.written, "failed": self.failed,
                "failed_by_stage": dict(self.failed_by_stage), "skipped": self.skipped, **self.counters}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunReport":
        return cls(data["in"], data["written"], data["failed"], dict(data.get("failed_by_stage", {})),
                   data.get("skipped", 0), {k: v for k, v in data.items() if k not in _REPORT_FIELDS})

    def counter(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def positives(self) -> int:
        return self.counter("positives")

    @property
    def negatives(self) -> int:
        return self.counter("negatives")

    @property
    def anchors(self) -> int:
        return self.counter("anchors")


@dataclass(frozen=True)
class RunManifest:
    """``manifest.json``: the settings and the shards in order; written when every shard is done."""

    settings: RunSettings
    shards: tuple[ShardEntry, ...]
    errors_file: str = ERRORS_FILE
    report_file: str = REPORT_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.settings.schema_version, "settings": self.settings.to_dict(),
            "settings_sha256": self.settings.settings_sha256, "tool_version": self.settings.tool_version,
            "shards": [s.to_dict() for s in self.shards], "errors_file": self.errors_file,
            "report_file": self.report_file,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunManifest":
        if not isinstance(data, Mapping) or not isinstance(data.get("settings"), Mapping):
            raise UsageError("not an anchorprep manifest (no settings)")
        try:
            shards = tuple(ShardEntry.from_dict(s) for s in data.get("shards", []))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UsageError("the manifest's shards must be a list of {file, rows, sha256}") from None
        return cls(RunSettings.from_dict(data["settings"]), shards, data.get("errors_file", ERRORS_FILE),
                   data.get("report_file", REPORT_FILE))


def read_json(path: Location | str):
    return json.loads(location(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------
# The folder


@dataclass(frozen=True)
class RunFolder:
    """The paths of a run folder (finished or not); the one place its layout is spelled."""

    path: Location

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", location(self.path))

    def shard(self, index: int, count: int) -> Path:
        """Where shard ``index`` of ``count`` is written (always the current layout)."""
        return self.path / shard_file(index, count)

    @property
    def data_dir(self) -> Path:
        return self.path / DATA_DIR

    def shard_files(self) -> list[Path]:
        """The shard files in ``data/``, sorted (whatever a manifest lists)."""
        return sorted(self.data_dir.glob(SHARD_GLOB))

    def legacy_shard_files(self) -> list[Path]:
        """Shard files directly in the folder, sorted: anchorprep 0.1.0's layout."""
        return sorted(self.path.glob(SHARD_GLOB))

    @property
    def is_data_dir(self) -> bool:
        """True when this is the ``data/`` folder of a run (someone gave ``OUT/data`` for ``OUT``)."""
        return self.path.name == DATA_DIR and (self.path.parent / MANIFEST_FILE).is_file()

    @property
    def legacy(self) -> bool:
        """True when the folder holds a run in anchorprep 0.1.0's layout (shards beside the
        manifest): readable, but a new run must not write into it (layouts would mix)."""
        return bool(self.legacy_shard_files())

    def shard_entry(self, index: int, count: int) -> str:
        """Shard ``index`` of ``count`` as this folder's manifest names it (bare in 0.1.0's layout)."""
        return shard_name(index, count) if self.legacy else shard_file(index, count)

    def found_shard_entries(self) -> list[str]:
        """The shard files present, in either layout, as paths relative to the folder."""
        return [p.relative_to(self.path).as_posix() for p in self.legacy_shard_files() + self.shard_files()]

    def temporary_files(self) -> list[Path]:
        """Leftovers of interrupted atomic writes (``.NAME.XXXXXXXX.tmp``) beside the shards and side files."""
        return sorted([*self.path.glob(".*.tmp"), *self.data_dir.glob(".*.tmp")])

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST_FILE

    @property
    def errors_file(self) -> Path:
        return self.path / ERRORS_FILE

    @property
    def report_file(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    @property
    def settings_file(self) -> Path:
        return self.path / RUN_SETTINGS_FILE

    @property
    def done_dir(self) -> Path:
        return self.path / DONE_DIR

    def done_file(self, index: int) -> Path:
        return self.done_dir / f"{index:05d}.json"

    @property
    def run_lock_file(self) -> Path:
        return self.path / RUN_LOCK_FILE

    @property
    def setup_lock_file(self) -> Path:
        return self.path / SETUP_LOCK_FILE

    def side_files(self) -> list[Path]:
        """Files a finished run has besides its shards (removed with them on overwrite)."""
        return [self.manifest_file, self.errors_file, self.report_file]

    def read_settings(self) -> RunSettings:
        """run.json as `RunSettings`; `UsageError` when it is unreadable or malformed."""
        try:
            data = read_json(self.settings_file)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.settings_file}: cannot read: {exc}") from None
        if not isinstance(data, Mapping):
            raise UsageError(f"{self.settings_file}: not a JSON object")
        return RunSettings.from_dict(data)

    def read_done(self, index: int) -> ShardSummary | None:
        """The shard's summary, None when absent; `UsageError` when unreadable (e.g. empty after
        a full disk): callers treat that shard as unfinished, so resume reruns it."""
        marker = self.done_file(index)
        if not marker.is_file():
            return None
        try:
            return ShardSummary.from_dict(read_json(marker))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{marker}: unreadable shard summary ({type(exc).__name__}: {exc})") from None

    def clear(self) -> None:
        """Remove a previous run: its shards, side files and state, but not the lock files (a
        waiting run holds them open). Any failure raises: a half-cleared folder is never reused."""
        for path in self.legacy_shard_files() + self.shard_files():
            path.unlink()
        for path in self.side_files():
            path.unlink(missing_ok=True)
        keep = {self.run_lock_file.name, self.setup_lock_file.name}
        if isinstance(self.state_dir, StoragePath):
            for child in self.state_dir.files():
                if child.name not in keep:
                    child.unlink()
            return
        if self.state_dir.is_dir() and not self.state_dir.is_symlink():
            for child in self.state_dir.iterdir():
                if child.name in keep:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


# ------------------------------------------------------------------------------------------------
# Claiming a folder for a run


class RunClaim:
    """A run's hold on its folder: a shared `flock` on ``.anchorprep/lock``, kept open until
    `release` (or the process's death: the OS drops the lock, so a killed run never leaves it stuck).
    On object storage there is nothing to hold (``fd`` None; see `claim_run`)."""

    def __init__(self, fd: int | None) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)


def _try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


#: Seconds after which an object-storage setup lock is taken to be left by a killed run.
STALE_SETUP_LOCK_S = 120.0


def claim_run(folder: RunFolder, settings: RunSettings, overwrite: bool = False) -> RunClaim:
    """Claim ``folder`` for a run with ``settings``; hold the returned claim while running.

    Protocol (both locks are ``flock(2)`` on files in the state dir, dropped by the OS when the
    process dies): under the exclusive *setup* lock (held for milliseconds) a run reads run.json.
    Same settings hash: it takes the *run* lock shared, so array tasks of one run work side by
    side. Anything else (no run.json, other settings with ``overwrite``) needs the run lock
    exclusively, i.e. no other run active: then the folder is cleared if asked, run.json written
    and the lock turned shared (safe: an exclusive lock is only ever taken under the setup lock,
    which this run holds). Other settings without ``overwrite``, an unreadable run.json without
    it, a symlinked state dir, or another active run where exclusivity is needed: `UsageError`.
    OSErrors (read-only folder, ...) propagate for the caller to word.

    On object storage (no flock) the *setup* lock is the object ``.anchorprep/setup.lock``,
    created by a conditional PUT (S3 ``If-None-Match: *``: of two runs setting up the folder at
    once exactly one succeeds) and deleted when setup is done; one older than
    `STALE_SETUP_LOCK_S` was left by a killed run and is taken over. The same checks then run,
    but there is no *run* lock: a run with other settings and ``overwrite`` started while an
    earlier run still writes shards is not detected (the README says so).
    """
    if isinstance(folder.path, StoragePath):
        return _claim_object_store(folder, settings, overwrite)
    path = folder.path
    if path.exists() and not path.is_dir():
        raise UsageError(f"`out` {path} is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    state = folder.state_dir
    if state.is_symlink():
        raise UsageError(f"{state} is a symlink: a run's state must live inside its folder; remove the link "
                         "(or use a new output folder)")
    if state.exists() and not state.is_dir():
        if not overwrite:
            raise UsageError(f"{state} is not a folder; pass `overwrite` to replace it")
        state.unlink()
    state.mkdir(exist_ok=True)
    setup = _open_lock(folder.setup_lock_file)
    try:
        fcntl.flock(setup, fcntl.LOCK_EX)
        run_fd = _open_lock(folder.run_lock_file)
        try:
            if _claim_locked(folder, settings, overwrite, lambda: not _try_flock(run_fd, fcntl.LOCK_EX)):
                fcntl.flock(run_fd, fcntl.LOCK_SH)  # cannot block: exclusive holders hold the setup lock, which is ours
        except BaseException:
            os.close(run_fd)
            raise
        return RunClaim(run_fd)
    finally:
        os.close(setup)


def _claim_object_store(folder: RunFolder, settings: RunSettings, overwrite: bool) -> RunClaim:
    path = folder.path
    bucket = StoragePath(path.protocol, path.key.split("/", 1)[0])
    try:
        if path.protocol in BUCKET_PROTOCOLS:
            bucket.is_dir()
    except FileNotFoundError:
        raise UsageError(f"`out` {path}: bucket {bucket} does not exist (create it first, or check the name)") from None
    if path.is_file():
        raise UsageError(f"`out` {path} is a file, not a folder")
    lock = folder.setup_lock_file
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}).encode()
    if not create_exclusive(lock, body):
        try:
            taken = float(json.loads(lock.read_bytes())["time"])
        except (OSError, ValueError, KeyError, TypeError):
            taken = 0.0  # vanished or unreadable meanwhile: treated as stale
        age = time.time() - taken
        if age < STALE_SETUP_LOCK_S:
            raise UsageError(f"another anchorprep run is setting up {path} (its {SETUP_LOCK_FILE} is {age:.0f} s old); "
                             f"rerun in a moment (a lock older than {STALE_SETUP_LOCK_S:.0f} s is taken over)")
        lock.unlink(missing_ok=True)
        if not create_exclusive(lock, body):
            raise UsageError(f"another anchorprep run is setting up {path} right now; rerun in a moment")
    try:
        _claim_locked(folder, settings, overwrite, lambda: False)
    finally:
        lock.unlink(missing_ok=True)
    return RunClaim(None)


def _claim_locked(folder: RunFolder, settings: RunSettings, overwrite: bool, other_run_active) -> bool:
    """The checks of `claim_run` under the setup lock; writes run.json for a new run. Returns
    True when the run lock must now be taken shared (``other_run_active()`` tried it exclusively)."""
    path = folder.path
    if folder.legacy and not overwrite:  # never mix 0.1.0's layout (shards beside the manifest) with data/
        raise UsageError(
            f"{path} holds a run in anchorprep 0.1.0's layout (shards beside {MANIFEST_FILE}); it stays readable, "
            "but a new run cannot write into it: use a new output folder, or pass `overwrite` to replace it")
    previous: Mapping[str, Any] | None = None
    unreadable = None
    if folder.settings_file.is_file():
        try:
            previous = read_json(folder.settings_file)
            if not isinstance(previous, Mapping):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            previous, unreadable = None, f"{type(exc).__name__}: {exc}"
    if previous is not None and previous.get("settings_sha256") == settings.settings_sha256 and not folder.legacy:
        return True
    active = other_run_active()
    busy = " (another anchorprep run is writing into it right now)" if active else ""
    if not overwrite:
        if unreadable is not None:
            raise UsageError(f"{folder.settings_file} is unreadable ({unreadable}){busy}; pass `overwrite` to start over")
        if previous is not None:
            current = settings.to_dict()
            changed = sorted(k for k in set(current) | set(previous)
                             if current.get(k) != previous.get(k) and k != "settings_sha256")
            raise UsageError(f"{path} holds a run with different settings (changed: {', '.join(changed) or 'none'})"
                             f"{busy}; use a new output folder, or pass `overwrite` to replace it")
        if folder.shard_files():
            raise UsageError(f"{path} holds shards from an unknown run{busy}; pass `overwrite` to replace them")
    if active:
        raise UsageError(f"another anchorprep run is writing into {path}; wait for it to finish, or use another "
                         "output folder")
    if overwrite:
        folder.clear()
    folder.done_dir.mkdir(parents=True, exist_ok=True)
    folder.data_dir.mkdir(exist_ok=True)
    write_json_atomic(folder.settings_file, settings.to_dict())
    return True


# ------------------------------------------------------------------------------------------------
# Rows


def list_column(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | list]:
    """A list column as ``(offsets, values)``: row ``i`` is ``values[offsets[i]:offsets[i+1]]``,
    ``offsets[0] == 0`` and ``values`` holds exactly the column's elements.

    Numeric values are a read-only numpy view of Arrow's values buffer (zero-copy unless nulls
    force a filled copy), strings a Python list; either way one object per column, not per row.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else (
            column.combine_chunks() if column.num_chunks else pa.array([], type=column.type))
    offsets = column.offsets.to_numpy()  # a sliced array's offsets index into the whole child array
    first, last = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
    child = column.values.slice(first, last - first)
    offsets = offsets - first if first else offsets
    if pa.types.is_string(child.type) or pa.types.is_large_string(child.type):
        return offsets, child.to_pylist()
    return offsets, child.to_numpy(zero_copy_only=not child.null_count)


def is_list_column(column: pa.Array | pa.ChunkedArray) -> bool:
    return pa.types.is_list(column.type) or pa.types.is_large_list(column.type)


def iter_rows(table: pa.Table, columns: Sequence[str] | None = None) -> Iterator[dict]:
    """Rows of a shard table as dicts: scalars as Python values, numeric list columns as numpy
    arrays (views), string list columns as lists."""
    names = list(columns) if columns is not None else table.column_names
    lists = {n: list_column(table.column(n)) for n in names if is_list_column(table.column(n))}
    scalars = {n: table.column(n).to_pylist() for n in names if n not in lists}
    for i in range(table.num_rows):
        row = {name: scalars[name][i] if name in scalars else None for name in names}
        for name, (offsets, values) in lists.items():
            row[name] = values[offsets[i]:offsets[i + 1]]
        yield row


# ------------------------------------------------------------------------------------------------
# A finished run


@dataclass(frozen=True)
class Run:
    """A finished run: its folder and its manifest (the settings and shards in order)."""

    folder: RunFolder
    manifest: RunManifest

    @property
    def path(self) -> Location:
        return self.folder.path

    @property
    def settings(self) -> RunSettings:
        return self.manifest.settings

    @property
    def shards(self) -> tuple[ShardEntry, ...]:
        return self.manifest.shards

    @property
    def shard_paths(self) -> list[Location]:
        return [self.path / s.file for s in self.shards]

    @property
    def num_rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def report(self) -> RunReport | None:
        """report.json, or None when it is missing or unreadable (`validate` says why)."""
        try:
            return RunReport.from_dict(read_json(self.path / self.manifest.report_file))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def errors(self) -> list[ItemError]:
        """The well-formed lines of errors.jsonl (malformed ones are skipped; `validate` reports them)."""
        path = self.path / self.manifest.errors_file
        if not path.is_file():
            return []
        lines = []
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                lines.append(ItemError.from_dict(value))
        return lines

    def read_shard(self, shard: ShardEntry | str, columns: Sequence[str] | None = None) -> pa.Table:
        name = shard.file if isinstance(shard, ShardEntry) else shard
        source, filesystem = arrow_filesystem(self.path / name)
        return pq.read_table(source, columns=None if columns is None else list(columns), filesystem=filesystem)

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict]:
        """Every row, in shard order, one shard in memory at a time (see `iter_rows`)."""
        for shard in self.shards:
            yield from iter_rows(self.read_shard(shard, columns), columns)


def check_folder(path: str | os.PathLike) -> Location:
    """``path`` as a `Path` (or `StoragePath`); `UsageError` unless it is an existing folder."""
    path = location(path)
    if not path.exists():
        raise UsageError(f"{path}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder (give the output folder of an anchorprep run)")
    return path


def shard_name_problem(name: str) -> str | None:
    """Why a manifest's shard file name is unusable (None when fine): it must name a file in the
    run's ``data/`` folder (or, in 0.1.0's layout, in the run folder itself), so a hostile manifest
    cannot point readers outside it."""
    base = name[len(DATA_DIR) + 1:] if name.startswith(DATA_DIR + "/") else name
    if not base or base in (".", "..") or Path(base).name != base or "\\" in base or base.startswith("."):
        return f"shard name {name!r} is not a plain file name in the run's {DATA_DIR}/ folder"
    return None


def _check_listed_shards(folder: RunFolder, manifest: RunManifest) -> None:
    """What every reader of a run needs before it starts: each listed shard is a plain name in
    the folder, exists, and has a readable Parquet footer with the listed row count (`validate`
    checks the rest, hashes included)."""
    for entry in manifest.shards:
        problem = shard_name_problem(entry.file)
        if problem is not None:
            raise UsageError(f"{folder.manifest_file}: {problem}")
        path = folder.path / entry.file
        if not path.is_file():
            raise UsageError(f"{folder.manifest_file} lists {entry.file}, which is missing; run "
                             "`anchorprep validate` on the folder")
        try:
            source, filesystem = arrow_filesystem(path)
            rows = pq.ParquetFile(source, filesystem=filesystem).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - any unreadable footer is the same finding
            reason = " ".join(str(exc).split())
            raise UsageError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {reason}); run "
                             "`anchorprep validate` on the folder") from None
        if rows != entry.rows:
            raise UsageError(f"{path} holds {rows} rows, {MANIFEST_FILE} says {entry.rows}; run "
                             "`anchorprep validate` on the folder")


def open_run(path: str | os.PathLike) -> Run:
    """Open the finished run in ``path``; `UsageError` (one line: what to fix) when the folder
    is missing, the run is unfinished, its manifest is unreadable or malformed, or a listed
    shard is missing, outside the folder, or has an unreadable footer."""
    folder = RunFolder(check_folder(path))
    if not folder.manifest_file.is_file():
        hint = (" (the run is unfinished: run `anchorprep assemble` once every shard is done)"
                if folder.settings_file.is_file() else
                f" (give the run folder {folder.path.parent}, not its {DATA_DIR}/)" if folder.is_data_dir else
                " (is this the output folder of an anchorprep run?)")
        raise UsageError(f"{folder.path}: no {MANIFEST_FILE}{hint}")
    try:
        data = read_json(folder.manifest_file)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{folder.manifest_file}: cannot read: {exc}") from None
    try:
        manifest = RunManifest.from_dict(data)
    except UsageError as exc:
        raise UsageError(f"{folder.manifest_file}: {exc}") from None
    _check_listed_shards(folder, manifest)
    return Run(folder, manifest)


__all__ = [
    "DATA_DIR", "DONE_DIR", "ERRORS_FILE", "MANIFEST_FILE", "REPORT_FILE", "RUN_SETTINGS_FILE", "SHARD_GLOB",
    "STATE_DIR", "InputsFingerprint", "ItemError", "Run", "RunClaim", "RunFolder", "RunManifest", "RunReport",
    "RunSettings", "ShardEntry", "ShardSummary", "check_folder", "claim_run", "iter_rows", "list_column", "open_run",
    "settings_hash", "shard_count", "shard_file", "shard_name", "shard_name_problem",
]
