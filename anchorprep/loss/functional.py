r"""Functional frame losses for streaming detectors: FCE, FL, SAL, SA+FL and SAFL (docs/FORMAT.md, "Anchor weights").

Notation (per utterance ``b``, frame ``t``; batch indices dropped): ``p_t`` is the predicted
probability of the target class ``y_t`` (softmax over ``C >= 2`` logits, or the sigmoid of a single
logit), ``CE_t = -log p_t``, ``m_t`` the mask (0 for padding and ``ignore_index``), ``N = Σ m_t``,
``K(d_t)`` the anchor kernel and ``w_t = 1 + λ·K(d_t)`` the anchor weight
(:mod:`anchorprep.loss.kernels`), ``α_t`` an optional class weight:

==========  ===========================================
loss        per-frame term
==========  ===========================================
FCE         ``α_t · CE_t``
FL          ``α_t · (1 - p_t)^γ · CE_t``
SAL         ``α_t · w_t · CE_t``
SA+FL       ``α_t · w_t · (1 - p_t)^γ · CE_t``
SAFL        ``α_t · w_t · (1 - p_t)^(γ·K(d_t)) · CE_t``
==========  ===========================================

Reductions: ``"none"`` returns the (B, T) terms with masked frames exactly 0; ``"sum"`` is
``Σ m_t·term_t``; ``"mean"`` is ``Σ m_t·term_t / N`` (``normalize="weights"`` divides by
``Σ m_t·w_t`` instead). With no valid frame, ``"mean"`` is 0 (torch would return NaN).

Conventions shared by every function here:

- ``logits``: ``(B, T, C)`` with ``C >= 2`` (softmax), or ``(B, T)`` / ``(B, T, 1)`` (one sigmoid
  logit; targets 0/1). Any floating dtype; the loss is computed in float32 (float64 stays
  float64), so bfloat16/float16 autocast is safe. The result has that compute dtype.
- ``target``: ``(B, T)`` integer class ids (int16 as stored in shards is fine), ``ignore_index``
  (default -100) excludes a frame. Targets at valid frames must be in ``0..C-1`` (0/1 for a single
  logit): on the CPU a target outside raises :class:`~anchorprep.errors.UsageError`; on other
  devices and under ``torch.compile`` the check is ``torch._assert_async`` (no host sync), which
  fails the step asynchronously.
- ``mask``: optional ``(B, T)`` bool (True = real frame) and/or ``lengths``: optional ``(B,)``
  integer number of real frames per utterance; both may be given (their intersection is used).
- ``alpha``: optional class weights ``α_y``. A tensor of ``C`` weights (2 for a single logit:
  ``[α_0, α_1]``) or a float ``a`` in [0, 1] meaning ``α = a`` for every foreground class
  (``y >= 1``) and ``1 - a`` for background (``y = 0``) — for a single logit this is exactly
  torchvision's ``sigmoid_focal_loss`` convention (``a`` weights class 1). ``α_t`` multiplies the
  term; it is *not* part of the normaliser (unlike ``F.cross_entropy(weight=...)``, which divides
  by ``Σ α_t``). It is a constant: no gradient flows to it.
- Frames excluded by the mask contribute exactly 0 to the loss and to every gradient. Their
  logits cannot reach the loss value even when non-finite (``-inf`` padding, NaN garbage); nor
  the gradient of any other frame. Their own gradient is 0 for finite logits; for one logit or
  two classes even for non-finite ones, while with ``C > 2`` NaN logits there get a NaN gradient,
  as with ``F.cross_entropy``.
- Bad arguments (shapes, ``C = 0``, dtypes, out-of-range settings or targets) raise
  :class:`~anchorprep.errors.UsageError` (a ``ValueError``) naming the parameter.

One code path for every device and dtype: vectorised torch ops, with no device-to-host sync
and no data-dependent Python control flow off the CPU (so ``torch.compile`` can fuse it on a
GPU; only the CPU target check reads two numbers back, which costs no sync there). The backward is
analytic (see :mod:`anchorprep.loss._frame`), finite for logits of any magnitude and for
``p_t -> 1`` under every focal exponent, including SAFL's ``γ·K`` close to 0. Its cost does not
depend on how confident the model is: no ``exp`` reaches the slow underflow path of the
vectorised CPU ``exp``.

Second derivatives (``backward(create_graph=True)``): FCE and SAL with ``C > 2`` are torch's
cross entropy times constant weights and support them. The closed-form backward of every other
case (one logit or two classes, and every focal variant) gives first derivatives only; there
``create_graph=True`` raises a RuntimeError rather than returning a wrong second derivative.

Reference: Sarawgi et al., "Streaming Anchor Loss: Augmenting Supervision with Temporal
Significance", arXiv:2310.05886 (ICASSP 2024); focal loss: Lin et al., arXiv:1708.02002.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from anchorprep.errors import UsageError
from anchorprep.loss._frame import FocalTerm, SigmoidFocalTerm, compute_dtype
from anchorprep.loss.defaults import (
    DEFAULT_GAIN,
    DEFAULT_GAMMA,
    DEFAULT_KERNEL,
    DEFAULT_WIDTH,
    IGNORE_INDEX,
    NORMALIZATIONS,
    REDUCTIONS,
    VARIANTS,
)
from anchorprep.loss.kernels import anchor_kernel

__all__ = ["frame_cross_entropy", "focal_loss", "streaming_anchor_loss"]

Alpha = Tensor | float | None

_MASKED = -100  # the ignore_index handed to F.cross_entropy for masked frames
# Below this many classes CPU log_softmax over the (B, C, T) view of (B, T, C) logits is several
# times faster than over their last dim (torch 2.13, x86); above it the reverse.
TRANSPOSE_MAX_CLASSES = 32


def _is_integer(tensor: Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _frame_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Check shapes and dtypes; return ``(B, T)`` for a single logit or ``(B, T, C)``, ``C >= 2``."""
    if logits.dim() not in (2, 3) or target.dim() != 2 or logits.shape[:2] != target.shape:
        raise UsageError(
            "expected `logits` (B, T, C), (B, T, 1) or (B, T) and `target` (B, T); got "
            f"`logits` {tuple(logits.shape)} and `target` {tuple(target.shape)}"
        )
    if logits.dim() == 3 and logits.shape[-1] == 0:
        raise UsageError(f"`logits` {tuple(logits.shape)} has no class: C must be >= 1")
    if not logits.is_floating_point():
        raise UsageError(f"`logits` must be floating point, got {logits.dtype}")
    if not _is_integer(target):
        raise UsageError(f"`target` must hold integer class ids, got {target.dtype}")
    return logits.squeeze(-1) if logits.dim() == 3 and logits.shape[-1] == 1 else logits


