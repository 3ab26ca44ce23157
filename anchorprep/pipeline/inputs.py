"""Item columns that come from an earlier run (item tables themselves: `anchorprep.sources.items`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def add_search_region(items: pa.Table, run_dir: Path) -> pa.Table:
    """The item table with ``search_start_s`` set from an earlier run's anchors (e.g. the end of
    a wake word).

    Items of utterances that the earlier run has no anchor for get an empty search region
    (``search_start_s`` = ``search_end_s`` = 0), so they carry no onset anchor. ``run_dir`` must
    be a finished run (`open_run`).
    """
    from anchorprep.shards.run import open_run
    from anchorprep.sources.arrow import string_array

    first_anchor: dict[str, float] = {}
    for row in open_run(run_dir).iter_rows(["utt_id", "anchor_times_s"]):
        if len(row["anchor_times_s"]):
            first_anchor[row["utt_id"]] = float(row["anchor_times_s"].min())
    utt_ids = items.column("utt_id").to_pylist()
    regions = {
        "search_start_s": [repr(first_anchor[u]) if u in first_anchor else "0" for u in utt_ids],
        "search_end_s": ["" if u in first_anchor else "0" for u in utt_ids],
    }
    for name, values in regions.items():
        column = string_array(values)
        if name in items.column_names:  # replaced in place, as a DataFrame assignment did
            items = items.set_column(items.column_names.index(name), name, column)
        else:
            items = items.append_column(name, column)
    return items
