"""Frame counts and anchor frames against a real Kaldi-compatible front end (kaldi-native-fbank)."""

import kaldi_native_fbank as knf
import numpy as np
import pytest

from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid


def fbank_rows(num_samples: int, grid: FrameGrid) -> int:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = grid.sample_rate
    opts.frame_opts.frame_shift_ms = grid.frame_shift_ms
    opts.frame_opts.frame_length_ms = grid.frame_length_ms
    opts.frame_opts.snip_edges = grid.snip_edges
    opts.frame_opts.dither = 0.0
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(grid.sample_rate, np.random.default_rng(0).standard_normal(num_samples).astype(np.float32) * 0.1)
    fbank.input_finished()
    return fbank.num_frames_ready


# Around every boundary that matters: N < L, N = L, L + k*S +- 1, and long inputs.
LENGTHS = [0, 1, 79, 80, 81, 159, 160, 161, 399, 400, 401, 559, 560, 561, 719, 720, 721,
           1000, 4000, 15999, 16000, 16001, 16239, 16240, 16241, 48000, 160000 + 7]


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("subsampling", [1, 2, 4])
def test_num_frames_matches_kaldi_native_fbank(snip_edges, subsampling):
    grid = FrameGrid(snip_edges=snip_edges, subsampling=subsampling)
    for n in LENGTHS:
        assert grid.num_feature_frames(n) == fbank_rows(n, grid), n
        assert grid.num_frames(n) == fbank_rows(n, grid) // subsampling, n


@pytest.mark.parametrize("sample_rate,shift,length", [(8000, 10, 25), (22050, 10, 20), (48000, 12.5, 50), (16000, 20, 32)])
def test_num_frames_other_rates_and_shifts(sample_rate, shift, length):
    for snip in (True, False):
        grid = FrameGrid(sample_rate, shift, length, snip)
        for n in (grid.length - 1, grid.length, grid.length + grid.shift - 1, grid.length + grid.shift, 3 * sample_rate + 1):
            assert grid.num_feature_frames(n) == fbank_rows(n, grid), (snip, n)


def test_causal_rule_is_first_frame_that_has_heard_the_event():
    grid = FrameGrid()  # frame t ends at (t*160 + 400) samples
    frames, after, before = grid.time_to_frame([0.0, 0.025, 0.0250625, 0.035, 1.09], num_frames=500)
    # 0.025 s is exactly the end of frame 0; one sample later needs frame 1.
    assert frames.tolist() == [0, 0, 1, 1, 107]
    assert (after, before) == (0, 0)
    # Decimal times that are not exact in binary still land on the boundary frame.
    assert grid.frame_end_time(107) >= 1.09 > grid.frame_end_time(106)


def test_causal_rule_with_subsampling_uses_last_feature_frame_end():
    grid = FrameGrid(subsampling=4)  # model frame j ends where feature frame 4j+3 ends
    assert grid.frame_end_time(0) == pytest.approx((3 * 160 + 400) / 16000)
    frames, _, _ = grid.time_to_frame([0.055, 0.0551, 0.095], 100)
    assert frames.tolist() == [0, 1, 1]


def test_nearest_rule_and_ties_go_to_the_earlier_frame():
    grid = FrameGrid()  # centres at 12.5 ms + 10 ms * t
    frames, _, _ = grid.time_to_frame([0.0125, 0.0175, 0.0176, 0.0224], 100, rule="nearest")
    assert frames.tolist() == [0, 0, 1, 1]


def test_clipping_is_counted():
    grid = FrameGrid()
    frames, after, before = grid.time_to_frame([-0.5, 0.5, 99.0], 10)
    assert frames.tolist() == [0, 9, 9]
    assert (after, before) == (2, 1)


def test_no_snip_edges_frame_ends_follow_kaldi_centring():
    grid = FrameGrid(snip_edges=False)
    # Kaldi: first sample of frame t = t*S + S/2 - L/2 = t*160 - 120, so frame 0 ends at sample 280.
    assert grid.frame_end_samples(0) == 280
    assert grid.frame_end_samples(3) == 3 * 160 + 280


def test_resampled_length_matches_soxr():
    import soxr

    grid = FrameGrid()
    for n, rate in [(35229, 22050), (33949, 22050), (57173, 48000), (100, 8000), (1, 44100), (64001, 18000)]:
        assert grid.resampled_length(n, rate) == len(soxr.resample(np.zeros(n, np.float32), rate, 16000))


@pytest.mark.parametrize("kwargs", [dict(sample_rate=0), dict(subsampling=0), dict(frame_shift_ms=0.01)])
def test_invalid_grids_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        FrameGrid(**kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(frame_shift_ms=float("nan")), dict(frame_shift_ms=float("inf")), dict(frame_shift_ms=-10.0),
    dict(frame_length_ms=float("nan")), dict(frame_length_ms=1e30), dict(sample_rate=2**31),
    dict(sample_rate=-16000), dict(sample_rate=float("nan")),
])
def test_non_finite_and_out_of_range_grids_are_one_line_usage_errors(kwargs):
    """nan/inf reached int() (ValueError/OverflowError traceback); 2**31 Hz overflowed the int32 column."""
    with pytest.raises(UsageError, match=f"`{next(iter(kwargs))}`"):
        FrameGrid(**kwargs)


@pytest.mark.parametrize("option,value", [("--frame-shift-ms", "nan"), ("--frame-length-ms", "inf"),
                                          ("--sample-rate", "2147483648"), ("--sample-rate", "0")])
def test_cli_refuses_unusable_grid_options_with_exit_2(tmp_path, option, value):
    from typer.testing import CliRunner

    from anchorprep.cli import app

    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,alignment_path,duration_s\nu,x.TextGrid,1\n")
    result = CliRunner().invoke(app, ["align", str(manifest), "-k", "hey", "-o", str(tmp_path / "out"), option, value])
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
