"""Atomic file writes: a crash never leaves a half-written shard or manifest visible."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARD_COMPRESSION = "zstd"


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


def write_atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename to ``path``.

    The temporary name starts with a dot and ends in ``.tmp``, so no reader globbing for shards
    (``*.parquet``) ever sees it; a crash leaves at most such a temporary behind.
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_atomic(path, write)


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """Write one shard as a single row group (deterministic bytes for the same table)."""
    write_atomic(
        path,
        lambda tmp: pq.write_table(
            table, tmp, compression=SHARD_COMPRESSION, row_group_size=max(1, table.num_rows)
        ),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
