#!/usr/bin/env python3
"""Spatial-AST in PyTorch: the reference side of bench/run_spatial_ast_bench.sh.

Written for this benchmark from the architecture notes
(docs/research/bat-official.md §1: conv block, 16×16 patch embedding,
frozen position table, 2-D token masking, 3 CLS tokens, pre-LN ViT blocks,
task norms and heads), with the official state-dict key names, so that the
C plugin (encoders/spatial_ast) and this model load the same safetensors
file and compute the same function.

    spatial_ast_torch.py export --out-full F.safetensors --out-mini M.safetensors
    spatial_ast_torch.py check --weights F --weights-mini M --c-out C.safetensors
    spatial_ast_torch.py bench --threads 1 --what fwd1,fwd8,train [--weights F] [--weights-mini M]
                               [-w WARMUP] [-n ITERS] [--profile]

export  random weights (fixed seed) for the full model (dim 768, depth 12,
        heads 12, 355 classes) and the mini config (dim 192, depth 4, heads 3,
        52 classes). Not the official initialisation: every weight is drawn at
        a scale where every output is O(1) (the official heads' 2e-5 std
        would make the logits nearly constant and the comparison weak).
check   reads what `bench_spatial_ast --check` wrote (the inputs, the C
        outputs, gradients and the state after one AdamW step), recomputes
        all of it here, prints the max differences and exits 1 if one is out
        of its (loose) tolerance.
bench   timings, one line per measurement, same format as the C program:
        sast impl=torch threads=N what=fwd1 batch=1 iters=K median_ms=M best_ms=B gflop=G gflops=R
        fwd1/fwd8: full size, eval, torch.inference_mode, every output
        (tokens and the four logits), batch 1 / 8. train: mini config, batch 8:
        zero_grad, training forward (token masking 0.25/0.25, SpecAugment
        48/192, drop path 0.1), loss 1250·BCE + CE_dist + 2·(CE_az + CE_el),
        backward, torch.optim.AdamW step (lr 3.125e-4, β 0.9/0.95, eps 1e-8,
        weight decay 5e-4 on every tensor of rank >= 2, as the official
        param_groups_lrd). The front end is not part of the benchmark: the
        features are random.

FLOP count (matmuls and convolutions only, 2 per multiply-add; the same
formula as bench_spatial_ast.c), per sample with N tokens in the blocks
(515; 291 with the training masking), D = dim, Hm = MLP width, C = 4 maps:
    conv_downsample.0  2·C·9·1024·128
    patch_embed.proj   2·512·256·D
    each block         2·N·D·3D + 2·2·N²·D + 2·N·D² + 2·2·N·D·Hm
    heads              2·D·(n_classes + 21 + 360 + 180)
training step = 3 × forward − one conv_downsample.0 forward (no input gradient).
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FRAMES, MELS, PATCH, IN_CH = 1024, 128, 16, 4
GRID_T, GRID_F = FRAMES // PATCH, MELS // PATCH  # 64 × 8
N_PATCH = GRID_T * GRID_F
N_DIST, N_AZI, N_ELE = 21, 360, 180

FULL = dict(dim=768, depth=12, heads=12, mlp_ratio=4.0, n_classes=355)
MINI = dict(dim=192, depth=4, heads=3, mlp_ratio=4.0, n_classes=52)

# training recipe of the benchmark step (configs/mini/common.inc, stage 2 losses)
TR_BATCH, TR_LR, TR_BETAS, TR_EPS, TR_WD = 8, 3.125e-4, (0.9, 0.95), 1e-8, 5e-4
W_CLASS, W_DIST, W_DIR = 1250.0, 1.0, 2.0
AUG = dict(mask_t=0.25, mask_f=0.25, specaug_f=48, specaug_t=192, drop_path=0.1)
NO_AUG = dict(mask_t=0.0, mask_f=0.0, specaug_f=0, specaug_t=0, drop_path=0.0)


# --------------------------------------------------------------------- model --

class Attention(nn.Module):
    def __init__(self, dim, heads, sdpa):
        super().__init__()
        self.heads, self.dh, self.sdpa = heads, dim // heads, sdpa
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4).unbind(0)
        if self.sdpa:  # what timm's Attention does on torch >= 2 (fused_attn)
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = ((q * self.dh ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.proj(o.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x, rate, gen):
    """timm DropPath: per-sample keep with probability 1 − rate, scaled by 1/(1 − rate)."""
    if rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1), dtype=x.dtype).bernoulli_(keep, generator=gen).div_(keep)
    return x * mask


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, sdpa):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, sdpa)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x, dp=0.0, gen=None):
        x = x + drop_path(self.attn(self.norm1(x)), dp, gen)
        return x + drop_path(self.mlp(self.norm2(x)), dp, gen)


class PatchEmbed(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, PATCH, PATCH)

    def forward(self, x):  # [B, 1, 1024, 128] → [B, 512, D], token t·8 + f
        return self.proj(x).flatten(2).transpose(1, 2)


class SpatialAST(nn.Module):
    """features [B, 4, 1024, 128] → tokens [B, 3 + n, D] and the four heads' logits."""

    def __init__(self, dim, depth, heads, mlp_ratio, n_classes, sdpa=True):
        super().__init__()
        self.dim, self.depth = dim, depth
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + N_PATCH, dim), requires_grad=False)
        self.cls_tokens = nn.Parameter(torch.zeros(1, 3, dim))
        self.patch_embed = PatchEmbed(dim)
        self.blocks = nn.ModuleList(Block(dim, heads, int(dim * mlp_ratio), sdpa) for _ in range(depth))
        self.head = nn.Linear(dim, n_classes)
        self.conv_downsample = nn.Sequential(nn.Conv2d(IN_CH, 1, 3, 1, 1, bias=False), nn.BatchNorm2d(1), nn.GELU())
        self.dis_norm = nn.LayerNorm(dim, eps=1e-6)
        self.doa_norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.distance_head = nn.Linear(dim, N_DIST)
        self.azimuth_head = nn.Linear(dim, N_AZI)
        self.elevation_head = nn.Linear(dim, N_ELE)

    @staticmethod
    def specaugment(x, max_f, max_t, gen):
        """One frequency and one time mask (torchaudio mask_along_axis sampling), fill 0, one for the batch."""
        keep = torch.ones(FRAMES, MELS, dtype=x.dtype)
        for axis, size, mx in ((1, MELS, max_f), (0, FRAMES, max_t)):
            if mx <= 0:
                continue
            u = torch.rand(2, generator=gen)
            width = int(u[0] * mx)
            start = int(u[1] * (size - width))
            if axis == 0:
                keep[start:start + width, :] = 0
            else:
                keep[:, start:start + width] = 0
        return x * keep

    @staticmethod
    def random_masking_2d(x, mask_t, mask_f, gen):
        """AudioMAE 2-D masking: keep int(64(1 − p_t)) random time rows and int(8(1 − p_f)) frequency columns."""
        B, _, D = x.shape
        kt, kf = int(GRID_T * (1 - mask_t)), int(GRID_F * (1 - mask_f))
        x = x.reshape(B, GRID_T, GRID_F, D)
        ids_t = torch.argsort(torch.rand(B, GRID_T, generator=gen), dim=1)[:, :kt]
        x = torch.gather(x, 1, ids_t[:, :, None, None].expand(-1, -1, GRID_F, D))
        ids_f = torch.argsort(torch.rand(B, GRID_F, generator=gen), dim=1)[:, :kf]
        x = torch.gather(x, 2, ids_f[:, None, :, None].expand(-1, kt, -1, D))
        return x.reshape(B, kt * kf, D)

    def forward(self, x, aug=None, gen=None):
        B = x.shape[0]
        x = self.conv_downsample(x)
        if aug and self.training and (aug["specaug_f"] > 0 or aug["specaug_t"] > 0):
            x = self.specaugment(x, aug["specaug_f"], aug["specaug_t"], gen)
        x = self.patch_embed(x) + self.pos_embed[:, 1:, :]
        if aug and self.training and (aug["mask_t"] > 0 or aug["mask_f"] > 0):
            x = self.random_masking_2d(x, aug["mask_t"], aug["mask_f"], gen)
        x = torch.cat([self.cls_tokens.expand(B, -1, -1), x], dim=1)
        rate = aug["drop_path"] if aug and self.training else 0.0
        for i, blk in enumerate(self.blocks):
            x = blk(x, rate * i / (self.depth - 1) if self.depth > 1 else 0.0, gen)
        d = self.dis_norm(x[:, 0])
        doa = self.doa_norm(x[:, 1])
        c = self.fc_norm(x[:, 2])
        return x, self.head(c), self.distance_head(d), self.azimuth_head(doa), self.elevation_head(doa)


