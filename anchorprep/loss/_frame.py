"""Autograd functions behind every loss: the per-frame focal term with an analytic backward.

For frame ``t`` with ``ℓ_t = log p_t`` of its target class, ``CE_t = -ℓ_t``, ``q_t = 1 - p_t``,
coefficient ``c_t`` (mask · anchor weight · class weight) and focal exponent ``e_t`` (0, ``γ`` or
``γ·K(d_t)``)::

    term_t = c_t · q_t^{e_t} · CE_t
    ∂term_t/∂CE_t = c_t · q_t^{e_t} · (1 + e_t · CE_t · (1 - q_t) / q_t)      [∂q/∂CE = p]

These closed forms stay finite where autograd through ``q^e`` would give ``inf · 0 = NaN``
(``p_t -> 1``, ``q_t -> 0`` with ``0 < e_t < 1``): there ``CE/q -> 1`` and ``q^e -> 0``, and at
``e = 0`` the factor is exactly 1. Each function computes ``ℓ`` from the logits, the focal
factor and the reduction, so a loss is a single autograd node (and a single Python backward) on
top of the logits or of torch's cross entropy.

- :class:`FocalTerm`: the focal factor and reduction on top of per-frame ``CE_t`` from
  ``F.cross_entropy(reduction="none")`` (more than two classes), ``q = -expm1(-CE)`` (exact as
  ``p -> 1``); torch's own cross-entropy backward does the rest. Masked frames carry
  ``ignore_index``, so non-finite logits there cannot reach the loss (their own gradient is 0
  for finite logits, NaN for NaN logits, as with ``F.cross_entropy``).
- :class:`SigmoidFocalTerm`: one logit ``x`` or two classes (``x = z_1 - z_0``, exact for a
  2-class softmax). With ``s = ±1`` for target 1 / 0 and the margin ``μ = s·x``,
  ``ℓ = logsigmoid(μ)``, ``q = sigmoid(-μ)``, ``log q = ℓ - μ`` and ``∂ℓ/∂x = s·q``, so
  ``∂term/∂x = -c·s·q^e·(q + e·ℓ·(q - 1))`` — no division at all. The caller passes ``-s`` as a
  float tensor that is 0 at masked frames; those frames get ``μ = 0`` whatever their logits
  (even ±inf/NaN): they reach neither loss nor gradient.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half/bfloat16/float32 logits, float64 for float64 (gradcheck)."""
    return torch.promote_types(dtype, torch.float32)


def _output(ell: Tensor, coef: Tensor, reduction: str, denominator: Tensor | None) -> Tensor:
    """The loss ``-Σ_t c_t·ℓ_t`` (one fused dot product), over ``denominator`` for "mean"; the
    (B, T) terms ``-c_t·ℓ_t`` for "none"."""
    if reduction == "none":
        return (ell * coef).neg_()
    total = torch.dot(ell.reshape(-1), coef.reshape(-1)).neg_()
    return total if reduction == "sum" else total.div_(denominator)


def _upstream(ctx: Any, grad_out: Tensor, denominator: Tensor | None) -> Tensor:
    """``∂loss/∂term_t`` (a scalar unless reduction is "none")."""
    return grad_out / denominator if ctx.reduction == "mean" else grad_out


