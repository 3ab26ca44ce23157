"""The batch runner: a deterministic shard plan, one engine-free shard function, resume, assembly.

The output folder's layout and files are `anchorprep.shards.run`'s (`RunFolder`, `RunSettings`,
`ShardSummary`, `RunManifest`, `RunReport`).

Shard ``i`` holds input items ``[i*shard_size, (i+1)*shard_size)``, whatever the worker count,
array-job split or resume history, so every way of running produces the same bytes. A shard's
summary is written after its Parquet file is renamed into place; a shard counts as finished only
when both exist, the file's sha256 matches the summary and (on resume) the item files' sizes and
modification times match the ones the summary recorded.

A run holds its folder through `claim_run` (flock-based: runs with other settings are refused,
array tasks of the same run share it, a killed run's lock is dropped by the OS).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import secrets
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

from anchorprep.errors import InputError, UsageError
from anchorprep.pipeline.options import ExecutionOptions
from anchorprep.shards import PASSTHROUGH_COLUMNS, rows_to_table, shard_schema
from anchorprep.shards.io import sha256_file, write_json_atomic, write_parquet_atomic, write_text_atomic
from anchorprep.shards.run import (
    InputsFingerprint, ItemError, RunFolder, RunManifest, RunReport, RunSettings, ShardEntry, ShardSummary,
    claim_run, shard_count, shard_file, shard_name,
)
from anchorprep.shards.schema import MAX_LIST_VALUES
from anchorprep.storage import Location, file_stamp, location, stamps_of_reads

if TYPE_CHECKING:
    import pyarrow as pa

    from anchorprep.sources.items import SpilledItems

DASK_INSTALL_HINT = "pip install 'anchorprep[dask]'  (or: pip install 'dask[distributed]')"


class ItemFailure(Exception):
    """An item failed at a named stage; becomes one `errors.jsonl` line."""

    def __init__(self, stage: str, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.stage, self.reason, self.path = stage, reason, path


@contextmanager
def stage(name: str, path: str | None = None) -> Iterator[None]:
    """Label failures inside the block with a stage name (and the file being read).

    `InputError` keeps its reason; anything else is an unexpected failure and says so, with the
    exception type, so the user can report it instead of guessing (`stage_failure`).
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - one item's bug must not take the run down
        failure = stage_failure(name, exc, path)
        if failure is exc:
            raise
        raise failure from exc


def stage_failure(name: str, exc: Exception, path: str | None = None) -> Exception:
    """What `stage` raises for `exc` caught in stage `name`: `ItemFailure` and `UsageError`
    themselves, an `InputError`'s reason (and its path, else `path`) as an `ItemFailure`, any
    other exception as an "unexpected" `ItemFailure` naming its type.

    For hot per-item code, one ``try`` around the whole item with a local ``current`` naming
    the stage being run, and ``except Exception as exc:`` converting with this function, costs
    nothing per item (a ``with stage(...)`` block costs a generator and a context manager).
    """
    if isinstance(exc, (ItemFailure, UsageError)):
        return exc
    if isinstance(exc, InputError):
        return ItemFailure(name, exc.reason, exc.path or path)
    return ItemFailure(name, f"unexpected {type(exc).__name__}: {exc}", path)


class Job(Protocol):
    """What a pipeline (align, vad, accel, ...) provides to the runner. Must be picklable."""

    command: str

    def settings(self) -> dict:
        """Every option that shapes the output (grid, targets, label map, source options)."""

    def process(self, item: dict) -> tuple[dict, Counter]:
        """Turn one input item into a shard row plus stat counters; raise `ItemFailure`."""


@dataclass(frozen=True, kw_only=True)
class RunOptions(ExecutionOptions):
    """Where a run writes (``out_dir``) and how it executes (`ExecutionOptions`)."""

    out_dir: Location
    quiet: bool = False


@dataclass(frozen=True)
class RunPlan:
    """What a run would do (``dry_run``): the shard plan and how much of it is already done."""

    out_dir: str
    items: int
    shards: int
    shard_size: int
    this_job_shards: int
    already_done: int
    to_run: int
    workers: int
    workers_requested: int
    settings_sha256: str
    first_shard: str

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RunResult:
    """What `run` did; ``report`` is the run's report once its manifest is written."""

    out_dir: Path
    planned_shards: int
    shards_run: int = 0
    shards_skipped: int = 0
    items_run: int = 0
    items_failed: int = 0
    complete: bool = False
    stopped_early: bool = False
    report: RunReport | None = None
    plan: RunPlan | None = None
    elapsed_s: float = 0.0
    workers: int = 1
    workers_requested: int = 1

    @property
    def exit_code(self) -> int:
        failed = self.report.failed if self.report is not None else 0
        return 1 if self.items_failed or self.stopped_early or failed else 0


