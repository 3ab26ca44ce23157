"""Interoperability with other speech toolkits: export a run to lhotse, WeKws and Hugging Face.

* `export_lhotse` — attach anchors (custom fields) and per-frame distances/targets
  (``TemporalArray``s) to a lhotse CutSet (needs ``pip install 'anchorprep[lhotse]'``).
* `export_wekws` — a WeKws ``data.list`` with keyword indices, anchors and per-frame targets.
* `hf_data_files` / `load_hf_dataset` — the shards as a Hugging Face ``datasets`` dataset
  (``pip install 'anchorprep[hf]'``).
* `write_weights` — a copy of a run with a per-frame ``weight`` column (SAL weights precomputed
  by `anchorprep.loss.anchor_weights`) for trainers outside PyTorch.

The readers that bring other toolkits' annotations *in* live with the other sources:
`anchorprep.sources.alignments.lhotse` (lhotse CutSet/SupervisionSet manifests, word alignments)
and `anchorprep.sources.alignments.rttm` (NIST RTTM speaker segmentation). Optional packages are imported
only when a function needs them.
"""

from anchorprep.interop._run import MissingDependencyError, run_rows
from anchorprep.interop.hf import hf_data_files, load_hf_dataset
from anchorprep.interop.lhotse_export import LhotseExport, export_lhotse
from anchorprep.interop.weights import WeightSettings, WeightsResult, write_weights
from anchorprep.interop.wekws import WekwsExport, export_wekws, wekws_label

__all__ = [
    "LhotseExport", "MissingDependencyError", "WekwsExport", "export_lhotse", "export_wekws", "hf_data_files", "load_hf_dataset",
    "run_rows", "wekws_label", "WeightSettings", "WeightsResult", "write_weights",
]
