"""Where anchorprep reads and writes: local paths and fsspec URLs (``s3://``, ``gs://``, ``az://``, ...).

The one place that decides what a path string means. `location` turns a path into either a
`pathlib.Path` (local) or a `StoragePath` (an object on an fsspec filesystem); the rest of
anchorprep calls the few pathlib methods both have, and this module's functions for the rest.

* A string is a URL only when it starts with ``<protocol>://`` and fsspec knows the protocol
  (``fsspec.available_protocols()``). Everything else is a local path, unchanged: ``run:v2``,
  ``C:\\data``, ``a:b/c``. ``file://`` URLs become local paths (so local runs keep rename and
  flock). An unknown ``<scheme>://`` is refused (`UsageError`): taken as a local path it would
  collapse to ``scheme:/...`` and create a stray local tree.
* The filesystem libraries are optional extras: a missing one is a one-line `UsageError` naming
  the extra (``pip install 'anchorprep[s3]'``).
* Credentials and endpoints come from each library's usual environment and config, nothing
  from anchorprep: for S3, botocore's chain (``AWS_ACCESS_KEY_ID``/``AWS_PROFILE``/instance
  roles, ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store), and
  fsspec's own config: any ``FSSPEC_S3_<ARG>`` variable (e.g. ``FSSPEC_S3_ENDPOINT_URL``) or
  ``FSSPEC_S3='{"json": "kwargs"}'`` becomes a keyword argument of ``S3FileSystem`` (see
  fsspec/config.py ``set_conf_env``; s3fs passes ``endpoint_url=None`` through to botocore,
  which then reads ``AWS_ENDPOINT_URL`` itself: s3fs/core.py ``set_session``, fsspec/s3fs
  commit b7ec8db5170d8a9afeeadc9efb7b4292a335bf6b).
* `StoragePath` has no ``__fspath__``: handing one to ``open()`` or ``os.*`` fails loudly rather
  than writing a local ``s3:/bucket/...`` tree.

Errors from the filesystem libraries arrive as `OSError` subclasses (s3fs maps S3's
``NoSuchKey``/``NoSuchBucket`` to `FileNotFoundError` and ``AccessDenied`` to `PermissionError`),
so per-item readers that catch `OSError` turn them into ``errors.jsonl`` lines as for local files.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import IO, Iterable, Iterator, Union

from anchorprep.errors import UsageError

#: ``<protocol>://`` at the start of a string (RFC 3986 scheme characters).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: The pip extra that installs each protocol's filesystem library.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure",
          "adl": "azure"}
#: Audio is read through a block cache of this block size: a segment of a long recording fetches
#: its header block and the blocks holding the segment, not the whole object.
AUDIO_BLOCK_SIZE = 1 << 18


def _known_protocols() -> set[str]:
    import fsspec

    return set(fsspec.available_protocols())


def url_protocol(value) -> str | None:
    """The fsspec protocol of ``value`` when it is a URL (see the module docstring), else None;
    `UsageError` for an unknown ``<scheme>://``."""
    if isinstance(value, StoragePath):
        return value.protocol
    if not isinstance(value, str):
        return None
    match = _URL.match(value)
    if match is None:
        return None
    protocol = match.group(1).lower()
    if protocol not in _known_protocols():
        raise UsageError(f"{value}: unknown storage protocol {protocol!r} (a local path cannot hold '://'; "
                         "give a local path or a URL such as s3://bucket/key)")
    return protocol


def is_url(value) -> bool:
    """True for a `StoragePath` or a URL string other than ``file://``."""
    protocol = url_protocol(value)
    return protocol is not None and protocol not in ("file", "local")


Location = Union[Path, "StoragePath"]


def location(value: "str | os.PathLike[str] | StoragePath") -> Location:
    """``value`` as a `StoragePath` (a URL) or a `Path` (a local path, ``file://`` URLs included)."""
    if isinstance(value, (Path, StoragePath)):
        return value
    text = os.fspath(value)
    protocol = url_protocol(text)
    if protocol is None:
        return Path(text)
    if protocol in ("file", "local"):
        return Path(text[len(protocol) + 3:] or "/")
    return StoragePath(text)


