"""Write the synthetic raise-to-speak accelerometer samples in sample_data/accel/ (deterministic).

Each file is a wrist-worn 3-axis accelerometer (m/s², gravity included) at about 100 Hz with a
`t_ms,ax,ay,az` header. A raise-to-speak gesture is modelled in the world frame as a vertical
push: a quick upward acceleration lobe (Gaussian, sigma 70 ms) followed by a slower deceleration
lobe of equal area, so the arm ends at rest; meanwhile the wrist rotates by 70-90 degrees, which
moves gravity between the sensor axes without changing the magnitude. The arm is lowered more
slowly later. The sensor reads the specific force R(t)ᵀ·(a_lin + g) plus white noise and a slow
body sway.

Truth (`truth.json`) is, for each raise, the time of the maximum of the noise-free acceleration
magnitude within the gesture, in seconds from the file's first row. Run from the repository root:

    python scripts/make_accel_samples.py [--out sample_data/accel]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

G = 9.81


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    duration_s: float
    raises_s: tuple[float, ...]  # centre of each upward push
    push: float  # peak upward acceleration of a raise, m/s²
    lower: float  # peak acceleration of the later, slower lowering, m/s²
    hold_s: float  # time between a raise and the start of its lowering
    noise: float  # white noise per axis, m/s²
    jitter_ms: float  # uniform timestamp jitter, ± ms (0 = exact 100 Hz)
    seed: int


SAMPLES = (
    Sample("raise_seated", "seated, 3 brisk raises, exact 100 Hz timestamps",
           12.0, (2.0, 5.5, 9.0), 4.5, 0.8, 1.8, 0.04, 0.0, 1),
    Sample("raise_standing_jitter", "standing, 3 raises, phone-like jittered timestamps (±2 ms)",
           15.0, (1.8, 6.2, 11.4), 4.0, 1.0, 2.2, 0.08, 2.0, 2),
    Sample("raise_gentle", "4 gentler raises with quicker lowering (harder), jittered ±1 ms",
           20.0, (2.5, 7.0, 11.0, 16.5), 3.0, 1.2, 1.5, 0.06, 1.0, 3),
)


def _gauss(t: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / sigma) ** 2)


def _vertical_push(t: np.ndarray, centre: float, peak: float, sigma: float, gap: float, sigma2: float) -> np.ndarray:
    """Accelerate (peak at `centre`) then decelerate with the same area: velocity returns to 0."""
    return peak * (_gauss(t, centre, sigma) - (sigma / sigma2) * _gauss(t, centre + gap, sigma2))


def _smoothstep(t: np.ndarray, start: float, length: float) -> np.ndarray:
    u = np.clip((t - start) / length, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def clean_motion(s: Sample, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free (forward, vertical) world linear acceleration in m/s² and wrist angle in radians."""
    up = np.zeros_like(t)
    fwd = np.zeros_like(t)
    angle = np.zeros_like(t)
    for k, c in enumerate(s.raises_s):
        up += _vertical_push(t, c, s.push, 0.07, 0.28, 0.14)
        fwd += _vertical_push(t, c + 0.03, 0.4 * s.push, 0.09, 0.30, 0.15)  # towards the mouth
        tilt = np.deg2rad(70.0 + 10.0 * (k % 2))
        down = c + s.hold_s
        angle += tilt * (_smoothstep(t, c - 0.15, 0.5) - _smoothstep(t, down, 0.9))
        up += _vertical_push(t, down + 0.9, -s.lower, 0.22, 0.55, 0.22)  # lowering: down, then brake
    return fwd, up, angle


