from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli import app
from anchorprep.cli.common import usage_guard
from anchorprep.errors import UsageError
from anchorprep.inspect.plot import DEFAULT_SIZE_PX, describe, plot_utterance

WEIGHTS = "SAL weight curve"
EXTRA = "Extra panels (paths the shards do not store)"


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like WIDTHxHEIGHT in pixels (e.g. 1400x1000), got {text!r}") from None
    return width, height


@app.command("plot")
@usage_guard
def plot_command(
    out: Annotated[Path, typer.Argument(help="Output folder of a run.")],
    utt_id: Annotated[str, typer.Argument(help="The utterance to draw.")],
    png: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
    kernel: Annotated[Optional[str], typer.Option("--kernel", help="linear, exponential, gaussian or box (default: anchorprep.loss's default).", rich_help_panel=WEIGHTS)] = None,
    width: Annotated[Optional[float], typer.Option("--width", help="Kernel width W in frames (default: anchorprep.loss's default).", rich_help_panel=WEIGHTS)] = None,
    width_before: Annotated[Optional[float], typer.Option("--width-before", help="W before the anchor (d < 0).", rich_help_panel=WEIGHTS)] = None,
    width_after: Annotated[Optional[float], typer.Option("--width-after", help="W at and after the anchor (d >= 0).", rich_help_panel=WEIGHTS)] = None,
    gain: Annotated[Optional[float], typer.Option("--gain", help="Anchor gain lambda in w = 1 + lambda*K(d) (default: anchorprep.loss's default).", rich_help_panel=WEIGHTS)] = None,
    alignment: Annotated[Optional[Path], typer.Option("--alignment", help="Alignment file (TextGrid, MFA csv/json, CTM) to draw the word tier from.", rich_help_panel=EXTRA)] = None,
    accel: Annotated[Optional[Path], typer.Option("--accel", help="Accelerometer file to draw the filtered signal and peaks from.", rich_help_panel=EXTRA)] = None,
    time_offset_s: Annotated[Optional[float], typer.Option("--time-offset-s", help="Utterance time of the sensor's first sample (default: the run's default_time_offset_s).", rich_help_panel=EXTRA)] = None,
    size: Annotated[str, typer.Option("--size", help="Image size WIDTHxHEIGHT in pixels.")] = f"{DEFAULT_SIZE_PX[0]}x{DEFAULT_SIZE_PX[1]}",
    dpi: Annotated[int, typer.Option("--dpi", help="Dots per inch (font scale).")] = 100,
) -> None:
    """Draw one utterance: audio, alignment/VAD/accelerometer, anchors, distance, SAL weights, targets."""
    result = plot_utterance(out, utt_id, png, kernel=kernel, width=width, width_before=width_before,
                            width_after=width_after, gain=gain, alignment=alignment, accel=accel,
                            time_offset_s=time_offset_s, size_px=_size(size), dpi=dpi)
    typer.echo(describe(result))
