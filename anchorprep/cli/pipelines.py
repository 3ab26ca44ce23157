"""The pipeline commands: `align`, `vad`, `accel`, `merge` and `assemble`.

Each declares its own options (names and defaults of the library function it calls) and nothing
else: `pipeline_command` adds the shared options and calls `anchorprep.<command>`.
"""

from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Out, usage_guard

SOURCE = "Alignment source"
VAD = "Voice activity detection"
ACCEL = "Accelerometer"
MANIFEST_STDIN = " '-' reads the manifest from stdin."


def align(
    inputs: Annotated[str, typer.Argument(help="A manifest (.csv/.tsv/.jsonl/.parquet), a folder of TextGrids (+audio), a Kaldi .ctm, an .rttm, or a lhotse cuts/supervisions manifest." + MANIFEST_STDIN)],
    out: Out,
    keyword: Annotated[Optional[list[str]], typer.Option("-k", "--keyword", help="Keyword or phrase; repeat for more classes (ids 1, 2, ... in order).", rich_help_panel=SOURCE)] = None,
    speech_onsets: Annotated[bool, typer.Option("--speech-onsets", help="Anchor the start of every speech run on the tier instead of keywords.", rich_help_panel=SOURCE)] = False,
    min_pause_ms: Annotated[float, typer.Option("--min-pause-ms", help="With --speech-onsets: silence that separates speech runs.", rich_help_panel=SOURCE)] = 0.0,
    edge: Annotated[str, typer.Option("--edge", help="Anchor at the keyword's end, start or centre.", rich_help_panel=SOURCE)] = "end",
    tier: Annotated[Optional[str], typer.Option("--tier", help="Tier name (default: MFA's words/phones tier).", rich_help_panel=SOURCE)] = None,
    speaker: Annotated[Optional[str], typer.Option("--speaker", help="Speaker whose tier to use in multi-speaker alignments; all: every speaker's (sources alignment:<speaker>); column: each item's speaker column.", rich_help_panel=SOURCE)] = None,
    level: Annotated[str, typer.Option("--level", help="words or phones.", rich_help_panel=SOURCE)] = "words",
    regex: Annotated[bool, typer.Option("--regex", help="Keywords are regular expressions matched against single labels.", rich_help_panel=SOURCE)] = False,
    require_keyword: Annotated[bool, typer.Option("--require-keyword", help="An utterance without any keyword is an error, not a negative.", rich_help_panel=SOURCE)] = False,
    format: Annotated[str, typer.Option("--format", help="auto (by extension/content), textgrid, mfa-csv, mfa-json, ctm, rttm or lhotse.", rich_help_panel=SOURCE)] = "auto",
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of CTM files (e.g. gb18030).", rich_help_panel=SOURCE)] = "utf-8",
    segments: Annotated[Optional[str], typer.Option("--segments", help="Kaldi segments file: CTM times are recording-relative.", rich_help_panel=SOURCE)] = None,
    wav_scp: Annotated[Optional[str], typer.Option("--wav-scp", help="Kaldi wav.scp giving audio for a .ctm or .rttm input.", rich_help_panel=SOURCE)] = None,
    lhotse_unit: Annotated[str, typer.Option("--lhotse-unit", help="lhotse input: one item per cut or per supervision (auto: cuts for a CutSet).", rich_help_panel=SOURCE)] = "auto",
    recordings: Annotated[Optional[str], typer.Option("--recordings", help="lhotse RecordingSet for a SupervisionSet input.", rich_help_panel=SOURCE)] = None,
    audio_root: Annotated[Optional[str], typer.Option("--audio-root", help="Folder relative lhotse audio sources resolve against.", rich_help_panel=SOURCE)] = None,
    audio_dir: Annotated[Optional[str], typer.Option("--audio-dir", help="For a TextGrid folder: the corpus folder holding the audio (MFA layout).", rich_help_panel=SOURCE)] = None,
) -> None:
    """Anchors from forced alignments: every occurrence of each keyword, at its end (or start/centre)."""


