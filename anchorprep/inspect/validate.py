"""`anchorprep validate`: check a run folder against the format (docs/FORMAT.md).

`validate_run` reads manifest.json, every shard, errors.jsonl and report.json and recomputes what
can be recomputed from them: hashes, row counts, frame counts, anchor frames (from the anchor
times, grid and anchor rule), distances (from the anchor frames the distance uses), window targets,
the settings hash and the report's counters, and that each shard is written as anchorprep writes
it (one row group, zstd). Given ``inputs`` (or for a merge run, with ``deep``) it checks the
deterministic shard plan: each shard holds exactly its planned items, in input order, and each
errors.jsonl line names the utt_id of its input row. With ``deep=N`` it also re-derives a sample of
N rows from their inputs by re-running the command's job on the original item and compares every
column.

Every finding is a `Problem`; a run is valid when there are none. Findings that do not make the
run invalid (e.g. a deep check that had to rebuild items from the shards) are `notes`.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from anchorprep.anchors import ANCHOR_SOURCES, BACKGROUND, anchor_distances, frame_targets, source_kind
from anchorprep.errors import UsageError
from anchorprep.inspect.runs import combine_of, command_items, job_settings_mismatch, rebuild_job, used_mask
from anchorprep.pipeline.runner import ItemFailure, inputs_fingerprint
from anchorprep.shards import SCHEMA_VERSION, read_settings, shard_schema
from anchorprep.shards.io import SHARD_COMPRESSION, sha256_file
from anchorprep.shards.schema import WEIGHT_COLUMN
from anchorprep.shards.weights import WeightSettings
from anchorprep.storage import location, parquet_file, read_table
from anchorprep.shards.run import (
    ERRORS_FILE, MANIFEST_FILE, REPORT_FILE, RUN_SETTINGS_FILE, RunFolder, RunSettings, check_folder, iter_rows,
    settings_hash, shard_count, shard_file, shard_name, shard_name_problem,
)

#: Problems kept per check; the rest are only counted (`ValidationReport.omitted`).
MAX_PROBLEMS_PER_CHECK = 200

CHECKS = {
    "layout": "manifest.json, errors.jsonl, report.json and exactly the planned shard files exist",
    "manifest": "manifest.json is well formed and agrees with its own settings",
    "schema": "schema version supported; every shard has the format's columns and types",
    "settings": "settings_sha256 matches the settings; the settings describe a valid grid and label map",
    "metadata": "each shard's Parquet metadata equals the manifest settings",
    "sha256": "each shard's sha256 matches manifest.json",
    "format": f"each shard is one row group, every column {SHARD_COMPRESSION}-compressed (as anchorprep writes it)",
    "row_count": "each shard's row count matches manifest.json",
    "utt_id": "utt_ids are non-empty and unique across shards",
    "lengths": "len(distance) == len(target) == num_frames; the anchor lists have equal lengths",
    "num_frames": "num_frames matches duration_s and sample_rate on the stored grid",
    "anchors": "anchor times are finite and sorted, labels are in the label map, sources are known",
    "anchor_frames": "anchor frames lie in [0, num_frames) and equal FrameGrid.time_to_frame(times)",
    "distance": "distances equal anchor_distances(frames of the anchors the distance uses)",
    "target": "window targets equal frame_targets(...); vad targets are 0/1",
    "errors": "errors.jsonl lines are well formed and each names its item's shard",
    "report": "report.json counts equal what the shards and errors.jsonl hold",
    "items": "every input item is in exactly one place: a shard row or an errors.jsonl line",
    "plan": "with the inputs: each shard holds its planned items in input order; error lines name their row's utt_id",
    "deep": "a sample of rows re-derived from their inputs equals the stored rows",
}


@dataclass
class _RawRun:
    """The run as its files hold it (validate checks the raw JSON; `typed` once the settings parse)."""

    out: Path
    manifest: dict
    settings: dict
    typed: RunSettings | None = None

    @property
    def shard_files(self) -> list[str]:
        return [s.get("file", "") for s in self.manifest.get("shards", [])]

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.out)

    @property
    def command(self) -> str:
        return str(self.settings.get("command", ""))


@dataclass(frozen=True)
class Problem:
    """One finding: which check, where (shard file, utt_id; None when run-wide), and what."""

    check: str
    shard: str | None
    utt_id: str | None
    detail: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.shard, repr(self.utt_id) if self.utt_id is not None else None) if part)
        return f"[{self.check}] {where + ': ' if where else ''}{self.detail}"


@dataclass
class ValidationReport:
    """The outcome of `validate_run`: problems (empty when valid), what was checked, and notes."""

    out: Path
    problems: list[Problem] = field(default_factory=list)
    checked: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    omitted: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.omitted

    @property
    def problem_count(self) -> int:
        return len(self.problems) + sum(self.omitted.values())

    def counts_by_check(self) -> dict[str, int]:
        counts = Counter(p.check for p in self.problems)
        counts.update(self.omitted)
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict:
        return {
            "out": str(self.out), "ok": self.ok, "problem_count": self.problem_count,
            "problems_by_check": self.counts_by_check(), "problems": [asdict(p) for p in self.problems],
            "omitted": dict(self.omitted), "checked": self.checked, "notes": list(self.notes),
        }


class _Collector:
    """Adds problems to a report, keeping at most `MAX_PROBLEMS_PER_CHECK` per check."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.kept: Counter = Counter()

    def __call__(self, check: str, detail: str, shard: str | None = None, utt_id: str | None = None) -> None:
        if self.kept[check] >= MAX_PROBLEMS_PER_CHECK:
            self.report.omitted[check] = self.report.omitted.get(check, 0) + 1
            return
        self.kept[check] += 1
        self.report.problems.append(Problem(check, shard, utt_id, detail))


