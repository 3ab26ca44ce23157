"""Forward+backward cost of the anchorprep losses: against ``F.cross_entropy``, and as a share of
one training step of the SAL evidence benchmark's models.

**Ratios.** For each shape (B, T, C) the script times one training step's loss work — forward,
``backward()`` and the gradient write into ``logits.grad`` — for FCE, FL, SAL, SA+FL and SAFL
(functional API, default hyper-parameters, int16 distances) and for the baseline
``F.cross_entropy(logits.transpose(1, 2), target)`` (the faster of torch's two idiomatic calls on
CPU) on the same logits and targets; padded frames carry ``ignore_index`` for everyone. Each of
``--repeats`` rounds times ``--inner`` steps of every loss in a new random order; the table shows
the median ms per step and the median of the per-round ratios to the baseline (paired, so load
drift between rounds cancels). Aim: every variant <= 1.6x at the two target shapes. Informational
rows: the flattened ``F.cross_entropy(logits.reshape(-1, C), ...)`` call, SAFL fed the way a data
loader might (int16 targets, padding from ``lengths``), a tiny batch (each loss's fixed per-call
cost) and a long one. The last column counts minor page faults per step (glibc returning freed
multi-MB buffers to the OS and faulting them back in: the main source of run-to-run noise).

**Training-step share.** The evidence benchmark's causal CNN and GRU
(``benchmarks/sal_training/sal_train.py``, default sizes, two logits per frame) on a batch of
``--train-batch`` utterances x frames of 80-dim features: one step = model forward + loss +
``backward()`` + gradient clipping + AdamW step, as ``sal_train.run_job`` does. In each round, for
every variant in a new order, the script times such a step and, right after, the loss's own
forward+backward on the step's (detached) logits; the share is the median of the per-round ratios.
Aim: under 3 %.

    python benchmarks/bench_loss.py [--repeats 15] [--inner 10] [--train-repeats 3]
                                    [--train-batch 64x500] [--threads N] [--json out.json]
                                    [--no-info] [--quick] [--keep-freed-memory]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from anchorprep.loss import focal_loss, frame_cross_entropy, streaming_anchor_loss  # noqa: E402

SHAPES: tuple[tuple[int, int, int], ...] = ((64, 500, 2), (64, 500, 12))
# Informational: a tiny batch shows each loss's fixed per-call cost (op dispatch, autograd), a
# long one how that cost amortises. The aim applies to SHAPES only.
INFO_SHAPES: tuple[tuple[int, int, int], ...] = ((1, 8, 2), (64, 2000, 2))
TARGET_RATIO = 1.6
TARGET_SHARE = 0.03
VARIANTS = ("FCE", "FL", "SAL", "SA+FL", "SAFL")
BASELINE = "F.cross_entropy"
MODELS = ("cnn", "gru")
FEATURES = 80


def make_batch(b: int, t: int, c: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random logits and a shard-like padded batch: one anchor per positive utterance, 30-frame
    positive windows, int16 distances (32767 = no anchor), padded frames' targets = -100."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 2, t + 1, (b,), generator=gen)
    lengths[0] = t
    anchors = (torch.rand(b, generator=gen) * lengths).long()
    frames = torch.arange(t)
    distance = (frames - anchors[:, None]).clamp(-32767, 32767)
    negative = torch.rand(b, generator=gen) < 0.5
    distance[negative] = 32767
    labels = torch.randint(1, c, (b,), generator=gen)
    target = torch.where((distance >= 0) & (distance <= 30), labels[:, None], 0)
    target[frames >= lengths[:, None]] = -100
    logits = torch.randn(b, t, c, generator=gen)
    return {
        "logits": logits.to(device).requires_grad_(True),
        "target": target.to(device),
        "target_int16": target.to(torch.int16).to(device),
        "distance": distance.to(torch.int16).to(device),
        "lengths": lengths.to(device),
    }


def variant_losses() -> dict[str, Callable[..., torch.Tensor]]:
    """``name -> loss(logits, target, distance)``: the baseline and the five variants."""
    return {
        BASELINE: lambda z, y, d: F.cross_entropy(z.transpose(1, 2), y),
        "FCE": lambda z, y, d: frame_cross_entropy(z, y),
        "FL": lambda z, y, d: focal_loss(z, y),
        "SAL": lambda z, y, d: streaming_anchor_loss(z, y, d, variant="sal"),
        "SA+FL": lambda z, y, d: streaming_anchor_loss(z, y, d, variant="sa+fl"),
        "SAFL": lambda z, y, d: streaming_anchor_loss(z, y, d, variant="safl"),
    }


def loss_fns(batch: dict[str, torch.Tensor], info: bool = True) -> dict[str, Callable[[], torch.Tensor]]:
    """The baseline and the five variants on identical inputs (padding = ignore_index), plus with
    ``info`` the flattened F.cross_entropy call and SAFL fed as a data loader might (int16
    targets, padding from ``lengths``)."""
    z, y, d, n = batch["logits"], batch["target"], batch["distance"], batch["lengths"]
    fns = {name: (lambda f=f: f(z, y, d)) for name, f in variant_losses().items()}
    if info:
        y16 = batch["target_int16"]
        fns["F.cross_entropy (flat)"] = lambda: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1))
        fns["SAFL (int16 target, lengths)"] = lambda: streaming_anchor_loss(
            z, y16, d, variant="safl", lengths=n
        )
    return fns


def minor_faults() -> int:
    """Minor page faults of this process so far (0 where the OS does not count them)."""
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory instead of returning it to the OS (``mallopt``), as the
    jemalloc/tcmalloc setups that PyTorch's CPU performance guide recommends do. False where the
    C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold, one_gib = -1, -3, 1 << 30
        return bool(libc.mallopt(m_trim_threshold, one_gib)) and bool(
            libc.mallopt(m_mmap_threshold, one_gib)
        )
    except (OSError, AttributeError):
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_time(fn: Callable[[], torch.Tensor], logits: torch.Tensor, inner: int) -> float:
    """Mean seconds of ``inner`` forward+backward steps (grad reset outside the timed region)."""
    total = 0.0
    for _ in range(inner):
        logits.grad = None
        _sync(logits.device)
        start = time.perf_counter()
        fn().backward()
        _sync(logits.device)
        total += time.perf_counter() - start
    return total / inner


def run(
    repeats: int, inner: int, device: str, shapes: tuple[tuple[int, int, int], ...] = SHAPES,
    info: bool = True,
) -> list[dict[str, object]]:
    """Time every loss at every shape; each round interleaves the losses in a new order."""
    rows: list[dict[str, object]] = []
    for b, t, c in shapes:
        batch = make_batch(b, t, c, device)
        fns = loss_fns(batch, info)
        for fn in fns.values():  # warm-up
            step_time(fn, batch["logits"], 3)
        samples: dict[str, list[float]] = {name: [] for name in fns}
        faults = dict.fromkeys(fns, 0)
        order = list(fns)
        shuffle = random.Random(b * t * c)
        for _ in range(repeats):
            shuffle.shuffle(order)
            for name in order:
                before = minor_faults()
                samples[name].append(step_time(fns[name], batch["logits"], inner))
                faults[name] += minor_faults() - before
        base = samples[BASELINE]
        for name, values in samples.items():
            rows.append({
                "variant": name,
                "shape": f"({b},{t},{c})",
                "ms": statistics.median(values) * 1e3,
                "ratio": statistics.median(v / b0 for v, b0 in zip(values, base)),
                "faults_per_step": faults[name] / (repeats * inner),
                "target": (b, t, c) in SHAPES,
                "ms_samples": [v * 1e3 for v in values],
            })
    return rows


def training_models(in_dim: int = FEATURES) -> dict[str, torch.nn.Module]:
    """The evidence benchmark's CNN and GRU detectors at their default sizes (identity CMVN)."""
    sys.path.insert(0, str(REPO / "benchmarks" / "sal_training"))
    from sal_train import build_model

    torch.manual_seed(0)
    mean, std = torch.zeros(in_dim), torch.ones(in_dim)
    return {name: build_model(name, in_dim, mean, std) for name in MODELS}


