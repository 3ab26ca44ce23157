"""What every command shares: option panels, errors as one line with exit 2, progress, summaries,
``--config FILE.toml`` and ``--print-config``.

Nothing here imports numpy, pandas or torch: the library is imported inside each command's body,
so ``anchorprep --help`` starts as fast as typer itself.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import time
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from anchorprep.errors import UsageError
from anchorprep.pipeline.options import PipelineOptions

RUN = "Run"
GRID = "Frame grid and targets"
DEFAULTS = PipelineOptions()

# The shared options of the pipeline commands: (name, annotation), defaults from PipelineOptions.
GRID_OPTIONS = (
    ("sample_rate", Annotated[int, typer.Option("--sample-rate", help="Grid sample rate (features are computed at this rate).", rich_help_panel=GRID)]),
    ("frame_shift_ms", Annotated[float, typer.Option("--frame-shift-ms", rich_help_panel=GRID)]),
    ("frame_length_ms", Annotated[float, typer.Option("--frame-length-ms", rich_help_panel=GRID)]),
    ("snip_edges", Annotated[bool, typer.Option("--snip-edges/--no-snip-edges", help="Kaldi's snip_edges.", rich_help_panel=GRID)]),
    ("subsampling", Annotated[int, typer.Option("--subsampling", help="Model frame = this many feature frames.", rich_help_panel=GRID)]),
    ("anchor_rule", Annotated[str, typer.Option("--anchor-rule", help="causal: first frame whose end >= event; nearest: nearest frame centre.", rich_help_panel=GRID)]),
)
TARGET_OPTIONS = (
    ("positive_window", Annotated[str, typer.Option("--positive-window", help="Frames LO:HI (d = t - anchor) labelled positive.", rich_help_panel=GRID)]),
    ("guard", Annotated[int, typer.Option("--guard", help="Frames beyond the positive window set to ignore_index (-100).", rich_help_panel=GRID)]),
)
RUN_OPTIONS = (
    ("shard_size", Annotated[int, typer.Option("--shard-size", help="Utterances per shard.", rich_help_panel=RUN)]),
    ("workers", Annotated[int, typer.Option("-j", "--workers", help="Worker processes.", rich_help_panel=RUN)]),
    ("shard_index", Annotated[Optional[int], typer.Option("--shard-index", help="Array jobs: this task's index in [0, --num-shards).", rich_help_panel=RUN)]),
    ("num_shards", Annotated[Optional[int], typer.Option("--num-shards", help="Array jobs: split the shard plan into this many tasks; task i runs shards i, i+K, ...", rich_help_panel=RUN)]),
    ("resume", Annotated[bool, typer.Option("--resume", help="Skip shards a previous run with the same settings finished.", rich_help_panel=RUN)]),
    ("overwrite", Annotated[bool, typer.Option("--overwrite", help="Replace a previous run with different settings in --out.", rich_help_panel=RUN)]),
    ("max_errors", Annotated[Optional[int], typer.Option("--max-errors", help="Stop after more than N failed items (exit 1; continue later with --resume).", rich_help_panel=RUN)]),
    ("dry_run", Annotated[bool, typer.Option("--dry-run", help="Print the shard plan and exit without writing.", rich_help_panel=RUN)]),
    ("retries", Annotated[int, typer.Option("--retries", help="Retries of a shard whose worker died or whose task failed.", rich_help_panel=RUN)]),
    ("executor", Annotated[str, typer.Option("--executor", help="local (process pool) or dask (pip install 'anchorprep\\[dask]').", rich_help_panel=RUN)]),
    ("address", Annotated[Optional[str], typer.Option("--address", help="Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster).", rich_help_panel=RUN)]),
)
#: Options of the CLI alone: how it talks to the terminal and where its defaults come from.
CLI_ONLY = ("quiet", "progress_interval", "config", "print_config")

Out = Annotated[str, typer.Option("-o", "--out", help="Output folder: data/ (the Parquet shards), manifest.json, errors.jsonl, report.json.", rich_help_panel=RUN)]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or summary table.", rich_help_panel=RUN)]
ProgressInterval = Annotated[float, typer.Option("--progress-interval", help="Seconds between progress lines when stderr is not a terminal (batch logs).", rich_help_panel=RUN)]


# The SAL weight curve's options, shared by `plot` and `weights` (defaults: anchorprep.loss's).
SAL_WEIGHTS = "SAL weight curve"
Kernel = Annotated[Optional[str], typer.Option("--kernel", help="linear, exponential, gaussian or box (default: anchorprep.loss's default).", rich_help_panel=SAL_WEIGHTS)]
Width = Annotated[Optional[float], typer.Option("--width", help="Kernel width W in model frames (default: anchorprep.loss's default).", rich_help_panel=SAL_WEIGHTS)]
WidthBefore = Annotated[Optional[float], typer.Option("--width-before", help="W before the anchor (d < 0).", rich_help_panel=SAL_WEIGHTS)]
WidthAfter = Annotated[Optional[float], typer.Option("--width-after", help="W at and after the anchor (d >= 0).", rich_help_panel=SAL_WEIGHTS)]
Gain = Annotated[Optional[float], typer.Option("--gain", help="Anchor gain lambda in w = 1 + lambda*K(d) (default: anchorprep.loss's default).", rich_help_panel=SAL_WEIGHTS)]


@functools.lru_cache(maxsize=None)
def console():
    """The stderr console for progress bars and summaries (rich loads only when one is shown)."""
    from rich.console import Console

    return Console(stderr=True)


def option_names(command) -> dict[str, str]:
    """Python parameter name -> how the command line spells it (``edge`` -> ``--edge``), read
    from the command's typer annotations."""
    import typing

    names = {}
    for name, annotation in typing.get_type_hints(command, include_extras=True).items():
        for info in getattr(annotation, "__metadata__", ()):
            if isinstance(info, typer.models.ArgumentInfo):
                names[name] = name.upper()
            elif isinstance(info, typer.models.OptionInfo):
                flags = [flag.split("/")[0] for flag in info.param_decls if flag.startswith("--")]
                names[name] = max(flags, key=len) if flags else "--" + name.replace("_", "-")
    return names


