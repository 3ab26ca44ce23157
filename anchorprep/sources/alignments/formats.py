"""The one place that chooses an alignment reader: by format name, extension or content.

Single-utterance files (TextGrid, MFA csv/json, a CTM of one utterance) are read with
`read_alignment`. Multi-utterance files (a Kaldi CTM, possibly with a ``segments`` file; an
RTTM; a lhotse CutSet or SupervisionSet) are read whole, once per process, by
`read_utterances`, which keeps per-utterance errors apart so one bad line fails only its own
utterance. `utterance_alignment` is what a per-item caller uses: the alignment of one
utterance of any file, and whether its times are relative to the utterance already.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.lhotse import is_lhotse_manifest
from anchorprep.sources.alignments.model import Alignment, Tier
from anchorprep.sources.alignments.rttm import is_rttm
from anchorprep.sources.files import refuse_special_file
from anchorprep.storage import read_regular_bytes

_FORMATS = {
    "textgrid": "textgrid",
    "mfa-csv": "mfa-csv",
    "csv": "mfa-csv",
    "mfa-json": "mfa-json",
    "json": "mfa-json",
    "ctm": "ctm",
}
_EXTENSIONS = {".textgrid": "textgrid", ".csv": "mfa-csv", ".json": "mfa-json", ".ctm": "ctm"}


def read_alignment(
    path: str | os.PathLike[str], format: str = "auto", *, utterance: str | None = None
) -> Alignment:
    """Read an alignment file in any supported format.

    ``format="auto"`` picks the reader from the extension (case-insensitive): ``.TextGrid`` →
    `read_textgrid`, ``.csv`` → `read_mfa_csv`, ``.json`` → `read_mfa_json`, ``.ctm`` →
    `anchorprep.sources.alignments.ctm.read_ctm`. An unknown extension is an `InputError`; pass
    ``format`` ("textgrid", "mfa-csv"/"csv", "mfa-json"/"json", "ctm") to override.

    A CTM can hold many utterances: `utterance` picks one by its file id; without it the CTM
    must hold exactly one (use `read_ctm` to read them all at once). `utterance` is ignored for
    the other formats, which hold one alignment per file.
    """
    return _read_single(path, format, utterance, refuse_special=True)


def _read_single(path: str | os.PathLike[str], format: str, utterance: str | None, refuse_special: bool,
                 lazy: bool = False) -> Alignment:
    """`read_alignment`; `refuse_special` False when the caller has just refused special files,
    `lazy` for a TextGrid's deferred tiers (`read_textgrid`)."""
    kind = _resolve_format(path, format)
    if refuse_special:
        refuse_special_file(path)
    if kind == "textgrid":
        from anchorprep.sources.alignments.textgrid import read_textgrid

        return read_textgrid(path, lazy=lazy)
    if kind == "mfa-csv":
        from anchorprep.sources.alignments.mfa import read_mfa_csv

        return read_mfa_csv(path)
    if kind == "mfa-json":
        from anchorprep.sources.alignments.mfa import read_mfa_json

        return read_mfa_json(path)
    from anchorprep.sources.alignments.ctm import read_ctm

    return _one_utterance(read_ctm(path), utterance, os.fspath(path))


def _one_utterance(by_id: dict[str, Alignment], utterance: str | None, path: str) -> Alignment:
    if utterance is not None:
        if utterance in by_id:
            return by_id[utterance]
        raise InputError(f"no utterance {utterance!r} in the CTM (it has {len(by_id)} file ids)", path)
    if len(by_id) == 1:
        return next(iter(by_id.values()))
    if not by_id:
        raise InputError("the CTM has no alignment lines", path)
    first = ", ".join(repr(k) for k in list(by_id)[:3])
    raise InputError(
        f"the CTM holds {len(by_id)} utterances ({first}, ...); pass `utterance` or read it "
        "with read_ctm",
        path,
    )


def _resolve_format(path: str | os.PathLike[str], format: str) -> str:
    if format != "auto":
        try:
            return _FORMATS[format.lower()]
        except (KeyError, AttributeError):
            raise UsageError(
                f"unknown alignment format {format!r}; use 'auto' or one of {sorted(_FORMATS)}"
            ) from None
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _EXTENSIONS:
        raise InputError(
            f"unsupported alignment file extension {ext or '(none)'!r}: expected .TextGrid, .csv "
            "(MFA), .json (MFA) or .ctm; pass `format` to read it as one of those",
            os.fspath(path),
        )
    return _EXTENSIONS[ext]


# --------------------------------------------------------------------------------------------
# Multi-utterance files


@dataclass(frozen=True)
class Utterances:
    """A multi-utterance file read whole: alignments and per-utterance errors, both keyed by
    utterance id (recording id for an RTTM), and whether the times are utterance-relative."""

    alignments: dict[str, Alignment]
    errors: dict[str, InputError]
    utterance_relative: bool


def is_ctm(path: str | os.PathLike[str], format: str = "auto") -> bool:
    """Whether `path` is read as a CTM: ``format == "ctm"``, or ``"auto"`` and a ``.ctm`` name."""
    return format == "ctm" or (format == "auto" and os.fspath(path).lower().endswith(".ctm"))


@lru_cache(maxsize=64)
def _is_lhotse(path: str, format: str) -> bool:
    return is_lhotse_manifest(path, format)


