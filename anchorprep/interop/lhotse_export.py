"""Attach a run's anchors to a lhotse CutSet so that they move with lhotse's own transforms.

`export_lhotse(run_dir, cuts_in, cuts_out)` matches every cut of ``cuts_in`` with the shard row
whose ``utt_id`` is the cut id (a run made from the same manifest by ``anchorprep align`` on a
lhotse CutSet has exactly those ids) and writes ``cuts_out`` where each matched cut has one more
supervision, the *anchor supervision*:

* id ``<cut id>-anchors``, spanning the cut (``start=0``, ``duration=cut.duration``), no text;
* ``alignment={"anchors": [AlignmentItem(symbol=label, start=t, duration=0), ...]}``: the
  anchors the row's distances and targets use, ``t`` in seconds from the start of the
  *recording* (lhotse's convention for alignment items: ``cut.start`` + anchor time);
* ``custom={"anchorprep": {"grid", "anchor_rule", "targets", "label_map"}}``: the run's
  labelling settings, so per-frame labels can be recomputed for any cut.

**Why no per-frame arrays.** lhotse 1.33 (``lhotse/cut/data.py``, ``lhotse/supervision.py``)
moves alignment items with time: ``truncate`` keeps them in recording time while
``cut.start`` moves, ``perturb_speed`` rescales them with the supervisions, and ``pad`` makes a
``MixedCut`` whose track ``offset`` places them. A custom ``TemporalArray`` does not: ``pad``
fills it with 0 unless every caller passes ``pad_value_dict`` (0 means "at the anchor" for a
distance and "background" for a target) and ``perturb_speed`` keeps it unperturbed. So the
distances and targets are computed from the anchors of the cut as it is *now*:
`cut_anchors(cut)` (one cut) and `collate_anchors(cuts)` (a padded batch), on the run's frame
grid, with the run's anchor rule and positive window, exactly as ``anchorprep align`` computes
a row. Anchors that a ``truncate`` left outside the cut are dropped.

Keep the anchor supervision through your transforms: ``truncate`` keeps it with the default
``keep_excessive_supervisions=True``; before ``trim_to_supervisions`` (which would make a cut of
it), compute the labels first or filter it out (``cut.filter_supervisions(lambda s:
s.alignment is None or "anchors" not in s.alignment)``).

**Frame counts.** anchorprep's default grid uses Kaldi's ``snip_edges=True`` (598 frames for
6 s at 10 ms); lhotse's ``Fbank`` and ``compute_num_frames`` use the centred convention (600).
Run anchorprep with ``--no-snip-edges`` to get exactly lhotse's frame count; the summary counts
the cuts whose row length differs from ``compute_num_frames(cut.duration, frame_shift,
sampling_rate)``.

**Checks.** A cut whose duration differs from its row's ``duration_s`` by more than one model
frame is a `UsageError` (the run was made for other cuts, e.g. before speed perturbation);
nothing is written then. Cuts without a row (failed items, or a different manifest) follow
``missing``: ``"drop"`` (default), ``"keep"`` (written without anchors) or ``"error"``; when no
cut has a row at all, `NoCutMatchedError` (the CLI exits 1) and nothing is written. Only
``MonoCut``/``MultiCut`` get anchors; attach before mixing or padding (a ``MixedCut`` is a
`UsageError`). ``cuts_out`` is written under a temporary name and renamed when complete. Runs
whose targets are per-frame VAD decisions (``vad --targets vad``) export their anchors, but
`cut_anchors` refuses to recompute their targets.

lhotse is optional: without it this raises `MissingDependencyError` naming the install command.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from anchorprep.anchors import IGNORE_INDEX, NO_ANCHOR, TargetWindow, label_frames
from anchorprep.data.source import open_source
from anchorprep.errors import AnchorprepError, UsageError
from anchorprep.grid import FrameGrid
from anchorprep.interop._run import model_frame_shift_s, require, run_rows
from anchorprep.storage import local_output

MISSING = ("drop", "keep", "error")
#: The alignment kind of the anchor items, and the supervision ``custom`` key of the settings.
ANCHOR_ALIGNMENT, SETTINGS_KEY = "anchors", "anchorprep"
_SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")
_TIME_TOLERANCE_S = 1e-6


class NoCutMatchedError(AnchorprepError):
    """No cut of the manifest has a row in the run: nothing to export (the CLI exits 1)."""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _labelling_settings(settings: dict) -> dict:
    """What `cut_anchors` needs from a run's settings (stored on each anchor supervision)."""
    return {key: settings[key] for key in ("grid", "anchor_rule", "targets", "label_map") if key in settings}


