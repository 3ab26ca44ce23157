"""Input item lists: manifests (CSV, TSV, JSONL, Parquet) and folder discovery.

Items are kept as a string-typed DataFrame in input order: numbers are parsed per item by the job,
so one bad cell fails one item (an `errors.jsonl` line), not the whole run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from anchorprep.errors import UsageError

MANIFEST_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
PATH_COLUMNS = ("audio_path", "alignment_path", "accel_path", "anchors_path")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
ALIGNMENT_SUFFIXES = (".textgrid",)


def read_manifest(path: Path, required: tuple[str, ...] = ("utt_id",)) -> pd.DataFrame:
    """Read a manifest into a DataFrame of strings ("" for missing); resolve relative paths.

    Relative values in path columns resolve against the manifest's folder. Raises `UsageError`
    (exit 2) when the file itself is unusable: unknown format, not UTF-8, required column missing.
    """
    path = Path(path)
    fmt = MANIFEST_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unknown manifest format; use one of {', '.join(MANIFEST_FORMATS)}")
    if not path.is_file():
        raise UsageError(f"{path}: manifest not found")
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(
                path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                encoding="utf-8-sig",
            )
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: manifest is not UTF-8 ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path}: cannot read manifest: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: manifest lacks column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    base = path.parent.resolve()
    for column in PATH_COLUMNS:
        if column in frame.columns:
            frame[column] = [_resolve(value, base) for value in frame[column]]
    return frame.reset_index(drop=True)


def _resolve(value: str, base: Path) -> str:
    if not value or os.path.isabs(value):
        return value
    return str(base / value)


def discover_pairs(alignment_dir: Path, audio_dir: Path | None = None) -> pd.DataFrame:
    """Pair ``X.TextGrid`` with ``X.wav|flac|ogg`` recursively (MFA's output layout).

    MFA writes alignments to an output folder mirroring the corpus folder, so ``audio_dir``
    (default: the alignment folder) is searched at the same relative path. Item ids are the
    relative paths without suffix, in sorted order; an alignment with no audio gets an empty
    ``audio_path`` (its duration then comes from the alignment).
    """
    alignment_dir = Path(alignment_dir)
    audio_dir = Path(audio_dir) if audio_dir is not None else alignment_dir
    if not alignment_dir.is_dir():
        raise UsageError(f"{alignment_dir}: not a folder")
    rows = []
    for grid_path in sorted(p for p in alignment_dir.rglob("*") if p.suffix.lower() in ALIGNMENT_SUFFIXES):
        relative = grid_path.relative_to(alignment_dir).with_suffix("")
        audio = next(
            (audio_dir / relative.with_suffix(s) for s in AUDIO_SUFFIXES if (audio_dir / relative.with_suffix(s)).is_file()),
            None,
        )
        rows.append({"utt_id": relative.as_posix(), "audio_path": "" if audio is None else str(audio),
                     "alignment_path": str(grid_path)})
    if not rows:
        raise UsageError(f"{alignment_dir}: no .TextGrid files found")
    _require_utf8_names(rows)
    return pd.DataFrame(rows, dtype=str)


def _require_utf8_names(rows: list[dict]) -> None:
    """File names that are not UTF-8 (e.g. Latin-1 bytes from an old corpus) cannot become
    utt_ids or Parquet strings: a usage error naming the file, not a crash."""
    for row in rows:
        for value in reversed(list(row.values())):  # the path columns come after utt_id
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raw = os.fsencode(value)
                raise UsageError(
                    f"file name is not UTF-8: {raw!r}; rename it (e.g. convmv -f latin1 -t utf8) "
                    "or list the items in a UTF-8 manifest"
                ) from None


def discover_files(folder: Path, suffixes: tuple[str, ...], column: str) -> pd.DataFrame:
    """Every file with one of ``suffixes`` under ``folder`` (recursive, sorted) as an item.

    Ids are relative paths without suffix, as for `discover_pairs`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise UsageError(f"{folder}: no {'/'.join(suffixes)} files found")
    rows = [{"utt_id": p.relative_to(folder).with_suffix("").as_posix(), column: str(p)} for p in files]
    _require_utf8_names(rows)
    return pd.DataFrame(rows, dtype=str)


def add_search_region(items: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Set ``search_start_s`` from an earlier run's anchors (e.g. the end of a wake word).

    Items of utterances that the earlier run has no anchor for get an empty search region
    (``search_start_s`` = ``search_end_s`` = 0), so they carry no onset anchor. ``run_dir`` must
    be a finished run (`open_run`).
    """
    from anchorprep.shards.run import open_run

    first_anchor: dict[str, float] = {}
    for row in open_run(run_dir).iter_rows(["utt_id", "anchor_times_s"]):
        if len(row["anchor_times_s"]):
            first_anchor[row["utt_id"]] = float(row["anchor_times_s"].min())
    items = items.copy()
    items["search_start_s"] = [repr(first_anchor[u]) if u in first_anchor else "0" for u in items["utt_id"]]
    items["search_end_s"] = ["" if u in first_anchor else "0" for u in items["utt_id"]]
    return items


def read_wav_scp(path: Path) -> dict[str, str]:
    """A Kaldi ``wav.scp`` (``id path`` lines); piped commands are refused (extract them first)."""
    mapping = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if value.endswith("|"):
            raise UsageError(f"{path}:{number}: piped wav.scp entries are not supported; extract the audio to files first")
        mapping[key] = value
    return mapping
