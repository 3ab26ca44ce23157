"""Speech onsets from a voice activity detector: webrtcvad (default) or Silero VAD (optional).

The pipeline is: read the audio segment block by block as mono samples
(`anchorprep.sources.audio.read_blocks`: decoded, mixed or selected, resampled with soxr's
streaming resampler to the VAD's rate), classify fixed frames, smooth the frame decisions into
speech segments as they come (`HysteresisSmoother`), and report each segment as
``(onset_s, offset_s)`` in seconds from the start of the segment that was read. Memory is bounded
by the block size (plus one byte per frame for the raw decisions kept in the result), whatever
the length of the audio, and the result does not depend on the block size.

**Onsets are first speech samples.** Smoothers such as py-webrtcvad's example collector delay
the decision until a window of frames is mostly voiced and then report the start of the *window*
(a look-back of up to ``window_ms``, voiced or not), so the reported onset moves with the
smoothing settings. Here the smoothing only decides *whether* a run of speech is accepted; the
onset is the start of the first voiced frame of the accepted run (the first frame the detector
called speech inside the window that accepted it, extended back over the contiguous voiced
frames before it) and the offset the end of its last voiced frame. So an onset is always the
start of a frame the detector called speech, never look-back padding; ``min_speech_ms`` and
``min_silence_ms`` only drop or merge runs, and for speech that starts cleanly the onset does not
depend on ``window_ms`` or the ratios either (a wider window can only reach back to an earlier
voiced frame). What remains is the detector's own resolution (one frame) and its own bias:
webrtcvad's C code holds a decision for a few frames after speech stops (its "hangover", up to
about 80-150 ms), so its *offsets* run late; its onsets carry no such bias. webrtcvad also tends
to call the first ~50-150 ms of a stream speech while its noise estimate settles; those frames
form a short run of their own that ``min_speech_ms`` removes.

webrtcvad backend (``backend="webrtc"``):

1. The samples are converted to 16-bit little-endian PCM the way webrtcvad expects (scaled by
   32768, rounded, clipped) and cut into ``frame_ms`` frames of exactly
   ``sample_rate * frame_ms / 1000`` samples; a trailing partial frame is zero-padded to a full
   frame (its offset is clipped to the end of the audio).
2. One fresh ``webrtcvad.Vad(mode)`` per call classifies the frames in order (it is stateful);
   a frame may straddle two blocks.
3. Hysteresis, as in py-webrtcvad's example collector: a run starts when at least
   ``start_ratio`` of the last ``window_ms`` of frames are voiced and ends when at least
   ``stop_ratio`` of them are unvoiced; the window restarts at every change of state.
4. Gaps shorter than ``min_silence_ms`` between runs are closed, then runs shorter than
   ``min_speech_ms`` are dropped.

Silero backend (``backend="silero"``, ``pip install 'anchorprep[silero]'``): Silero's own
probabilities (512-sample windows at 16 kHz, 256 at 8 kHz) and its own
``get_speech_timestamps_from_probs`` with ``speech_pad_ms=0``, ``threshold``, ``neg_threshold``,
``min_speech_ms`` and ``min_silence_ms``; ``window_ms`` and the ratios do not apply. Its onset is
the start of the first window whose probability reaches ``threshold``. The (stateful) model is
fed the same windows block by block; its probabilities (4 bytes per window) are kept until the
end, where Silero's function needs them all.
"""

from __future__ import annotations

import bisect
import threading
import warnings
from array import array
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from typing import Iterable, Iterator, Literal

import numpy as np

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.audio import DEFAULT_BLOCK_FRAMES, Channel, audio_segment, read_blocks, resample, to_pcm16

BACKENDS = ("webrtc", "silero")
WEBRTC_RATES = (8000, 16000, 32000, 48000)
WEBRTC_FRAME_MS = (10, 20, 30)
SILERO_RATES = (8000, 16000)
SILERO_INSTALL_HINT = "pip install 'anchorprep[silero]'  (or: pip install silero-vad)"