def _refuse_create_graph() -> None:
    """The backward passes are closed forms that autograd cannot differentiate again."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "anchorprep.loss supports first derivatives only: backward with create_graph=True "
            "(higher-order gradients) is not supported"
        )


def _exp_floor(dtype: torch.dtype) -> float:
    """The smallest argument whose ``exp`` is a normal number of ``dtype``.

    Below it the vectorised CPU ``exp`` takes its underflow path, 10-30x slower (torch 2.13,
    x86: 20 µs for 32k in-range float32 values, 250-600 µs below -87). Clamping there changes a
    result that is at most ``finfo.tiny`` (~1e-38 in float32) by less than that, and keeps
    the cost of a loss independent of how confident the model is.
    """
    return math.log(torch.finfo(dtype).tiny)


def _exp_of_exponent(log_q: Tensor, exponent: Tensor) -> Tensor:
    """``q^e = exp(e·log q)`` in place on ``log_q``, for per-frame ``e >= 0`` and finite ``log q``."""
    return log_q.mul_(exponent).clamp_min_(_exp_floor(log_q.dtype)).exp_()


def _focal_factor(q: Tensor, gamma: float, exponent: Tensor | None) -> Tensor:
    """``q^e`` with ``0^0 = 1``, for a scalar ``e = gamma`` or per-frame ``e = exponent``."""
    if exponent is None:
        return q.pow(gamma)
    # exp(e·log q) is several times cheaper than pow(q, e) on CPU; clamping log 0 = -inf to the
    # most negative finite number keeps 0^0 = exp(0) = 1 (not exp(0·-inf) = NaN).
    return _exp_of_exponent(q.log().clamp_min_(torch.finfo(q.dtype).min), exponent)


def _focal_ratio(q: Tensor, ell: Tensor, exponent: Tensor | None, gamma: float) -> Tensor:
    """``1 - e·ℓ·(1 - q)/q`` (= 1 + e·CE·p/q); at q = 0 it reads 1 - e·0/tiny = 1, which is
    harmless: the focal factor is 0 there unless e = 0."""
    ratio = (1.0 - q).div_(q.clamp_min(torch.finfo(q.dtype).tiny)).mul_(ell)
    return torch.rsub(ratio.mul_(exponent if exponent is not None else gamma), 1.0)


def _save(ctx: Any, reduction: str, gamma: float, *tensors: Tensor | None) -> None:
    ctx.reduction, ctx.gamma = reduction, gamma
    ctx.save_for_backward(*tensors)  # None entries are allowed and come back as None


class SigmoidFocalTerm(torch.autograd.Function):
    """Reduced ``Σ_t c_t·q_t^{e_t}·CE_t`` (or the (B, T) terms) for (B, T) or (B, T, 2) logits."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: Tensor,
        neg_sign: Tensor,
        valid: Tensor,
        coef: Tensor,
        gamma: float,
        exponent: Tensor | None,
        reduction: str,
        denominator: Tensor | None,
    ) -> Tensor:
        """logits: (B, T) or (B, T, 2); neg_sign: (B, T) ``-s = 1 - 2y`` in the compute dtype, 0
        where not ``valid``; valid: (B, T) bool mask; the other arguments as in
        :class:`FocalTerm`."""
        z = logits.to(compute_dtype(logits.dtype))
        neg_x = z.neg() if z.dim() == 2 else z[..., 0] - z[..., 1]
        # μ = s·x = (z_0 - z_1)·(1 - 2y); the where keeps NaN/inf logits of masked frames out
        margin = torch.where(valid, neg_x, 0.0).mul_(neg_sign)
        ell = F.logsigmoid(margin)
        q = None
        if exponent is not None or gamma != 0.0:
            q = torch.sigmoid(margin.neg())  # 1 - p (exp(ℓ - μ) would underflow slowly for μ > 87)
            if exponent is None:
                f = q.pow(gamma)
            else:  # log q = ℓ - μ = log σ(-μ), finite for every finite μ
                f = _exp_of_exponent(ell - margin, exponent)
            coef = f.mul_(coef)  # c·q^e
        ctx.logits_dim, ctx.logits_dtype = logits.dim(), logits.dtype
        _save(ctx, reduction, gamma, neg_sign, margin, ell, q, coef, exponent, denominator)
        return _output(ell, coef, reduction, denominator)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        _refuse_create_graph()
        neg_sign, margin, ell, q, coef, exponent, denominator = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None, None, None
        if q is None:
            slope = torch.sigmoid(margin.neg())  # ∂ℓ/∂μ = q
        else:
            # q + e·ℓ·(q - 1): ∂(q^e·ℓ)/∂μ over q^e
            t = q - 1.0
            t = t.mul_(exponent) if exponent is not None else t.mul_(ctx.gamma)
            slope = torch.addcmul(q, ell, t)
        a = slope.mul_(coef).mul_(_upstream(ctx, grad_out, denominator))  # -∂loss/∂μ
        grad_x = a.mul_(neg_sign)  # ∂loss/∂x = -a·s
        if ctx.logits_dim == 3:
            grad_x = _interleave(grad_x.neg(), grad_x)  # (∂/∂z_0, ∂/∂z_1) = (-∂/∂x, ∂/∂x)
        return grad_x.to(ctx.logits_dtype), None, None, None, None, None, None, None


def _interleave(a: Tensor, b: Tensor) -> Tensor:
    """``torch.stack((a, b), dim=-1)`` for float tensors, contiguous.

    In eager mode the complex view (real, imag) = (a, b) does it in one pass, 5-7x faster than
    ``torch.stack`` on CPU (the gradient of (B, T, 2) logits is otherwise the slowest step of
    the backward); compilers get the plain stack, which they fuse and which avoids complex dtypes.
    """
    if torch.compiler.is_compiling() or a.dtype not in (torch.float32, torch.float64):
        return torch.stack((a, b), dim=-1)
    return torch.view_as_real(torch.complex(a, b))


class FocalTerm(torch.autograd.Function):
    """Reduced ``Σ_t c_t·q_t^{e_t}·CE_t`` (or the (B, T) terms) from per-frame ``CE_t``.

    For more than two classes ``CE_t`` comes from ``F.cross_entropy(..., reduction="none")``,
    whose own backward (torch's fused kernels) takes ``∂loss/∂CE_t`` from here.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        ce: Tensor,
        coef: Tensor,
        gamma: float,
        exponent: Tensor | None,
        reduction: str,
        denominator: Tensor | None,
    ) -> Tensor:
        """ce: (B, T) ``CE_t`` (0 where not valid); coef: (B, T) ``c_t``, 0 where not valid;
        gamma: scalar focal exponent used when ``exponent`` is None; exponent: optional (B, T)
        ``e_t``; reduction: "none", "sum" or "mean" (divide by ``denominator``)."""
        ell = ce.neg()
        q = torch.expm1(ell).neg_()  # 1 - p, exact as p -> 1
        coef = _focal_factor(q, gamma, exponent).mul_(coef)  # c·q^e
        _save(ctx, reduction, gamma, q, ell, coef, exponent, denominator)
        return _output(ell, coef, reduction, denominator)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        _refuse_create_graph()
        q, ell, coef, exponent, denominator = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        grad_ce = _focal_ratio(q, ell, exponent, ctx.gamma).mul_(coef)
        return grad_ce.mul_(_upstream(ctx, grad_out, denominator)), None, None, None, None, None
