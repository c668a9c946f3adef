#!/usr/bin/env python3
"""Write tests/data/golden/audiomae_tiny.safetensors: a PyTorch (float64)
reference of a tiny AudioMAE fine-tuning model for
encoders/audiomae/tests/test_audiomae_golden.c.

The model is written here from the published architecture (AudioMAE
models_vit.py with global_pool=True on a timm ViT; PatchEmbed_new with a
16x16 stride-16 conv; timm Block/Attention/Mlp semantics): patch tokens
time-major + pos_embed[1:], cls_token + pos_embed[0] prepended, pre-LN blocks
(LayerNorm eps 1e-6, fused qkv with bias, exact GELU), mean over the patch
tokens, fc_norm, head. Sizes: D = 32, depth 2, 4 heads, MLP 128, 7 classes,
batch 2, input [2, 1, 1024, 128].

Stored (all float32 except where noted):
  the model's state dict under AudioMAE's names (random, seeded; pos_embed
  random too, so that the loader, not the generator, is what is compared);
  r        [2, 7]           the projection of the loss L = sum(r * logits)
  logits   [2, 7]           float64, eval forward
  tokens   [2, 513, 32]     float64, the last block's output (no norm)
  pooled   [2, 32]          float64, mean of the patch tokens
  grad.<name>               float64, dL/dparam for every trainable tensor
                            (not pos_embed, which is frozen)
  grad.input_head [2, 1, 32, 128]  float64, dL/dinput for time rows 0..31
The input is not stored: both sides compute it from the same formula,
  x[b, 0, t, f] = float32(1.5 sin(0.37 t (b + 1) + 0.11 f) + 0.1 cos(0.013 t f)),
in float64 before rounding.

Run once with /opt/bpbench/bin/python (torch 2.5.1); needs no safetensors
package (the file is written by hand)."""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

D, DEPTH, HEADS, HIDDEN, NCLS, B = 32, 2, 4, 128, 7, 2
T, F, P = 1024, 128, 16


def make_input():
    t = np.arange(T, dtype=np.float64)[None, :, None]
    f = np.arange(F, dtype=np.float64)[None, None, :]
    b = np.arange(B, dtype=np.float64)[:, None, None]
    x = 1.5 * np.sin(0.37 * t * (b + 1) + 0.11 * f) + 0.1 * np.cos(0.013 * t * f)
    return x.astype(np.float32)[:, None, :, :]


def state_dict():
    g = torch.Generator().manual_seed(20240611)

    def rnd(*shape, scale):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).float()

    sd = {}
    sd["cls_token"] = rnd(1, 1, D, scale=0.5)
    sd["pos_embed"] = rnd(1, 1 + 512, D, scale=0.5)
    sd["patch_embed.proj.weight"] = rnd(D, 1, P, P, scale=1.0 / P)
    sd["patch_embed.proj.bias"] = rnd(D, scale=0.1)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"] = 1.0 + rnd(D, scale=0.1)
        sd[p + "norm1.bias"] = rnd(D, scale=0.1)
        sd[p + "attn.qkv.weight"] = rnd(3 * D, D, scale=D ** -0.5)
        sd[p + "attn.qkv.bias"] = rnd(3 * D, scale=0.1)
        sd[p + "attn.proj.weight"] = rnd(D, D, scale=D ** -0.5)
        sd[p + "attn.proj.bias"] = rnd(D, scale=0.1)
        sd[p + "norm2.weight"] = 1.0 + rnd(D, scale=0.1)
        sd[p + "norm2.bias"] = rnd(D, scale=0.1)
        sd[p + "mlp.fc1.weight"] = rnd(HIDDEN, D, scale=D ** -0.5)
        sd[p + "mlp.fc1.bias"] = rnd(HIDDEN, scale=0.1)
        sd[p + "mlp.fc2.weight"] = rnd(D, HIDDEN, scale=HIDDEN ** -0.5)
        sd[p + "mlp.fc2.bias"] = rnd(D, scale=0.1)
    sd["head.weight"] = rnd(NCLS, D, scale=0.3)
    sd["head.bias"] = rnd(NCLS, scale=0.1)
    sd["fc_norm.weight"] = 1.0 + rnd(D, scale=0.1)
    sd["fc_norm.bias"] = rnd(D, scale=0.1)
    return sd


def layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps=1e-6)


def forward(p, x):
    """p: name -> float64 tensor (requires_grad where trainable)."""
    y = torch.nn.functional.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=P)
    y = y.flatten(2).transpose(1, 2)  # [B, 64*8, D], token = t*8 + f
    y = y + p["pos_embed"][:, 1:, :]
    cls = (p["cls_token"] + p["pos_embed"][:, :1, :]).expand(x.shape[0], -1, -1)
    h = torch.cat([cls, y], dim=1)
    dh = D // HEADS
    for i in range(DEPTH):
        q = f"blocks.{i}."
        a = layer_norm(h, p[q + "norm1.weight"], p[q + "norm1.bias"])
        qkv = a @ p[q + "attn.qkv.weight"].T + p[q + "attn.qkv.bias"]
        qkv = qkv.reshape(h.shape[0], h.shape[1], 3, HEADS, dh).permute(2, 0, 3, 1, 4)
        att = torch.softmax((qkv[0] @ qkv[1].transpose(-2, -1)) * dh ** -0.5, dim=-1)
        o = (att @ qkv[2]).transpose(1, 2).reshape(h.shape[0], h.shape[1], D)
        h = h + (o @ p[q + "attn.proj.weight"].T + p[q + "attn.proj.bias"])
        m = layer_norm(h, p[q + "norm2.weight"], p[q + "norm2.bias"])
        m = torch.nn.functional.gelu(m @ p[q + "mlp.fc1.weight"].T + p[q + "mlp.fc1.bias"])
        h = h + (m @ p[q + "mlp.fc2.weight"].T + p[q + "mlp.fc2.bias"])
    pooled = h[:, 1:, :].mean(dim=1)
    logits = layer_norm(pooled, p["fc_norm.weight"], p["fc_norm.bias"]) @ p["head.weight"].T + p["head.bias"]
    return h, pooled, logits


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        dt = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"source": "encoders/audiomae/tests/make_audiomae_ref.py", "torch": torch.__version__}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../tests/data/golden/audiomae_tiny.safetensors")
    torch.manual_seed(0)
    sd = state_dict()
    p = {k: v.double().requires_grad_(k != "pos_embed") for k, v in sd.items()}
    x = torch.from_numpy(make_input()).double().requires_grad_(True)
    g = torch.Generator().manual_seed(7)
    r = torch.randn(B, NCLS, generator=g, dtype=torch.float64).float()
    tokens, pooled, logits = forward(p, x)
    loss = (logits * r.double()).sum()
    loss.backward()
    outs = dict(sd)
    outs["r"] = r
    outs["logits"] = logits.detach()
    outs["tokens"] = tokens.detach()
    outs["pooled"] = pooled.detach()
    for k, v in p.items():
        if v.grad is not None:
            outs["grad." + k] = v.grad.detach()
    outs["grad.input_head"] = x.grad.detach()[:, :, :32, :].contiguous()
    write_safetensors(out, outs)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB); logits[0] = {logits[0].detach().numpy()}")
    print(f"pooled range {pooled.min().item():.3f}..{pooled.max().item():.3f}, "
          f"|grad input| max {x.grad.abs().max().item():.3e}, "
          f"{sum(1 for k in outs if k.startswith('grad.'))} gradients")


if __name__ == "__main__":
    main()