@dataclass(frozen=True)
class VadSettings:
    """How speech is detected and smoothed. Validated on construction (`UsageError`).

    Attributes:
        backend: "webrtc" (default) or "silero".
        mode: webrtcvad aggressiveness 0 (least) .. 3 (most aggressive in rejecting non-speech).
        frame_ms: webrtcvad frame length, 10, 20 or 30 ms (Silero's window is fixed at 32 ms).
        sample_rate: the rate the VAD runs at; audio is resampled to it. webrtcvad accepts
            8000, 16000, 32000 and 48000 Hz, Silero 8000 and 16000 Hz.
        window_ms: hysteresis window (webrtc), a multiple of ``frame_ms``.
        start_ratio: fraction of the window's frames that must be voiced to start a run.
        stop_ratio: fraction of the window's frames that must be unvoiced to end a run.
        min_speech_ms: runs shorter than this (first voiced to last voiced frame) are dropped.
        min_silence_ms: gaps between runs shorter than this are closed (runs merged).
        threshold: Silero speech probability threshold.
        neg_threshold: Silero's lower (release) threshold; ``None`` is Silero's default,
            ``max(threshold - 0.15, 0.01)``.

    The webrtc defaults were chosen with ``benchmarks/bench_vad.py`` on the shared real data
    (25 recordings with alignments or human segments): mode 3 is the only mode that never fired
    more than 100 ms before the first word there (modes 0-2 fire on noise floors, breaths and
    crosstalk); 10 ms frames give onsets on the 10 ms feature grid; a 300 ms window with
    ``start_ratio=0.5`` accepts short first words ("eight", 150 ms voiced) that py-webrtcvad's
    0.9 rule misses.
    """

    backend: Literal["webrtc", "silero"] = "webrtc"
    mode: int = 3
    frame_ms: int = 10
    sample_rate: int = 16000
    window_ms: int = 300
    start_ratio: float = 0.5
    stop_ratio: float = 0.9
    min_speech_ms: float = 100.0
    min_silence_ms: float = 300.0
    threshold: float = 0.5
    neg_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown VAD backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not _is_int(self.mode) or not 0 <= self.mode <= 3:
            raise UsageError(f"webrtcvad mode must be 0, 1, 2 or 3, got {self.mode!r}")
        if not _is_int(self.frame_ms) or self.frame_ms not in WEBRTC_FRAME_MS:
            raise UsageError(f"VAD frame_ms must be 10, 20 or 30, got {self.frame_ms!r}")
        rates = WEBRTC_RATES if self.backend == "webrtc" else SILERO_RATES
        if not _is_int(self.sample_rate) or self.sample_rate not in rates:
            raise UsageError(
                f"{self.backend} VAD runs at {', '.join(map(str, rates))} Hz, got sample_rate={self.sample_rate!r} "
                "(audio at any rate is resampled to it)"
            )
        if not _is_int(self.window_ms) or self.window_ms <= 0 or self.window_ms % self.frame_ms:
            raise UsageError(
                f"window_ms must be a positive multiple of frame_ms={self.frame_ms}, got {self.window_ms!r}"
            )
        for name in ("start_ratio", "stop_ratio"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise UsageError(f"{name} must be in (0, 1], got {value!r}")
        for name in ("min_speech_ms", "min_silence_ms"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < float("inf"):
                raise UsageError(f"{name} must be a finite number >= 0, got {value!r}")
        if not _is_number(self.threshold) or not 0.0 < self.threshold < 1.0:
            raise UsageError(f"Silero threshold must be in (0, 1), got {self.threshold!r}")
        if self.neg_threshold is not None and (
            not _is_number(self.neg_threshold) or not 0.0 < self.neg_threshold <= self.threshold
        ):
            raise UsageError(
                f"Silero neg_threshold must be in (0, threshold={self.threshold}], got {self.neg_threshold!r}"
            )

    @property
    def window_frames(self) -> int:
        """Hysteresis window in webrtcvad frames."""
        return self.window_ms // self.frame_ms

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VadResult:
    """Speech segments of one audio segment, and the detector's raw per-frame decisions.

    Attributes:
        segments: ``(onset_s, offset_s)`` pairs in seconds from the start of the audio passed in
            (the loaded segment, not the recording), sorted, non-overlapping.
        frame_decisions: the detector's raw decision per frame, before smoothing; frame ``i``
            covers ``[i * frame_ms, (i + 1) * frame_ms)`` ms (the last one may be partial).
        frame_ms: the detector's frame length in ms (Silero: 32 ms at either rate).
        settings: the settings used.
        duration_s: duration of the audio that was analysed.
        info: backend name and version, and what the settings resolved to (JSON-serialisable).
        frame_scores: per-frame speech probabilities where the backend has them (Silero).
    """

    segments: list[tuple[float, float]]
    frame_decisions: np.ndarray
    frame_ms: float
    settings: VadSettings
    duration_s: float = 0.0
    info: dict = field(default_factory=dict)
    frame_scores: np.ndarray | None = None

    @property
    def onsets(self) -> list[float]:
        return [onset for onset, _ in self.segments]

    @property
    def offsets(self) -> list[float]:
        return [offset for _, offset in self.segments]


# ---------------------------------------------------------------------------------------------
# Public entry points


#: Samples per block when an in-memory array is classified (`vad_audio`): bounds the int16 copy.
ARRAY_BLOCK_SAMPLES = 1 << 17


def vad_audio(samples: np.ndarray, sample_rate: int, settings: VadSettings | None = None) -> VadResult:
    """Run the VAD on mono samples (float in [-1, 1] or int16; any rate, resampled to the VAD's rate).

    Raises `InputError` for empty or non-finite audio, `UsageError` for a bad rate or dtype.
    """
    settings = settings or VadSettings()
    if not _is_int(sample_rate) or sample_rate <= 0:
        raise UsageError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    elif not np.issubdtype(samples.dtype, np.floating):
        raise UsageError(f"VAD needs float samples in [-1, 1] or int16, got dtype {samples.dtype}")
    if samples.ndim != 1:
        raise InputError(f"VAD needs mono samples (1-D), got an array of shape {samples.shape}")
    if samples.size == 0:
        raise InputError("no audio samples to run the VAD on")
    samples = samples.astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        raise InputError("audio contains NaN or infinite samples")
    if sample_rate != settings.sample_rate:
        samples = resample(samples, int(sample_rate), settings.sample_rate)
    blocks = (samples[i : i + ARRAY_BLOCK_SAMPLES] for i in range(0, samples.size, ARRAY_BLOCK_SAMPLES))
    if settings.backend == "silero":
        return _silero_vad(blocks, settings)
    return _webrtc_vad(map(to_pcm16, blocks), settings)


def vad_file(
    path: str,
    settings: VadSettings | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    channel: Channel = "mix",
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> VadResult:
    """Run the VAD on a segment of ``path`` (arguments as in `load_audio`), read block by block.

    The audio is decoded, mixed or selected, resampled and classified ``block_frames`` samples
    (at the file's rate; `anchorprep.sources.audio.read_blocks`) at a time, so memory does not
    grow with the segment's length beyond one byte per VAD frame (the raw decisions kept in the
    result: 360 KB per hour at 10 ms; Silero: 4 bytes per 32 ms window) and the segments found;
    the result is bit-identical to classifying the whole segment at once. Times in the result are
    relative to ``start_s``. Bad audio raises `InputError` naming the file.
    """
    settings = settings or VadSettings()
    segment = audio_segment(path, start_s=start_s, duration_s=duration_s, sample_rate=settings.sample_rate,
                            channel=channel)
    try:
        if settings.backend == "silero":
            return _silero_vad(read_blocks(segment, block_frames), settings)
        return _webrtc_vad(read_blocks(segment, block_frames, pcm16=True), settings)
    except InputError as exc:
        if exc.path is not None:
            raise
        raise InputError(exc.reason, path) from exc


def first_onset_after(result: VadResult, t: float, inclusive: bool = True) -> float | None:
    """The first onset at or after ``t`` (strictly after when ``inclusive=False``), else ``None``.

    Only segment starts count: speech that began before ``t`` and is still going on at ``t``
    (a wake word and the command run together) is not an onset after ``t``.
    """
    onsets = result.onsets
    i = bisect.bisect_left(onsets, t) if inclusive else bisect.bisect_right(onsets, t)
    return onsets[i] if i < len(onsets) else None


def onsets_within(result: VadResult, start: float, end: float) -> list[float]:
    """Onsets ``o`` with ``start <= o < end``."""
    return [o for o in result.onsets if start <= o < end]


def speech_targets(result: VadResult, frame_centres: np.ndarray, smoothed: bool = True) -> np.ndarray:
    """Per-frame speech (1) / non-speech (0) labels, as int16, for frames centred at `frame_centres`.

    A (model) frame is speech when its centre (on the anchorprep grid:
    ``FrameGrid.frame_centre_time(np.arange(num_frames))``) lies inside a speech interval
    ``[onset, offset)``. ``smoothed=True`` uses the smoothed segments; ``smoothed=False`` the
    detector's raw frame decisions.
    """
    centres = np.asarray(frame_centres, dtype=np.float64)
    num_frames = len(centres)
    if num_frames == 0:
        return np.zeros(0, dtype=np.int16)
    if smoothed:
        intervals = result.segments
    else:
        runs = _runs(np.asarray(result.frame_decisions, dtype=bool))
        step = result.frame_ms / 1000.0
        intervals = [(a * step, min(b * step, result.duration_s or b * step)) for a, b in runs]
    out = np.zeros(num_frames, dtype=np.int16)
    if not intervals:
        return out
    starts = np.array([a for a, _ in intervals])
    ends = np.array([b for _, b in intervals])
    k = np.searchsorted(starts, centres, side="right") - 1
    inside = (k >= 0) & (centres < ends[np.clip(k, 0, None)])
    out[inside] = 1
    return out


# ---------------------------------------------------------------------------------------------
# webrtcvad


def webrtc_frame_decisions(pcm: np.ndarray, sample_rate: int, frame_ms: int, mode: int) -> np.ndarray:
    """Raw webrtcvad decision per ``frame_ms`` frame of int16 PCM; the last frame is zero-padded."""
    if pcm.size == 0:
        return np.zeros(0, dtype=bool)
    return _webrtc_vad([pcm], replace(VadSettings(), sample_rate=sample_rate, frame_ms=frame_ms, mode=mode,
                                      window_ms=frame_ms)).frame_decisions


def _speech_frames(is_speech, pcm: np.ndarray, sample_rate: int, frame_bytes: int) -> bytes:
    """webrtcvad's decision (0/1) per frame of whole frames of little-endian int16 ``pcm``.

    The frames are zero-copy memoryview slices and the loop runs in ``map``: per frame, one
    slice and the unavoidable ``is_speech`` call.
    """
    view = memoryview(np.ascontiguousarray(pcm, dtype="<i2")).cast("B")
    frames = (view[i : i + frame_bytes] for i in range(0, len(view), frame_bytes))
    return bytes(map(is_speech, frames, repeat(sample_rate)))


class _Framed:
    """Consecutive blocks re-cut into whole frames of ``frame_len`` samples, as one stream: each
    iteration yields a run of whole frames (a frame may straddle a block boundary); the trailing
    partial frame comes last, zero-padded to a whole frame. ``samples`` counts the input."""

    def __init__(self, blocks: Iterable[np.ndarray], frame_len: int):
        self.blocks, self.frame_len, self.samples = blocks, frame_len, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        carry = None
        for block in self.blocks:
            self.samples += block.size
            if carry is not None and carry.size:
                block = np.concatenate((carry, block))
            whole = block.size - block.size % self.frame_len
            carry = block[whole:].copy()
            if whole:
                yield block[:whole]
        if carry is not None and carry.size:
            last = np.zeros(self.frame_len, dtype=carry.dtype)
            last[: carry.size] = carry
            yield last


def _webrtc_vad(pcm_blocks: Iterable[np.ndarray], settings: VadSettings) -> VadResult:
    """Classify consecutive int16 blocks (at ``settings.sample_rate``) as one stream.

    webrtcvad sees ``frame_ms`` frames cut from the concatenated blocks (a frame may straddle a
    block boundary); a trailing partial frame is zero-padded. The smoother is fed the decisions
    of each block as they come, so only the current block, the last window of decisions, the
    decisions kept for the result (one byte per frame) and the runs are held.
    """
    import webrtcvad

    sr = settings.sample_rate
    frame_len = sr * settings.frame_ms // 1000
    is_speech = webrtcvad.Vad(settings.mode).is_speech
    smoother = HysteresisSmoother(settings.window_frames, settings.start_ratio, settings.stop_ratio)
    decisions = bytearray()
    framed = _Framed(pcm_blocks, frame_len)
    for pcm in framed:
        block_decisions = _speech_frames(is_speech, pcm, sr, 2 * frame_len)
        decisions.extend(block_decisions)
        smoother.feed(np.frombuffer(block_decisions, dtype=bool))
    n = framed.samples
    if n == 0:
        raise InputError("no audio samples to run the VAD on")
    runs = [(start, end) for start, end, _ in smoother.finish()]
    runs = _merge_and_filter(runs, settings.frame_ms, settings.min_silence_ms, settings.min_speech_ms)
    segments = [(a * frame_len / sr, min(b * frame_len, n) / sr) for a, b in runs]
    return VadResult(
        segments=segments,
        frame_decisions=np.frombuffer(decisions, dtype=bool),
        frame_ms=float(settings.frame_ms),
        settings=settings,
        duration_s=n / sr,
        info={
            "backend": "webrtc",
            "package": "webrtcvad-wheels",
            "version": getattr(webrtcvad, "__version__", "unknown"),
            "frame_samples": frame_len,
            "window_frames": settings.window_frames,
        },
    )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _runs(decisions: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as ``[start, end)`` frame index pairs."""
    d = np.concatenate(([0], decisions.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(d))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def hysteresis_runs(
    decisions: np.ndarray, window: int, start_ratio: float, stop_ratio: float
) -> list[tuple[int, int]]:
    """Accepted speech runs ``[first_voiced, last_voiced + 1)`` (frame indices); see `HysteresisSmoother`."""
    return [(start, end) for start, end, _ in hysteresis_with_triggers(decisions, window, start_ratio, stop_ratio)]


def hysteresis_with_triggers(
    decisions: np.ndarray, window: int, start_ratio: float, stop_ratio: float
) -> list[tuple[int, int, int]]:
    """`hysteresis_runs` plus, per run, the frame at which the smoother accepted it.

    ``(start, end, trigger)``: a streaming smoother only knows about the run at the end of frame
    ``trigger``; ``trigger - start`` is the decision delay that the reported onset does not carry.
    """
    smoother = HysteresisSmoother(window, start_ratio, stop_ratio)
    smoother.feed(decisions)
    return smoother.finish()


class HysteresisSmoother:
    """Accepted speech runs of a stream of frame decisions, fed block by block.

    A run is accepted when ``ceil(start_ratio * window)`` of the frames in the window ending at
    the current frame are voiced, and ends when ``ceil(stop_ratio * window)`` of them are
    unvoiced; the window only reaches back to the last change of state. The run's first frame
    is the start of the contiguous voiced stretch holding the window's first voiced frame (never
    before the last change of state), so the window's look-back is not reported as speech; its
    end is one past its last voiced frame. Runs are ``(start, end, trigger)`` with ``trigger``
    the frame at whose end the run was accepted.

    The result does not depend on how the decisions are split into blocks. Between state
    changes the window counts are computed with numpy over the block (no Python step per
    frame); memory is the last ``window - 1`` decisions plus the runs found.
    """

    def __init__(self, window: int, start_ratio: float, stop_ratio: float) -> None:
        self.window = int(window)
        self.k_start = max(1, int(np.ceil(start_ratio * window - 1e-9)))
        self.k_stop = max(1, int(np.ceil(stop_ratio * window - 1e-9)))
        self.runs: list[tuple[int, int, int]] = []
        self._tail = np.zeros(0, dtype=bool)  # the last window - 1 decisions fed
        self._tail_stretch = np.zeros(0, dtype=np.int64)  # their voiced-stretch starts
        self._stretch = 0  # start of the voiced stretch ending the stream (frames fed, if unvoiced)
        self._fed = 0
        self._triggered = False
        self._reset = 0  # first frame the window may look at (the frame after the last change of state)
        self._onset = self._last_voiced = self._trigger = 0

    def feed(self, decisions: np.ndarray) -> None:
        new = np.asarray(decisions, dtype=bool).ravel()
        if new.size == 0:
            return
        buf = np.concatenate((self._tail, new))
        g0 = self._fed - self._tail.size  # frame index of buf[0]
        size = buf.size
        counts = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(buf, out=counts[1:])
        # stretch[t]: first frame of the contiguous voiced stretch holding voiced frame g0 + t.
        breaks = np.where(new, 0, np.arange(self._fed + 1, self._fed + new.size + 1))
        new_stretch = np.maximum.accumulate(np.concatenate(([self._stretch], breaks)))[1:]
        stretch = np.concatenate((self._tail_stretch, new_stretch))

        t = self._tail.size
        while t < size:
            reset = self._reset - g0
            if not self._triggered:
                hit = self._first_hit(counts, reset, t, size, self.k_start, voiced=True)
                if hit is None:
                    break
                lo = max(reset, hit - self.window + 1)
                window = buf[lo : hit + 1]
                first = lo + int(window.argmax())
                self._onset = max(int(stretch[first]), self._reset)
                self._last_voiced = g0 + hit - int(window[::-1].argmax())
                self._trigger = g0 + hit
                self._triggered = True
                self._reset = g0 + hit + 1
                t = hit + 1
            else:
                hit = self._first_hit(counts, reset, t, size, self.k_stop, voiced=False)
                stop = size if hit is None else hit + 1
                voiced = np.flatnonzero(buf[t:stop])
                if voiced.size:
                    self._last_voiced = g0 + t + int(voiced[-1])
                if hit is None:
                    break
                self.runs.append((self._onset, self._last_voiced + 1, self._trigger))
                self._triggered = False
                self._reset = g0 + hit + 1
                t = hit + 1

        keep = min(self.window - 1, size)
        self._tail = buf[size - keep :].copy()
        self._tail_stretch = stretch[size - keep :].copy()
        self._stretch = int(new_stretch[-1])
        self._fed += new.size

    def _first_hit(self, counts: np.ndarray, reset: int, t: int, size: int, k: int, voiced: bool) -> int | None:
        """First buffer position ``>= t`` whose window holds ``k`` voiced (or unvoiced) frames."""
        step = max(8 * self.window, 256)
        while t < size:
            ends = np.arange(t, min(size, t + step))
            starts = np.maximum(ends - self.window + 1, reset)
            n_voiced = counts[ends + 1] - counts[starts]
            hits = n_voiced >= k if voiced else (ends + 1 - starts) - n_voiced >= k
            j = int(hits.argmax())
            if hits[j]:
                return t + j
            t = int(ends[-1]) + 1
        return None

    def finish(self) -> list[tuple[int, int, int]]:
        """The runs; a run still open at the end of the stream ends at its last voiced frame."""
        runs = list(self.runs)
        if self._triggered:
            runs.append((self._onset, self._last_voiced + 1, self._trigger))
        return runs


def _merge_and_filter(
    runs: list[tuple[int, int]], frame_ms: float, min_silence_ms: float, min_speech_ms: float
) -> list[tuple[int, int]]:
    """Close gaps shorter than ``min_silence_ms``, then drop runs shorter than ``min_speech_ms``."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and (start - merged[-1][1]) * frame_ms < min_silence_ms:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(s, e) for s, e in merged if (e - s) * frame_ms >= min_speech_ms]


# ---------------------------------------------------------------------------------------------
# Silero


_SILERO_LOCK = threading.Lock()
_SILERO_MODEL = None


def _silero_modules():
    """Import silero_vad lazily, without letting it change torch's thread count."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise UsageError(f"the silero VAD backend needs torch and silero-vad: {SILERO_INSTALL_HINT}") from exc
    threads = torch.get_num_threads()
    try:
        import silero_vad
    except ImportError as exc:
        raise UsageError(f"the silero VAD backend needs the silero-vad package: {SILERO_INSTALL_HINT}") from exc
    finally:
        # silero_vad.model calls torch.set_num_threads(1) at import time.
        torch.set_num_threads(threads)
    return torch, silero_vad


def _silero_model():
    global _SILERO_MODEL
    torch, silero_vad = _silero_modules()
    if _SILERO_MODEL is None:
        threads = torch.get_num_threads()
        try:
            with warnings.catch_warnings():
                # importlib.resources.path and torch.jit.load deprecation notices from silero_vad.
                warnings.simplefilter("ignore", DeprecationWarning)
                _SILERO_MODEL = silero_vad.load_silero_vad(onnx=False)
        finally:
            torch.set_num_threads(threads)
    return torch, silero_vad, _SILERO_MODEL


def silero_probabilities(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Silero's speech probability per window (512 samples at 16 kHz, 256 at 8 kHz), in order.

    The last window is zero-padded, as Silero's own ``get_speech_timestamps`` does.
    """
    return _silero_stream([np.asarray(samples, dtype=np.float32)], sample_rate)[0]


def _silero_stream(blocks: Iterable[np.ndarray], sample_rate: int) -> tuple[np.ndarray, int]:
    """Silero's probabilities over consecutive float32 blocks as one stream, and the sample count.

    The model is stateful and sees the same windows as it would over the whole audio (a window
    may straddle a block boundary), so the result does not depend on the blocks. Memory: one
    block plus 4 bytes per window (450 KB per hour). The model lock is held while the blocks are
    read.
    """
    with _SILERO_LOCK:
        torch, _, model = _silero_model()
        window = 512 if sample_rate == 16000 else 256
        probs = array("f")
        framed = _Framed(blocks, window)
        model.reset_states()
        try:
            with torch.inference_mode():
                for frames in framed:
                    audio = torch.from_numpy(np.ascontiguousarray(frames))
                    for i in range(0, frames.size, window):
                        probs.append(model(audio[i : i + window], sample_rate).item())
        finally:
            model.reset_states()
    return np.frombuffer(probs, dtype=np.float32), framed.samples


def _silero_vad(blocks: Iterable[np.ndarray], settings: VadSettings) -> VadResult:
    _, silero_vad = _silero_modules()
    sr = settings.sample_rate
    window = 512 if sr == 16000 else 256
    probs, n = _silero_stream(blocks, sr)
    if n == 0:
        raise InputError("no audio samples to run the VAD on")
    neg = settings.neg_threshold if settings.neg_threshold is not None else max(settings.threshold - 0.15, 0.01)
    speeches = silero_vad.get_speech_timestamps_from_probs(
        probs.tolist(),
        sampling_rate=sr,
        threshold=settings.threshold,
        neg_threshold=neg,
        min_speech_duration_ms=settings.min_speech_ms,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=0,  # the padding would move every onset 30 ms early
        audio_length_samples=n,
    )
    segments = [(s["start"] / sr, min(s["end"], n) / sr) for s in speeches]
    return VadResult(
        segments=segments,
        frame_decisions=probs >= settings.threshold,
        frame_ms=window * 1000.0 / sr,
        settings=settings,
        duration_s=n / sr,
        info={
            "backend": "silero",
            "package": "silero-vad",
            "version": getattr(silero_vad, "__version__", "unknown"),
            "model": "silero_vad.jit",
            "frame_samples": window,
            "speech_pad_ms": 0,
            "neg_threshold": neg,
        },
        frame_scores=probs,
    )
