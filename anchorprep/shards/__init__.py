"""Parquet shards: the row schema, atomic writes and the run layout (SPEC §4)."""

from anchorprep.shards.schema import (
    METADATA_KEY,
    PASSTHROUGH_COLUMNS,
    SCHEMA_VERSION,
    read_settings,
    rows_to_table,
    shard_schema,
)

__all__ = ["METADATA_KEY", "PASSTHROUGH_COLUMNS", "SCHEMA_VERSION", "read_settings", "rows_to_table", "shard_schema"]
