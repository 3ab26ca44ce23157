"""anchorprep: corpus-scale anchors, shards, losses and metrics for Streaming Anchor Loss."""

__version__ = "0.1.0"
