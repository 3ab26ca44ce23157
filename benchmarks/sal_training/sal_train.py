"""Training and evaluation of one (task, model, loss, seed) job of the SAL benchmark.

A job runs in a worker process (one torch thread) and returns plain JSON-ready results. It reads
the task's feature cache (written by `sal_prep.cache_features`), builds batches with anchorprep's
`LengthBucketBatchSampler` and `collate` (an `AnchorWeightConfig` carries the SAL kernel), computes
the loss with `anchorprep.loss`, and scores the valid and test splits with
`anchorprep.metrics.evaluate` on the shards' frame grid.

Models (both strictly causal, so a frame's score only depends on the audio up to its end):

* ``cnn``: a 1-D CNN, 5 dilated causal convolutions (kernel 3, dilations 1..16, 48 channels,
  residual from the second layer on), receptive field 63 model frames.
* ``gru``: a linear input projection, one GRU layer (64 units), a linear output layer.

The input is the fbank (stacked over the grid's subsampling) normalised by the train split's
CMVN, the output two logits per model frame (background, event); the detector's score is the
event class's softmax posterior.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from anchorprep.data import AnchorWeightConfig, LengthBucketBatchSampler, collate
from anchorprep.grid import FrameGrid
from anchorprep.loss import (
    DEFAULT_GAMMA,
    focal_loss,
    frame_cross_entropy,
    streaming_anchor_loss,
)
from anchorprep.metrics import detect, evaluate

LOSSES = ("FCE", "FL", "SAL", "SA+FL", "SAFL")
ANCHOR_LOSSES = {"SAL": "sal", "SA+FL": "sa+fl", "SAFL": "safl"}
MODELS = ("cnn", "gru")


# ----------------------------------------------------------------------------------------------
# models


class CausalCNN(nn.Module):
    """Dilated causal 1-D CNN: left padding only, so output frame t sees inputs <= t."""

    def __init__(self, in_dim: int, channels: int = 48, kernel: int = 3, dilations=(1, 2, 4, 8, 16)) -> None:
        super().__init__()
        self.pads = [(kernel - 1) * d for d in dilations]
        dims = [in_dim] + [channels] * len(dilations)
        self.convs = nn.ModuleList(nn.Conv1d(dims[i], dims[i + 1], kernel, dilation=d) for i, d in enumerate(dilations))
        self.out = nn.Conv1d(channels, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, T, 2)
        h = x.transpose(1, 2)
        for i, (conv, pad) in enumerate(zip(self.convs, self.pads)):
            y = torch.relu(conv(nn.functional.pad(h, (pad, 0))))
            h = y if i == 0 else h + y
        return self.out(h).transpose(1, 2)

    def receptive_field(self) -> int:
        return 1 + sum(self.pads)


class StreamingGRU(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(torch.relu(self.inp(x)))[0])


class Detector(nn.Module):
    """CMVN (fixed buffers from the train split) + a backbone."""

    def __init__(self, backbone: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std)


def build_model(name: str, in_dim: int, mean: torch.Tensor, std: torch.Tensor) -> Detector:
    backbone = CausalCNN(in_dim) if name == "cnn" else StreamingGRU(in_dim)
    return Detector(backbone, mean, std)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_checksum(model: nn.Module) -> str:
    """sha256 of the parameters' bytes: equal initial checksums mean identical initial weights."""
    import hashlib

    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# losses


def loss_value(name: str, logits: torch.Tensor, batch: dict, weights: AnchorWeightConfig | None) -> torch.Tensor:
    """The benchmark's five losses, all from `anchorprep.loss` (mean over the batch's real frames)."""
    target, mask = batch["target"], batch["mask"]
    if name == "FCE":
        return frame_cross_entropy(logits, target, mask=mask)
    if name == "FL":
        return focal_loss(logits, target, gamma=DEFAULT_GAMMA, mask=mask)
    assert weights is not None
    return streaming_anchor_loss(logits, target, batch["distance"], variant=ANCHOR_LOSSES[name],
                                 gamma=DEFAULT_GAMMA, mask=mask, **weights.kwargs())


# ----------------------------------------------------------------------------------------------
# data in the worker


_CACHE: dict[str, dict] = {}


def task_data(path: str) -> dict:
    """The task's cached features and labels (loaded once per worker process)."""
    if path not in _CACHE:
        _CACHE[path] = torch.load(path, weights_only=False)
    return _CACHE[path]


def items_of(data: dict, split: str) -> list[dict]:
    """Items in the shape `anchorprep.data.collate_anchors` expects, for one split."""
    out = []
    for i, s in enumerate(data["split"]):
        if s == split:
            out.append({"utt_id": data["utt_id"][i], "num_frames": len(data["target"][i]),
                        "target": data["target"][i], "distance": data["distance"][i],
                        "anchor_frames": data["anchor_frames"][i], "features": data["features"][i],
                        "anchor_times_s": data["anchor_times_s"][i], "duration_s": data["duration_s"][i]})
    return out


# ----------------------------------------------------------------------------------------------
# job