#: Rows of the item table turned into Python values at a time by the driver's columnar passes
#: (`anchorprep.sources.items.SpilledItems.BATCH_ROWS`: one batch of a spilled table).
ROWS_PER_PASS = 4096


def inputs_fingerprint(items: "pa.Table | SpilledItems") -> InputsFingerprint:
    """Count and sha256 of the item table (columns and values, in order).

    sha256 over ``json.dumps(column names)`` then every row as a CSV line: ``csv.writer`` with
    minimal quoting and ``"\n"`` line ends (the bytes pandas' ``to_csv(index=False,
    header=False)`` wrote when the item table was a DataFrame, so run.json files of earlier
    runs still match on ``resume``).
    """
    digest = hashlib.sha256(json.dumps(items.column_names).encode())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    for start in range(0, items.num_rows, ROWS_PER_PASS):
        chunk = items.slice(start, ROWS_PER_PASS)
        writer.writerows(zip(*(column.to_pylist() for column in chunk.columns)))
        digest.update(text.getvalue().encode())
        text.seek(0)
        text.truncate()
    return InputsFingerprint(items.num_rows, digest.hexdigest())


def run_settings(job: Job, items: "pa.Table | SpilledItems", shard_size: int, config: dict | None = None) -> RunSettings:
    """The settings for run.json, manifest.json and every shard's metadata, with their hash.

    ``config`` is the command's effective configuration (flags and config file, minus options
    that only change how the run executes), stored so the run can be repeated.
    """
    passthrough = [c for c in PASSTHROUGH_COLUMNS if c in items.column_names]
    return RunSettings.build(job.command, job.settings(), inputs_fingerprint(items), shard_size, passthrough, config)


#: Item columns naming input files; their size and mtime go into a shard's `inputs_stamp`.
INPUT_FILE_COLUMNS = ("alignment_path", "audio_path", "accel_path")


def _item_path(item: dict) -> str:
    """The input file an error line names when the failure did not name one."""
    return item.get("alignment_path") or item.get("audio_path") or item.get("accel_path") or ""


def inputs_stamp(items: list[dict], read: dict[str, str] | None = None) -> str:
    """sha256 over the (path, size, mtime_ns) of every input file the items name (missing files
    count as missing). Resume reruns a shard whose stamp changed, so an input file edited after
    its shard was written is never kept silently; an edit that keeps size and mtime is not seen.

    `read` holds the stamps of files as they were read (`storage.stamps_of_reads`), used instead
    of a new stat: a shard's stamp then describes the bytes its rows came from."""
    lines = []  # hashed at once: the digest of the concatenation is the digest of the lines
    seen: dict[str, str] = dict(read) if read else {}
    for item in items:
        for column in INPUT_FILE_COLUMNS:
            path = item.get(column)
            if not isinstance(path, str) or not path:
                continue
            stamp = seen.get(path)
            if stamp is None:
                stamp = seen[path] = file_stamp(path)
            lines.append(f"{path}\0{stamp}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def process_shard(job: Job, index: int, count: int, items: list[dict], out_dir: str,
                  settings: RunSettings) -> ShardSummary:
    """Process one shard end to end; engine-free (local pool, in-process or a cluster worker).

    Every item ends as a row or an error record; the Parquet file and then the summary are
    written atomically, so a retried or duplicated call rewrites the same bytes.
    """
    out = location(out_dir)
    rows, errors, item_stats_list, frames = [], [], [], 0
    passthrough = settings.passthrough_columns
    with stamps_of_reads() as read_stamps:
        for item in items:
            try:
                if item.get("_duplicate_of") not in (None, ""):
                    raise ItemFailure("manifest", f"duplicate utt_id (first used at input row {item['_duplicate_of']})")
                if not item.get("utt_id"):
                    raise ItemFailure("manifest", "empty utt_id")
                row, item_stats = job.process(item)
                if frames + row["num_frames"] > MAX_LIST_VALUES:
                    raise ItemFailure("label", f"the shard would hold more than {MAX_LIST_VALUES} frames with this item "
                                               "(int32 list offsets); use a smaller `shard_size`")
            except ItemFailure as failure:
                errors.append(ItemError(item.get("utt_id", ""), item["_row"], failure.path or _item_path(item),
                                        failure.stage, failure.reason))
                continue
            for column in passthrough:
                row[column] = item.get(column, "")
            rows.append(row)
            frames += row["num_frames"]
            item_stats_list.append(item_stats)
    stamp = inputs_stamp(items, read_stamps)
    return _write_shard(out, index, count, rows, len(items), errors, _total_stats(item_stats_list), settings, stamp)


