"""VAD onsets: placed onsets, the smoothing's bias, real recordings at every rate, bad input."""

from __future__ import annotations

import itertools
import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import vad_golden
import vad_reference  # main's whole-file implementation
from anchorprep.errors import InputError, UsageError
from anchorprep.grid import FrameGrid
from anchorprep.sources.audio import DEFAULT_BLOCK_FRAMES, load_audio, resample
from anchorprep.sources.vad import (
    HysteresisSmoother,
    VadResult,
    VadSettings,
    first_onset_after,
    hysteresis_runs,
    onsets_within,
    speech_targets,
    to_pcm16,
    vad_audio,
    vad_file,
    webrtc_frame_decisions,
)

AMI = "audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav"
AMI_ONSETS = (1.46, 3.36)  # lhotse's human segments
NOISE_DBFS = -70.0


# ---------------------------------------------------------------------------------------------
# Synthetic audio with an onset placed here


@pytest.fixture(scope="module")
def snippet(realdata: Path) -> np.ndarray:
    """3 s of real speech from MFA's acoustic_corpus, starting at the aligned start of "this"."""
    samples, _ = load_audio(str(realdata / "textgrid/mfa_tests/acoustic_corpus.wav"), start_s=1.05, duration_s=3.0)
    return samples


def place(snippet: np.ndarray, onset_s: float, seed: int = 0, blip_s: float | None = None) -> np.ndarray:
    """Low white noise, then the speech snippet from ``onset_s``, then 0.5 s of noise.

    ``blip_s`` adds a 60 ms harmonic tone burst (150 Hz and 13 harmonics) there.
    """
    rng = np.random.default_rng(seed)
    level = 10 ** (NOISE_DBFS / 20)
    pre = rng.standard_normal(round(onset_s * 16000)) * level
    post = rng.standard_normal(8000) * level
    audio = np.concatenate([pre, snippet, post]).astype(np.float32)
    if blip_s is not None:
        t = np.arange(round(0.06 * 16000)) / 16000
        tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 15)) * 0.2 * np.hanning(t.size)
        i = round(blip_s * 16000)
        audio[i : i + t.size] += tone.astype(np.float32)
    return audio


def speech_onset(result: VadResult, placed: float) -> float:
    """Onset of the segment that holds the placed onset (webrtcvad may also fire in the first
    frames of a stream while its noise estimate settles; those runs are separate segments)."""
    return next(on for on, off in result.segments if off > placed)


@pytest.mark.parametrize("placed", [0.5, 1.2, 1.2151, 2.0])
@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_placed_onset_is_found_within_one_frame(snippet: np.ndarray, placed: float, frame_ms: int) -> None:
    result = vad_audio(place(snippet, placed), 16000, VadSettings(frame_ms=frame_ms))
    assert result.segments, "no speech found"
    onset = result.segments[0][0]
    assert abs(onset - placed) < frame_ms / 1000 + 1e-9
    # Onsets sit on the frame grid: the start of the first voiced frame.
    assert onset * 1000 / frame_ms == pytest.approx(round(onset * 1000 / frame_ms))


@pytest.mark.parametrize("frame_ms", [10, 30])
def test_smoothing_never_moves_the_onset(snippet: np.ndarray, frame_ms: int) -> None:
    """The window, the ratios and min_speech/min_silence decide which runs count, not where they start."""
    placed = 1.2151
    audio = place(snippet, placed)
    reference = speech_onset(vad_audio(audio, 16000, VadSettings(frame_ms=frame_ms)), placed)
    assert abs(reference - placed) < frame_ms / 1000
    for mode, window_ms, start_ratio, min_speech_ms, min_silence_ms in itertools.product(
        (2, 3), (3 * frame_ms, 300, 600), (0.5, 0.9), (0, 250, 1000), (0, 1000)
    ):
        settings = VadSettings(
            mode=mode,
            frame_ms=frame_ms,
            window_ms=window_ms,
            start_ratio=start_ratio,
            min_speech_ms=min_speech_ms,
            min_silence_ms=min_silence_ms,
        )
        assert speech_onset(vad_audio(audio, 16000, settings), placed) == reference, settings


