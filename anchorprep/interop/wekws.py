"""WeKws ``data.list`` files with anchorprep anchors and per-frame targets.

What WeKws reads (wenet-e2e/wekws at 1a8ee65, wenet-e2e/wenet at 0154699): ``wekws/bin/train.py``
builds ``CharTokenizer("dict/dict.txt", "dict/words.txt", unk="<filler>", split_with_space=True)``
and ``wekws/dataset/init_dataset.py`` hands the list to wenet's ``wenet/dataset/dataset.py``
(``data_type="raw"``). Its ``wenet/dataset/processor.py`` then, per line:

* ``parse_json``: ``json.loads`` of the line; ``decode_wav`` needs ``key`` and ``wav`` and, when
  the line has ``start``, also ``end`` (seconds), and loads samples ``int(start * sr)`` up to
  ``int(end * sr)`` of the file (``sr`` = the file's own rate), else the whole file;
* ``tokenize``: ``CharTokenizer.tokenize(txt)``, so ``txt`` must be a ``str``: upper-cased and
  split on non-linguistic symbols ``<...>``; a symbol listed in ``words.txt`` becomes one token,
  whose id is its number in ``dict.txt`` (the recipes' ``<FILLER> -1``, ``<HEY_SNIPS> 0``);
* ``filter`` drops a line whose token list is empty; ``detect_language`` also reads ``txt``.

``wekws/bin/compute_det.py`` then compares ``txt.upper()`` with each keyword of ``dict``.

`export_wekws(run_dir, out_path)` writes one line per shard row::

    {"key": utt_id, "wav": audio_path, "txt": "<PRESS>", "duration": 1.5977,
     "start": 0.0, "end": 1.5977, "num_frames": 157, "anchor_times": [1.09],
     "anchor_frames": [107], "anchor_labels": ["press"], "target": [0, ...], "distance": [-107, ...]}

* ``txt``: the keyword token (`wekws_token`: ``<`` + the label upper-cased, runs of other than
  letters, digits and ``_`` made ``_`` + ``>``) of the class of the first positive frame of
  ``target``, or ``<FILLER>`` when no frame is positive. anchorprep class ``k`` (``label_map``,
  0 = background) is WeKws keyword index ``k - 1`` (`wekws_label`); with ``dict_dir`` the
  matching ``dict.txt`` (``<FILLER> -1``, then each token and its index) and ``words.txt`` are
  written too. Set ``num_keywords`` in the WeKws config to the number of keywords.
* ``start``/``end`` on every line (the row's segment of the file, also when it starts at 0),
  chosen so that wenet's ``int(t * sr)`` gives exactly the row's first and end sample: the loaded
  audio has the row's duration, hence its ``num_frames``.
* ``target`` / ``distance`` (``per_frame=True``): the shard columns, one value per model frame
  on the run's grid. WeKws computes ``kaldi.fbank``/``mfcc`` with ``snip_edges=True``, 25 ms /
  10 ms at ``resample_rate`` (16 kHz): anchorprep's default grid, so ``num_frames`` equals its
  feature count. WeKws' ``frame_skip: s`` keeps feature frames 0, s, 2s, ... (``ceil(T/s)``);
  anchorprep's ``--subsampling s`` labels blocks ``[js, js+s)`` (``T // s`` frames, the causal
  anchor rule using a block's last feature frame): export with ``--subsampling s``, pad the last
  frame when the counts differ by one, and expect the anchor up to ``s - 1`` feature frames
  earlier than on WeKws' grid.
* With ``base_list`` (a ``data.list`` made by WeKws' ``tools/make_list.py``, e.g. with token ids
  for CTC), every line of it keeps its own fields and gains ``start``/``end`` and the anchor
  fields of its ``key``; ``txt`` is then left alone.

What a WeKws user does with them: wenet's pipeline ignores unknown keys until ``padding``, which
batches only ``feat`` and ``label``, so the file trains as before. For Streaming Anchor Loss,
carry ``target`` and ``distance`` through ``padding`` (pad with -100 and 32767) and replace the
max-pooling loss by the per-frame loss of `anchorprep.loss` (SAL, or SAFL) on the model's
``(B, T, num_keywords)`` outputs, with weights from ``distance`` (``AnchorWeightConfig``); or
keep max-pooling and use ``anchor_frames`` to restrict the positive max to frames near the
anchor. ``anchor_times`` give the latency reference for evaluation (docs/FORMAT.md, "Evaluation").

A row without ``audio_path`` is refused (`UsageError`) unless ``base_list`` supplies ``wav``. When no
key of ``base_list`` has a row, `NoKeyMatchedError` (the CLI exits 1) and nothing is written.
The file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from anchorprep.data.source import open_source
from anchorprep.errors import AnchorprepError, UsageError
from anchorprep.interop._run import model_frame_shift_s, run_rows
from anchorprep.shards.io import write_atomic
from anchorprep.storage import read_bytes, local_output

MISSING = ("drop", "keep", "error")
#: The recipes' token for an utterance without a keyword (``dict.txt``: ``<FILLER> -1``).
FILLER_TOKEN = "<FILLER>"
_NOT_TOKEN_CHARACTERS = re.compile(r"[^A-Z0-9_]+")


def wekws_label(target: np.ndarray) -> int:
    """WeKws keyword index of a row: the class of the first positive frame minus 1, or -1."""
    positive = np.flatnonzero(target > 0)
    return int(target[positive[0]]) - 1 if len(positive) else -1


def wekws_token(label: str) -> str:
    """The WeKws keyword token of an anchorprep label: ``"hey computer"`` -> ``"<HEY_COMPUTER>"``.

    Upper case, because wenet's ``CharTokenizer`` upper-cases ``txt`` before it looks symbols up;
    no spaces or angle brackets, because ``dict.txt`` lines split on whitespace and a symbol is
    one ``<...>`` group.
    """
    name = _NOT_TOKEN_CHARACTERS.sub("_", label.upper()).strip("_")
    if not name:
        raise UsageError(f"label {label!r} has no letter or digit to make a WeKws token of")
    return f"<{name}>"


def _tokens(label_map: dict[str, int]) -> list[str]:
    """Keyword tokens in WeKws index order (anchorprep class k -> index k - 1); unique."""
    labels = [name for name, cid in sorted(label_map.items(), key=lambda kv: kv[1]) if cid > 0]
    tokens = [wekws_token(label) for label in labels]
    seen: dict[str, str] = {FILLER_TOKEN: "(negatives)"}
    for label, token in zip(labels, tokens):
        if token in seen:
            raise UsageError(f"labels {seen[token]!r} and {label!r} both become the WeKws token {token}; rename one")
        seen[token] = label
    return tokens


def wenet_seconds(sample: int, sample_rate: int) -> float:
    """A time ``t`` (seconds, as short as possible) with ``int(t * sample_rate) == sample``: what
    wenet's ``decode_wav`` turns ``start``/``end`` into (``int(sample['start'] * sample_rate)``)."""
    for digits in (3, 4, 5, 6, 7, 8, 9):
        t = round(sample / sample_rate, digits)
        if int(t * sample_rate) == sample:
            return t
    t = sample / sample_rate
    while int(t * sample_rate) < sample:
        t = math.nextafter(t, math.inf)
    return t


