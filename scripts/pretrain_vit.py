#!/usr/bin/env python3
"""Pretrain a small ViT on the built-in simulation's camera frames as a masked autoencoder, and export its encoder.

No labels and no downloaded weights: the frames come from `s2-policy sim frames` (the node's own ingestion,
ImageNet-normalised, N x 3 x 224 x 224), 75 % of each frame's 16x16 patches are hidden, and the encoder (a
ViT-Tiny-like stack: patch 16, dim 192, --depth blocks, 3 heads, CLS token) with a small decoder learns to predict the
hidden patches' normalised pixels (MAE, He et al. 2021). Seeded, CPU, one thread. The encoder is exported with
scripts/export_backbone.py (MODULE:FUNCTION form, this file's `encoder`), so the ONNX file is what `s2-policy` takes
from any PyTorch ViT: input 'pixel_values' B x 3 x 224 x 224, output 'features' B x 197 x 192 (CLS first, after the
final LayerNorm), metadata s2.kind, s2.image_size, s2.num_prefix_tokens, s2.mean, s2.std.

    nice -n 10 python3 scripts/pretrain_vit.py --out models/vit_mae_sim/vit_mae_sim.onnx

Frames: --frames FILE, else rendered by `node bin/s2-policy.js sim frames` (needs `npm run build`).
Needs: pip install torch onnx onnxruntime onnxscript.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PATCH = 16
SIZE = 224
GRID = SIZE // PATCH


def fail(msg):
    print(f"pretrain_vit: {msg}", file=sys.stderr)
    sys.exit(2)


def sincos_2d(dim, grid, cls=True):
    """MAE's fixed 2D sine-cosine position embedding (half the channels per axis), with a zero row for the CLS."""
    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    gy, gx = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    emb = np.concatenate([one(dim // 2, gy), one(dim // 2, gx)], axis=1)
    if cls:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


class Attention(nn.Module):
    # Written out (no fused SDPA) so that the exported graph is plain MatMul / Softmax that every runtime fuses.
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        x = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, dim * mlp)
        self.fc2 = nn.Linear(dim * mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Encoder(nn.Module):
    """The exported part: pixels -> CLS + 14x14 tokens after the final LayerNorm."""

    def __init__(self, dim=192, depth=6, heads=3):
        super().__init__()
        self.patch_size = PATCH
        self.num_prefix_tokens = 1
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_2d(dim, GRID), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def tokens(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]

    def run(self, t):
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(t.shape[0], -1, -1)
        t = torch.cat([cls, t], 1)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def forward(self, x):
        return self.run(self.tokens(x))


def encoder(dim=192, depth=6, heads=3):
    """For scripts/export_backbone.py --model scripts/pretrain_vit.py:encoder --kwargs '{"depth": 6}'."""
    return Encoder(dim, depth, heads)


class MAE(nn.Module):
    def __init__(self, dim=192, depth=6, heads=3, dec_dim=128, dec_depth=2, dec_heads=4, mask_ratio=0.75):
        super().__init__()
        self.encoder = Encoder(dim, depth, heads)
        self.mask_ratio = mask_ratio
        self.dec_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.register_buffer("dec_pos", sincos_2d(dec_dim, GRID), persistent=False)
        self.dec_blocks = nn.ModuleList(Block(dec_dim, dec_heads) for _ in range(dec_depth))
        self.dec_norm = nn.LayerNorm(dec_dim, eps=1e-6)
        self.dec_pred = nn.Linear(dec_dim, PATCH * PATCH * 3)
        self.apply(self._init)
        nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        w = self.encoder.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @staticmethod
    def patchify(x):
        b = x.shape[0]
        x = x.reshape(b, 3, GRID, PATCH, GRID, PATCH).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, GRID * GRID, PATCH * PATCH * 3)

    def forward(self, x, gen):
        t = self.encoder.tokens(x)
        b, n, c = t.shape
        keep = int(n * (1 - self.mask_ratio))
        order = torch.rand(b, n, generator=gen).argsort(1)
        restore = order.argsort(1)
        kept = order[:, :keep]
        t = torch.gather(t, 1, kept.unsqueeze(-1).expand(-1, -1, c))
        z = self.dec_embed(self.encoder.run(t))
        masks = self.mask_token.expand(b, n - keep, -1)
        y = torch.cat([z[:, 1:], masks], 1)
        y = torch.gather(y, 1, restore.unsqueeze(-1).expand(-1, -1, y.shape[2]))
        y = torch.cat([z[:, :1], y], 1) + self.dec_pos
        for blk in self.dec_blocks:
            y = blk(y)
        pred = self.dec_pred(self.dec_norm(y))[:, 1:]
        # Normalised pixel targets per patch (MAE's norm_pix_loss), loss on the hidden patches only.
        target = self.patchify(x)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        mask = torch.ones(b, n)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


def render_frames(count, seed, out):
    cli = os.path.join(ROOT, "bin", "s2-policy.js")
    cmd = ["node", cli, "sim", "frames", "--out", out, "--count", str(count), "--size", str(SIZE), "--seed", str(seed), "--force"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"`{' '.join(cmd)}` failed: {(r.stderr.strip().splitlines() or ['?'])[-1]} (run `npm run build` first, or pass --frames)")


def augment(x, gen):
    """Random horizontal flips and random resized crops (scale 0.5-1) back to 224: more views of a small set of scenes."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    s = 0.5 + 0.5 * torch.rand(b, generator=gen)
    tx = (1 - s) * (2 * torch.rand(b, generator=gen) - 1)
    ty = (1 - s) * (2 * torch.rand(b, generator=gen) - 1)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = s
    theta[:, 1, 1] = s
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="ONNX file of the encoder")
    ap.add_argument("--frames", help="float32 N x 3 x 224 x 224 .npy (default: rendered by s2-policy sim frames)")
    ap.add_argument("--count", type=int, default=1024, help="frames to render when --frames is not given")
    ap.add_argument("--frame-seed", type=int, default=700000, help="simulation seed of the rendered frames")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", help="also keep the encoder's state dict here")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        fail(f"--out {a.out}: folder {out_dir} does not exist")

    with tempfile.TemporaryDirectory() as tmp:
        frames_file = a.frames
        if frames_file is None:
            frames_file = os.path.join(tmp, "frames.npy")
            t0 = time.time()
            render_frames(a.count, a.frame_seed, frames_file)
            print(f"rendered {a.count} simulation frames in {time.time() - t0:.0f} s", flush=True)
        elif not os.path.isfile(frames_file):
            fail(f"--frames {frames_file}: no such file")
        frames = np.load(frames_file)
        if frames.dtype != np.float32 or frames.ndim != 4 or frames.shape[1:] != (3, SIZE, SIZE):
            fail(f"--frames {frames_file}: is {frames.dtype} {frames.shape}, expected float32 N x 3 x {SIZE} x {SIZE}")
        data = torch.from_numpy(frames)

        model = MAE(depth=a.depth)
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "token" not in n]
        other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "token" not in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95))
        warm = max(1, a.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, a.steps - warm)))
        )
        gen = torch.Generator().manual_seed(a.seed)
        t0 = time.time()
        losses = []
        model.train()
        for step in range(a.steps):
            idx = torch.randint(0, data.shape[0], (a.batch,), generator=gen)
            loss = model(augment(data[idx], gen), gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if (step + 1) % 50 == 0 or step == 0:
                print(f"step {step + 1}/{a.steps}: loss {np.mean(losses[-50:]):.4f} ({time.time() - t0:.0f} s)", flush=True)
        seconds = time.time() - t0
        final = float(np.mean(losses[-50:]))

        ckpt = a.checkpoint or os.path.join(tmp, "encoder.pt")
        torch.save(model.encoder.state_dict(), ckpt)
        cmd = [sys.executable, os.path.join(HERE, "export_backbone.py"), "--model", f"{os.path.abspath(__file__)}:encoder",
               "--kwargs", json.dumps({"depth": a.depth}), "--checkpoint", ckpt, "--image-size", str(SIZE), "--out", a.out]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"export failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        print(r.stdout.strip())
    print(f"pretrained {a.steps} steps x {a.batch} frames in {seconds / 60:.1f} min, final loss {final:.4f} (first 50 steps {np.mean(losses[:50]):.4f})")


if __name__ == "__main__":
    main()