def filesystem(protocol: str):
    """The fsspec filesystem of ``protocol`` (fsspec caches one instance per process and options);
    `UsageError` naming the extra to install when its library is missing."""
    import fsspec

    try:
        return fsspec.filesystem(protocol)
    except ImportError as exc:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'anchorprep[{extra}]'" if extra else f"install the fsspec implementation of {protocol}://"
        raise UsageError(f"{protocol}:// paths need a filesystem library that is not installed ({exc}); {hint}") from None


class StoragePath:
    """A file or folder on an fsspec filesystem, with the pathlib methods anchorprep uses.

    ``str()`` is the URL. Folders are key prefixes: `mkdir` does nothing, `is_dir` is true for a
    prefix holding objects. `is_file`/`exists`/`is_dir` return False only when the object is
    missing; any other failure (no permission, no bucket, no network) raises its `OSError`.
    """

    __slots__ = ("protocol", "key")

    def __init__(self, url: str, key: str | None = None) -> None:
        if key is None:
            protocol, _, rest = url.partition("://")
            protocol = protocol.lower()
            key = posixpath.normpath(rest).lstrip("/") if rest.strip("/") else ""
            if not key or key == ".":
                raise UsageError(f"{url}: a {protocol}:// URL needs a bucket (or container) name, e.g. {protocol}://bucket/folder")
        else:
            protocol = url
        self.protocol, self.key = protocol, key.rstrip("/")

    # -- naming

    def __str__(self) -> str:
        return f"{self.protocol}://{self.key}"

    def __repr__(self) -> str:
        return f"StoragePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, StoragePath) and (self.protocol, self.key) == (other.protocol, other.key)

    def __lt__(self, other: "StoragePath") -> bool:
        return (self.protocol, self.key) < (other.protocol, other.key)

    def __hash__(self) -> int:
        return hash((self.protocol, self.key))

    def __truediv__(self, other) -> "StoragePath":
        other = os.fspath(other) if not isinstance(other, str) else other
        return StoragePath(self.protocol, posixpath.normpath(posixpath.join(self.key, other)))

    def __reduce__(self):
        return (StoragePath, (str(self),))

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def suffixes(self) -> list[str]:
        return PurePosixPath(self.name).suffixes

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parent(self) -> "StoragePath":
        parent = posixpath.dirname(self.key)
        return StoragePath(self.protocol, parent) if parent else self

    def with_suffix(self, suffix: str) -> "StoragePath":
        return StoragePath(self.protocol, str(PurePosixPath(self.key).with_suffix(suffix)))

    def relative_to(self, other: "StoragePath") -> PurePosixPath:
        return PurePosixPath(self.key).relative_to(other.key)

    def as_posix(self) -> str:
        return str(self)

    def resolve(self) -> "StoragePath":
        return self

    def is_symlink(self) -> bool:
        return False

    # -- the filesystem

    @property
    def fs(self):
        return filesystem(self.protocol)

    def info(self) -> dict | None:
        """The object's metadata (``size``, ``type``, ETag, ...), None when it is missing."""
        try:
            return self.fs.info(self.key)
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        return self.info() is not None

    def is_file(self) -> bool:
        info = self.info()
        return info is not None and info.get("type") == "file"

    def is_dir(self) -> bool:
        if "/" not in self.key:  # a bucket: its listing says whether it exists and may be read
            self.fs.ls(self.key, detail=False)
            return True
        info = self.info()
        return info is not None and info.get("type") == "directory"

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: object stores have no folders (a key's prefix is its folder)."""

    def open(self, mode: str = "rb", **kwargs) -> IO:
        return self.fs.open(self.key, mode, **kwargs)

    def read_bytes(self) -> bytes:
        """The whole object in one GET (``start=0``: without a range s3fs first asks for the size
        with a HEAD, to split large objects into concurrent ranges)."""
        return self.fs.cat_file(self.key, start=0)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def iterdir(self) -> Iterator["StoragePath"]:
        for entry in self.fs.ls(self.key, detail=False):
            yield StoragePath(self.protocol, entry)

    def glob(self, pattern: str) -> list["StoragePath"]:
        """Objects directly in this folder matching ``pattern``: one listing."""
        return [StoragePath(self.protocol, p) for p in self.fs.glob(f"{self.key}/{pattern}")]

    def files(self) -> list["StoragePath"]:
        """Every object under this folder, recursively, sorted: one listing (``fs.find``)."""
        return sorted(StoragePath(self.protocol, p) for p in self.fs.find(self.key))

    def remove_tree(self) -> None:
        self.fs.rm(self.key, recursive=True)

    def put(self, local: str | os.PathLike[str]) -> None:
        """Upload a local file as this object, whole: one PUT (a multipart upload above s3fs's
        100 MiB threshold), which S3 publishes atomically when it completes."""
        self.fs.put_file(os.fspath(local), self.key)


# ------------------------------------------------------------------------------------------------
# Functions on either kind of path


def list_files(folder: Location) -> list[Location]:
    """Every regular file under ``folder``, recursively, sorted (one listing on object storage).
    FIFOs, devices and folders are left out."""
    if isinstance(folder, StoragePath):
        return folder.files()
    return sorted(p for p in folder.rglob("*") if p.is_file())


def item_location(path) -> Location:
    """`location` for a path an input item names: an unusable URL is that item's problem, so it
    raises `FileNotFoundError` (which per-item readers turn into an ``errors.jsonl`` line), not
    `UsageError` (which would stop the run)."""
    try:
        return location(path)
    except UsageError as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc)) from None


