"""`anchorprep stats`: what a run holds, as numbers (and optionally histograms).

`run_stats` reads the shards (only the columns it needs), report.json and errors.jsonl of a run
and returns a `RunStats` (JSON one ``.to_dict()`` away): utterance and frame counts, positives and negatives, anchors
per utterance, anchor positions in seconds and relative to the utterance, anchors by label and
source, target class balance, clipped anchors and other report counters, errors grouped by stage
and by reason, and utterance durations.

Event durations are reported only where the run holds both ends of an event: a `vad --offsets`
run pairs each speech onset with its offset. An alignment run stores one edge per keyword
occurrence (``--edge``), so keyword durations need a second run over the same items with the other
edge (``other_edge=``); without it they are reported as unavailable, with the reason.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from anchorprep.anchors import IGNORE_INDEX, NO_ANCHOR
from anchorprep.errors import UsageError
from anchorprep.shards.run import MANIFEST_FILE, Run, list_column, open_run
from anchorprep.storage import location, local_output

SUMMARY_QUANTILES = (0.05, 0.5, 0.95)
HIST_BINS = 20
_COLUMNS = ["utt_id", "duration_s", "num_frames", "anchor_times_s", "anchor_labels", "anchor_sources", "distance",
            "target"]


def summary(values, bins: int = HIST_BINS, integer: bool = False, span: tuple[float, float] | None = None) -> dict:
    """count, min, p5, median, mean, p95, max and a histogram (``edges``, ``counts``) of ``values``.

    ``integer`` histograms count each value; ``span`` fixes the histogram range (values outside it
    are left out of the histogram, not of the summary).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"count": 0}
    p5, p50, p95 = np.quantile(x, SUMMARY_QUANTILES)
    out = {"count": int(x.size), "min": float(x.min()), "p5": float(p5), "median": float(p50),
           "mean": float(x.mean()), "p95": float(p95), "max": float(x.max())}
    if integer:
        values, counts = np.unique(x.astype(np.int64), return_counts=True)
        out["histogram"] = {str(int(v)): int(c) for v, c in zip(values, counts)}
    else:
        counts, edges = np.histogram(x, bins=bins, range=span)
        out["histogram"] = {"edges": [round(float(e), 6) for e in edges], "counts": counts.astype(int).tolist()}
    return out