def validate_run(out: Path, deep: int = 0, inputs: Path | None = None, seed: int = 0) -> ValidationReport:
    """Check the run in ``out``; ``deep=N`` also re-derives N sampled rows from their inputs.

    ``inputs`` is the manifest, folder or CTM the run read. Deep checks of `align` and `accel` runs
    need it (their shards do not store alignment or sensor paths); `vad` rows carry their audio
    segment and `merge` runs name their input runs, so those work without it.

    Raises `UsageError` when ``out`` is not a run folder, or when ``deep`` is asked for and cannot
    be done at all (missing ``inputs``); everything wrong *inside* the run is a `Problem`.
    """
    out = check_folder(out)
    if deep < 0:
        raise UsageError("`deep` must be >= 0")
    report = ValidationReport(out)
    problem = _Collector(report)
    folder = RunFolder(out)
    if not folder.manifest_file.is_file():
        if folder.settings_file.is_file():
            done = len(list(folder.done_dir.glob("*.json")))
            problem("layout", f"no {MANIFEST_FILE}: the run is unfinished ({done} shard(s) done); finish it "
                              "(resume) or run `anchorprep assemble` when every shard is done")
            return report
        if folder.is_data_dir:
            raise UsageError(f"{out}: no {MANIFEST_FILE}; give the run folder {out.parent}, not its data/ folder")
        raise UsageError(f"{out}: no {MANIFEST_FILE}; is this the output folder of an anchorprep run?")
    try:
        manifest = json.loads(folder.manifest_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem("manifest", f"{MANIFEST_FILE} is not valid JSON: {exc}")
        return report
    if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
        problem("manifest", f"{MANIFEST_FILE} has no settings object")
        return report
    settings = manifest["settings"]
    run = _RawRun(out, manifest, settings)
    if deep:
        _check_deep_possible(run, inputs)

    elif inputs is not None and run.command == "merge":
        raise UsageError("`inputs` does not apply to merge runs: their inputs are the runs named in the settings")

    grid_ok = _check_manifest(run, problem, report)
    state = _check_shards(run, problem, report, grid_ok)
    errors = _check_errors(run, problem, report)
    _check_report(run, problem, report, state, errors)
    plan = inputs is not None or (deep > 0 and run.command == "merge")
    if plan and run.typed is not None:
        _check_plan(run, problem, report, state, errors, inputs)
    if deep and grid_ok:
        _check_deep(run, problem, report, deep, inputs, seed)
    report.checked["checks"] = [c for c in CHECKS if (c != "deep" or deep) and (c != "plan" or plan)]
    return report


# ------------------------------------------------------------------------------------------------
# manifest, settings, layout


#: Keys whose absence is its own finding ("settings lack ..."), not a reason to skip the row checks.
_LENIENT_DEFAULTS = {"schema_version": SCHEMA_VERSION, "tool": "", "tool_version": "", "command": "",
                     "time_reference": "", "shard_size": 1, "inputs": {"count": 0, "sha256": ""}, "targets": {},
                     "settings_sha256": ""}


def _planned_shards(settings: dict) -> int | None:
    try:
        count, size = int(settings["inputs"]["count"]), int(settings["shard_size"])
    except (KeyError, TypeError, ValueError):
        return None
    return shard_count(count, size) if size > 0 else None


def _check_manifest(run: _RawRun, problem, report: ValidationReport) -> bool:
    """Manifest/settings/layout checks; returns whether the grid and label map are usable."""
    manifest, settings, out = run.manifest, run.settings, run.out
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problem("schema", f"manifest schema_version is {manifest.get('schema_version')!r}; this anchorprep reads "
                          f"version {SCHEMA_VERSION}")
    if settings.get("schema_version") != manifest.get("schema_version"):
        problem("schema", f"settings schema_version {settings.get('schema_version')!r} differs from the manifest's "
                          f"{manifest.get('schema_version')!r}")
    stored = settings.get("settings_sha256")
    if stored != settings_hash(settings):
        problem("settings", f"settings_sha256 {str(stored)[:12]}… does not match the settings "
                            f"(recomputed {settings_hash(settings)[:12]}…): the settings were edited after the run")
    if manifest.get("settings_sha256") != stored:
        problem("manifest", f"manifest settings_sha256 {str(manifest.get('settings_sha256'))[:12]}… differs from "
                            f"settings.settings_sha256 {str(stored)[:12]}…")
    if manifest.get("tool_version") != settings.get("tool_version"):
        problem("manifest", f"manifest tool_version {manifest.get('tool_version')!r} differs from the settings' "
                            f"{settings.get('tool_version')!r}")
    for key in ("command", "grid", "anchor_rule", "label_map", "targets", "inputs", "shard_size", "passthrough_columns"):
        if key not in settings:
            problem("settings", f"settings lack {key!r}")
    grid_ok = True
    try:
        if "grid" not in settings:
            raise KeyError("grid")
        typed = RunSettings.from_dict({**_LENIENT_DEFAULTS, **settings})
        if typed.anchor_rule not in ("causal", "nearest"):
            raise ValueError(f"unknown anchor_rule {typed.anchor_rule!r}")
        ids = typed.label_map
        if ids.get(BACKGROUND) != 0 or sorted(ids.values()) != list(range(len(ids))):
            raise ValueError(f"label_map must map background to 0 and the labels to 1..n, got {ids}")
        typed.window  # noqa: B018 - raises on a malformed positive_window
        run.typed = typed
    except (KeyError, TypeError, ValueError) as exc:
        problem("settings", f"unusable grid, anchor rule, label map or targets: {exc}")
        grid_ok = False
    if run.typed is not None:
        try:
            combine_of(run.typed)
        except (TypeError, ValueError) as exc:
            problem("settings", f"unusable combine block: {exc}")
            grid_ok = False

    run_file = RunFolder(out).settings_file
    if run_file.is_file():
        try:
            if json.loads(run_file.read_text(encoding="utf-8")) != settings:
                problem("manifest", f"{RUN_SETTINGS_FILE} differs from the manifest settings")
        except (OSError, ValueError):
            problem("manifest", f"{RUN_SETTINGS_FILE} is not valid JSON")
    else:
        report.notes.append(f"no {RUN_SETTINGS_FILE} (fine for a copied run; resuming needs it)")

    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) and isinstance(s.get("file"), str) for s in shards):
        problem("manifest", "manifest shards must be a list of {file, rows, sha256}")
        manifest["shards"] = []
        shards = []
    for entry in list(shards):
        unsafe = shard_name_problem(entry["file"])
        if unsafe is not None:  # never open a path outside the folder
            problem("layout", f"{MANIFEST_FILE}: {unsafe}")
            shards.remove(entry)
    count = _planned_shards(settings)
    if count is not None:
        expected = [run.folder.shard_entry(i, count) for i in range(count)]
        listed = [s["file"] for s in shards]
        if listed != expected:
            missing = [name for name in expected if name not in listed]
            extra = [name for name in listed if name not in expected]
            detail = f"manifest lists {len(listed)} shard(s), the plan ({settings['inputs']['count']} items, " \
                     f"shard_size {settings['shard_size']}) has {count}"
            if missing:
                detail += f"; missing: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}"
            if extra:
                detail += f"; unexpected: {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}"
            if not missing and not extra:
                detail += "; the order differs"
            problem("layout", detail)
    listed = {s["file"] for s in shards}
    for name in run.folder.found_shard_entries():
        if name not in listed:
            problem("layout", f"{name} is in the folder but not in {MANIFEST_FILE} (a shard of another run?)")
    for name in listed:
        if not (out / name).is_file():
            problem("layout", f"{name} is listed in {MANIFEST_FILE} but missing", name)
    for key, default in (("errors_file", ERRORS_FILE), ("report_file", REPORT_FILE)):
        name = manifest.get(key, default)
        if not (out / name).is_file():
            problem("layout", f"{name} is missing")
    leftovers = [p.name for p in run.folder.temporary_files()]
    if leftovers:
        report.notes.append(f"{len(leftovers)} temporary file(s) from an interrupted write: {', '.join(leftovers[:3])}")
    return grid_ok


