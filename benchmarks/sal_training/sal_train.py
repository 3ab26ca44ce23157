"""Training and evaluation of one (task, model, loss family, setting, seed) job of the SAL benchmark.

A job runs in a worker process (one torch thread by default) and returns plain JSON-ready results.
It reads the task's feature cache (written by `sal_prep.cache_features`), builds batches with
anchorprep's `LengthBucketBatchSampler` and `collate`, computes the loss with `anchorprep.loss`,
scores the valid split (tuning runs) or the test split (main runs) with
`anchorprep.metrics.evaluate`, and for the test split writes an *evidence* file (`Evidence`): per negative utterance its alarm
count at a grid of thresholds, per event its latency at the same thresholds, per utterance its
maximum score. The report bootstraps over those (sal_report.py).

Models (both strictly causal, so a frame's score only depends on the input up to its end):

* ``cnn``: a 1-D CNN, 5 dilated causal convolutions (kernel 3, dilations 1..16, 48 channels,
  residual from the second layer on), receptive field 63 model frames.
* ``gru``: a linear input projection, one GRU layer (64 units), a linear output layer.

The input is the fbank (stacked over the grid's subsampling; for the trigger task followed by the
per-frame accelerometer features) normalised by the train split's CMVN, the output two logits per
model frame (background, event); the detector's score is the event class's softmax posterior.

``energy`` is no model: a causal energy detector (`energy_scores`) as the onset tasks' baseline row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from anchorprep.data import AnchorWeightConfig, LengthBucketBatchSampler, collate
from anchorprep.grid import FrameGrid
from anchorprep.loss import focal_loss, frame_cross_entropy, streaming_anchor_loss
from anchorprep.metrics import AlarmCounter, Traces, evaluate
from anchorprep.metrics.detection import Events, detect_events
from anchorprep.metrics.inputs import anchor_lists

MODELS = ("cnn", "gru")
# Loss families; each is tuned over the same number of settings on the validation voices.
FAMILIES = ("FCE", "FCE+α", "FL", "SAL", "SA+FL")
ANCHOR_VARIANTS = {"SAL": "sal", "SA+FL": "sa+fl"}


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


def loss_value(family: str, setting: dict, logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """The benchmark's loss families, all from `anchorprep.loss` (mean over the batch's real frames).

    ``setting`` holds the family's tuned parameters: FCE none (its settings are learning rates),
    FCE+α ``alpha`` (class weights [1 - α, α]), FL ``gamma``, SAL / SA+FL ``kernel``, ``width``,
    ``gain`` (SA+FL also ``gamma``).
    """
    target, mask = batch["target"], batch["mask"]
    if family == "FCE":
        return frame_cross_entropy(logits, target, mask=mask)
    if family == "FCE+α":
        return frame_cross_entropy(logits, target, alpha=setting["alpha"], mask=mask)
    if family == "FL":
        return focal_loss(logits, target, gamma=setting["gamma"], mask=mask)
    kwargs = {k: setting[k] for k in ("kernel", "width", "gain") if k in setting}
    if "gamma" in setting:
        kwargs["gamma"] = setting["gamma"]
    return streaming_anchor_loss(logits, target, batch["distance"], variant=ANCHOR_VARIANTS[family], mask=mask, **kwargs)


# ----------------------------------------------------------------------------------------------
# data in the worker


_CACHE: dict[str, dict] = {}


def task_data(path: str) -> dict:
    """The task's cached features and labels (loaded once per worker process)."""
    if path not in _CACHE:
        _CACHE[path] = torch.load(path, weights_only=False)
    return _CACHE[path]


def split_indices(data: dict, split: str) -> list[int]:
    return [i for i, s in enumerate(data["split"]) if s == split]


def items_of(data: dict, split: str) -> list[dict]:
    """Items in the shape `anchorprep.data.collate` expects, for one split (cache order)."""
    return [{"utt_id": data["utt_id"][i], "num_frames": len(data["target"][i]), "target": data["target"][i],
             "distance": data["distance"][i], "anchor_frames": data["anchor_frames"][i],
             "features": data["features"][i], "anchor_times_s": data["anchor_times_s"][i],
             "duration_s": data["duration_s"][i], "speaker": data["speaker"][i], "category": data["category"][i]}
            for i in split_indices(data, split)]


# ----------------------------------------------------------------------------------------------
# job


