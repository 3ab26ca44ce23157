"""The options every pipeline shares: frame grid, targets and how the run executes.

The pipeline functions (`anchorprep.align`, `vad`, `accel`, `merge`) take these as keyword
arguments named like the CLI options (``sample_rate=8000`` is ``--sample-rate 8000``);
`PipelineOptions` holds them, with the defaults both the Python API and the CLI use. This module
imports nothing heavy, so the CLI can show its defaults without loading numpy or pandas.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

from anchorprep.errors import UsageError

EXECUTORS = ("local", "dask")
#: Options that change how a run executes, not what it writes: never part of the stored settings.
EXECUTION_OPTIONS = ("workers", "shard_index", "num_shards", "resume", "overwrite", "max_errors", "dry_run",
                     "retries", "executor", "address")
GRID_OPTIONS = ("sample_rate", "frame_shift_ms", "frame_length_ms", "snip_edges", "subsampling", "anchor_rule")
TARGET_OPTIONS = ("positive_window", "guard")


@dataclass(frozen=True)
class ExecutionOptions:
    """How a run is cut into shards and executed: ``shard_size`` utterances per shard, ``workers``
    processes, array-job ``shard_index``/``num_shards``, ``resume``, ``overwrite``,
    ``max_errors``, ``dry_run``, ``retries`` of a failed shard, ``executor`` local or dask at
    ``address``. Validated on construction (`UsageError`)."""

    shard_size: int = 1000
    workers: int = 1
    shard_index: int | None = None
    num_shards: int | None = None
    resume: bool = False
    overwrite: bool = False
    max_errors: int | None = None
    dry_run: bool = False
    retries: int = 1
    executor: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise UsageError(f"`executor` must be one of {', '.join(EXECUTORS)}")
        if self.retries < 0:
            raise UsageError("`retries` must be >= 0")
        if self.shard_size < 1:
            raise UsageError("`shard_size` must be at least 1")
        if self.workers < 1:
            raise UsageError("`workers` must be at least 1")
        if (self.shard_index is None) != (self.num_shards is None):
            raise UsageError("`shard_index` and `num_shards` go together")
        if self.num_shards is not None and not 0 <= self.shard_index < self.num_shards:
            raise UsageError(f"`shard_index` must be in [0, {self.num_shards}), got {self.shard_index}")


@dataclass(frozen=True)
class PipelineOptions(ExecutionOptions):
    """Frame grid, targets and run options of a pipeline call (see the README for each).

    Grid: Kaldi framing of the features the labels must line up with; ``anchor_rule`` maps an
    event time to a frame (``causal``: the first frame whose end is at or after it; ``nearest``:
    the frame whose centre is nearest). Targets: frames ``LO <= d <= HI`` of ``positive_window``
    are positive, ``guard`` frames beyond it are ``-100``. Run: the `ExecutionOptions`.
    """

    sample_rate: int = 16000
    frame_shift_ms: float = 10.0
    frame_length_ms: float = 25.0
    snip_edges: bool = True
    subsampling: int = 1
    anchor_rule: str = "causal"
    positive_window: str = "0:30"
    guard: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = f.type.split(" | ")
            if value is None and "None" in kinds:
                continue
            for kind in kinds:
                if kind != "None" and _ACCEPTS[kind](value):
                    # 20 and 20.0 (or numpy.int64(20) and 20) must store the same settings
                    object.__setattr__(self, f.name, _TYPES[kind](value))
                    break
            else:
                raise UsageError(f"`{f.name}` must be {f.type.replace(' | ', ' or ')}, got {value!r}")
        super().__post_init__()

    def execution(self) -> dict:
        """The `ExecutionOptions` part, as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(ExecutionOptions)}

    @classmethod
    def from_kwargs(cls, command: str, options: dict, grid: bool = True) -> "PipelineOptions":
        """Options from a pipeline function's ``**options``; unknown names are a `UsageError`.

        ``grid=False`` (merge) refuses the grid options: that command takes the grid of its runs.
        """
        allowed = [f.name for f in fields(cls) if grid or f.name not in GRID_OPTIONS]
        unknown = [name for name in options if name not in allowed]
        if unknown:
            raise UsageError(f"{command}() got unknown option(s) {', '.join(unknown)}; "
                             f"its shared options are {', '.join(allowed)}")
        return cls(**options)

    def stored(self, grid: bool = True) -> dict:
        """The options that shape the output, in a fixed order (part of the run's stored config)."""
        names = [f.name for f in fields(self) if f.name not in EXECUTION_OPTIONS and (grid or f.name not in GRID_OPTIONS)]
        return {name: getattr(self, name) for name in names}


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_ACCEPTS = {
    "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}