def read_bytes(path) -> bytes:
    """A whole file: ``open(path, 'rb').read()`` locally, one GET on object storage."""
    data = read_regular_bytes(path)
    return item_location(path).read_bytes() if data is None else data


#: Opening never blocks (a file replaced by a FIFO after the stat) nor takes a terminal.
_PLAIN_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NOCTTY", 0))


def _plain_local(path) -> bool:
    """Whether ``path`` is a local path `location` keeps as it is, so ``os`` calls on the string
    mean what they mean on ``location(path)``: a non-empty `str` without ``://`` that does not
    end in ``/`` or ``/.`` (which `Path` drops, so ``os.stat("file/")`` would fail where
    ``location`` stats the file)."""
    return type(path) is str and bool(path) and "://" not in path and not path.endswith(("/", "/."))


def read_regular_bytes(path) -> bytes | None:
    """The bytes of ``path`` when it is a plain local path naming a regular file: a `str` that
    `location` keeps as it is (no ``://``, not ending in ``/`` or ``/.``, which `Path` would
    rewrite), read with one stat, open and read, no `Path`. None for anything else (a URL, a
    missing, unreadable or special file, a folder): the caller's usual path then names it."""
    if not _plain_local(path):
        return None
    try:
        stat = os.stat(path)
        if not S_ISREG(stat.st_mode):
            return None
        fd = os.open(path, _PLAIN_READ_FLAGS)
    except (OSError, ValueError):
        return None
    try:
        # The stat's size exactly (no buffer to shrink), then to the end as ``read()`` does:
        # one byte is enough to see the end (b"", no large buffer allocated for it).
        parts = [os.read(fd, stat.st_size), os.read(fd, 1)]
        while parts[-1]:  # the file grew since the stat (or reports no size: /proc)
            parts.append(os.read(fd, 1 << 16))
    except OSError:
        return None
    finally:
        os.close(fd)
    stamps = getattr(_READ_STAMPS, "stamps", None)
    if stamps is not None:
        stamps[path] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return parts[0] if len(parts) == 2 else b"".join(parts)


_READ_STAMPS = threading.local()


@contextmanager
def stamps_of_reads() -> Iterator[dict[str, str]]:
    """While open, `read_regular_bytes` in this thread records the `file_stamp` (``size:mtime_ns``)
    of each file it reads, from the stat it opened the file after: the file's stamp when its bytes
    were read, without another stat."""
    previous = getattr(_READ_STAMPS, "stamps", None)
    stamps = _READ_STAMPS.stamps = {}
    try:
        yield stamps
    finally:
        _READ_STAMPS.stamps = previous


def open_input(path, mode: str = "rb", encoding: str | None = None) -> IO:
    """A file object for reading ``path`` (text modes too, with ``encoding``)."""
    where = item_location(path)
    text = {} if "b" in mode else {"encoding": encoding}
    if isinstance(where, StoragePath):
        return where.open(mode, **text)
    return open(where, mode, **text)