# ------------------------------------------------------------------------------------------------
# shards and rows


@dataclass
class _ShardState:
    rows_by_shard: dict[str, int] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    seen: dict[str, str] = field(default_factory=dict)
    utts_by_shard: dict[str, list] = field(default_factory=dict)
    rows: int = 0
    frames: int = 0


def _check_shards(run: _RawRun, problem, report: ValidationReport, grid_ok: bool) -> _ShardState:
    settings = run.settings
    state = _ShardState()
    passthrough = tuple(settings.get("passthrough_columns", []))
    expected_schema = shard_schema(passthrough, settings)
    for entry in run.manifest.get("shards", []):
        name = entry["file"]
        path = run.out / name
        if not path.is_file():
            continue
        if entry.get("sha256") != sha256_file(path):
            problem("sha256", f"sha256 {sha256_file(path)[:12]}… differs from manifest.json's "
                              f"{str(entry.get('sha256'))[:12]}… (the file changed after the run)", name)
        try:
            parquet = parquet_file(path)
            schema = parquet.schema_arrow
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding, not a crash
            problem("schema", f"not a readable Parquet file: {exc}", name)
            continue
        if parquet.metadata.num_rows != entry.get("rows"):
            problem("row_count", f"{parquet.metadata.num_rows} rows, manifest.json says {entry.get('rows')}", name)
        _check_format(parquet.metadata, problem, name)
        if read_settings(schema) != settings:
            stored = read_settings(schema)
            if not stored:
                problem("metadata", "no anchorprep settings in the Parquet key-value metadata", name)
            else:
                keys = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
                problem("metadata", f"Parquet metadata settings differ from manifest.json in: {', '.join(keys)}", name)
        schema_ok = _check_schema(schema, expected_schema, problem, name)
        if not schema_ok:
            continue
        try:
            table = parquet.read()
        except Exception as exc:  # noqa: BLE001
            problem("schema", f"cannot read rows: {exc}", name)
            continue
        state.rows_by_shard[name] = table.num_rows
        state.utts_by_shard[name] = table.column("utt_id").to_pylist()
        if grid_ok:
            _check_rows(run, table, name, problem, state)
        else:
            for row in iter_rows(table.select(["utt_id"])):
                _check_utt_id(row["utt_id"], name, problem, state)
    report.checked.update(shards=len(run.manifest.get("shards", [])), rows=state.rows, frames=state.frames,
                          anchors=state.stats.get("anchors", 0))
    return state


