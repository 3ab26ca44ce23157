"""Look at a finished run: validate it, summarise it, and plot one utterance.

* `validate_run` checks a run folder against the format (docs/FORMAT.md) and, with ``deep=N``,
  re-derives a sample of rows from their inputs.
* `run_stats` summarises a run (utterances, anchors, positions, durations, errors).
* `plot_utterance` draws one utterance: waveform, spectrogram, alignment / VAD / accelerometer,
  anchors, distance, SAL weights and targets (needs matplotlib: ``pip install 'anchorprep[plot]'``).
"""

from anchorprep.inspect.plot import PLOT_INSTALL_HINT, PlotResult, plot_utterance
from anchorprep.inspect.stats import RunStats, run_stats
from anchorprep.inspect.validate import CHECKS, Problem, ValidationReport, validate_run

__all__ = ["CHECKS", "PLOT_INSTALL_HINT", "PlotResult", "Problem", "RunStats", "ValidationReport", "plot_utterance", "run_stats",
           "validate_run"]
