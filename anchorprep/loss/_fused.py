"""The one-pass CPU kernel behind the float32 losses (``_fused.cpp``), built on first use.

The eager path (:mod:`anchorprep.loss._frame`) is 25-35 torch ops per loss; at a training batch
of (64, 500, C) their dispatch and allocations cost about as much as the arithmetic. The fused
kernel computes the loss and its gradient in one vectorised pass over the logits (ATen's
``Vectorized``, Sleef's ``exp``/``log1p``), so a loss costs about what ``F.cross_entropy`` does.

It is used for every loss on float32, bfloat16 and float16 logits on the CPU with integer
distances (as stored in shards), outside ``torch.compile``/TorchScript. float64 (``gradcheck``),
CUDA, floating distances and compiled code use the eager path, whose results it matches to
float32 rounding. A backward with ``create_graph=True`` of FCE or SAL with more than two classes
(where torch's cross entropy has a second derivative) differentiates the eager formula.

It is compiled with ``torch.utils.cpp_extension`` (a C++ compiler and ninja) the first time a
loss needs it, about 20 s on a 2-core machine, and cached in ``TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``). If the build fails, a warning says why and the eager path is
used. ``ANCHORPREP_FUSED_LOSS=0`` turns it off; :func:`status` (``anchorprep.loss.fused_loss_status``)
builds it if needed and says which path is in use.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from anchorprep.loss._frame import _refuse_create_graph

SOURCE = Path(__file__).with_name("_fused.cpp")
ENV_SWITCH = "ANCHORPREP_FUSED_LOSS"
_REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}
_LOGIT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_INDEX_DTYPES = (torch.int16, torch.int32, torch.int64, torch.uint8, torch.int8)
enabled = os.environ.get(ENV_SWITCH, "1") != "0"  # tests flip this to compare both paths


def _compiler_flags() -> list[str]:
    flags = ["-O3", "-fopenmp"]  # OpenMP: at::parallel_for, resolved to torch's own libgomp
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


@functools.lru_cache(maxsize=None)
def _build() -> str | None:
    """Build and load the kernel once per process; None on success, else why it is unavailable."""
    logging.getLogger(__name__).info(
        "building the fused CPU loss kernel (once; cached by torch.utils.cpp_extension)"
    )
    try:
        from torch.utils import cpp_extension

        if shutil.which("ninja") is None:  # the ninja wheel, when its venv is not on PATH
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        cpp_extension.load(
            name="anchorprep_fused_loss",
            sources=[str(SOURCE)],
            extra_cflags=_compiler_flags(),
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as exc:  # no compiler, no ninja, a failed build: the eager path still works
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        warnings.warn(
            f"anchorprep.loss: the fused CPU kernel is unavailable ({reason}); using the eager "
            f"torch path (same results, slower). Set {ENV_SWITCH}=0 to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return reason
    return None


def status() -> str:
    """``"fused"`` when the CPU kernel is in use, else ``"eager (<why>)"``; builds it if needed."""
    if not enabled:
        return f"eager ({ENV_SWITCH}=0)"
    reason = _build()
    return "fused" if reason is None else f"eager ({reason})"


def applies(logits: Tensor, target: Tensor, distance: Tensor | None) -> bool:
    """Whether this call goes through the fused kernel (see the module docstring)."""
    return (
        enabled
        and logits.device.type == "cpu"
        and logits.dtype in _LOGIT_DTYPES
        and (target.dtype in _INDEX_DTYPES or target.dtype == torch.bool)
        and (distance is None or distance.dtype in _INDEX_DTYPES)
        and not torch.compiler.is_compiling()
        and not torch.jit.is_scripting()
        and _build() is None
    )


def _contiguous(tensor: Tensor | None, dtype: torch.dtype | None = None) -> Tensor | None:
    if tensor is None:
        return None
    return tensor.to(device="cpu", dtype=dtype or tensor.dtype).contiguous()


def frame_loss(
    logits: Tensor,
    target: Tensor,
    *,
    mask: Tensor | None,
    lengths: Tensor | None,
    distance: Tensor | None,
    table: Tensor | None,
    alpha: Tensor | None,
    ignore_index: int,
    gain: float,
    gamma: float,
    focal_per_frame: bool,
    normalize_weights: bool,
    reduction: str,
    second_order: Callable[[Tensor], Tensor] | None,
) -> Tensor:
    """The loss of :mod:`anchorprep.loss.functional` for arguments already checked there.

    ``second_order`` is the same loss from differentiable torch ops, used only by a backward
    with ``create_graph=True``; without it such a backward raises.
    """
    args = (
        _contiguous(target.view(torch.uint8) if target.dtype == torch.bool else target),
        _contiguous(lengths, torch.int64),
        _contiguous(mask, torch.bool),
        _contiguous(distance),
        table,
        _contiguous(alpha, torch.float32),
        int(ignore_index),
        float(gain),
        float(gamma),
        bool(focal_per_frame),
        bool(normalize_weights),
        _REDUCTIONS[reduction],
    )
    if not (torch.is_grad_enabled() and logits.requires_grad):
        z = logits.detach().to(torch.float32).contiguous()
        return torch.ops.anchorprep.frame_loss(z, *args, False)[0]
    return _FusedFrameLoss.apply(logits, args, second_order)


class _FusedFrameLoss(torch.autograd.Function):
    """The kernel writes ∂Σterm/∂logits in the forward; the backward only scales it."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, logits: Tensor, args: tuple, second_order: Callable[[Tensor], Tensor] | None
    ) -> Tensor:
        z = logits.detach().to(torch.float32).contiguous()
        loss, grad, scale = torch.ops.anchorprep.frame_loss(z, *args, True)
        ctx.logits_dtype, ctx.second_order = logits.dtype, second_order
        ctx.save_for_backward(grad, scale, logits if second_order is not None else None)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        grad, scale, logits = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True
            if ctx.second_order is None:
                _refuse_create_graph()
            (grad_logits,) = torch.autograd.grad(
                ctx.second_order(logits), logits, grad_out, create_graph=True
            )
            return grad_logits, None, None
        if grad_out.dim() == 0:
            grad_logits = grad * (grad_out * scale)
        else:  # reduction "none": one upstream value per frame
            grad_logits = grad * (grad_out.unsqueeze(-1) if grad.dim() == 3 else grad_out)
        return grad_logits.to(ctx.logits_dtype), None, None
