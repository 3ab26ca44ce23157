"""Refuse named pipes and devices before anything opens them.

Opening a FIFO for reading blocks until a writer appears, and a device such as ``/dev/zero``
never ends, so an item pointing at one would hang its run. Every per-item reader calls
`refuse_special_file` first; missing files and folders are left to the reader, which names them.
"""

from __future__ import annotations

import os
import stat

from anchorprep.errors import InputError

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_file_kind(path: str | os.PathLike[str]) -> str | None:
    """What `path` is when it exists but is neither a regular file nor a folder, else None
    (always None for a URL: object stores hold only objects)."""
    if not isinstance(path, (str, bytes, os.PathLike)) or "://" in str(path):
        return None
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, a symlink loop, a NUL in the name: the reader says so
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None)


def refuse_special_file(path: str | os.PathLike[str]) -> None:
    """`InputError` when `path` is a FIFO, socket or device (see the module docstring)."""
    kind = special_file_kind(path)
    if kind is not None:
        raise InputError(f"not a regular file: it is {kind}; give a file (copy the stream to one first)",
                         os.fspath(path))