def _check_distance(distance: Tensor, target: Tensor) -> None:
    if distance.shape != target.shape:
        raise UsageError(
            f"`distance` must be (B, T) = {tuple(target.shape)}, got {tuple(distance.shape)}"
        )
    if not (_is_integer(distance) or distance.is_floating_point()):
        raise UsageError(f"`distance` must be integer or floating point, got {distance.dtype}")


def _check_padding(target: Tensor, mask: Tensor | None, lengths: Tensor | None) -> None:
    if lengths is not None:
        if lengths.shape != target.shape[:1]:
            raise UsageError(
                f"`lengths` must be (B,) = {tuple(target.shape[:1])}, got {tuple(lengths.shape)}"
            )
        if not _is_integer(lengths):
            raise UsageError(f"`lengths` must be integer, got {lengths.dtype}")
    if mask is not None:
        if mask.shape != target.shape:
            raise UsageError(
                f"`mask` must be (B, T) = {tuple(target.shape)}, got {tuple(mask.shape)}"
            )
        if mask.dtype != torch.bool:
            raise UsageError(f"`mask` must be bool (True = real frame), got {mask.dtype}")


def _check_targets(target: Tensor, target_values: Tensor, num_classes: int) -> None:
    """UsageError (CPU) or a failed ``torch._assert_async`` (elsewhere: no host sync) unless every
    valid frame's target is in ``0..num_classes-1``; ``target_values`` is the target in a
    floating dtype, 0 at masked frames."""
    if target_values.numel() == 0:
        return
    low, high = torch.aminmax(target_values)
    if target.device.type != "cpu" or torch.compiler.is_compiling():
        torch._assert_async(
            (low >= 0) & (high <= num_classes - 1), "`target` outside 0..C-1 at a valid frame"
        )
        return
    low, high = low.item(), high.item()
    if low < 0 or high > num_classes - 1:
        raise UsageError(
            f"`target` holds {int(high if high > num_classes - 1 else low)} at a valid frame; "
            f"class ids must be in 0..{num_classes - 1} (or `ignore_index`, or masked by "
            "`mask`/`lengths`)"
        )