def _used_anchors(row: dict) -> list[tuple[float, str]]:
    """``(time_s, label)`` of the anchors the row's distances use: those on a frame at distance 0
    (a merged or accel row may list anchors that it did not use)."""
    distance = np.asarray(row["distance"])
    return [(float(t), str(label)) for t, f, label in zip(row["anchor_times_s"], row["anchor_frames"], row["anchor_labels"])
            if distance[int(f)] == 0]


@dataclass(frozen=True)
class CutAnchors:
    """The anchors of a cut in cut time and its per-frame labels on the run's grid.

    ``distance`` (int16, ``d_t`` saturated at 32767) and ``target`` (int16 class ids, -100 =
    ignore) have ``num_frames`` values, computed from ``times_s``/``labels`` as the run computes
    a row (`anchorprep.anchors.label_frames`).
    """

    times_s: tuple[float, ...]
    labels: tuple[str, ...]
    num_frames: int
    frame_shift: float
    distance: np.ndarray
    target: np.ndarray


def _anchor_pieces(cut):
    """``(offset in the cut, DataCut)`` of every audible piece of ``cut`` (one, or a MixedCut's tracks)."""
    from lhotse.cut import MixedCut
    from lhotse.cut.data import DataCut

    if isinstance(cut, MixedCut):
        return [(float(track.offset), track.cut) for track in cut.tracks if isinstance(track.cut, DataCut)]
    return [(0.0, cut)]


def cut_anchors(cut) -> CutAnchors:
    """Anchors and per-frame labels of a cut exported by `export_lhotse`, after any lhotse transform.

    Anchor time in the cut = track offset + (item start - the track cut's start), for a plain cut
    and each track of a ``MixedCut`` (``pad``, ``mix``); anchors outside ``[0, cut.duration]``
    are dropped. Raises `UsageError` when the cut has no anchor supervision or the run's targets
    cannot be recomputed from anchors.
    """
    from lhotse.utils import compute_num_samples

    settings, anchors = None, []
    for offset, piece in _anchor_pieces(cut):
        for sup in piece.supervisions:
            items = (sup.alignment or {}).get(ANCHOR_ALIGNMENT)
            if items is None:
                continue
            settings = settings or (sup.custom or {}).get(SETTINGS_KEY)
            anchors += [(offset + item.start - piece.start, item.symbol) for item in items]
    if settings is None:
        raise UsageError(f"cut {cut.id!r} has no anchor supervision: export it with export_lhotse (and keep "
                         "supervisions when truncating: keep_excessive_supervisions=True)")
    targets = settings.get("targets", {})
    if targets.get("mode", "window") != "window":
        raise UsageError(f"cut {cut.id!r} comes from a run whose targets are per-frame {targets.get('mode')} decisions, "
                         "which lhotse's transforms cannot carry; make the run with `targets` 'window'")
    grid = FrameGrid(**settings["grid"])
    window = TargetWindow(*targets["positive_window"], targets.get("guard", 0))
    label_ids = settings["label_map"]
    anchors = sorted((t, label) for t, label in anchors
                     if -_TIME_TOLERANCE_S <= t <= cut.duration + _TIME_TOLERANCE_S)
    num_samples = compute_num_samples(cut.duration, cut.sampling_rate)
    num_frames = grid.num_frames(grid.resampled_length(num_samples, cut.sampling_rate))
    if num_frames == 0:
        raise UsageError(f"cut {cut.id!r} ({cut.duration} s) is shorter than one frame")
    times = np.array([max(t, 0.0) for t, _ in anchors], dtype=np.float64)
    frames = grid.time_to_frame(times, num_frames, settings.get("anchor_rule", "causal"))[0] if anchors else []
    distance, target = label_frames(frames, [label_ids[label] for _, label in anchors], num_frames, window)
    return CutAnchors(
        times_s=tuple(round(float(t), 9) for t in times), labels=tuple(label for _, label in anchors), num_frames=num_frames,
        frame_shift=grid.shift * grid.subsampling / grid.sample_rate, distance=distance, target=target,
    )


