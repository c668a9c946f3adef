#!/usr/bin/env python3
"""Float64 NumPy reference for the `mel` frontend, mono downmix "mean".

Reads the golden wave (tests/data/golden/melipd_10s.safetensors, 32 kHz stereo)
and its Slaney matrix `mel_fb`, and computes, in float64 from those float32
values, what `mel` with channels=1, downmix="mean", bn_mean=[-20.0],
bn_var=[200.0] must produce:

  x = (left + right) / 2 (rounded to float32, as the frontend does)
  STFT: n_fft 1024, hop 320, periodic Hann, centre reflect padding (numpy.pad
  mode="reflect"), numpy rfft; logmel = 10 log10(max(|X| @ mel_fb, 1e-10));
  bn = (logmel + 20) / sqrt(200 + 1e-5); features = bicubic resize of bn along
  time 1001 -> 1024 (align_corners=True, A = -0.75, clamped taps).

To keep the file small only every 4th frame of `logmel_raw` (frames 0, 4, ...,
1000) and every 4th row of `features` (rows 0, 4, ..., 1020) are stored.
Writes tests/data/frontends/mel_mono_ref.safetensors. Run with any Python that
has NumPy, e.g.  /opt/bpbench/bin/python frontends/mel/tests/make_reference.py
"""
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden", "melipd_10s.safetensors")
OUT = os.path.join(ROOT, "tests", "data", "frontends", "mel_mono_ref.safetensors")


def st_load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, v in head.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64}[v["dtype"]]
        b, e = v["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt).reshape(v["shape"])
    return out


def st_save(path, tensors, meta):
    head, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        head[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + arr.nbytes]}
        blobs.append(arr.tobytes())
        off += arr.nbytes
    head["__metadata__"] = meta
    js = json.dumps(head, separators=(",", ":")).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def logmel(x, mel_fb, n_fft=1024, hop=320):
    pad = n_fft // 2
    xp = np.pad(x.astype(np.float64), pad, mode="reflect")
    n_frames = 1 + len(x) // hop
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(xp[idx] * win, axis=1))
    return 10.0 * np.log10(np.maximum(spec @ mel_fb.astype(np.float64), 1e-10))


def cubic_weights(t, a=-0.75):
    x0, x3, u = t + 1.0, 2.0 - t, 1.0 - t
    return np.array([((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a,
                     ((a + 2) * t - (a + 3)) * t * t + 1,
                     ((a + 2) * u - (a + 3)) * u * u + 1,
                     ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a])


def resize_time(m, t_out):
    t_in = m.shape[0]
    out = np.empty((t_out, m.shape[1]))
    scale = (t_in - 1) / (t_out - 1)
    for i in range(t_out):
        s = i * scale
        i0 = int(np.floor(s))
        w = cubic_weights(s - i0)
        taps = np.clip(np.arange(i0 - 1, i0 + 3), 0, t_in - 1)
        out[i] = w @ m[taps]
    return out


def main():
    g = st_load(GOLDEN)
    wave, mel_fb = g["wave"], g["mel_fb"]
    mono = ((wave[0] + wave[1]) * np.float32(0.5)).astype(np.float32)
    raw = logmel(mono, mel_fb)
    bn = (raw - (-20.0)) / np.sqrt(200.0 + 1e-5)
    feat = resize_time(bn, 1024)
    # Independent check of the resize against a direct Keys-kernel sum.
    s = 517 * 1000 / 1023
    direct = sum(cubic_weights(s - np.floor(s))[j] * bn[min(max(int(np.floor(s)) - 1 + j, 0), 1000)] for j in range(4))
    assert np.allclose(direct, feat[517], rtol=0, atol=1e-12)
    st_save(OUT, {"logmel_raw_every4": raw[::4], "features_every4": feat[::4][None]},
            {"description": "mel frontend, channels=1, downmix=mean, bn_mean=[-20], bn_var=[200], float64 NumPy "
                            "reference from the golden melipd_10s wave; every 4th frame / row",
             "source": "tests/data/golden/melipd_10s.safetensors", "frame_stride": "4",
             "generator": "frontends/mel/tests/make_reference.py"})
    print(f"wrote {OUT}: logmel_raw_every4 {raw[::4].shape}, features_every4 {feat[::4][None].shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
