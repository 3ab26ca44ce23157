"""`anchorprep merge`: combine the anchors of earlier runs (e.g. vad + accel) by utt_id.

The runs must share a frame grid and anchor rule. Each merged row lists every anchor of every
run with its source; distances and targets are recomputed from the anchor times with the merged
label map and `CombineOptions`, so they are exactly what a single multi-source run would write.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from anchorprep.anchors import BACKGROUND
from anchorprep.errors import InputError, UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.combine import CombineOptions
from anchorprep.pipeline.rows import AnchorEvent, Extent, Labelling, item_float
from anchorprep.pipeline.runner import stage
from anchorprep.shards import PASSTHROUGH_COLUMNS
from anchorprep.shards.run import open_run
from anchorprep.sources.items import item_table

ROW_COLUMNS = ["utt_id", "audio_path", "start_s", "duration_s", "sample_rate", "num_frames",
               "anchor_times_s", "anchor_labels", "anchor_sources"]


@dataclass(frozen=True)
class MergeInputs:
    items: pa.Table  # an item table (`anchorprep.sources.items`)
    grid: FrameGrid
    anchor_rule: str
    labels: tuple[str, ...]
    runs: tuple[str, ...]


def read_merge_inputs(runs: list[Path]) -> MergeInputs:
    """One item per utt_id (first run's order, then ids only later runs have), anchors as JSON."""
    if len(runs) < 2:
        raise UsageError("merge needs at least two runs")
    first_settings = None
    labels: list[str] = []
    merged: dict[str, dict] = {}
    seen: dict[tuple, Path] = {}
    for path in runs:
        run = open_run(path)
        settings = run.settings
        # Merging a run with itself (or with a copy of itself) would list every anchor twice.
        for identity in (("folder", run.path.resolve()),
                         ("content", settings.settings_sha256, tuple(s.sha256 for s in run.shards))):
            if identity in seen:
                raise UsageError(f"{path} is the same run as {seen[identity]}; merge needs distinct runs")
            seen[identity] = path
        if first_settings is None:
            first_settings = settings
        elif (settings.grid, settings.anchor_rule) != (first_settings.grid, first_settings.anchor_rule):
            raise UsageError(f"{path}: frame grid or anchor rule differs from {runs[0]}; merge needs the same grid")
        labels += [label for label in settings.label_map if label != BACKGROUND and label not in labels]
        passthrough = [c for c in PASSTHROUGH_COLUMNS if c in settings.passthrough_columns]
        for shard in run.shards:
            for row in run.read_shard(shard, ROW_COLUMNS + passthrough).to_pylist():
                entry = merged.setdefault(row["utt_id"], {
                    "utt_id": row["utt_id"], "audio_path": row["audio_path"] or "", "start_s": repr(row["start_s"]),
                    "duration_s": repr(row["duration_s"]), "sample_rate": str(row["sample_rate"]),
                    "anchors": [], "num_frames": {}, **{c: row.get(c) or "" for c in passthrough},
                })
                entry["num_frames"][str(path)] = row["num_frames"]
                entry["anchors"] += list(zip(row["anchor_times_s"], row["anchor_labels"], row["anchor_sources"]))
    # An utterance only a run without some pass-through column has gets "" there (as a missing
    # manifest cell would), not NaN, which no string column can hold.
    items = item_table([{**e, "anchors": json.dumps(e["anchors"]), "num_frames": json.dumps(e["num_frames"])}
                        for e in merged.values()])
    return MergeInputs(items, first_settings.grid, first_settings.anchor_rule, tuple(labels), tuple(str(r) for r in runs))


@dataclass(frozen=True)
class MergeJob:
    labelling: Labelling
    runs: tuple[str, ...]
    combine: CombineOptions = field(default_factory=CombineOptions)
    command: str = "merge"

    def settings(self) -> dict:
        return {**self.labelling.settings(), "source": "merge", "merged_runs": list(self.runs),
                "combine": self.combine.settings()}

    def process(self, item: dict) -> tuple[dict, Counter]:
        grid = self.labelling.grid
        with stage("merge"):
            counts = set(json.loads(item["num_frames"]).values())
            if len(counts) != 1:
                raise InputError(f"the runs disagree on this utterance's frame count: {sorted(counts)}")
            sample_rate = int(item["sample_rate"])
            duration = item_float(item, "duration_s")
            extent = Extent(item_float(item, "start_s", 0.0), duration, sample_rate,
                            grid.resampled_length(int(round(duration * sample_rate)), sample_rate))
            if grid.num_frames(extent.grid_samples) != counts.pop():
                raise InputError("stored frame count does not match the grid for this duration")
            events = [AnchorEvent(float(t), label, source) for t, label, source in json.loads(item["anchors"])]
        used, agreement = self.combine.select(events)
        with stage("label"):
            row, stats = self.labelling.build_row(item, extent, events, used=used)
        return row, stats + agreement
