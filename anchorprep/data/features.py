"""Acoustic features on the shard's frame grid, so feature row ``j`` is target frame ``j``.

For each row the loader reads the segment ``[start_s, start_s + duration_s)`` of ``audio_path``
(soundfile; channels mixed by default or one selected), resamples it to the grid's rate with
soxr when the file's rate differs (the same resampling the pipeline counted frames for), runs the
extractor and maps feature frames to model frames:

* ``Fbank`` (``features="fbank"``): Kaldi-compatible log-mel filter banks from kaldi-native-fbank
  with the grid's frame shift, frame length and ``snip_edges``, Kaldi's defaults otherwise
  (povey window, pre-emphasis 0.97, DC removal, 20 Hz..Nyquist, power spectrum), ``dither=0``
  so features are deterministic, 80 mel bins unless told otherwise. Samples are fed as float
  in ``[-1, 1]`` (torchaudio/lhotse practice); ``waveform_scale=32768`` reproduces Kaldi's
  ``compute-fbank-feats``, which sees 16-bit integer values (log-mels then differ by a constant).
* Any callable ``(waveform: float32 ndarray, sample_rate) -> (T_feat, F)`` array or tensor, one
  row per *feature* frame of the grid (before subsampling).

Subsampling ``s`` (the grid's): model frame ``j`` covers feature frames ``[j*s, j*s + s)``
(docs/FORMAT.md, Frame grid), so ``subsampling="stack"`` (default) concatenates those ``s`` rows into one of
``F*s`` values, and ``subsampling="last"`` keeps the last of them (``j*s + s - 1``, the frame
whose end time is the model frame's end time). Either way the trailing ``T_feat % s`` feature
frames are dropped (``T_model = T_feat // s``), and ``T_model`` must equal the row's
``num_frames``; otherwise `FrameCountError` names the utterance.

Example:
    >>> import numpy as np
    >>> from anchorprep.grid import FrameGrid
    >>> grid = FrameGrid(subsampling=2)
    >>> feats = Fbank(num_mel_bins=40).compute(np.zeros(16000, np.float32), 16000, grid)
    >>> feats.shape                      # 98 feature frames
    (98, 40)
    >>> subsample(feats, 2, "stack").shape
    (49, 80)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Union

import numpy as np
import torch

from anchorprep.errors import InputError, UsageError
from anchorprep.grid import FrameGrid
from anchorprep.sources.audio import Channel, load_audio

SUBSAMPLING_MODES = ("stack", "last")
SubsamplingMode = Literal["stack", "last"]
Extractor = Callable[[np.ndarray, int], Union[np.ndarray, torch.Tensor]]


class FrameCountError(InputError):
    """Features and labels of an utterance disagree on the number of frames."""


@dataclass(frozen=True)
class Fbank:
    """Kaldi-compatible log-mel filter banks (kaldi-native-fbank) on a `FrameGrid`."""

    num_mel_bins: int = 80
    dither: float = 0.0
    low_freq: float = 20.0
    high_freq: float = 0.0
    waveform_scale: float = 1.0

    def options(self, grid: FrameGrid):
        import kaldi_native_fbank as knf

        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = float(grid.sample_rate)
        opts.frame_opts.frame_shift_ms = float(grid.frame_shift_ms)
        opts.frame_opts.frame_length_ms = float(grid.frame_length_ms)
        opts.frame_opts.snip_edges = bool(grid.snip_edges)
        opts.frame_opts.dither = float(self.dither)
        opts.mel_opts.num_bins = int(self.num_mel_bins)
        opts.mel_opts.low_freq = float(self.low_freq)
        opts.mel_opts.high_freq = float(self.high_freq)
        return opts

    def compute(self, waveform: np.ndarray, sample_rate: int, grid: FrameGrid) -> np.ndarray:
        """``(T_feat, num_mel_bins)`` float32 features of mono ``waveform`` at the grid's rate."""
        import kaldi_native_fbank as knf

        if sample_rate != grid.sample_rate:
            raise UsageError(f"fbank needs audio at the grid rate {grid.sample_rate} Hz, got {sample_rate} Hz")
        fbank = knf.OnlineFbank(self.options(grid))
        samples = waveform if self.waveform_scale == 1.0 else waveform * np.float32(self.waveform_scale)
        fbank.accept_waveform(float(sample_rate), np.ascontiguousarray(samples, dtype=np.float32))
        fbank.input_finished()
        out = np.empty((fbank.num_frames_ready, self.num_mel_bins), dtype=np.float32)
        for t in range(out.shape[0]):  # kaldi-native-fbank hands out one frame at a time
            out[t] = fbank.get_frame(t)
        return out


def subsample(features: np.ndarray, factor: int, mode: SubsamplingMode = "stack") -> np.ndarray:
    """Feature frames ``(T_feat, F)`` to model frames ``(T_feat // factor, F')`` (see module doc)."""
    if mode not in SUBSAMPLING_MODES:
        raise UsageError(f"subsampling must be one of {SUBSAMPLING_MODES}, got {mode!r}")
    if factor == 1:
        return features
    frames = features.shape[0] // factor
    if mode == "stack":
        return features[: frames * factor].reshape(frames, factor * features.shape[1])
    return features[factor - 1: frames * factor: factor]


def resolve_extractor(features: Union[str, Fbank, Extractor, None]) -> Union[Fbank, Extractor, None]:
    if features is None or isinstance(features, Fbank) or callable(features):
        return features
    if features == "fbank":
        return Fbank()
    raise UsageError(f"features must be None, 'fbank', an Fbank(...) or a callable, got {features!r}")


@dataclass(frozen=True)
class FeatureLoader:
    """Loads an utterance's audio and returns its features on the model-frame grid."""

    grid: FrameGrid
    extractor: Union[Fbank, Extractor]
    subsampling: SubsamplingMode = "stack"
    channel: Channel = "mix"

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLING_MODES:
            raise UsageError(f"subsampling must be one of {SUBSAMPLING_MODES}, got {self.subsampling!r}")

    def __call__(self, utt_id: str, audio_path: str | None, start_s: float, duration_s: float,
                 num_frames: int) -> torch.Tensor:
        """``(num_frames, F)`` float32 features; `FrameCountError` when the counts disagree."""
        if not audio_path:
            raise InputError(f"utterance {utt_id!r} has no audio_path, so no features can be computed")
        waveform, rate = load_audio(audio_path, start_s, duration_s, sample_rate=self.grid.sample_rate,
                                    channel=self.channel)
        if isinstance(self.extractor, Fbank):
            feats = self.extractor.compute(waveform, rate, self.grid)
        else:
            feats = self.extractor(waveform, rate)
        if isinstance(feats, torch.Tensor):
            feats = feats.detach().cpu().numpy()
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2:
            raise UsageError(f"feature extractor returned shape {feats.shape} for {utt_id!r}; expected (T, F)")
        model = subsample(feats, self.grid.subsampling, self.subsampling)
        if model.shape[0] != num_frames:
            raise FrameCountError(
                f"utterance {utt_id!r}: features have {model.shape[0]} model frames "
                f"({feats.shape[0]} feature frames // subsampling {self.grid.subsampling}) from "
                f"{waveform.size} samples at {rate} Hz, but the shard row says num_frames={num_frames} "
                f"(expected {self.grid.num_frames(waveform.size)} for this audio on the grid); "
                "the audio or the segment changed since the shards were written, or the extractor "
                "does not use the shard's frame grid",
                audio_path,
            )
        return torch.from_numpy(np.ascontiguousarray(model))