def _total_stats(per_item: list[Counter]) -> Counter:
    """``Counter.update`` with every item's counters in turn. When every count is an ``int``
    (exact sums in any order), each distinct set of counters is added once times its number of
    items: most items of a run share one of a few sets."""
    groups: dict[tuple, int] = {}
    try:
        for item_stats in per_item:
            key = tuple(item_stats.items())
            groups[key] = groups.get(key, 0) + 1
        exact = all(type(value) is int for key in groups for _, value in key)
    except (TypeError, AttributeError):  # an unhashable count, or counts not given as a mapping
        exact = False
    total: Counter = Counter()
    if exact:
        for key, times in groups.items():
            for name, value in key:
                total[name] = total.get(name, 0) + value * times
    else:
        for item_stats in per_item:
            total.update(item_stats)
    return total


def _write_shard(out: Location, index: int, count: int, rows: list[dict], num_items: int, errors: list[ItemError],
                 stats: Counter, settings: RunSettings, stamp: str) -> ShardSummary:
    """Write the shard's Parquet file, then its summary (the "done" marker); return the summary."""
    folder = RunFolder(out)
    path = folder.shard(index, count)
    schema = shard_schema(settings.passthrough_columns, settings.to_dict())
    sha256 = write_parquet_atomic(path, rows_to_table(rows, schema))
    summary = ShardSummary(index, shard_file(index, count), len(rows), num_items, sha256, tuple(errors),
                           dict(sorted(stats.items())), stamp)
    write_json_atomic(folder.done_file(index), summary.to_dict())
    return summary


def _done_summary(out: Location, index: int, count: int, stamp: str | None = None) -> ShardSummary | None:
    """The shard's summary if the shard is finished and intact (and, given ``stamp``, its input
    files unchanged); None otherwise, an unreadable summary included (the shard is rerun)."""
    folder = RunFolder(out)
    shard = folder.shard(index, count)
    try:
        summary = folder.read_done(index) if shard.is_file() else None
    except UsageError:
        return None
    if summary is None or summary.sha256 != sha256_file(shard):
        return None
    return summary if stamp is None or summary.inputs_stamp == stamp else None


#: OSErrors that mean "the output folder cannot be written" wherever they happen during a run.
_FOLDER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST}


def _folder_error(out: Path, exc: OSError) -> UsageError:
    """An OSError on the output folder as one line saying what to fix."""
    where = exc.filename or out
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UsageError(f"no space left on the device of `out` {out} (writing {where}): free space, then rerun "
                          "the same command with `resume`")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return UsageError(f"cannot write to `out` {out}: {exc.strerror} ({where}); choose a writable output folder")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return UsageError(f"cannot create `out` {out}: a path component is a file, not a folder ({where})")
    return UsageError(f"cannot write to `out` {out}: {exc.strerror or exc} ({where})")