def test_large_min_speech_keeps_the_placed_onset(snippet: np.ndarray) -> None:
    placed = 1.2
    audio = place(snippet, placed)
    big = vad_audio(audio, 16000, VadSettings(min_speech_ms=1500, window_ms=600, start_ratio=0.9))
    assert big.segments[0][0] == pytest.approx(placed)


def test_min_speech_drops_a_tone_burst_without_moving_the_speech_onset(snippet: np.ndarray) -> None:
    placed = 1.2
    audio = place(snippet, placed, blip_s=0.3)
    keep = vad_audio(audio, 16000, VadSettings(min_speech_ms=0, window_ms=30))
    assert len(keep.segments) >= 2 and 0.28 <= keep.segments[0][0] <= 0.32  # the burst is "speech" to webrtcvad
    assert speech_onset(keep, placed) == pytest.approx(placed)
    drop = vad_audio(audio, 16000, VadSettings(min_speech_ms=250, window_ms=30))
    assert drop.segments[0][0] == pytest.approx(placed)


def test_offset_is_the_end_of_the_last_voiced_frame(snippet: np.ndarray) -> None:
    placed = 1.2
    result = vad_audio(place(snippet, placed), 16000, VadSettings())
    voiced = np.flatnonzero(result.frame_decisions)
    assert result.segments[-1][1] == pytest.approx((voiced[-1] + 1) * 0.01)
    # Speech ends no later than the snippet; webrtcvad's own hangover may add up to ~150 ms.
    assert result.segments[-1][1] <= placed + 3.0 + 0.2


# ---------------------------------------------------------------------------------------------
# The smoothing on hand-made decisions


def _d(pattern: str) -> np.ndarray:
    return np.array([c == "1" for c in pattern])


def test_hysteresis_reports_the_first_voiced_frame_not_the_window_start() -> None:
    #                  0123456789012345678901234567890
    runs = hysteresis_runs(_d("......1111111111.........11111"), window=5, start_ratio=0.8, stop_ratio=0.8)
    assert runs == [(6, 16), (25, 30)]


def test_hysteresis_rejects_sparse_blips_and_extends_back_over_the_stretch() -> None:
    assert hysteresis_runs(_d("1.1.1.1.1.1."), window=4, start_ratio=0.75, stop_ratio=0.75) == []
    # Triggered by the window 8..11, but the voiced stretch it belongs to starts at 2.
    assert hysteresis_runs(_d("..1111111111...."), window=4, start_ratio=1.0, stop_ratio=0.75) == [(2, 12)]


def test_hysteresis_tolerates_short_gaps_inside_a_run() -> None:
    runs = hysteresis_runs(_d("..111.111.111......"), window=5, start_ratio=0.6, stop_ratio=0.8)
    assert runs == [(2, 13)]


# ---------------------------------------------------------------------------------------------
# PCM conversion and framing


def test_pcm_conversion_is_bit_exact_for_16bit_sources(realdata: Path) -> None:
    ints, _ = sf.read(realdata / AMI, dtype="int16")
    floats, _ = load_audio(str(realdata / AMI))
    pcm = to_pcm16(floats)
    assert pcm.dtype == np.dtype("<i2")
    np.testing.assert_array_equal(pcm, ints)
    np.testing.assert_array_equal(to_pcm16(np.array([1.5, -1.5, 1.0, -1.0], dtype=np.float32)),
                                  [32767, -32768, 32767, -32768])