def vad(
    inputs: Annotated[str, typer.Argument(help="A manifest (utt_id, audio_path[, start_s, duration_s]) or a folder of audio files." + MANIFEST_STDIN)],
    out: Out,
    backend: Annotated[str, typer.Option("--backend", help="webrtc, or silero (pip install 'anchorprep\\[silero]').", rich_help_panel=VAD)] = "webrtc",
    mode: Annotated[int, typer.Option("--mode", help="webrtcvad aggressiveness 0..3.", rich_help_panel=VAD)] = 3,
    frame_ms: Annotated[int, typer.Option("--frame-ms", help="webrtcvad frame: 10, 20 or 30 ms.", rich_help_panel=VAD)] = 10,
    vad_rate: Annotated[int, typer.Option("--vad-rate", help="Rate the VAD runs at (audio is resampled with soxr).", rich_help_panel=VAD)] = 16000,
    window_ms: Annotated[int, typer.Option("--window-ms", help="Hysteresis window.", rich_help_panel=VAD)] = 300,
    start_ratio: Annotated[float, typer.Option("--start-ratio", help="Voiced share of the window that starts speech.", rich_help_panel=VAD)] = 0.5,
    stop_ratio: Annotated[float, typer.Option("--stop-ratio", help="Unvoiced share of the window that ends speech.", rich_help_panel=VAD)] = 0.9,
    min_speech_ms: Annotated[float, typer.Option("--min-speech-ms", help="Drop speech runs shorter than this.", rich_help_panel=VAD)] = 100.0,
    min_silence_ms: Annotated[float, typer.Option("--min-silence-ms", help="Close pauses shorter than this.", rich_help_panel=VAD)] = 300.0,
    channel: Annotated[str, typer.Option("--channel", help="Channel index, or mix.", rich_help_panel=VAD)] = "mix",
    offsets: Annotated[bool, typer.Option("--offsets", help="Also anchor speech ends (label speech_offset).", rich_help_panel=VAD)] = False,
    onsets: Annotated[str, typer.Option("--onsets", help="all onsets, or only the first.", rich_help_panel=VAD)] = "all",
    targets: Annotated[str, typer.Option("--targets", help="window: positive window after each anchor; vad: per-frame speech/non-speech.", rich_help_panel=VAD)] = "window",
    anchors_from: Annotated[Optional[str], typer.Option("--anchors-from", help="An earlier run: only onsets after each utterance's first anchor there (e.g. a wake word's end).", rich_help_panel=VAD)] = None,
) -> None:
    """Speech-onset anchors from webrtcvad (or Silero): the first speech sample of each speech run."""


def accel(
    inputs: Annotated[str, typer.Argument(help="A manifest (utt_id, accel_path[, audio_path, time_offset_s, start_s, duration_s]) or a folder of sensor files." + MANIFEST_STDIN)],
    out: Out,
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
    skip_rows: Annotated[int, typer.Option("--skip-rows", help="Metadata lines before the data (0: a device export's metadata block is found).", rich_help_panel=ACCEL)] = 0,
    columns: Annotated[Optional[str], typer.Option("--columns", help="Time and x, y, z columns: names or 0-based indices, e.g. 'Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z' or 0,1,2,3 (x,y,z with --rate).", rich_help_panel=ACCEL)] = None,
    units: Annotated[str, typer.Option("--units", help="auto (g or m/s2 from gravity), g or m/s2; samples are converted to m/s2.", rich_help_panel=ACCEL)] = "auto",
    max_gap_s: Annotated[float, typer.Option("--max-gap-s", help="Refuse a file whose timestamps jump by more than this.", rich_help_panel=ACCEL)] = 60.0,
    time_offset_s: Annotated[float, typer.Option("--time-offset-s", help="Utterance time of the sensor's first sample (a time_offset_s column overrides).", rich_help_panel=ACCEL)] = 0.0,
    vad: Annotated[bool, typer.Option("--vad", help="Also anchor the audio's speech onsets (webrtcvad defaults).", rich_help_panel=ACCEL)] = False,
    use_source: Annotated[Optional[list[str]], typer.Option("--use-source", help="Sources the distance uses (repeat; first = primary).", rich_help_panel=ACCEL)] = None,
    agree_within_ms: Annotated[Optional[float], typer.Option("--agree-within-ms", help="Positive only where all --use-source anchors agree within this.", rich_help_panel=ACCEL)] = None,
) -> None:
    """Anchors at accelerometer peaks (e.g. a raise-to-speak gesture), on the audio's frame grid."""


def merge(
    runs: Annotated[list[str], typer.Argument(help="Output folders of earlier runs (same frame grid).")],
    out: Out,
    use_source: Annotated[Optional[list[str]], typer.Option("--use-source", help="Sources the distance uses (repeat; first = primary).")] = None,
    agree_within_ms: Annotated[Optional[float], typer.Option("--agree-within-ms", help="Positive only where all --use-source anchors agree within this.")] = None,
) -> None:
    """Merge the anchors of earlier runs by utt_id (e.g. VAD onsets + accelerometer peaks)."""


@usage_guard
def assemble(run: Annotated[str, typer.Argument(help="Output folder of an array-job run.")]) -> None:
    """Write manifest.json, errors.jsonl and report.json once every shard of a run is finished."""
    import json

    from anchorprep.pipeline import api

    report = api.assemble(run)
    typer.echo(json.dumps(report.to_dict(), indent=2))
    raise typer.Exit(1 if report.failed else 0)
