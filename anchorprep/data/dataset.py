"""PyTorch datasets over anchorprep shards: map-style `ShardDataset`, streaming `IterableShardDataset`.

Both yield the same items, one per shard row::

    {"utt_id": str, "num_frames": int,
     "target": int16 tensor (T,),         # as stored: class id, 0 background, -100 ignore
     "distance": int16 tensor (T,),       # as stored: t - a(t), 32767 = no anchor
     "anchor_frames": int32 tensor (A,),
     "anchor_times_s": float64 tensor (A,),  # as stored: seconds from the utterance start
     "duration_s": float,
     "features": float32 tensor (T, F),   # only with features=...
     ...}                                 # plus any extra `columns` asked for

Item tensors are zero-copy views into the shard's Arrow buffers (see `anchorprep.data.table`);
`collate_anchors` turns them into padded batches with an int64 target ready for
``torch.nn.functional.cross_entropy``.

Splitting `IterableShardDataset` across consumers (DDP ranks × DataLoader workers, ``C`` of them;
consumer ``c = rank * num_workers + worker_id``), per epoch:

1. The shard order is permuted with ``(seed, epoch)`` (the same permutation on every consumer).
2. The first ``(n_shards // C) * C`` shards of that order go whole, round-robin: consumer ``c``
   reads shards ``c, c + C, ...``.
3. The remaining ``n_shards % C`` shards (all of them when there are fewer shards than
   consumers) are split by rows: their rows, concatenated in that order, are dealt out by running
   index modulo ``C``. Each consumer reads those few shards and keeps its rows.

So every row is seen exactly once per epoch however shards divide. Consumers differ by at most
one row plus the size difference of the whole shards they get; in one anchorprep run every shard
but the last holds ``shard_size`` rows, so that is at most one shard's shortfall. Ranks can
therefore end an epoch a few batches apart: under DDP use ``torch.distributed.algorithms.Join``
or a fixed number of steps per epoch.

Rows are shuffled twice, both seeded with ``(seed, epoch, consumer)``: each shard's rows are
permuted when it is read, then a buffer of ``buffer_size`` rows mixes rows across shards.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from anchorprep.shards import rows_to_table, shard_schema
    >>> from anchorprep.shards.io import write_parquet_atomic
    >>> def row(i):
    ...     n = 5 + i
    ...     return {"utt_id": f"u{i}", "audio_path": None, "start_s": 0.0, "duration_s": 1.0,
    ...             "sample_rate": 16000, "num_frames": n, "anchor_times_s": np.zeros(0),
    ...             "anchor_frames": np.zeros(0, np.int32), "anchor_labels": [],
    ...             "anchor_sources": [], "distance": np.full(n, 32767, np.int16),
    ...             "target": np.zeros(n, np.int16)}
    >>> folder = Path(tempfile.mkdtemp())
    >>> schema = shard_schema((), {"grid": {"sample_rate": 16000}, "label_map": {"background": 0}})
    >>> for s in range(3):
    ...     _ = write_parquet_atomic(folder / f"anchors-{s:05d}-of-00003.parquet",
    ...                              rows_to_table([row(4 * s + i) for i in range(4)], schema))
    >>> ds = ShardDataset(folder)
    >>> len(ds), ds[5]["utt_id"], ds[5]["target"].shape
    (12, 'u5', torch.Size([10]))
    >>> stream = IterableShardDataset(folder, shuffle=True, seed=1, rank=0, world_size=2)
    >>> stream.set_epoch(3)
    >>> other = IterableShardDataset(folder, shuffle=True, seed=1, rank=1, world_size=2)
    >>> other.set_epoch(3)
    >>> sorted(x["utt_id"] for x in [*stream, *other]) == sorted(f"u{i}" for i in range(12))
    True
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from typing import Iterator, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from anchorprep.data.features import Extractor, Fbank, FeatureLoader, SubsamplingMode, resolve_extractor
from anchorprep.data.source import ShardSource, Source, open_source
from anchorprep.data.table import AUDIO_COLUMNS, ITEM_COLUMNS, ShardTable
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.sources.audio import Channel

Features = Union[str, Fbank, Extractor, None]
_POSITION = (1 << 32) - 1  # the row-position bits of `IterableShardDataset`'s buffered ints


class _ShardReader:
    """What both datasets share: the source, the columns to read and the feature loader."""

    def __init__(self, source: Source, columns: Sequence[str], features: Features,
                 subsampling: SubsamplingMode, channel: Channel, check_sha256: bool = True) -> None:
        self.source: ShardSource = open_source(source)
        self.check_sha256 = bool(check_sha256)
        extractor = resolve_extractor(features)
        self._features: FeatureLoader | None = None
        if extractor is not None:
            if self.source.grid is None:
                raise UsageError("features need the frame grid, but the shards carry no anchorprep settings")
            self._features = FeatureLoader(self.source.grid, extractor, subsampling, channel)
        wanted = list(ITEM_COLUMNS) + [c for c in columns if c not in ITEM_COLUMNS]
        self._item_columns = tuple(wanted)
        if self._features is not None:
            wanted += [c for c in AUDIO_COLUMNS if c not in wanted]
        self._read_columns = tuple(wanted)

    @property
    def settings(self) -> dict:
        """The run settings the shards carry (grid, label map, targets, ...)."""
        return self.source.settings

    @property
    def grid(self) -> FrameGrid | None:
        return self.source.grid

    @property
    def label_map(self) -> dict[str, int]:
        return self.source.label_map

    @property
    def num_rows(self) -> int:
        return self.source.num_rows

    def _read(self, shard: int) -> ShardTable:
        info = self.source.shards[shard]
        if self.check_sha256:
            info.check_sha256()
        # Inside a DataLoader worker the workers are the parallelism; Arrow's own thread pool in
        # every worker would only oversubscribe the CPUs.
        table = ShardTable.read(info.path, self._read_columns, use_threads=get_worker_info() is None)
        if table.num_rows != info.num_rows:
            raise UsageError(f"{info.path} holds {table.num_rows} rows, the manifest says {info.num_rows}")
        return table

    def _item(self, table: ShardTable, row: int) -> dict:
        return self._with_features(table.item(row))

    def _with_features(self, item: dict) -> dict:
        if self._features is not None:
            item["features"] = self._features(item["utt_id"], item["audio_path"], item["start_s"],
                                              item["duration_s"], item["num_frames"])
            for name in AUDIO_COLUMNS:
                if name not in self._item_columns:
                    del item[name]
        return item


class ShardDataset(_ShardReader, Dataset):
    """Map-style dataset: ``ds[i]`` is row ``i`` of the shards taken in order.

    Args:
        source: an output folder (manifest order, or sorted ``data/anchors-*.parquet``), a shard file,
            or a list of shard files.
        columns: extra shard columns to put in each item (``"anchor_labels"``, ``"speaker"``...).
        features: ``None``, ``"fbank"``, an `Fbank` or a callable; see `anchorprep.data.features`.
        subsampling: ``"stack"`` or ``"last"``: how features follow the grid's subsampling.
        channel: ``"mix"`` or a 0-based channel index for the audio.
        preload: read every shard now (default). Under the default ``fork`` start method,
            DataLoader workers then share the parent's Arrow buffers copy-on-write: numpy and
            Arrow memory, unlike Python lists, is not touched by reference counting, so it stays
            shared. With ``preload=False`` shards are read on first use.
        max_cached_shards: keep at most this many shards in memory (least recently used first
            out); ``None`` keeps every shard read.
        check_sha256: hash each shard when it is read and compare with ``manifest.json`` (a
            `UsageError` on mismatch); ``False`` skips it (see the README for its cost).

    Example: see the module docstring.
    """

    def __init__(self, source: Source, *, columns: Sequence[str] = (), features: Features = None,
                 subsampling: SubsamplingMode = "stack", channel: Channel = "mix", preload: bool = True,
                 max_cached_shards: int | None = None, check_sha256: bool = True) -> None:
        super().__init__(source, columns, features, subsampling, channel, check_sha256)
        if max_cached_shards is not None and max_cached_shards < 1:
            raise UsageError("max_cached_shards must be at least 1 (or None)")
        self._max_cached = max_cached_shards
        counts = np.array([s.num_rows for s in self.source.shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        self._start_list: list[int] = self._starts.tolist()  # `locate` runs per item: bisect, not numpy
        self._cache: OrderedDict[int, ShardTable] = OrderedDict()
        self._lengths: np.ndarray | None = None
        if preload:
            for shard in range(len(self.source.shards)):
                self._table(shard)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _table(self, shard: int) -> ShardTable:
        table = self._cache.get(shard)
        if table is None:
            table = self._cache[shard] = self._read(shard)
            if self._max_cached is not None and len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(shard)
        return table

    def locate(self, index: int) -> tuple[int, int]:
        """``(shard, row within shard)`` of dataset index ``index`` (negative counts from the end)."""
        n = self._start_list[-1]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} rows")
        shard = bisect_right(self._start_list, index) - 1
        return shard, index - self._start_list[shard]

    def __getitem__(self, index: int) -> dict:
        shard, row = self.locate(int(index))
        return self._item(self._table(shard), row)

    @property
    def lengths(self) -> np.ndarray:
        """``num_frames`` of every row (int64), e.g. for `LengthBucketBatchSampler`."""
        if self._lengths is None:
            parts = []
            for shard, info in enumerate(self.source.shards):
                table = self._cache.get(shard) or ShardTable.read(info.path, ("num_frames",))
                parts.append(np.asarray(table.scalar("num_frames"), dtype=np.int64))
            self._lengths = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return self._lengths

    def __getstate__(self) -> dict:
        # Pickled copies (spawn/forkserver DataLoader workers) re-read shards lazily instead of
        # serialising every loaded buffer through a pipe.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state


def _consumer() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _distributed() -> tuple[int, int] | None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None


def split_plan(row_counts: Sequence[int], order: Sequence[int], consumer: int,
               num_consumers: int) -> list[tuple[int, np.ndarray | None]]:
    """Which rows consumer ``consumer`` of ``num_consumers`` reads, given the epoch's shard order.

    Returns ``(shard, rows)`` pairs in reading order; ``rows`` is ``None`` for a whole shard, or
    the row indices to keep. Strategy in the module docstring.

    >>> split_plan([4, 4, 3], order=[2, 0, 1], consumer=1, num_consumers=2)
    [(0, None), (1, array([1, 3]))]
    """
    if not 0 <= consumer < num_consumers:
        raise ValueError(f"consumer {consumer} not in [0, {num_consumers})")
    whole = (len(order) // num_consumers) * num_consumers
    plan: list[tuple[int, np.ndarray | None]] = [(int(order[j]), None) for j in range(consumer, whole, num_consumers)]
    start = 0  # running row index over the shards split by rows
    for shard in order[whole:]:
        count = int(row_counts[shard])
        rows = np.arange((consumer - start) % num_consumers, count, num_consumers)
        if rows.size:
            plan.append((int(shard), rows))
        start += count
    return plan


def _shuffle_buffer(rows: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """Reservoir-style shuffle: emit a random buffered element for each new one, then the rest."""
    buffer: list = []
    draws = iter(())
    for element in rows:
        if len(buffer) < size:
            buffer.append(element)
            continue
        j = next(draws, None)
        if j is None:  # random indices drawn in blocks: one numpy call per 4096 rows, not per row
            draws = iter(rng.integers(0, size, 4096).tolist())
            j = next(draws)
        yield buffer[j]
        buffer[j] = element
    rng.shuffle(buffer)
    yield from buffer


class IterableShardDataset(_ShardReader, IterableDataset):
    """Streaming dataset: each shard read once per epoch, split across DDP ranks and workers.

    Args:
        source: as for `ShardDataset`.
        shuffle: permute shard order and rows each epoch (seeded); ``False`` reads in order.
        seed: base seed; the epoch's order depends only on ``(seed, epoch)`` and the consumer.
        buffer_size: rows in the cross-shard shuffle buffer.
        rank, world_size: this process's place in data-parallel training; taken from
            ``torch.distributed`` when it is initialised (when constructed, or else when iterated),
            otherwise 0 and 1.
        columns, features, subsampling, channel, check_sha256: as for `ShardDataset` (the check
            runs each time a shard is read, i.e. once per epoch per shard).

    Call `set_epoch` before each epoch (as with ``DistributedSampler``). The epoch lives in
    shared memory, so DataLoader workers see it, ``persistent_workers=True`` included; without
    `set_epoch` every pass repeats epoch 0's order.

    Example: see the module docstring.
    """

    def __init__(self, source: Source, shuffle: bool = True, seed: int = 0, buffer_size: int = 8192, *,
                 rank: int | None = None, world_size: int | None = None, columns: Sequence[str] = (),
                 features: Features = None, subsampling: SubsamplingMode = "stack",
                 channel: Channel = "mix", check_sha256: bool = True) -> None:
        super().__init__(source, columns, features, subsampling, channel, check_sha256)
        if (rank is None) != (world_size is None):
            raise UsageError("give rank and world_size together")
        if world_size is not None and not 0 <= rank < world_size:
            raise UsageError(f"rank must be in [0, {world_size}), got {rank}")
        if buffer_size < 1:
            raise UsageError("buffer_size must be at least 1")
        self.shuffle, self.seed, self.buffer_size = shuffle, int(seed), int(buffer_size)
        self._ranks = (rank, world_size) if rank is not None else _distributed()
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def ranks(self) -> tuple[int, int]:
        """``(rank, world_size)`` used for splitting."""
        return self._ranks or _distributed() or (0, 1)

    def shard_order(self, epoch: int) -> np.ndarray:
        """The epoch's shard order (identical on every rank and worker)."""
        n = len(self.source.shards)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def plan(self, epoch: int, consumer: int, num_consumers: int) -> list[tuple[int, np.ndarray | None]]:
        """`split_plan` for this dataset's shards in ``epoch``."""
        counts = [s.num_rows for s in self.source.shards]
        return split_plan(counts, self.shard_order(epoch), consumer, num_consumers)

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch
        rank, world = self.ranks()
        worker, workers = _consumer()
        consumer, consumers = rank * workers + worker, world * workers
        plan = self.plan(epoch, consumer, consumers)
        rng = np.random.default_rng([self.seed, epoch, consumer]) if self.shuffle else None
        # The shuffle buffer holds plain ints, ``(plan step << 32) | position``, and an item is
        # built only when its row leaves the buffer. Thousands of buffered dicts and tensors
        # would outlive the garbage collector's young generations and make it sweep the whole
        # heap every few thousand rows; ints are invisible to it.
        steps: dict[int, list] = {}  # plan step -> [table, its rows in reading order, rows not yet out]
        keys = self._row_keys(plan, rng, steps)
        if rng is not None and self.buffer_size > 1:
            keys = _shuffle_buffer(keys, self.buffer_size, rng)
        for key in keys:
            step = key >> 32
            entry = steps[step]
            item = entry[0].item(entry[1][key & _POSITION])
            entry[2] -= 1
            if not entry[2]:
                del steps[step]  # its last row is out: let the table go
            yield item if self._features is None else self._with_features(item)

    def _row_keys(self, plan, rng: np.random.Generator | None, steps: dict[int, list]) -> Iterator[int]:
        for step, (shard, rows) in enumerate(plan):
            table = self._read(shard)
            if rows is None:
                rows = np.arange(table.num_rows)
            if rng is not None:
                rows = rng.permutation(rows)
            if len(rows):
                steps[step] = [table, rows.tolist(), len(rows)]
                yield from range(step << 32, (step << 32) + len(rows))
