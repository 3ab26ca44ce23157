"""Attach a run's anchors and per-frame distances/targets to a lhotse CutSet.

`export_lhotse(run_dir, cuts_in, cuts_out)` matches every cut of ``cuts_in`` with the shard row
whose ``utt_id`` is the cut id (a run made from the same manifest by ``anchorprep align`` on a
lhotse CutSet has exactly those ids) and writes ``cuts_out`` with these custom fields:

=====================  ==========================================================================
``anchor_times_s``     list of float: anchor times in seconds from the start of the cut
``anchor_frames``      list of int: the model frames they map to
``anchor_labels``      list of str: class labels (``label_map`` in the run's ``manifest.json``)
``anchor_sources``     list of str: ``alignment``, ``vad``, ``accel`` or ``manual``
``anchor_distance``    ``TemporalArray`` (int16, ``num_frames``): ``d_t`` of SPEC §3
``anchor_target``      ``TemporalArray`` (int16, ``num_frames``): per-frame class ids, -100 = ignore
=====================  ==========================================================================

The arrays are stored with lhotse's ``NumpyFilesWriter`` (one ``.npy`` per array under
``storage_dir``, default ``<cuts_out stem>_arrays/`` beside ``cuts_out``, written as an absolute
path so the manifest loads from any directory). Their ``frame_shift`` is the run's model frame
shift (feature shift x subsampling) and their ``start`` the cut's ``start``, so lhotse slices
them with the cut: ``cut.load_anchor_target()`` returns the whole array, and
``cut.truncate(...)`` / ``cut.pad(...)`` carry them along. Batching with padding::

    from lhotse import CutSet
    from lhotse.dataset.collation import collate_custom_field
    cuts = CutSet.from_file("cuts_anchors.jsonl.gz")
    target, lengths = collate_custom_field(cuts, "anchor_target", pad_value=-100)
    distance, _ = collate_custom_field(cuts, "anchor_distance", pad_value=32767)

**Frame counts.** anchorprep's default grid uses Kaldi's ``snip_edges=True`` (598 frames for
6 s at 10 ms); lhotse's ``Fbank`` and ``compute_num_frames`` use the centred convention (600).
Run anchorprep with ``--no-snip-edges`` to get exactly lhotse's frame count; the summary counts
the cuts whose array length differs from ``compute_num_frames(cut.duration, frame_shift,
sampling_rate)``.

**Checks.** A cut whose duration differs from its row's ``duration_s`` by more than one model
frame is a `UsageError` (the run was made for other cuts, e.g. before speed perturbation);
nothing is written then. Cuts without a row (failed items, or a different manifest) follow
``missing``: ``"drop"`` (default), ``"keep"`` (written without anchor fields) or ``"error"``.
Only ``MonoCut``/``MultiCut`` get fields; attach before mixing or padding (a ``MixedCut`` is a
`UsageError`). ``cuts_out`` is written under a temporary name and renamed when complete.

lhotse is optional: without it this raises `MissingDependencyError` naming the install command.
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

from anchorprep.data.source import open_source
from anchorprep.errors import UsageError
from anchorprep.interop._run import model_frame_shift_s, require, run_rows

MISSING = ("drop", "keep", "error")
STORAGE_TYPES = ("numpy_files",)
FIELDS = ("anchor_times_s", "anchor_frames", "anchor_labels", "anchor_sources")
DISTANCE_FIELD, TARGET_FIELD = "anchor_distance", "anchor_target"
_SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _storage_key(utt_id: str, what: str) -> str:
    """A file-system-safe, collision-free key: the id made safe, plus a hash of the real id."""
    digest = hashlib.sha1(utt_id.encode("utf-8")).hexdigest()[:10]
    safe = _UNSAFE.sub("_", utt_id)[:80] or "utt"
    return f"{safe}-{digest}.{what}"


def _cut_ids(cuts) -> set[str]:
    return {cut.id for cut in cuts}


@dataclass(frozen=True)
class LhotseExport:
    """What `export_lhotse` wrote: cut counts, the cuts without a row (``missing``, first 10 ids
    in ``missing_ids``), rows no cut used, cuts whose lhotse frame count differs from the row's,
    and where the arrays and cuts went."""

    cuts_in: int
    written: int
    with_anchors: int
    missing: int
    missing_ids: tuple[str, ...]
    frame_count_differs: int
    rows_without_cut: int
    frame_shift: float
    label_map: dict[str, int]
    storage_path: str
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
    storage_dir: str | os.PathLike | None = None,
    missing: str = "drop",
    storage_type: str = "numpy_files",
) -> LhotseExport:
    """Write ``cuts_out``: the cuts of ``cuts_in`` with the run's anchors attached (module docstring).

    Args:
        run_dir: an anchorprep output folder (or shard file / list of shard files).
        cuts_in: a lhotse CutSet manifest (``.jsonl.gz``, ``.jsonl``, ``.json``).
        cuts_out: where to write the new CutSet (format from its suffix; JSONL is streamed).
        storage_dir: folder for the arrays (default ``<cuts_out stem>_arrays`` beside it).
        missing: what to do with a cut that has no row: ``drop``, ``keep`` or ``error``.
        storage_type: the lhotse array storage; ``numpy_files`` (needs nothing beyond numpy).

    Returns:
        A `LhotseExport` summary (JSON: ``.to_dict()``).

    Raises:
        MissingDependencyError: lhotse is not installed.
        UsageError: bad options, a duration mismatch, a MixedCut, or a missing row with
            ``missing="error"``.
    """
    if missing not in MISSING:
        raise UsageError(f"missing must be one of {', '.join(MISSING)}, not {missing!r}")
    if storage_type not in STORAGE_TYPES:
        raise UsageError(f"storage_type must be one of {', '.join(STORAGE_TYPES)}, not {storage_type!r}")
    require("lhotse", "lhotse", "export_lhotse")
    from lhotse import CutSet
    from lhotse.array import Array, TemporalArray
    from lhotse.cut.data import DataCut
    from lhotse.features.io import NumpyFilesWriter
    from lhotse.serialization import load_manifest_lazy_or_eager
    from lhotse.utils import compute_num_frames

    source = open_source(run_dir)
    frame_shift = model_frame_shift_s(source)
    cuts_out = Path(cuts_out)
    if not str(cuts_out).lower().endswith(_SUFFIXES):
        raise UsageError(f"{cuts_out}: the output must end in {', '.join(_SUFFIXES)}")
    storage = Path(storage_dir) if storage_dir is not None else cuts_out.parent / f"{_stem(cuts_out)}_arrays"
    storage = storage.resolve()
    storage.mkdir(parents=True, exist_ok=True)
    try:
        cuts = load_manifest_lazy_or_eager(cuts_in, manifest_cls=CutSet)
    except Exception as exc:  # lhotse raises many kinds for unreadable manifests
        raise UsageError(f"{cuts_in}: cannot read the CutSet: {exc}") from exc
    if cuts is None:
        raise UsageError(f"{cuts_in}: not a lhotse CutSet manifest")
    wanted = _cut_ids(cuts)

    # Pass 1: write the arrays of the rows some cut needs; keep only small per-row metadata.
    rows: dict[str, dict] = {}
    unused = 0
    writer = NumpyFilesWriter(storage)
    with writer:
        for row in run_rows(source):
            uid = row["utt_id"]
            if uid not in wanted:
                unused += 1
                continue
            keys = {}
            for what, column in (("distance", "distance"), ("target", "target")):
                keys[what] = writer.write(_storage_key(uid, what), row[column])
            rows[uid] = {
                "duration_s": row["duration_s"],
                "num_frames": int(row["num_frames"]),
                "keys": keys,
                "anchor_times_s": [float(t) for t in row["anchor_times_s"]],
                "anchor_frames": [int(f) for f in row["anchor_frames"]],
                "anchor_labels": list(row["anchor_labels"]),
                "anchor_sources": list(row["anchor_sources"]),
            }

    def temporal(key: str, n: int, start: float) -> TemporalArray:
        array = Array(storage_type=writer.name, storage_path=str(storage), storage_key=key, shape=[n])
        return TemporalArray(array=array, temporal_dim=0, frame_shift=frame_shift, start=start)

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
                        raise UsageError(f"cut {cut.id!r} has no row in {run_dir} (missing='error')")
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
                    n = meta["num_frames"]
                    if n != compute_num_frames(cut.duration, frame_shift, cut.sampling_rate):
                        summary["frame_count_differs"] += 1
                    for name in FIELDS:
                        cut = cut.with_custom(name, meta[name])
                    cut = cut.with_custom(DISTANCE_FIELD, temporal(meta["keys"]["distance"], n, cut.start))
                    cut = cut.with_custom(TARGET_FIELD, temporal(meta["keys"]["target"], n, cut.start))
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
        label_map=source.label_map, storage_path=str(storage), cuts_out=str(cuts_out),
    )