def _segment_fields(row: dict) -> dict:
    """``start``/``end`` of the row in its audio file, exact in samples at the file's rate."""
    rate = int(row["sample_rate"])
    first = int(round(float(row["start_s"] or 0.0) * rate))
    samples = int(round(float(row["duration_s"]) * rate))
    return {"start": wenet_seconds(first, rate), "end": wenet_seconds(first + samples, rate)}


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


def _read_base(path: Path) -> list[dict]:
    lines = []
    try:
        text = read_bytes(path).decode("utf-8")
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


def _write_dict(dict_dir: Path, tokens: list[str]) -> None:
    """WeKws' ``dict/dict.txt`` (token and index, ``<FILLER> -1`` first) and ``dict/words.txt``."""
    dict_dir.mkdir(parents=True, exist_ok=True)
    entries = [(FILLER_TOKEN, -1)] + [(token, index) for index, token in enumerate(tokens)]
    write_atomic(dict_dir / "dict.txt", lambda tmp: Path(tmp).write_text(
        "".join(f"{token} {index}\n" for token, index in entries), encoding="utf-8"))
    write_atomic(dict_dir / "words.txt", lambda tmp: Path(tmp).write_text(
        "".join(f"{token}\n" for token, _ in entries), encoding="utf-8"))


class NoKeyMatchedError(AnchorprepError):
    """No key of the base ``data.list`` has a row in the run: nothing to export (the CLI exits 1)."""


