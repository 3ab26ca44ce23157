"""Data stage of the SAL training benchmark: corpus -> `anchorprep align` / `anchorprep vad` -> fbank cache.

Everything a model sees comes out of anchorprep's own pipeline:

1. `make_corpus` (scripts/espeak_corpus.py) synthesises the wake-phrase corpus: audio, MFA-style
   TextGrids, ``manifest.csv`` (with a ``split`` column: train / valid / test by voice variant).
2. `make_noise_clips` writes noise-only clips (the onset task's negatives) with the generator's own
   coloured-noise function, at the level and colour of the noise in a corpus utterance of the same
   split (measured in that utterance's leading silence).
3. `build_shards` calls the anchorprep CLI in a subprocess: ``anchorprep align -k "hey computer"``
   for the keyword task, ``anchorprep vad --onsets first`` for the onset task.
4. `cache_features` reads the shards with `anchorprep.data.ShardDataset(features=Fbank(40))` (so
   features are computed on the shards' own frame grid and checked against ``num_frames``) and
   stores one tensor per utterance, so that training epochs do not recompute them.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WAKE_PHRASE = "hey computer"
TASKS = ("keyword", "onset")
SPLITS = ("train", "valid", "test")


def load_generator():
    """scripts/espeak_corpus.py as a module (it is a script, not part of the package)."""
    name = "espeak_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "espeak_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# 1. corpus


EVAL_NEGATIVE_PREFIX = "evalneg-"


def make_corpus(work: Path, positives: int, negatives: int, seed: int, workers: int, log,
                name: str = "corpus", voices: list[tuple[str, str]] | None = None) -> tuple[Path, bool]:
    """Generate (or reuse, when the parameters match) an espeak-ng corpus; return (manifest, reused)."""
    gen = load_generator()
    out = work / name
    voices = [tuple(v) for v in (voices or gen.DEFAULT_VOICES)]
    params = {"positives": positives, "negatives": negatives, "seed": seed, "wake_phrase": WAKE_PHRASE,
              "voices": [list(v) for v in voices], "snr_db": [5.0, 20.0],
              "leading_silence_s": [0.2, 1.5], "generator_sha": _file_sha(REPO / "scripts" / "espeak_corpus.py")}
    stamp = out / "benchmark_params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and (out / "manifest.csv").is_file():
        log(f"{name}: reusing {out} ({positives}+{negatives} utterances, same parameters)")
        return out / "manifest.csv", True
    if stamp.is_file():
        stamp.unlink()
    started = time.perf_counter()
    manifest = gen.make_corpus(out, positives, negatives, seed=seed, voices=voices, wake_phrase=WAKE_PHRASE,
                               snr_db=(5.0, 20.0), leading_silence_s=(0.2, 1.5), workers=workers, overwrite=True)
    stamp.write_text(json.dumps(params, indent=1))
    log(f"{name}: synthesised {positives} positives + {negatives} negatives with espeak-ng in "
        f"{time.perf_counter() - started:.1f} s ({workers} workers)")
    return manifest, False


def eval_voices() -> list[tuple[str, str]]:
    """The valid and test voices of the default voice table."""
    return [v for v in load_generator().DEFAULT_VOICES if v[1] != "train"]


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def speech_manifest(work: Path, corpus_manifest: Path, eval_negative_manifest: Path | None) -> Path:
    """The keyword task's manifest: the corpus plus the extra valid/test negatives (absolute paths).

    The extra negatives' ids get the prefix ``evalneg-`` (both corpora number from utt00000).
    """
    rows = []
    for manifest, prefix in ((corpus_manifest, ""), (eval_negative_manifest, EVAL_NEGATIVE_PREFIX)):
        if manifest is None:
            continue
        for r in _read_csv(manifest):
            rows.append({**r, "utt_id": prefix + r["utt_id"],
                         "audio_path": str((manifest.parent / r["audio_path"]).resolve()),
                         "alignment_path": str((manifest.parent / r["alignment_path"]).resolve())})
    path = work / "keyword_manifest.csv"
    _write_csv(path, rows, ["utt_id", "audio_path", "alignment_path", "speaker", "text", "split"])
    return path


def load_truth(corpus_manifest: Path, eval_negative_manifest: Path | None) -> dict[str, dict]:
    """truth.json entries of both corpora, keyed by the ids used in the benchmark's manifests."""
    truth = dict(json.loads((corpus_manifest.parent / "truth.json").read_text())["utterances"])
    if eval_negative_manifest is not None:
        extra = json.loads((eval_negative_manifest.parent / "truth.json").read_text())["utterances"]
        truth.update({EVAL_NEGATIVE_PREFIX + k: v for k, v in extra.items()})
    return truth


# ----------------------------------------------------------------------------------------------
# 2. noise-only clips (onset-task negatives)


