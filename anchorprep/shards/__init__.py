"""Parquet shards and the run folder: the row schema, atomic writes, and `run` (docs/FORMAT.md).

`anchorprep.shards.run` owns the run folder: its file names, its JSON files as typed
dataclasses (`RunSettings`, `RunManifest`, `RunReport`, ...), `open_run` and row iteration.
"""

from anchorprep.shards.run import (
    DATA_DIR, ERRORS_FILE, MANIFEST_FILE, REPORT_FILE, RUN_SETTINGS_FILE, SHARD_GLOB, InputsFingerprint, ItemError,
    Run, RunFolder, RunManifest, RunReport, RunSettings, ShardEntry, ShardSummary, iter_rows, list_column, open_run,
    shard_file, shard_name,
)
from anchorprep.shards.schema import (
    METADATA_KEY,
    PASSTHROUGH_COLUMNS,
    SCHEMA_VERSION,
    read_settings,
    rows_to_table,
    shard_schema,
)

__all__ = [
    "DATA_DIR", "ERRORS_FILE", "InputsFingerprint", "ItemError", "MANIFEST_FILE", "METADATA_KEY", "PASSTHROUGH_COLUMNS",
    "REPORT_FILE", "RUN_SETTINGS_FILE", "Run", "RunFolder", "RunManifest", "RunReport", "RunSettings",
    "SCHEMA_VERSION", "SHARD_GLOB", "ShardEntry", "ShardSummary", "iter_rows", "list_column", "open_run",
    "read_settings", "rows_to_table", "shard_file", "shard_name", "shard_schema",
]
