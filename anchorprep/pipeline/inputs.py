"""Item columns that come from an earlier run (item tables themselves: `anchorprep.sources.items`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from anchorprep.errors import UsageError


def add_search_region(items: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Set ``search_start_s`` from an earlier run's anchors (e.g. the end of a wake word).

    Items of utterances that the earlier run has no anchor for get an empty search region
    (``search_start_s`` = ``search_end_s`` = 0), so they carry no onset anchor.
    """
    import json

    import pyarrow.parquet as pq

    manifest = Path(run_dir) / "manifest.json"
    if not manifest.is_file():
        raise UsageError(f"{run_dir}: no manifest.json; `anchors_from` needs a finished run")
    first_anchor: dict[str, float] = {}
    for shard in json.loads(manifest.read_text())["shards"]:
        table = pq.read_table(Path(run_dir) / shard["file"], columns=["utt_id", "anchor_times_s"])
        for utt, times in zip(table.column("utt_id").to_pylist(), table.column("anchor_times_s").to_pylist()):
            if times:
                first_anchor[utt] = min(times)
    items = items.copy()
    items["search_start_s"] = [repr(first_anchor[u]) if u in first_anchor else "0" for u in items["utt_id"]]
    items["search_end_s"] = ["" if u in first_anchor else "0" for u in items["utt_id"]]
    return items