@dataclass(frozen=True)
class AnchorBatch:
    """`collate_anchors` output: ``(B, T)`` int16 arrays padded with 32767 / -100, and lengths."""

    distance: np.ndarray
    target: np.ndarray
    num_frames: np.ndarray


def collate_anchors(cuts) -> AnchorBatch:
    """Per-frame labels of a batch of cuts (`cut_anchors` of each), padded to the longest."""
    labels = [cut_anchors(cut) for cut in cuts]
    lengths = np.array([a.num_frames for a in labels], dtype=np.int64)
    width = int(lengths.max(initial=0))
    distance = np.full((len(labels), width), NO_ANCHOR, dtype=np.int16)
    target = np.full((len(labels), width), IGNORE_INDEX, dtype=np.int16)
    for i, a in enumerate(labels):
        distance[i, : a.num_frames], target[i, : a.num_frames] = a.distance, a.target
    return AnchorBatch(distance=distance, target=target, num_frames=lengths)


@dataclass(frozen=True)
class LhotseExport:
    """What `export_lhotse` wrote: cut counts, the cuts without a row (``missing``, first 10 ids
    in ``missing_ids``), rows no cut used, cuts whose lhotse frame count differs from the row's."""

    cuts_in: int
    written: int
    with_anchors: int
    missing: int
    missing_ids: tuple[str, ...]
    frame_count_differs: int
    rows_without_cut: int
    frame_shift: float
    label_map: dict[str, int]
    cuts_out: str

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["missing_ids"] = list(self.missing_ids)
        return data