def run_training(
    repeats: int, batch_size: int, frames: int, device: str
) -> list[dict[str, object]]:
    """Per model and variant: the median step time and the loss's median share of it."""
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(batch_size, frames, FEATURES, generator=gen).to(device)
    batch = make_batch(batch_size, frames, 2, device)
    target, distance = batch["target"], batch["distance"]
    losses = variant_losses()
    rows: list[dict[str, object]] = []
    for model_name, model in training_models().items():
        model.to(device).train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)

        def train_step(loss_fn: Callable[..., torch.Tensor]) -> tuple[float, torch.Tensor]:
            _sync(features.device)
            start = time.perf_counter()
            logits = model(features)
            loss = loss_fn(logits, target, distance)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            _sync(features.device)
            return time.perf_counter() - start, logits.detach()

        def loss_only(loss_fn: Callable[..., torch.Tensor], logits: torch.Tensor) -> float:
            z = logits.clone().requires_grad_(True)
            return step_time(lambda: loss_fn(z, target, distance), z, 1)

        loss_only(losses[BASELINE], train_step(losses[BASELINE])[1])  # warm-up
        steps: dict[str, list[float]] = {name: [] for name in losses}
        shares: dict[str, list[float]] = {name: [] for name in losses}
        order = list(losses)
        shuffle = random.Random(len(model_name))
        for _ in range(repeats):
            shuffle.shuffle(order)
            for name in order:
                seconds, logits = train_step(losses[name])
                steps[name].append(seconds)
                shares[name].append(loss_only(losses[name], logits) / seconds)
        for name in losses:
            rows.append({
                "model": model_name,
                "variant": name,
                "batch": f"{batch_size}x{frames}x{FEATURES}",
                "step_ms": statistics.median(steps[name]) * 1e3,
                "share": statistics.median(shares[name]),
            })
    return rows


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float:
    """1-minute load average (NaN where the OS has none): context for noisy timings."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| variant | shape (B,T,C) | ms (fwd+bwd) | ratio to F.cross_entropy | page faults/step |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        shape = row["shape"] if row["target"] else f"{row['shape']} (info)"
        lines.append(
            f"| {row['variant']} | {shape} | {row['ms']:.3f} | {row['ratio']:.2f} "
            f"| {row['faults_per_step']:.0f} |"
        )
    return "\n".join(lines)


def markdown_training(rows: list[dict[str, object]]) -> str:
    """One row per loss; per model the median step time and the loss's share of it."""
    cells: dict[str, dict[str, dict[str, object]]] = {}
    for row in rows:
        cells.setdefault(str(row["variant"]), {})[str(row["model"])] = row
    models = list(dict.fromkeys(str(row["model"]) for row in rows))
    batch = rows[0]["batch"] if rows else ""
    lines = [
        f"| loss (batch {batch}) | "
        + " | ".join(f"{m} step ms | {m} loss share" for m in models) + " |",
        "|---|" + "---:|---:|" * len(models),
    ]
    for variant, by_model in cells.items():
        lines.append(
            f"| {variant} | "
            + " | ".join(
                f"{by_model[m]['step_ms']:.1f} | {100 * float(by_model[m]['share']):.2f} %"
                for m in models
            )
            + " |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, object]], training: list[dict[str, object]]) -> str:
    slow = [f"{r['variant']} {r['shape']}" for r in rows
            if r["target"] and r["variant"] in VARIANTS and float(r["ratio"]) > TARGET_RATIO]
    heavy = [f"{r['variant']} {r['model']}" for r in training
             if r["variant"] in VARIANTS and float(r["share"]) >= TARGET_SHARE]
    ratio = f"over {TARGET_RATIO}x: {', '.join(slow)}" if slow else f"every variant <= {TARGET_RATIO}x"
    share = (f"share >= {TARGET_SHARE:.0%}: {', '.join(heavy)}" if heavy
             else f"every share < {TARGET_SHARE:.0%}")
    return f"{ratio}; {share}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (median taken)")
    parser.add_argument("--inner", type=int, default=10, help="steps averaged per round")
    parser.add_argument("--train-repeats", type=int, default=3, help="training-step rounds")
    parser.add_argument("--train-batch", default="64x500", help="utterances x frames per step")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-info", action="store_true", help="only the target shapes and rows")
    parser.add_argument(
        "--quick", action="store_true",
        help="a smoke run: 2 rounds of 1 step, no info rows, an 8x100 training batch",
    )
    parser.add_argument(
        "--keep-freed-memory", action="store_true",
        help="glibc mallopt: no trimming, no mmap for large buffers (removes page-fault noise)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.inner, args.train_repeats = 2, 1, 2
        args.train_batch, args.no_info = "8x100", True
    batch_size, frames = (int(v) for v in args.train_batch.lower().split("x"))
    malloc = "glibc defaults"
    if args.keep_freed_memory:
        malloc = "glibc keeps freed memory" if keep_freed_memory() else "mallopt unavailable"

    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)
    load_before = load_average()
    shapes = SHAPES if args.no_info else SHAPES + INFO_SHAPES
    rows = run(args.repeats, args.inner, args.device, shapes, info=not args.no_info)
    training = run_training(args.train_repeats, batch_size, frames, args.device)
    load_after = load_average()
    print(markdown(rows))
    print()
    print(markdown_training(training))
    print(
        f"\n{verdict(rows, training)} (torch {torch.__version__}, {threads} threads, "
        f"{platform.machine()}, {args.device}, {malloc}, "
        f"1-min load average {load_before:.2f} -> {load_after:.2f})"
    )
    if args.json is not None:
        meta = {
            "torch": torch.__version__,
            "threads": threads,
            "device": args.device,
            "machine": platform.machine(),
            "python": platform.python_version(),
            "repeats": args.repeats,
            "inner": args.inner,
            "train_repeats": args.train_repeats,
            "baseline": "F.cross_entropy(logits.transpose(1, 2), target)",
            "malloc": malloc,
            "loadavg_1min_before_after": [load_before, load_after],
        }
        payload = {"meta": meta, "results": rows, "training": training}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
