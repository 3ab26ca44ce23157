"""WeKws ``data.list`` files with anchorprep anchors and per-frame targets.

WeKws (https://github.com/wenet-e2e/wekws) trains from a ``data.list``: one JSON object per
line, read by ``kws/dataset/processor.py:parse_raw``, which needs ``key``, ``wav`` and ``txt``
(``tools/make_list.py`` also writes ``duration``, and ``tok`` for CTC recipes). For the
max-pooling recipes ``txt`` is the keyword index (0, 1, ...) or -1 for a negative (filler)
utterance; for the CTC recipes it is a list of token ids.

`export_wekws(run_dir, out_path)` writes one line per shard row::

    {"key": utt_id, "wav": audio_path, "txt": 0, "duration": 1.5977,
     "num_frames": 157, "anchor_times": [1.09], "anchor_frames": [107],
     "anchor_labels": ["press"], "target": [0, 0, ..., 1, ...], "distance": [-107, ..., 0, ...]}

* ``txt`` (max-pooling): the class of the first positive frame of ``target`` minus one, i.e.
  anchorprep class ``k`` (``label_map``, 0 = background) is WeKws keyword ``k - 1``; -1 when
  no frame is positive. Set ``num_keywords`` in the WeKws config to the number of classes
  (``summary["wekws_labels"]`` lists them in index order).
* ``target`` / ``distance`` (``per_frame=True``): the shard columns, one value per model frame
  on the run's grid. WeKws computes ``kaldi.fbank``/``mfcc`` with ``snip_edges=True``, 25 ms /
  10 ms at ``resample_rate`` (16 kHz): anchorprep's default grid, so ``num_frames`` equals its
  feature count. WeKws' ``frame_skip: s`` keeps feature frames 0, s, 2s, ... (``ceil(T/s)``);
  anchorprep's ``--subsampling s`` labels blocks ``[js, js+s)`` (``T // s`` frames, the causal
  anchor rule using a block's last feature frame): export with ``--subsampling s``, pad the last
  frame when the counts differ by one, and expect the anchor up to ``s - 1`` feature frames
  earlier than on WeKws' grid.
* With ``base_list`` (a ``data.list`` made by WeKws' ``tools/make_list.py``, e.g. with token ids
  for CTC), every line of it keeps its own fields and gains the anchor fields of its ``key``;
  ``txt`` is then left alone.

What a WeKws user does with them: the stock recipes ignore unknown fields, so the file trains as
before. For Streaming Anchor Loss, keep ``target`` and ``distance`` in the sample in
``parse_raw`` and ``compute_fbank`` (which otherwise keep only key/label/feat), pad them in
``padding`` with -100 and 32767, and replace the max-pooling loss by the per-frame loss of
`anchorprep.loss` (SAL, or SAFL) on the model's ``(B, T, num_keywords)`` outputs, with weights
from ``distance`` (``AnchorWeightConfig``); or keep max-pooling and use ``anchor_frames`` to
restrict the positive max to frames near the anchor. ``anchor_times`` give the latency
reference for evaluation (SPEC §6).

Rows that WeKws cannot load are refused (`UsageError`) rather than silently misaligned: a row
without ``audio_path`` (unless ``base_list`` supplies ``wav``), and a row that is a segment of
a longer file (``start_s > 0``), because ``parse_raw`` loads whole files; with
``allow_segments=True`` such lines get ``start``/``end`` (seconds) for a processor that cuts
the audio. The file is written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from anchorprep.data.source import open_source
from anchorprep.errors import UsageError
from anchorprep.interop._run import model_frame_shift_s, run_rows
from anchorprep.shards.io import write_atomic

MISSING = ("drop", "keep", "error")
_SEGMENT_TOLERANCE_S = 1e-6


def wekws_label(target: np.ndarray) -> int:
    """WeKws max-pooling ``txt``: the class of the first positive frame minus 1, or -1."""
    positive = np.flatnonzero(target > 0)
    return int(target[positive[0]]) - 1 if len(positive) else -1


def _anchor_fields(row: dict, per_frame: bool) -> dict:
    fields = {
        "num_frames": int(row["num_frames"]),
        "anchor_times": [float(t) for t in row["anchor_times_s"]],
        "anchor_frames": [int(f) for f in row["anchor_frames"]],
        "anchor_labels": list(row["anchor_labels"]),
    }
    if per_frame:
        fields["target"] = np.asarray(row["target"]).tolist()
        fields["distance"] = np.asarray(row["distance"]).tolist()
    return fields


def _segment_fields(row: dict) -> dict:
    """``start``/``end`` (seconds in the audio file) for a row that is a segment of it."""
    start = float(row["start_s"] or 0.0)
    if start > _SEGMENT_TOLERANCE_S:
        return {"start": start, "end": round(start + float(row["duration_s"]), 9)}
    return {}


def _read_base(path: Path) -> list[dict]:
    lines = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the base data.list: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
            raise UsageError(f"{path}:{number}: a data.list line needs a string 'key'")
        lines.append(obj)
    return lines


@dataclass(frozen=True)
class WekwsExport:
    """What `export_wekws` wrote: line counts, base-list keys without a row (``missing``, first
    10 in ``missing_ids``), ``wekws_labels`` (keyword index -> anchorprep label), the grid."""

    lines: int
    positives: int
    negatives: int
    missing: int
    missing_ids: tuple[str, ...]
    wekws_labels: tuple[str, ...]
    label_map: dict[str, int]
    frame_shift_ms: float
    grid: dict
    out: str

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(missing_ids=list(self.missing_ids), wekws_labels=list(self.wekws_labels))
        return data


def export_wekws(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    base_list: str | os.PathLike | None = None,
    per_frame: bool = True,
    allow_segments: bool = False,
    missing: str = "drop",
) -> WekwsExport:
    """Write a WeKws ``data.list`` with anchor fields (see the module docstring).

    Args:
        run_dir: an anchorprep output folder (or shard file / list of shard files).
        out_path: the ``data.list`` to write.
        base_list: an existing WeKws ``data.list`` to extend (its order and fields are kept).
        per_frame: include the per-frame ``target`` and ``distance`` lists.
        allow_segments: write rows that are segments of longer files, with ``start``/``end``.
        missing: with ``base_list``, what to do with a line whose key has no row: ``drop``,
            ``keep`` (unchanged) or ``error``.

    Returns:
        A `WekwsExport` summary (JSON: ``.to_dict()``).
    """
    if missing not in MISSING:
        raise UsageError(f"missing must be one of {', '.join(MISSING)}, not {missing!r}")
    source = open_source(run_dir)
    frame_shift = model_frame_shift_s(source)
    label_map = source.label_map
    wekws_labels = [name for name, cid in sorted(label_map.items(), key=lambda kv: kv[1]) if cid > 0]
    base = _read_base(Path(base_list)) if base_list is not None else None
    wanted = None if base is None else {obj["key"] for obj in base}

    # Pass 1 (scalar columns only): refuse rows WeKws cannot load before writing anything.
    no_audio, segments = [], []
    for row in run_rows(source, ("utt_id", "audio_path", "start_s")):
        if wanted is not None and row["utt_id"] not in wanted:
            continue
        if float(row["start_s"] or 0.0) > _SEGMENT_TOLERANCE_S and not allow_segments:
            segments.append(row["utt_id"])
        if base is None and not row["audio_path"]:
            no_audio.append(row["utt_id"])
    if no_audio:
        raise UsageError(
            f"{len(no_audio)} rows have no audio_path (first: {no_audio[0]!r}); WeKws loads each line's 'wav': "
            "run anchorprep with audio, or pass base_list= with the wav paths"
        )
    if segments:
        raise UsageError(
            f"{len(segments)} rows are segments of longer audio files (start_s > 0; first: {segments[0]!r}); "
            "WeKws' parse_raw loads whole files, so their frames would not line up: cut the audio into files, "
            "or pass allow_segments=True (--allow-segments) to write start/end for a processor that cuts"
        )

    summary = {"lines": 0, "positives": 0, "negatives": 0, "missing": 0, "missing_ids": []}
    tolerance = frame_shift + 1e-6

    def line(obj: dict, row: dict | None) -> str:
        summary["lines"] += 1
        if row is not None:
            txt = wekws_label(np.asarray(row["target"]))
            summary["positives" if txt >= 0 else "negatives"] += 1
        return json.dumps(obj, ensure_ascii=False) + "\n"

    def from_rows(handle) -> None:
        for row in run_rows(source):
            fields = _anchor_fields(row, per_frame)
            obj = {"key": row["utt_id"], "wav": row["audio_path"], "txt": wekws_label(np.asarray(row["target"])),
                   "duration": float(row["duration_s"]), **_segment_fields(row), **fields}
            handle.write(line(obj, row))

    def from_base(handle) -> None:
        rows = {row["utt_id"]: row for row in run_rows(source) if row["utt_id"] in wanted}
        for obj in base:
            row = rows.get(obj["key"])
            if row is None:
                summary["missing"] += 1
                if len(summary["missing_ids"]) < 10:
                    summary["missing_ids"].append(obj["key"])
                if missing == "error":
                    raise UsageError(f"data.list key {obj['key']!r} has no row in {run_dir} (missing='error')")
                if missing == "keep":
                    handle.write(line(obj, None))
                continue
            duration = obj.get("duration")
            if isinstance(duration, (int, float)) and abs(float(duration) - float(row["duration_s"])) > tolerance:
                raise UsageError(
                    f"data.list key {obj['key']!r} lasts {duration} s but its row lasts {row['duration_s']} s: "
                    "the run was made for other audio"
                )
            handle.write(line({**obj, **_segment_fields(row), **_anchor_fields(row, per_frame)}, row))

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            (from_rows if base is None else from_base)(handle)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out_path, write)
    return WekwsExport(
        lines=summary["lines"], positives=summary["positives"], negatives=summary["negatives"],
        missing=summary["missing"], missing_ids=tuple(summary["missing_ids"]), wekws_labels=tuple(wekws_labels),
        label_map=label_map, frame_shift_ms=frame_shift * 1000.0, grid=source.settings.get("grid"), out=str(out_path),
    )