def duplicate_rows(items: "pa.Table | SpilledItems") -> dict[int, int]:
    """``{input row: first input row with the same utt_id}`` for every repeat of a utt_id.

    Columnar and small: a 64-bit hash per row (`ROWS_PER_PASS` ids become Python strings at a
    time), sorted to find the hashes that occur more than once; only the rows holding those
    (repeats, and the rare hash collision) are compared by their text. About 17 bytes of
    transient memory per item, whatever the length of the ids.
    """
    import numpy as np

    count = items.num_rows
    if count < 2:
        return {}
    hashes = np.empty(count, dtype=np.int64)
    for start in range(0, count, ROWS_PER_PASS):
        ids = items.slice(start, ROWS_PER_PASS).column("utt_id").to_pylist()
        hashes[start:start + len(ids)] = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if not len(repeated):
        return {}
    candidates = np.flatnonzero(np.isin(hashes, repeated))
    first: dict[str, int] = {}
    repeats = {}
    for start in np.unique(candidates // ROWS_PER_PASS * ROWS_PER_PASS).tolist():
        ids = items.slice(start, ROWS_PER_PASS).column("utt_id").to_pylist()
        for row in candidates[(candidates >= start) & (candidates < start + ROWS_PER_PASS)].tolist():
            utt_id = ids[row - start]
            if utt_id in first:
                repeats[row] = first[utt_id]
            else:
                first[utt_id] = row
    return repeats


def shard_records(items: "pa.Table | SpilledItems", start: int, stop: int, repeats: dict[int, int]) -> list[dict]:
    """Input rows ``[start, stop)`` as the items a shard processes: each row's columns plus
    ``_row`` (its input row number) and ``_duplicate_of`` (the first row of a repeated utt_id, as
    text, else "")."""
    records = items.slice(start, max(0, stop - start)).to_pylist()
    for row, record in enumerate(records, start):
        record["_row"] = row
        record["_duplicate_of"] = str(repeats[row]) if row in repeats else ""
    return records


def run(job: Job, items: "pa.Table | SpilledItems", options: RunOptions, progress=None, config: dict | None = None) -> RunResult:
    """Run ``job`` over ``items`` (an item table or a `SpilledItems`, `anchorprep.sources.items`)
    into ``options.out_dir``; assemble the manifest when complete. The driver turns one shard's
    rows into item dicts at a time (`shard_records`)."""
    started = time.monotonic()
    out = location(options.out_dir)
    settings = run_settings(job, items, options.shard_size, config)
    count = shard_count(items.num_rows, options.shard_size)
    mine = [i for i in range(count) if options.num_shards is None or i % options.num_shards == options.shard_index]
    # One process per shard at most: a pool forks all its workers up front.
    workers = max(1, min(options.workers, len(mine)))
    result = RunResult(out_dir=out, planned_shards=count, workers=workers, workers_requested=options.workers)
    repeats = duplicate_rows(items)

    def shard_items(index: int) -> list[dict]:
        # Built when the shard is checked or submitted and dropped after: the driver holds the
        # columnar item table, never one Python object per item.
        return shard_records(items, index * options.shard_size, (index + 1) * options.shard_size, repeats)

    if options.dry_run:
        result.plan = _plan(out, settings, count, mine, options, workers, shard_items)
        return result
    try:
        claim = claim_run(RunFolder(out), settings, options.overwrite)
    except OSError as exc:
        raise _folder_error(out, exc) from None
    try:
        _run_claimed(job, replace(options, workers=workers), out, settings, count, mine, shard_items, result, progress)
    except OSError as exc:
        if exc.errno not in _FOLDER_ERRNOS:
            raise
        raise _folder_error(out, exc) from None
    finally:
        claim.release()
    result.elapsed_s = time.monotonic() - started
    return result


def _run_claimed(job, options: RunOptions, out: Location, settings: RunSettings, count: int, mine: list[int],
                 shard_items, result: RunResult, progress) -> None:
    todo = []
    for index in mine:
        if options.resume and _done_summary(out, index, count, inputs_stamp(shard_items(index))) is not None:
            result.shards_skipped += 1
        else:
            todo.append(index)
    if progress is not None:
        progress.start(total=sum(min(options.shard_size, settings.inputs.count - i * options.shard_size) for i in todo))
    try:
        expected = set(todo)
        for summary in _execute(job, todo, count, shard_items, str(out), settings, options):
            if summary.shard not in expected:  # a defect, never silently counted (cf. shared Dask keys)
                raise RuntimeError(f"shard {summary.shard} finished twice or belongs to another run")
            expected.discard(summary.shard)
            result.shards_run += 1
            result.items_run += summary.items
            result.items_failed += len(summary.errors)
            if progress is not None:
                progress.advance(summary.items, failed=len(summary.errors))
            if options.max_errors is not None and result.items_failed > options.max_errors:
                result.stopped_early = True
                break
    finally:
        if progress is not None:
            progress.stop()
    if not result.stopped_early:
        result.report = assemble(out, require_complete=False)
        result.complete = result.report is not None


def _plan(out: Location, settings: RunSettings, count: int, mine: list[int], options: RunOptions, workers: int,
          shard_items) -> RunPlan:
    done = [i for i in mine if options.resume and out.is_dir()
            and _done_summary(out, i, count, inputs_stamp(shard_items(i))) is not None]
    return RunPlan(
        out_dir=str(out), items=settings.inputs.count, shards=count, shard_size=options.shard_size,
        this_job_shards=len(mine), already_done=len(done), to_run=len(mine) - len(done), workers=workers,
        workers_requested=options.workers, settings_sha256=settings.settings_sha256,
        first_shard=shard_name(0, count),
    )


def _execute(job, todo, count, shard_items, out, settings, options):
    if options.executor == "dask":
        return _execute_dask(job, todo, count, shard_items, out, settings, options)
    return _execute_local(job, todo, count, shard_items, out, settings, options)


def _exit_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: exit when the driver dies (e.g. SIGKILL by the OOM killer).

    Without it the workers of a killed driver block on their task queue forever, orphaned and
    holding their memory. A daemon thread polls the parent pid (portable; costs nothing).
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="anchorprep-parent-watch", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=_exit_with_parent, initargs=(os.getpid(),))


