"""Data stage of the SAL training benchmark: corpus -> anchorprep pipelines -> feature cache.

Three tasks, every label written by anchorprep's own pipelines (CLI subprocesses):

* ``keyword``: espeak-ng corpus (`scripts/espeak_corpus.py`): 7 accents x voice variants
  (`voice_table`: 77 train voices over 71 variants by default), 4 valid and 4 test voices whose
  variants appear in no other split. Confusable negatives are kept only when `espeak-ng -x` shows,
  for every accent used, that they do not contain the wake phrase's phonemes (`check_confusables`).
  Extra utterances spoken by the test (and valid) voices give >= 3 h of test negative audio.
  Labels: ``anchorprep align -k``.
* ``onset``: a subset of the same speech, remixed (`make_onset_audio`) at a lower SNR with
  distractor bursts (tones, noise bursts, knocks at -6..+3 dB re the speech level) in the leading
  silence, plus noise-only clips with the same distractors. Anchor: the exact first-word onset
  from the synthesiser's word events, via ``anchorprep align --speech-onsets``.
* ``trigger`` (multi-modal): the onset task's audio, each file with a synthetic 3-axis
  accelerometer trace (`make_accel_traces`): gravity, sensor noise, walking or handling motion,
  and a raise gesture on speech the user addresses to the device (peak 0.15-0.6 s before the
  speech onset), gestures without speech and speech without gesture as negatives. Labels:
  ``anchorprep accel --preset raise`` merged with the onset run (``anchorprep merge --use-source
  alignment --use-source accel --agree-within-ms 1000``: the onset counts where a raise peak lies
  within 1 s of it). The model sees fbank + per-frame
  accelerometer features.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WAKE_PHRASE = "hey computer"
TASKS = ("keyword", "onset", "trigger")
SPLITS = ("train", "valid", "test")
MANIFEST_COLUMNS = ["utt_id", "audio_path", "alignment_path", "speaker", "text", "split"]

# West Midlands (en-gb-x-gbcwmd) drops the /h/ of "hey", so "okay computer" contains its wake phrase
# sound for sound; it is left out of the accents rather than silently mislabelled.
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-029", "en-us-nyc")
VALID_VOICES = ("en-gb-x-rp+m6", "en-us+f5", "en-gb-scotland+edward", "en-us-nyc+linda")
# A pilot test voice "Alicia" (a variant with a strong 40 ms echo at 50 % and shifted formants) was
# not recognised at all by models trained on these echo-free voices; reverberation robustness is
# out of scope here, so the test voices are echo-free like the training voices.
TEST_VOICES = ("en-us-nyc+m7", "en+Andrea", "en-gb-x-gbclan+klatt4", "en-029+benjamin")
# Training voice variants, by one rule: every variant espeak-ng 1.51 ships (voices/!v) except the
# valid and test variants, those with an echo above 20 % (reverberant and robot effects: Alicia,
# Demonic, Marco, RicishayMax*, UniRobot, anikaRobot, announcer, pablo, robosoft*), whispers
# (voicing < 25: whisper, whisperf, caleb) and "Mr serious" (a space in its name). 71 variants; with
# 11 per accent every variant trains in at least one accent. Siblings of held-out variants stay in
# (klatt3/5/6, edward2, m8, belinda): they share a synthesiser family, not the formant settings.
TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "klatt", "klatt2", "Andy", "Annie", "john", "max",
    "michel", "adam", "anika", "david", "paul", "Alex", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Mario", "Michael", "Mike", "Nguyen", "Storm", "Tweaky", "antonio",
    "aunty", "belinda", "boris", "croak", "ed", "edward2", "fast", "grandma", "grandpa", "gustave", "iven",
    "iven2", "iven3", "iven4", "kaukovalta", "klatt3", "klatt5", "klatt6", "m8", "marcelo", "miguel", "norbert",
    "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac",
)


def load_generator():
    """scripts/espeak_corpus.py as a module (it is a script, not part of the package)."""
    return _load_script("espeak_corpus")


def load_accel_generator():
    return _load_script("make_accel_samples")


def _load_script(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def voice_table(voices_per_accent: int) -> list[tuple[str, str]]:
    """(voice, split): every accent with ``voices_per_accent`` train variants, then valid and test."""
    train, k = [], 0
    for accent in ACCENTS:
        for _ in range(voices_per_accent):
            train.append((f"{accent}+{TRAIN_VARIANTS[k % len(TRAIN_VARIANTS)]}", "train"))
            k += 1
    return train + [(v, "valid") for v in VALID_VOICES] + [(v, "test") for v in TEST_VOICES]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# confusables


def phonemes(text: str, voice: str) -> str:
    """espeak-ng's phoneme mnemonics (``espeak-ng -q -x -v VOICE TEXT``), one line."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, text], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def _bare(ph: str) -> str:
    """Phonemes without stress marks and word gaps: what a listener could confuse."""
    return "".join(ch for ch in ph if ch not in "'`, _:;|")