@pytest.mark.parametrize("rate, frame_ms", [(8000, 10), (16000, 30), (32000, 20), (48000, 30)])
def test_frames_match_raw_webrtcvad_and_the_partial_frame_is_kept(realdata: Path, rate: int, frame_ms: int) -> None:
    import webrtcvad

    samples, _ = load_audio(str(realdata / AMI), duration_s=2.005, sample_rate=rate)
    pcm = to_pcm16(samples)
    frame_len = rate * frame_ms // 1000
    assert pcm.size % frame_len != 0
    decisions = webrtc_frame_decisions(pcm, rate, frame_ms, mode=3)
    assert decisions.size == -(-pcm.size // frame_len)
    vad = webrtcvad.Vad(3)
    raw = pcm.tobytes()
    full = pcm.size // frame_len
    expected = [vad.is_speech(raw[2 * i * frame_len : 2 * (i + 1) * frame_len], rate) for i in range(full)]
    assert decisions[:full].tolist() == expected


# ---------------------------------------------------------------------------------------------
# Real recordings


def test_ami_onsets_match_the_human_segments(realdata: Path) -> None:
    result = vad_file(str(realdata / AMI))
    assert abs(result.segments[0][0] - AMI_ONSETS[0]) <= 0.05
    second = first_onset_after(result, 2.95)
    assert second is not None and abs(second - AMI_ONSETS[1]) <= 0.05
    assert result.duration_s == 6.0
    assert result.settings == VadSettings()
    assert result.info["backend"] == "webrtc" and result.info["frame_samples"] == 160


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 48000])
def test_every_webrtcvad_rate_finds_the_ami_onset(realdata: Path, rate: int) -> None:
    result = vad_file(str(realdata / AMI), VadSettings(sample_rate=rate))
    assert abs(result.segments[0][0] - AMI_ONSETS[0]) <= 0.05


@pytest.mark.parametrize(
    "rel, channel, truth, tol",
    [
        ("textgrid/ljspeech_mfa/LJ002-0035.wav", "mix", 0.0, 0.03),  # 22.05 kHz, "eight" at 0.00
        ("textgrid/praatio/bobby.wav", "mix", 0.0647, 0.06),  # 48 kHz, BOBBY at 0.0647
        ("textgrid/polyglotdb/fave_stereo.wav", 0, 0.2312, 0.05),  # 18 kHz stereo, speaker 1
        ("textgrid/polyglotdb/fave_stereo.wav", 1, 3.3324, 0.05),  # speaker 2 on the right channel
        ("textgrid/praatio/mary.wav", "mix", 0.3154, 0.03),  # 48 kHz
    ],
)
def test_any_input_rate_and_channel(realdata: Path, rel: str, channel, truth: float, tol: float) -> None:
    result = vad_file(str(realdata / rel), channel=channel)
    assert abs(result.segments[0][0] - truth) <= tol


def test_8khz_gentle_recording_finds_the_ten_sentences(realdata: Path) -> None:
    result = vad_file(str(realdata / "audio_vad/gentle_harvard/harvard-sentences-list30.wav"))
    assert result.duration_s == pytest.approx(430272 / 8000)
    # Ten Harvard sentences; webrtcvad mode 3 may split one at a long pause.
    assert 8 <= len(result.segments) <= 14
    # The first sentence starts at 1.03 s in Gentle's alignment (of the mp3; this WAV was
    # converted with sox, see the benchmark for the offset between the two decodes).
    assert 0.9 <= result.segments[0][0] <= 1.4


