"""Interoperability with other speech toolkits: export a run to lhotse, WeKws and Hugging Face.

* `export_lhotse` — attach anchors to a lhotse CutSet as alignment items that lhotse's own
  transforms move; `cut_anchors` / `collate_anchors` compute per-frame distances/targets of the
  transformed cuts (needs ``pip install 'anchorprep[lhotse]'``).
* `export_wekws` — a WeKws ``data.list`` with keyword tokens, anchors and per-frame targets.
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
from anchorprep.interop.lhotse_export import (
    AnchorBatch, CutAnchors, LhotseExport, NoCutMatchedError, collate_anchors, cut_anchors, export_lhotse,
)
from anchorprep.interop.weights import WeightSettings, WeightsResult, write_weights
from anchorprep.interop.wekws import NoKeyMatchedError, WekwsExport, export_wekws, wekws_label, wekws_token

__all__ = [
    "AnchorBatch", "CutAnchors", "LhotseExport", "MissingDependencyError", "NoCutMatchedError", "NoKeyMatchedError", "WeightSettings",
    "WeightsResult", "WekwsExport", "collate_anchors", "cut_anchors", "export_lhotse", "export_wekws",
    "hf_data_files", "load_hf_dataset", "run_rows", "wekws_label", "wekws_token", "write_weights",
]
