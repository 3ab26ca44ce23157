"""The batch pipelines: one job per command (align, vad, accel, merge), the runner that executes
a job over an item table into a run folder, and `api`, the public functions (`anchorprep.align`,
...) that the CLI calls."""