def export_lhotse(
    run_dir: str | os.PathLike,
    cuts_in: str | os.PathLike,
    cuts_out: str | os.PathLike,
    *,
    missing: str = "drop",
) -> LhotseExport:
    """Write ``cuts_out``: the cuts of ``cuts_in`` with the run's anchors attached (module docstring).

    Args:
        run_dir: an anchorprep output folder (or shard file / list of shard files).
        cuts_in: a lhotse CutSet manifest (``.jsonl.gz``, ``.jsonl``, ``.json``).
        cuts_out: where to write the new CutSet (format from its suffix; JSONL is streamed).
        missing: what to do with a cut that has no row: ``drop``, ``keep`` or ``error``.

    Returns:
        A `LhotseExport` summary (JSON: ``.to_dict()``).

    Raises:
        MissingDependencyError: lhotse is not installed.
        NoCutMatchedError: no cut of ``cuts_in`` has a row in the run.
        UsageError: bad options, a duration mismatch, a MixedCut, or a missing row with
            ``missing="error"``.
    """
    if missing not in MISSING:
        raise UsageError(f"`missing` must be one of {', '.join(MISSING)}, not {missing!r}")
    require("lhotse", "lhotse", "export_lhotse")
    from lhotse import CutSet
    from lhotse.cut.data import DataCut
    from lhotse.serialization import load_manifest_lazy_or_eager
    from lhotse.supervision import AlignmentItem, SupervisionSegment
    from lhotse.utils import compute_num_frames, fastcopy

    source = open_source(run_dir)
    frame_shift = model_frame_shift_s(source)
    settings = _labelling_settings(source.settings)
    cuts_out = local_output(cuts_out)
    if not str(cuts_out).lower().endswith(_SUFFIXES):
        raise UsageError(f"{cuts_out}: the output must end in {', '.join(_SUFFIXES)}")
    try:
        cuts = load_manifest_lazy_or_eager(cuts_in, manifest_cls=CutSet)
    except Exception as exc:  # lhotse raises many kinds for unreadable manifests
        raise UsageError(f"{cuts_in}: cannot read the CutSet: {exc}") from exc
    if cuts is None:
        raise UsageError(f"{cuts_in}: not a lhotse CutSet manifest")
    wanted = {cut.id for cut in cuts}

    # Pass 1: the anchors of the rows some cut needs (no per-frame columns kept).
    rows: dict[str, dict] = {}
    unused = 0
    for row in run_rows(source, ("utt_id", "duration_s", "num_frames", "anchor_times_s", "anchor_frames",
                                 "anchor_labels", "distance")):
        if row["utt_id"] not in wanted:
            unused += 1
            continue
        rows[row["utt_id"]] = {"duration_s": row["duration_s"], "num_frames": int(row["num_frames"]),
                               "anchors": _used_anchors(row)}
    if not rows:
        raise NoCutMatchedError(
            f"no cut of {cuts_in} ({len(wanted)} cuts) has a row in {run_dir} ({unused} rows): make the run from this "
            "manifest (each row's utt_id is its cut id)"
        )

    def with_anchors(cut, meta: dict):
        items = [AlignmentItem(symbol=label, start=round(cut.start + t, 8), duration=0.0) for t, label in meta["anchors"]]
        anchor_sup = SupervisionSegment(
            id=f"{cut.id}-anchors", recording_id=cut.recording_id, start=0.0, duration=cut.duration,
            channel=cut.channel, custom={SETTINGS_KEY: settings}, alignment={ANCHOR_ALIGNMENT: items},
        )
        return fastcopy(cut, supervisions=[*cut.supervisions, anchor_sup])

    # Pass 2: stream the cuts out.
    summary = {"cuts_in": 0, "written": 0, "with_anchors": 0, "missing": 0, "missing_ids": [],
               "frame_count_differs": 0}
    tolerance = frame_shift + 1e-6
    lower = str(cuts_out).lower()
    tmp = cuts_out.parent / f".{_stem(cuts_out)}.partial{cuts_out.name[len(_stem(cuts_out)):]}"
    cuts_out.parent.mkdir(parents=True, exist_ok=True)
    streamed = lower.endswith((".jsonl", ".jsonl.gz"))
    kept = []
    try:
        with (CutSet.open_writer(tmp) if streamed else nullcontext()) as out:
            for cut in cuts:
                summary["cuts_in"] += 1
                meta = rows.get(cut.id)
                if meta is None:
                    summary["missing"] += 1
                    if len(summary["missing_ids"]) < 10:
                        summary["missing_ids"].append(cut.id)
                    if missing == "error":
                        raise UsageError(f"cut {cut.id!r} has no row in {run_dir} (`missing` is 'error')")
                    if missing == "drop":
                        continue
                else:
                    if not isinstance(cut, DataCut):
                        raise UsageError(
                            f"cut {cut.id!r} is a {type(cut).__name__}: attach anchors to MonoCut/MultiCut "
                            "manifests, then mix or pad"
                        )
                    if abs(float(meta["duration_s"]) - float(cut.duration)) > tolerance:
                        raise UsageError(
                            f"cut {cut.id!r} lasts {cut.duration} s but its row lasts {meta['duration_s']} s: "
                            "the run was made for other cuts (e.g. before speed perturbation or truncation)"
                        )
                    if meta["num_frames"] != compute_num_frames(cut.duration, frame_shift, cut.sampling_rate):
                        summary["frame_count_differs"] += 1
                    cut = with_anchors(cut, meta)
                    summary["with_anchors"] += 1
                summary["written"] += 1
                if streamed:
                    out.write(cut)
                else:
                    kept.append(cut)
        if not streamed:
            CutSet.from_cuts(kept).to_file(tmp)
        os.replace(tmp, cuts_out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return LhotseExport(
        cuts_in=summary["cuts_in"], written=summary["written"], with_anchors=summary["with_anchors"],
        missing=summary["missing"], missing_ids=tuple(summary["missing_ids"]),
        frame_count_differs=summary["frame_count_differs"], rows_without_cut=unused, frame_shift=frame_shift,
        label_map=source.label_map, cuts_out=str(cuts_out),
    )