# ----------------------------------------------------------------- helpers --

def flop_forward(cfg, batch, n_tok):
    D, N, Hm = cfg["dim"], n_tok, int(cfg["dim"] * cfg["mlp_ratio"])
    conv0 = 2.0 * IN_CH * 9 * FRAMES * MELS
    patch = 2.0 * N_PATCH * PATCH * PATCH * D
    block = 2.0 * N * D * 3 * D + 4.0 * N * N * D + 2.0 * N * D * D + 4.0 * N * D * Hm
    heads = 2.0 * D * (cfg["n_classes"] + N_DIST + N_AZI + N_ELE)
    return batch * (conv0 + patch + cfg["depth"] * block + heads)


def flop_train(cfg, batch, n_tok):
    return 3.0 * flop_forward(cfg, batch, n_tok) - batch * 2.0 * IN_CH * 9 * FRAMES * MELS


def init_weights(model, seed):
    """Random weights with O(1) outputs everywhere (not the official init; see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(3)
            elif name.endswith("running_mean"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif "norm" in name or name.startswith("conv_downsample.1."):
                base = 1.0 if name.endswith("weight") else 0.0
                t.copy_(base + 0.1 * torch.randn(t.shape, generator=g))
            elif name == "conv_downsample.0.weight":
                t.copy_(torch.randn(t.shape, generator=g) / 6.0)
            elif name == "patch_embed.proj.weight":
                t.copy_(torch.randn(t.shape, generator=g) / 16.0)
            elif t.dim() >= 2:  # Linear weights, pos_embed, cls_tokens
                t.copy_(0.02 * torch.randn(t.shape, generator=g))
            else:  # biases
                t.copy_(0.02 * torch.randn(t.shape, generator=g))


def load_st(path):
    from safetensors.torch import load_file
    return load_file(path)


def build(cfg, weights, sdpa=True):
    m = SpatialAST(sdpa=sdpa, **cfg)
    if weights:
        m.load_state_dict(load_st(weights), strict=True)  # raises on any missing/unexpected/mis-shaped key
    else:
        init_weights(m, 1 if cfg is FULL else 2)  # what export would write
    return m


def loss_fn(outs, y_class, y_dist, y_az, y_el):
    _, lc, ld, la, le = outs
    return (W_CLASS * F.binary_cross_entropy_with_logits(lc, y_class) + W_DIST * F.cross_entropy(ld, y_dist)
            + W_DIR * (F.cross_entropy(la, y_az) + F.cross_entropy(le, y_el)))


def make_optimizer(model, impl):
    # the official param_groups_lrd rule: no decay for 1-D tensors and the names in
    # its no_weight_decay list ("pos_embed", "cls_token": so cls_tokens is decayed)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() == 1 or name in ("pos_embed", "cls_token", "dist_token") else decay).append(p)
    kw = {}
    if impl == "fused":
        kw["fused"] = True
    elif impl == "foreach":
        kw["foreach"] = True
    return torch.optim.AdamW([{"params": decay, "weight_decay": TR_WD}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=TR_LR, betas=TR_BETAS, eps=TR_EPS, **kw)


def random_targets(batch, n_classes, gen):
    y_class = torch.zeros(batch, n_classes)
    y_class[torch.arange(batch), torch.randint(0, n_classes, (batch,), generator=gen)] = 1.0
    return (y_class, torch.randint(0, N_DIST, (batch,), generator=gen),
            torch.randint(0, N_AZI, (batch,), generator=gen), torch.randint(0, N_ELE, (batch,), generator=gen))


# ---------------------------------------------------------------- commands --

def cmd_export(a):
    from safetensors.torch import save_file
    for cfg, out, seed in ((FULL, a.out_full, 1), (MINI, a.out_mini, 2)):
        if not out:
            continue
        m = SpatialAST(**cfg)
        init_weights(m, seed)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, out)
        n = sum(p.numel() for p in m.parameters() if p.requires_grad)
        print(f"spatial_ast_torch: wrote {out} (dim {cfg['dim']}, depth {cfg['depth']}, {n / 1e6:.2f} M trainable)")


def rel_err(c, t):
    c, t = c.double(), t.double()
    return (c - t).abs().max().item() / max(t.abs().max().item(), 1e-30)


def cmd_check(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = load_st(a.c_out)
    ok = True
    tol_fwd, tol_grad = 1e-3, 1e-3
    # 1. full size, evaluation forward, batch 2
    m = build(FULL, a.weights, sdpa=not a.manual_attention).eval()
    with torch.inference_mode():
        outs = m(c["fwd.input"])
    worst = 0.0
    for name, t in zip(["tokens", "logits_class", "logits_distance", "logits_azimuth", "logits_elevation"], outs):
        e = rel_err(c["fwd." + name], t)
        ad = (c["fwd." + name].double() - t.double()).abs().max().item()
        worst = max(worst, e)
        print(f"check fwd  {name:17s} {str(list(t.shape)):16s} max|c-t| {ad:.3e}  max|c-t|/max|t| {e:.3e}")
    print(f"check fwd  worst relative difference {worst:.3e} (tolerance {tol_fwd:g}): "
          f"{'ok' if worst <= tol_fwd else 'FAIL'}")
    ok &= worst <= tol_fwd
    del m, outs
    # 2. mini, training step without augmentation, batch 8, AdamW step 1
    m = build(MINI, a.weights_mini, sdpa=not a.manual_attention).train()
    opt = make_optimizer(m, "default")
    y = (c["train.target_class"], c["train.target_distance"].long(), c["train.target_azimuth"].long(),
         c["train.target_elevation"].long())
    opt.zero_grad()
    outs = m(c["train.input"], NO_AUG)
    loss = loss_fn(outs, *y)
    loss.backward()
    worst = 0.0
    for name, t in zip(["logits_class", "logits_distance", "logits_azimuth", "logits_elevation"], outs[1:]):
        e = rel_err(c["train." + name], t.detach())
        worst = max(worst, e)
        print(f"check train {name:16s} max|c-t|/max|t| {e:.3e}")
    e = abs(c["train.loss"].item() - loss.item()) / abs(loss.item())
    print(f"check train loss C {c['train.loss'].item():.6f} torch {loss.item():.6f} relative {e:.3e}")
    worst = max(worst, e)
    gworst, gname, n_grads = 0.0, "", 0
    for name, p in m.named_parameters():
        if p.grad is None:
            continue
        n_grads += 1
        e = rel_err(c["grad." + name], p.grad)
        if e > gworst:
            gworst, gname = e, name
    print(f"check train gradients ({n_grads} tensors): worst max|c-t|/max|t| {gworst:.3e} ({gname})")
    grads = {name: p.grad.detach().clone() for name, p in m.named_parameters() if p.grad is not None}
    opt.step()
    # AdamW's first step moves each weight by lr·g/(|g| + eps) ≈ ±lr: an element
    # whose gradient is at rounding-noise level (e.g. the key bias, whose exact
    # gradient is 0) may take either sign on either side. Those elements
    # (|g| < 1e-5·max|g| of the tensor) are left out of the comparison; the
    # rest, and every buffer, must agree to 1e-2·lr.
    sd = m.state_dict()
    pworst, pname, skipped = 0.0, "", 0
    for name, t in sd.items():
        d = (c["after." + name].double() - t.double()).abs()
        if name in grads:
            g = grads[name].abs()
            keep = g >= 1e-5 * g.max()
            skipped += int((~keep).sum())
            d = d[keep]
        dm = d.max().item() if d.numel() else 0.0
        if dm > pworst:
            pworst, pname = dm, name
    print(f"check train state after AdamW step 1 ({len(sd)} tensors): worst max|c-t| {pworst:.3e} ({pname}) "
          f"= {pworst / TR_LR:.2e}·lr, lr = {TR_LR:g}; {skipped} elements with noise-level gradients left out")
    tworst = max(worst, gworst)
    good = tworst <= tol_grad and pworst <= 1e-2 * TR_LR
    print(f"check train worst relative difference {tworst:.3e} (tolerance {tol_grad:g}), "
          f"state after step {pworst / TR_LR:.2e}·lr (tolerance 1e-2·lr): {'ok' if good else 'FAIL'}")
    ok &= good
    print(f"check {'PASSED' if ok else 'FAILED'}")
    return 0 if ok else 1


def cmd_compare_bf16(a):
    """How far the C model's BF16 inference (precision = "bf16") is from its F32 one, full size, batch 2."""
    f32, bf16 = load_st(a.f32), load_st(a.bf16)
    for name in ["tokens", "logits_class", "logits_distance", "logits_azimuth", "logits_elevation"]:
        x, y = bf16["fwd." + name], f32["fwd." + name]
        print(f"bf16 vs f32 (C) {name:17s} max|b-f|/max|f| {rel_err(x, y):.3e}  "
              f"argmax agreement {(x.argmax(-1) == y.argmax(-1)).float().mean().item() * 100:.0f}%")
    return 0