def synthesize(s: Sample) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(times in s from the first row, specific force (N, 3) in m/s², truth raise times in s)."""
    rng = np.random.default_rng(s.seed)
    n = int(round(s.duration_s * 100.0))
    t = np.arange(n) / 100.0
    if s.jitter_ms:
        t = t + rng.uniform(-s.jitter_ms, s.jitter_ms, n) / 1000.0
        t[0] = 0.0  # jitter is below half a step, so the times stay increasing
    fwd, up, angle = clean_motion(s, t)
    truth = peak_times(s, s.raises_s, step_s=1e-4, digits=4)
    return t, sensor_frame(t, fwd, up, angle, s.noise, rng), truth


def peak_times(s: Sample, raises_s, step_s: float, digits: int) -> list[float]:
    """Each raise's noise-free magnitude maximum, searched ±0.3 s around it on a ``step_s`` grid."""
    truth = []
    for c in raises_s:
        fine = np.arange(c - 0.3, c + 0.3, step_s)
        f_fwd, f_up, _ = clean_motion(s, fine)
        truth.append(round(float(fine[int(np.argmax(np.hypot(f_fwd, G + f_up)))]), digits))
    return truth


def sensor_frame(t: np.ndarray, fwd: np.ndarray, up: np.ndarray, angle: np.ndarray, noise: float,
                 rng: np.random.Generator) -> np.ndarray:
    """World-frame motion plus gravity and slow sway, turned into the sensor frame, plus white noise."""
    sway = 0.1 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 2 * np.pi))
    world = np.column_stack([fwd + sway, np.zeros(len(t)), G + up])
    # World to sensor frame: as the wrist turns, gravity moves from the z axis towards x.
    ca, sa = np.cos(angle), np.sin(angle)
    sensor = np.column_stack([ca * world[:, 0] + sa * world[:, 2], world[:, 1],
                              -sa * world[:, 0] + ca * world[:, 2]])
    return sensor + rng.normal(0.0, noise, sensor.shape)


def trigger_trace(duration_s: float, raises_s: list[float], rng: np.random.Generator, *, walking: bool,
                  handling: bool, rate_hz: float = 100.0) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A random wrist trace for the SAL benchmark's trigger task: (times s, specific force (N, 3), raise peaks s).

    Raises as in `synthesize` (push 3-5 m/s², held to the end of the clip), gravity, white sensor noise
    (0.03-0.08 m/s²), slow sway, and optionally walking (1.6-2.2 Hz vertical bounce, 0.3-0.8 m/s²) and
    handling (1-3 short bumps of 0.5-1.5 m/s², 60-120 ms). Peak times: the noise-free magnitude maximum.
    """
    n = int(round(duration_s * rate_hz))
    t = np.arange(n) / rate_hz
    s = Sample("trigger", "", duration_s, tuple(raises_s), float(rng.uniform(3.0, 5.0)), 0.0, duration_s + 5.0,
               float(rng.uniform(0.03, 0.08)), 0.0, 0)
    fwd, up, angle = clean_motion(s, t)
    truth = peak_times(s, raises_s, step_s=1e-3, digits=3)
    if walking:
        f = rng.uniform(1.6, 2.2)
        up = up + rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    if handling:
        for _ in range(int(rng.integers(1, 4))):
            up = up + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * _gauss(t, rng.uniform(0, duration_s),
                                                                                 rng.uniform(0.03, 0.06))
    return t, sensor_frame(t, fwd, up, angle, s.noise, rng), truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("sample_data/accel"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, object] = {
        "_about": "raise-to-speak peak times in seconds from each file's first row; "
                  "made by scripts/make_accel_samples.py",
    }
    for s in SAMPLES:
        t, xyz, peaks = synthesize(s)
        path = args.out / f"{s.name}.csv"
        with open(path, "w", newline="\n") as fh:
            fh.write("t_ms,ax,ay,az\n")
            for ti, (x, y, z) in zip(t, xyz):
                fh.write(f"{ti * 1000.0:.3f},{x:.4f},{y:.4f},{z:.4f}\n")
        truth[path.name] = {"raise_times_s": peaks, "description": s.description,
                            "rate_hz": 100, "duration_s": s.duration_s}
        print(f"wrote {path} ({len(t)} rows, raises at {peaks})")
    (args.out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    main()