def _check_format(metadata, problem, name: str) -> None:
    """One row group, every column chunk compressed as anchorprep compresses (`write_parquet_atomic`)."""
    if metadata.num_row_groups != 1:
        problem("format", f"{metadata.num_row_groups} row groups; anchorprep writes one (rewritten by another tool?)",
                name)
    want = SHARD_COMPRESSION.upper()
    other = sorted({metadata.row_group(g).column(c).compression for g in range(metadata.num_row_groups)
                    for c in range(metadata.num_columns)} - {want})
    if other:
        problem("format", f"column chunks compressed as {', '.join(other)}, anchorprep writes {want} "
                          "(rewritten by another tool?)", name)


def _check_schema(schema, expected, problem, name: str) -> bool:
    ok = True
    actual = {f.name: f for f in schema}
    for want in expected:
        have = actual.get(want.name)
        if have is None:
            problem("schema", f"column {want.name!r} is missing", name)
            ok = False
        elif not have.type.equals(want.type):
            problem("schema", f"column {want.name!r} is {have.type}, expected {want.type}", name)
            ok = False
        elif have.nullable and not want.nullable:
            problem("schema", f"column {want.name!r} is nullable, the schema says not null", name)
            ok = False
    wanted = {f.name for f in expected}
    extra = [f.name for f in schema if f.name not in wanted]
    if extra:
        problem("schema", f"unexpected column(s) {', '.join(extra)} (not in the format's columns or the run's "
                          "pass-through columns)", name)
    return ok


def _check_utt_id(utt, name: str, problem, state: _ShardState) -> bool:
    if not utt:
        problem("utt_id", "empty utt_id", name, utt)
        return False
    if utt in state.seen:
        problem("utt_id", f"utt_id also in {state.seen[utt]}", name, utt)
        return False
    state.seen[utt] = name
    return True


def _first_difference(stored: np.ndarray, expected: np.ndarray) -> str:
    if len(stored) != len(expected):
        return f"{len(stored)} values, expected {len(expected)}"
    diff = np.flatnonzero(np.asarray(stored) != np.asarray(expected))
    i = int(diff[0])
    return f"{len(diff)} of {len(stored)} frames differ (first at frame {i}: stored {stored[i]}, expected {expected[i]})"


def _plausible_frame_counts(grid, duration_s: float, sample_rate: int) -> set[int]:
    x = duration_s * sample_rate
    samples = {int(round(x)), int(math.floor(x + 0.5))}
    return {grid.num_frames(grid.resampled_length(n, sample_rate)) for n in samples}