def test_segment_times_are_relative_to_the_segment(realdata: Path) -> None:
    whole = vad_file(str(realdata / AMI))
    part = vad_file(str(realdata / AMI), start_s=1.0, duration_s=3.0)
    assert part.segments[0][0] == pytest.approx(whole.segments[0][0] - 1.0, abs=0.011)
    assert part.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize(
    "fmt, subtype",
    [("WAV", "FLOAT"), ("WAV", "PCM_24"), ("WAV", "PCM_U8"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")],
)
def test_subtypes_give_the_same_onsets_as_the_16bit_original(
    realdata: Path, tmp_path: Path, fmt: str, subtype: str
) -> None:
    original = vad_file(str(realdata / AMI))
    ints, sr = sf.read(realdata / AMI, dtype="int16")
    path = tmp_path / f"ami.{fmt.lower()}"
    sf.write(path, ints.astype(np.float32) / 32768.0, sr, format=fmt, subtype=subtype)
    assert vad_file(str(path)).onsets == original.onsets


def test_stereo_copies_give_the_same_onsets(realdata: Path, tmp_path: Path) -> None:
    original = vad_file(str(realdata / AMI))
    ints, sr = sf.read(realdata / AMI, dtype="int16")
    both = tmp_path / "both.wav"
    sf.write(both, np.stack([ints, ints], axis=1), sr, subtype="PCM_16")
    assert vad_file(str(both)).onsets == original.onsets
    right_only = tmp_path / "right.wav"
    sf.write(right_only, np.stack([np.zeros_like(ints), ints], axis=1), sr, subtype="PCM_16")
    assert vad_file(str(right_only), channel=1).onsets == original.onsets
    assert vad_file(str(right_only), channel=0).segments == []


# ---------------------------------------------------------------------------------------------
# Bad input and settings


@pytest.mark.parametrize(
    "content",
    [b"", b"not audio at all" * 100, b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)],
    ids=["empty", "garbage", "broken-header"],
)
def test_bad_files_raise_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        vad_file(str(path))
    assert err.value.path == str(path)


def test_zero_length_wav_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    with pytest.raises(InputError, match="zero-length"):
        vad_file(str(path))


@pytest.mark.parametrize(
    "samples, match",
    [
        (np.zeros(0, dtype=np.float32), "no audio"),
        (np.array([0.0, np.nan, 0.0], dtype=np.float32), "NaN"),
        (np.zeros((2, 160), dtype=np.float32), "mono"),
    ],
)
def test_bad_arrays_raise_input_error(samples: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        vad_audio(samples, 16000)


def test_int16_arrays_are_scaled_and_bad_arguments_are_usage_errors(realdata: Path) -> None:
    ints, sr = sf.read(realdata / AMI, dtype="int16")
    assert vad_audio(ints, sr).segments == vad_file(str(realdata / AMI)).segments
    with pytest.raises(UsageError, match="sample_rate"):
        vad_audio(ints, 0)
    with pytest.raises(UsageError, match="dtype"):
        vad_audio(ints.astype(np.int32), sr)


def test_audio_shorter_than_a_frame_is_classified() -> None:
    result = vad_audio(np.zeros(50, dtype=np.float32), 16000)
    assert result.frame_decisions.size == 1 and result.segments == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": 4},
        {"mode": -1},
        {"mode": 2.0},
        {"frame_ms": 25},
        {"sample_rate": 22050},
        {"sample_rate": 44100},
        {"backend": "silero", "sample_rate": 48000},
        {"backend": "pyannote"},
        {"window_ms": 0},
        {"window_ms": 305},
        {"frame_ms": 20, "window_ms": 310},
        {"start_ratio": 0.0},
        {"stop_ratio": 1.5},
        {"min_speech_ms": -1},
        {"min_silence_ms": float("inf")},
        {"threshold": 1.0},
        {"neg_threshold": 0.9},
        {"mode": True},
    ],
)
def test_invalid_settings_raise_usage_error(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        VadSettings(**kwargs)


def test_settings_round_trip_and_window_frames() -> None:
    settings = VadSettings(frame_ms=20, window_ms=200)
    assert settings.window_frames == 10
    assert VadSettings(**settings.to_dict()) == settings


# ---------------------------------------------------------------------------------------------
# Onset queries and frame targets


def _result(segments: list[tuple[float, float]], duration: float = 5.0) -> VadResult:
    frames = np.zeros(int(duration * 100), dtype=bool)
    for on, off in segments:
        frames[round(on * 100) : round(off * 100)] = True
    return VadResult(segments, frames, 10.0, VadSettings(), duration_s=duration)


def test_first_onset_after_and_onsets_within() -> None:
    result = _result([(0.5, 1.0), (1.5, 2.5), (3.0, 4.0)])
    assert first_onset_after(result, 0.0) == 0.5
    assert first_onset_after(result, 1.5) == 1.5
    assert first_onset_after(result, 1.5, inclusive=False) == 3.0
    assert first_onset_after(result, 2.0) == 3.0  # speech going on at 2.0 is not an onset
    assert first_onset_after(result, 3.5) is None
    assert onsets_within(result, 1.0, 3.0) == [1.5]
    assert onsets_within(result, 0.0, 5.0) == [0.5, 1.5, 3.0]
    assert onsets_within(result, 4.0, 5.0) == []


def test_speech_targets_follow_the_frame_centres() -> None:
    grid = FrameGrid()
    result = _result([(1.0, 2.0)])
    n = grid.num_frames(80000)
    targets = speech_targets(result, grid.frame_centre_time(np.arange(n)))
    assert targets.dtype == np.int16 and targets.shape == (n,)
    centres = grid.frame_centre_time(np.arange(n))
    np.testing.assert_array_equal(targets, ((centres >= 1.0) & (centres < 2.0)).astype(np.int16))
    assert speech_targets(result, grid.frame_centre_time(np.arange(0))).shape == (0,)


def test_speech_targets_with_subsampling_and_raw_decisions(realdata: Path) -> None:
    result = vad_file(str(realdata / AMI))
    grid = FrameGrid(subsampling=4)
    n = grid.num_frames(96000)
    centres = grid.frame_centre_time(np.arange(n))
    smoothed = speech_targets(result, centres)
    raw = speech_targets(result, centres, smoothed=False)
    assert smoothed.shape == raw.shape == (n,)
    first = int(np.argmax(smoothed))
    assert grid.frame_centre_time(first) >= result.segments[0][0] > grid.frame_centre_time(first - 1)
    assert set(np.unique(raw)) <= {0, 1}


# ---------------------------------------------------------------------------------------------
# Silero (optional)


def test_silero_missing_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import anchorprep.sources.vad as vad

    monkeypatch.setitem(sys.modules, "silero_vad", None)  # makes `import silero_vad` fail
    monkeypatch.setattr(vad, "_SILERO_MODEL", None)
    with pytest.raises(UsageError, match=r"pip install 'anchorprep\[silero\]'"):
        vad_audio(np.zeros(16000, dtype=np.float32), 16000, VadSettings(backend="silero"))


@pytest.fixture(scope="module")
def silero() -> None:
    pytest.importorskip("silero_vad", reason="silero-vad not installed (pip install 'anchorprep[silero]')")


def test_silero_ami_onsets(silero: None, realdata: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    result = vad_file(str(realdata / AMI), VadSettings(backend="silero"))
    assert torch.get_num_threads() == threads  # silero_vad's import sets 1 thread; undone
    assert abs(result.segments[0][0] - AMI_ONSETS[0]) <= 0.05
    assert abs(first_onset_after(result, 2.95) - AMI_ONSETS[1]) <= 0.05
    assert result.frame_ms == 32.0 and result.info["speech_pad_ms"] == 0
    assert result.frame_scores is not None and result.frame_scores.size == result.frame_decisions.size


def test_silero_placed_onset_without_padding(silero: None, snippet: np.ndarray) -> None:
    placed = 1.216  # 38 Silero windows of 32 ms
    audio = place(snippet, placed)
    result = vad_audio(audio, 16000, VadSettings(backend="silero"))
    onset = result.segments[0][0]
    assert abs(onset - placed) <= 0.032 + 1e-9
    assert onset * 16000 % 512 == 0  # the start of a Silero window, not 30 ms of padding before it
    big = vad_audio(audio, 16000, VadSettings(backend="silero", min_speech_ms=1500))
    assert big.segments[0][0] == onset


def test_silero_at_8khz(silero: None, realdata: Path) -> None:
    result = vad_file(str(realdata / AMI), VadSettings(backend="silero", sample_rate=8000))
    assert abs(first_onset_after(result, 1.0) - AMI_ONSETS[0]) <= 0.05


# ---------------------------------------------------------------------------------------------
# Properties of the smoothing on arbitrary decisions


@hsettings(max_examples=300, deadline=None)
@given(
    decisions=st.lists(st.booleans(), min_size=0, max_size=200),
    window=st.integers(1, 12),
    start_ratio=st.floats(0.05, 1.0),
    stop_ratio=st.floats(0.05, 1.0),
)
def test_hysteresis_runs_start_and_end_on_voiced_frames(decisions, window, start_ratio, stop_ratio) -> None:
    v = np.array(decisions, dtype=bool)
    runs = hysteresis_runs(v, window, start_ratio, stop_ratio)
    previous_end = 0
    for start, end in runs:
        assert previous_end <= start < end <= v.size
        assert v[start] and v[end - 1]  # first and last voiced frame of the run
        previous_end = end
    if v.any() and start_ratio * window <= 1:
        # One voiced frame is enough to start: the first run starts at the first voiced frame.
        assert runs[0][0] == int(np.argmax(v))


# ---------------------------------------------------------------------------------------------
# Block processing: the same results as main's whole-file implementation


GOLDEN = json.loads((Path(__file__).parent / "vad_golden.json").read_text())


def _golden_id(case: dict) -> str:
    extra = "".join(f"-{k}={case[k]}" for k in ("frame_ms", "start_s", "duration_s") if k in case)
    return f"{case['key']}-{case['backend']}-{case['sample_rate']}-{case['channel']}{extra}"


@pytest.fixture(scope="module")
def golden_paths(realdata: Path) -> dict[str, Path]:
    return dict(vad_golden.audio_files(realdata))


@pytest.mark.parametrize("block_frames", [DEFAULT_BLOCK_FRAMES, 3001])
@pytest.mark.parametrize("case", GOLDEN, ids=_golden_id)
def test_same_results_as_main_on_every_real_recording(
    golden_paths: dict[str, Path], case: dict, block_frames: int, request: pytest.FixtureRequest
) -> None:
    """Segments, raw frame decisions and Silero's scores equal those main's whole-file code wrote
    to vad_golden.json, with the default blocks (one block for most recordings) and with blocks
    of 3001 samples (frames and Silero windows straddle every block boundary)."""
    if case["backend"] == "silero":
        request.getfixturevalue("silero")
    got = vad_golden.compute(golden_paths[case["key"]], case, block_frames)
    assert got == {k: case[k] for k in got}


@pytest.fixture(scope="module")
def long_speech(realdata: Path) -> np.ndarray:
    """34 s of real 16 kHz speech (acoustic_corpus, then AMI's headset clip)."""
    parts = [load_audio(str(realdata / rel))[0] for rel in ("textgrid/mfa_tests/acoustic_corpus.wav", AMI)]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def multichannel_files(long_speech: np.ndarray, tmp_path_factory) -> dict:
    """12 s of speech, the same reversed at half level, and low noise, as three channels at four
    rates (16-bit; float at 16 kHz); lengths are not whole frames."""
    folder = tmp_path_factory.mktemp("multichannel")
    long_speech = long_speech[: 12 * 16000]
    noise = np.random.default_rng(3).standard_normal(long_speech.size).astype(np.float32) * 0.003
    channels = [long_speech, long_speech[::-1] * 0.5, noise]
    files = {}
    for rate in (8000, 16000, 44100, 48000):
        data = np.stack([resample(np.ascontiguousarray(c), 16000, rate) for c in channels], axis=1)[:-7]
        files[rate, "PCM_16"] = folder / f"three_{rate}.wav"
        sf.write(files[rate, "PCM_16"], data, rate, subtype="PCM_16")
    files[16000, "FLOAT"] = folder / "three_16000_float.wav"
    sf.write(files[16000, "FLOAT"], np.stack(channels, axis=1)[:-3], 16000, subtype="FLOAT")
    return files


@pytest.mark.parametrize("file", [(8000, "PCM_16"), (16000, "PCM_16"), (16000, "FLOAT"), (44100, "PCM_16"),
                                  (48000, "PCM_16")], ids=str)
@pytest.mark.parametrize("vad_rate, frame_ms", [(16000, 10), (8000, 30), (48000, 20)])
def test_multichannel_resampled_segments_equal_the_whole_file_results(
    multichannel_files: dict, file: tuple, vad_rate: int, frame_ms: int
) -> None:
    path = str(multichannel_files[file])
    settings = VadSettings(sample_rate=vad_rate, frame_ms=frame_ms, window_ms=10 * frame_ms)
    found = 0
    for channel, (start_s, duration_s), block_frames in zip(
        ("mix", 0, 2, "mix", 1, 0),
        [(0.0, None), (1.2345, 8.0), (0.0, None), (5.87, None), (0.5, 0.731), (9.5, None)],
        [DEFAULT_BLOCK_FRAMES, 4099, 997, 160, 1 << 15, 331],
    ):
        segments, decisions, duration = vad_reference.vad_file(path, settings, start_s, duration_s, channel)
        result = vad_file(path, settings, start_s, duration_s, channel, block_frames=block_frames)
        assert result.segments == segments
        np.testing.assert_array_equal(result.frame_decisions, decisions)
        assert result.duration_s == duration
        found += len(segments)
    assert found >= 6  # the comparisons are about speech, not about empty results


@pytest.mark.parametrize("n", [1, 100, 159, 160, 161, 479, 480, 481, 4801])
@pytest.mark.parametrize("rate", [16000, 48000, 8000])
def test_very_short_files_equal_the_whole_file_results(tmp_path: Path, long_speech: np.ndarray, n: int,
                                                       rate: int) -> None:
    path = str(tmp_path / "short.wav")
    sf.write(path, resample(long_speech, 16000, rate)[rate : rate + n], rate, subtype="PCM_16")
    for settings in (VadSettings(), VadSettings(frame_ms=30, window_ms=30, min_speech_ms=0, start_ratio=0.1)):
        if vad_reference.whole_segment(path, sample_rate=settings.sample_rate).size == 0:
            with pytest.raises(InputError, match="too short to resample"):
                vad_file(path, settings)
            continue
        segments, decisions, duration = vad_reference.vad_file(path, settings)
        for block_frames in (1, 7, DEFAULT_BLOCK_FRAMES):
            result = vad_file(path, settings, block_frames=block_frames)
            assert (result.segments, result.duration_s) == (segments, duration)
            np.testing.assert_array_equal(result.frame_decisions, decisions)


def _speech_like(draw_runs: list[tuple[bool, int]]) -> np.ndarray:
    return np.concatenate([np.full(length, voiced) for voiced, length in draw_runs] or [np.zeros(0, bool)])


@hsettings(max_examples=400, deadline=None)
@given(
    runs=st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=30),
    noise=st.lists(st.integers(0, 1199), max_size=40),
    window=st.integers(1, 35),
    start_ratio=st.floats(0.05, 1.0),
    stop_ratio=st.floats(0.05, 1.0),
    cuts=st.lists(st.integers(0, 1200), max_size=12),
)
def test_streaming_smoother_equals_the_per_frame_loop_for_any_blocks(runs, noise, window, start_ratio, stop_ratio,
                                                                     cuts) -> None:
    v = _speech_like(runs)
    flips = [i for i in noise if i < v.size]
    v[flips] = ~v[flips]
    smoother = HysteresisSmoother(window, start_ratio, stop_ratio)
    bounds = sorted({c for c in cuts if c <= v.size})
    for a, b in zip([0, *bounds], [*bounds, v.size]):
        smoother.feed(v[a:b])
    assert smoother.finish() == vad_reference.hysteresis_with_triggers(v, window, start_ratio, stop_ratio)


def _write_tiled(path: Path, speech: np.ndarray, minutes: int) -> None:
    pcm = (speech * 32768).astype(np.int16)
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as f:
        left = minutes * 60 * 16000
        while left:
            f.write(pcm[: min(left, pcm.size)])
            left -= min(left, pcm.size)


def test_memory_does_not_grow_with_the_length_of_the_audio(tmp_path: Path, long_speech: np.ndarray) -> None:
    """Peak traced allocation of `vad_file` on 10 and 60 minutes of real speech: the same block
    buffers, plus one byte per 10 ms frame (300 KB more for the longer file) and the segments.
    Reading the whole file (main) allocated ~8 bytes per sample: 460 MB more."""
    peaks = {}
    for minutes in (10, 60):
        path = tmp_path / f"{minutes}.wav"
        _write_tiled(path, long_speech, minutes)
        tracemalloc.start()
        try:
            result = vad_file(str(path))
            peaks[minutes] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.duration_s == minutes * 60 and len(result.segments) > minutes * 10
        path.unlink()
    assert peaks[10] < 4e6, peaks
    assert peaks[60] - peaks[10] < 1e6, peaks
