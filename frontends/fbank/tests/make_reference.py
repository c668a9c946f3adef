#!/usr/bin/env python3
"""Reference vectors for the `fbank` frontend (AudioMAE's Kaldi filterbank).

Builds a deterministic 3 s, 16 kHz test signal (NumPy, seed 20240917: a voiced
"speech-like" source with a gliding 110-220 Hz fundamental and 40 harmonics
shaped by three formants, a 4 Hz syllable envelope, a fricative-like noise
burst, white noise at about -45 dB, and 0.25 s of exact digital silence), then
runs what AudioMAE's dataset does (facebookresearch/AudioMAE dataset.py,
_wav2fbank + __getitem__):

  waveform = waveform - waveform.mean()
  fbank = torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True,
          sample_frequency=16000, use_energy=False, window_type='hanning',
          num_mel_bins=128, dither=0.0, frame_shift=10)
  pad with zero rows (or cut) to 1024 frames, then (fbank - (-4.2677393)) / (4.5689974 * 2)

once in float64 (stored: the reference) and once in float32 (the spread a
float32 implementation shows; stored in the metadata). torchaudio builds its
mel banks in float32 in both cases. Writes
tests/data/frontends/fbank_ref.safetensors (< 1 MB):
  wave [1, 48000], fbank [298, 128], features [1, 1024, 128]  (all F32).
Run:  /opt/bpbench/bin/python frontends/fbank/tests/make_reference.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchaudio

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "frontends", "fbank_ref.safetensors")
SR = 16000
NORM_MEAN, NORM_STD, TARGET = -4.2677393, 4.5689974, 1024


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


def make_signal():
    rng = np.random.default_rng(20240917)
    n = 3 * SR
    t = np.arange(n) / SR
    f0 = 110.0 * 2.0 ** (t / 3.0)                      # 110 -> 220 Hz glide
    phase = 2.0 * np.pi * np.cumsum(f0) / SR
    formants = [(700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0)]
    voiced = np.zeros(n)
    for h in range(1, 41):
        fh = h * f0
        gain = sum(1.0 / (1.0 + ((fh - fc) / bw) ** 2) for fc, bw in formants) / h ** 0.5
        voiced += gain * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) * (fh < 7800)
    envelope = 0.5 - 0.5 * np.cos(2.0 * np.pi * 4.0 * t)  # syllables
    x = voiced * envelope
    burst = (t > 1.6) & (t < 1.85)                     # fricative-like noise
    x[burst] += 0.3 * np.diff(rng.standard_normal(burst.sum() + 1))
    x = 0.5 * x / np.max(np.abs(x)) + 0.003 * rng.standard_normal(n) + 0.01  # noise floor and a DC offset
    x[int(2.5 * SR):int(2.75 * SR)] = 0.0              # digital silence
    return x.astype(np.float32)


def audiomae_fbank(wave, dtype):
    w = torch.from_numpy(wave.astype(np.float64)).to(dtype)[None]
    w = w - w.mean()
    fb = torchaudio.compliance.kaldi.fbank(w, htk_compat=True, sample_frequency=SR, use_energy=False,
                                           window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    p = TARGET - fb.shape[0]
    feat = torch.nn.ZeroPad2d((0, 0, 0, p))(fb) if p > 0 else fb[:TARGET]
    feat = (feat - NORM_MEAN) / (NORM_STD * 2)
    return fb.numpy().astype(np.float64), feat.numpy().astype(np.float64)


def main():
    wave = make_signal()
    fb64, feat64 = audiomae_fbank(wave, torch.float64)
    fb32, feat32 = audiomae_fbank(wave, torch.float32)
    spread = np.abs(fb32 - fb64)
    assert fb64.shape == (298, 128) and feat64.shape == (TARGET, 128)
    meta = {
        "description": "AudioMAE fbank: waveform - mean, torchaudio.compliance.kaldi.fbank(htk_compat=True, "
                       "sample_frequency=16000, use_energy=False, window_type='hanning', num_mel_bins=128, "
                       "dither=0.0, frame_shift=10), zero-pad to 1024 frames, (x + 4.2677393) / (2 * 4.5689974); "
                       "computed in float64, stored as float32",
        "generator": "frontends/fbank/tests/make_reference.py", "seed": "20240917",
        "torch": torch.__version__, "torchaudio": torchaudio.__version__,
        "f32_spread_fbank_max_abs": "%.3e" % spread.max(), "f32_spread_fbank_mean_abs": "%.3e" % spread.mean(),
        "f32_spread_features_max_abs": "%.3e" % np.abs(feat32 - feat64).max(),
    }
    st_save(OUT, {"wave": wave[None], "fbank": fb64, "features": feat64[None]}, meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes); float32 spread max {spread.max():.3e} "
          f"mean {spread.mean():.3e}; fbank range [{fb64.min():.3f}, {fb64.max():.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