def usage_guard(func):
    """Command wrapper: a `UsageError` becomes one line on stderr in the CLI's terms, and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            message = exc.render(option_names(wrapper))
            typer.echo(f"error: {message}", err=True)  # plain text: rich markup would eat "[plot]"
            raise typer.Exit(2) from None

    return wrapper


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
        defaults[name] = [str(v) for v in item] if isinstance(item, list) else item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigFile = Annotated[Optional[str], typer.Option("--config", is_eager=True, callback=load_config, help="TOML file of defaults for this command (flags override).", rich_help_panel=RUN)]
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


class RichProgress:
    """Items/s and ETA on a terminal."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.label = label
        self.failed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} items/s"), TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console(), transient=True,
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


class LogProgress:
    """One plain line every ``interval_s`` seconds (and at the start and end) for logs that are
    not a terminal: batch schedulers (SLURM, Kubernetes) show them while the run goes on."""

    def __init__(self, label: str, interval_s: float, stream=None) -> None:
        self.label, self.interval_s = label, interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.done = self.failed = self.total = 0

    def _line(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} anchorprep {self.label}: {text}", file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()
        self.last = self.started
        self._line(f"{total:,} items to process")

    def advance(self, n: int, failed: int = 0) -> None:
        self.done += n
        self.failed += failed
        now = time.monotonic()
        if now - self.last >= self.interval_s:
            self.last = now
            self._line(self._status(now))

    def _status(self, now: float) -> str:
        rate = self.done / (now - self.started) if now > self.started else 0.0
        eta = f", ETA {_duration((self.total - self.done) / rate)}" if rate and self.done < self.total else ""
        share = f" ({self.done / self.total:.1%})" if self.total else ""
        return f"{self.done:,}/{self.total:,} items{share}, {rate:,.0f} items/s, {self.failed:,} failed{eta}"

    def stop(self) -> None:
        self._line(self._status(time.monotonic()) + (", done" if self.done >= self.total else ", stopped"))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def print_summary(result) -> None:
    """The run's summary table on stderr."""
    from rich.table import Table

    from anchorprep.shards.run import RunFolder

    report = result.report
    table = Table(title=f"anchorprep → {result.out_dir}", show_header=False)
    rate = result.items_run / result.elapsed_s if result.elapsed_s else 0.0
    rows = [
        ("shards", f"{result.planned_shards} planned, {result.shards_run} run, {result.shards_skipped} resumed"),
        ("items this run", f"{result.items_run:,} ({rate:,.0f}/s, {result.elapsed_s:.1f} s)"),
    ]
    if result.workers < result.workers_requested:
        rows.append(("workers", f"{result.workers} (capped from {result.workers_requested}: one per shard of this job)"))
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
    console().print(table)


def pipeline_command(app: typer.Typer, name: str, grid: bool = True):
    """Register a pipeline command: the decorated function declares the command's own options
    (same names and defaults as the library function `anchorprep.<name>`) and its docstring;
    the shared grid, target and run options (from `PipelineOptions`), ``-q``, ``--config`` and
    ``--print-config`` are added here, once, and the call goes to the library function with
    every option passed through, so the CLI does exactly what the Python call does.
    """
    shared = (GRID_OPTIONS if grid else ()) + TARGET_OPTIONS + RUN_OPTIONS
    added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=getattr(DEFAULTS, n), annotation=a)
             for n, a in shared]
    added += [inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Quiet),
              inspect.Parameter("progress_interval", inspect.Parameter.KEYWORD_ONLY, default=30.0, annotation=ProgressInterval),
              inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigFile),
              inspect.Parameter("print_config", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=PrintConfig)]

    def decorate(declaration):
        own = list(inspect.signature(declaration).parameters.values())

        @functools.wraps(declaration)
        def command(**kwargs):
            from anchorprep.pipeline import api

            quiet, print_config = kwargs.pop("quiet"), kwargs.pop("print_config")
            interval = kwargs.pop("progress_interval")
            kwargs.pop("config")
            function = getattr(api, name)
            if print_config:
                typer.echo(config_toml(name, api.stored_config(function, _as_arguments(kwargs, own))), nl=False)
                raise typer.Exit(0)
            progress = None
            if not quiet and not kwargs["dry_run"]:
                progress = RichProgress(name) if console().is_terminal else LogProgress(name, interval)
            try:
                result = function(**kwargs, progress=progress)
            except KeyboardInterrupt:
                typer.echo(f"interrupted: finished shards are kept in {kwargs['out']}; run the same command "
                           "with --resume to continue", err=True)
                raise typer.Exit(130) from None
            if kwargs["dry_run"]:
                typer.echo(json.dumps(result.plan.to_dict(), indent=2))
                raise typer.Exit(0)
            if not quiet:
                print_summary(result)
            raise typer.Exit(result.exit_code)

        command.__signature__ = inspect.Signature(own + added)
        command.__annotations__ = {p.name: p.annotation for p in own + added}
        return app.command(name)(usage_guard(command))

    return decorate


def _as_arguments(kwargs: dict, own: list[inspect.Parameter]) -> dict:
    """CLI keyword arguments as the library function's: its own options, the rest in ``options``."""
    names = {p.name for p in own}
    return {**{k: v for k, v in kwargs.items() if k in names},
            "options": {k: v for k, v in kwargs.items() if k not in names}}

