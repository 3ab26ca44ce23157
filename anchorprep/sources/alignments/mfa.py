"""Montreal Forced Aligner CSV and JSON alignments (``mfa align --output_format csv|json``).

Both are read into an `Alignment` whose tier names follow MFA's own TextGrid naming: ``words``
and ``phones`` when the file has one speaker, ``"{speaker} - words"`` / ``"{speaker} - phones"``
when it has several (so `select_word_tier(alignment, speaker=...)` works the same on all three
output formats). The speakers, in file order, are in ``alignment.meta["speakers"]``.

CSV (MFA 2.x/3.x): a header ``Begin,End,Label,Type,Speaker`` (names compared case-insensitively;
``Speaker`` may be missing) and one row per interval; ``Type`` is the tier kind MFA exported
(``words``, ``phones``, and ``utterances`` with ``--include_original_text``). The file has no
duration, so the alignment spans 0 to the latest interval end.

JSON (MFA 3.x, the same layout as praatio's "json" format)::

    {"start": 0, "end": 1.36,
     "tiers": {"words": {"type": "interval", "entries": [[0.0, 0.55, "montreal"], ...]},
               "phones": {...}}}

with tier keys ``"{speaker} - words"`` when several speakers. Also accepted: tiers nested per
speaker (``"tiers": {"michael": {"words": {...}, "phones": {...}}}``), point tiers
(``"type": "point"``, entries ``[time, label]``) and praatio's "textgrid_json" layout
(``xmin``/``xmax`` and a list of tiers with ``class``/``name``/``xmin``/``xmax``/``entries``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from anchorprep.errors import InputError
from anchorprep.sources.alignments.model import Alignment, Tier, build_tier, checked_time
from anchorprep.storage import read_bytes

__all__ = ["read_mfa_csv", "read_mfa_json"]

_CSV_REQUIRED = ("begin", "end", "label", "type")
_POINT_TYPES = {"point", "texttier"}
_INTERVAL_TYPES = {"interval", "intervaltier"}


def _read_text(path: str) -> str:
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise InputError(f"cannot read alignment file: {exc.strerror or exc}", path) from None
    if not data.strip():
        raise InputError("empty file", path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 ({exc.reason} at byte {exc.start}); MFA writes UTF-8", path
        ) from None


def _tier_name(speaker: str, kind: str, several: bool) -> str:
    return f"{speaker} - {kind}" if several else kind


# --------------------------------------------------------------------------------------------
# CSV


def read_mfa_csv(path: str | os.PathLike[str]) -> Alignment:
    """Read an MFA ``--output_format csv`` file (see the module docstring)."""
    where = os.fspath(path)
    reader = csv.reader(io.StringIO(_read_text(where), newline=""))
    try:
        header = next(reader)
        columns = _csv_columns(header, where)
        groups: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"line {reader.line_num}: {len(row)} fields, the header has {len(header)}", where
                )
            speaker = row[columns["speaker"]].strip() if "speaker" in columns else ""
            kind = row[columns["type"]].strip()
            if not kind:
                raise InputError(f"line {reader.line_num}: empty Type (expected words or phones)", where)
            entry = (row[columns["begin"]], row[columns["end"]], row[columns["label"]])
            groups.setdefault((speaker, kind), []).append(entry)
    except csv.Error as exc:
        raise InputError(f"malformed CSV at line {reader.line_num}: {exc}", where) from None
    if not groups:
        raise InputError("MFA CSV has a header but no intervals", where)
    speakers = list(dict.fromkeys(speaker for speaker, _ in groups))
    several = len(speakers) > 1
    tiers = [
        build_tier(_tier_name(speaker, kind, several), entries, "interval", path=where)
        for (speaker, kind), entries in groups.items()
    ]
    return _alignment(tiers, 0.0, None, where, "mfa-csv", [s for s in speakers if s])


def _csv_columns(header: list[str], path: str) -> dict[str, int]:
    columns = {name.strip().casefold(): i for i, name in enumerate(header)}
    missing = [name for name in _CSV_REQUIRED if name not in columns]
    if missing:
        raise InputError(
            f"not an MFA CSV: missing column(s) {', '.join(m.capitalize() for m in missing)}; "
            f"expected Begin,End,Label,Type,Speaker, found {','.join(header)[:120]!r}",
            path,
        )
    return columns


def _alignment(
    tiers: list[Tier], xmin: float, xmax: float | None, path: str, fmt: str, speakers: list[str]
) -> Alignment:
    latest = max((iv.end for t in tiers for iv in t.intervals), default=xmin)
    if xmax is None:
        xmax = latest
    if xmin > xmax:
        raise InputError(f"alignment start {xmin} > end {xmax}", path)
    return Alignment(
        tiers=tuple(tiers), xmin=xmin, xmax=xmax, path=path, meta={"format": fmt, "speakers": speakers}
    )


# --------------------------------------------------------------------------------------------
# JSON


def read_mfa_json(path: str | os.PathLike[str]) -> Alignment:
    """Read an MFA ``--output_format json`` file (see the module docstring)."""
    where = os.fspath(path)
    try:
        doc = json.loads(_read_text(where))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"not valid JSON: {exc}", where) from None
    if not isinstance(doc, dict) or "tiers" not in doc:
        raise InputError("not an MFA JSON alignment: expected an object with a 'tiers' key", where)
    if isinstance(doc["tiers"], list):
        return _textgrid_json(doc, where)
    if not isinstance(doc["tiers"], dict):
        raise InputError("'tiers' should be an object mapping tier names to tiers", where)
    xmin = checked_time(doc.get("start", 0.0), "'start'", where)
    xmax = None if doc.get("end") is None else checked_time(doc["end"], "'end'", where)
    raw_tiers, speakers = _flatten_speakers(doc["tiers"], where)
    tiers = [_json_tier(name, raw, where) for name, raw in raw_tiers]
    if not tiers:
        raise InputError("MFA JSON has no tiers", where)
    return _alignment(tiers, xmin, xmax, where, "mfa-json", speakers)


def _is_tier(value: Any) -> bool:
    return isinstance(value, dict) and "entries" in value


def _flatten_speakers(tiers: dict, path: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """(tier name, raw tier) pairs; tiers nested per speaker get MFA's TextGrid names."""
    if all(_is_tier(v) for v in tiers.values()):
        found = [name.rpartition(" - ")[0] for name in tiers if " - " in name]
        return list(tiers.items()), list(dict.fromkeys(found))
    for speaker, value in tiers.items():
        if not isinstance(value, dict) or not value or not all(_is_tier(v) for v in value.values()):
            raise InputError(
                f"tier {speaker!r} is neither a tier (an object with 'entries') nor a speaker's "
                "set of tiers",
                path,
            )
    several = len(tiers) > 1
    flat = [
        (_tier_name(speaker, kind, several), raw)
        for speaker, by_kind in tiers.items()
        for kind, raw in by_kind.items()
    ]
    return flat, list(tiers)


