"""Audio headers and samples, through soundfile (libsndfile) and soxr.

`load_audio` reads only the requested segment of a file (any format and sample subtype
libsndfile decodes: WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1; float, 8/16/24/32-bit
integer), selects or mixes channels and resamples with soxr when a target rate is given. Every
problem with the file or with the requested segment raises `InputError`; nothing from libsndfile
or soxr escapes raw.

Segment convention (lhotse's): ``start_s`` and ``duration_s`` are rounded to whole samples at
the file's rate; a segment may overrun the end of the file by at most ``tolerance_s``
(default 25 ms, lhotse's default) and is then cut at the end of the file, while a larger overrun
is an error, because it usually means the manifest and the audio disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import soundfile as sf
import soxr

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.files import refuse_special_file
from anchorprep.storage import StoragePath, audio_source, item_location

#: Channel selector: a 0-based channel index, or "mix" for the mean of all channels.
Channel = Union[int, Literal["mix"]]

#: How far (seconds) a requested segment may run past the end of the file before it is an error.
DEFAULT_TOLERANCE_S = 0.025


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    num_samples: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str) -> AudioInfo:
    """Read the header of an audio file; raises `InputError` when it cannot be read."""
    local = not _is_url(path)
    if local and not os.path.exists(path):
        raise InputError("audio file not found", path)
    if local and os.path.isdir(path):
        raise InputError("audio path is a directory, not a file", path)
    refuse_special_file(path)
    try:
        with audio_source(path) as source:
            info = sf.info(source)
    except FileNotFoundError as exc:
        raise InputError(f"audio file not found ({exc.strerror or exc})", path) from None
    except Exception as exc:  # libsndfile reports every failure as a RuntimeError/LibsndfileError
        raise InputError(f"cannot read audio header: {exc}", path) from exc
    return AudioInfo(sample_rate=int(info.samplerate), num_samples=int(info.frames), channels=int(info.channels))


def _is_url(path) -> bool:
    try:
        return isinstance(item_location(path), StoragePath)
    except FileNotFoundError:
        return True  # an unusable URL: opening it reports the problem


def _check_channel(channel: Channel) -> None:
    if isinstance(channel, str):
        if channel != "mix":
            raise UsageError(f"channel must be a 0-based index or 'mix', got {channel!r}")
        return
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0:
        raise UsageError(f"channel must be a 0-based index or 'mix', got {channel!r}")


def _check_sample_rate(sample_rate: int | None) -> None:
    if sample_rate is None:
        return
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UsageError(f"target sample rate must be a positive integer, got {sample_rate!r}")


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample mono float32 samples with soxr (HQ); a no-op when the rates are equal."""
    if orig_rate == target_rate:
        return samples
    out = soxr.resample(samples, orig_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def load_audio(
    path: str,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int | None = None,
    channel: Channel = "mix",
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> tuple[np.ndarray, int]:
    """Read a segment of an audio file as mono float32 in [-1, 1].

    Args:
        path: any file libsndfile reads.
        start_s: segment start in seconds from the start of the file.
        duration_s: segment length in seconds; ``None`` reads to the end of the file.
        sample_rate: resample to this rate with soxr (HQ) when it differs from the file's;
            ``None`` keeps the file's rate.
        channel: a 0-based channel index, or ``"mix"`` (default) for the mean of all channels.
            A mono file accepts ``0`` and ``"mix"``.
        tolerance_s: how far the segment may overrun the end of the file (it is then cut there).

    Returns:
        ``(samples, rate)``: a 1-D C-contiguous float32 array and its sample rate.

    Raises:
        InputError: unreadable or empty file, a segment outside the file, a channel the file
            does not have, non-finite samples.
        UsageError: a channel or target rate that can never be valid (negative, wrong type).
    """
    _check_channel(channel)
    _check_sample_rate(sample_rate)
    info = audio_info(path)
    if info.num_samples <= 0 or info.sample_rate <= 0:
        raise InputError("audio file holds no samples (zero-length audio)", path)
    if channel != "mix" and channel >= info.channels:
        raise InputError(f"channel {channel} requested but the file has {info.channels} channel(s)", path)

    sr = info.sample_rate
    if not np.isfinite(start_s) or start_s < 0:
        raise InputError(f"segment start {start_s} s is negative or not a number", path)
    if duration_s is not None and (not np.isfinite(duration_s) or duration_s <= 0):
        raise InputError(f"segment duration {duration_s} s is not positive", path)
    first = int(round(start_s * sr))
    if first >= info.num_samples:
        raise InputError(
            f"segment starts at {start_s:.4f} s, at or after the end of the file ({info.duration_s:.4f} s)", path
        )
    if duration_s is None:
        count = info.num_samples - first
    else:
        count = int(round(duration_s * sr))
        overrun = first + count - info.num_samples
        if overrun > tolerance_s * sr:
            raise InputError(
                f"segment {start_s:.4f}+{duration_s:.4f} s ends {overrun / sr:.4f} s past the end of "
                f"the file ({info.duration_s:.4f} s)",
                path,
            )
        count = min(count, info.num_samples - first)
        if count <= 0:
            raise InputError(f"segment {start_s:.4f}+{duration_s:.4f} s is shorter than one sample", path)

    try:
        with audio_source(path) as source:
            data, _ = sf.read(source, start=first, frames=count, dtype="float32", always_2d=True)
    except Exception as exc:  # LibsndfileError, or a decoder error deep inside a damaged file
        raise InputError(f"cannot decode audio: {exc}", path) from exc
    if data.shape[0] == 0:
        raise InputError("no samples could be decoded from the requested segment (truncated file?)", path)
    if duration_s is not None and count - data.shape[0] > tolerance_s * sr:
        # The header promised more than the data holds (a truncated file).
        raise InputError(
            f"file decodes to fewer samples than its header states: got {data.shape[0]} of {count} requested",
            path,
        )

    mono = data.mean(axis=1, dtype=np.float32) if channel == "mix" else data[:, int(channel)]
    if not np.all(np.isfinite(mono)):
        raise InputError("audio contains NaN or infinite samples", path)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sample_rate is not None and sample_rate != sr:
        mono = resample(mono, sr, int(sample_rate))
        if mono.size == 0:
            raise InputError(f"segment is too short to resample to {sample_rate} Hz", path)
        sr = int(sample_rate)
    return mono, sr
