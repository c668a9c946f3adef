#!/usr/bin/env python3
"""PyTorch baseline for bench_melipd: the melipd front end (Spatial-AST) in
PyTorch, measured in clips/s on 10 s binaural clips at 32 kHz.

Computation (the same as the C plugin, official order):
  STFT: torch.stft(n_fft=1024, hop=320, periodic Hann, center=True,
        pad_mode="reflect", return_complex=True)  -- torch's FFT (MKL/pocketfft),
        which is faster than the official Conv1d-DFT formulation;
  log-mel: 10 log10(clamp(|X| @ melW, 1e-10)), melW = librosa-style Slaney
        matrix (built here in NumPy, 128 mels, 50-14000 Hz);
  BatchNorm (running stats) on the two log-mel maps;
  IPD maps: cos/sin(angle(X1) - angle(X0)) @ melW;
  stack, F.interpolate(bicubic, align_corners=True) 1001 -> 1024.

Two IPD formulations are timed and the faster one is reported as "torch":
  literal: torch.angle (atan2) on both channels, subtract, cos, sin (official);
  phasor:  cos/sin of the difference from X1 * conj(X0) / (|X1| |X0|) (what the
           C plugin does; no transcendental functions).
torch.set_num_threads(n), torch.inference_mode(), warm-up, then timed clips.

  melipd_torch.py [--threads 1,2] [--seconds 3] [--check GOLDEN.safetensors]

--check runs both variants on the golden wave and prints their error against
the golden features (per channel group, max|c - g| / max|g|).
Output lines: torch variant=V threads=N clips=K seconds=S clips_per_s=R ms_per_clip=M median_ms=D best_ms=B
(clips_per_s / ms_per_clip: wall-clock averages; median_ms: median time of one clip.)
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SR, N_FFT, HOP, N_MELS, F_MIN, F_MAX, TARGET = 32000, 1024, 320, 128, 50.0, 14000.0, 1024


def slaney_mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX):
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    mels = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz = np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)
    fft = np.fft.rfftfreq(n_fft, 1.0 / sr)
    w = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for m in range(n_mels):
        lower = (fft - hz[m]) / (hz[m + 1] - hz[m])
        upper = (hz[m + 2] - fft) / (hz[m + 2] - hz[m + 1])
        w[m] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return torch.from_numpy(w.T.copy())  # [513, 128]


class MelIPD:
    def __init__(self, bn_mean=(0.0, 0.0), bn_var=(1.0, 1.0), variant="phasor"):
        self.window = torch.hann_window(N_FFT, periodic=True)
        self.melW = slaney_mel()
        self.mean = torch.tensor(bn_mean, dtype=torch.float32).view(2, 1, 1)
        self.std = torch.sqrt(torch.tensor(bn_var, dtype=torch.float32) + 1e-5).view(2, 1, 1)
        self.variant = variant

    def __call__(self, wave):  # [2, samples] float32 -> [4, 1024, 128]
        X = torch.stft(wave, N_FFT, HOP, N_FFT, self.window, center=True, pad_mode="reflect",
                       return_complex=True).transpose(1, 2)  # [2, T, 513]
        mag = X.abs()
        logmel = 10.0 * torch.log10(torch.clamp(mag @ self.melW, min=1e-10))
        logmel = (logmel - self.mean) / self.std
        if self.variant == "literal":
            ipd = torch.angle(X[1]) - torch.angle(X[0])
            cs = torch.cos(ipd) @ self.melW
            sn = torch.sin(ipd) @ self.melW
        else:
            # Zero bins count as phase 0: replace X by 1 there (|X| = 1, angle 0).
            Xs = torch.where(mag == 0, torch.ones((), dtype=X.dtype), X)
            z = Xs[1] * Xs[0].conj() / (Xs[1].abs() * Xs[0].abs())
            cs = z.real @ self.melW
            sn = z.imag @ self.melW
        x = torch.cat([logmel, cs[None], sn[None]], 0)[None]
        if x.shape[2] != TARGET:
            x = F.interpolate(x, size=(TARGET, N_MELS), mode="bicubic", align_corners=True)
        return x[0]


def synth():
    t = np.arange(SR * 10) / SR
    rng = np.random.default_rng(1)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * (200 + 700 * t) * t)
         + 0.01 * rng.standard_normal(len(t)))
    right = np.concatenate([np.zeros(9), 0.7 * x[:-9]])
    return torch.from_numpy(np.stack([x, right]).astype(np.float32))


def bench(fe, wave, threads, seconds, warmup=3):
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for _ in range(warmup):
            fe(wave)
        times, t0 = [], time.perf_counter()
        t = t0
        while len(times) < 10 or t - t0 < seconds:
            a = time.perf_counter()
            fe(wave)
            t = time.perf_counter()
            times.append(t - a)
    return len(times), t - t0, float(np.median(times)), min(times)


def st_load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, v in head.items():
        if name != "__metadata__" and v["dtype"] == "F32":
            b, e = v["data_offsets"]
            arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(v["shape"])
            out[name] = torch.from_numpy(arr.copy())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--check", metavar="GOLDEN")
    args = ap.parse_args()
    if args.check:
        g = st_load(args.check)
        for variant in ("literal", "phasor"):
            fe = MelIPD((-20.0, -21.0), (200.0, 210.0), variant)
            with torch.inference_mode():
                f = fe(g["wave"])
            gf = g["features"]
            e01 = ((f[:2] - gf[:2]).abs().max() / gf[:2].abs().max()).item()
            e23 = ((f[2:] - gf[2:]).abs().max() / gf[2:].abs().max()).item()
            print(f"check variant={variant} features[0:2] err={e01:.3e} features[2:4] err={e23:.3e}")
    wave = synth()
    for threads in [int(t) for t in args.threads.split(",")]:
        for variant in ("literal", "phasor"):
            clips, el, median, best = bench(MelIPD(variant=variant), wave, threads, args.seconds)
            print(f"torch variant={variant} threads={threads} clips={clips} seconds={el:.3f} "
                  f"clips_per_s={clips / el:.2f} ms_per_clip={1e3 * el / clips:.3f} median_ms={1e3 * median:.3f} "
                  f"best_ms={1e3 * best:.3f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
