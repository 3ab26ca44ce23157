"""Length-bucketed batches under a padded-frame budget, for map-style datasets.

Each epoch (seeded by ``(seed, epoch)``):

1. the indices are shuffled (or kept in order with ``shuffle=False``) and cut into pools of
   ``pool_size`` indices;
2. each pool is sorted by length (stable) and cut greedily into batches whose padded size,
   ``max length × batch size``, stays ``<= max_frames``; the pool's last, possibly under-filled
   batch is carried into the next pool, so only the epoch's final batch can be under-filled
   (``drop_last=True`` drops it);
3. the batch order is shuffled.

Big pools group lengths tightly (little padding); small pools keep more randomness. An index
longer than ``max_frames`` can never fit: ``oversize="error"`` (default) refuses it at
construction, ``"single"`` gives it a batch of its own (over budget), ``"skip"`` leaves it out.
With ``world_size > 1`` rank ``r`` takes batches ``r, r + world_size, ...`` of the same epoch
plan; rank batch counts then differ by at most one.

Example:
    >>> sampler = LengthBucketBatchSampler([5, 3, 8, 2, 7, 4], max_frames=12, shuffle=False)
    >>> list(sampler)
    [[3, 1, 5], [0], [4], [2]]
    >>> all(max([5, 3, 8, 2, 7, 4][i] for i in b) * len(b) <= 12 for b in sampler)
    True
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

OVERSIZE = ("error", "single", "skip")


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices; use as ``DataLoader(ds, batch_sampler=sampler, ...)``.

    Args:
        lengths: frames per index (e.g. ``ShardDataset.lengths``).
        max_frames: budget for ``max length × batch size`` of every batch.
        shuffle: shuffle indices and batch order each epoch; ``False`` gives one fixed plan.
        seed: base seed; call `set_epoch` each epoch for a new, reproducible order.
        drop_last: drop the epoch's final batch (the only one that can be under-filled).
        pool_size: indices sorted together (see module docstring).
        oversize: ``"error"``, ``"single"`` or ``"skip"`` for indices longer than ``max_frames``.
        rank, world_size: split batches across data-parallel ranks.
    """

    def __init__(self, lengths: Sequence[int], max_frames: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, *, pool_size: int = 10_000, oversize: str = "error",
                 rank: int = 0, world_size: int = 1) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1:
            raise ValueError("lengths must be one-dimensional")
        if max_frames < 1 or pool_size < 1:
            raise ValueError("max_frames and pool_size must be at least 1")
        if oversize not in OVERSIZE:
            raise ValueError(f"oversize must be one of {OVERSIZE}, got {oversize!r}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        too_long = np.flatnonzero(self.lengths > max_frames)
        if too_long.size and oversize == "error":
            worst = int(too_long[np.argmax(self.lengths[too_long])])
            raise ValueError(
                f"{too_long.size} item(s) are longer than max_frames={max_frames} (longest: index {worst}, "
                f"{int(self.lengths[worst])} frames); raise max_frames or pass oversize='single' or 'skip'"
            )
        self.max_frames, self.shuffle, self.seed, self.drop_last = int(max_frames), shuffle, int(seed), drop_last
        self.pool_size, self.oversize, self.rank, self.world_size = int(pool_size), oversize, rank, world_size
        self._oversized = too_long
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _cut(self, indices: np.ndarray) -> list[list[int]]:
        """Greedy batches over ``indices`` sorted by length; the last batch may be under-filled."""
        lengths = self.lengths[indices].tolist()
        batches, start = [], 0
        for i in range(1, len(indices) + 1):
            # Sorted ascending, so the batch's padded size is its newest length × its size.
            if i == len(indices) or lengths[i] * (i + 1 - start) > self.max_frames:
                batches.append(indices[start:i].tolist())
                start = i
        return batches

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All ranks' batches of ``epoch`` (default: the current one), in yield order."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        order = np.arange(len(self.lengths))
        if self._oversized.size:
            order = order[self.lengths <= self.max_frames]
        if self.shuffle:
            order = rng.permutation(order)
        batches: list[list[int]] = []
        carry = np.zeros(0, dtype=np.int64)
        for start in range(0, len(order), self.pool_size):
            pool = np.concatenate([carry, order[start:start + self.pool_size]])
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            cut = self._cut(pool)
            batches.extend(cut[:-1])
            carry = np.asarray(cut[-1], dtype=np.int64)
        if carry.size and not self.drop_last:
            batches.append(carry.tolist())
        if self.oversize == "single":
            batches.extend([int(i)] for i in self._oversized)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self.epoch_batches()[self.rank::self.world_size])