def read_utterances(
    path: str | os.PathLike[str],
    format: str = "auto",
    *,
    encoding: str = "utf-8",
    level: str = "words",
    segments: str | None = None,
    lhotse_unit: str = "auto",
) -> Utterances | None:
    """The whole of a multi-utterance file, or None when `path` holds one utterance.

    Which reader: a lhotse manifest (`format` ``"lhotse"``, or ``"auto"`` and a cut or
    supervision as first record), an RTTM (``"rttm"`` or a ``.rttm`` name; keyed by recording,
    times recording-relative), a CTM (``"ctm"`` or a ``.ctm`` name; with `segments` cut into
    utterances). Each file is parsed once per process and option set (a CTM usually covers many
    utterances; the last few files are cached), so every item of a worker shares one parse.
    """
    path = os.fspath(path)
    refuse_special_file(path)
    if _is_lhotse(path, format):
        return _lhotse_utterances(path, lhotse_unit)
    if is_rttm(path, format):
        return _rttm_recordings(path, encoding)
    if is_ctm(path, format):
        return _ctm_utterances(path, encoding, level, segments)
    return None


def utterance_alignment(
    path: str | os.PathLike[str],
    key: str,
    format: str = "auto",
    *,
    encoding: str = "utf-8",
    level: str = "words",
    segments: str | None = None,
    lhotse_unit: str = "auto",
    reads: Callable[[Alignment], Iterable[Tier]] | None = None,
) -> tuple[Alignment, bool]:
    """The alignment of utterance (or recording) `key` in `path`, and whether its times are
    utterance-relative (False: relative to the start of the file's audio).

    A single-utterance file is its own alignment (`key` is not looked at). Raises the
    utterance's own `InputError` when its lines were malformed, and `InputError` when `key`
    is not in the file.

    `reads`, given the alignment, returns the tiers the caller will read (it can look at tier
    names, kinds and bounds). A TextGrid is then read with lazy tiers (`read_textgrid`): only
    those tiers are parsed and validated in full, here, so their damage raises the file's
    `InputError` from this call; the others are checked for structure only. If `reads`
    raises, every tier is validated, as without it.
    """
    if _plain_textgrid(path, format):  # what the general path below does for it, in fewer steps
        from anchorprep.sources.alignments.textgrid import (
            decode_textgrid_bytes, parse_textgrid_text, read_textgrid_bytes,
        )

        data = read_regular_bytes(path)
        if data is None:  # not a regular local file: refused or named as below
            refuse_special_file(path)
            data = read_textgrid_bytes(path)
        text, used = decode_textgrid_bytes(data, path)
        return _loaded(parse_textgrid_text(text, path=path, encoding=used, lazy=reads is not None), reads), False
    whole = read_utterances(path, format, encoding=encoding, level=level, segments=segments,
                            lhotse_unit=lhotse_unit)
    if whole is None:  # read_utterances has refused special files already
        alignment = _read_single(path, format, None, refuse_special=False, lazy=reads is not None)
        return _loaded(alignment, reads), False
    if key in whole.errors:
        raise whole.errors[key]
    if key not in whole.alignments:
        raise InputError(f"{key!r} is not in this alignment file", os.fspath(path))
    return whole.alignments[key], whole.utterance_relative


def _plain_textgrid(path, format: str) -> bool:
    """Whether `path` is a local path (a `str` without ``://``) that `read_utterances` returns
    None for and `_read_single` reads as a TextGrid: `format` "textgrid", or "auto" and a
    ``.TextGrid`` extension (any case)."""
    return type(path) is str and "://" not in path and (
        format == "textgrid" or format == "auto" and os.path.splitext(path)[1].lower() == ".textgrid")


def _loaded(alignment: Alignment, reads: Callable[[Alignment], Iterable[Tier]] | None) -> Alignment:
    """`alignment` with the tiers `reads` names loaded (see `utterance_alignment`)."""
    if reads is not None:
        try:
            needed = list(reads(alignment))
        except Exception:  # noqa: BLE001 - the caller raises it again where it reads the tiers
            needed = alignment.tiers
        for tier in needed:
            tier.load()
    return alignment


@lru_cache(maxsize=4)
def _ctm_utterances(path: str, encoding: str, level: str, segments: str | None) -> Utterances:
    from anchorprep.sources.alignments.ctm import ctm_to_utterances, read_ctm
    from anchorprep.sources.kaldi import read_segments

    errors: dict[str, InputError] = {}
    by_file = read_ctm(path, encoding=encoding, level=level, errors=errors)
    if segments is None:
        return Utterances(by_file, errors, True)
    segment_errors: dict[str, InputError] = {}
    table = read_segments(segments, errors=segment_errors)
    utterances = ctm_to_utterances(by_file, table, errors=segment_errors)
    for utt, segment in table.items():
        if segment.recording in errors and utt not in utterances:
            segment_errors.setdefault(utt, errors[segment.recording])
    return Utterances(utterances, segment_errors, True)


@lru_cache(maxsize=4)
def _lhotse_utterances(path: str, unit: str) -> Utterances:
    from anchorprep.sources.alignments.lhotse import read_lhotse

    errors: dict[str, InputError] = {}
    return Utterances(read_lhotse(path, unit=unit, errors=errors), errors, True)


@lru_cache(maxsize=4)
def _rttm_recordings(path: str, encoding: str) -> Utterances:
    from anchorprep.sources.alignments.rttm import read_rttm

    errors: dict[str, InputError] = {}
    return Utterances(read_rttm(path, encoding=encoding, errors=errors), errors, False)
