"""`anchorprep plot`: one utterance, drawn so you can see whether the labels sit where the speech is.

Panels, on one time axis (seconds from the start of the utterance segment):

* waveform and spectrogram of the audio segment (``audio_path``, ``start_s``, ``duration_s``); the
  spectrogram uses the run's own framing (frame length and shift at the audio's rate);
* the alignment's word tier, with the keyword occurrences highlighted (``alignment=``: the
  shards do not store alignment paths);
* the VAD's raw frame decisions and smoothed speech segments, recomputed from the audio with the
  run's VAD settings (runs with a ``vad`` block);
* the filtered accelerometer signal and its peaks (``accel=``: the shards do not store sensor
  paths), with the run's detection settings and clock offset;
* the stored distance ``d_t`` with the targets shaded, and the SAL weight ``w_t = 1 + λ·K(d_t)``
  for the chosen kernel (`anchorprep.loss.anchor_weights`).

Anchors are vertical lines at their event times, coloured by source; dotted when the distance
does not use them (multi-source runs). Per-frame values are drawn at each frame's *end time*, the
moment a streaming model has heard the frame, so the causal anchor rule shows as ``d = 0`` at the
first frame step at or after the anchor line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anchorprep.anchors import IGNORE_INDEX, NO_ANCHOR, source_kind
from anchorprep.errors import AnchorprepError, UsageError
from anchorprep.inspect.runs import find_row, used_mask
from anchorprep.shards.run import RunSettings, open_run
from anchorprep.storage import location, local_output

PLOT_INSTALL_HINT = "pip install 'anchorprep[plot]'  (or: pip install 'matplotlib>=3.7')"
SOURCE_COLOURS = {"alignment": "#d62728", "vad": "#2ca02c", "accel": "#9467bd", "manual": "#ff7f0e"}
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
DEFAULT_SIZE_PX = (1400, 1000)


def _matplotlib():
    """matplotlib's object-oriented API (no pyplot, no global backend change), or a clean error."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(f"plotting needs matplotlib, which is not installed: {PLOT_INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg


@dataclass
class PlotResult:
    """What `plot_utterance` drew: the file, its size in pixels, the panels, and notes."""

    path: Path
    size_px: tuple[int, int]
    panels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _frame_steps(values: np.ndarray, ends: np.ndarray, step: float):
    """x, y for drawing per-frame values as steps: frame t covers (end(t) - step, end(t)]."""
    x = np.concatenate([[ends[0] - step], ends])
    y = np.concatenate([values[:1], values])
    return x, y


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] index pairs of the True runs of ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _load_alignment(path: Path, settings: dict, utt_id: str, start_s: float):
    """The word tier of ``path`` for this utterance, its time offset, and the align options."""
    from anchorprep.sources.alignments.formats import utterance_alignment
    from anchorprep.sources.alignments.keywords import select_word_tier, select_word_tiers
    from anchorprep.sources.alignments.model import Tier

    align = settings.get("align", {}) if settings.get("command") == "align" else {}
    alignment, utterance_relative = utterance_alignment(
        path, utt_id, align.get("alignment_format", "auto"), encoding=align.get("encoding", "utf-8"),
        level=align.get("level", "words"), segments=align.get("segments"), lhotse_unit=align.get("lhotse_unit", "auto"))
    if align.get("speaker") in ("all", "column"):  # anchors from several speakers: draw all their words
        chosen = select_word_tiers(alignment, tier=align.get("tier"), speaker="all", level=align.get("level", "words"))
        intervals = sorted((iv for c in chosen for iv in c.tier.intervals), key=lambda iv: (iv.start, iv.end))
        tier = Tier(" + ".join(c.tier.name for c in chosen), tuple(intervals))
    else:
        tier = select_word_tier(alignment, tier=align.get("tier"), speaker=align.get("speaker"),
                                level=align.get("level", "words"))
    return tier, 0.0 if utterance_relative else start_s, align