@dataclass(frozen=True)
class Job:
    phase: str  # "sweep" or "main"
    task: str
    model: str
    loss: str
    seed: int
    cache: str
    epochs: int
    lr: float
    max_frames: int
    weights: dict | None = None  # AnchorWeightConfig fields for SAL, SA+FL, SAFL
    fa_per_hour: tuple[float, ...] = (10.0,)
    tolerance_s: float = 0.2
    max_latency_s: float = 1.0
    debounce_s: float = 1.0
    threads: int = 1
    curve_points: int = 40
    tag: str = ""

    def key(self) -> str:
        w = "" if self.weights is None else ":" + ",".join(f"{k}={v}" for k, v in sorted(self.weights.items()))
        return f"{self.phase}/{self.task}/{self.model}/{self.loss}{w}/seed{self.seed}"


def run_job(job: Job) -> dict[str, Any]:
    """Train one model and evaluate it on the valid and test splits; plain-dict results."""
    torch.set_num_threads(job.threads)
    started = time.perf_counter()
    data = task_data(job.cache)
    grid = FrameGrid(**data["grid"])
    train = items_of(data, "train")
    in_dim = train[0]["features"].shape[1]
    weights = AnchorWeightConfig(**job.weights) if job.weights is not None else None
    collate_fn = collate(weights)

    torch.manual_seed(job.seed)  # same initial weights for every loss of a (task, model, seed)
    model = build_model(job.model, in_dim, data["cmvn_mean"], data["cmvn_std"])
    init_checksum = parameter_checksum(model)
    sampler = LengthBucketBatchSampler([it["num_frames"] for it in train], max_frames=job.max_frames,
                                       shuffle=True, seed=job.seed, pool_size=512)
    steps_per_epoch = len(sampler)
    total_steps = max(1, steps_per_epoch * job.epochs)
    optimiser = torch.optim.AdamW(model.parameters(), lr=job.lr, weight_decay=1e-4)
    warmup = max(1, total_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    epoch_loss, anchor_weight = [], []
    model.train()
    for epoch in range(job.epochs):
        sampler.set_epoch(epoch)
        total, count = 0.0, 0
        for indices in sampler:
            batch = collate_fn([train[i] for i in indices])
            logits = model(batch["features"])
            loss = loss_value(job.loss, logits, batch, weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
            count += 1
            if epoch == 0 and count == 1 and "weight" in batch:
                on_anchor = batch["distance"] == 0
                anchor_weight.append(float(batch["weight"][on_anchor].mean()) if on_anchor.any() else float("nan"))
        epoch_loss.append(total / max(count, 1))
    train_s = time.perf_counter() - started
    model.eval()
    result = {
        "key": job.key(), "phase": job.phase, "task": job.task, "model": job.model, "loss": job.loss,
        "seed": job.seed, "weights": job.weights, "epochs": job.epochs, "steps": total_steps,
        "parameters": num_parameters(model), "init_checksum": init_checksum, "epoch_loss": epoch_loss,
        "anchor_weight_at_anchor": anchor_weight[0] if anchor_weight else None,
        "train_seconds": round(train_s, 2),
        "eval": {split: evaluate_split(model, items_of(data, split), grid, job) for split in ("valid", "test")},
    }
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


@torch.no_grad()
def scores_of(model: nn.Module, items: list[dict], max_frames: int) -> list[np.ndarray]:
    """Per-utterance event posteriors (one per model frame), in item order."""
    out: list[np.ndarray | None] = [None] * len(items)
    sampler = LengthBucketBatchSampler([it["num_frames"] for it in items], max_frames=max_frames, shuffle=False,
                                       oversize="single")
    fn = collate()
    for indices in sampler:
        batch = fn([items[i] for i in indices])
        post = torch.softmax(model(batch["features"]).float(), dim=-1)[..., 1]
        for row, i in enumerate(indices):
            out[i] = post[row, : int(batch["lengths"][row])].numpy().astype(np.float64)
    return out  # type: ignore[return-value]


def evaluate_split(model: nn.Module, items: list[dict], grid: FrameGrid, job: Job) -> dict:
    scores = scores_of(model, items, max(job.max_frames, 20000))
    anchors = [it["anchor_times_s"] for it in items]
    report = evaluate(scores, anchors, grid, durations_s=[it["duration_s"] for it in items],
                      fa_per_hour_targets=job.fa_per_hour, tolerance_s=job.tolerance_s, debounce_s=job.debounce_s,
                      max_latency_s=job.max_latency_s)
    out = report.to_dict()
    out["curve"] = latency_frr_curve(scores, anchors, grid, job)
    return out


def latency_frr_curve(scores: list[np.ndarray], anchors: list[np.ndarray], grid: FrameGrid, job: Job) -> dict:
    """FRR and median / mean latency at thresholds spread over the events' peak scores."""
    positives = [i for i, a in enumerate(anchors) if len(a)]
    if not positives:
        return {"threshold": [], "frr": [], "latency_p50": [], "latency_mean": []}
    peaks = np.concatenate([[scores[i].max()] * len(anchors[i]) for i in positives])
    qs = np.quantile(peaks, np.linspace(0.0, 0.98, job.curve_points))
    curve = {"threshold": [], "frr": [], "latency_p50": [], "latency_mean": []}
    for theta in np.unique(qs):
        found = detect([scores[i] for i in positives], [anchors[i] for i in positives], grid, float(theta),
                       tolerance_s=job.tolerance_s, max_latency_s=job.max_latency_s)
        lat = found.latency()
        curve["threshold"].append(float(theta))
        curve["frr"].append(float(found.frr))
        curve["latency_p50"].append(None if lat.count == 0 else float(lat.p50))
        curve["latency_mean"].append(None if lat.count == 0 else float(lat.mean))
    return curve