def _valid_frames(
    target: Tensor, ignore_index: int, mask: Tensor | None, lengths: Tensor | None
) -> Tensor:
    """``m_t`` as a (B, T) bool tensor: not ``ignore_index``, inside ``lengths`` and ``mask``."""
    valid = target != ignore_index
    if lengths is not None:
        frames = torch.arange(target.shape[1], device=target.device)
        valid = valid & (frames < lengths.to(target.device).unsqueeze(1))
    if mask is not None:
        valid = valid & mask.to(target.device)
    return valid


def _as_float(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool tensor as 0/1 in ``dtype``.

    Through a uint8 view: on CPU that conversion is vectorised, bool -> float is not (4x slower).
    """
    return mask.view(torch.uint8).to(dtype)


def _class_weights(weights: Tensor | None, target: Tensor, dtype: torch.dtype) -> Tensor | None:
    """Per-frame class weights ``α_{y_t}`` (B, T) from the (C,) ``weights``, or None without them.

    Values at masked frames are arbitrary (finite): the caller multiplies by the mask.
    """
    if weights is None:
        return None
    safe_target = target.clamp(0, weights.numel() - 1).long()  # masked frames: any valid id
    return torch.take(weights.to(device=target.device, dtype=dtype), safe_target)


def _class_weight_vector(alpha: Alpha, num_classes: int, device: torch.device) -> Tensor | None:
    """``alpha`` as (C,) class weights, or UsageError: a tensor as given; a float ``a`` as
    ``[1 - a, a, ..., a]`` (``a`` for every foreground class, ``1 - a`` for background), float64
    on ``device``."""
    if alpha is None:
        return None
    if isinstance(alpha, Tensor):
        if alpha.shape != (num_classes,):
            raise UsageError(
                f"`alpha` must hold one weight per class ({num_classes}; 2 for a single logit), "
                f"got shape {tuple(alpha.shape)}"
            )
        if not alpha.is_floating_point():
            raise UsageError(f"`alpha` must be floating point, got {alpha.dtype}")
        return alpha
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise UsageError(f"a float `alpha` must be in [0, 1] (weight of the foreground), got {a!r}")
    weights = torch.full((num_classes,), a, dtype=torch.float64, device=device)
    weights[0] = 1.0 - a
    return weights


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise UsageError(f"`reduction` must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    return reduction


def check_gamma(gamma: float) -> float:
    """``γ`` as a float, or UsageError unless finite and ``>= 0``."""
    gamma = float(gamma)
    if not math.isfinite(gamma) or gamma < 0:
        raise UsageError(f"`gamma` must be a finite number >= 0, got {gamma!r}")
    return gamma


def check_gain(gain: float) -> float:
    """``λ`` as a float, or UsageError unless finite and ``>= 0``."""
    gain = float(gain)
    if not math.isfinite(gain) or gain < 0:
        raise UsageError(f"`gain` must be a finite number >= 0, got {gain!r}")
    return gain


def _frame_loss(
    logits: Tensor,
    target: Tensor,
    valid: Tensor,
    valid_f: Tensor,
    target_values: Tensor,
    coef: Tensor | None,
    *,
    ignore_index: int,
    target_is_mask: bool,
    gamma: float,
    exponent: Tensor | None,
    reduction: str,
    denominator: Tensor | None,
) -> Tensor:
    """``reduce_t(c_t · (1 - p_t)^e_t · CE_t)``; "mean" divides by ``max(denominator, 1)``.

    ``valid_f`` is ``m_t`` and ``target_values`` is ``m_t·y_t``, both in the compute dtype;
    ``coef`` is ``c_t`` (0 at masked frames), None when it is just ``m_t``;
    ``target_is_mask`` says that ``valid`` is just ``target != ignore_index``.

    One logit or two classes go through the sigmoid of the margin (exact for a 2-class softmax:
    ``p_y = sigmoid(z_y - z_{1-y})``), one autograd node with an analytic backward; more classes
    through torch's fused ``F.cross_entropy(reduction="none")`` with the weights and the focal
    factor on top (:mod:`anchorprep.loss._frame`).
    """
    dtype = compute_dtype(logits.dtype)
    if reduction == "mean":
        assert denominator is not None
        # N or Σ m·w >= N (a fresh sum in the compute dtype): clamping at 1 only matters when
        # N = 0 (loss 0 rather than NaN).
        denominator = denominator.clamp_min_(1)
    else:
        denominator = None
    if logits.dim() == 2 or logits.shape[-1] == 2:
        neg_sign = torch.add(valid_f, target_values, alpha=-2.0)  # m_t·(1 - 2y_t)
        return SigmoidFocalTerm.apply(
            logits, neg_sign, valid, valid_f if coef is None else coef, gamma, exponent,
            reduction, denominator,
        )
    if not target_is_mask:
        target, ignore_index = torch.where(valid, target.long(), _MASKED), _MASKED
    z = logits.to(dtype)
    plain = exponent is None and gamma == 0.0
    if plain and coef is None and reduction != "none":
        # plain FCE: torch's fused cross entropy does it all
        total = _cross_entropy(z, target, ignore_index, "sum")
        return total if reduction == "sum" else total / denominator
    ce = _cross_entropy(z, target, ignore_index, "none").view(target.shape)
    coef = valid_f if coef is None else coef
    if plain:
        # SAL/FCE with weights: c·CE needs no closed form, autograd handles it (double backward too)
        if reduction == "none":
            return ce * coef
        total = torch.dot(ce.reshape(-1), coef.reshape(-1))
        return total if reduction == "sum" else total / denominator
    return FocalTerm.apply(ce, coef, gamma, exponent, reduction, denominator)


def _cross_entropy(z: Tensor, target: Tensor, ignore_index: int, reduction: str) -> Tensor:
    """``F.cross_entropy`` of (B, T, C) logits and (B, T) targets in the faster CPU layout:
    (B, C, T) for few classes (several times faster there), (B*T, C) for many."""
    if z.shape[-1] <= TRANSPOSE_MAX_CLASSES:
        return F.cross_entropy(
            z.transpose(1, 2), target.long(), ignore_index=ignore_index, reduction=reduction
        )
    return F.cross_entropy(
        z.flatten(0, 1), target.flatten().long(), ignore_index=ignore_index, reduction=reduction
    )


@dataclasses.dataclass(frozen=True)
class _Settings:
    """A loss call's scalar settings."""

    variant: str  # "fce", "fl", "sal", "sa+fl" or "safl"
    gamma: float
    alpha: Alpha
    ignore_index: int
    reduction: str
    kernel: str = DEFAULT_KERNEL
    width: float = DEFAULT_WIDTH
    width_before: float | None = None
    width_after: float | None = None
    gain: float = 0.0
    normalize: str = "frames"


def _loss(
    logits: Tensor,
    target: Tensor,
    distance: Tensor | None,
    mask: Tensor | None,
    lengths: Tensor | None,
    s: _Settings,
) -> Tensor:
    """Every loss: argument checks, then the per-frame coefficients and :func:`_frame_loss`.

    ``distance`` is None for FCE and FL; ``gamma`` is ignored by FCE and SAL.
    """
    reduction = check_reduction(s.reduction)
    logits = _frame_logits(logits, target)
    if distance is not None:
        _check_distance(distance, target)
    _check_padding(target, mask, lengths)
    num_classes = logits.shape[-1] if logits.dim() == 3 else 2
    alpha = _class_weight_vector(s.alpha, num_classes, target.device)
    gamma = 0.0 if s.variant in ("fce", "sal") else s.gamma
    dtype = compute_dtype(logits.dtype)
    valid = _valid_frames(target, s.ignore_index, mask, lengths)
    valid_f = _as_float(valid, dtype)
    target_values = target.to(dtype).mul_(valid_f)  # m_t·y_t: any valid target, 0 elsewhere
    _check_targets(target, target_values, num_classes)
    coef = exponent = denominator = None
    if distance is None:
        if reduction == "mean":
            denominator = valid_f.sum()
    else:
        k = anchor_kernel(
            distance.to(target.device), s.kernel, s.width, s.width_before, s.width_after, dtype=dtype
        )
        coef = torch.addcmul(valid_f, k, valid_f, value=s.gain)  # c_t = m_t·w_t = m_t·(1 + λ·K_t)
        if s.variant == "safl" and gamma != 0.0:
            exponent = k.mul_(gamma)  # e_t = γ·K_t
        if reduction == "mean":
            denominator = (coef if s.normalize == "weights" else valid_f).sum()
    class_weight = _class_weights(alpha, target, dtype)
    if class_weight is not None:
        coef = class_weight.mul_(valid_f) if coef is None else coef.mul_(class_weight)
    return _frame_loss(
        logits, target, valid, valid_f, target_values, coef, ignore_index=s.ignore_index,
        target_is_mask=mask is None and lengths is None,
        gamma=0.0 if exponent is not None else gamma, exponent=exponent,
        reduction=reduction, denominator=denominator,
    )


def frame_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: Alpha = None,
    mask: Tensor | None = None,
    lengths: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
) -> Tensor:
    r"""Frame-wise cross entropy (FCE): per-frame term ``α_t · CE_t``, ``CE_t = -log p_t``.

    .. math:: \mathrm{FCE} = \frac{1}{N}\sum_t m_t\,\alpha_{y_t}\,(-\log p_t)

    Without ``alpha`` and with ``reduction="mean"`` this equals
    ``F.cross_entropy(logits.reshape(-1, C), target.reshape(-1), ignore_index=...)``. See the
    module docstring for shapes, masks and ``alpha``. Reference: Sarawgi et al.,
    arXiv:2310.05886 (the FCE baseline).

    Example:
        >>> logits = torch.zeros(1, 4, 2)                # p = 0.5 everywhere
        >>> target = torch.tensor([[0, 0, 1, -100]])     # last frame ignored
        >>> round(frame_cross_entropy(logits, target).item(), 4)   # log 2
        0.6931
        >>> frame_cross_entropy(logits, target, lengths=torch.tensor([2]), reduction="none")
        tensor([[0.6931, 0.6931, 0.0000, 0.0000]])
    """
    return _loss(
        logits, target, None, mask, lengths,
        _Settings("fce", 0.0, alpha, ignore_index, reduction),
    )


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = DEFAULT_GAMMA,
    alpha: Alpha = None,
    mask: Tensor | None = None,
    lengths: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
) -> Tensor:
    r"""Frame-wise focal loss (FL): per-frame term ``α_t · (1 - p_t)^γ · CE_t``.

    .. math:: \mathrm{FL} = \frac{1}{N}\sum_t m_t\,\alpha_{y_t}\,(1-p_t)^{\gamma}\,(-\log p_t)

    ``1 - p_t`` is computed as ``-expm1(log p_t)`` (or ``sigmoid(-s·x)`` for a single logit), so
    it keeps full relative precision as ``p_t -> 1``; ``γ = 0`` gives FCE. ``DEFAULT_GAMMA`` is
    chosen by the SAL training benchmark (:mod:`anchorprep.loss.defaults`). References: Lin et al., arXiv:1708.02002;
    Sarawgi et al., arXiv:2310.05886.

    Example:
        >>> logits = torch.tensor([[0.0, 2.0, -2.0]])    # single sigmoid logit per frame
        >>> target = torch.tensor([[1, 1, 0]])
        >>> focal_loss(logits, target, gamma=2.0, reduction="none")
        tensor([[0.1733, 0.0018, 0.0018]])
    """
    return _loss(
        logits, target, None, mask, lengths,
        _Settings("fl", check_gamma(gamma), alpha, ignore_index, reduction),
    )


