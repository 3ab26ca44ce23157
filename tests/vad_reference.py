"""main's whole-file VAD before block reading, kept as the reference the block path must equal.

One ``soundfile.read`` of the whole segment as float32, one float32 mean over the channels, one
``soxr.resample``, one int16 conversion, a per-frame webrtcvad loop over the zero-padded PCM, and
the per-frame hysteresis loop. Copied from main (anchorprep/sources/{audio,vad}.py at the commit
before block reading); only the error checks are left out.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr


def whole_segment(path, start_s=0.0, duration_s=None, sample_rate=None, channel="mix") -> np.ndarray:
    info = sf.info(str(path))
    sr = info.samplerate
    first = int(round(start_s * sr))
    count = info.frames - first if duration_s is None else min(int(round(duration_s * sr)), info.frames - first)
    data, _ = sf.read(str(path), start=first, frames=count, dtype="float32", always_2d=True)
    mono = data.mean(axis=1, dtype=np.float32) if channel == "mix" else data[:, channel]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sample_rate is not None and sample_rate != sr:
        mono = np.ascontiguousarray(soxr.resample(mono, sr, sample_rate, quality="HQ"), dtype=np.float32)
    return mono


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2")


def frame_decisions(pcm: np.ndarray, sample_rate: int, frame_ms: int, mode: int) -> np.ndarray:
    import webrtcvad

    frame_len = sample_rate * frame_ms // 1000
    n_frames = -(-pcm.size // frame_len)
    padded = np.zeros(n_frames * frame_len, dtype="<i2")
    padded[: pcm.size] = pcm
    buf = padded.tobytes()
    nbytes = 2 * frame_len
    is_speech = webrtcvad.Vad(mode).is_speech
    return np.fromiter(
        (is_speech(buf[i * nbytes : (i + 1) * nbytes], sample_rate) for i in range(n_frames)),
        dtype=bool,
        count=n_frames,
    )


def hysteresis_with_triggers(decisions, window: int, start_ratio: float, stop_ratio: float):
    v = np.asarray(decisions, dtype=bool)
    n = v.size
    if n == 0:
        return []
    k_start = max(1, int(np.ceil(start_ratio * window - 1e-9)))
    k_stop = max(1, int(np.ceil(stop_ratio * window - 1e-9)))
    cs = np.concatenate(([0], np.cumsum(v, dtype=np.int64))).tolist()
    idx = np.arange(n)
    breaks = np.where(v, 0, idx + 1)
    stretch_start = np.maximum.accumulate(breaks).tolist()
    vl = v.tolist()

    runs = []
    triggered = False
    reset = 0
    onset = last_voiced = trigger = 0
    for i in range(n):
        lo = max(reset, i - window + 1)
        voiced = cs[i + 1] - cs[lo]
        if not triggered:
            if voiced >= k_start:
                first = lo + vl[lo : i + 1].index(True)
                onset = max(stretch_start[first], reset)
                triggered = True
                trigger = i
                reset = i + 1
                last_voiced = i - vl[lo : i + 1][::-1].index(True)
        else:
            if vl[i]:
                last_voiced = i
            if (i + 1 - lo) - voiced >= k_stop:
                runs.append((onset, last_voiced + 1, trigger))
                triggered = False
                reset = i + 1
    if triggered:
        runs.append((onset, last_voiced + 1, trigger))
    return runs


def merge_and_filter(runs, frame_ms, min_silence_ms, min_speech_ms):
    merged = []
    for start, end in runs:
        if merged and (start - merged[-1][1]) * frame_ms < min_silence_ms:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(s, e) for s, e in merged if (e - s) * frame_ms >= min_speech_ms]


def vad_file(path, settings, start_s=0.0, duration_s=None, channel="mix"):
    """``(segments, frame_decisions, duration_s)`` of main's webrtc `vad_file`."""
    samples = whole_segment(path, start_s, duration_s, settings.sample_rate, channel)
    sr = settings.sample_rate
    decisions = frame_decisions(to_pcm16(samples), sr, settings.frame_ms, settings.mode)
    runs = [(a, b) for a, b, _ in hysteresis_with_triggers(decisions, settings.window_frames, settings.start_ratio,
                                                           settings.stop_ratio)]
    runs = merge_and_filter(runs, settings.frame_ms, settings.min_silence_ms, settings.min_speech_ms)
    frame_len = sr * settings.frame_ms // 1000
    n = samples.size
    return [(a * frame_len / sr, min(b * frame_len, n) / sr) for a, b in runs], decisions, n / sr
