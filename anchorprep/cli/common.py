"""Options every pipeline command shares, and the run/report plumbing around the runner."""

import functools
import inspect
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from anchorprep.anchors import TargetWindow
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.rows import Labelling
from anchorprep.pipeline.runner import RunOptions, RunResult, run
from anchorprep.shards.run import RunFolder

console = Console(stderr=True)

RUN = "Run"
GRID = "Frame grid and targets"

Out = Annotated[Path, typer.Option("-o", "--out", help="Output folder for shards, manifest.json, errors.jsonl, report.json.", rich_help_panel=RUN)]
ShardSize = Annotated[int, typer.Option("--shard-size", help="Utterances per shard.", rich_help_panel=RUN)]
Workers = Annotated[int, typer.Option("-j", "--workers", help="Worker processes.", rich_help_panel=RUN)]
ShardIndex = Annotated[Optional[int], typer.Option("--shard-index", help="Array jobs: this task's index in [0, --num-shards).", rich_help_panel=RUN)]
NumShards = Annotated[Optional[int], typer.Option("--num-shards", help="Array jobs: split the shard plan into this many tasks; task i runs shards i, i+K, ...", rich_help_panel=RUN)]
Resume = Annotated[bool, typer.Option("--resume", help="Skip shards a previous run with the same settings finished.", rich_help_panel=RUN)]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a previous run with different settings in --out.", rich_help_panel=RUN)]
MaxErrors = Annotated[Optional[int], typer.Option("--max-errors", help="Stop after more than N failed items (exit 1; continue later with --resume).", rich_help_panel=RUN)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the shard plan and exit without writing.", rich_help_panel=RUN)]
Executor = Annotated[str, typer.Option("--executor", help="local (process pool) or dask (pip install 'anchorprep[dask]').", rich_help_panel=RUN)]
Address = Annotated[Optional[str], typer.Option("--address", help="Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster).", rich_help_panel=RUN)]
Retries = Annotated[int, typer.Option("--retries", help="Retries of a shard whose worker died or whose task failed.", rich_help_panel=RUN)]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or summary table.", rich_help_panel=RUN)]

SampleRate = Annotated[int, typer.Option("--sample-rate", help="Grid sample rate (features are computed at this rate).", rich_help_panel=GRID)]
FrameShift = Annotated[float, typer.Option("--frame-shift-ms", rich_help_panel=GRID)]
FrameLength = Annotated[float, typer.Option("--frame-length-ms", rich_help_panel=GRID)]
SnipEdges = Annotated[bool, typer.Option("--snip-edges/--no-snip-edges", help="Kaldi's snip_edges.", rich_help_panel=GRID)]
Subsampling = Annotated[int, typer.Option("--subsampling", help="Model frame = this many feature frames.", rich_help_panel=GRID)]
AnchorRule = Annotated[str, typer.Option("--anchor-rule", help="causal: first frame whose end >= event; nearest: nearest frame centre.", rich_help_panel=GRID)]
Window = Annotated[str, typer.Option("--positive-window", help="Frames LO:HI (d = t - anchor) labelled positive.", rich_help_panel=GRID)]
Guard = Annotated[int, typer.Option("--guard", help="Frames beyond the positive window set to ignore_index (-100).", rich_help_panel=GRID)]


GRID_PARAMS = (("sample_rate", SampleRate, 16000), ("frame_shift_ms", FrameShift, 10.0),
               ("frame_length_ms", FrameLength, 25.0), ("snip_edges", SnipEdges, True),
               ("subsampling", Subsampling, 1), ("anchor_rule", AnchorRule, "causal"))
TARGET_PARAMS = (("positive_window", Window, "0:30"), ("guard", Guard, 0))
RUN_PARAMS = (("out", Out, inspect.Parameter.empty), ("shard_size", ShardSize, 1000), ("workers", Workers, 1),
              ("shard_index", ShardIndex, None), ("num_shards", NumShards, None), ("resume", Resume, False),
              ("overwrite", Overwrite, False), ("max_errors", MaxErrors, None), ("dry_run", DryRun, False),
              ("quiet", Quiet, False), ("retries", Retries, 1), ("executor", Executor, "local"),
              ("address", Address, None))


class Common(dict):
    """The options every pipeline command shares, as given (grid, targets, run)."""

    def window(self) -> TargetWindow:
        return TargetWindow.parse(self["positive_window"], self["guard"])

    def labelling(self, labels: tuple[str, ...]) -> Labelling:
        grid = FrameGrid(self["sample_rate"], self["frame_shift_ms"], self["frame_length_ms"], self["snip_edges"],
                         self["subsampling"])
        return Labelling(grid, self.window(), labels, self["anchor_rule"])

    def run_options(self) -> RunOptions:
        return RunOptions(out_dir=self["out"], **{name: self[name] for name, _, _ in RUN_PARAMS if name != "out"})


class RichProgress:
    """Items/s and ETA on a TTY; silent otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.failed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} items/s"), TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        )

    def start(self, total: int) -> None:
        self._task = self._progress.add_task(self.label, total=total, rate="-", failed=0)
        self._progress.start()

    def advance(self, n: int, failed: int = 0) -> None:
        self.failed += failed
        self._progress.advance(self._task, n)
        task = self._progress.tasks[0]
        rate = f"{task.completed / task.elapsed:,.0f}" if task.elapsed else "-"
        self._progress.update(self._task, rate=rate, failed=self.failed)

    def stop(self) -> None:
        self._progress.stop()


def execute(job, items, options: RunOptions) -> None:
    """Run a job, print the summary, and exit with 0 (ok), 1 (items failed) or 2 (usage)."""
    show = not options.quiet and console.is_terminal
    result = run(job, items, options, progress=RichProgress(job.command) if show else None,
                 config=dict(_effective_config))
    if options.dry_run:
        typer.echo(json.dumps(result.plan.to_dict(), indent=2))
        raise typer.Exit(0)
    if not options.quiet:
        print_summary(result)
    raise typer.Exit(result.exit_code)


def print_summary(result: RunResult) -> None:
    report = result.report
    table = Table(title=f"anchorprep → {result.out_dir}", show_header=False)
    rate = result.items_run / result.elapsed_s if result.elapsed_s else 0.0
    rows = [
        ("shards", f"{result.planned_shards} planned, {result.shards_run} run, {result.shards_skipped} resumed"),
        ("items this run", f"{result.items_run:,} ({rate:,.0f}/s, {result.elapsed_s:.1f} s)"),
    ]
    if report is not None:
        rows += [
            ("in / written / failed", f"{report.items_in:,} / {report.written:,} / {report.failed:,}"),
            ("positives / negatives", f"{report.positives:,} / {report.negatives:,}"),
            ("anchors (clipped)", f"{report.anchors:,} ({report.counter('anchors_clipped_after_end')} past the end)"),
        ]
        if report.failed:
            rows.append(("errors", str(RunFolder(result.out_dir).errors_file)))
    elif result.stopped_early:
        rows.append(("stopped", f"more than --max-errors items failed ({result.items_failed}); fix them and rerun with --resume"))
    else:
        rows.append(("manifest", "not written yet: other shards of this run are unfinished (run `anchorprep assemble` when all are)"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


# Options that change how a run executes, not what it writes: kept out of the stored config.
RUN_ONLY = {"workers", "shard_index", "num_shards", "resume", "overwrite", "max_errors", "dry_run", "quiet",
            "executor", "address", "retries", "config", "print_config", "inputs", "out", "runs"}
_effective_config: dict = {}


def load_config(ctx: typer.Context, param, value: Optional[Path]):
    """``--config FILE.toml``: defaults for this command from the file; flags still override.

    Keys may sit at the top level, in a ``[run]`` or ``[grid]`` table (shared by every command)
    or in a table named after the command (``[align]``, ``[vad]``, ...); dashes or underscores.
    """
    if value is None:
        return value
    import tomllib

    try:
        data = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {value}: {exc}") from None
    command = ctx.command.name
    merged = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for table in ("run", "grid", command):
        merged.update(data.get(table, {}))
    names = {p.name: p.name for p in ctx.command.params}
    names.update({flag[2:].replace("-", "_"): p.name for p in ctx.command.params for flag in p.opts if flag.startswith("--")})
    defaults = {}
    for key, item in merged.items():
        name = names.get(key.replace("-", "_"))
        if name is None or name in ("config", "print_config"):
            raise typer.BadParameter(f"{value}: unknown setting {key!r} for `anchorprep {command}`")
        defaults[name] = [str(v) for v in item] if isinstance(item, list) else str(item) if isinstance(item, Path) else item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigFile = Annotated[Optional[Path], typer.Option("--config", is_eager=True, callback=load_config, help="TOML file of defaults for this command (flags override).", rich_help_panel=RUN)]
PrintConfig = Annotated[bool, typer.Option("--print-config", help="Print the effective configuration as TOML and exit.", rich_help_panel=RUN)]


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def config_toml(command: str, config: dict) -> str:
    """The config as a TOML table (parameter names are the long flag names, dashed)."""
    lines = [f"[{command}]"]
    lines += [f"{key.replace('_', '-')} = {_toml_value(value)}" for key, value in config.items() if value is not None]
    return "\n".join(lines) + "\n"


def _option_names() -> dict[str, str]:
    """``{parameter: --option}`` of the running command, for `UsageError.render`."""
    try:  # typer >= 0.17 runs commands on its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context
    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    return {p.name: longs[0] for p in ctx.command.params if (longs := [o for o in p.opts if o.startswith("--")])}


def usage_guard(func):
    """Command wrapper: `UsageError` → message and exit 2; ``--print-config``; records the config."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        config = {k: v for k, v in kwargs.items() if k not in RUN_ONLY}
        if kwargs.get("print_config"):
            typer.echo(config_toml(func.__name__.removesuffix("_command"), config), nl=False)
            raise typer.Exit(0)
        _effective_config.clear()
        _effective_config.update({k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in config.items()})
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            # plain text: rich markup would eat "[plot]"
            typer.echo(f"error: {exc.render(_option_names())}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def pipeline_command(name: str, grid: bool = True):
    """Register a pipeline command that takes the shared options as ``common: Common``.

    The grid (unless ``grid=False``), target and run options, ``--config`` and ``--print-config``
    are added to the command's signature here, once, instead of in every command.
    """
    from anchorprep.cli import app

    shared = (GRID_PARAMS if grid else ()) + TARGET_PARAMS + RUN_PARAMS
    extra = shared + (("config", ConfigFile, None), ("print_config", PrintConfig, False))

    def decorate(func):
        own = [p for p in inspect.signature(func).parameters.values() if p.name != "common"]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in extra]

        @functools.wraps(func)
        def with_common(**kwargs):
            common = Common({n: kwargs.pop(n) for n, _, _ in shared})
            kwargs.pop("config"), kwargs.pop("print_config")
            return func(**kwargs, common=common)

        with_common.__signature__ = inspect.Signature(own + added)
        with_common.__annotations__ = {p.name: p.annotation for p in own + added}
        return app.command(name)(usage_guard(with_common))

    return decorate