@dataclass(frozen=True)
class Job:
    phase: str  # "sweep" (seed 0, valid split) or "main" (test split, evidence file)
    task: str
    model: str
    family: str
    setting: dict
    seed: int
    cache: str
    epochs: int
    lr: float
    max_frames: int
    evidence_dir: str = ""
    fa_per_hour: tuple[float, ...] = (5.0, 1.0)
    tolerance_s: float = 0.2
    max_latency_s: float = 1.0
    debounce_s: float = 1.0
    threads: int = 1
    device: str = "cpu"
    augment: bool = False  # `Augmentation` of the training features
    fbank_bins: int = 40

    def key(self) -> str:
        s = ",".join(f"{k}={v}" for k, v in sorted(self.setting.items()))
        return f"{self.phase}/{self.task}/{self.model}/{self.family}[{s}]/seed{self.seed}"


def learning_rate(job: Job) -> float:
    return float(job.setting.get("lr", job.lr))


def run_job(job: Job) -> dict[str, Any]:
    """Train one model (or score the energy detector) and evaluate it; plain-dict results."""
    torch.set_num_threads(job.threads)
    started = time.perf_counter()
    data = task_data(job.cache)
    grid = FrameGrid(**data["grid"])
    splits = ("valid",) if job.phase == "sweep" else ("test",)  # tuning sees valid only; main runs report test
    if job.model == "energy":
        result = {"key": job.key(), "phase": job.phase, "task": job.task, "model": job.model, "family": job.family,
                  "setting": job.setting, "seed": job.seed, "epochs": 0, "steps": 0, "parameters": 0,
                  "init_checksum": "", "epoch_loss": [], "train_seconds": 0.0}
        scorer = lambda items: [energy_scores(it["features"]) for it in items]  # noqa: E731
    else:
        model, result = train(job, data)
        device = torch.device(job.device)
        scorer = lambda items: scores_of(model, items, max(job.max_frames, 20000), device)  # noqa: E731
    result["eval"] = {}
    for split in splits:
        items = items_of(data, split)
        scores = scorer(items)
        result["eval"][split] = evaluate_split(scores, items, grid, job)
        if split == "test" and job.evidence_dir:
            path = Path(job.evidence_dir) / (job.key().replace("/", "__") + ".npz")
            Evidence.build(scores, items, grid, job).save(path)
            result["evidence"] = str(path)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def train(job: Job, data: dict) -> tuple[nn.Module, dict]:
    device = torch.device(job.device)
    train_items = items_of(data, "train")
    in_dim = train_items[0]["features"].shape[1]
    anchor = job.family in ANCHOR_VARIANTS
    collate_fn = collate(AnchorWeightConfig(**{k: job.setting[k] for k in ("kernel", "width", "gain")}) if anchor else None)
    torch.manual_seed(job.seed)  # same initial weights for every loss and setting of a (task, model, seed)
    model = build_model(job.model, in_dim, data["cmvn_mean"], data["cmvn_std"])
    init_checksum = parameter_checksum(model)
    model.to(device)
    sampler = LengthBucketBatchSampler([it["num_frames"] for it in train_items], max_frames=job.max_frames,
                                       shuffle=True, seed=job.seed, pool_size=512)  # same batch order per seed
    total_steps = max(1, len(sampler) * job.epochs)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate(job), weight_decay=1e-4)
    warmup = max(1, total_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    epoch_loss, anchor_weight = [], None
    floors = torch.stack([noise_floor(it["features"], job.fbank_bins) for it in train_items]) if job.augment else None
    model.train()
    for epoch in range(job.epochs):
        sampler.set_epoch(epoch)
        total, count = 0.0, 0
        for step, indices in enumerate(sampler):
            batch = collate_fn([train_items[i] for i in indices])
            if floors is not None:  # same draws for every family of a seed: the generator follows the batch order
                rng = torch.Generator().manual_seed(job.seed * 1_000_003 + epoch * 10_007 + step)
                batch["features"] = augment_batch(batch["features"], floors[list(indices)], job.fbank_bins, rng)
            if anchor_weight is None and "weight" in batch and bool((batch["distance"] == 0).any()):
                anchor_weight = float(batch["weight"][batch["distance"] == 0].mean())
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            loss = loss_value(job.family, job.setting, model(batch["features"]), batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
            count += 1
        epoch_loss.append(total / max(count, 1))
    model.eval()
    return model, {
        "key": job.key(), "phase": job.phase, "task": job.task, "model": job.model, "family": job.family,
        "setting": job.setting, "seed": job.seed, "epochs": job.epochs, "steps": total_steps,
        "parameters": num_parameters(model), "init_checksum": init_checksum, "epoch_loss": epoch_loss,
        "anchor_weight_at_anchor": anchor_weight, "train_seconds": 0.0,
    }


@dataclass(frozen=True)
class Augmentation:
    """Per-utterance feature augmentation of the training batches (every family alike).

    On the log-mel bins of each stacked feature frame (accelerometer features untouched), per
    utterance: with probability ``noise_p`` a raised noise floor, ``log(e^x + e^n)`` with ``n`` the
    utterance's 20th-percentile level per bin plus U(``floor_db``) and 0.5 nepers of per-frame jitter
    (a lower SNR); a frequency warp ``x'[k] = x[k / a]`` with ``a`` uniform in ``warp`` (linear
    interpolation over the bin index: a stand-in for the vocal-tract length and formant shifts
    between voices); a gain uniform in ``gain_db``; one frequency mask of 0..``mask_bins`` bins.
    """

    warp: tuple[float, float] = (0.85, 1.15)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    noise_p: float = 0.5
    floor_db: tuple[float, float] = (0.0, 12.0)
    mask_bins: int = 5


DB_TO_NEPER = math.log(10.0) / 10.0  # log-mel features are natural logs of power


def noise_floor(features: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-bin 20th percentile of one utterance's log-mel values, ``(bins,)``."""
    x = features[:, : features.shape[1] // bins * bins].reshape(-1, bins)
    return x.kthvalue(max(1, int(0.2 * x.shape[0])), dim=0).values


def augment_batch(features: torch.Tensor, floors: torch.Tensor, bins: int, rng: torch.Generator,
                  config: Augmentation = Augmentation()) -> torch.Tensor:
    """`Augmentation` of a padded batch ``(B, T, s * bins [+ extra])``; ``floors``: `noise_floor` per row."""
    b, t, f = features.shape
    stacked = f // bins * bins
    x = features[..., :stacked].reshape(b, t, -1, bins)

    def uniform(lo_hi: tuple[float, float], *shape: int) -> torch.Tensor:
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * torch.rand(*shape, generator=rng)

    noisy = torch.rand(b, generator=rng) < config.noise_p
    floor = (floors + uniform(config.floor_db, b, 1) * DB_TO_NEPER)[noisy][:, None, None, :]
    jitter = 0.5 * torch.randn(int(noisy.sum()), t, x.shape[2], 1, generator=rng)
    x = x.clone()
    x[noisy] = torch.logaddexp(x[noisy], floor + jitter)
    source = torch.arange(bins, dtype=torch.float32)[None, :] / uniform(config.warp, b, 1)  # (B, bins)
    lo = source.floor().clamp(0, bins - 1).long()
    hi = (lo + 1).clamp(max=bins - 1)
    frac = (source - lo).clamp(0, 1)[:, None, None, :]
    index = lambda i: i[:, None, None, :].expand(x.shape)  # noqa: E731
    x = torch.gather(x, 3, index(lo)) * (1 - frac) + torch.gather(x, 3, index(hi)) * frac
    x = x + (uniform(config.gain_db, b) * DB_TO_NEPER)[:, None, None, None]
    width = torch.randint(0, config.mask_bins + 1, (b,), generator=rng)
    start = (torch.rand(b, generator=rng) * (bins - width + 1)).long()
    k = torch.arange(bins)[None, :]
    masked = ((k >= start[:, None]) & (k < (start + width)[:, None]))[:, None, None, :]
    x = torch.lerp(x, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), masked.float())
    return torch.cat([x.reshape(b, t, stacked), features[..., stacked:]], dim=2)


@torch.no_grad()
def scores_of(model: nn.Module, items: list[dict], max_frames: int, device: torch.device) -> list[np.ndarray]:
    """Per-utterance event posteriors (one per model frame), in item order."""
    out: list[np.ndarray | None] = [None] * len(items)
    sampler = LengthBucketBatchSampler([it["num_frames"] for it in items], max_frames=max_frames, shuffle=False,
                                       oversize="single")
    fn = collate()
    for indices in sampler:
        batch = fn([items[i] for i in indices])
        post = torch.softmax(model(batch["features"].to(device)).float(), dim=-1)[..., 1].cpu()
        for row, i in enumerate(indices):
            out[i] = post[row, : int(batch["lengths"][row])].numpy().astype(np.float64)
    return out  # type: ignore[return-value]


def energy_scores(features: torch.Tensor, floor_frames: int = 33) -> np.ndarray:
    """Causal energy detector: frame log-mel energy above its running minimum over the last
    ``floor_frames`` frames (1 s at 30 ms), squashed to (0, 1). No learned parameters."""
    e = torch.logsumexp(features.double(), dim=1).numpy()
    e = np.convolve(e, np.ones(3) / 3, mode="full")[: len(e)]  # causal 3-frame mean
    padded = np.concatenate([np.full(floor_frames - 1, np.inf), e])
    floor = np.lib.stride_tricks.sliding_window_view(padded, floor_frames).min(axis=1)
    return 1.0 / (1.0 + np.exp(-(e - floor - 4.0)))


def evaluate_split(scores: list[np.ndarray], items: list[dict], grid: FrameGrid, job: Job) -> dict:
    report = evaluate(scores, [it["anchor_times_s"] for it in items], grid, durations_s=[it["duration_s"] for it in items],
                      fa_per_hour_targets=job.fa_per_hour, tolerance_s=job.tolerance_s, debounce_s=job.debounce_s,
                      max_latency_s=job.max_latency_s)
    return report.to_dict()


# ----------------------------------------------------------------------------------------------
# evidence for the bootstrap


@dataclass
class Evidence:
    """Per-utterance outcomes of one run on the test split, at a grid of thresholds (ascending).

    ``neg_alarms[u, k]``: counted false alarms of negative ``u`` at ``thresholds[k]`` (anchorprep's
    `AlarmCounter`, debounce as in the evaluation); ``latency[e, k]``: latency (s) of event ``e`` at
    ``thresholds[k]``, NaN for a miss (`detect_events`); ``pos_max`` / ``neg_max``: utterance maximum
    scores (AUC). Indices refer to the split's positives / negatives in cache order, identical for
    every run of a task.
    """

    thresholds: np.ndarray
    neg_alarms: np.ndarray
    neg_duration_s: np.ndarray
    neg_max: np.ndarray
    pos_max: np.ndarray
    event_utt: np.ndarray
    latency: np.ndarray
    pos_speaker: np.ndarray
    neg_category: np.ndarray
    fields: tuple[str, ...] = field(default=("thresholds", "neg_alarms", "neg_duration_s", "neg_max", "pos_max",
                                             "event_utt", "latency", "pos_speaker", "neg_category"), repr=False)

    @classmethod
    def build(cls, scores: list[np.ndarray], items: list[dict], grid: FrameGrid, job: Job, points: int = 100,
              top_negatives: int = 100):
        pos = [i for i, it in enumerate(items) if len(it["anchor_times_s"])]
        neg = [i for i, it in enumerate(items) if not len(it["anchor_times_s"])]
        pos_traces = Traces.from_scores([scores[i] for i in pos], None)
        events = Events.build(pos_traces, anchor_lists([items[i]["anchor_times_s"] for i in pos], len(pos)), grid,
                              job.tolerance_s, job.max_latency_s)
        event_max = events.max_scores(pos_traces)
        neg_max = np.array([scores[i].max() for i in neg])
        # Event-score quantiles for the FRR axis; just above each of the highest negative maxima,
        # where the false-alarm count steps, for operating points at a few alarms per hour.
        top = np.sort(neg_max)[-top_negatives:]
        thresholds = np.unique(np.concatenate([np.quantile(event_max[np.isfinite(event_max)], np.linspace(0, 1, points)),
                                               np.quantile(neg_max, np.linspace(0.5, 0.9, points // 2)),
                                               top, np.nextafter(top, np.inf)]))
        alarms = np.zeros((len(neg), len(thresholds)), dtype=np.int16)
        for row, i in enumerate(neg):
            counter = AlarmCounter.build(Traces.from_scores([scores[i]], None), grid, job.debounce_s)
            live = np.flatnonzero(thresholds <= neg_max[row])
            if live.size:
                alarms[row, live] = counter.counts(thresholds[live])
        latency = np.stack([detect_events(pos_traces, events, grid, float(t)).latency_s for t in thresholds], axis=1)
        return cls(thresholds=thresholds, neg_alarms=alarms,
                   neg_duration_s=np.array([items[i]["duration_s"] for i in neg]), neg_max=neg_max,
                   pos_max=np.array([scores[i].max() for i in pos]), event_utt=events.utterance.astype(np.int32),
                   latency=latency.astype(np.float32), pos_speaker=np.array([items[i]["speaker"] for i in pos]),
                   neg_category=np.array([items[i]["category"] for i in neg]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **{f: getattr(self, f) for f in self.fields})

    @classmethod
    def load(cls, path: str | Path) -> Evidence:
        with np.load(path) as z:
            return cls(**{f: z[f] for f in cls.__dataclass_fields__ if f != "fields"})