_REASON_PATTERNS = [
    (re.compile(r"(?:/[^\s:'\"]+)+"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"), "<n>"),
]


def reason_group(reason: str) -> str:
    """A reason with paths, quoted values and numbers replaced by placeholders, for grouping."""
    for pattern, placeholder in _REASON_PATTERNS:
        reason = pattern.sub(placeholder, reason)
    return reason


@dataclass(frozen=True)
class RunStats:
    """What `run_stats` found; each field is one JSON block of ``to_dict()`` (see the module docstring)."""

    out: str
    run: dict[str, Any]
    utterances: dict[str, Any]
    durations_s: dict[str, Any]
    frames: dict[str, Any]
    anchors: dict[str, Any]
    event_durations: dict[str, Any]
    report_counters: dict[str, int]
    errors: dict[str, Any]
    no_anchor_distance: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _errors(run: Run) -> dict:
    lines = run.errors()
    by_stage = Counter(line.stage for line in lines)
    groups: dict[tuple[str, str], dict] = {}
    for line in lines:
        key = (line.stage, reason_group(line.reason))
        group = groups.setdefault(key, {"stage": key[0], "reason": key[1], "count": 0, "example_utt_id": line.utt_id,
                                        "example_reason": line.reason})
        group["count"] += 1
    by_reason = sorted(groups.values(), key=lambda g: (-g["count"], g["stage"], g["reason"]))
    return {"count": len(lines), "by_stage": dict(by_stage.most_common()), "by_reason": by_reason}


def _pair_durations(starts: dict, ends: dict) -> tuple[list[float], int]:
    """end − start for each (utt_id, label) occurrence, paired in time order; and how many did not pair."""
    durations, unpaired = [], 0
    for key in set(starts) | set(ends):
        a, b = sorted(starts.get(key, [])), sorted(ends.get(key, []))
        if len(a) != len(b):
            unpaired += abs(len(a) - len(b))
        durations += [e - s for s, e in zip(a, b)]
    return durations, unpaired


def _anchor_times_by_label(run: Run, source: str | None = None) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for shard in run.shards:
        table = run.read_shard(shard, ["utt_id", "anchor_times_s", "anchor_labels", "anchor_sources"])
        ids = table.column("utt_id").to_pylist()
        offsets, values = list_column(table.column("anchor_times_s"))
        _, labels = list_column(table.column("anchor_labels"))
        _, sources = list_column(table.column("anchor_sources"))
        for i, utt in enumerate(ids):
            for k in range(offsets[i], offsets[i + 1]):
                if source is None or sources[k] == source:
                    times[(utt, labels[k])].append(float(values[k]))
    return times


def _event_durations(run: Run, other_edge: Path | None) -> dict:
    settings = run.settings
    command = settings.command
    if other_edge is not None:
        if command != "align":
            raise UsageError("`other_edge` pairs two alignment runs; this run is not an `anchorprep align` run")
        other = open_run(other_edge)
        mine, theirs = settings.job.get("align", {}), other.settings.job.get("align", {})
        if other.settings.command != "align" or mine.get("keywords") != theirs.get("keywords"):
            raise UsageError(f"{other_edge} is not an align run with the same keywords {mine.get('keywords')}")
        edges = {mine.get("edge"), theirs.get("edge")}
        if edges != {"start", "end"}:
            raise UsageError(f"`other_edge` needs one run with edge start and one with edge end; got {sorted(edges)}")
        starts, ends = ((run, other) if mine.get("edge") == "start" else (other, run))
        durations, unpaired = _pair_durations(_anchor_times_by_label(starts), _anchor_times_by_label(ends))
        return {"available": True, "kind": "keyword", "how": f"end − start, paired by utt_id and keyword with {other_edge}",
                "unpaired": unpaired, "seconds": summary(durations)}
    if command == "vad" and settings.job.get("vad", {}).get("offsets"):
        times = _anchor_times_by_label(run, "vad")
        starts = {utt: t for (utt, label), t in times.items() if label == "speech_onset"}
        ends = {utt: t for (utt, label), t in times.items() if label == "speech_offset"}
        durations, unpaired = _pair_durations(starts, ends)
        return {"available": True, "kind": "speech segment", "how": "speech_offset − speech_onset of each VAD segment",
                "unpaired": unpaired, "seconds": summary(durations)}
    if command == "align":
        edge = settings.job.get("align", {}).get("edge", "end")
        if settings.job.get("align", {}).get("speech_onsets"):
            reason = "a --speech-onsets run stores only where speech runs start"
        else:
            reason = (f"keyword durations are not stored: this alignment run anchors each keyword at its {edge} only. "
                      "Run `anchorprep align` again with the other --edge (start/end) into a second folder and pass it "
                      "as --other-edge")
        return {"available": False, "reason": reason}
    reasons = {
        "vad": "a vad run without --offsets stores onsets only (rerun with --offsets for speech-segment durations)",
        "accel": "accelerometer peaks are instants; they have no duration",
        "merge": "merged runs keep anchor times only; compute durations on the runs that were merged",
    }
    return {"available": False, "reason": reasons.get(command, f"not derivable for `{command}` runs")}


def run_stats(out: Path, other_edge: Path | None = None) -> RunStats:
    """Statistics of the run in ``out`` (see the module docstring).

    ``other_edge``: an `anchorprep align` run over the same items with the opposite ``--edge``
    (start vs end); keyword durations are then ``end − start`` per occurrence.
    """
    run = open_run(out)
    settings = run.settings
    ids = dict(settings.label_map)
    names = {v: k for k, v in ids.items()}
    durations, anchors_per_utt, times, relative = [], [], [], []
    labels, sources = Counter(), Counter()
    by_label_source: Counter = Counter()
    target_counts: Counter = Counter()
    frames = positives = negatives = utterances = 0
    for shard in run.shards:
        path = run.path / shard.file
        if not path.is_file():
            raise UsageError(f"{path} is listed in {MANIFEST_FILE} but missing (run `anchorprep validate`)")
        table = run.read_shard(shard, _COLUMNS)
        n = table.num_rows
        utterances += n
        duration = np.asarray(table.column("duration_s").to_numpy(), dtype=np.float64)
        num_frames = np.asarray(table.column("num_frames").to_numpy(), dtype=np.int64)
        durations.append(duration)
        frames += int(num_frames.sum())
        offsets, values = list_column(table.column("anchor_times_s"))
        _, row_labels = list_column(table.column("anchor_labels"))
        _, row_sources = list_column(table.column("anchor_sources"))
        counts = np.diff(offsets)
        anchors_per_utt.append(counts)
        times.append(values)
        relative.append(values / np.repeat(duration, counts) if len(values) else values)
        labels.update(row_labels)
        sources.update(row_sources)
        by_label_source.update(zip(row_labels, row_sources))
        d_offsets, distance = list_column(table.column("distance"))
        row_of_frame = np.repeat(np.arange(n), np.diff(d_offsets))
        positive_rows = np.unique(row_of_frame[np.asarray(distance) == 0]).size
        positives += int(positive_rows)
        negatives += int(n - positive_rows)
        _, target = list_column(table.column("target"))
        values_t, counts_t = np.unique(target, return_counts=True)
        target_counts.update({int(v): int(c) for v, c in zip(values_t, counts_t)})
    durations = np.concatenate(durations) if durations else np.zeros(0)
    anchors_per_utt = np.concatenate(anchors_per_utt) if anchors_per_utt else np.zeros(0)
    times = np.concatenate(times) if times else np.zeros(0)
    relative = np.concatenate(relative) if relative else np.zeros(0)
    report = run.report()
    counters = report.counters if report is not None else {}
    known = {"utterances", "positives", "negatives", "anchors"}
    target_names = {0: "non-speech", 1: "speech"} if settings.vad_targets else names

    def target_name(value: int) -> str:
        if value == IGNORE_INDEX:
            return "ignore (-100)"
        return target_names.get(value, str(value))

    return RunStats(
        out=str(run.path),
        run={
            "command": settings.command, "source": settings.job.get("source"),
            "tool_version": settings.tool_version, "settings_sha256": settings.settings_sha256,
            "grid": dict(sorted(settings.grid.to_dict().items())), "anchor_rule": settings.anchor_rule, "targets": dict(settings.targets),
            "label_map": ids, "combine": settings.job.get("combine"), "shards": len(run.shards),
        },
        utterances={
            "in": report.items_in if report is not None else settings.inputs.count, "written": utterances,
            "failed": report.failed if report is not None else None, "positives": positives, "negatives": negatives,
            "positive_share": positives / utterances if utterances else None,
        },
        durations_s={**summary(durations), "total_hours": float(durations.sum() / 3600.0)},
        frames={
            "total": frames,
            "targets": {target_name(v): c for v, c in sorted(target_counts.items())},
            "positive_share": (sum(c for v, c in target_counts.items() if v > 0) / frames) if frames else None,
        },
        anchors={
            "total": int(len(times)),
            "per_utterance": summary(anchors_per_utt, integer=True),
            "by_label": dict(labels.most_common()),
            "by_source": dict(sources.most_common()),
            "by_label_and_source": [{"label": lab, "source": src, "count": c}
                                    for (lab, src), c in by_label_source.most_common()],
            "time_s": summary(times),
            "relative_position": summary(relative, span=(0.0, 1.0)),
            "clipped_after_end": counters.get("anchors_clipped_after_end", 0),
            "clipped_before_start": counters.get("anchors_clipped_before_start", 0),
        },
        event_durations=_event_durations(run, location(other_edge) if other_edge else None),
        report_counters={k: v for k, v in sorted(counters.items())
                         if k not in known and not k.startswith("anchors_from_") and not k.startswith("anchors_clipped")},
        errors=_errors(run),
        no_anchor_distance=NO_ANCHOR,
    )


def stats_figure(stats: RunStats, path: Path, dpi: int = 100) -> Path:
    """Histograms of a `run_stats` result as a PNG (needs matplotlib)."""
    from anchorprep.inspect.plot import _matplotlib

    stats = stats.to_dict()
    Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(13, 7.5), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    from matplotlib.ticker import MaxNLocator

    for ax in list(axes.flat)[:-1]:  # counts; the last panel has categories on y
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"anchorprep stats: {stats['out']} ({stats['run']['command']}, {stats['utterances']['written']:,} "
                 f"utterances, {stats['anchors']['total']:,} anchors)")

    def hist(ax, block: dict, title: str, xlabel: str) -> None:
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        if not block.get("count"):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
            return
        h = block["histogram"]
        edges = np.asarray(h["edges"])
        ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="tab:blue", edgecolor="white")
        ax.axvline(block["median"], color="black", lw=1, ls="--", label=f"median {block['median']:.3g}")
        ax.legend(fontsize=8)

    hist(axes[0, 0], stats["durations_s"], "utterance duration", "seconds")
    per = stats["anchors"]["per_utterance"]
    ax = axes[0, 1]
    ax.set_title("anchors per utterance", fontsize=10)
    if per.get("count"):
        keys = sorted(per["histogram"], key=int)
        ax.bar([int(k) for k in keys], [per["histogram"][k] for k in keys], color="tab:blue")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("anchors")
    hist(axes[0, 2], stats["anchors"]["time_s"], "anchor time", "seconds from the utterance start")
    hist(axes[1, 0], stats["anchors"]["relative_position"], "anchor position", "time / utterance duration")
    events = stats["event_durations"]
    if events.get("available"):
        hist(axes[1, 1], events["seconds"], f"{events['kind']} duration", "seconds")
    else:
        ax = axes[1, 1]
        ax.set_title("event duration", fontsize=10)
        ax.axis("off")
        import textwrap

        ax.text(0.5, 0.5, "not available:\n" + textwrap.fill(events["reason"], 45), ha="center", va="center",
                transform=ax.transAxes, fontsize=8, color="dimgrey")
    ax = axes[1, 2]
    ax.set_title("anchors by label and source", fontsize=10)
    rows = stats["anchors"]["by_label_and_source"][:12]
    if rows:
        ax.barh([f"{r['label']} ({r['source']})" for r in rows][::-1], [r["count"] for r in rows][::-1], color="tab:orange")
        ax.tick_params(axis="y", labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("anchors")
    path = local_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.print_png(str(path))
    return path


__all__ = ["RunStats", "reason_group", "run_stats", "stats_figure", "summary"]
