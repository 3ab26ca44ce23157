"""A run's rows open in the common Parquet readers from one folder path, each in its usual way.

The shards have ``OUT/data/`` to themselves (docs/FORMAT.md, "The run folder"). 0.1.0 put
``manifest.json``, ``errors.jsonl`` and ``report.json`` beside the shards, so
``pd.read_parquet(OUT)`` failed on the side files ("Parquet file size is 0 bytes" / "magic bytes
not found"), and so did pyarrow.dataset, polars and ``datasets``. The run here has a failed item,
so ``errors.jsonl`` is not empty, and every reader gets the same rows as anchorprep's own.

Reader rules this layout rests on (checked with pandas 3.1, pyarrow 26, polars 2.1, DuckDB 2.0,
datasets 5.2; `test_why_side_files_must_not_share_the_shards_folder` keeps them honest):
pyarrow.dataset (and so pandas) skips names starting with ``.`` or ``_``; polars refuses a folder
holding any file that is not Parquet, hidden or not; ``datasets`` skips ``.``-names only.
"""

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.shards.run import open_run
from anchorprep.synthetic import write_synthetic_alignments


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """An align run of 12 synthetic utterances in 3 shards, plus one item that fails."""
    root = tmp_path_factory.mktemp("readers")
    manifest = write_synthetic_alignments(root / "corpus", n=12, seed=3)
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write("broken,grids/missing.TextGrid,10.0,spk9\n")
    out = root / "out"
    result = CliRunner().invoke(app, ["align", str(manifest), "-o", str(out), "-k", "hey computer", "-q",
                                      "--shard-size", "5"])
    assert result.exit_code == 1, result.output  # the broken item
    assert (out / "errors.jsonl").read_text(encoding="utf-8").strip()
    return out


@pytest.fixture(scope="module")
def expected(run_dir) -> dict[str, list[int]]:
    """utt_id -> distance, as anchorprep reads the run."""
    return {row["utt_id"]: row["distance"].tolist() for row in open_run(run_dir).iter_rows(["utt_id", "distance"])}


def check(frame: pd.DataFrame, expected: dict[str, list[int]]) -> None:
    assert len(frame) == len(expected) == 12
    got = {utt: [int(d) for d in distance] for utt, distance in zip(frame["utt_id"], frame["distance"])}
    assert got == expected
    assert any(32767 not in d for d in got.values())  # positives with real distances, not only negatives


def test_data_folder_holds_only_the_shards(run_dir):
    assert sorted(p.name for p in (run_dir / "data").iterdir()) == [
        f"anchors-0000{i}-of-00003.parquet" for i in range(3)]


def test_pandas(run_dir, expected):
    check(pd.read_parquet(run_dir / "data"), expected)


def test_pyarrow_dataset(run_dir, expected):
    dataset = ds.dataset(run_dir / "data", format="parquet")
    assert dataset.count_rows() == 12
    check(dataset.to_table(columns=["utt_id", "distance"]).to_pandas(), expected)
    assert pq.read_table(run_dir / "data").num_rows == 12


def test_polars(run_dir, expected):
    check(pl.read_parquet(run_dir / "data").select("utt_id", "distance").to_pandas(), expected)
    lazy = pl.scan_parquet(run_dir / "data").select("utt_id", "distance").collect()
    check(lazy.to_pandas(), expected)


def test_duckdb(run_dir, expected):
    for source in (run_dir / "data", f"{run_dir / 'data'}/*.parquet"):
        rows = duckdb.sql(f"select utt_id, distance from read_parquet('{source}')").fetchall()
        check(pd.DataFrame(rows, columns=["utt_id", "distance"]), expected)
    count = duckdb.sql(f"select count(*) from '{run_dir / 'data'}/*.parquet'").fetchall()[0][0]
    assert count == 12


def test_hf_datasets(run_dir, expected, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")  # the hf extra, installed by the test extra
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    loaded = datasets.load_dataset("parquet", data_dir=str(run_dir / "data"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    check(loaded.select_columns(["utt_id", "distance"]).to_pandas(), expected)
    assert loaded.features["distance"].feature.dtype == "int16"


def test_why_side_files_must_not_share_the_shards_folder(run_dir, tmp_path):
    """The reader rules the layout rests on: if one of these starts passing, a flatter layout
    (side files beside the shards) may have become possible; revisit docs/FORMAT.md."""
    flat = tmp_path / "flat"
    shutil.copytree(run_dir / "data", flat)
    (flat / "_manifest.json").write_text(json.dumps({"schema_version": 1}))
    assert pd.read_parquet(flat).shape[0] == 12  # pyarrow skips "_" names ...
    with pytest.raises(Exception, match="extension"):
        pl.read_parquet(flat)  # ... polars does not ...
    (flat / "_manifest.json").rename(flat / ".manifest.json")
    with pytest.raises(Exception, match="extension"):
        pl.read_parquet(flat)  # ... not even hidden files.


def test_readme_output_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's "Output" block reads the sample run with pandas and pyarrow and prints 24 24."""
    import re

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(repo / "sample_data")
    result = CliRunner().invoke(app, ["align", "sample_data/manifest.csv", "-o", "out/sample", "-k", "hey computer", "-q"])
    assert result.exit_code == 0, result.output
    readme = (repo / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Output\n"):readme.index("## Training with SAL")]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    assert capsys.readouterr().out.split() == re.search(r"# (\d+ \d+)\n", snippet).group(1).split() == ["24", "24"]
