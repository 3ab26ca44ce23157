"""Synthetic MFA-like alignments for benchmarks and tests (no audio, no TTS needed).

Each utterance is a long-format TextGrid with a ``words`` and a ``phones`` tier like MFA writes:
about ``words`` words with silences between some of them, three phones per word, and the wake
phrase inserted in roughly half of the utterances.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

VOCABULARY = ("the of and to in is was he for it with as his on be at by had are but from or have an they "
              "which one you were all we her she there would their will when who him been has more if no out "
              "so said what up its about into than them can only other new some time could these two may "
              "first then do any like my now over such our man me even most made after also did many").split()


def _interval(start: float, end: float, label: str) -> str:
    return f'            xmin = {start:.3f}\n            xmax = {end:.3f}\n            text = "{label}"\n'


def _tier(name: str, intervals: list[tuple[float, float, str]], xmax: float) -> str:
    body = "".join(f"        intervals [{i}]:\n" + _interval(*iv) for i, iv in enumerate(intervals, 1))
    return (f'        class = "IntervalTier"\n        name = "{name}"\n        xmin = 0\n        xmax = {xmax}\n'
            f"        intervals: size = {len(intervals)}\n" + body)


def textgrid_text(words: list[tuple[float, float, str]], phones: list[tuple[float, float, str]], xmax: float) -> str:
    """A long-format TextGrid with ``words`` and ``phones`` tiers."""
    tiers = [("words", words), ("phones", phones)]
    out = ['File type = "ooTextFile"\nObject class = "TextGrid"\n\n', f"xmin = 0\nxmax = {xmax}\ntiers? <exists>\n",
           f"size = {len(tiers)}\nitem []:\n"]
    for index, (name, intervals) in enumerate(tiers, 1):
        out.append(f"    item [{index}]:\n" + _tier(name, intervals, xmax))
    return "".join(out)


def synthetic_utterance(rng: np.random.Generator, duration_s: float, num_words: int, phrase: list[str] | None):
    words_list = list(rng.choice(VOCABULARY, size=num_words))
    if phrase:
        at = int(rng.integers(0, max(1, num_words - len(phrase))))
        words_list[at:at + len(phrase)] = phrase
    slot = (duration_s - 0.4) / num_words
    words, phones, cursor = [], [], 0.0
    for i, word in enumerate(words_list):
        # Each word sits in its own slot with random pauses, so it lasts at least 0.4 slots.
        slot_start = 0.2 + i * slot
        start = round(slot_start + float(rng.uniform(0.0, 0.3)) * slot, 3)
        end = round(slot_start + slot - float(rng.uniform(0.0, 0.3)) * slot, 3)
        if start > cursor:
            words.append((cursor, start, ""))
            phones.append((cursor, start, "sil"))
        words.append((start, end, word))
        cuts = np.round(np.linspace(start, end, 4), 3)
        phones.extend((float(a), float(b), f"{word[:2].upper()}{k}") for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])))
        cursor = end
    words.append((cursor, duration_s, ""))
    phones.append((cursor, duration_s, "sil"))
    return words, phones


def write_synthetic_alignments(out_dir: Path, n: int, seed: int = 0, duration_s: float = 10.0,
                               num_words: int = 30, phrase: str = "hey computer") -> Path:
    """Write ``n`` TextGrids and a ``manifest.csv`` (utt_id, alignment_path, duration_s); return it."""
    out_dir = Path(out_dir)
    (out_dir / "grids").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifest = out_dir / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "alignment_path", "duration_s", "speaker"])
        for index in range(n):
            words, phones = synthetic_utterance(rng, duration_s, num_words, phrase.split() if index % 2 == 0 else None)
            utt = f"utt{index:07d}"
            path = out_dir / "grids" / f"{utt}.TextGrid"
            path.write_text(textgrid_text(words, phones, duration_s), encoding="utf-8")
            writer.writerow([utt, f"grids/{utt}.TextGrid", duration_s, f"spk{index % 7}"])
    return manifest
