"""Audio headers and samples, through soundfile (libsndfile) and soxr.

`load_audio` reads only the requested segment of a file (any format and sample subtype
libsndfile decodes: WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1; float, 8/16/24/32-bit
integer), selects or mixes channels and resamples with soxr when a target rate is given.
`read_blocks` does the same block by block (`audio_segment` checks the request first), so audio
of any length is read in bounded memory; `load_audio` is its blocks concatenated. `open_audio`
is the one place a file is opened. Every problem with the file or with the requested segment
raises `InputError`; nothing from libsndfile or soxr escapes raw.

Segment convention (lhotse's): ``start_s`` and ``duration_s`` are rounded to whole samples at
the file's rate; a segment may overrun the end of the file by at most ``tolerance_s``
(default 25 ms, lhotse's default) and is then cut at the end of the file, while a larger overrun
is an error, because it usually means the manifest and the audio disagree.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import ContextManager, Iterator, Literal, Union

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


def open_audio(path: str) -> ContextManager[sf.SoundFile]:
    """Open an audio file (a local path or an object-storage URL) for reading: the one place audio
    files are opened.

    Raises `InputError` for a missing path, a directory, a special file, or a header libsndfile
    cannot read. Use the result as a context manager (``with open_audio(path) as f``): leaving it
    closes the `soundfile.SoundFile` and hands an object's cached reader back to `audio_source`.
    """
    local = not _is_url(path)
    if local and not os.path.exists(path):
        raise InputError("audio file not found", path)
    if local and os.path.isdir(path):
        raise InputError("audio path is a directory, not a file", path)
    refuse_special_file(path)
    opened = ExitStack()
    try:
        source = opened.enter_context(audio_source(path))
        audio = opened.enter_context(sf.SoundFile(source))
    except FileNotFoundError as exc:
        opened.close()
        raise InputError(f"audio file not found ({exc.strerror or exc})", path) from None
    except Exception as exc:  # libsndfile reports every failure as a RuntimeError/LibsndfileError
        opened.close()
        raise InputError(f"cannot read audio header: {exc}", path) from exc
    return _closing(opened, audio)


@contextmanager
def _closing(opened: ExitStack, audio: sf.SoundFile) -> Iterator[sf.SoundFile]:
    with opened:
        yield audio


def audio_info(path: str) -> AudioInfo:
    """Read the header of an audio file; raises `InputError` when it cannot be read."""
    with open_audio(path) as f:
        return AudioInfo(sample_rate=int(f.samplerate), num_samples=int(f.frames), channels=int(f.channels))


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


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16 the way webrtcvad expects them (x 32768, rounded, clipped).

    16-bit sources read as float (soundfile divides by 32768) come back bit-exact.
    """
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2")


@dataclass(frozen=True)
class AudioSegment:
    """A validated segment of one audio file: what `read_blocks` reads (see `audio_segment`).

    Attributes:
        path: the file.
        info: its header.
        first: the segment's first sample, at the file's rate.
        count: the segment's length in samples at the file's rate, cut at the end of the file.
        channel: a 0-based channel index, or ``"mix"``.
        sample_rate: the rate of the samples read (the file's, or the requested target rate).
        tolerance_s: how far the decoded audio may fall short of ``count`` when ``duration_given``.
        duration_given: a duration was requested, so a file decoding to fewer samples than its
            header states (truncated) is an error rather than read to where it ends.
    """

    path: str
    info: AudioInfo
    first: int
    count: int
    channel: Channel
    sample_rate: int
    tolerance_s: float = DEFAULT_TOLERANCE_S
    duration_given: bool = False

    @property
    def resampled(self) -> bool:
        return self.sample_rate != self.info.sample_rate