@dataclass(frozen=True)
class WekwsExport:
    """What `export_wekws` wrote: line counts, base-list keys without a row (``missing``, first
    10 in ``missing_ids``), ``wekws_labels`` (keyword index -> anchorprep label) and
    ``wekws_tokens`` (keyword index -> ``txt`` token), the grid."""

    lines: int
    positives: int
    negatives: int
    missing: int
    missing_ids: tuple[str, ...]
    wekws_labels: tuple[str, ...]
    wekws_tokens: tuple[str, ...]
    label_map: dict[str, int]
    frame_shift_ms: float
    grid: dict
    out: str

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(missing_ids=list(self.missing_ids), wekws_labels=list(self.wekws_labels),
                    wekws_tokens=list(self.wekws_tokens))
        return data


def export_wekws(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    base_list: str | os.PathLike | None = None,
    dict_dir: str | os.PathLike | None = None,
    per_frame: bool = True,
    missing: str = "drop",
) -> WekwsExport:
    """Write a WeKws ``data.list`` with anchor fields (see the module docstring).

    Args:
        run_dir: an anchorprep output folder (or shard file / list of shard files).
        out_path: the ``data.list`` to write.
        base_list: an existing WeKws ``data.list`` to extend (its order and fields are kept).
        dict_dir: also write WeKws' ``dict.txt`` and ``words.txt`` for the ``txt`` tokens there.
        per_frame: include the per-frame ``target`` and ``distance`` lists.
        missing: with ``base_list``, what to do with a line whose key has no row: ``drop``,
            ``keep`` (unchanged) or ``error``.

    Returns:
        A `WekwsExport` summary (JSON: ``.to_dict()``).
    """
    if missing not in MISSING:
        raise UsageError(f"`missing` must be one of {', '.join(MISSING)}, not {missing!r}")
    source = open_source(run_dir)
    frame_shift = model_frame_shift_s(source)
    label_map = source.label_map
    tokens = _tokens(label_map)
    base = _read_base(Path(base_list)) if base_list is not None else None
    wanted = None if base is None else {obj["key"] for obj in base}

    # Pass 1 (scalar columns only): refuse rows WeKws cannot load before writing anything.
    if base is None:
        no_audio = [row["utt_id"] for row in run_rows(source, ("utt_id", "audio_path")) if not row["audio_path"]]
        if no_audio:
            raise UsageError(
                f"{len(no_audio)} rows have no audio_path (first: {no_audio[0]!r}); WeKws loads each line's 'wav': "
                "run anchorprep with audio, or pass `base_list` with the wav paths"
            )

    summary = {"lines": 0, "positives": 0, "negatives": 0, "missing": 0, "missing_ids": []}
    tolerance = frame_shift + 1e-6

    def line(obj: dict, row: dict | None) -> str:
        summary["lines"] += 1
        if row is not None:
            summary["positives" if wekws_label(np.asarray(row["target"])) >= 0 else "negatives"] += 1
        return json.dumps(obj, ensure_ascii=False) + "\n"

    def txt(row: dict) -> str:
        index = wekws_label(np.asarray(row["target"]))
        return tokens[index] if index >= 0 else FILLER_TOKEN

    def from_rows(handle) -> None:
        for row in run_rows(source):
            obj = {"key": row["utt_id"], "wav": row["audio_path"], "txt": txt(row),
                   "duration": float(row["duration_s"]), **_segment_fields(row), **_anchor_fields(row, per_frame)}
            handle.write(line(obj, row))

    rows = None if base is None else {row["utt_id"]: row for row in run_rows(source) if row["utt_id"] in wanted}
    if base and not rows:
        raise NoKeyMatchedError(
            f"no key of {base_list} ({len(wanted)} keys) has a row in {run_dir}: make the run from the same "
            "utterances (each row's utt_id is its data.list key)"
        )

    def from_base(handle) -> None:
        for obj in base:
            row = rows.get(obj["key"])
            if row is None:
                summary["missing"] += 1
                if len(summary["missing_ids"]) < 10:
                    summary["missing_ids"].append(obj["key"])
                if missing == "error":
                    raise UsageError(f"data.list key {obj['key']!r} has no row in {run_dir} (`missing` is 'error')")
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

    out_path = local_output(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out_path, write)
    if dict_dir is not None:
        _write_dict(local_output(dict_dir), tokens)
    labels = tuple(name for name, cid in sorted(label_map.items(), key=lambda kv: kv[1]) if cid > 0)
    return WekwsExport(
        lines=summary["lines"], positives=summary["positives"], negatives=summary["negatives"],
        missing=summary["missing"], missing_ids=tuple(summary["missing_ids"]), wekws_labels=labels,
        wekws_tokens=tuple(tokens), label_map=label_map, frame_shift_ms=frame_shift * 1000.0,
        grid=source.settings.get("grid"), out=str(out_path),
    )