def _check_rows(run: _RawRun, table, name: str, problem, state: _ShardState) -> None:
    settings = run.typed
    grid = settings.grid
    rule = settings.anchor_rule
    ids = settings.label_map
    window = settings.window
    vad_targets = settings.vad_targets
    combine = combine_of(settings)
    stats = state.stats
    for row in iter_rows(table):
        utt = row["utt_id"]
        state.rows += 1
        _check_utt_id(utt, name, problem, state)
        T = row["num_frames"]
        state.frames += max(T, 0)
        distance, target = row["distance"], row["target"]
        times, frames = np.asarray(row["anchor_times_s"], dtype=np.float64), np.asarray(row["anchor_frames"])
        labels, sources = row["anchor_labels"], row["anchor_sources"]
        # Counters first (report.json is compared with them), as far as the row allows.
        lists_ok = len(times) == len(frames) == len(labels) == len(sources)
        finite = bool(np.all(np.isfinite(times)))
        stats["utterances"] += 1
        stats["anchors"] += len(times)
        stats.update(f"anchors_from_{s}" for s in sources)
        used = used_mask(settings, times, labels, sources, combine) if lists_ok and finite else None
        if used is not None:
            stats["positives" if used.any() else "negatives"] += 1
        expected_frames = None
        if T > 0 and finite and len(times):
            expected_frames, after, before = grid.time_to_frame(times, T, rule)
            stats["anchors_clipped_after_end"] += after
            stats["anchors_clipped_before_start"] += before
        # Then the checks; a row that fails a structural check is not checked further.
        if T <= 0:
            problem("num_frames", f"num_frames is {T}", name, utt)
            continue
        if len(distance) != T or len(target) != T:
            problem("lengths", f"num_frames {T}, len(distance) {len(distance)}, len(target) {len(target)}", name, utt)
            continue
        if not lists_ok:
            problem("lengths", f"anchor lists differ in length: times {len(times)}, frames {len(frames)}, "
                               f"labels {len(labels)}, sources {len(sources)}", name, utt)
            continue
        duration, rate, start = row["duration_s"], row["sample_rate"], row["start_s"]
        if not (math.isfinite(duration) and duration > 0 and rate > 0 and math.isfinite(start) and start >= 0):
            problem("num_frames", f"bad extent: start_s {start}, duration_s {duration}, sample_rate {rate}", name, utt)
        elif T not in _plausible_frame_counts(grid, duration, rate):
            problem("num_frames", f"num_frames {T}, but {duration} s at {rate} Hz gives "
                                  f"{sorted(_plausible_frame_counts(grid, duration, rate))} on the stored grid", name, utt)
        if not finite:
            problem("anchors", "anchor times are not all finite", name, utt)
            continue
        anchors_ok = True
        if np.any(np.diff(times) < 0):
            problem("anchors", "anchor times are not sorted", name, utt)
            anchors_ok = False
        bad_labels = sorted({lab for lab in labels if lab not in ids or lab == BACKGROUND})
        if bad_labels:
            problem("anchors", f"labels {bad_labels} are not in the label map {list(ids)}", name, utt)
            anchors_ok = False
        bad_sources = sorted({s for s in sources if source_kind(s) not in ANCHOR_SOURCES})
        if bad_sources:
            problem("anchors", f"sources {bad_sources} are not among {list(ANCHOR_SOURCES)}", name, utt)
        if expected_frames is not None:
            if np.any((frames < 0) | (frames >= T)):
                problem("anchor_frames", f"anchor frames {frames.tolist()} outside [0, {T})", name, utt)
                anchors_ok = False
            elif not np.array_equal(frames, expected_frames):
                problem("anchor_frames", f"anchor frames {frames.tolist()} differ from the frames of the anchor times "
                                         f"under the {rule} rule {expected_frames.tolist()}", name, utt)
        if not anchors_ok:
            continue
        expected_distance = anchor_distances(frames[used], T)
        if not np.array_equal(distance, expected_distance):
            problem("distance", _first_difference(distance, expected_distance), name, utt)
        if vad_targets:
            values = set(np.unique(target).tolist())
            if not values <= {0, 1}:
                problem("target", f"vad targets hold values {sorted(values - {0, 1})} besides 0/1", name, utt)
        elif window is not None:
            classes = [ids[lab] for lab, keep in zip(labels, used) if keep]
            expected_target = frame_targets(frames[used], classes, T, window)
            if not np.array_equal(target, expected_target):
                problem("target", _first_difference(target, expected_target), name, utt)


# ------------------------------------------------------------------------------------------------
# errors.jsonl and report.json

_ERROR_FIELDS = {"utt_id": str, "row": int, "path": str, "stage": str, "reason": str, "shard": str}


