"""``nn.Module`` wrappers of :mod:`anchorprep.loss.functional` (kornia-style pairs).

Each module stores its hyper-parameters (validated at construction) and calls the functional of
the same name; a tensor ``alpha`` is a non-persistent buffer, so ``.to(device)`` moves it. The
defaults come from :mod:`anchorprep.loss.defaults` and were chosen by the SAL training
benchmark. Reference: Sarawgi et al., arXiv:2310.05886 (ICASSP 2024).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anchorprep.errors import UsageError
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
from anchorprep.loss.functional import (
    Alpha,
    check_gain,
    check_gamma,
    focal_loss,
    frame_cross_entropy,
    streaming_anchor_loss,
)
from anchorprep.loss.kernels import anchor_weights, resolve_widths

__all__ = ["AnchorWeights", "FrameCrossEntropy", "FocalLoss", "StreamingAnchorLoss"]


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")
    return value


class _ClassWeighted(nn.Module):
    """Holds ``alpha``: a tensor as a (non-persistent) buffer, a float or None as an attribute."""

    alpha: Alpha

    def __init__(self, alpha: Alpha, ignore_index: int, reduction: str) -> None:
        super().__init__()
        if isinstance(alpha, Tensor):
            self.register_buffer("alpha", alpha.detach().clone(), persistent=False)
        else:
            self.alpha = None if alpha is None else float(alpha)
        self.ignore_index = int(ignore_index)
        self.reduction = _check_choice("reduction", reduction, REDUCTIONS)

    def _alpha_repr(self) -> str:
        a = self.alpha
        return f"alpha={a.tolist() if isinstance(a, Tensor) else a}"


class AnchorWeights(nn.Module):
    r"""Anchor weights ``w_t = 1 + λ·K(d_t)`` from anchor distances (see :func:`anchor_weights`).

    Example:
        >>> weights = AnchorWeights(kernel="linear", width=10.0, gain=1.0)
        >>> weights(torch.tensor([[-10, -5, 0, 5, 32767]], dtype=torch.int16))
        tensor([[1.0000, 1.5000, 2.0000, 1.5000, 1.0000]])
    """

    def __init__(
        self,
        kernel: str = DEFAULT_KERNEL,
        width: float = DEFAULT_WIDTH,
        width_before: float | None = None,
        width_after: float | None = None,
        gain: float = DEFAULT_GAIN,
    ) -> None:
        super().__init__()
        self.width_before, self.width_after = resolve_widths(
            kernel, width, width_before, width_after
        )
        self.kernel = kernel
        self.gain = check_gain(gain)

    def forward(self, distance: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """(any shape) integer or float distances -> float weights of the same shape."""
        return anchor_weights(
            distance, self.kernel, self.width_after, self.width_before, self.width_after,
            self.gain, dtype=dtype,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel={self.kernel!r}, width_before={self.width_before}, "
            f"width_after={self.width_after}, gain={self.gain}"
        )


class FrameCrossEntropy(_ClassWeighted):
    r"""Frame-wise cross entropy (see :func:`frame_cross_entropy`).

    Example:
        >>> loss_fn = FrameCrossEntropy()
        >>> logits = torch.zeros(2, 3, 4)                  # uniform over 4 classes
        >>> target = torch.tensor([[0, 1, 2], [3, 0, -100]])
        >>> round(loss_fn(logits, target).item(), 4)       # log 4
        1.3863
    """

    def __init__(
        self, alpha: Alpha = None, ignore_index: int = IGNORE_INDEX, reduction: str = "mean"
    ) -> None:
        super().__init__(alpha, ignore_index, reduction)

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> Tensor:
        return frame_cross_entropy(
            logits, target, alpha=self.alpha, mask=mask, lengths=lengths,
            ignore_index=self.ignore_index, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"{self._alpha_repr()}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class FocalLoss(_ClassWeighted):
    r"""Frame-wise focal loss ``(1 - p_t)^γ·CE_t`` (see :func:`focal_loss`).

    Example:
        >>> loss_fn = FocalLoss(gamma=2.0, alpha=0.25)    # torchvision-style binary alpha
        >>> logits = torch.tensor([[3.0, -1.0, 0.0]])      # one sigmoid logit per frame
        >>> target = torch.tensor([[1, 0, 1]])
        >>> loss_fn(logits, target).shape
        torch.Size([])
    """

    def __init__(
        self,
        gamma: float = DEFAULT_GAMMA,
        alpha: Alpha = None,
        ignore_index: int = IGNORE_INDEX,
        reduction: str = "mean",
    ) -> None:
        super().__init__(alpha, ignore_index, reduction)
        self.gamma = check_gamma(gamma)

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> Tensor:
        return focal_loss(
            logits, target, gamma=self.gamma, alpha=self.alpha, mask=mask, lengths=lengths,
            ignore_index=self.ignore_index, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, {self._alpha_repr()}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}"
        )


class StreamingAnchorLoss(_ClassWeighted):
    r"""Streaming Anchor Loss: SAL, SA+FL or SAFL (see :func:`streaming_anchor_loss`).

    .. math::
        \mathrm{SAL}_t = w_t CE_t,\ \mathrm{SA{+}FL}_t = w_t (1-p_t)^{\gamma} CE_t,\
        \mathrm{SAFL}_t = w_t (1-p_t)^{\gamma K(d_t)} CE_t,\quad w_t = 1 + \lambda K(d_t)

    Example:
        >>> loss_fn = StreamingAnchorLoss(variant="safl", kernel="linear", width=20.0)
        >>> logits = torch.randn(2, 50, 3, requires_grad=True)     # (B, T, C)
        >>> target = torch.zeros(2, 50, dtype=torch.int16)
        >>> target[0, 20:40] = 2                                   # keyword class 2
        >>> distance = torch.full((2, 50), 32767, dtype=torch.int16)  # utterance 1: no anchor
        >>> distance[0] = torch.arange(50) - 20                    # utterance 0: anchor at 20
        >>> loss = loss_fn(logits, target, distance, lengths=torch.tensor([50, 35]))
        >>> loss.backward()
        >>> bool(torch.isfinite(logits.grad).all())
        True
    """

    def __init__(
        self,
        variant: str = "sal",
        kernel: str = DEFAULT_KERNEL,
        width: float = DEFAULT_WIDTH,
        width_before: float | None = None,
        width_after: float | None = None,
        gain: float = DEFAULT_GAIN,
        gamma: float = DEFAULT_GAMMA,
        alpha: Alpha = None,
        ignore_index: int = IGNORE_INDEX,
        reduction: str = "mean",
        normalize: str = "frames",
    ) -> None:
        super().__init__(alpha, ignore_index, reduction)
        self.variant = _check_choice("variant", variant.lower(), VARIANTS)
        self.width_before, self.width_after = resolve_widths(
            kernel, width, width_before, width_after
        )
        self.kernel = kernel
        self.gain = check_gain(gain)
        self.gamma = check_gamma(gamma)
        self.normalize = _check_choice("normalize", normalize, NORMALIZATIONS)

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        distance: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> Tensor:
        return streaming_anchor_loss(
            logits, target, distance, variant=self.variant, kernel=self.kernel,
            width=self.width_after, width_before=self.width_before,
            width_after=self.width_after, gain=self.gain, gamma=self.gamma, alpha=self.alpha,
            mask=mask, lengths=lengths, ignore_index=self.ignore_index,
            reduction=self.reduction, normalize=self.normalize,
        )

    def extra_repr(self) -> str:
        return (
            f"variant={self.variant!r}, kernel={self.kernel!r}, width_before={self.width_before}, "
            f"width_after={self.width_after}, gain={self.gain}, gamma={self.gamma}, "
            f"{self._alpha_repr()}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}, normalize={self.normalize!r}"
        )