@contextmanager
def local_copy(path) -> Iterator[Path]:
    """A local file holding ``path``'s bytes: the file itself when local, else a temporary
    download (same suffixes), removed afterwards. For readers that need a real file name."""
    where = item_location(path)
    if not isinstance(where, StoragePath):
        yield where
        return
    handle, tmp = tempfile.mkstemp(prefix=".anchorprep-", suffix="".join(where.suffixes))
    os.close(handle)
    try:
        where.fs.get_file(where.key, tmp)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


class _RecentObjects:
    """Per-process memory of recently used objects: their metadata (from `file_stamp`, so opening
    one needs no second HEAD) and the last few audio files left open with their block caches (an
    item's header read and sample read, or several segments of one recording, fetch each block
    once). Entries are dropped in a forked child: its filesystem instances are not the parent's."""

    def __init__(self, infos: int = 4096, handles: int = 4) -> None:
        self.max_infos, self.max_handles = infos, handles
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.infos: OrderedDict[str, dict] = OrderedDict()
        self.handles: OrderedDict[str, IO[bytes]] = OrderedDict()

    def _mine(self) -> None:
        if self.pid != os.getpid():
            self._reset()

    def remember_info(self, url: str, info: dict) -> None:
        with self.lock:
            self._mine()
            self.infos[url] = info
            while len(self.infos) > self.max_infos:
                self.infos.popitem(last=False)

    def take_handle(self, url: str) -> tuple[IO[bytes] | None, dict | None]:
        with self.lock:
            self._mine()
            return self.handles.pop(url, None), self.infos.pop(url, None)

    def give_back(self, url: str, handle: IO[bytes]) -> None:
        with self.lock:
            self._mine()
            self.handles[url] = handle
            while len(self.handles) > self.max_handles:
                self.handles.popitem(last=False)[1].close()


_RECENT = _RecentObjects()


@contextmanager
def audio_source(path) -> Iterator[str | IO[bytes]]:
    """What soundfile should open for ``path``: the local path itself, or a seekable file object
    over the object with a block cache (`AUDIO_BLOCK_SIZE` blocks fetched by byte range, at most
    32 kept), reused by the next call for the same object in this process (`_RecentObjects`)."""
    where = item_location(path)
    if not isinstance(where, StoragePath):
        with nullcontext(str(path)) as source:
            yield source
        return
    url = str(where)
    handle, info = _RECENT.take_handle(url)
    if handle is None or handle.closed:
        size = {"size": info["size"]} if info and info.get("size") is not None else {}
        handle = where.open("rb", block_size=AUDIO_BLOCK_SIZE, cache_type="blockcache", **size)
        if size:
            handle.details = info  # the block cache hashes the file by its details: no second HEAD
    handle.seek(0)
    try:
        yield handle
    except BaseException:
        handle.close()
        raise
    _RECENT.give_back(url, handle)


def local_output(value) -> Path:
    """``value`` as a local `Path` for outputs written only locally (PNGs, exports): a URL is a
    `UsageError` rather than a local ``s3:/bucket/...`` tree."""
    if is_url(value):
        raise UsageError(f"{value}: this output is written to local files only; write it locally, then upload it")
    return location(value)


def file_stamp(path: str) -> str:
    """``size:mtime_ns`` of a local file, ``size:ETag`` (or modification time) of an object,
    ``missing`` when it cannot be found or read."""
    if _plain_local(path):  # one `os.stat`, no `Path` (the resume stamp of every input file)
        try:
            stat = os.stat(path)
        except (OSError, ValueError):
            return "missing"
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    return _located_stamp(path)