def _check_errors(run: _RawRun, problem, report: ValidationReport) -> list[dict]:
    path = run.out / run.manifest.get("errors_file", ERRORS_FILE)
    lines: list[dict] = []
    if not path.is_file():
        return lines
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem("errors", f"cannot read {path.name}: {exc}")
        return lines
    count = _planned_shards(run.settings)
    size = run.settings.get("shard_size")
    items = run.settings.get("inputs", {}).get("count")
    shard_of = run.folder.shard_entry
    rows_seen: dict[int, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path.name}:{number}"
        if not raw.strip():
            problem("errors", f"{where}: empty line")
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            problem("errors", f"{where}: not JSON ({exc})")
            continue
        if not isinstance(line, dict):
            problem("errors", f"{where}: not a JSON object")
            continue
        bad = [f"{key} ({kind.__name__})" for key, kind in _ERROR_FIELDS.items()
               if not isinstance(line.get(key), kind) or isinstance(line.get(key), bool)]
        if bad:
            problem("errors", f"{where}: missing or mistyped field(s) {', '.join(bad)}", utt_id=line.get("utt_id"))
            lines.append(line)
            continue
        if not line["stage"] or not line["reason"]:
            problem("errors", f"{where}: empty stage or reason", line["shard"], line["utt_id"])
        row = line["row"]
        if isinstance(items, int) and not 0 <= row < items:
            problem("errors", f"{where}: input row {row} outside [0, {items})", line["shard"], line["utt_id"])
        elif row in rows_seen:
            problem("errors", f"{where}: input row {row} already failed on line {rows_seen[row]}", line["shard"], line["utt_id"])
        elif count is not None and isinstance(size, int) and line["shard"] != (owner := shard_of(row // size, count)):
            problem("errors", f"{where}: input row {row} belongs to {owner}, the line says {line['shard']}",
                    line["shard"], line["utt_id"])
        rows_seen.setdefault(row, number)
        lines.append(line)
    report.checked["error_lines"] = len(lines)
    return lines


def _check_report(run: _RawRun, problem, report: ValidationReport, state: _ShardState, errors: list[dict]) -> None:
    settings, manifest = run.settings, run.manifest
    items = settings.get("inputs", {}).get("count")
    # Every item in exactly one place, shard by shard.
    size, count = settings.get("shard_size"), _planned_shards(settings)
    if isinstance(items, int) and isinstance(size, int) and count is not None:
        failed_in = Counter(e.get("shard") for e in errors)
        for index in range(count):
            name = run.folder.shard_entry(index, count)
            if name not in state.rows_by_shard:
                continue
            planned = max(0, min(size, items - index * size))
            placed = state.rows_by_shard[name] + failed_in.get(name, 0)
            if placed != planned:
                problem("items", f"holds {state.rows_by_shard[name]} row(s) and has {failed_in.get(name, 0)} error "
                                 f"line(s) = {placed}, but {planned} input item(s) belong to it", name)
    path = run.out / manifest.get("report_file", REPORT_FILE)
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem("report", f"{path.name} is not valid JSON: {exc}")
        return
    if not isinstance(data, dict):
        problem("report", f"{path.name} is not a JSON object")
        return
    listed_rows = sum(int(s.get("rows", 0) or 0) for s in manifest.get("shards", []))

    def expect(key: str, value, what: str) -> None:
        if data.get(key, 0 if key not in ("in", "written", "failed") else None) != value:
            problem("report", f"{key} is {data.get(key)!r}, but {what} gives {value!r}")

    expect("in", items, "settings.inputs.count")
    expect("written", listed_rows, "the manifest's shard rows")
    if state.rows_by_shard and len(state.rows_by_shard) == len(manifest.get("shards", [])):
        expect("written", state.rows, "the shards' rows")
    expect("failed", len(errors), "errors.jsonl")
    if all(isinstance(data.get(k), int) for k in ("in", "written", "failed")):
        skipped = data.get("skipped", 0) or 0
        if data["in"] != data["written"] + data["failed"] + skipped:
            problem("report", f"in ({data['in']}) != written ({data['written']}) + failed ({data['failed']}) "
                              f"+ skipped ({skipped})")
    by_stage = dict(sorted(Counter(str(e.get("stage")) for e in errors).items()))
    if "failed_by_stage" in data and data["failed_by_stage"] != by_stage:
        problem("report", f"failed_by_stage is {data['failed_by_stage']}, errors.jsonl gives {by_stage}")
    if len(state.rows_by_shard) == len(manifest.get("shards", [])):
        keys = ["utterances", "positives", "negatives", "anchors", "anchors_clipped_after_end",
                "anchors_clipped_before_start"]
        keys += sorted(k for k in set(state.stats) | set(data) if k.startswith("anchors_from_"))
        for key in keys:
            expect(key, state.stats.get(key, 0), "the shard rows")
    else:
        report.notes.append("report counters not compared with the rows: some shards could not be read")
    unchecked = sorted(k for k in data if k not in {"in", "written", "failed", "failed_by_stage", "skipped",
                                                    "utterances", "positives", "negatives", "anchors",
                                                    "anchors_clipped_after_end", "anchors_clipped_before_start"}
                       and not k.startswith("anchors_from_"))
    if unchecked:
        report.checked["report_counters_not_recomputable"] = unchecked


# ------------------------------------------------------------------------------------------------
# plan: the inputs decide which item lands in which shard, in which order


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _check_plan(run: _RawRun, problem, report: ValidationReport, state: _ShardState, errors: list[dict],
                inputs: Path | None) -> None:
    """Shard ``i`` holds input rows ``[i*size, (i+1)*size)`` minus the failed ones, in order."""
    settings = run.typed
    if run.command == "merge":
        from anchorprep.pipeline.merge import read_merge_inputs

        try:
            items = read_merge_inputs([location(r) for r in settings.job.get("merged_runs", [])]).items
        except UsageError as exc:
            report.notes.append(f"plan not checked: cannot read the merged runs: {exc}")
            return
    else:
        items = command_items(run.settings, inputs)
    if inputs_fingerprint(items) != settings.inputs:
        report.notes.append(f"plan not checked: the items read from {inputs or 'the merged runs'} differ from the "
                            "run's inputs (inputs fingerprint)")
        return
    utts = [_text(u) for u in items.column("utt_id").to_pylist()]
    size, count = settings.shard_size, settings.planned_shards
    failed: set[int] = set()
    for line in errors:
        row, utt = line.get("row"), line.get("utt_id")
        if not isinstance(row, int) or not 0 <= row < len(utts):
            continue
        failed.add(row)
        if _text(utt) != utts[row]:
            problem("plan", f"error line for input row {row} names utt_id {utt!r}, the input row is "
                            f"{utts[row]!r}", line.get("shard"), utt)
    checked = 0
    for index in range(count):
        name = next((n for n in (shard_file(index, count), shard_name(index, count)) if n in state.utts_by_shard), None)
        if name is None:
            continue
        stored = state.utts_by_shard[name]
        planned = [utts[r] for r in range(index * size, min(len(utts), (index + 1) * size)) if r not in failed]
        checked += 1
        if stored != planned:
            where = next((i for i, (a, b) in enumerate(zip(stored, planned)) if a != b), min(len(stored), len(planned)))
            problem("plan", f"rows differ from the planned items in input order from row {where} on (stored "
                            f"{stored[where:where + 2]}, planned {planned[where:where + 2]})", name)
    report.checked["plan_shards"] = checked


# ------------------------------------------------------------------------------------------------
# deep: re-derive sampled rows from their inputs

_NEEDS_INPUTS = {
    "align": "the shards do not store alignment paths",
    "accel": "the shards do not store sensor paths or clock offsets",
}


def _check_deep_possible(run: _RawRun, inputs: Path | None) -> None:
    command = run.command
    if command not in ("align", "vad", "accel", "merge"):
        raise UsageError(f"`deep` cannot re-derive rows of an `anchorprep {command}` run")
    if command in _NEEDS_INPUTS and inputs is None:
        raise UsageError(f"`deep` on an `anchorprep {command}` run needs `inputs` (the manifest, folder or CTM the "
                         f"run read): {_NEEDS_INPUTS[command]}")
    if command == "merge" and inputs is not None:
        raise UsageError("`inputs` does not apply to merge runs: their inputs are the runs named in the settings")


def _items_by_utt(items) -> dict[str, dict]:
    by_utt: dict[str, dict] = {}
    for item in items.to_pylist():
        by_utt.setdefault(str(item.get("utt_id", "")), item)
    return by_utt


def _deep_items(run: _RawRun, rows: list[tuple[str, dict]], inputs: Path | None, report: ValidationReport) -> dict[str, dict]:
    settings = run.typed
    if run.command == "merge":
        from anchorprep.pipeline.merge import read_merge_inputs

        items = read_merge_inputs([location(r) for r in settings.job.get("merged_runs", [])]).items
    elif inputs is not None:
        items = command_items(run.settings, inputs)
    else:  # vad: the row holds the audio segment
        from anchorprep.sources.items import item_table

        passthrough = settings.passthrough_columns
        items = item_table([{"utt_id": row["utt_id"], "audio_path": row["audio_path"] or "",
                             "start_s": repr(row["start_s"]), "duration_s": repr(row["duration_s"]),
                             **{c: row.get(c) or "" for c in passthrough}} for _, row in rows])
        anchors_from = (settings.config or {}).get("anchors_from")
        if anchors_from:
            from anchorprep.pipeline.inputs import add_search_region

            items = add_search_region(items, location(anchors_from))
        report.notes.append("deep: items rebuilt from the shard rows (audio_path, start_s, duration_s); pass "
                            "`inputs` to re-derive from the run's own item list")
        return _items_by_utt(items)
    fingerprint, stored = inputs_fingerprint(items), settings.inputs
    report.checked["deep_inputs_fingerprint"] = "match" if fingerprint == stored else "differ"
    if fingerprint != stored:
        report.notes.append(
            f"deep: the items read from {inputs or 'the merged runs'} ({fingerprint.count} items) differ from the "
            f"run's inputs ({stored.count} items, sha256 {stored.sha256[:12]}…); rows are matched by utt_id")
    return _items_by_utt(items)


def _compare_rows(stored: dict, derived: dict, passthrough: list[str], item: dict) -> list[str]:
    diffs = []
    for key in ("audio_path", "start_s", "duration_s", "sample_rate", "num_frames"):
        a, b = stored.get(key), derived.get(key)
        if key == "audio_path":
            a, b = a or "", b or ""
        if isinstance(a, float) or isinstance(b, float):
            same = a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9
        else:
            same = a == b
        if not same:
            diffs.append(f"{key}: stored {a!r}, re-derived {b!r}")
    times_a = np.asarray(stored["anchor_times_s"], dtype=np.float64)
    times_b = np.asarray(derived["anchor_times_s"], dtype=np.float64)
    if len(times_a) != len(times_b) or not np.allclose(times_a, times_b, rtol=0, atol=1e-9):
        diffs.append(f"anchor_times_s: stored {np.round(times_a, 6).tolist()}, re-derived {np.round(times_b, 6).tolist()}")
    for key in ("anchor_labels", "anchor_sources"):
        if list(stored[key]) != list(derived[key]):
            diffs.append(f"{key}: stored {list(stored[key])}, re-derived {list(derived[key])}")
    for key in ("anchor_frames", "distance", "target"):
        a, b = np.asarray(stored[key]), np.asarray(derived[key])
        if len(a) != len(b) or not np.array_equal(a, b):
            diffs.append(f"{key}: {_first_difference(a, b)}")
    for column in passthrough:
        if (stored.get(column) or "") != (item.get(column) or ""):
            diffs.append(f"{column}: stored {stored.get(column)!r}, input {item.get(column)!r}")
    return diffs


def _check_deep(run: _RawRun, problem, report: ValidationReport, n: int, inputs: Path | None, seed: int) -> None:
    settings = run.typed
    job = rebuild_job(run.typed)
    mismatch = job_settings_mismatch(job, run.typed)
    if mismatch:
        problem("deep", f"the {run.command} job rebuilt from the settings disagrees with them in "
                        f"{', '.join(mismatch)} (written by anchorprep {settings.tool_version}?); rows not re-derived")
        return
    keys = []
    for name in run.shard_files:
        path = run.out / name
        if path.is_file():
            try:
                keys += [(name, i) for i in range(parquet_file(path).metadata.num_rows)]
            except Exception:  # noqa: BLE001 - reported by the shard checks
                continue
    sample = sorted(random.Random(seed).sample(keys, min(n, len(keys))))
    rows: list[tuple[str, dict]] = []
    for name in dict.fromkeys(name for name, _ in sample):
        table = read_table(run.out / name)
        wanted = {i for shard, i in sample if shard == name}
        rows += [(name, row) for i, row in enumerate(iter_rows(table)) if i in wanted]
    try:
        items = _deep_items(run, rows, inputs, report)
    except UsageError as exc:
        if run.command != "merge":
            raise
        problem("deep", f"cannot read the merged runs {settings.job.get('merged_runs')} (paths are as given to "
                        f"`anchorprep merge`, relative to where it ran): {exc}")
        return
    passthrough = list(settings.passthrough_columns)
    weights = WeightSettings.of_run(settings)
    derived_count = 0
    for name, row in rows:
        utt = row["utt_id"]
        item = items.get(utt)
        if item is None:
            problem("deep", "not among the input items", name, utt)
            continue
        try:
            derived, _ = job.process(dict(item))
        except ItemFailure as failure:
            problem("deep", f"re-deriving fails at stage {failure.stage}: {failure.reason}", name, utt)
            continue
        derived_count += 1
        for diff in _compare_rows(row, derived, passthrough, item):
            problem("deep", f"re-derived row differs: {diff}", name, utt)
        if weights is not None:
            expected = weights.weights(np.asarray(row["distance"], dtype=np.int16))
            if not np.array_equal(np.asarray(row[WEIGHT_COLUMN], dtype=np.float32), expected):
                problem("deep", f"{WEIGHT_COLUMN}: not the {weights.kernel} kernel of the stored settings applied to "
                                f"distance ({_first_difference(np.asarray(row[WEIGHT_COLUMN]), expected)})", name, utt)
    report.checked["deep_rows"] = derived_count
    report.checked["deep_sampled"] = [utt for utt in (row["utt_id"] for _, row in rows)]


__all__ = ["CHECKS", "Problem", "ValidationReport", "settings_hash", "validate_run"]
