from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli import app
from anchorprep.cli.common import (
    ConfigFile, PrintConfig, AnchorRule, Address, DryRun, Executor, FrameLength, FrameShift, Guard, MaxErrors, NumShards, Out, Overwrite, Quiet, Resume, Retries,
    SampleRate, ShardIndex, ShardSize, SnipEdges, Subsampling, Window, Workers, execute, labelling, usage_guard,
)
from anchorprep.pipeline.inputs import AUDIO_SUFFIXES, add_search_region, discover_files, read_manifest
from anchorprep.pipeline.runner import RunOptions
from anchorprep.pipeline.vad import VadJob, VadOptions, vad_labels
from anchorprep.sources.vad import VadSettings

VAD = "Voice activity detection"
DEFAULT = VadSettings()


def channel_option(value: str) -> int | str:
    return value if value == "mix" else int(value)


VadBackend = Annotated[str, typer.Option("--backend", help="webrtc, or silero (pip install 'anchorprep[silero]').", rich_help_panel=VAD)]
VadMode = Annotated[int, typer.Option("--mode", help="webrtcvad aggressiveness 0..3.", rich_help_panel=VAD)]
VadFrameMs = Annotated[int, typer.Option("--frame-ms", help="webrtcvad frame: 10, 20 or 30 ms.", rich_help_panel=VAD)]
VadRate = Annotated[int, typer.Option("--vad-rate", help="Rate the VAD runs at (audio is resampled with soxr).", rich_help_panel=VAD)]
VadWindow = Annotated[int, typer.Option("--window-ms", help="Hysteresis window.", rich_help_panel=VAD)]
VadStart = Annotated[float, typer.Option("--start-ratio", help="Voiced share of the window that starts speech.", rich_help_panel=VAD)]
VadStop = Annotated[float, typer.Option("--stop-ratio", help="Unvoiced share of the window that ends speech.", rich_help_panel=VAD)]
MinSpeech = Annotated[float, typer.Option("--min-speech-ms", help="Drop speech runs shorter than this.", rich_help_panel=VAD)]
MinSilence = Annotated[float, typer.Option("--min-silence-ms", help="Close pauses shorter than this.", rich_help_panel=VAD)]
Channel = Annotated[str, typer.Option("--channel", help="Channel index, or mix.", rich_help_panel=VAD)]


@app.command("vad")
@usage_guard
def vad_command(
    inputs: Annotated[Path, typer.Argument(help="A manifest (utt_id, audio_path[, start_s, duration_s]) or a folder of audio files.")],
    out: Out,
    backend: VadBackend = DEFAULT.backend, mode: VadMode = DEFAULT.mode, frame_ms: VadFrameMs = DEFAULT.frame_ms,
    vad_rate: VadRate = DEFAULT.sample_rate, window_ms: VadWindow = DEFAULT.window_ms,
    start_ratio: VadStart = DEFAULT.start_ratio, stop_ratio: VadStop = DEFAULT.stop_ratio,
    min_speech_ms: MinSpeech = DEFAULT.min_speech_ms, min_silence_ms: MinSilence = DEFAULT.min_silence_ms,
    channel: Channel = "mix",
    offsets: Annotated[bool, typer.Option("--offsets", help="Also anchor speech ends (label speech_offset).", rich_help_panel=VAD)] = False,
    onsets: Annotated[str, typer.Option("--onsets", help="all onsets, or only the first.", rich_help_panel=VAD)] = "all",
    targets: Annotated[str, typer.Option("--targets", help="window: positive window after each anchor; vad: per-frame speech/non-speech.", rich_help_panel=VAD)] = "window",
    anchors_from: Annotated[Optional[Path], typer.Option("--anchors-from", help="An earlier run: only onsets after each utterance's first anchor there (e.g. a wake word's end).", rich_help_panel=VAD)] = None,
    sample_rate: SampleRate = 16000, frame_shift_ms: FrameShift = 10.0, frame_length_ms: FrameLength = 25.0,
    snip_edges: SnipEdges = True, subsampling: Subsampling = 1, anchor_rule: AnchorRule = "causal",
    positive_window: Window = "0:30", guard: Guard = 0,
    shard_size: ShardSize = 1000, workers: Workers = 1, shard_index: ShardIndex = None, num_shards: NumShards = None,
    resume: Resume = False, overwrite: Overwrite = False, max_errors: MaxErrors = None, dry_run: DryRun = False,
    quiet: Quiet = False, executor: Executor = "local", address: Address = None, retries: Retries = 1,
    config: ConfigFile = None, print_config: PrintConfig = False,
) -> None:
    """Speech-onset anchors from webrtcvad (or Silero): the first speech sample of each speech run."""
    settings = VadSettings(backend=backend, mode=mode, frame_ms=frame_ms, sample_rate=vad_rate, window_ms=window_ms,
                           start_ratio=start_ratio, stop_ratio=stop_ratio, min_speech_ms=min_speech_ms,
                           min_silence_ms=min_silence_ms)
    options = VadOptions(settings, channel_option(channel), offsets, onsets, targets)
    job = VadJob(labelling(vad_labels(offsets), sample_rate, frame_shift_ms, frame_length_ms, snip_edges, subsampling,
                           anchor_rule, positive_window, guard), options)
    if inputs.is_dir():
        items = discover_files(inputs, AUDIO_SUFFIXES, "audio_path")
    else:
        items = read_manifest(inputs, required=("utt_id", "audio_path"))
    if anchors_from is not None:
        items = add_search_region(items, anchors_from)
    execute(job, items, RunOptions(out, shard_size, workers, shard_index, num_shards, resume, overwrite, max_errors,
                                   dry_run, quiet, retries, executor, address))
