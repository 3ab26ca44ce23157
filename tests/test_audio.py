"""load_audio / audio_info on real files and on files written here in every subtype."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.audio import audio_info, load_audio

AMI = "audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav"
FAVE = "textgrid/polyglotdb/fave_stereo.wav"
BOBBY = "textgrid/praatio/bobby.wav"


@pytest.fixture(scope="module")
def ami_int16(realdata: Path) -> np.ndarray:
    data, sr = sf.read(realdata / AMI, dtype="int16")
    assert sr == 16000
    return data


def test_audio_info_reads_header(realdata: Path) -> None:
    info = audio_info(str(realdata / FAVE))
    assert (info.sample_rate, info.channels, info.num_samples) == (18000, 2, 128700)
    assert info.duration_s == pytest.approx(7.15)


def test_full_16bit_file_is_bit_exact(realdata: Path, ami_int16: np.ndarray) -> None:
    samples, sr = load_audio(str(realdata / AMI))
    assert sr == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert samples.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(samples * 32768.0, ami_int16.astype(np.float32))


def test_segment_reads_only_the_requested_samples(realdata: Path, ami_int16: np.ndarray) -> None:
    samples, _ = load_audio(str(realdata / AMI), start_s=1.46, duration_s=1.36)
    first, count = round(1.46 * 16000), round(1.36 * 16000)
    np.testing.assert_array_equal(samples * 32768.0, ami_int16[first : first + count].astype(np.float32))
    tail, _ = load_audio(str(realdata / AMI), start_s=5.5)
    assert tail.size == 8000


def test_segment_overrun_within_tolerance_is_cut_at_the_end(realdata: Path) -> None:
    samples, _ = load_audio(str(realdata / AMI), start_s=5.0, duration_s=1.02)
    assert samples.size == 16000


@pytest.mark.parametrize(
    "start_s, duration_s, match",
    [
        (6.0, None, "at or after the end"),
        (7.5, 1.0, "at or after the end"),
        (5.0, 1.5, "past the end"),
        (-0.5, 1.0, "negative"),
        (float("nan"), 1.0, "negative or not a number"),
        (1.0, 0.0, "not positive"),
        (1.0, -1.0, "not positive"),
    ],
)
def test_segment_outside_the_file_is_an_input_error(realdata: Path, start_s, duration_s, match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        load_audio(str(realdata / AMI), start_s=start_s, duration_s=duration_s)
    assert err.value.path == str(realdata / AMI)


def test_channel_select_and_mix(realdata: Path) -> None:
    raw, _ = sf.read(realdata / FAVE, dtype="float32")
    left, sr = load_audio(str(realdata / FAVE), channel=0)
    right, _ = load_audio(str(realdata / FAVE), channel=1)
    mix, _ = load_audio(str(realdata / FAVE))
    assert sr == 18000
    np.testing.assert_array_equal(left, raw[:, 0])
    np.testing.assert_array_equal(right, raw[:, 1])
    np.testing.assert_allclose(mix, raw.mean(axis=1), atol=1e-7)
    mono, _ = load_audio(str(realdata / AMI), channel=0)
    assert mono.size == 96000


def test_channel_out_of_range_is_an_input_error(realdata: Path) -> None:
    with pytest.raises(InputError, match="channel 2 requested but the file has 2"):
        load_audio(str(realdata / FAVE), channel=2)
    with pytest.raises(InputError, match="has 1 channel"):
        load_audio(str(realdata / AMI), channel=1)


@pytest.mark.parametrize("channel", [-1, "left", 1.0, True])
def test_impossible_channel_is_a_usage_error(realdata: Path, channel) -> None:
    with pytest.raises(UsageError):
        load_audio(str(realdata / AMI), channel=channel)


@pytest.mark.parametrize("rate", [0, -16000, 16000.0])
def test_impossible_target_rate_is_a_usage_error(realdata: Path, rate) -> None:
    with pytest.raises(UsageError):
        load_audio(str(realdata / AMI), sample_rate=rate)


def test_resampling_with_soxr(realdata: Path) -> None:
    native, sr = load_audio(str(realdata / BOBBY))
    assert sr == 48000 and native.size == 57342
    down, sr16 = load_audio(str(realdata / BOBBY), sample_rate=16000)
    assert sr16 == 16000 and down.dtype == np.float32
    assert abs(down.size - 57342 / 3) <= 1
    # Same loudness after resampling (speech energy sits well below 8 kHz).
    assert np.sqrt(np.mean(down**2)) == pytest.approx(np.sqrt(np.mean(native**2)), rel=0.05)
    same, _ = load_audio(str(realdata / AMI), sample_rate=16000)
    assert same.size == 96000


@pytest.mark.parametrize(
    "fmt, subtype, atol",
    [
        ("WAV", "FLOAT", 0.0),
        ("WAV", "DOUBLE", 0.0),
        ("WAV", "PCM_24", 0.0),
        ("WAV", "PCM_32", 0.0),
        ("WAV", "PCM_U8", 1 / 128),
        ("FLAC", "PCM_16", 0.0),
        ("FLAC", "PCM_24", 0.0),
        ("FLAC", "PCM_S8", 1 / 128),
        ("OGG", "VORBIS", None),
    ],
)
def test_every_subtype_decodes_to_the_same_samples(
    realdata: Path, ami_int16: np.ndarray, tmp_path: Path, fmt: str, subtype: str, atol: float | None
) -> None:
    reference = ami_int16.astype(np.float32) / 32768.0
    path = tmp_path / f"ami_{subtype}.{fmt.lower()}"
    sf.write(path, reference, 16000, format=fmt, subtype=subtype)
    samples, sr = load_audio(str(path))
    assert sr == 16000 and samples.dtype == np.float32
    if atol is None:  # lossy: same length, and the waveform correlates
        assert samples.size == reference.size
        assert np.corrcoef(samples, reference)[0, 1] > 0.95
    else:
        np.testing.assert_allclose(samples, reference, atol=atol, rtol=0)


def test_mp3_decodes_when_libsndfile_supports_it(realdata: Path) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support (needs libsndfile >= 1.1)")
    samples, sr = load_audio(str(realdata / "audio_vad/gentle_harvard/harvard-sentences-list30.mp3"))
    assert sr == 8000 and samples.size > 50 * 8000


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _zero_length(path: Path) -> None:
    sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")


def _header_only(path: Path) -> None:
    sf.write(path, np.zeros(1000, dtype=np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:44])


def _broken_fmt_chunk(path: Path) -> None:
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(100)))


def _nan_samples(path: Path) -> None:
    data = np.zeros(1600, dtype=np.float32)
    data[800] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")


@pytest.mark.parametrize(
    "make, match",
    [
        (_garbage, "cannot read audio header"),
        (_empty, "cannot read audio header"),
        (_zero_length, "zero-length"),
        (_header_only, "zero-length"),
        (_broken_fmt_chunk, "cannot read audio header"),
        (_nan_samples, "NaN"),
    ],
)
def test_bad_files_raise_input_error(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=match) as err:
        load_audio(str(path))
    assert err.value.path == str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_audio(str(tmp_path / "nope.wav"))
    with pytest.raises(InputError, match="directory"):
        load_audio(str(tmp_path))
    with pytest.raises(InputError, match="not found"):
        audio_info(os.fspath(tmp_path / "nope.flac"))


def test_truncated_file_reads_what_is_there_but_rejects_a_segment_past_it(tmp_path: Path) -> None:
    path = tmp_path / "trunc.wav"
    sf.write(path, np.full(16000, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + 2000])  # 1000 of 16000 samples survive
    samples, _ = load_audio(str(path))
    assert samples.size == 1000
    with pytest.raises(InputError, match="past the end"):
        load_audio(str(path), start_s=0.0, duration_s=0.5)
