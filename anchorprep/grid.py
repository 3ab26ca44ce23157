"""The frame grid: how sample positions and event times map to (model) frames.

The convention is Kaldi's (and `torchaudio.compliance.kaldi.fbank`'s, kaldi-native-fbank's and
lhotse's), so labels line up with the features a Kaldi-compatible front end produces:

* ``S = frame_shift * sr`` and ``L = frame_length * sr`` samples.
* ``snip_edges=True``: ``num_frames(N) = 0 if N < L else 1 + (N - L) // S``; feature frame ``t``
  covers samples ``[t*S, t*S + L)``.
* ``snip_edges=False``: ``num_frames(N) = (N + S // 2) // S``; frame ``t`` is centred on
  ``t*S + S // 2`` and covers ``[t*S + S//2 - L//2, t*S + S//2 - L//2 + L)`` (Kaldi reflects the
  samples that fall outside the signal).
* Subsampling ``s``: model frame ``j`` covers feature frames ``[j*s, j*s + s)``;
  ``T_model = T_feat // s``.

A frame's *end time* is the end of its last sample. The ``causal`` anchor rule maps an event at
time ``tau`` to the first model frame whose end time is ``>= tau`` (the first frame at which a
streaming model has heard the event); ``nearest`` maps it to the frame whose centre is nearest.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from anchorprep.errors import UsageError

ANCHOR_RULES = ("causal", "nearest")
#: Largest sample rate: shards store ``sample_rate`` as int32.
MAX_SAMPLE_RATE = 2**31 - 1

# Event times arrive as decimal seconds (1.09 s); 1.09 * 16000 is 17440.000000000002 in floating
# point. Positions within this many samples of an integer are snapped to it before comparing.
_SAMPLE_SNAP = 1e-6
# `time_to_frame` maps up to this many events in plain Python floats (numpy's per-call cost is
# larger for a handful of values), positions below 2**52 samples only.
_SCALAR_EVENTS = 16
_SCALAR_LIMIT = float(2**52)


def _kaldi_samples(sample_rate: int, ms: float) -> int:
    """Kaldi's ``static_cast<int32>(samp_freq * 0.001f * ms)``, in float32 like Kaldi."""
    return int(np.float32(sample_rate) * np.float32(0.001) * np.float32(ms))