@dataclass(frozen=True)
class ConfusableCheck:
    kept: tuple[str, ...]
    rejected: dict[str, list[str]]  # phrase -> accents in which it contains the wake phrase
    wake: dict[str, str]  # accent -> phonemes of the wake phrase
    phrases: dict[str, dict[str, str]]  # phrase -> accent -> phonemes


def check_confusables(accents, confusables, wake_phrase: str = WAKE_PHRASE) -> ConfusableCheck:
    """Keep a confusable only if, for every accent, its phonemes do not contain the wake phrase's."""
    wake = {a: phonemes(wake_phrase, a) for a in accents}
    phrases, rejected, kept = {}, {}, []
    for phrase in confusables:
        phrases[phrase] = {a: phonemes(phrase, a) for a in accents}
        bad = [a for a in accents if _bare(wake[a]) in _bare(phrases[phrase][a])]
        if bad:
            rejected[phrase] = bad
        else:
            kept.append(phrase)
    return ConfusableCheck(tuple(kept), rejected, wake, phrases)


# ----------------------------------------------------------------------------------------------
# corpus


def make_corpus(work: Path, name: str, positives: int, negatives: int, seed: int, voices, confusables,
                workers: int, log) -> tuple[Path, bool]:
    """Generate (or reuse, when the parameters match) an espeak-ng corpus; return (manifest, reused)."""
    gen = load_generator()
    out = work / name
    params = {"positives": positives, "negatives": negatives, "seed": seed, "wake_phrase": WAKE_PHRASE,
              "voices": [list(v) for v in voices], "confusables": list(confusables), "snr_db": [5.0, 20.0],
              "leading_silence_s": [0.3, 2.0], "generator_sha": _file_sha(REPO / "scripts" / "espeak_corpus.py")}
    stamp = out / "benchmark_params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and (out / "manifest.csv").is_file():
        log(f"{name}: reusing {out} ({positives}+{negatives} utterances, same parameters)")
        return out / "manifest.csv", True
    if stamp.is_file():
        stamp.unlink()
    started = time.perf_counter()
    manifest = gen.make_corpus(out, positives, negatives, seed=seed, voices=voices, wake_phrase=WAKE_PHRASE,
                               snr_db=(5.0, 20.0), leading_silence_s=(0.3, 2.0), confusables=list(confusables),
                               workers=workers, overwrite=True)
    stamp.write_text(json.dumps(params, indent=1))
    log(f"{name}: synthesised {positives} positives + {negatives} negatives in {time.perf_counter() - started:.1f} s")
    return manifest, False


def combine_corpora(work: Path, corpora: list[tuple[Path, str]]) -> tuple[Path, dict[str, dict]]:
    """One manifest (absolute paths, ids prefixed per corpus) and the merged truth.json entries."""
    rows, truth = [], {}
    for manifest, prefix in corpora:
        entries = json.loads((manifest.parent / "truth.json").read_text())["utterances"]
        for r in _read_csv(manifest):
            uid = prefix + r["utt_id"]
            rows.append({**r, "utt_id": uid, "audio_path": str((manifest.parent / r["audio_path"]).resolve()),
                         "alignment_path": str((manifest.parent / r["alignment_path"]).resolve())})
            truth[uid] = entries[r["utt_id"]]
    path = work / "keyword_manifest.csv"
    _write_csv(path, rows, MANIFEST_COLUMNS)
    return path, truth


