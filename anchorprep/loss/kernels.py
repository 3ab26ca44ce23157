"""Anchor kernels ``K(d)`` and anchor weights ``w = 1 + λ·K(d)`` (docs/FORMAT.md, "Anchor weights").

``d_t = t - a(t)`` is the signed distance (in model frames) from frame ``t`` to its nearest anchor,
as stored in the shards (int16, saturating at ±32767; ``|d| >= 32767`` means "no anchor in
range", for which ``K = 0`` and ``w = 1``). ``W_b`` is the width before the anchor (``d < 0``),
``W_a`` the width after it (``d >= 0``); ``u = |d| / W_side``:

============  ==================================
kernel        ``K(d)``
============  ==================================
linear        ``max(0, 1 - u)``
exponential   ``exp(-u)``
gaussian      ``exp(-u²/2)`` = ``exp(-d²/2W²)``
box           ``1 if |d| <= W_side else 0``
============  ==================================

Reference: Sarawgi et al., "Streaming Anchor Loss: Augmenting Supervision with Temporal
Significance", arXiv:2310.05886 (ICASSP 2024).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from anchorprep.errors import UsageError
from anchorprep.loss.defaults import (
    DEFAULT_GAIN,
    DEFAULT_KERNEL,
    DEFAULT_WIDTH,
    KERNELS,
    NO_ANCHOR,
)

__all__ = ["anchor_kernel", "anchor_weights", "resolve_widths"]


def resolve_widths(
    kernel: str,
    width: float = DEFAULT_WIDTH,
    width_before: float | None = None,
    width_after: float | None = None,
) -> tuple[float, float]:
    """Validate ``kernel`` and return ``(W_b, W_a)``; a side left as ``None`` uses ``width``.

    Widths are Python numbers (never tensors: reading a tensor would sync the device). They must
    be finite and ``> 0`` (``>= 0`` for ``box``, where ``W = 0`` keeps only the anchor frame).

    >>> resolve_widths("linear", 20.0, width_after=40.0)
    (20.0, 40.0)
    """
    if kernel not in KERNELS:
        raise UsageError(f"`kernel` must be one of {', '.join(KERNELS)}; got {kernel!r}")
    sides = []
    for side, override in (("width_before", width_before), ("width_after", width_after)):
        name, value = ("width", float(width)) if override is None else (side, float(override))
        if not math.isfinite(value) or value < 0 or (value == 0 and kernel != "box"):
            raise UsageError(
                f"`{name}` must be a finite number > 0 (>= 0 for 'box'), got {value!r}"
            )
        sides.append(value)
    return sides[0], sides[1]


def _kernel_at_no_anchor(kernel: str, w: float) -> float:
    """``K`` at ``|d| = NO_ANCHOR`` in float64: if it is 0, no explicit "no anchor" mask is needed."""
    u = NO_ANCHOR / w if w > 0 else math.inf
    if kernel == "linear":
        return max(0.0, 1.0 - u)
    if kernel == "exponential":
        return math.exp(-u)
    if kernel == "gaussian":
        return math.exp(-0.5 * u * u) if u < 1e150 else 0.0
    return 1.0 if NO_ANCHOR <= w else 0.0


@functools.lru_cache(maxsize=256)
def _plan(
    kernel: str, width: float, width_before: float | None, width_after: float | None
) -> tuple[float, float, bool]:
    """``(W_b, W_a, needs_no_anchor_mask)``, validated once per setting (cached)."""
    w_before, w_after = resolve_widths(kernel, width, width_before, width_after)
    needs_mask = max(_kernel_at_no_anchor(kernel, w) for w in (w_before, w_after)) > 0.0
    return w_before, w_after, needs_mask


def anchor_kernel(
    distance: Tensor,
    kernel: str = DEFAULT_KERNEL,
    width: float = DEFAULT_WIDTH,
    width_before: float | None = None,
    width_after: float | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""The anchor kernel ``K(d)`` of docs/FORMAT.md ("Anchor weights"), elementwise, in ``dtype`` (``0 <= K <= 1``).

    .. math::
        u = |d| / W_b \ (d < 0), \quad u = d / W_a \ (d \ge 0);\quad
        K_{linear} = \max(0, 1-u),\ K_{exp} = e^{-u},\ K_{gauss} = e^{-u^2/2},\
        K_{box} = [u \le 1]

    and ``K = 0`` wherever ``|d| >= 32767`` (``NO_ANCHOR``: no anchor in range). ``K(0) = 1``.
    The defaults (``DEFAULT_KERNEL``, ``DEFAULT_WIDTH``) were chosen by the SAL training
    benchmark; see :mod:`anchorprep.loss.defaults`. Reference: Sarawgi et al., arXiv:2310.05886.

    Integer distances are read from ``K`` tabulated by the same formula at every int16 distance
    (256 KiB in float32, cached per kernel, widths, dtype and device); floating distances, and
    code under ``torch.compile``, evaluate the formula.

    Args:
        distance: signed anchor distances ``d_t = t - a(t)`` in frames, any shape; integer
            (int16 as stored in shards, int32, int64) or floating.
        kernel: ``"linear"``, ``"exponential"``, ``"gaussian"`` or ``"box"``.
        width: ``W`` in frames, used on both sides unless overridden.
        width_before: ``W_b`` for frames before the anchor (``d < 0``).
        width_after: ``W_a`` for frames at or after the anchor (``d >= 0``).
        dtype: floating dtype of the result.

    Example:
        >>> d = torch.tensor([-30, -10, 0, 5, 10, 32767], dtype=torch.int16)
        >>> anchor_kernel(d, "linear", 20.0)
        tensor([0.0000, 0.5000, 1.0000, 0.7500, 0.5000, 0.0000])
        >>> anchor_kernel(d, "box", width_before=10.0, width_after=5.0)
        tensor([0., 1., 1., 1., 0., 0.])
    """
    compiling = torch.compiler.is_compiling()
    # Under torch.compile the (host-side, float-only) plan is traced instead of cached.
    plan = _plan.__wrapped__ if compiling else _plan
    w_before, w_after, needs_mask = plan(kernel, width, width_before, width_after)
    if compiling or distance.is_floating_point() or distance.is_complex():
        return _kernel_formula(distance.to(dtype), kernel, w_before, w_after, needs_mask)
    # Integer distances: one gather from K tabulated at every int16 distance. Besides saving a few
    # passes, this keeps exp() off "no anchor" frames, where exp(-32767/W) takes the slow
    # (underflow) path of the vectorised exp: 250 µs instead of 21 µs for 32k float32 values
    # (torch 2.13, x86; see _frame._exp_floor).
    table = _table(kernel, w_before, w_after, needs_mask, dtype, distance.device)
    index = distance if distance.dtype == torch.int16 else distance.clamp(-NO_ANCHOR, NO_ANCHOR)
    index = index.to(torch.int64).add_(_TABLE_OFFSET).reshape(-1)
    return table.index_select(0, index).view(distance.shape)


