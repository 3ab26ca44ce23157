"""Atomic file writes: a crash never leaves a half-written shard or manifest visible.

Locally a file is written to a temporary beside its destination, fsynced and renamed. On object
storage (`anchorprep.storage.StoragePath`) it is written to a local temporary and uploaded whole
in one PUT, which the store publishes atomically (no rename there: a copy is not atomic).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from anchorprep.storage import Location, StoragePath, local_staging, sha256_of

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SHARD_COMPRESSION = "zstd"
LOCAL = pafs.LocalFileSystem()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, exclusively created ``.{name}.XXXXXXXX.tmp`` beside ``path``, mode 0666 & ~umask.

    (`tempfile.mkstemp` creates 0600 files, and the rename kept that mode, so shards and
    manifests were unreadable to the group and other users whatever the umask said.)
    """
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {path}")


def write_atomic(path: Location, write) -> str:
    """Call ``write(tmp_path)``, fsync, then rename to ``path``; return the sha256 of the bytes.

    The temporary name starts with a dot and ends in ``.tmp``, so no reader globbing for shards
    (``*.parquet``) ever sees it; a crash leaves at most such a temporary behind. On object
    storage the temporary is local and uploaded whole to ``path``.
    """
    if isinstance(path, StoragePath):
        with local_staging(path) as tmp:
            write(tmp)
            digest = sha256_file(Path(tmp))
        return digest
    path = Path(path)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        digest = sha256_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return digest


def write_text_atomic(path: Location, text: str) -> str:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return write_atomic(path, write)


def write_json_atomic(path: Location, obj) -> str:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet_atomic(path: Location, table: pa.Table) -> str:
    """Write one shard as a single row group (deterministic bytes for the same table); return its sha256."""
    return write_atomic(
        path,
        lambda tmp: pq.write_table(
            table, os.path.abspath(tmp), compression=SHARD_COMPRESSION, row_group_size=max(1, table.num_rows),
            filesystem=LOCAL,  # explicitly local: pyarrow would read ``run:v2/...`` as a URI
        ),
    )


def sha256_file(path: Location) -> str:
    return sha256_of(path)