def _json_tier(name: str, raw: dict, path: str) -> Tier:
    kind = str(raw.get("type", raw.get("class", "interval"))).casefold()
    entries = raw["entries"]
    if not isinstance(entries, list):
        raise InputError(f"entries of tier {name!r} should be a list", path)
    if kind in _POINT_TYPES:
        return build_tier(name, entries, "point", raw.get("xmin"), raw.get("xmax"), path)
    if kind in _INTERVAL_TYPES:
        return build_tier(name, entries, "interval", raw.get("xmin"), raw.get("xmax"), path)
    raise InputError(f"tier {name!r} has unknown type {kind!r} (expected interval or point)", path)


def _textgrid_json(doc: dict, path: str) -> Alignment:
    """praatio's "textgrid_json": {"xmin", "xmax", "tiers": [{"class", "name", ...}]}."""
    xmin = checked_time(doc.get("xmin", 0.0), "'xmin'", path)
    xmax = None if doc.get("xmax") is None else checked_time(doc["xmax"], "'xmax'", path)
    tiers = []
    for i, raw in enumerate(doc["tiers"], 1):
        if not _is_tier(raw) or not isinstance(raw.get("name"), str):
            raise InputError(f"tier {i} should be an object with 'name' and 'entries'", path)
        tiers.append(_json_tier(raw["name"], raw, path))
    if not tiers:
        raise InputError("JSON alignment has no tiers", path)
    speakers = list(dict.fromkeys(t.name.rpartition(" - ")[0] for t in tiers if " - " in t.name))
    return _alignment(tiers, xmin, xmax, path, "textgrid-json", speakers)
