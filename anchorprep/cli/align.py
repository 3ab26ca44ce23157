from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.anchors import SPEECH_ONSET
from anchorprep.cli.common import Common, execute, pipeline_command
from anchorprep.pipeline.align import AlignJob, AlignOptions
from anchorprep.sources.items import alignment_items

SOURCE = "Alignment source"


@pipeline_command("align")
def align_command(
    inputs: Annotated[Path, typer.Argument(help="A manifest (.csv/.tsv/.jsonl/.parquet), a folder of TextGrids (+audio), a Kaldi .ctm, an .rttm, or a lhotse cuts/supervisions manifest.")],
    keyword: Annotated[Optional[list[str]], typer.Option("-k", "--keyword", help="Keyword or phrase; repeat for more classes (ids 1, 2, ... in order).", rich_help_panel=SOURCE)] = None,
    speech_onsets: Annotated[bool, typer.Option("--speech-onsets", help="Anchor the start of every speech run on the tier instead of keywords.", rich_help_panel=SOURCE)] = False,
    min_pause_ms: Annotated[float, typer.Option("--min-pause-ms", help="With --speech-onsets: silence that separates speech runs.", rich_help_panel=SOURCE)] = 0.0,
    edge: Annotated[str, typer.Option("--edge", help="Anchor at the keyword's end, start or centre.", rich_help_panel=SOURCE)] = "end",
    tier: Annotated[Optional[str], typer.Option("--tier", help="Tier name (default: MFA's words/phones tier).", rich_help_panel=SOURCE)] = None,
    speaker: Annotated[Optional[str], typer.Option("--speaker", help="Speaker whose tiers to use in multi-speaker alignments.", rich_help_panel=SOURCE)] = None,
    level: Annotated[str, typer.Option("--level", help="words or phones.", rich_help_panel=SOURCE)] = "words",
    regex: Annotated[bool, typer.Option("--regex", help="Keywords are regular expressions matched against single labels.", rich_help_panel=SOURCE)] = False,
    require_keyword: Annotated[bool, typer.Option("--require-keyword", help="An utterance without any keyword is an error, not a negative.", rich_help_panel=SOURCE)] = False,
    format: Annotated[str, typer.Option("--format", help="auto (by extension/content), textgrid, mfa-csv, mfa-json, ctm, rttm or lhotse.", rich_help_panel=SOURCE)] = "auto",
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of CTM files (e.g. gb18030).", rich_help_panel=SOURCE)] = "utf-8",
    segments: Annotated[Optional[Path], typer.Option("--segments", help="Kaldi segments file: CTM times are recording-relative.", rich_help_panel=SOURCE)] = None,
    wav_scp: Annotated[Optional[Path], typer.Option("--wav-scp", help="Kaldi wav.scp giving audio for a .ctm input.", rich_help_panel=SOURCE)] = None,
    lhotse_unit: Annotated[str, typer.Option("--lhotse-unit", help="lhotse input: one item per cut or per supervision (auto: cuts for a CutSet).", rich_help_panel=SOURCE)] = "auto",
    recordings: Annotated[Optional[Path], typer.Option("--recordings", help="lhotse RecordingSet for a SupervisionSet input.", rich_help_panel=SOURCE)] = None,
    audio_root: Annotated[Optional[Path], typer.Option("--audio-root", help="Folder relative lhotse audio sources resolve against.", rich_help_panel=SOURCE)] = None,
    audio_dir: Annotated[Optional[Path], typer.Option("--audio-dir", help="For a TextGrid folder: the corpus folder holding the audio (MFA layout).", rich_help_panel=SOURCE)] = None,
    common: Common = None,
) -> None:
    """Anchors from forced alignments: every occurrence of each keyword, at its end (or start/centre)."""
    options = AlignOptions(tuple(keyword or ()), edge, tier, speaker, level, regex, require_keyword, format,
                           encoding, str(segments) if segments else None, speech_onsets, min_pause_ms / 1000.0, lhotse_unit)
    labels = (SPEECH_ONSET,) if speech_onsets else tuple(keyword or ())
    job = AlignJob(common.labelling(labels), options)
    items = alignment_items(inputs, alignment_format=format, audio_dir=audio_dir, segments=segments, wav_scp=wav_scp,
                            encoding=encoding, lhotse_unit=lhotse_unit, recordings=recordings, audio_root=audio_root)
    execute(job, items, common.run_options())
