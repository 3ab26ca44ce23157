"""Default hyper-parameters of the anchorprep losses (one place to change them).

docs/FORMAT.md ("Anchor weights") says the kernel defaults are chosen by measurement: these are the winners of the SAL
sweep in ``benchmarks/sal_training`` (kernel {linear, exponential} x width {150, 450} ms x gain
{1, 4}, on the validation voices; see its results.md). The gain is the clear effect (λ = 4 beat
λ = 1 in validation keyword FRR for every kernel and width); exponential vs linear and the width
were within one-seed noise. The width is in *model frames*: 15 frames is 150 ms on the default
10 ms grid — scale it when your model frame differs. Every functional and module in
:mod:`anchorprep.loss` takes its defaults from here, so changing a value below changes the default
everywhere (at import time; the functions bind them as ordinary default arguments).

- ``DEFAULT_KERNEL``: anchor kernel ``K`` (``"exponential"``: ``K(d) = exp(-|d|/W)``).
- ``DEFAULT_WIDTH``: kernel width ``W`` in model frames (before and after the anchor).
- ``DEFAULT_GAIN``: anchor gain ``λ`` in ``w_t = 1 + λ·K(d_t)``.
- ``DEFAULT_GAMMA``: focal exponent ``γ`` (FL, SA+FL; SAFL uses ``γ·K(d_t)``).
"""

from __future__ import annotations

from typing import Final

DEFAULT_KERNEL: Final[str] = "exponential"
DEFAULT_WIDTH: Final[float] = 15.0
DEFAULT_GAIN: Final[float] = 4.0
DEFAULT_GAMMA: Final[float] = 2.0

#: ``|d| >= NO_ANCHOR`` means "no anchor in range" (int16 distances saturate at ±32767): K = 0.
NO_ANCHOR: Final[int] = 32767
#: Target value of frames excluded from the loss (as in ``torch.nn.functional.cross_entropy``).
IGNORE_INDEX: Final[int] = -100

KERNELS: Final[tuple[str, ...]] = ("linear", "exponential", "gaussian", "box")
VARIANTS: Final[tuple[str, ...]] = ("sal", "sa+fl", "safl")
REDUCTIONS: Final[tuple[str, ...]] = ("none", "mean", "sum")
NORMALIZATIONS: Final[tuple[str, ...]] = ("frames", "weights")
