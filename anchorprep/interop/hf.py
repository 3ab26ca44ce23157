"""Hugging Face ``datasets`` on anchorprep shards.

Shards are plain Parquet, so ``datasets``' own Parquet builder reads them with no anchorprep
code at training time; the column types survive: ``distance``/``target`` are lists of
``int16``, ``anchor_times_s`` of ``float64``, ``anchor_frames`` of ``int32``, labels and sources
lists of ``string`` (``List(Value("int16"))`` in datasets >= 4, ``Sequence(Value("int16"))``
before)::

    from datasets import load_dataset
    ds = load_dataset("parquet", data_files=hf_data_files("shards/"), split="train")
    ds = ds.with_format("torch", columns=["target", "distance"])

The Arrow table keeps ``int16``; ``with_format("torch")`` / ``"numpy"`` hand out ``int64``
(``datasets`` upcasts integers on access), which ``torch.nn.functional.cross_entropy`` wants
anyway. It works offline (``HF_DATASETS_OFFLINE=1``); pass ``cache_dir=`` to keep the Arrow
cache out of ``~/.cache/huggingface``. `hf_data_files` lists a run's shards in manifest order, so the rows
come in the run's order; `load_hf_dataset` is the call above in one line.
"""

from __future__ import annotations

import os

from anchorprep.data.source import open_source
from anchorprep.interop._run import require


def hf_data_files(run_dir: str | os.PathLike) -> list[str]:
    """The run's shard files, in order, as strings (``data_files=`` for ``load_dataset``)."""
    return [str(shard.path) for shard in open_source(run_dir).shards]


def load_hf_dataset(run_dir: str | os.PathLike, split: str = "train", **kwargs):
    """``datasets.load_dataset("parquet", data_files=hf_data_files(run_dir), split=split, **kwargs)``.

    Raises `MissingDependencyError` (with the install command) when ``datasets`` is missing.
    """
    datasets = require("datasets", "hf", "load_hf_dataset")
    return datasets.load_dataset("parquet", data_files=hf_data_files(run_dir), split=split, **kwargs)