def median(xs):
    return statistics.median(xs)


def report(threads, what, batch, times, gflop, impl="torch"):
    med = median(times)
    print(f"sast impl={impl} threads={threads} what={what} batch={batch} iters={len(times)} "
          f"median_ms={1e3 * med:.2f} best_ms={1e3 * min(times):.2f} gflop={gflop:.3f} gflops={gflop / med:.2f}",
          flush=True)


def maybe_profile(a, what, fn, iters):
    if not a.profile:
        return
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            fn()
    print(f"profile torch {what} threads={a.threads}: {iters} iterations (totals)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    whats = a.what.split(",")
    gen = torch.Generator().manual_seed(1234)
    if "fwd1" in whats or "fwd8" in whats:
        m = build(FULL, a.weights, sdpa=not a.manual_attention).eval()
        for what, batch, warm, iters in (("fwd1", 1, 2, 5), ("fwd8", 8, 1, 3)):
            if what not in whats:
                continue
            warm = a.warmup if a.warmup >= 0 else warm
            iters = a.iters if a.iters > 0 else iters
            x = torch.rand(batch, IN_CH, FRAMES, MELS, generator=gen) * 2 - 1

            def fwd():
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                    return m(x)

            for _ in range(warm):
                fwd()
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                fwd()
                times.append(time.perf_counter() - t0)
            report(a.threads, what, batch, times, 1e-9 * flop_forward(FULL, batch, 515),
                   "torch_bf16" if a.bf16 else "torch")
            maybe_profile(a, what, fwd, 1)
        del m
    if "train" in whats:
        m = build(MINI, a.weights_mini, sdpa=not a.manual_attention).train()
        opt = make_optimizer(m, a.adamw)
        x = torch.rand(TR_BATCH, IN_CH, FRAMES, MELS, generator=gen) * 2 - 1
        y = random_targets(TR_BATCH, MINI["n_classes"], gen)

        def step():
            opt.zero_grad()
            loss = loss_fn(m(x, AUG, gen), *y)
            loss.backward()
            opt.step()
            return loss

        warm = a.warmup if a.warmup >= 0 else 3
        iters = a.iters if a.iters > 0 else 10
        for _ in range(warm):
            step()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        n_tok = 3 + int(GRID_T * (1 - AUG["mask_t"])) * int(GRID_F * (1 - AUG["mask_f"]))
        report(a.threads, "train", TR_BATCH, times, 1e-9 * flop_train(MINI, TR_BATCH, n_tok))
        maybe_profile(a, "train", step, 3)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out-full")
    e.add_argument("--out-mini")
    cb = sub.add_parser("compare-bf16")
    cb.add_argument("--f32", required=True, help="bench_spatial_ast --check output")
    cb.add_argument("--bf16", required=True, help="bench_spatial_ast --precision bf16 --check output")
    for name in ("check", "bench"):
        p = sub.add_parser(name)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--weights", help="full-size state dict (safetensors); default: this script's init")
        p.add_argument("--weights-mini", help="mini state dict (safetensors)")
        p.add_argument("--manual-attention", action="store_true",
                       help="softmax(q·kᵀ)·v in three ops instead of F.scaled_dot_product_attention")
        if name == "check":
            p.add_argument("--c-out", required=True, help="what bench_spatial_ast --check wrote")
        else:
            p.add_argument("--what", default="fwd1,fwd8,train")
            p.add_argument("-w", "--warmup", type=int, default=-1)
            p.add_argument("-n", "--iters", type=int, default=-1)
            p.add_argument("--adamw", choices=["default", "foreach", "fused"], default="default",
                           help="torch.optim.AdamW implementation (default: PyTorch's choice, per-tensor on CPU)")
            p.add_argument("--profile", action="store_true", help="also print torch.profiler's op table")
            p.add_argument("--bf16", action="store_true",
                           help="forwards under torch.autocast('cpu', bfloat16) (reported as impl=torch_bf16)")
    a = ap.parse_args()
    if a.cmd == "export":
        cmd_export(a)
        return 0
    if a.cmd == "check":
        return cmd_check(a)
    if a.cmd == "compare-bf16":
        return cmd_compare_bf16(a)
    return cmd_bench(a)


if __name__ == "__main__":
    sys.exit(main())