def _execute_local(job, todo, count, shard_items, out, settings, options):
    """Yield shard summaries as shards finish.

    With one worker, shards run in this process. With more, a process pool keeps at most
    2 × workers shards in flight (the driver holds at most that many shards' item dicts). When a
    worker dies the pool is rebuilt; the shards that were in flight are rerun one at a time, each
    up to ``retries`` more times, so the culprit is identified and only its items are failed.
    """
    if options.workers == 1 or len(todo) <= 1:
        for index in todo:
            yield process_shard(job, index, count, shard_items(index), out, settings)
        return
    queue = list(reversed(todo))
    suspects: list[int] = []
    while queue:
        with _pool(options.workers) as pool:
            in_flight: dict = {}
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < 2 * options.workers:
                        index = queue.pop()
                        try:
                            future = pool.submit(process_shard, job, index, count, shard_items(index), out, settings)
                        except BrokenProcessPool:  # the pool broke since the last wait: keep the shard queued
                            queue.append(index)
                            raise
                        in_flight[future] = index
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        summary = future.result()
                        del in_flight[future]
                        yield summary
            except BrokenProcessPool:
                suspects.extend(in_flight.values())
    for index in sorted(suspects):
        for _attempt in range(options.retries + 1):
            with _pool(1) as pool:
                try:
                    yield pool.submit(process_shard, job, index, count, shard_items(index), out, settings).result()
                    break
                except BrokenProcessPool:
                    continue
        else:
            yield _fail_shard(index, count, shard_items(index), out, settings, options.retries + 1)


def _execute_dask(job, todo, count, shard_items, out, settings, options):
    """Run the same shard function on a Dask cluster; yield summaries as shards finish.

    Connects to ``options.address`` (or ``DASK_SCHEDULER_ADDRESS``), else starts a local cluster
    of ``workers`` single-threaded processes. Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536``
    in the workers it spawns, which made numpy-heavy shard work markedly slower here; the local
    cluster anchorprep starts leaves glibc's default instead (see README for remote workers).
    Failed tasks are retried ``retries`` times by Dask; shards are written atomically and are
    deterministic, so a retried or duplicated task rewrites the same bytes.
    """
    try:
        import dask
        from distributed import Client, LocalCluster, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise UsageError(f"`executor` dask needs Dask: {DASK_INSTALL_HINT}") from None

    if not todo:  # e.g. --resume of a finished run: no cluster to start or reach
        return
    address = options.address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    # Dask's nanny unsets a pre-spawn variable whose value is None.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = None if address else LocalCluster(
            n_workers=options.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            try:
                client = Client(address or cluster)
            except OSError as exc:  # unreachable scheduler: a usage problem (exit 2), not a traceback
                if cluster is not None:
                    raise
                raise UsageError(f"cannot connect to the Dask scheduler at {address}: {exc}; "
                                 "check `address` (or DASK_SCHEDULER_ADDRESS)") from None
            with client:
                window = 2 * max(1, len(client.scheduler_info()["workers"]))
                queue = list(reversed(todo))
                # Keys name the folder and this invocation: two runs on one cluster (same command
                # into two folders, or a rerun while an old one lingers) never share a task.
                folder = hashlib.sha256(str(location(out).resolve()).encode()).hexdigest()[:12]
                key_prefix = f"anchorprep-{folder}-{settings.settings_sha256[:12]}-{secrets.token_hex(4)}"

                shard_of: dict = {}

                def submit(index: int, attempt: str = ""):
                    future = client.submit(process_shard, job, index, count, shard_items(index), out, settings,
                                           retries=options.retries, pure=False,
                                           key=f"{key_prefix}-shard-{index}{attempt}")
                    shard_of[future.key] = index
                    return future

                # A shard whose workers kept dying (Dask's allowed-failures) may only have shared a
                # worker with the culprit: it is rerun alone once the rest is done, and only a shard
                # that still kills its workers then has its items failed, as the local pool does.
                suspects = []
                pending = as_completed([submit(queue.pop()) for _ in range(min(window, len(queue)))])
                for future in pending:
                    try:
                        yield future.result()
                    except KilledWorker:
                        suspects.append(shard_of[future.key])
                    if queue:
                        pending.add(submit(queue.pop()))
                for index in sorted(suspects):
                    try:
                        yield submit(index, attempt="-alone").result()
                    except KilledWorker:
                        # (The reason leaves out worker addresses, so errors.jsonl stays deterministic.)
                        yield _fail_shard(index, count, shard_items(index), out, settings, None,
                                          reason="Dask workers kept dying while processing this item's shard "
                                                 "(KilledWorker: out of memory or a crash in native code?)")
        finally:
            if cluster is not None:
                cluster.close()