def audio_segment(
    path: str,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int | None = None,
    channel: Channel = "mix",
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> AudioSegment:
    """Check a segment request against the file's header (arguments as in `load_audio`).

    Raises the same `InputError` / `UsageError` as `load_audio`, before any sample is read.
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
    return AudioSegment(
        path=path, info=info, first=first, count=count, channel=channel,
        sample_rate=int(sample_rate) if sample_rate is not None else sr,
        tolerance_s=tolerance_s, duration_given=duration_s is not None,
    )


#: Samples per channel decoded per block by `read_blocks`: 8.2 s at 16 kHz, 2.7 s at 48 kHz;
#: 1 MB of 16 kHz mono float32, 4 MB of 48 kHz stereo float32.
DEFAULT_BLOCK_FRAMES = 1 << 17


def read_blocks(
    segment: AudioSegment, block_frames: int = DEFAULT_BLOCK_FRAMES, pcm16: bool = False
) -> Iterator[np.ndarray]:
    """Decode a segment block by block as mono float32 in [-1, 1] (or 16-bit PCM with ``pcm16``).

    At most ``block_frames`` samples per channel are decoded at a time; the channel is selected or
    the channels mixed (their float32 mean) per block, and the block is resampled with soxr's
    streaming resampler (HQ), so memory is bounded by the block size whatever the segment's length.
    The blocks concatenated are bit-identical to reading the whole segment, mixing it and calling
    ``soxr.resample`` once (mixing is per sample; soxr's stream gives the one-shot call's samples,
    which tests/test_audio.py checks). Blocks are never empty; after resampling their lengths vary.

    ``pcm16=True`` yields int16 equal to `to_pcm16` of the float blocks. A 16-bit PCM file read
    without resampling or mixing is decoded to int16 directly (exact: libsndfile's float is the
    integer / 32768).

    Raises `InputError` (naming the file) for a decoding error, non-finite samples, nothing
    decodable, a truncated file when a duration was requested, or a segment too short to resample.
    """
    if isinstance(block_frames, bool) or not isinstance(block_frames, (int, np.integer)) or block_frames <= 0:
        raise UsageError(f"`block_frames` must be a positive integer, got {block_frames!r}")
    path = segment.path
    stream = None
    if segment.resampled:
        stream = soxr.ResampleStream(segment.info.sample_rate, segment.sample_rate, 1, dtype="float32", quality="HQ")
    column = None if segment.channel == "mix" else int(segment.channel)
    with open_audio(path) as f:
        direct_pcm16 = (
            pcm16 and stream is None and f.subtype == "PCM_16" and (f.channels == 1 or column is not None)
        )
        dtype = "int16" if direct_pcm16 else "float32"
        decoded = produced = 0
        try:
            f.seek(segment.first)
        except Exception as exc:
            raise InputError(f"cannot decode audio: {exc}", path) from exc
        while decoded < segment.count:
            try:
                data = f.read(min(block_frames, segment.count - decoded), dtype=dtype, always_2d=True)
            except Exception as exc:  # LibsndfileError, or a decoder error deep inside a damaged file
                raise InputError(f"cannot decode audio: {exc}", path) from exc
            if data.shape[0] == 0:
                break  # the file ends before its header says it does
            decoded += data.shape[0]
            if column is not None or data.shape[1] == 1:
                mono = np.ascontiguousarray(data[:, column or 0])
            else:
                mono = data.mean(axis=1, dtype=np.float32)
            del data
            if not direct_pcm16 and not np.isfinite(mono).all():
                raise InputError("audio contains NaN or infinite samples", path)
            if stream is not None:
                mono = stream.resample_chunk(mono, last=False)
            if mono.size:
                produced += mono.size
                yield to_pcm16(mono) if pcm16 and not direct_pcm16 else mono
        if decoded == 0:
            raise InputError("no samples could be decoded from the requested segment (truncated file?)", path)
        if segment.duration_given and segment.count - decoded > segment.tolerance_s * segment.info.sample_rate:
            # The header promised more than the data holds (a truncated file).
            raise InputError(
                f"file decodes to fewer samples than its header states: got {decoded} of {segment.count} requested",
                path,
            )
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            produced += tail.size
            yield to_pcm16(tail) if pcm16 else tail
        if produced == 0:
            raise InputError(f"segment is too short to resample to {segment.sample_rate} Hz", path)


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
        ``(samples, rate)``: a 1-D C-contiguous float32 array and its sample rate; the blocks
        of `read_blocks` concatenated.

    Raises:
        InputError: unreadable or empty file, a segment outside the file, a channel the file
            does not have, non-finite samples.
        UsageError: a channel or target rate that can never be valid (negative, wrong type).
    """
    segment = audio_segment(path, start_s, duration_s, sample_rate, channel, tolerance_s)
    blocks = list(read_blocks(segment))
    samples = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return samples, segment.sample_rate
