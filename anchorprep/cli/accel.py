from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Common, execute, pipeline_command
from anchorprep.errors import UsageError
from anchorprep.pipeline.accel import PEAK, AccelJob, AccelReadOptions
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.vad import ONSET, VadOptions
from anchorprep.sources.accel import RAISE_PRESET, STEP_PRESET, AccelSettings
from anchorprep.sources.items import accel_items

ACCEL = "Accelerometer"
PRESETS = {"step": STEP_PRESET, "raise": RAISE_PRESET, "default": AccelSettings()}


def _band(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise UsageError(f"--band must look like LOW:HIGH in Hz (e.g. 0.5:2.5), got {text!r}") from None
    return low, high


def _override(base: AccelSettings, **changes) -> AccelSettings:
    return AccelSettings(**{**base.__dict__, **{k: v for k, v in changes.items() if v is not None}})


@pipeline_command("accel")
def accel_command(
    inputs: Annotated[Path, typer.Argument(help="A manifest (utt_id, accel_path[, audio_path, time_offset_s, start_s, duration_s]) or a folder of sensor files.")],
    preset: Annotated[str, typer.Option("--preset", help="Starting settings: step (walking steps), raise (raise-to-speak) or default.", rich_help_panel=ACCEL)] = "default",
    axis: Annotated[Optional[str], typer.Option("--axis", help="x, y, z or magnitude.", rich_help_panel=ACCEL)] = None,
    filter: Annotated[Optional[str], typer.Option("--filter", help="bandpass, highpass or none (Butterworth).", rich_help_panel=ACCEL)] = None,
    band: Annotated[Optional[str], typer.Option("--band", help="Band-pass edges LOW:HIGH Hz.", rich_help_panel=ACCEL)] = None,
    cutoff_hz: Annotated[Optional[float], typer.Option("--cutoff-hz", help="High-pass edge (gravity and drift removal).", rich_help_panel=ACCEL)] = None,
    order: Annotated[Optional[int], typer.Option("--order", rich_help_panel=ACCEL)] = None,
    causal: Annotated[bool, typer.Option("--causal", help="Causal sosfilt instead of zero-phase sosfiltfilt (delays peaks; recorded).", rich_help_panel=ACCEL)] = False,
    resample_hz: Annotated[Optional[float], typer.Option("--resample-hz", help="Uniform rate jittered samples are interpolated to.", rich_help_panel=ACCEL)] = None,
    smooth_ms: Annotated[Optional[float], typer.Option("--smooth-ms", rich_help_panel=ACCEL)] = None,
    height: Annotated[Optional[float], typer.Option("--height", rich_help_panel=ACCEL)] = None,
    prominence: Annotated[Optional[float], typer.Option("--prominence", rich_help_panel=ACCEL)] = None,
    refractory_ms: Annotated[Optional[float], typer.Option("--refractory-ms", help="Minimum time between peaks.", rich_help_panel=ACCEL)] = None,
    width_ms: Annotated[Optional[float], typer.Option("--width-ms", rich_help_panel=ACCEL)] = None,
    time_unit: Annotated[str, typer.Option("--time-unit", help="auto, ns, us, ms or s.", rich_help_panel=ACCEL)] = "auto",
    rate: Annotated[Optional[float], typer.Option("--rate", help="Fixed sample rate for files without a time column.", rich_help_panel=ACCEL)] = None,
    skip_rows: Annotated[int, typer.Option("--skip-rows", help="Metadata lines before the data.", rich_help_panel=ACCEL)] = 0,
    time_offset_s: Annotated[float, typer.Option("--time-offset-s", help="Utterance time of the sensor's first sample (a time_offset_s column overrides).", rich_help_panel=ACCEL)] = 0.0,
    vad: Annotated[bool, typer.Option("--vad", help="Also anchor the audio's speech onsets (webrtcvad defaults).", rich_help_panel=ACCEL)] = False,
    use_source: Annotated[Optional[list[str]], typer.Option("--use-source", help="Sources the distance uses (repeat; first = primary).", rich_help_panel=ACCEL)] = None,
    agree_within_ms: Annotated[Optional[float], typer.Option("--agree-within-ms", help="Positive only where all --use-source anchors agree within this.", rich_help_panel=ACCEL)] = None,
    common: Common = None,
) -> None:
    """Anchors at accelerometer peaks (e.g. a raise-to-speak gesture), on the audio's frame grid."""
    if preset not in PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(PRESETS)}")
    settings = _override(
        PRESETS[preset], axis=axis, filter=filter, band_hz=_band(band) if band else None, cutoff_hz=cutoff_hz,
        order=order, zero_phase=False if causal else None, resample_hz=resample_hz, smooth_ms=smooth_ms,
        height=height, prominence=prominence, distance_ms=refractory_ms, width_ms=width_ms,
    )
    labels = (PEAK, ONSET) if vad else (PEAK,)
    job = AccelJob(
        common.labelling(labels),
        settings, AccelReadOptions(time_unit, rate, skip_rows), time_offset_s,
        VadOptions() if vad else None,
        CombineOptions(tuple(use_source or ()), None if agree_within_ms is None else agree_within_ms / 1000.0),
    )
    items = accel_items(inputs)
    execute(job, items, common.run_options())
