"""Forward+backward cost of the anchorprep losses relative to ``F.cross_entropy``.

For each shape (B, T, C) the script times one training step's loss work — forward, ``backward()``
and the gradient write into ``logits.grad`` — for FCE, FL, SAL, SA+FL and SAFL (functional API,
default hyper-parameters, int16 distances) and for the baseline
``F.cross_entropy(logits.transpose(1, 2), target)`` (the faster of torch's two idiomatic calls on
CPU) on the same logits and targets; padded frames carry ``ignore_index`` for everyone. All losses
are interleaved in the same run; each of ``--repeats`` rounds times ``--inner`` steps of every
loss. The table shows the median ms per step, the median of the per-round ratios to the baseline
(paired, so load drift between rounds cancels) and, for reference on a busy machine, the ratio of
the fastest rounds. Target: every variant <= 1.3x.

Three informational rows: the flattened ``F.cross_entropy(logits.reshape(-1, C), ...)`` call,
SAFL fed the way a data loader might (int16 targets, padding from ``lengths``) and SAFL on the
eager torch-ops path (the fused CPU kernel switched off: what the kernel buys). Two informational
shapes: a tiny batch (each loss's fixed per-call cost: op dispatch and autograd) and a long one
(how that cost amortises). The last column counts minor page faults per step: glibc returns
freed multi-MB buffers to the OS and faults them back in, which can double a step's time and is
the main source of run-to-run noise here (it hits the baseline as much as the losses).

    python benchmarks/bench_loss.py [--repeats 15] [--inner 10] [--threads N] [--json out.json]
                                    [--no-info] [--keep-freed-memory]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchorprep.loss import (  # noqa: E402
    _fused,
    focal_loss,
    frame_cross_entropy,
    streaming_anchor_loss,
)

SHAPES: tuple[tuple[int, int, int], ...] = ((64, 500, 2), (64, 500, 12))
# Informational: a tiny batch shows each loss's fixed per-call cost (op dispatch, autograd), a
# long one how that cost amortises. The target applies to SHAPES only.
INFO_SHAPES: tuple[tuple[int, int, int], ...] = ((1, 8, 2), (64, 2000, 2))
TARGET_RATIO = 1.3
VARIANTS = ("FCE", "FL", "SAL", "SA+FL", "SAFL")


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


def loss_fns(batch: dict[str, torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    """The baseline and the five variants on identical inputs (padding = ignore_index), plus
    informational rows: the flattened F.cross_entropy call, SAFL fed as a data loader might
    (int16 targets, padding from ``lengths``) and SAFL with the fused kernel switched off."""
    z, y, d, n = batch["logits"], batch["target"], batch["distance"], batch["lengths"]
    y16 = batch["target_int16"]
    return {
        "F.cross_entropy": lambda: F.cross_entropy(z.transpose(1, 2), y),
        "F.cross_entropy (flat)": lambda: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1)),
        "FCE": lambda: frame_cross_entropy(z, y),
        "FL": lambda: focal_loss(z, y),
        "SAL": lambda: streaming_anchor_loss(z, y, d, variant="sal"),
        "SA+FL": lambda: streaming_anchor_loss(z, y, d, variant="sa+fl"),
        "SAFL": lambda: streaming_anchor_loss(z, y, d, variant="safl"),
        "SAFL (int16 target, lengths)": lambda: streaming_anchor_loss(
            z, y16, d, variant="safl", lengths=n
        ),
        "SAFL (eager path)": on_eager_path(lambda: streaming_anchor_loss(z, y, d, variant="safl")),
    }


def on_eager_path(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``fn`` with the fused CPU kernel switched off (the torch-ops path it replaces)."""
    def call() -> torch.Tensor:
        _fused.enabled = False
        try:
            return fn()
        finally:
            _fused.enabled = True
    return call


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