def plot_utterance(
    out: Path,
    utt_id: str,
    path: Path,
    *,
    kernel: str | None = None,
    width: float | None = None,
    width_before: float | None = None,
    width_after: float | None = None,
    gain: float | None = None,
    alignment: Path | None = None,
    accel: Path | None = None,
    time_offset_s: float | None = None,
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
    dpi: int = 100,
    max_freq_hz: float = 8000.0,
) -> PlotResult:
    """Draw utterance ``utt_id`` of the run in ``out`` to the PNG ``path`` (see the module docstring).

    ``kernel``/``width``/``width_before``/``width_after``/``gain`` choose the SAL weight curve
    (defaults: `anchorprep.loss.defaults`). ``alignment`` and ``accel`` add the alignment and
    accelerometer panels (paths are not stored in the shards); ``time_offset_s`` is the sensor
    clock offset (default: the run's ``default_time_offset_s``). Raises `UsageError` for a missing
    utterance, bad options or missing matplotlib.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    width_px, height_px = size_px
    if width_px < 400 or height_px < 300 or dpi <= 0:
        raise UsageError("`size_px` must be at least 400x300 pixels and `dpi` positive")
    if local_output(path).is_dir():
        raise UsageError(f"{path} is a folder; give the PNG file to write")
    run = open_run(out)
    row, shard = find_row(run, utt_id)
    settings = run.settings
    grid = settings.grid
    result = PlotResult(Path(path), (int(width_px), int(height_px)))
    weights, weight_label = _weights(row["distance"], kernel, width, width_before, width_after, gain)

    duration = float(row["duration_s"])
    samples = rate = None
    if row.get("audio_path"):
        from anchorprep.sources.audio import load_audio

        try:
            samples, rate = load_audio(row["audio_path"], row["start_s"], duration)
        except AnchorprepError as exc:
            result.notes.append(f"audio not drawn: {exc}")
    else:
        result.notes.append("no audio_path in the row: no waveform or spectrogram")

    words = None
    if alignment is not None:
        try:
            words = _load_alignment(str(location(alignment)), settings.to_dict(), utt_id, float(row["start_s"]))
        except AnchorprepError as exc:
            raise UsageError(f"`alignment` {alignment}: {exc}") from None
    elif settings.command == "align":
        result.notes.append("alignment panel skipped: the shards do not store alignment paths (pass --alignment)")

    vad = None
    vad_block = settings.job.get("vad")
    if vad_block and row.get("audio_path"):
        from anchorprep.inspect.runs import dataclass_from
        from anchorprep.sources.vad import VadSettings, vad_file

        try:
            vad = vad_file(row["audio_path"], dataclass_from(VadSettings, vad_block), float(row["start_s"]), duration,
                           vad_block.get("channel", "mix"))
        except AnchorprepError as exc:
            result.notes.append(f"VAD not drawn: {exc}")

    sensor = None
    if accel is not None:
        sensor = _accel_trace(str(location(accel)), settings, time_offset_s)
    elif settings.command == "accel":
        result.notes.append("accelerometer panel skipped: the shards do not store sensor paths (pass --accel)")

    panels = []  # (name, height ratio)
    if samples is not None:
        panels += [("waveform", 1.1), ("spectrogram", 1.9)]
    if words is not None:
        panels.append(("alignment", 0.55))
    if vad is not None:
        panels.append(("vad", 0.6))
    if sensor is not None:
        panels.append(("accel", 1.1))
    panels += [("distance", 1.3), ("weight", 1.0)]
    result.panels = [name for name, _ in panels]

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, gridspec_kw={"height_ratios": [h for _, h in panels]})
    axes = np.atleast_1d(axes)
    ax_of = {name: ax for (name, _), ax in zip(panels, axes)}
    ends = np.asarray(grid.frame_end_time(np.arange(row["num_frames"])), dtype=np.float64)
    step = grid.shift * grid.subsampling / grid.sample_rate

    times, labels, sources = np.asarray(row["anchor_times_s"], dtype=np.float64), row["anchor_labels"], row["anchor_sources"]
    used = used_mask(settings, times, labels, sources)
    frames = np.asarray(row["anchor_frames"])

    if samples is not None:
        _draw_waveform(ax_of["waveform"], samples, rate)
        _draw_spectrogram(ax_of["spectrogram"], samples, rate, grid, max_freq_hz)
    if words is not None:
        result.notes += _draw_alignment(ax_of["alignment"], words, duration, times, labels, sources, fig, width_px)
    if vad is not None:
        _draw_vad(ax_of["vad"], vad)
    if sensor is not None:
        _draw_accel(ax_of["accel"], sensor, duration)
    target_handles = _draw_distance(ax_of["distance"], row, settings, ends, step, frames, used)
    ax = ax_of["weight"]
    x, y = _frame_steps(weights, ends, step)
    ax.plot(x, y, drawstyle="steps-pre", color="black", lw=1.2)
    ax.fill_between(x, 1.0, y, step="pre", color="0.6", alpha=0.35)
    ax.set_ylabel("SAL weight $w_t$")
    ax.set_ylim(0.9, max(1.1, float(weights.max()) * 1.08))
    ax.set_title(weight_label, fontsize=8, loc="left", pad=2)
    ax.set_xlabel("seconds from the start of the utterance segment (per-frame values at each frame's end time)")

    # Anchor lines through every panel, labelled once at the top (stacked where labels would collide).
    xmax = max(duration, float(ends[-1]) if len(ends) else duration)
    px_per_s = width_px * 0.88 / max(xmax, 1e-6)
    row_ends: list[float] = []
    for t, label, source, keep in sorted(zip(times, labels, sources, used), key=lambda a: a[0]):
        colour = SOURCE_COLOURS.get(source_kind(source), "black")
        for a in axes:
            a.axvline(t, color=colour, lw=1.4 if keep else 1.0, ls="-" if keep else ":", alpha=0.9, zorder=5)
        text = f"{label} {t:.3f} s"
        span = (len(text) * 6.2 + 8) / px_per_s
        level = next((i for i, end in enumerate(row_ends) if end <= t), len(row_ends))
        row_ends[level:level + 1] = [t + span]
        right = t + span > xmax  # no room after the line: write the label before it
        axes[0].annotate(text, (t, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(-2 if right else 2, -2 - 12 * (level % 4)), textcoords="offset points", va="top",
                         ha="right" if right else "left", fontsize=8, color=colour, zorder=6,
                         bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    handles = _anchor_legend(sources, used) + target_handles
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8, frameon=False)
    axes[0].set_xlim(0.0, xmax)

    audio = Path(row["audio_path"]).name if row.get("audio_path") else "no audio"
    title = (f"{utt_id}  ·  {settings.command} run {run.path.name}/{shard}  ·  {audio} "
             f"[{row['start_s']:.3f} s + {duration:.3f} s]  ·  {row['num_frames']} frames "
             f"({grid.frame_shift_ms:g} ms shift, {settings.anchor_rule} anchors)")
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.print_png(str(path))
    return result


def _weights(distance, kernel, width, width_before, width_after, gain) -> tuple[np.ndarray, str]:
    import torch

    from anchorprep.loss import anchor_weights
    from anchorprep.loss.defaults import DEFAULT_GAIN, DEFAULT_KERNEL, DEFAULT_WIDTH

    kernel = DEFAULT_KERNEL if kernel is None else kernel
    width = DEFAULT_WIDTH if width is None else width
    gain = DEFAULT_GAIN if gain is None else gain
    try:
        w = anchor_weights(torch.as_tensor(np.asarray(distance, dtype=np.int64)), kernel, width, width_before,
                           width_after, gain, dtype=torch.float64).numpy()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    widths = f"W={width:g}" if width_before is None and width_after is None else (
        f"W_before={width if width_before is None else width_before:g}, "
        f"W_after={width if width_after is None else width_after:g}")
    return w, f"$w_t = 1 + \\lambda K(d_t)$: {kernel} kernel, {widths} frames, $\\lambda$={gain:g}"


def _draw_waveform(ax, samples: np.ndarray, rate: int) -> None:
    n = len(samples)
    t = np.arange(n) / rate
    if n > 400000:  # a min/max envelope keeps long utterances light
        bins = 6000
        edges = np.linspace(0, n, bins + 1).astype(np.int64)
        lo = np.minimum.reduceat(samples, edges[:-1])
        hi = np.maximum.reduceat(samples, edges[:-1])
        ax.fill_between(edges[:-1] / rate, lo, hi, color="#2f5597", lw=0.6)
    else:
        ax.plot(t, samples, color="#2f5597", lw=0.6)
    peak = float(np.max(np.abs(samples))) or 1.0
    ax.set_ylim(-1.1 * peak, 1.25 * peak)
    ax.set_ylabel(f"waveform\n({rate} Hz)")
    ax.tick_params(axis="y", labelsize=7)


def _draw_spectrogram(ax, samples: np.ndarray, rate: int, grid, max_freq_hz: float) -> None:
    from scipy import signal

    length = max(16, int(round(grid.frame_length_ms * rate / 1000.0)))
    shift = max(1, int(round(grid.frame_shift_ms * rate / 1000.0)))
    if len(samples) < length:
        ax.text(0.5, 0.5, "shorter than one frame", transform=ax.transAxes, ha="center")
        return
    nfft = 1 << (length - 1).bit_length()
    f, t, power = signal.spectrogram(samples, fs=rate, window="hann", nperseg=length, noverlap=length - shift,
                                     nfft=nfft, detrend=False, scaling="spectrum", mode="psd")
    db = 10 * np.log10(power + 1e-12)
    top = min(max_freq_hz, rate / 2)
    keep = f <= top
    vmax = float(db[keep].max())
    half = shift / rate / 2
    ax.imshow(db[keep], origin="lower", aspect="auto", cmap="magma", vmin=vmax - 75, vmax=vmax,
              extent=(t[0] - half, t[-1] + half, 0, f[keep][-1] / 1000.0), interpolation="nearest")
    ax.set_ylabel("spectrogram\nkHz")
    ax.tick_params(axis="y", labelsize=7)


def _draw_alignment(ax, words, duration, times, labels, sources, fig, width_px) -> list[str]:
    from anchorprep.sources.alignments.keywords import find_phrase
    from anchorprep.sources.text import SILENCE_LABELS

    tier, offset, align = words
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(f"{tier.name}\n(alignment)", fontsize=8)
    px_per_s = width_px * 0.85 / max(duration, 1e-6)
    highlighted = []
    notes = []
    keywords = align.get("keywords") or []
    for keyword in keywords:
        for match in find_phrase(tier, keyword, edge=align.get("edge", "end"), regex=align.get("regex", False)):
            highlighted.append((match.start - offset, match.end - offset))
    for start, end in highlighted:
        ax.axvspan(start, end, color="#ffd24d", alpha=0.7, lw=0)
    for interval in tier.intervals:
        start, end = interval.start - offset, interval.end - offset
        if end < 0 or start > duration:
            continue
        silent = interval.label.strip().casefold() in SILENCE_LABELS
        ax.axvline(max(start, 0.0), color="0.45", lw=0.6)
        if not silent and (end - start) * px_per_s >= 7 * min(len(interval.label), 12):
            ax.text((max(start, 0) + min(end, duration)) / 2, 0.5, interval.label, ha="center", va="center",
                    fontsize=8, clip_on=True)
    # The alignment should reproduce the row's alignment anchors; say so when it does not.
    if keywords:
        edge = align.get("edge", "end")
        expected = sorted(t for t in (s if edge == "start" else e if edge == "end" else (s + e) / 2
                                      for s, e in highlighted) if 0 <= t <= duration)
        stored = sorted(float(t) for t, s in zip(times, sources) if source_kind(s) == "alignment")
        if len(expected) != len(stored) or not np.allclose(expected, stored, atol=1e-6):
            notes.append(f"the alignment file gives keyword {edge}s at {np.round(expected, 3).tolist()} s, the row has "
                         f"{np.round(stored, 3).tolist()} s: is it the alignment this run used?")
    return notes


def _draw_vad(ax, vad) -> None:
    step = vad.frame_ms / 1000.0
    decisions = np.asarray(vad.frame_decisions, dtype=bool)
    for first, last in _runs(decisions):
        ax.axvspan(first * step, (last + 1) * step, ymin=0.08, ymax=0.42, color="#98df8a", lw=0)
    for onset, offset in vad.segments:
        ax.axvspan(onset, offset, ymin=0.55, ymax=0.92, color="#2ca02c", alpha=0.8, lw=0)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.73], ["raw", "smoothed"], fontsize=7)
    ax.set_ylabel("VAD", fontsize=8)


def _accel_trace(path: Path, settings: RunSettings, time_offset_s: float | None):
    from anchorprep.inspect.runs import dataclass_from, tuple_or_none
    from anchorprep.sources.accel import AccelSettings, detect_peaks, filtered_signal, read_accel

    block = settings.job.get("accel", {})
    try:
        detect = dataclass_from(AccelSettings, block, band_hz=tuple(block.get("band_hz", (0.5, 3.0)))) if block else AccelSettings()
        recording = read_accel(path, columns=tuple_or_none(block.get("columns")), time_unit=block.get("time_unit", "auto"),
                               rate=block.get("rate"), skip_rows=block.get("skip_rows", 0),
                               units=block.get("units", "m/s2"), max_gap_s=block.get("max_gap_s", 60.0))
        clock, filtered = filtered_signal(recording, detect)
        peaks = detect_peaks(recording, detect)
    except AnchorprepError as exc:
        raise UsageError(f"`accel` {path}: {exc}") from None
    offset = block.get("default_time_offset_s", 0.0) if time_offset_s is None else time_offset_s
    return {"t": clock + offset, "y": filtered, "peaks": peaks.times_s + offset, "peak_values": peaks.values,
            "offset": offset, "settings": detect}


def _draw_accel(ax, sensor: dict, duration: float) -> None:
    t, y = sensor["t"], sensor["y"]
    inside = (t >= -0.5) & (t <= duration + 0.5)
    ax.plot(t[inside], y[inside], color="#9467bd", lw=0.9)
    peaks = (sensor["peaks"] >= 0) & (sensor["peaks"] <= duration)
    ax.plot(sensor["peaks"][peaks], sensor["peak_values"][peaks], "v", color="black", ms=5)
    detect = sensor["settings"]
    band = f"{detect.band_hz[0]:g}-{detect.band_hz[1]:g} Hz" if detect.filter == "bandpass" else detect.filter
    ax.set_ylabel(f"accel {detect.axis}\n({band})", fontsize=8)
    ax.text(0.005, 0.93, f"clock offset {sensor['offset']:+.3f} s", transform=ax.transAxes, va="top", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def _draw_distance(ax, row, settings, ends, step, frames, used) -> None:
    distance = np.asarray(row["distance"], dtype=np.float64)
    target = np.asarray(row["target"])
    names = {v: k for k, v in settings.label_map.items()}
    vad_targets = settings.vad_targets
    shown = np.where(np.abs(distance) >= NO_ANCHOR, np.nan, distance)
    handles = []
    from matplotlib.patches import Patch

    for value in sorted(set(np.unique(target).tolist()) - {0}):
        for first, last in _runs(target == value):
            if value == IGNORE_INDEX:
                ax.axvspan(ends[first] - step, ends[last], color="0.7", alpha=0.5, hatch="///", lw=0)
            else:
                ax.axvspan(ends[first] - step, ends[last], color=CLASS_COLOURS[(value - 1) % len(CLASS_COLOURS)],
                           alpha=0.25, lw=0)
        name = "ignore (-100)" if value == IGNORE_INDEX else ("speech" if vad_targets else names.get(value, str(value)))
        colour = "0.7" if value == IGNORE_INDEX else CLASS_COLOURS[(value - 1) % len(CLASS_COLOURS)]
        handles.append(Patch(facecolor=colour, alpha=0.4, label=f"target {value}: {name}"))
    if np.all(np.isnan(shown)):
        ax.text(0.5, 0.5, "no anchor the distance uses: d = 32767 everywhere (a negative)", transform=ax.transAxes,
                ha="center", va="center", fontsize=9)
        ax.set_ylim(-1, 1)
    else:
        x, y = _frame_steps(shown, ends, step)
        ax.plot(x, y, drawstyle="steps-pre", color="#1f77b4", lw=1.2)
        ax.axhline(0, color="0.3", lw=0.6)
        anchor_ends = ends[frames[used]] if len(frames) else []
        ax.plot(anchor_ends, np.zeros(len(anchor_ends)), "o", color="black", ms=4, zorder=7)
        window = settings.targets.get("positive_window")
        if window:
            ax.axhspan(window[0], window[1], color="0.5", alpha=0.08, lw=0)
    ax.set_ylabel("distance $d_t$\n(frames)")
    return handles


def _anchor_legend(sources, used):
    from matplotlib.lines import Line2D

    handles = []
    for source in dict.fromkeys(sources):
        colour = SOURCE_COLOURS.get(source_kind(source), "black")
        if any(s == source and u for s, u in zip(sources, used)):
            handles.append(Line2D([], [], color=colour, lw=1.4, label=f"{source} anchor"))
        if any(s == source and not u for s, u in zip(sources, used)):
            handles.append(Line2D([], [], color=colour, lw=1.0, ls=":", label=f"{source} anchor (not in distance)"))
    return handles


def describe(result: PlotResult) -> str:
    lines = [f"wrote {result.path} ({result.size_px[0]}x{result.size_px[1]} px; panels: {', '.join(result.panels)})"]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


__all__ = ["PLOT_INSTALL_HINT", "PlotResult", "describe", "plot_utterance"]