def _located_stamp(path: str) -> str:
    """`file_stamp` through `location` (any path, URLs included)."""
    try:
        where = location(path)
    except UsageError:
        return "missing"
    if isinstance(where, StoragePath):
        try:
            info = where.info()
        except OSError:
            return "missing"
        if info is None:
            return "missing"
        _RECENT.remember_info(str(where), info)
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        return f"{info.get('size')}:{version}"
    try:
        stat = os.stat(where)
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def join(base: Location, value: str) -> str:
    """A path value from a manifest at ``base`` (its folder), resolved: URLs and absolute paths
    stay as they are, relative ones join ``base`` (a bucket manifest's relative paths name objects
    beside it)."""
    try:
        url = is_url(value)
    except UsageError:  # an unknown protocol: that item's read fails and says so
        return value
    if not value or url or os.path.isabs(value) or value.startswith("file://"):
        return value
    return str(base / value)


def join_all(base: Location, values: Iterable[str]) -> list[str]:
    """``[join(base, value) for value in values]``. For a local `base`, a plain relative value
    (no empty or "." part, no colon, so no URL) is joined as a string: pathlib keeps such a
    value as it is, so ``str(base / value)`` is the prefix ``str(base / "x")[:-1]`` followed by
    it, without a `Path` per value (seconds for a manifest of millions of rows)."""
    if isinstance(base, StoragePath):
        return [join(base, value) for value in values]
    prefix = str(base / "x")[:-1]
    return [prefix + value if _plain_relative(value) else join(base, value) for value in values]


def _plain_relative(value) -> bool:
    return (type(value) is str and value != "" and value[0] != "/" and ":" not in value and "//" not in value
            and "/./" not in value and not value.startswith("./") and not value.endswith(("/", "/."))
            and value != ".")


@contextmanager
def local_staging(path: Location) -> Iterator[str]:
    """A local temporary file to write ``path``'s content into; on success it is uploaded whole
    to ``path`` (object storage). Only for `StoragePath`: local files use rename (shards/io.py)."""
    handle, tmp = tempfile.mkstemp(prefix=".anchorprep-", suffix=".tmp")
    os.close(handle)
    try:
        yield tmp
        path.put(tmp)
    finally:
        os.unlink(tmp)


def sha256_of(path: Location) -> str:
    digest = hashlib.sha256()
    with (path.open("rb") if isinstance(path, StoragePath) else open(path, "rb")) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def create_exclusive(path: "StoragePath", data: bytes) -> bool:
    """Write ``data`` to ``path`` only if no object is there: True when written, False when one
    exists. S3: a conditional PUT (``If-None-Match: *``, s3fs ``pipe_file(mode="create")``),
    atomic on the server; other stores: fsspec's ``mode="create"`` where it has one."""
    try:
        path.fs.pipe_file(path.key, data, mode="create")
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno == errno.EEXIST or "PreconditionFailed" in str(exc) or "412" in str(exc):
            return False
        raise
    return True


def arrow_filesystem(path: Location):
    """``(path string, pyarrow filesystem or None)`` for pyarrow readers (``pq.read_table``,
    ``pq.ParquetFile``, ``pyarrow.dataset``): object storage through fsspec, so reads use the same
    credentials and endpoint as every other read."""
    if not isinstance(path, StoragePath):
        from pyarrow.fs import LocalFileSystem

        # Explicitly local: given no filesystem, pyarrow reads ``run:v2/data`` as a URI.
        return os.path.abspath(path), LocalFileSystem()
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return path.key, PyFileSystem(FSSpecHandler(path.fs))


def parquet_file(path):
    """``pyarrow.parquet.ParquetFile`` of a local path or an object (footer and row groups read by range)."""
    import pyarrow.parquet as pq

    source, filesystem = arrow_filesystem(location(path))
    return pq.ParquetFile(source, filesystem=filesystem)


def read_table(path, columns=None):
    """``pyarrow.parquet.read_table`` of a local path or an object."""
    import pyarrow.parquet as pq

    source, filesystem = arrow_filesystem(location(path))
    return pq.read_table(source, columns=None if columns is None else list(columns), filesystem=filesystem)


__all__ = [
    "AUDIO_BLOCK_SIZE", "EXTRAS", "Location", "StoragePath", "arrow_filesystem", "audio_source", "create_exclusive",
    "file_stamp", "filesystem", "is_url", "item_location", "join", "list_files", "local_copy", "local_staging",
    "local_output", "location", "open_input", "parquet_file", "read_table",
    "read_bytes", "read_regular_bytes", "sha256_of", "stamps_of_reads", "url_protocol",
]
