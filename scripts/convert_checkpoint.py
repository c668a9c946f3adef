#!/usr/bin/env python3
"""Convert an official PyTorch checkpoint into safetensors for batpipe.

Reads a Spatial-AST `finetuned.pth` (the state dict is `checkpoint['model']`),
an AudioMAE `pretrained.pth` / fine-tuned checkpoint (also under 'model'), or
a plain state dict, and writes every tensor under its original state-dict name
as contiguous little-endian float32 (integer buffers such as
`*.num_batches_tracked` stay int64), so that the encoder plugins load it with
their `weights` parameter and check every name and shape.

    python3 scripts/convert_checkpoint.py finetuned.pth spatial_ast.safetensors
    python3 scripts/convert_checkpoint.py pretrained.pth audiomae.safetensors --key model

Options:
  --key KEY        where the state dict lives in the checkpoint (default: 'model',
                   then 'state_dict', then the top level)
  --keep-stft      keep Spatial-AST's STFT kernels spectrogram_extractor.conv_{real,imag}.weight
                   (2 x 2 MB of fixed windowed-DFT weights; skipped by default, batpipe's front end
                   computes them and the encoder accepts them either way)
  --strip PREFIX   remove PREFIX from every name (default: 'module.' when every name has it, as
                   DistributedDataParallel saves)
  --unsafe-load    allow full pickle loading (runs code from the file: only for files you trust)
                   when the safe loader rejects the checkpoint

Needs only torch (no safetensors package). Optional for users: batpipe itself
never runs Python.
"""
import argparse
import json
import os
import struct
import sys

try:
    import torch
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("convert_checkpoint.py needs PyTorch (pip install torch)")

STFT_NAMES = ("spectrogram_extractor.conv_real.weight", "spectrogram_extractor.conv_imag.weight")


def load_checkpoint(path, unsafe):
    """torch.load with weights_only=True (argparse.Namespace allowed, as the
    official checkpoints store their arguments); full unpickling only on request."""
    try:
        if hasattr(torch.serialization, "add_safe_globals"):
            torch.serialization.add_safe_globals([argparse.Namespace])
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure
        if not unsafe:
            sys.exit(f"{path}: the safe loader refused the file ({exc}).\n"
                     "If you trust the file, run again with --unsafe-load.")
        print(f"note: safe loading failed ({exc}); loading with full unpickling (--unsafe-load)")
        return torch.load(path, map_location="cpu", weights_only=False)


def find_state_dict(ckpt, key):
    if isinstance(ckpt, dict):
        keys = [key] if key else ["model", "state_dict"]
        for k in keys:
            if k in ckpt and isinstance(ckpt[k], dict):
                return ckpt[k], k
        if key:
            sys.exit(f"the checkpoint has no dict under '{key}' (top-level keys: {sorted(ckpt)[:20]})")
        if all(torch.is_tensor(v) for v in ckpt.values()):
            return ckpt, None
        sys.exit(f"no state dict found (top-level keys: {sorted(ckpt)[:20]}); name it with --key")
    if hasattr(ckpt, "state_dict"):
        return ckpt.state_dict(), "module"
    sys.exit(f"unsupported checkpoint object of type {type(ckpt).__name__}")


def convert(sd, keep_stft, strip):
    """Returns [(name, dtype, shape, bytes)] and notes."""
    names = list(sd.keys())
    if strip is None and names and all(n.startswith("module.") for n in names):
        strip = "module."
    out, skipped, converted = [], [], {}
    for name, t in sd.items():
        if not torch.is_tensor(t):
            skipped.append(f"{name} (not a tensor)")
            continue
        if strip and name.startswith(strip):
            name = name[len(strip):]
        if name in STFT_NAMES and not keep_stft:
            skipped.append(f"{name} (STFT kernel; --keep-stft keeps it)")
            continue
        t = t.detach().cpu()
        if t.is_floating_point():
            if t.dtype != torch.float32:
                converted[str(t.dtype)] = converted.get(str(t.dtype), 0) + 1
                t = t.to(torch.float32)
            dtype = "F32"
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
            t = t.to(torch.int64)
            dtype = "I64"
        else:
            skipped.append(f"{name} (dtype {t.dtype})")
            continue
        data = t.contiguous().numpy().astype("<" + ("f4" if dtype == "F32" else "i8"), copy=False).tobytes()
        out.append((name, dtype, list(t.shape), data))
    return out, skipped, converted, strip


def write_safetensors(path, tensors, metadata):
    """u64 header length | JSON header (space-padded to 8 bytes) | data, 8-byte dtypes first."""
    tensors = sorted(tensors, key=lambda x: 0 if x[1] == "I64" else 1)
    header, offset = {"__metadata__": metadata}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * ((8 - (8 + len(blob)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, _, _, data in tensors:
            f.write(data)
    os.replace(tmp, path)
    return 8 + len(blob) + offset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="PyTorch checkpoint (.pth/.pt/.bin)")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--key", default=None, help="state dict key in the checkpoint (default: model / state_dict)")
    ap.add_argument("--keep-stft", action="store_true", help="keep the STFT kernels")
    ap.add_argument("--strip", default=None, help="prefix to remove from every name")
    ap.add_argument("--unsafe-load", action="store_true", help="allow full unpickling (trusted files only)")
    args = ap.parse_args(argv)

    ckpt = load_checkpoint(args.input, args.unsafe_load)
    sd, where = find_state_dict(ckpt, args.key)
    tensors, skipped, converted, strip = convert(sd, args.keep_stft, args.strip)
    if not tensors:
        sys.exit(f"{args.input}: no tensors to write")
    meta = {"source": args.input.split("/")[-1], "converted_by": "batpipe scripts/convert_checkpoint.py"}
    if isinstance(ckpt, dict) and "epoch" in ckpt:
        meta["epoch"] = str(ckpt["epoch"])
    size = write_safetensors(args.output, tensors, meta)

    n_values = sum(len(d) // (4 if dt == "F32" else 8) for _, dt, _, d in tensors)
    print(f"{args.input}: state dict {'checkpoint[' + repr(where) + ']' if where else '(top level)'}"
          + (f", prefix '{strip}' removed" if strip else ""))
    print(f"wrote {args.output}: {len(tensors)} tensors, {n_values / 1e6:.2f} M values, {size / 1e6:.1f} MB")
    for dt, n in sorted(converted.items()):
        print(f"  {n} tensor(s) converted from {dt} to float32")
    for s in skipped:
        print(f"  skipped {s}")
    width = max(len(n) for n, _, _, _ in tensors)
    for name, dtype, shape, _ in tensors[:8]:
        print(f"  {name:<{width}}  {dtype} {shape}")
    if len(tensors) > 8:
        print(f"  ... and {len(tensors) - 8} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
