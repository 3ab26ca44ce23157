"""The kernel settings of a run's precomputed ``weight`` column (its ``weights`` settings block).

A run written by `anchorprep.interop.write_weights` carries a ``weight`` column computed from its
``distance`` column by `anchorprep.loss.anchor_weights`; `WeightSettings` is that block. It lives
with the run folder's other settings so that anything reading a run (the loader, `validate`) can
recompute the column without importing the exporters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from anchorprep.errors import UsageError
from anchorprep.shards.run import RunSettings

#: The settings key of the block.
WEIGHTS_KEY = "weights"
FORMULA = "weight = 1 + gain * K(distance); K = 0 where distance = 32767 (no anchor)"


@dataclass(frozen=True)
class WeightSettings:
    """The kernel that made a run's ``weight`` column (its ``weights`` settings block).

    ``width_before``/``width_after`` are the resolved widths in model frames (a single ``width``
    is stored as both); ``source_settings_sha256`` names the run the rows came from.
    """

    kernel: str
    width_before: float
    width_after: float
    gain: float
    source_settings_sha256: str = ""
    formula: str = FORMULA

    @classmethod
    def resolve(cls, kernel: str | None = None, width: float | None = None, width_before: float | None = None,
                width_after: float | None = None, gain: float | None = None,
                source_settings_sha256: str = "") -> "WeightSettings":
        """Validated settings; ``None`` takes `anchorprep.loss`'s default (kernel, width, gain).
        `UsageError` naming the parameter for an unknown kernel, or a width or gain that is not a
        finite number (widths > 0, or >= 0 for ``box``; gain >= 0)."""
        from anchorprep.loss import DEFAULT_GAIN, DEFAULT_KERNEL, DEFAULT_WIDTH, KERNELS

        kernel = DEFAULT_KERNEL if kernel is None else kernel
        if kernel not in KERNELS:
            raise UsageError(f"`kernel` must be one of {', '.join(KERNELS)}; got {kernel!r}")
        width = _number("width", DEFAULT_WIDTH if width is None else width)
        for name, value in (("width", width), ("width_before", width_before), ("width_after", width_after)):
            value = _number(name, value)
            if value is not None and (value < 0 or (value == 0 and kernel != "box")):
                raise UsageError(f"`{name}` must be > 0 frames (>= 0 for the box kernel); got {value!r}")
        gain = _number("gain", DEFAULT_GAIN if gain is None else gain)
        if gain < 0:
            raise UsageError(f"`gain` must be >= 0; got {gain!r}")
        before = width if width_before is None else _number("width_before", width_before)
        after = width if width_after is None else _number("width_after", width_after)
        resolved = cls(kernel, before, after, gain, source_settings_sha256)
        try:
            resolved.weights(np.zeros(0, np.int16))  # the loss's own checks, on no frames
        except UsageError:
            raise
        except ValueError as exc:
            raise UsageError(f"anchorprep.loss refuses these kernel settings: {exc}") from None
        return resolved

    def to_dict(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "width_before": self.width_before, "width_after": self.width_after,
                "gain": self.gain, "source_settings_sha256": self.source_settings_sha256, "formula": self.formula}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WeightSettings":
        return cls(str(data["kernel"]), float(data["width_before"]), float(data["width_after"]), float(data["gain"]),
                   str(data.get("source_settings_sha256", "")), str(data.get("formula", FORMULA)))

    @classmethod
    def of_run(cls, settings: RunSettings) -> "WeightSettings | None":
        """The block of a run written by `write_weights`, or None for any other run."""
        block = settings.job.get(WEIGHTS_KEY)
        return None if block is None else cls.from_dict(block)

    def weights(self, distance: np.ndarray) -> np.ndarray:
        """``anchorprep.loss.anchor_weights`` of int16 ``distance`` (any shape) as float32 numpy."""
        import torch

        from anchorprep.loss import anchor_weights

        tensor = torch.from_numpy(np.array(distance, dtype=np.int16))  # a writable copy of Arrow's buffer
        return anchor_weights(tensor, self.kernel, width=self.width_before, width_before=self.width_before,
                              width_after=self.width_after, gain=self.gain).numpy()


def _number(name: str, value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"`{name}` must be a number; got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise UsageError(f"`{name}` must be a finite number; got {value!r}")
    return number
