"""TEMPORARY shim on main until the sources split lands (replaced by the real module)."""
from pathlib import Path

from anchorprep.pipeline.align import ctm_items
from anchorprep.pipeline.inputs import AUDIO_SUFFIXES, discover_files, discover_pairs, read_manifest
from anchorprep.sources.lhotse_manifest import is_lhotse_manifest, lhotse_items
from anchorprep.sources.rttm import is_rttm, rttm_items


def alignment_items(inputs, *, alignment_format="auto", audio_dir=None, segments=None, wav_scp=None, encoding="utf-8",
                    lhotse_unit="auto", recordings=None, audio_root=None):
    inputs = Path(inputs)
    if inputs.is_dir():
        return discover_pairs(inputs, audio_dir)
    if is_rttm(inputs, alignment_format):
        return rttm_items(inputs, wav_scp, encoding)
    if alignment_format in ("auto", "lhotse") and is_lhotse_manifest(inputs):
        return lhotse_items(inputs, lhotse_unit, recordings=recordings, audio_root=audio_root)
    if inputs.suffix.lower() == ".ctm":
        return ctm_items(inputs, Path(segments) if segments else None, wav_scp, encoding)
    return read_manifest(inputs, required=("utt_id", "alignment_path"))


def audio_items(inputs):
    inputs = Path(inputs)
    if inputs.is_dir():
        return discover_files(inputs, AUDIO_SUFFIXES, "audio_path")
    return read_manifest(inputs, required=("utt_id", "audio_path"))


def accel_items(inputs):
    inputs = Path(inputs)
    if inputs.is_dir():
        return discover_files(inputs, (".csv", ".tsv", ".txt", ".npy", ".parquet", ".gz"), "accel_path")
    return read_manifest(inputs, required=("utt_id", "accel_path"))
