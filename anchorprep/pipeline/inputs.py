"""Item columns that come from an earlier run (item tables themselves: `anchorprep.sources.items`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


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