def make_noise_clips(work: Path, speech: Path, truth: dict[str, dict], count: int, eval_count: int, seed: int,
                     duration_s: tuple[float, float] = (3.0, 6.0)) -> Path:
    """Write noise-only clips and the onset task's manifest (speech rows + clips).

    Clip ``i`` copies the noise of a source utterance: its colour (the generator's ``noise_beta``)
    and its level, measured as the RMS of the source's leading silence in the written audio (pure
    noise, after the generator's peak normalisation); it takes the source's split. The first
    ``count`` clips take the speech manifest's rows in order as sources (so they follow its
    train / valid / test proportions), the next ``eval_count`` only its valid and test rows (more
    negative audio to measure false alarms on). The noise itself is fresh (``coloured_noise``
    seeded with ``(seed, i)``): no audio is shared between splits. Returns the onset manifest.
    """
    gen = load_generator()
    rows = _read_csv(speech)
    held_out = [r for r in rows if r["split"] != "train"]
    sources = [rows[i % len(rows)] for i in range(count)] + [held_out[i % len(held_out)] for i in range(eval_count)]
    out = work / "noise"
    (out / "audio").mkdir(parents=True, exist_ok=True)
    noise_rows = []
    for i, src in enumerate(sources):
        info = truth[src["utt_id"]]
        audio, sr = sf.read(src["audio_path"], dtype="float64")
        lead = int(max(0.05, info["leading_silence_s"] - 0.02) * sr)
        level = float(np.sqrt(np.mean(audio[:lead] ** 2)))
        rng = np.random.default_rng([seed, 7, i])
        n = round(rng.uniform(*duration_s) * sr)
        clip = gen.coloured_noise(n, float(info["noise_beta"]), rng) * level
        path = out / "audio" / f"noise{i:05d}.flac"
        sf.write(str(path), gen.to_int16(clip), sr, format="FLAC", subtype="PCM_16")
        noise_rows.append({"utt_id": f"noise{i:05d}", "audio_path": str(path), "alignment_path": "",
                           "speaker": "noise", "text": f"beta={info['noise_beta']}", "split": src["split"]})
    manifest = work / "onset_manifest.csv"
    _write_csv(manifest, rows + noise_rows, ["utt_id", "audio_path", "alignment_path", "speaker", "text", "split"])
    return manifest


# ----------------------------------------------------------------------------------------------
# 3. shards through the anchorprep CLI


def grid_args(subsampling: int, window: int) -> list[str]:
    return ["--subsampling", str(subsampling), "--positive-window", f"0:{window}"]


def cli_commands(keyword_manifest: Path, onset_manifest: Path, shard_dir: Path, subsampling: int, window: int,
                 workers: int) -> dict[str, list[str]]:
    """The two anchorprep commands (argument lists after ``python -m anchorprep``)."""
    common = grid_args(subsampling, window) + ["-j", str(workers), "--shard-size", "500", "--overwrite", "-q"]
    return {
        "keyword": ["align", str(keyword_manifest), "-o", str(shard_dir / "keyword"), "-k", WAKE_PHRASE, *common],
        "onset": ["vad", str(onset_manifest), "-o", str(shard_dir / "onset"), "--onsets", "first", *common],
    }


def build_shards(commands: dict[str, list[str]], log) -> dict[str, dict]:
    """Run ``python -m anchorprep ...`` for each task; return each run's report.json."""
    reports = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for task, args in commands.items():
        cmd = [sys.executable, "-m", "anchorprep", *args]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        out = Path(args[args.index("-o") + 1])
        reports[task] = json.loads((out / "report.json").read_text())
        log(f"shards[{task}]: {reports[task]['written']} rows ({reports[task].get('positives', 0)} positive) "
            f"in {time.perf_counter() - started:.1f} s: python -m anchorprep {' '.join(args)}")
    return reports


# ----------------------------------------------------------------------------------------------
# 4. features