def _fail_shard(index, count, items, out, settings, attempts, reason: str | None = None) -> ShardSummary:
    """A shard whose worker died on every attempt: its items become error lines, the shard empty."""
    reason = reason or f"the worker process died {attempts} time(s) while processing this item's shard (out of memory or a crash in native code?)"
    failed = [ItemError(it.get("utt_id", ""), it["_row"], _item_path(it), "worker", reason) for it in items]
    return _write_shard(location(out), index, count, [], len(items), failed, Counter(), settings, inputs_stamp(items))


def assemble(out_dir: Location, require_complete: bool = True) -> RunReport | None:
    """Write manifest.json, errors.jsonl and report.json once every shard is finished.

    Returns the report, or None when shards are missing (and ``require_complete`` is False; with
    it True that raises a `UsageError` naming them). Safe to call from every array-job task.
    Every finished shard's file is checked against its summary's sha256 first: a deleted or
    corrupted shard is a `UsageError` (rerun with ``resume`` to rewrite it), never a manifest.
    """
    folder = RunFolder(out_dir)
    if not folder.settings_file.is_file():
        raise UsageError(f"{folder.path} is not an anchorprep output folder (no {folder.settings_file.relative_to(folder.path)})")
    settings = folder.read_settings()
    count = settings.planned_shards
    summaries, missing = [], []
    for index in range(count):
        try:
            summary = folder.read_done(index)
        except UsageError:
            if require_complete:
                raise
            summary = None
        if summary is None:
            missing.append(index)
        else:
            summaries.append(summary)
    if missing:
        if require_complete:
            raise UsageError(f"{len(missing)} of {count} shards are not finished yet (first: {shard_name(missing[0], count)})")
        return None
    for summary in summaries:
        path = folder.path / summary.file
        if summary.file != folder.shard_entry(summary.shard, count) or not path.is_file():
            raise UsageError(f"{path} is missing; rerun the command with `resume` to rewrite it")
        if sha256_file(path) != summary.sha256:
            raise UsageError(f"{path} does not match the sha256 recorded when it was written (corrupted or "
                             "replaced?); rerun the command with `resume` to rewrite it")
    stats: Counter = Counter()
    errors = []
    for summary in summaries:
        stats.update(summary.stats)
        errors.extend(replace(e, shard=summary.file) for e in summary.errors)
    write_text_atomic(folder.errors_file, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in errors))
    report = RunReport(
        items_in=settings.inputs.count, written=sum(s.rows for s in summaries), failed=len(errors),
        failed_by_stage=dict(sorted(Counter(e.stage for e in errors).items())), skipped=0,
        counters=dict(sorted(stats.items())),
    )
    write_json_atomic(folder.report_file, report.to_dict())
    manifest = RunManifest(settings, tuple(ShardEntry(s.file, s.rows, s.sha256) for s in summaries),
                           folder.errors_file.name, folder.report_file.name)
    write_json_atomic(folder.manifest_file, manifest.to_dict())
    return report


__all__ = [
    "ItemFailure", "Job", "RunOptions", "RunPlan", "RunResult", "assemble", "inputs_fingerprint", "process_shard",
    "run", "run_settings", "stage", "stage_failure",
]
