from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Common, execute, pipeline_command
from anchorprep.pipeline.inputs import add_search_region
from anchorprep.pipeline.vad import VadJob, VadOptions, vad_labels
from anchorprep.sources.items import audio_items
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


@pipeline_command("vad")
def vad_command(
    inputs: Annotated[Path, typer.Argument(help="A manifest (utt_id, audio_path[, start_s, duration_s]) or a folder of audio files.")],
    backend: VadBackend = DEFAULT.backend, mode: VadMode = DEFAULT.mode, frame_ms: VadFrameMs = DEFAULT.frame_ms,
    vad_rate: VadRate = DEFAULT.sample_rate, window_ms: VadWindow = DEFAULT.window_ms,
    start_ratio: VadStart = DEFAULT.start_ratio, stop_ratio: VadStop = DEFAULT.stop_ratio,
    min_speech_ms: MinSpeech = DEFAULT.min_speech_ms, min_silence_ms: MinSilence = DEFAULT.min_silence_ms,
    channel: Channel = "mix",
    offsets: Annotated[bool, typer.Option("--offsets", help="Also anchor speech ends (label speech_offset).", rich_help_panel=VAD)] = False,
    onsets: Annotated[str, typer.Option("--onsets", help="all onsets, or only the first.", rich_help_panel=VAD)] = "all",
    targets: Annotated[str, typer.Option("--targets", help="window: positive window after each anchor; vad: per-frame speech/non-speech.", rich_help_panel=VAD)] = "window",
    anchors_from: Annotated[Optional[Path], typer.Option("--anchors-from", help="An earlier run: only onsets after each utterance's first anchor there (e.g. a wake word's end).", rich_help_panel=VAD)] = None,
    common: Common = None,
) -> None:
    """Speech-onset anchors from webrtcvad (or Silero): the first speech sample of each speech run."""
    settings = VadSettings(backend=backend, mode=mode, frame_ms=frame_ms, sample_rate=vad_rate, window_ms=window_ms,
                           start_ratio=start_ratio, stop_ratio=stop_ratio, min_speech_ms=min_speech_ms,
                           min_silence_ms=min_silence_ms)
    options = VadOptions(settings, channel_option(channel), offsets, onsets, targets)
    job = VadJob(common.labelling(vad_labels(offsets)), options)
    items = audio_items(inputs)
    if anchors_from is not None:
        items = add_search_region(items, anchors_from)
    execute(job, items, common.run_options())
