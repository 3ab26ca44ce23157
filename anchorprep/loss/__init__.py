r"""Frame losses for Streaming Anchor Loss training (docs/FORMAT.md, "Anchor weights"). Imports only torch.

Functional / module pairs (kornia style):

=========================================  ===========================  ==========================
per-frame term                             functional                   module
=========================================  ===========================  ==========================
``CE_t = -log p_t``                        :func:`frame_cross_entropy`  :class:`FrameCrossEntropy`
``(1 - p_t)^γ · CE_t``                     :func:`focal_loss`           :class:`FocalLoss`
``w_t · CE_t`` (SAL)                       :func:`streaming_anchor_loss`  :class:`StreamingAnchorLoss`
``w_t · (1 - p_t)^γ · CE_t`` (SA+FL)       ``variant="sa+fl"``
``w_t · (1 - p_t)^(γ·K(d_t)) · CE_t``      ``variant="safl"``
=========================================  ===========================  ==========================

with the anchor kernel ``K(d)`` (:func:`anchor_kernel`) and weight ``w_t = 1 + λ·K(d_t)``
(:func:`anchor_weights`, :class:`AnchorWeights`) of the signed frame distance ``d_t`` to the
nearest anchor. ``DEFAULT_KERNEL``, ``DEFAULT_WIDTH``, ``DEFAULT_GAIN`` and ``DEFAULT_GAMMA`` are
chosen by the SAL training benchmark (:mod:`anchorprep.loss.defaults`).

Reference: Sarawgi et al., "Streaming Anchor Loss: Augmenting Supervision with Temporal
Significance", arXiv:2310.05886 (ICASSP 2024).

Example:
    >>> import torch
    >>> from anchorprep.loss import StreamingAnchorLoss
    >>> loss_fn = StreamingAnchorLoss(variant="sal", kernel="linear", width=20.0, gain=1.0)
    >>> logits = torch.zeros(1, 3, 2)
    >>> target = torch.tensor([[0, 1, 1]])
    >>> distance = torch.tensor([[-1, 0, 1]], dtype=torch.int16)
    >>> round(loss_fn(logits, target, distance).item(), 4)    # mean of w_t·log 2
    1.3632
"""

from anchorprep.loss.defaults import (
    DEFAULT_GAIN,
    DEFAULT_GAMMA,
    DEFAULT_KERNEL,
    DEFAULT_WIDTH,
    IGNORE_INDEX,
    KERNELS,
    NO_ANCHOR,
    VARIANTS,
)
from anchorprep.loss.functional import focal_loss, frame_cross_entropy, streaming_anchor_loss
from anchorprep.loss.kernels import anchor_kernel, anchor_weights
from anchorprep.loss.modules import (
    AnchorWeights,
    FocalLoss,
    FrameCrossEntropy,
    StreamingAnchorLoss,
)

__all__ = [
    "DEFAULT_GAIN",
    "DEFAULT_GAMMA",
    "DEFAULT_KERNEL",
    "DEFAULT_WIDTH",
    "IGNORE_INDEX",
    "KERNELS",
    "NO_ANCHOR",
    "VARIANTS",
    "AnchorWeights",
    "FocalLoss",
    "FrameCrossEntropy",
    "StreamingAnchorLoss",
    "anchor_kernel",
    "anchor_weights",
    "focal_loss",
    "frame_cross_entropy",
    "streaming_anchor_loss",
]
