"""Padding a list of items into a batch, with optional SAL anchor weights.

`collate_anchors` returns::

    {"utt_id": list[str],
     "lengths": int64 (B,),
     "mask": bool (B, T),                  # True on real frames
     "target": int64 (B, T),               # padded with pad_target (-100 = ignore_index)
     "distance": (B, T) in the stored dtype (int16), padded with 32767 (no anchor)
     "anchor_frames": list of int32 tensors,
     "anchor_times_s": list of float64 tensors,  # anchor times (s from the utterance start)
     "duration_s": float64 (B,),           # utterance durations (s)
     "features": float32 (B, T, F),        # when items carry features, padded with 0
     "weight": float32 (B, T),             # with a kernel config: 1 + gain*K(d), 0 on padding;
                                           # without one, the items' stored `weight` (a run from
                                           # `anchorprep weights`, columns=("weight",)), padded with 0
     ...}                                  # other item keys as lists

``anchor_times_s`` and ``duration_s`` (when the items carry them, as dataset items do) are what
`anchorprep.metrics.evaluate` needs besides the scores: ``evaluate(scores, batch["anchor_times_s"],
grid, lengths=batch["lengths"], durations_s=batch["duration_s"])`` for padded ``(B, T)`` scores.

The target is widened to int64 because ``torch.nn.functional.cross_entropy`` wants int64 class
indices; the distance keeps its stored dtype (the loss module accepts int16). Frames with target
-100 keep their weight: the loss masks them out itself.

Example:
    >>> import torch
    >>> batch = [{"utt_id": "a", "num_frames": 3, "target": torch.tensor([0, 1, 1], dtype=torch.int16),
    ...           "distance": torch.tensor([-1, 0, 1], dtype=torch.int16),
    ...           "anchor_frames": torch.tensor([1], dtype=torch.int32)},
    ...          {"utt_id": "b", "num_frames": 1, "target": torch.tensor([0], dtype=torch.int16),
    ...           "distance": torch.tensor([32767], dtype=torch.int16),
    ...           "anchor_frames": torch.zeros(0, dtype=torch.int32)}]
    >>> out = collate_anchors(batch)
    >>> out["target"].tolist(), out["distance"][1].tolist(), out["mask"][1].tolist()
    ([[0, 1, 1], [0, -100, -100]], [32767, 32767, 32767], [True, False, False])
    >>> cfg = AnchorWeightConfig(kernel="box", width=0, gain=2.0)
    >>> collate(cfg)(batch)["weight"].tolist()
    [[1.0, 3.0, 1.0], [1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence, Union

import torch

from anchorprep.anchors import IGNORE_INDEX, NO_ANCHOR

#: Keys `collate_anchors` pads or derives; every other item key is gathered into a list.
_PADDED = ("target", "distance", "features", "num_frames")


@dataclass(frozen=True)
class AnchorWeightConfig:
    """Arguments for `anchorprep.loss.anchor_weights`; ``None`` fields use the loss defaults."""

    kernel: str | None = None
    width: float | None = None
    width_before: float | None = None
    width_after: float | None = None
    gain: float | None = None

    def kwargs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def weights(self, distance: torch.Tensor) -> torch.Tensor:
        """``w = 1 + gain * K(distance)`` as float32."""
        from anchorprep.loss import anchor_weights  # the loss module is optional at import time

        return anchor_weights(distance, **self.kwargs())


KernelConfig = Union[AnchorWeightConfig, Mapping[str, object], None]


def _weight_config(config: KernelConfig) -> AnchorWeightConfig | None:
    if config is None or isinstance(config, AnchorWeightConfig):
        return config
    return AnchorWeightConfig(**dict(config))


def _pad(values: list[torch.Tensor], mask: torch.Tensor, fill, dtype: torch.dtype) -> torch.Tensor:
    """Scatter the items' frames (concatenated) into a ``mask``-shaped tensor filled with ``fill``."""
    flat = torch.cat(values).to(dtype)
    out = torch.full((*mask.shape, *flat.shape[1:]), fill, dtype=dtype)
    # Row-major order of the True positions of `mask` is the concatenation order, because each
    # row's real frames form a prefix. masked_scatter_ beats boolean indexing and per-row copies.
    return out.masked_scatter_(mask.view(*mask.shape, *(1,) * (flat.dim() - 1)), flat)


def _float64(values) -> torch.Tensor:
    if type(values) is torch.Tensor and values.dtype is torch.float64:  # a dataset item's: as it is
        return values
    return torch.as_tensor(values, dtype=torch.float64)


def collate_anchors(batch: Sequence[Mapping], kernel_config: KernelConfig = None,
                    pad_target: int = IGNORE_INDEX, pad_features: float = 0.0) -> dict:
    """Pad items from `ShardDataset`/`IterableShardDataset` into a batch (see module docstring)."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    targets = [item["target"] for item in batch]
    lengths = torch.tensor([t.shape[0] for t in targets], dtype=torch.int64)
    longest = int(lengths.max())
    mask = torch.arange(longest).unsqueeze(0) < lengths.unsqueeze(1)
    distances = [item["distance"] for item in batch]
    out: dict = {
        "utt_id": [item["utt_id"] for item in batch],
        "lengths": lengths,
        "mask": mask,
        "target": _pad(targets, mask, pad_target, torch.int64),
        "distance": _pad(distances, mask, NO_ANCHOR, distances[0].dtype),
    }
    if "duration_s" in batch[0]:
        out["duration_s"] = torch.tensor([float(item["duration_s"]) for item in batch], dtype=torch.float64)
    if "anchor_times_s" in batch[0]:
        out["anchor_times_s"] = [_float64(item["anchor_times_s"]) for item in batch]
    if "features" in batch[0]:
        features = [item["features"] for item in batch]
        out["features"] = _pad(features, mask, pad_features, features[0].dtype)
    config = _weight_config(kernel_config)
    if config is not None:
        out["weight"] = config.weights(out["distance"]).mul_(mask)  # w >= 1 is finite: w * 0 == 0.0
    elif "weight" in batch[0]:  # a run from `anchorprep weights`, read with columns=("weight",)
        out["weight"] = _pad([item["weight"] for item in batch], mask, 0.0, torch.float32)
    for key in batch[0]:
        if key not in out and key not in _PADDED:
            out[key] = [item[key] for item in batch]
    return out


@dataclass(frozen=True)
class AnchorCollator:
    """`collate_anchors` with fixed options; picklable, so it works with any worker start method."""

    kernel_config: AnchorWeightConfig | None = None
    pad_target: int = IGNORE_INDEX
    pad_features: float = 0.0

    def __call__(self, batch: Sequence[Mapping]) -> dict:
        return collate_anchors(batch, self.kernel_config, self.pad_target, self.pad_features)


def collate(kernel_config: KernelConfig = None, pad_target: int = IGNORE_INDEX,
            pad_features: float = 0.0) -> AnchorCollator:
    """A ``collate_fn`` for ``DataLoader``: ``DataLoader(ds, batch_size=32, collate_fn=collate(cfg))``."""
    return AnchorCollator(_weight_config(kernel_config), pad_target, pad_features)
