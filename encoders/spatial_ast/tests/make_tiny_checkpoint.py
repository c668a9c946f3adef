#!/usr/bin/env python3
"""Write a small PyTorch checkpoint shaped like the official Spatial-AST
`finetuned.pth` (dict with 'model', 'optimizer', 'epoch', 'args'; the
official state-dict names and order, STFT kernels and front-end buffers
included) for tests/test_convert_checkpoint.c. Values are seeded random,
except head.bias = 0.01 * arange(n_classes) so that the C test can check
that values arrive unchanged. Options break it on purpose."""
import argparse
import importlib.util
import os

import torch


def state_dict(dim, depth, n_classes, in_ch, f16):
    g = torch.Generator().manual_seed(0)
    sd = {}

    def put(name, *shape, dtype=torch.float32):
        sd[name] = (torch.randn(*shape, generator=g) * 0.05).to(dtype)

    put("pos_embed", 1, 513, dim)
    put("cls_tokens", 1, 3, dim)
    put("patch_embed.proj.weight", dim, 1, 16, 16, dtype=torch.float16 if f16 else torch.float32)
    put("patch_embed.proj.bias", dim)
    hid = int(dim * 4)
    for i in range(depth):
        p = f"blocks.{i}."
        for n, s in [("norm1.weight", (dim,)), ("norm1.bias", (dim,)), ("attn.qkv.weight", (3 * dim, dim)),
                     ("attn.qkv.bias", (3 * dim,)), ("attn.proj.weight", (dim, dim)), ("attn.proj.bias", (dim,)),
                     ("norm2.weight", (dim,)), ("norm2.bias", (dim,)), ("mlp.fc1.weight", (hid, dim)),
                     ("mlp.fc1.bias", (hid,)), ("mlp.fc2.weight", (dim, hid)), ("mlp.fc2.bias", (dim,))]:
            put(p + n, *s)
    put("head.weight", n_classes, dim)
    sd["head.bias"] = 0.01 * torch.arange(n_classes, dtype=torch.float32)
    put("spectrogram_extractor.conv_real.weight", 513, 1, 1024)
    put("spectrogram_extractor.conv_imag.weight", 513, 1, 1024)
    put("logmel_extractor.melW", 513, 128)
    put("conv_downsample.0.weight", 1, in_ch, 3, 3)
    put("conv_downsample.1.weight", 1)
    put("conv_downsample.1.bias", 1)
    put("conv_downsample.1.running_mean", 1)
    sd["conv_downsample.1.running_var"] = torch.ones(1)
    sd["conv_downsample.1.num_batches_tracked"] = torch.tensor(1234, dtype=torch.int64)
    sd["bn.running_mean"] = torch.tensor([-20.0, -21.0])
    sd["bn.running_var"] = torch.tensor([200.0, 210.0])
    sd["bn.num_batches_tracked"] = torch.tensor(5, dtype=torch.int64)
    for n in ["dis_norm", "doa_norm", "fc_norm"]:
        sd[n + ".weight"] = torch.ones(dim, dtype=torch.float64 if f16 else torch.float32)
        put(n + ".bias", dim)
    for n, k in [("distance_head", 21), ("azimuth_head", 360), ("elevation_head", 180)]:
        put(n + ".weight", k, dim)
        sd[n + ".bias"] = torch.zeros(k)
    return sd


def make(path, dim=16, depth=1, n_classes=5, in_ch=4, plain=False, ddp=False, f16=False, drop=None,
         rename=None, reshape=None):
    sd = state_dict(dim, depth, n_classes, in_ch, f16)
    if drop:
        del sd[drop]
    if rename:
        sd = {(rename[1] if k == rename[0] else k): v for k, v in sd.items()}
    if reshape:
        sd[reshape] = sd[reshape].flatten()[:-1]
    if ddp:
        sd = {"module." + k: v for k, v in sd.items()}
    if plain:
        torch.save(sd, path)
    else:
        opt = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
        torch.save({"model": sd, "optimizer": opt, "epoch": 7, "scaler": {"scale": 65536.0},
                    "args": argparse.Namespace(blr=1e-3, epochs=100)}, path)


# The cases of test_convert_checkpoint.c: name -> (checkpoint options, converter options).
CASES = {
    "official": ({}, []),
    "stft": ({}, ["--keep-stft"]),
    "ddp": ({"ddp": True, "f16": True}, []),
    "plain": ({"plain": True}, []),
    "missing": ({"drop": "head.bias"}, []),
    "renamed": ({"rename": ("blocks.0.attn.qkv.weight", "blocks.0.attn.qkv_weight")}, []),
    "reshaped": ({"reshape": "fc_norm.bias"}, []),
    "other_input": ({"in_ch": 2}, []),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", help="write <case>.pth and, with --converter, <case>.safetensors here")
    ap.add_argument("--converter", default=None, help="path of scripts/convert_checkpoint.py")
    a = ap.parse_args()
    conv = None
    if a.converter:
        spec = importlib.util.spec_from_file_location("convert_checkpoint", a.converter)
        conv = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(conv)
    for name, (opts, conv_opts) in CASES.items():
        pth = os.path.join(a.dir, name + ".pth")
        make(pth, **opts)
        if conv:
            print(f"--- {name}")
            conv.main([pth, os.path.join(a.dir, name + ".safetensors")] + conv_opts)


if __name__ == "__main__":
    main()