@dataclass(frozen=True)
class FrameGrid:
    """Sample rate and framing shared by the features and the labels."""

    sample_rate: int = 16000
    frame_shift_ms: float = 10.0
    frame_length_ms: float = 25.0
    snip_edges: bool = True
    subsampling: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= MAX_SAMPLE_RATE:
            raise UsageError(f"`sample_rate` must be positive and at most {MAX_SAMPLE_RATE}, got {self.sample_rate}")
        if self.subsampling < 1:
            raise UsageError(f"`subsampling` must be >= 1, got {self.subsampling}")
        for name in ("frame_shift_ms", "frame_length_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise UsageError(f"`{name}` must be a finite number of milliseconds, got {value!r}")
            if value * 0.001 * self.sample_rate > 2**31 - 1:  # Kaldi counts samples in int32
                raise UsageError(f"`{name}` = {value} is more than 2**31 - 1 samples at {self.sample_rate} Hz")
            if _kaldi_samples(self.sample_rate, getattr(self, name)) < 1:
                raise UsageError(f"`{name}` = {getattr(self, name)} is less than one sample at {self.sample_rate} Hz")

    # The grid constants are computed once per grid (the grid is frozen; `cached_property`
    # stores them in the instance dict, outside the dataclass fields, equality and `to_dict`).

    @cached_property
    def shift(self) -> int:
        """Frame shift ``S`` in samples (truncated as Kaldi does: 10 ms at 22050 Hz is 220)."""
        return _kaldi_samples(self.sample_rate, self.frame_shift_ms)

    @cached_property
    def length(self) -> int:
        """Frame length ``L`` in samples (truncated as Kaldi does)."""
        return _kaldi_samples(self.sample_rate, self.frame_length_ms)

    @cached_property
    def _first_sample_offset(self) -> int:
        """Sample index where feature frame 0 starts (negative when edges are not snipped)."""
        return 0 if self.snip_edges else self.shift // 2 - self.length // 2

    @cached_property
    def _first_end_sample(self) -> float:
        """End sample of model frame 0 (`frame_end_samples(0)`), as a float."""
        return float(self.frame_end_samples(0))

    @cached_property
    def _first_centre_sample(self) -> float:
        """Centre of model frame 0 in samples (`frame_centre_time(0)` times the rate)."""
        return float(self.frame_centre_time(0)) * self.sample_rate

    def num_feature_frames(self, num_samples: int) -> int:
        """Feature frames Kaldi computes for ``num_samples`` samples."""
        if self.snip_edges:
            return 0 if num_samples < self.length else 1 + (num_samples - self.length) // self.shift
        return (num_samples + self.shift // 2) // self.shift

    def num_frames(self, num_samples: int) -> int:
        """Model frames (after subsampling) for ``num_samples`` samples (`num_feature_frames`
        inlined: called twice per item)."""
        if self.snip_edges:
            features = 0 if num_samples < self.length else 1 + (num_samples - self.length) // self.shift
        else:
            features = (num_samples + self.shift // 2) // self.shift
        return features // self.subsampling

    def num_samples(self, duration_s: float) -> int:
        """Samples in ``duration_s`` seconds at this grid's rate (rounded to the nearest sample)."""
        # math.floor of the same float64 product: np.floor's value (and ValueError/OverflowError
        # for NaN/inf as int(np.floor(...)) raises), without numpy scalar arithmetic.
        return math.floor(float(duration_s) * self.sample_rate + 0.5)

    def resampled_length(self, num_samples: int, sample_rate: int) -> int:
        """Samples that ``num_samples`` at ``sample_rate`` become at the grid's rate.

        Matches `soxr.resample`'s output length (``round(N * sr_grid / sr)``), so the frames
        counted here equal the rows of features computed on the resampled audio.
        """
        if sample_rate == self.sample_rate:
            return num_samples
        return math.floor(float(num_samples) * self.sample_rate / sample_rate + 0.5)

    def frame_end_samples(self, frames: np.ndarray | int) -> np.ndarray:
        """Exclusive end sample of model frame(s) ``j``: end of feature frame ``j*s + s - 1``."""
        last_feature = np.asarray(frames, dtype=np.int64) * self.subsampling + self.subsampling - 1
        return self._first_sample_offset + last_feature * self.shift + self.length

    def frame_end_time(self, frames: np.ndarray | int) -> np.ndarray:
        """End time in seconds of model frame(s) ``j``."""
        return self.frame_end_samples(frames) / self.sample_rate

    def frame_centre_time(self, frames: np.ndarray | int) -> np.ndarray:
        """Centre time in seconds of model frame(s) ``j`` (midpoint of its first and last sample)."""
        first = self._first_sample_offset + np.asarray(frames, dtype=np.int64) * self.subsampling * self.shift
        return (first + self.frame_end_samples(frames)) / 2.0 / self.sample_rate

    def time_to_frame(self, times_s, num_frames: int, rule: str = "causal") -> tuple[np.ndarray, int, int]:
        """Map event times to model frames.

        Returns ``(frames, clipped_after, clipped_before)``: frames as int64 in ``[0, T-1]``, and how
        many events fell past the last frame (clipped to ``T-1``) or had a negative time (clipped
        to 0).
        ``num_frames`` must be positive.
        """
        frames, after, before = self._frames(times_s, num_frames, rule)
        return (np.array(frames, dtype=np.int64) if type(frames) is list else frames), after, before

    def time_to_frame_list(self, times_s: list[float], num_frames: int,
                           rule: str = "causal") -> tuple[list[int], int, int]:
        """`time_to_frame` with the frames as a list of ints (no array for an item's few events)."""
        frames, after, before = self._frames(times_s, num_frames, rule)
        return (frames if type(frames) is list else frames.tolist()), after, before

    def _frames(self, times_s, num_frames: int, rule: str) -> tuple[list[int] | np.ndarray, int, int]:
        """`time_to_frame`'s result, the frames a list for a few plain floats (`_time_to_frame_scalar`)."""
        if num_frames <= 0:
            raise ValueError("time_to_frame needs at least one frame")
        if rule not in ANCHOR_RULES:
            raise UsageError(f"`anchor_rule` must be one of {', '.join(ANCHOR_RULES)}, got {rule!r}")
        if type(times_s) is list and len(times_s) <= _SCALAR_EVENTS:
            scalar = self._time_to_frame_scalar(times_s, num_frames, rule)
            if scalar is not None:
                return scalar
        return self._time_to_frame_numpy(times_s, num_frames, rule)

    def _time_to_frame_numpy(self, times_s, num_frames: int, rule: str) -> tuple[np.ndarray, int, int]:
        pos = np.asarray(times_s, dtype=np.float64) * self.sample_rate
        snapped = np.round(pos)
        pos = np.where(np.abs(pos - snapped) < _SAMPLE_SNAP, snapped, pos)
        step = self.shift * self.subsampling
        if rule == "causal":
            # Smallest j with frame_end_samples(j) >= pos.
            raw = np.ceil((pos - self._first_end_sample) / step)
        else:
            # Round half down: an event exactly between two centres goes to the earlier frame.
            raw = np.ceil((pos - self._first_centre_sample) / step - 0.5)
        raw = raw.astype(np.int64)
        clipped_after = int(np.count_nonzero(raw > num_frames - 1))
        clipped_before = int(np.count_nonzero(pos < 0))
        return np.clip(raw, 0, num_frames - 1), clipped_after, clipped_before

    def _time_to_frame_scalar(self, times_s: list, num_frames: int, rule: str) -> tuple[list[int], int, int] | None:
        """`time_to_frame` for a few plain floats, in Python floats (the same IEEE float64
        operations as the numpy path, so the same frames); None for anything unusual (non-float
        or non-finite times, positions beyond 2**52 samples) so the numpy path decides."""
        rate, step = self.sample_rate, self.shift * self.subsampling
        first = self._first_end_sample if rule == "causal" else self._first_centre_sample
        half = 0.0 if rule == "causal" else 0.5
        frames, after, before = [], 0, 0
        for t in times_s:
            if type(t) is not float:
                return None
            pos = t * rate
            if not -_SCALAR_LIMIT < pos < _SCALAR_LIMIT:  # also False for NaN
                return None
            snapped = float(round(pos))  # round half to even, as np.round
            if abs(pos - snapped) < _SAMPLE_SNAP:
                pos = snapped
            raw = math.ceil((pos - first) / step - half)
            if raw > num_frames - 1:
                after += 1
                raw = num_frames - 1
            elif raw < 0:
                raw = 0
            before += pos < 0
            frames.append(raw)
        return frames, after, before

    def to_dict(self) -> dict:
        return asdict(self)
