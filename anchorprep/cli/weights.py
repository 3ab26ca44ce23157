"""`anchorprep weights RUN -o OUT`: a copy of a run with precomputed per-frame SAL weights."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Gain, Kernel, Width, WidthAfter, WidthBefore, usage_guard



@usage_guard
def weights(
    run: Annotated[str, typer.Argument(help="Output folder of a finished run.")],
    out: Annotated[str, typer.Option("-o", "--out", help="New run folder to write (the rows plus a per-frame weight column).")],
    kernel: Kernel = None,
    width: Width = None,
    width_before: WidthBefore = None,
    width_after: WidthAfter = None,
    gain: Gain = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out.")] = False,
) -> None:
    """Write a run whose rows add `weight` (list<float32>, anchorprep.loss.anchor_weights of the distance) for trainers outside PyTorch."""
    from anchorprep.interop.weights import write_weights

    result = write_weights(run, out, kernel=kernel, width=width, width_before=width_before,
                           width_after=width_after, gain=gain, overwrite=overwrite)
    typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