def streaming_anchor_loss(
    logits: Tensor,
    target: Tensor,
    distance: Tensor,
    *,
    variant: str = "sal",
    kernel: str = DEFAULT_KERNEL,
    width: float = DEFAULT_WIDTH,
    width_before: float | None = None,
    width_after: float | None = None,
    gain: float = DEFAULT_GAIN,
    gamma: float = DEFAULT_GAMMA,
    alpha: Alpha = None,
    mask: Tensor | None = None,
    lengths: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    normalize: str = "frames",
) -> Tensor:
    r"""Streaming Anchor Loss and its focal variants (docs/FORMAT.md, "Anchor weights").

    With ``K_t = K(d_t)`` the anchor kernel and ``w_t = 1 + λ K_t`` (``λ = gain``):

    .. math::
        \mathrm{SAL}_t = w_t\,CE_t,\quad
        \mathrm{SA{+}FL}_t = w_t\,(1-p_t)^{\gamma}\,CE_t,\quad
        \mathrm{SAFL}_t = w_t\,(1-p_t)^{\gamma K_t}\,CE_t

    each times ``α_t`` when ``alpha`` is given; ``reduction="mean"`` divides ``Σ m_t·term_t`` by
    ``N = Σ m_t`` (``normalize="frames"``) or by ``Σ m_t·w_t`` (``normalize="weights"``, which
    keeps the loss on the FCE scale whatever the gain). SAL = FCE at ``gain = 0``, SA+FL = FL at
    ``gain = 0``, SAFL = SAL at ``gamma = 0``. ``gamma`` is unused by ``variant="sal"``.

    Args:
        logits, target, alpha, mask, lengths, ignore_index, reduction: see the module docstring.
        distance: (B, T) anchor distances ``d_t = t - a(t)`` in frames as stored in shards (int16
            saturating at ±32767, or int32/int64); ``|d| >= 32767`` means no anchor (``K = 0``).
        variant: ``"sal"``, ``"sa+fl"`` or ``"safl"``.
        kernel, width, width_before, width_after: the anchor kernel, see :func:`anchor_kernel`.
        gain: anchor gain ``λ >= 0``.
        gamma: focal exponent ``γ >= 0``.
        normalize: ``"frames"`` or ``"weights"`` (only used by ``reduction="mean"``).

    The defaults (``DEFAULT_KERNEL``, ``DEFAULT_WIDTH``, ``DEFAULT_GAIN``, ``DEFAULT_GAMMA``) are
    chosen by the SAL training benchmark (:mod:`anchorprep.loss.defaults`).
    Reference: Sarawgi et al., arXiv:2310.05886 (ICASSP 2024).

    Example:
        >>> logits = torch.zeros(1, 5, 2)                  # CE = log 2 at every frame
        >>> target = torch.tensor([[0, 0, 1, 1, 0]])
        >>> distance = torch.tensor([[-2, -1, 0, 1, 2]], dtype=torch.int16)
        >>> loss = streaming_anchor_loss(logits, target, distance, kernel="linear", width=2.0, gain=1.0,
        ...                              reduction="none")
        >>> loss / torch.log(torch.tensor(2.0))            # = w_t = 1 + K(d_t)
        tensor([[1.0000, 1.5000, 2.0000, 1.5000, 1.0000]])
        >>> round(streaming_anchor_loss(logits, target, distance, width=2.0,
        ...                             normalize="weights").item(), 4)
        0.6931
    """
    key = variant.lower()
    if key not in VARIANTS:
        raise UsageError(f"`variant` must be one of {', '.join(VARIANTS)}; got {variant!r}")
    if normalize not in NORMALIZATIONS:
        raise UsageError(f"`normalize` must be one of {', '.join(NORMALIZATIONS)}; got {normalize!r}")
    settings = _Settings(
        key, check_gamma(gamma), alpha, ignore_index, reduction, kernel, width, width_before,
        width_after, check_gain(gain), normalize,
    )
    return _loss(logits, target, distance, mask, lengths, settings)
