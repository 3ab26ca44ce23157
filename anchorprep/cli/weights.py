"""`anchorprep weights RUN -o OUT`: a copy of a run with precomputed per-frame SAL weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import usage_guard

KERNEL = "SAL weight kernel (w = 1 + gain*K(distance))"


@usage_guard
def weights(
    run: Annotated[Path, typer.Argument(help="Output folder of a finished run.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="New run folder to write (the rows plus a per-frame weight column).")],
    kernel: Annotated[Optional[str], typer.Option("--kernel", help="linear, exponential, gaussian or box (default: anchorprep.loss's default).", rich_help_panel=KERNEL)] = None,
    width: Annotated[Optional[float], typer.Option("--width", help="Kernel width W in model frames (default: anchorprep.loss's default).", rich_help_panel=KERNEL)] = None,
    width_before: Annotated[Optional[float], typer.Option("--width-before", help="W before the anchor (d < 0).", rich_help_panel=KERNEL)] = None,
    width_after: Annotated[Optional[float], typer.Option("--width-after", help="W at and after the anchor (d >= 0).", rich_help_panel=KERNEL)] = None,
    gain: Annotated[Optional[float], typer.Option("--gain", help="Anchor gain lambda (default: anchorprep.loss's default).", rich_help_panel=KERNEL)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out.")] = False,
) -> None:
    """Write a run whose rows add `weight` (list<float32>, anchorprep.loss.anchor_weights of the distance) for trainers outside PyTorch."""
    from anchorprep.interop.weights import write_weights

    result = write_weights(run, out, kernel=kernel, width=width, width_before=width_before,
                           width_after=width_after, gain=gain, overwrite=overwrite)
    typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
