"""Training-side data loading: shards → items → padded batches with SAL weights.

* `ShardDataset` (map-style) and `IterableShardDataset` (streaming, split across DDP ranks and
  DataLoader workers, seeded shuffling per epoch) read anchorprep shards; list columns become
  zero-copy torch views of Arrow's buffers.
* `collate_anchors` / `collate` pad items into ``target`` (int64, -100), ``distance`` (32767),
  ``mask``, ``lengths``, ``features`` and, given an `AnchorWeightConfig`, ``weight``.
* ``features="fbank"`` (or an `Fbank`, or any callable) computes Kaldi-compatible features on
  the shards' frame grid, one row per target frame.
* `LengthBucketBatchSampler` groups similar lengths under a padded-frame budget.

Example (a folder written by ``anchorprep align ... --out shards/``)::

    from torch.utils.data import DataLoader
    from anchorprep.data import AnchorWeightConfig, IterableShardDataset, collate

    ds = IterableShardDataset("shards/", shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=32, num_workers=4,
                        collate_fn=collate(AnchorWeightConfig(kernel="linear", width=20, gain=4)))
    for epoch in range(10):
        ds.set_epoch(epoch)
        for batch in loader:
            ...  # batch["target"], batch["weight"], batch["mask"]

The module docstrings of `anchorprep.data.dataset`, `.collate`, `.features` and `.sampler` hold
runnable examples.
"""

from anchorprep.data.collate import AnchorCollator, AnchorWeightConfig, collate, collate_anchors
from anchorprep.data.dataset import IterableShardDataset, ShardDataset, split_plan
from anchorprep.data.features import FeatureLoader, Fbank, FrameCountError, subsample
from anchorprep.data.sampler import LengthBucketBatchSampler
from anchorprep.data.source import ShardInfo, ShardSource, open_source
from anchorprep.data.table import ShardTable

__all__ = [
    "AnchorCollator", "AnchorWeightConfig", "Fbank", "FeatureLoader", "FrameCountError",
    "IterableShardDataset", "LengthBucketBatchSampler", "ShardDataset", "ShardInfo", "ShardSource",
    "ShardTable", "collate", "collate_anchors", "open_source", "split_plan", "subsample",
]