def cache_features(shard_dir: Path, cache_dir: Path, num_mel_bins: int, workers: int, log) -> dict[str, Path]:
    """Fbank features for every shard row of both tasks, one file per task.

    Features come from `ShardDataset(..., features=Fbank(num_mel_bins))`; an utterance that both
    tasks share (same audio and segment; the grids are identical) is computed once. Each cache file
    holds per-utterance lists (utt_id, split, features, target, distance, anchor_frames,
    anchor_times_s, duration_s), the shards' grid and label map, and the train-split CMVN.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    from anchorprep.data import Fbank, ShardDataset

    cache_dir.mkdir(parents=True, exist_ok=True)
    fbank = Fbank(num_mel_bins=num_mel_bins)
    shared: dict[tuple, torch.Tensor] = {}
    paths = {}
    grids = {}
    for task in TASKS:
        meta = ShardDataset(shard_dir / task, columns=("split", "anchor_times_s", "duration_s", "audio_path", "start_s"))
        grids[task] = meta.grid.to_dict()
        keys = [(meta[i]["audio_path"], meta[i]["start_s"], meta[i]["duration_s"]) for i in range(len(meta))]
        todo = [i for i, key in enumerate(keys) if key not in shared]
        if todo:
            featured = ShardDataset(shard_dir / task, features=fbank)
            started = time.perf_counter()
            loader = DataLoader(Subset(featured, todo), batch_size=None, num_workers=workers)
            for i, item in zip(todo, loader):
                shared[keys[i]] = item["features"].clone()
            log(f"features[{task}]: {len(todo)} utterances in {time.perf_counter() - started:.1f} s "
                f"({len(meta) - len(todo)} shared with an earlier task)")
        items = [meta[i] for i in range(len(meta))]
        split = [item["split"] for item in items]
        feats = [shared[k] for k in keys]
        train = torch.cat([f for f, s in zip(feats, split) if s == "train"])
        data = {
            "task": task,
            "grid": grids[task],
            "label_map": meta.label_map,
            "settings": meta.settings,
            "utt_id": [item["utt_id"] for item in items],
            "split": split,
            "features": feats,
            "target": [item["target"].clone() for item in items],
            "distance": [item["distance"].clone() for item in items],
            "anchor_frames": [item["anchor_frames"].clone() for item in items],
            "anchor_times_s": [np.asarray(item["anchor_times_s"], dtype=np.float64) for item in items],
            "duration_s": [float(item["duration_s"]) for item in items],
            "cmvn_mean": train.mean(0),
            "cmvn_std": train.std(0).clamp_min(1e-3),
        }
        paths[task] = cache_dir / f"{task}.pt"
        torch.save(data, paths[task])
    if grids["keyword"] != grids["onset"]:
        raise RuntimeError(f"the two tasks' shards disagree on the frame grid: {grids}")
    return paths


# ----------------------------------------------------------------------------------------------
# data summary


def summarise(cache_paths: dict[str, Path], truth: dict[str, dict], onset_shards: Path) -> dict:
    """Per task and split: utterances, positives, events, hours; plus the VAD onsets' error vs truth."""
    import torch

    summary: dict[str, Any] = {"tasks": {}}
    for task, path in cache_paths.items():
        data = torch.load(path, weights_only=False)
        per = {}
        for split in SPLITS:
            idx = [i for i, s in enumerate(data["split"]) if s == split]
            pos = [i for i in idx if len(data["anchor_times_s"][i])]
            neg = [i for i in idx if not len(data["anchor_times_s"][i])]
            per[split] = {
                "utterances": len(idx), "positives": len(pos), "negatives": len(neg),
                "events": int(sum(len(data["anchor_times_s"][i]) for i in pos)),
                "hours": round(sum(data["duration_s"][i] for i in idx) / 3600.0, 4),
                "negative_hours": round(sum(data["duration_s"][i] for i in neg) / 3600.0, 4),
                "frames": int(sum(len(data["target"][i]) for i in idx)),
                # noise-only clips in which `anchorprep vad` found an onset: positives by label
                "noise_clip_positives": sum(1 for i in pos if data["utt_id"][i].startswith("noise")),
            }
        summary["tasks"][task] = per
        summary["grid"] = data["grid"]
    summary["vad_vs_truth"] = vad_quality(truth, onset_shards)
    return summary


def vad_quality(truth: dict[str, dict], onset_shards: Path) -> dict:
    """How the `anchorprep vad` onsets compare with the synthesiser's exact first-word starts,
    and how often the VAD finds an onset in a noise-only clip (by noise colour)."""
    import pyarrow.parquet as pq

    manifest = json.loads((onset_shards / "manifest.json").read_text())
    errors, missing = [], 0
    noise: dict[str, list[int]] = {}
    for shard in manifest["shards"]:
        table = pq.read_table(onset_shards / shard["file"], columns=["utt_id", "anchor_times_s", "text"]).to_pylist()
        for row in table:
            if row["utt_id"].startswith("noise"):
                beta = float(row["text"].partition("=")[2])
                colour = "white-pink (beta < 1)" if beta < 1 else "pink-brown (beta >= 1)"
                noise.setdefault(colour, [0, 0])
                noise[colour][0] += 1
                noise[colour][1] += bool(row["anchor_times_s"])
            elif not row["anchor_times_s"]:
                missing += 1
            else:
                errors.append(row["anchor_times_s"][0] - truth[row["utt_id"]]["speech_onset_s"])
    err = np.asarray(errors)
    abs_err = np.abs(err)
    return {
        "speech_utterances_with_onset": int(err.size),
        "speech_utterances_without_onset": int(missing),
        "noise_clips": int(sum(v[0] for v in noise.values())),
        "noise_clips_with_onset": int(sum(v[1] for v in noise.values())),
        "noise_clips_with_onset_by_colour": {k: {"clips": v[0], "with_onset": v[1]} for k, v in sorted(noise.items())},
        "onset_error_ms_median": round(float(np.median(err)) * 1000, 1) if err.size else None,
        "abs_onset_error_ms_p50": round(float(np.median(abs_err)) * 1000, 1) if err.size else None,
        "abs_onset_error_ms_p90": round(float(np.percentile(abs_err, 90)) * 1000, 1) if err.size else None,
        "onsets_more_than_100ms_early": int(np.count_nonzero(err < -0.1)),
        "onsets_more_than_100ms_late": int(np.count_nonzero(err > 0.1)),
    }


def hours_label(h: float) -> str:
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.2f} h"


def allowed_alarms(target_fa_h: float, negative_hours: float) -> int:
    return math.floor(target_fa_h * negative_hours * (1 + 1e-9))
