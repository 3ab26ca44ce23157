"""load_audio / audio_info / read_blocks on real files and on files written here in every subtype."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from vad_reference import whole_segment  # main's whole-segment read, the reference

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.audio import (
    audio_info,
    audio_segment,
    load_audio,
    open_audio,
    read_blocks,
    resample,
    to_pcm16,
)

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


# ---------------------------------------------------------------------------------------------
# Block reading: the same samples as one whole-segment read


@pytest.fixture(scope="module")
def three_channel_files(realdata: Path, ami_int16: np.ndarray, tmp_path_factory) -> dict:
    """AMI speech, its reverse at half level and low noise as three channels, at four rates, in
    16-bit PCM and float; one odd-length mono 16-bit file per rate."""
    folder = tmp_path_factory.mktemp("blocks")
    speech = ami_int16.astype(np.float32) / 32768.0
    noise = np.random.default_rng(5).standard_normal(speech.size).astype(np.float32) * 0.01
    stereo = np.stack([speech, speech[::-1] * 0.5, noise], axis=1)
    files = {}
    for rate in (8000, 16000, 44100, 48000):
        channels = np.stack([resample(np.ascontiguousarray(stereo[:, c]), 16000, rate) for c in range(3)], axis=1)
        for subtype in ("PCM_16", "FLOAT"):
            path = folder / f"three_{rate}_{subtype}.wav"
            sf.write(path, channels, rate, subtype=subtype)
            files[rate, subtype] = path
        path = folder / f"mono_{rate}.wav"
        sf.write(path, channels[:-7, 0], rate, subtype="PCM_16")  # an odd length
        files[rate, "mono"] = path
    return files


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("kind", ["PCM_16", "FLOAT", "mono"])
@pytest.mark.parametrize("target", [None, 8000, 16000, 48000])
def test_blocks_concatenate_to_the_whole_segment_read(three_channel_files: dict, rate: int, kind: str,
                                                       target: int | None) -> None:
    path = str(three_channel_files[rate, kind])
    channels = ("mix", 0) if kind == "mono" else ("mix", 0, 2)
    for channel, (start_s, duration_s), block_frames in zip(
        channels * 2, [(0.0, None), (0.3137, 2.5), (1.0, None), (0.0, 0.75), (2.2, 3.3), (0.01, None)],
        [997, 4099, 1 << 17, 160, 12345, 1 << 17],
    ):
        reference = whole_segment(path, start_s, duration_s, target, channel)
        segment = audio_segment(path, start_s, duration_s, target, channel)
        blocks = list(read_blocks(segment, block_frames))
        assert all(b.dtype == np.float32 and b.ndim == 1 and b.size > 0 for b in blocks)
        if target in (None, rate):
            assert all(b.size <= block_frames for b in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), reference)
        pcm = list(read_blocks(segment, block_frames, pcm16=True))
        assert all(b.dtype == np.int16 for b in pcm)
        np.testing.assert_array_equal(np.concatenate(pcm), to_pcm16(reference))
        whole, sr = load_audio(path, start_s, duration_s, target, channel)
        assert sr == (target or rate)
        np.testing.assert_array_equal(whole, reference)


def test_soxr_stream_gives_the_one_shot_samples_for_any_chunking(ami_int16: np.ndarray) -> None:
    x = np.tile(ami_int16.astype(np.float32) / 32768.0, 3)
    for a, b in ((16000, 48000), (16000, 8000), (44100, 16000), (48000, 16000), (8000, 16000), (22050, 16000)):
        for chunk, size in ((1, 20000), (511, x.size), (65536, x.size)):  # one at a time is slow: 20k
            stream = soxr.ResampleStream(a, b, 1, dtype="float32", quality="HQ")
            parts = [stream.resample_chunk(x[i : min(i + chunk, size)], last=False) for i in range(0, size, chunk)]
            parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
            np.testing.assert_array_equal(np.concatenate(parts), soxr.resample(x[:size], a, b, quality="HQ"))


@pytest.mark.parametrize("n", [1, 2, 7, 160, 161, 479, 4800])
@pytest.mark.parametrize("rate, target", [(16000, None), (48000, 8000), (8000, 48000), (44100, 16000)])
def test_very_short_files_read_like_the_whole_file(tmp_path: Path, n: int, rate: int, target: int | None) -> None:
    path = str(tmp_path / "short.wav")
    sf.write(path, np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32), rate, subtype="PCM_16")
    reference = whole_segment(path, sample_rate=target)
    if reference.size == 0:
        with pytest.raises(InputError, match="too short to resample"):
            load_audio(path, sample_rate=target)
        return
    for block_frames in (1, 3, 1 << 17):
        blocks = list(read_blocks(audio_segment(path, sample_rate=target), block_frames))
        np.testing.assert_array_equal(np.concatenate(blocks), reference)


def test_pcm16_blocks_of_a_16bit_file_are_its_integers(realdata: Path, ami_int16: np.ndarray) -> None:
    segment = audio_segment(str(realdata / AMI))
    blocks = list(read_blocks(segment, 10000, pcm16=True))
    assert [b.size for b in blocks] == [10000] * 9 + [6000]
    np.testing.assert_array_equal(np.concatenate(blocks), ami_int16)
    fave = list(read_blocks(audio_segment(str(realdata / FAVE), channel=1), 50000, pcm16=True))
    np.testing.assert_array_equal(np.concatenate(fave), sf.read(realdata / FAVE, dtype="int16")[0][:, 1])


def test_block_reading_errors(realdata: Path, tmp_path: Path) -> None:
    segment = audio_segment(str(realdata / AMI))
    for bad in (0, -5, 1.5, True):
        with pytest.raises(UsageError, match="`block_frames`"):
            next(read_blocks(segment, bad))
    path = tmp_path / "nan.wav"
    audio = np.zeros(50000, dtype=np.float32)
    audio[45000] = np.nan
    sf.write(path, audio, 16000, subtype="FLOAT")
    blocks = read_blocks(audio_segment(str(path)), 20000)
    assert next(blocks).size == 20000 and next(blocks).size == 20000  # read as far as the bad block
    with pytest.raises(InputError, match="NaN") as caught:
        next(blocks)
    assert caught.value.path == str(path)


def test_open_audio_is_the_one_place_files_are_opened(realdata: Path, tmp_path: Path, monkeypatch) -> None:
    with open_audio(str(realdata / FAVE)) as f:
        assert (f.samplerate, f.channels, f.subtype) == (18000, 2, "PCM_16")
    with pytest.raises(InputError, match="not found"):
        open_audio(str(tmp_path / "missing.wav"))
    opened = []
    import anchorprep.sources.audio as audio

    def spy(path):
        opened.append(path)
        return sf.SoundFile(str(path))

    monkeypatch.setattr(audio, "open_audio", spy)
    load_audio(str(realdata / AMI), start_s=1.0)
    from anchorprep.sources.vad import vad_file

    vad_file(str(realdata / AMI))
    assert opened == [str(realdata / AMI)] * 4  # header, then samples, for each call