def step_time(fn: Callable[[], torch.Tensor], logits: torch.Tensor, inner: int) -> float:
    """Mean seconds of ``inner`` forward+backward steps (grad reset outside the timed region)."""
    total = 0.0
    for _ in range(inner):
        logits.grad = None
        if logits.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn().backward()
        if logits.is_cuda:
            torch.cuda.synchronize()
        total += time.perf_counter() - start
    return total / inner


def run(
    repeats: int, inner: int, device: str, shapes: tuple[tuple[int, int, int], ...] = SHAPES
) -> list[dict[str, object]]:
    """Time every loss at every shape; repeats interleave the losses to share machine drift."""
    rows: list[dict[str, object]] = []
    for b, t, c in shapes:
        batch = make_batch(b, t, c, device)
        fns = loss_fns(batch)
        for fn in fns.values():  # warm-up
            step_time(fn, batch["logits"], 3)
        samples: dict[str, list[float]] = {name: [] for name in fns}
        faults = dict.fromkeys(fns, 0)
        order = list(fns)
        shuffle = random.Random(b * t * c)
        for _ in range(repeats):
            # A step's page faults depend on what the previous loss left in the heap: a new
            # order each round spreads that over every loss instead of pinning it on one.
            shuffle.shuffle(order)
            for name in order:
                fn = fns[name]
                before = minor_faults()
                samples[name].append(step_time(fn, batch["logits"], inner))
                faults[name] += minor_faults() - before
        base = samples["F.cross_entropy"]
        for name, values in samples.items():
            rows.append({
                "variant": name,
                "shape": f"({b},{t},{c})",
                "ms": statistics.median(values) * 1e3,
                # paired per repeat, so load drift between repeats cancels
                "ratio": statistics.median(v / b0 for v, b0 in zip(values, base)),
                "ms_min": min(values) * 1e3,
                "ratio_min": min(values) / min(base),
                "faults_per_step": faults[name] / (repeats * inner),
                "target": (b, t, c) in SHAPES,
                "ms_samples": [v * 1e3 for v in values],
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
        "| variant | shape (B,T,C) | ms (fwd+bwd) | ratio to F.cross_entropy | best-of ratio "
        "| page faults/step |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        shape = row["shape"] if row["target"] else f"{row['shape']} (info)"
        lines.append(
            f"| {row['variant']} | {shape} | {row['ms']:.3f} | {row['ratio']:.2f} "
            f"| {row['ratio_min']:.2f} | {row['faults_per_step']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats (median taken)")
    parser.add_argument("--inner", type=int, default=10, help="steps averaged per repeat")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-info", action="store_true", help="only the target shapes")
    parser.add_argument(
        "--keep-freed-memory", action="store_true",
        help="glibc mallopt: no trimming, no mmap for large buffers (removes page-fault noise)",
    )
    args = parser.parse_args(argv)
    malloc = "glibc defaults"
    if args.keep_freed_memory:
        malloc = "glibc keeps freed memory" if keep_freed_memory() else "mallopt unavailable"

    path = _fused.status() if args.device == "cpu" else "eager"
    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)
    load_before = load_average()
    shapes = SHAPES if args.no_info else SHAPES + INFO_SHAPES
    rows = run(args.repeats, args.inner, args.device, shapes)
    load_after = load_average()
    print(markdown(rows))
    slow = [
        r for r in rows
        if r["target"] and r["variant"] in VARIANTS and float(r["ratio"]) > TARGET_RATIO
    ]
    verdict = "all variants within" if not slow else "over " + ", ".join(
        f"{r['variant']} {r['shape']}" for r in slow
    ) + ";"
    print(
        f"\n{verdict} target {TARGET_RATIO}x (torch {torch.__version__}, {threads} threads, "
        f"{platform.machine()}, {malloc}, loss path: {path}, "
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
            "baseline": "F.cross_entropy(logits.transpose(1, 2), target)",
            "malloc": malloc,
            "loss_path": path,
            "loadavg_1min_before_after": [load_before, load_after],
        }
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