def keyword_categories(truth: dict[str, dict], confusables) -> dict[str, str]:
    """utt_id -> ``positive`` / ``confusable`` (a negative with a confusable phrase) / ``plain``."""
    gen = load_generator()
    phrases = [gen.phrase_tokens(c) for c in confusables]
    out = {}
    for uid, t in truth.items():
        tokens = t["text"].split()
        out[uid] = "positive" if t["positive"] else (
            "confusable" if any(gen.contains_phrase(tokens, p) for p in phrases) else "plain")
    return out


# ----------------------------------------------------------------------------------------------
# onset audio: lower SNR + distractors; noise-only clips


DISTRACTOR_KINDS = ("tone", "noise burst", "knock")


def distractor(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A unit-RMS distractor sound: a tone (with two harmonics), a noise burst, or a knock."""
    if kind == "tone":
        n = int(rng.uniform(0.08, 0.35) * sr)
        t = np.arange(n) / sr
        f0 = rng.uniform(300, 2500)
        x = sum(a * np.sin(2 * np.pi * f0 * h * t) for h, a in ((1, 1.0), (2, 0.4), (3, 0.2)))
        x = x * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    elif kind == "noise burst":
        n = int(rng.uniform(0.05, 0.3) * sr)
        x = load_generator().coloured_noise(n, float(rng.uniform(0.0, 1.5)), rng)
        x = x * np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * sr))
    else:
        n = int(rng.uniform(0.04, 0.12) * sr)
        t = np.arange(n) / sr
        x = rng.standard_normal(n) * np.exp(-t / rng.uniform(0.008, 0.03))
        x += np.sin(2 * np.pi * rng.uniform(80, 250) * t) * np.exp(-t / 0.03)
    return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-12)


def _add_distractors(audio: np.ndarray, sr: int, lo_s: float, hi_s: float, speech_rms: float,
                     rng: np.random.Generator, level_db: tuple[float, float]) -> list[dict]:
    """Add 1-3 distractors (each with p = 0.85) starting in [lo_s, hi_s) and ending before hi_s."""
    placed = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() > 0.85 or hi_s - lo_s < 0.1:
            continue
        kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
        x = distractor(kind, sr, rng)
        room = int((hi_s - lo_s) * sr) - len(x)
        if room <= 0:
            continue
        start = int(lo_s * sr) + int(rng.integers(room))
        db = float(rng.uniform(*level_db))
        audio[start:start + len(x)] += x * speech_rms * 10 ** (db / 20)
        placed.append({"kind": kind, "start_s": round(start / sr, 3), "level_db": round(db, 1)})
    return placed


@dataclass(frozen=True)
class OnsetAudioConfig:
    snr_db: tuple[float, float] = (0.0, 10.0)
    distractor_db: tuple[float, float] = (-6.0, 3.0)
    clip_s: tuple[float, float] = (3.0, 6.0)
    eval_clip_s: tuple[float, float] = (8.0, 15.0)  # longer valid/test clips: more negative hours per file


def make_onset_audio(work: Path, rows: list[dict], truth: dict[str, dict], noise_clips: int, eval_noise_clips: int,
                     seed: int, config: OnsetAudioConfig = OnsetAudioConfig()) -> tuple[Path, dict[str, dict]]:
    """Remix ``rows`` (speech) and write noise-only clips; return (onset manifest, per-utterance info).

    Speech: extra noise of the utterance's own colour lowers the SNR to U(snr_db) (never raises it),
    and distractors go into the leading silence (ending >= 150 ms before the first word). Clip ``i``
    copies the noise level and colour of a remixed speech utterance of the same split (the first
    ``noise_clips`` follow the rows' split proportions, ``eval_noise_clips`` longer ones are valid/test only)
    and gets distractors anywhere. Clips get an empty TextGrid, so `align --speech-onsets` labels
    them negative.
    """
    gen = load_generator()
    out = work / "onset_audio"
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "alignments").mkdir(parents=True, exist_ok=True)
    info: dict[str, dict] = {}
    new_rows = []
    for i, r in enumerate(rows):
        t = truth[r["utt_id"]]
        audio, sr = sf.read(r["audio_path"], dtype="float64")
        rng = np.random.default_rng([seed, 11, i])
        onset, offset = t["speech_onset_s"], t["speech_offset_s"]
        lead = audio[: int(max(0.05, t["leading_silence_s"] - 0.02) * sr)]
        noise_rms = float(np.sqrt(np.mean(lead ** 2)))
        speech_rms = float(np.sqrt(max(np.mean(audio[int(onset * sr):int(offset * sr)] ** 2) - noise_rms ** 2, 1e-12)))
        snr = float(rng.uniform(*config.snr_db))
        want = speech_rms / 10 ** (snr / 20)
        if want > noise_rms:
            audio = audio + gen.coloured_noise(len(audio), float(t["noise_beta"]), rng) * math.sqrt(want ** 2 - noise_rms ** 2)
        placed = _add_distractors(audio, sr, 0.02, onset - 0.15, speech_rms, rng, config.distractor_db)
        path = out / "audio" / f"{r['utt_id']}.flac"
        sf.write(str(path), _to_int16(audio), sr, format="FLAC", subtype="PCM_16")
        info[r["utt_id"]] = {"split": r["split"], "speech": True, "speech_onset_s": onset, "snr_db": round(snr, 1),
                             "noise_rms": max(want, noise_rms), "speech_rms": speech_rms, "beta": t["noise_beta"],
                             "distractors": placed, "speaker": r["speaker"], "duration_s": len(audio) / sr}
        new_rows.append({**r, "audio_path": str(path)})
    held_out = [r for r in new_rows if r["split"] != "train"]
    sources = [new_rows[i % len(new_rows)] for i in range(noise_clips)] + \
              [held_out[i % len(held_out)] for i in range(eval_noise_clips)]
    for i, src in enumerate(sources):
        s = info[src["utt_id"]]
        rng = np.random.default_rng([seed, 7, i])
        sr = 16000
        n = round(rng.uniform(*(config.clip_s if i < noise_clips else config.eval_clip_s)) * sr)
        clip = gen.coloured_noise(n, float(s["beta"]), rng) * s["noise_rms"]
        placed = _add_distractors(clip, sr, 0.05, n / sr - 0.05, s["speech_rms"], rng, config.distractor_db)
        uid = f"noise{i:05d}"
        path = out / "audio" / f"{uid}.flac"
        sf.write(str(path), _to_int16(clip), sr, format="FLAC", subtype="PCM_16")
        grid = out / "alignments" / f"{uid}.TextGrid"
        gen.write_textgrid(grid, [], [], n / sr)
        info[uid] = {"split": src["split"], "speech": False, "speech_onset_s": None, "distractors": placed,
                     "speaker": "noise", "duration_s": n / sr, "beta": s["beta"]}
        new_rows.append({"utt_id": uid, "audio_path": str(path), "alignment_path": str(grid), "speaker": "noise",
                         "text": "", "split": src["split"]})
    manifest = work / "onset_manifest.csv"
    _write_csv(manifest, new_rows, MANIFEST_COLUMNS)
    return manifest, info


def _to_int16(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return load_generator().to_int16(x * (0.9 / peak if peak > 0.9 else 1.0))


# ----------------------------------------------------------------------------------------------
# accelerometer traces (trigger task)


# The sensor stream starts this long before the audio (the raise filter needs > 3.3 s of data);
# the manifest's time_offset_s maps sensor time to audio time.
ACCEL_PREROLL_S = 2.0
ROLES = ("speech+raise", "speech, no raise", "raise, no speech", "neither")


def make_accel_traces(work: Path, onset_manifest: Path, info: dict[str, dict], seed: int) -> Path:
    """One 100 Hz accelerometer CSV per onset-task utterance; returns the accel manifest.

    Roles (seeded per utterance): speech -> 60 % ``speech+raise`` (raise peak 0.15-0.6 s before the
    speech onset), 40 % ``speech, no raise``; noise clips -> 50 % ``raise, no speech`` (raise anywhere),
    50 % ``neither``. Every trace has gravity, sensor noise and, independently, walking (p = 0.5)
    or handling bumps (p = 0.5); see `make_accel_samples.trigger_trace`.
    """
    acc = load_accel_generator()
    out = work / "accel"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, r in enumerate(_read_csv(onset_manifest)):
        s = info[r["utt_id"]]
        rng = np.random.default_rng([seed, 13, i])
        raises: list[float] = []
        if s["speech"]:
            role = ROLES[0] if rng.random() < 0.6 else ROLES[1]
            if role == ROLES[0]:
                lead = float(rng.uniform(0.15, max(0.16, min(0.6, s["speech_onset_s"] - 0.05))))
                raises.append(s["speech_onset_s"] - lead)
        else:
            role = ROLES[2] if rng.random() < 0.5 else ROLES[3]
            if role == ROLES[2]:
                raises.append(float(rng.uniform(0.4, s["duration_s"] - 0.6)))
        t, xyz, peaks = acc.trigger_trace(s["duration_s"] + ACCEL_PREROLL_S, [x + ACCEL_PREROLL_S for x in raises], rng,
                                          walking=bool(rng.random() < 0.5), handling=bool(rng.random() < 0.5))
        path = out / f"{r['utt_id']}.csv"
        with open(path, "w", newline="\n") as fh:
            fh.write("t_ms,ax,ay,az\n")
            fh.writelines(f"{ti * 1000.0:.1f},{x:.3f},{y:.3f},{z:.3f}\n" for ti, (x, y, z) in zip(t, xyz))
        s["role"] = role
        s["raise_peaks_s"] = [round(p - ACCEL_PREROLL_S, 3) for p in peaks]
        rows.append({"utt_id": r["utt_id"], "accel_path": str(path), "audio_path": r["audio_path"],
                     "time_offset_s": -ACCEL_PREROLL_S, "split": r["split"]})
    manifest = work / "accel_manifest.csv"
    _write_csv(manifest, rows, ["utt_id", "accel_path", "audio_path", "time_offset_s", "split"])
    return manifest


# ----------------------------------------------------------------------------------------------
# shards through the anchorprep CLI


def cli_commands(keyword_manifest: Path, onset_manifest: Path, accel_manifest: Path | None, shard_dir: Path,
                 subsampling: int, window: int, workers: int, tasks) -> dict[str, list[str]]:
    """The anchorprep commands (argument lists after ``python -m anchorprep``), in run order."""
    grid = ["--subsampling", str(subsampling), "--positive-window", f"0:{window}"]
    run = ["-j", str(workers), "--shard-size", "1000", "--overwrite", "-q"]
    cmds = {}
    if "keyword" in tasks:
        cmds["keyword"] = ["align", str(keyword_manifest), "-o", str(shard_dir / "keyword"), "-k", WAKE_PHRASE, *grid, *run]
    if "onset" in tasks or "trigger" in tasks:
        cmds["onset"] = ["align", str(onset_manifest), "-o", str(shard_dir / "onset"), "--speech-onsets",
                         "--min-pause-ms", "100000", *grid, *run]
    if "trigger" in tasks:
        cmds["accel"] = ["accel", str(accel_manifest), "-o", str(shard_dir / "accel"), "--preset", "raise", *grid, *run]
        cmds["trigger"] = ["merge", str(shard_dir / "onset"), str(shard_dir / "accel"), "-o", str(shard_dir / "trigger"),
                           "--use-source", "alignment", "--use-source", "accel", "--agree-within-ms", "1000",
                           "--positive-window", f"0:{window}", "--overwrite", "-q"]
    return cmds


def build_shards(commands: dict[str, list[str]], log) -> dict[str, dict]:
    """Run ``python -m anchorprep ...`` for each command; return each run's report.json."""
    reports = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for name, args in commands.items():
        cmd = [sys.executable, "-m", "anchorprep", *args]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        out = Path(args[args.index("-o") + 1])
        reports[name] = json.loads((out / "report.json").read_text())
        log(f"shards[{name}]: {reports[name]['written']} rows in {time.perf_counter() - started:.1f} s")
    return reports


# ----------------------------------------------------------------------------------------------
# features


ACCEL_FEATURES = ("ax", "ay", "az", "|a| - g", "d|a|/dt")


def accel_frame_features(csv_path: str, frame_end_s: np.ndarray) -> np.ndarray:
    """Per model frame: mean of (ax, ay, az, |a| - g) over the samples in the frame, and the change
    of |a| since the previous frame. Causal: only samples up to the frame's end time."""
    import pandas as pd

    data = pd.read_csv(csv_path).to_numpy(dtype=np.float64)
    t, xyz = data[:, 0] / 1000.0 - ACCEL_PREROLL_S, data[:, 1:4]
    mag = np.linalg.norm(xyz, axis=1) - 9.81
    values = np.column_stack([xyz, mag])
    cum = np.vstack([np.zeros((1, 4)), np.cumsum(values, axis=0)])
    hi = np.searchsorted(t, frame_end_s, side="right")
    lo = np.concatenate([[0], hi[:-1]])
    count = np.maximum(hi - lo, 1)
    last = np.maximum(hi - 1, 0)
    mean = np.where((hi > lo)[:, None], (cum[hi] - cum[lo]) / count[:, None], values[last])
    jerk = np.diff(mean[:, 3], prepend=mean[0, 3])
    return np.column_stack([mean, jerk]).astype(np.float32)


def cache_features(shard_dir: Path, cache_dir: Path, tasks, num_mel_bins: int, workers: int,
                   categories: dict[str, dict[str, str]], accel_paths: dict[str, str], log) -> dict[str, Path]:
    """Fbank (+ accelerometer features for ``trigger``) for every shard row, one file per task.

    Features come from `ShardDataset(..., features=Fbank(num_mel_bins))`; an utterance that tasks
    share (same audio and segment) is computed once. Each cache file holds per-utterance lists
    (utt_id, split, category, speaker, features, target, distance, anchor_frames, anchor_times_s,
    duration_s), the grid and the train-split CMVN.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    from anchorprep.data import Fbank, ShardDataset
    from anchorprep.grid import FrameGrid

    cache_dir.mkdir(parents=True, exist_ok=True)
    fbank = Fbank(num_mel_bins=num_mel_bins)
    shared: dict[tuple, torch.Tensor] = {}
    paths = {}
    for task in tasks:
        columns = ("split", "anchor_times_s", "duration_s", "audio_path", "start_s", "speaker")
        meta = ShardDataset(shard_dir / task, columns=columns + (("anchor_sources",) if task == "trigger" else ()))
        grid = FrameGrid(**meta.grid.to_dict())
        items = [meta[i] for i in range(len(meta))]
        keys = [(it["audio_path"], it["start_s"], it["duration_s"]) for it in items]
        todo = [i for i, key in enumerate(keys) if key not in shared]
        if todo:
            featured = ShardDataset(shard_dir / task, features=fbank)
            started = time.perf_counter()
            loader = DataLoader(Subset(featured, todo), batch_size=None, num_workers=workers)
            for i, item in zip(todo, loader):
                shared[keys[i]] = item["features"].clone()
            log(f"features[{task}]: {len(todo)} utterances in {time.perf_counter() - started:.1f} s")
        feats = [shared[k] for k in keys]
        if task == "trigger":
            feats = [torch.cat([f, torch.from_numpy(accel_frame_features(
                accel_paths[it["utt_id"]], grid.frame_end_time(np.arange(f.shape[0]))))], dim=1)
                for f, it in zip(feats, items)]
        if task == "trigger":
            for it in items:
                it["anchor_times_s"], it["anchor_frames"] = agreed_anchors(it)
        split = [it["split"] for it in items]
        train = torch.cat([f for f, s in zip(feats, split) if s == "train"])
        data = {
            "task": task, "grid": meta.grid.to_dict(), "label_map": meta.label_map,
            "utt_id": [it["utt_id"] for it in items], "split": split,
            "category": [categories[task][it["utt_id"]] for it in items],
            "speaker": [it.get("speaker") or "" for it in items],
            "features": feats,
            "target": [it["target"].clone() for it in items],
            "distance": [it["distance"].clone() for it in items],
            "anchor_frames": [it["anchor_frames"].clone() for it in items],
            "anchor_times_s": [np.asarray(it["anchor_times_s"], dtype=np.float64) for it in items],
            "duration_s": [float(it["duration_s"]) for it in items],
            "cmvn_mean": train.mean(0), "cmvn_std": train.std(0).clamp_min(1e-3),
        }
        paths[task] = cache_dir / f"{task}.pt"
        torch.save(data, paths[task])
    return paths


def agreed_anchors(item: dict, primary: str = "alignment") -> tuple[np.ndarray, "torch.Tensor"]:
    """A merged row's events: the primary source's anchors that the distance uses (distance 0 at
    the anchor frame), i.e. those another source agreed with. The row lists every anchor."""
    frames = item["anchor_frames"]
    keep = [k for k, (src, f) in enumerate(zip(item["anchor_sources"], frames.tolist()))
            if src == primary and int(item["distance"][f]) == 0]
    return np.asarray(item["anchor_times_s"], dtype=np.float64)[keep], frames[keep]


# ----------------------------------------------------------------------------------------------
# data summary


def summarise(cache_paths: dict[str, Path]) -> dict:
    """Per task and split: utterances, positives, events, hours, negatives by category, voices."""
    import torch

    summary: dict[str, Any] = {"tasks": {}}
    for task, path in cache_paths.items():
        data = torch.load(path, weights_only=False)
        per = {}
        for split in SPLITS:
            idx = [i for i, s in enumerate(data["split"]) if s == split]
            pos = [i for i in idx if len(data["anchor_times_s"][i])]
            neg = [i for i in idx if not len(data["anchor_times_s"][i])]
            cats: dict[str, int] = {}
            for i in neg:
                cats[data["category"][i]] = cats.get(data["category"][i], 0) + 1
            per[split] = {
                "utterances": len(idx), "positives": len(pos), "negatives": len(neg),
                "events": int(sum(len(data["anchor_times_s"][i]) for i in pos)),
                "hours": round(sum(data["duration_s"][i] for i in idx) / 3600.0, 4),
                "negative_hours": round(sum(data["duration_s"][i] for i in neg) / 3600.0, 4),
                "negatives_by_category": dict(sorted(cats.items())),
                "voices": sorted({data["speaker"][i] for i in idx if data["speaker"][i] not in ("", "noise")}),
            }
        summary["tasks"][task] = per
        summary["grid"] = data["grid"]
    return summary


def trigger_label_check(cache_path: Path) -> dict:
    """How the merged (speech onset + accel peak) labels compare with the designed roles."""
    import torch

    data = torch.load(cache_path, weights_only=False)
    table: dict[str, dict[str, int]] = {}
    for cat, anchors in zip(data["category"], data["anchor_times_s"]):
        row = table.setdefault(cat, {"positive": 0, "negative": 0})
        row["positive" if len(anchors) else "negative"] += 1
    return table


def allowed_alarms(target_fa_h: float, negative_hours: float) -> int:
    return math.floor(target_fa_h * negative_hours * (1 + 1e-9))