_TABLE_OFFSET = 32768  # table[d + 32768] = K(d) for every int16 d


@functools.lru_cache(maxsize=64)
def _table(
    kernel: str, w_before: float, w_after: float, needs_mask: bool, dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """``K(d)`` for ``d = -32768 .. 32767`` (the int16 range), computed by the formula itself."""
    d = torch.arange(-_TABLE_OFFSET, _TABLE_OFFSET, dtype=dtype, device=device)
    return _kernel_formula(d, kernel, w_before, w_after, needs_mask)


def _kernel_formula(
    d: Tensor, kernel: str, w_before: float, w_after: float, needs_mask: bool
) -> Tensor:
    """``K(d)`` elementwise for floating ``d`` (which may alias the caller's tensor)."""
    if w_before == w_after:
        w = w_after
        a = d.abs()
        if kernel == "linear":
            # (W - |d|)/W: exact 0 at |d| = W and exact 1 at d = 0
            k = torch.rsub(a, w).clamp_min_(0.0).div_(w)
        elif kernel == "exponential":
            k = a.div_(-w).exp_()
        elif kernel == "gaussian":
            k = a.mul_(a).div_(-2.0 * w * w).exp_()
        else:
            k = a.le_(w)  # in-place compare: 1.0 / 0.0 in dtype
    else:
        if kernel == "box":
            k = torch.logical_and(d <= w_after, d >= -w_before).to(d.dtype)
        else:
            # u = |d|/W_side: max() picks the side, as d/W_a and -d/W_b have opposite signs
            u = torch.maximum(d / w_after, d / -w_before)
            if kernel == "linear":
                k = torch.rsub(u, 1.0).clamp_min_(0.0)
            elif kernel == "exponential":
                k = u.neg_().exp_()
            else:
                k = u.mul_(u).mul_(-0.5).exp_()
    if needs_mask:
        k = k.masked_fill_(d.abs() >= NO_ANCHOR, 0.0)
    return k


def anchor_weights(
    distance: Tensor,
    kernel: str = DEFAULT_KERNEL,
    width: float = DEFAULT_WIDTH,
    width_before: float | None = None,
    width_after: float | None = None,
    gain: float = DEFAULT_GAIN,
    *,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Anchor weights ``w_t = 1 + λ·K(d_t)`` (docs/FORMAT.md, "Anchor weights"), ``λ = gain >= 0``; ``w = 1`` with no anchor.

    .. math:: w_t = 1 + \lambda\,K(d_t)

    See :func:`anchor_kernel` for ``K`` and the arguments; the defaults (``DEFAULT_KERNEL``,
    ``DEFAULT_WIDTH``, ``DEFAULT_GAIN``) were chosen by the SAL training benchmark
    (:mod:`anchorprep.loss.defaults`). Reference: Sarawgi et al., arXiv:2310.05886.

    Example:
        >>> d = torch.tensor([[-20, -10, 0, 10, 32767]])
        >>> anchor_weights(d, "linear", width=20.0, gain=2.0)
        tensor([[1., 2., 3., 2., 1.]])
    """
    gain = float(gain)
    if not math.isfinite(gain) or gain < 0:
        raise UsageError(f"`gain` must be a finite number >= 0, got {gain!r}")
    k = anchor_kernel(distance, kernel, width, width_before, width_after, dtype=dtype)
    return k.mul_(gain).add_(1.0)
