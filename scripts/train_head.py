#!/usr/bin/env python3
"""Trains a policy head in PyTorch on a folder written by `s2-policy extract` or `s2-policy sim collect`, and exports
it as the node loads a head: one ONNX model (inputs 'features' raw and 'state' standardised, output 'actions'
[B, T, A] standardised) plus `<model>.stats.json` with LeRobot's mean/std of the state and the action (and of the
features when they are a flat vector).

    pip install torch onnx onnxruntime numpy       # onnxscript too for PyTorch's newer exporter
    python scripts/train_head.py --data demos --out demos/head.onnx [--arch mlp|transformer] [--chunk 2] ...

Encoder: S² maps pooled as `tokens` from a ConvNet (index.json says the grid) go through a 1×1 and a 3×3
convolution (ReLU), a 1×1 convolution to K keypoint maps and a spatial softmax (K expected positions), as the project's detector and bc heads
do; any other features (a pooled vector) are standardised and used as they are. Head: `mlp` (two ReLU layers on
[encoding, state] to the chunk), `transformer` (ACT-like: keypoint, state and T action-query tokens through a
small pre-norm transformer, each query read out as one action) or `goal` (perception then control: an MLP from the
encoding to the joint state the demonstration ended in — recorded data, a hindsight goal — and an MLP from (goal,
state) to the chunk, trained on the recorded goals). Loss: L1 on standardised action chunks (ACT's),
optionally plus `--goal-weight` × L1 of a prediction of the joint state the demonstration ended in (recorded data, a
hindsight goal; no labels). Whole episodes are held out (every 10th) for early stopping, or the last rows of a single
recording. Seeded. The exported model is checked against PyTorch on held-out rows with onnxruntime.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

EPS = 1e-8


class UserError(Exception):
    """A mistake in the input: printed as one line naming the file or flag, exit status 2."""


# ---------------------------------------------------------------- data


def load_npy(path: str, mmap: bool = False) -> np.ndarray:
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except ValueError as e:
        raise UserError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})")


def ids(a: np.ndarray, path: str, rows: int, what: str) -> np.ndarray:
    if a.ndim != 1 or a.shape[0] != rows:
        raise UserError(f"{path}: expected [{rows}] ({what} of each row), got shape {list(a.shape)}")
    if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a != np.round(a)):
        raise UserError(f"{path}: expected whole numbers ≥ 0")
    return a.astype(np.int64)


def read_folder(d: str) -> dict:
    """The folder's arrays and, for a map, its grid (C, H, W); errors name the file."""
    j = lambda n: os.path.join(d, n)  # noqa: E731
    index = {}
    if os.path.exists(j("index.json")):
        try:
            index = json.load(open(j("index.json")))
        except json.JSONDecodeError as e:
            raise UserError(f"{j('index.json')}: not valid JSON ({e})")
    feats = load_npy(j("features.npy"), mmap=True)
    actions = load_npy(j("actions.npy")).astype(np.float32)
    if feats.ndim != 2:
        raise UserError(f"{j('features.npy')}: expected [rows, values], got shape {list(feats.shape)}")
    if actions.ndim != 2:
        raise UserError(f"{j('actions.npy')}: expected [rows, actionDim], got shape {list(actions.shape)}")
    rows = actions.shape[0]
    state = load_npy(j("state.npy")).astype(np.float32) if os.path.exists(j("state.npy")) else np.zeros((rows, 0), np.float32)
    if state.ndim != 2 or state.shape[0] != rows:
        raise UserError(f"{j('state.npy')}: expected [{rows}, stateDim] (actions.npy has {rows} rows), got shape {list(state.shape)}")
    for name, a in (("state.npy", state), ("actions.npy", actions)):
        if not np.all(np.isfinite(a)):
            raise UserError(f"{j(name)}: holds a value that is not finite (row {int(np.argwhere(~np.isfinite(a))[0][0])})")
    episodes = ids(load_npy(j("episodes.npy")), j("episodes.npy"), rows, "the episode") if os.path.exists(j("episodes.npy")) else np.zeros(rows, np.int64)
    if os.path.exists(j("frame_of.npy")):
        frame_of = ids(load_npy(j("frame_of.npy")), j("frame_of.npy"), rows, "the frame")
        if frame_of.max() >= feats.shape[0]:
            raise UserError(f"{j('frame_of.npy')}: names frame {frame_of.max()}, features.npy has {feats.shape[0]}")
    else:
        if feats.shape[0] != rows:
            raise UserError(f"{j('features.npy')}: {feats.shape[0]} rows, actions.npy has {rows}; give frame_of.npy when rows share frames")
        frame_of = np.arange(rows)
    # The map's grid, as src/run/fit-bc.ts reads it (sim collect --head bc, or extract with features.pool: tokens).
    pool = index.get("pool", index.get("features", {}).get("pooling"))
    s2 = index.get("s2", {})
    grid = None
    if pool == "tokens" and s2.get("output_shape", "bchw") == "bchw":
        h = index.get("grid_height", (s2.get("grid") or [None, None])[0])
        w = index.get("grid_width", (s2.get("grid") or [None, None])[1])
        cams = len(index.get("features", {}).get("cameras", []) or [0])
        per = index.get("channels", s2.get("channels"))
        c = per * cams if per is not None else None
        if not h or not w or c is None or c * h * w != feats.shape[1]:
            raise UserError(f"{j('index.json')}: its grid ({c} channels × {h}×{w}) does not match features.npy's {feats.shape[1]} values per row")
        grid = (int(c), int(h), int(w))
    # Episodes must be contiguous runs (chunks stack the next actions of the same episode).
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
    if len(set(episodes[starts].tolist())) != len(starts):
        raise UserError(f"{j('episodes.npy')}: an episode's rows must be contiguous and in time order")
    return dict(features=feats, state=state, actions=actions, episodes=episodes, frame_of=frame_of, grid=grid, index=index)


def stack_chunks(actions: np.ndarray, episodes: np.ndarray, chunk: int) -> np.ndarray:
    """[rows, chunk, A]: each row's next `chunk` actions of its episode, the last one repeated (src/policy/fit.ts stackChunks)."""
    n = actions.shape[0]
    end = np.empty(n, np.int64)
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
    for s, e in zip(starts, list(starts[1:]) + [n]):
        end[s:e] = e
    idx = np.minimum(np.arange(n)[:, None] + np.arange(chunk)[None, :], end[:, None] - 1)
    return actions[idx]


def end_states(state: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Each row's episode's last joint state (the hindsight goal)."""
    n = state.shape[0]
    out = np.empty_like(state)
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
    for s, e in zip(starts, list(starts[1:]) + [n]):
        out[s:e] = state[e - 1]
    return out


def held_out(episodes: np.ndarray, holdout: float) -> np.ndarray:
    """Every k-th episode (k = round(1/holdout)), or with one recording its last `holdout` share of rows (as the TS heads)."""
    n = len(episodes)
    held = np.zeros(n, bool)
    if holdout <= 0:
        return held
    order = episodes[np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])]
    if len(order) < 2:
        held[max(1, int(math.floor(n * (1 - holdout)))):] = True
        return held
    every = max(2, round(1 / holdout))
    out = set(order[every - 1 :: every].tolist())
    return np.isin(episodes, list(out))


def mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std (floored at 1e-6, as src/policy/train.ts columnStats), in float32 as the stats file holds them."""
    x = x.astype(np.float64)
    return x.mean(0).astype(np.float32), np.maximum(1e-6, x.std(0)).astype(np.float32)


# ---------------------------------------------------------------- model


def build_model(torch, nn, grid, feat_dim, state_dim, chunk, action_dim, a, feat_mean, feat_std, goal_dim):
    F = torch.nn.functional

    class SpatialEncoder(nn.Module):
        """Raw [B, C·H·W] → per-channel standardised map → 3×3 conv (ReLU) → 1×1 conv to K maps → softmax → [B, K, 2] in [-1, 1]."""

        def __init__(self):
            super().__init__()
            c, h, w = grid
            self.c, self.h, self.w, self.k = c, h, w, a.keypoints
            self.register_buffer("mean", torch.tensor(feat_mean).view(1, c, 1, 1))
            self.register_buffer("inv_std", torch.tensor(1.0 / (feat_std + EPS)).view(1, c, 1, 1))
            # A 1×1 reduction before the 3×3 convolution: a third of the 3×3's cost on 64 channels, and one more layer.
            self.conv = nn.Sequential(nn.Conv2d(c, a.conv, 1), nn.ReLU(), nn.Conv2d(a.conv, a.conv, 3, padding=1))
            self.score = nn.Conv2d(a.conv, a.keypoints, 1)
            xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
            ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
            pos = torch.stack([xs.repeat(h), ys.repeat_interleave(w)], 1)  # [L, 2], x across, y down
            self.register_buffer("pos", pos)
            # A learned inverse temperature of the softmax, from --temperature: a sharper start makes each keypoint
            # follow one salient place, where a near-uniform softmax gives every frame the same keypoints.
            self.log_beta = nn.Parameter(torch.tensor(math.log(a.temperature)))
            self.out_dim = 2 * a.keypoints

        def probs(self, x):
            m = (x.view(-1, self.c, self.h, self.w) - self.mean) * self.inv_std
            s = self.score(F.relu(self.conv(m))).flatten(2) * self.log_beta.exp()  # [B, K, L]
            return torch.softmax(s, -1)

        def forward(self, x):
            return self.probs(x) @ self.pos  # [B, K, 2]

    class FlatEncoder(nn.Module):
        """Features standardised by the statistics file (observation.features) in the node; here a linear projection."""

        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(feat_dim, a.hidden)
            self.out_dim = a.hidden

        def forward(self, x):
            return F.relu(self.proj(x)).unsqueeze(1)  # [B, 1, hidden]

    def mlp(i, o):
        return nn.Sequential(nn.Linear(i, a.hidden), nn.ReLU(), nn.Linear(a.hidden, a.hidden), nn.ReLU(), nn.Linear(a.hidden, o))

    class MlpHead(nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc
            self.net = mlp(enc.out_dim + state_dim, chunk * action_dim + goal_dim)

        def forward(self, features, state):
            return self.decode(self.enc(features), state)

        def decode(self, e, state):
            y = self.net(torch.cat([e.flatten(1), state], 1))
            return y[:, : chunk * action_dim].reshape(-1, chunk, action_dim), y[:, chunk * action_dim :], e

    class Block(nn.Module):
        """Pre-norm self-attention + MLP, written out with matmuls so that every exporter handles it."""

        def __init__(self, d, heads):
            super().__init__()
            self.d, self.heads = d, heads
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

        def forward(self, x, n):
            # n (tokens) and d are Python constants, so that the exported shapes stay fixed except the batch.
            d, hd = self.d, self.d // self.heads
            q, k, v = self.qkv(self.n1(x)).reshape(-1, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
            att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(hd)), -1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(-1, n, d))
            return x + self.ff(self.n2(x))

    class TransformerHead(nn.Module):
        """ACT-like: encoder tokens + a state token + T action queries (+ a goal query) → blocks → one action per query."""

        def __init__(self, enc):
            super().__init__()
            d = a.d_model
            self.enc = enc
            tok_in = 2 if grid is not None else enc.out_dim
            self.tok = nn.Linear(tok_in, d)
            n_tok = a.keypoints if grid is not None else 1
            self.tok_embed = nn.Parameter(torch.randn(1, n_tok, d) * 0.02)
            self.state = nn.Linear(max(state_dim, 1), d)
            self.n_queries = chunk + (1 if goal_dim else 0)
            self.queries = nn.Parameter(torch.randn(1, self.n_queries, d) * 0.02)
            self.n_tokens = n_tok + (1 if state_dim > 0 else 0) + self.n_queries
            self.blocks = nn.ModuleList([Block(d, a.heads) for _ in range(a.layers)])
            self.norm = nn.LayerNorm(d)
            self.out = nn.Linear(d, action_dim)
            self.goal = nn.Linear(d, goal_dim) if goal_dim else None

        def forward(self, features, state):
            return self.decode(self.enc(features), state)

        def decode(self, e, state):
            b = e.shape[0]
            toks = [self.tok(e) + self.tok_embed]
            if state_dim > 0:
                toks.append(self.state(state).unsqueeze(1))
            toks.append(self.queries.expand(b, -1, -1))
            x = torch.cat(toks, 1)
            for blk in self.blocks:
                x = blk(x, self.n_tokens)
            x = self.norm(x)
            qo = x[:, self.n_tokens - self.n_queries :]
            actions = self.out(qo[:, :chunk])
            goal = self.goal(qo[:, chunk]) if self.goal is not None else qo[:, :0, 0]
            return actions, goal, e

    class GoalHead(nn.Module):
        """Perception, then control: the encoding → the end state the demonstration reaches (its goal, standardised);
        (goal, state) → the chunk. The controller learns from the recorded goals, the perception from the frames."""

        def __init__(self, enc):
            super().__init__()
            self.enc = enc
            self.goal = mlp(enc.out_dim, state_dim)
            self.ctrl = mlp(2 * state_dim, chunk * action_dim)

        def forward(self, features, state):
            return self.decode(self.enc(features), state)

        def decode(self, e, state, goal=None):
            g = self.goal(e.flatten(1))
            y = self.ctrl(torch.cat([g if goal is None else goal, state], 1))
            return y.reshape(-1, chunk, action_dim), g, e

    class GoalMapHead(nn.Module):
        """Perception as a choice of place: one softmax over the map's cells, a learned smooth map from a cell's position
        to the goal it stands for (G, an MLP: camera and inverse kinematics in one), the goal its expectation; trained
        by the expected L1 Σ_l p_l·|G(l) − goal|, which moves probability towards the cells whose G is the recorded
        goal rather than the mean position between candidates. Then (goal, state) → chunk as `goal`."""

        def __init__(self, enc):
            super().__init__()
            self.enc = enc
            self.place = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, state_dim))
            self.ctrl = mlp(2 * state_dim, chunk * action_dim)

        def places(self):
            return self.place(self.enc.pos)  # [L, S]

        def forward(self, features, state):
            p = self.enc.probs(features)[:, 0]  # [B, L]
            g = p @ self.places()
            y = self.ctrl(torch.cat([g, state], 1))
            return y.reshape(-1, chunk, action_dim), g, (p @ self.enc.pos).unsqueeze(1)

        def decode_goal(self, g, state):
            return self.ctrl(torch.cat([g, state], 1)).reshape(-1, chunk, action_dim)

    if a.arch == "goalmap":
        if grid is None:
            raise UserError("--arch goalmap needs S² maps (features pooled as tokens from a ConvNet)")
        a.keypoints = 1
        return GoalMapHead(SpatialEncoder())
    enc = SpatialEncoder() if grid is not None else FlatEncoder()
    return {"mlp": MlpHead, "transformer": TransformerHead, "goal": GoalHead}[a.arch](enc)


class Exported:
    """The model as exported: 'features' raw, 'state' standardised → 'actions' standardised [B, T, A] (+ 'keypoints')."""

    @staticmethod
    def wrap(torch, nn, model, spatial):
        class W(nn.Module):
            def __init__(self):
                super().__init__()
                self.m = model

            def forward(self, features, state):
                actions, _, e = self.m(features, state)
                return (actions, e) if spatial else actions

        return W()


# ---------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder from 's2-policy extract' or 's2-policy sim collect'")
    p.add_argument("--out", required=True, help="the model (.onnx); its statistics go beside it as <model>.stats.json")
    p.add_argument("--arch", default="mlp", choices=["mlp", "transformer", "goal", "goalmap"])
    p.add_argument("--chunk", type=int, default=2, help="actions per prediction (default 2)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--batch", type=int, default=16, help="frames per step (all their rows)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--holdout", type=float, default=0.1, help="share of episodes held out for early stopping (every 10th)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keypoints", type=int, default=8, help="keypoint maps K (token maps)")
    p.add_argument("--conv", type=int, default=16, help="channels of the 3×3 convolution (token maps)")
    p.add_argument("--hidden", type=int, default=256, help="MLP width")
    p.add_argument("--temperature", type=float, default=1.0, help="initial inverse temperature of the spatial softmax (learned)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--goal-weight", type=float, default=0.0, help="weight of the hindsight end-state prediction (0: none; goal: 1)")
    p.add_argument("--goal-noise", type=float, default=0.05, help="goal: noise on the recorded goals the controller learns from (standardised units)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    a = p.parse_args(argv)
    for name in ("chunk", "epochs", "batch", "keypoints", "conv", "hidden", "d_model", "heads", "layers", "threads"):
        if getattr(a, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(a, name)}")
    if a.d_model % a.heads:
        raise UserError(f"--d-model {a.d_model} must be a multiple of --heads {a.heads}")
    if not a.temperature > 0:
        raise UserError(f"--temperature must be > 0, got {a.temperature}")
    if not (0 <= a.holdout < 1):
        raise UserError(f"--holdout must be in [0, 1), got {a.holdout}")
    if not a.out.endswith(".onnx"):
        raise UserError(f"--out {a.out}: expected a .onnx file name")
    if os.path.exists(a.out) and not a.force:
        raise UserError(f"--out {a.out} exists; pass --force to replace it")
    if not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        raise UserError(f"--out {a.out}: folder {os.path.dirname(os.path.abspath(a.out))} does not exist")
    return a


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv) -> int:
    a = parse_args(argv)
    import torch
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    d = read_folder(a.data)
    grid = d["grid"]
    feats, state, actions, episodes, frame_of = d["features"], d["state"], d["actions"], d["episodes"], d["frame_of"]
    rows, S = state.shape
    A = actions.shape[1]
    T = a.chunk
    lens = np.diff(np.r_[np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]]), rows])
    if T > lens.min():
        raise UserError(f"--chunk {T} is longer than the shortest episode ({lens.min()} rows)")
    held = held_out(episodes, a.holdout)
    train_rows = np.flatnonzero(~held)
    if len(train_rows) == 0:
        raise UserError("--holdout leaves no training rows")
    if a.arch in ("goal", "goalmap") and a.goal_weight == 0:
        a.goal_weight = 1.0
    goal_dim = S if a.goal_weight > 0 else 0
    if a.goal_weight > 0 and S == 0:
        raise UserError(f"--{'arch goal' if a.arch == 'goal' else 'goal-weight'} needs state.npy (the goal is the episode's last joint state)")

    # Statistics from the training rows (and the frames they see) only, as the exported model and file hold them.
    train_frames = np.unique(frame_of[train_rows])
    x_all = torch.from_numpy(np.array(feats, dtype=np.float32))  # a writable copy in memory
    if grid is not None:
        c, h, w = grid
        xs = x_all[torch.from_numpy(train_frames)].view(-1, c, h * w)
        f_mean = xs.mean((0, 2)).numpy().astype(np.float32)
        f_std = np.maximum(1e-6, xs.transpose(0, 1).reshape(c, -1).std(1, unbiased=False).numpy()).astype(np.float32)
        del xs
    else:
        f_mean, f_std = mean_std(feats[train_frames])
    s_mean, s_std = mean_std(state[train_rows]) if S > 0 else (np.zeros(0, np.float32), np.zeros(0, np.float32))
    chunks = stack_chunks(actions, episodes, T)  # [rows, T, A]
    a_mean, a_std = mean_std(chunks[train_rows].reshape(-1, A))
    q = torch.from_numpy((state - s_mean) / (s_std + EPS))
    y = torch.from_numpy((chunks - a_mean) / (a_std + EPS))
    g = torch.from_numpy((end_states(state, episodes) - s_mean) / (s_std + EPS)) if goal_dim else None
    if grid is None:
        # The flat features are standardised by the node (observation.features), so the model sees them standardised.
        x_all = (x_all - torch.from_numpy(f_mean)) / torch.from_numpy(f_std + EPS)

    model = build_model(torch, nn, grid, feats.shape[1], S, T, A, a, f_mean, f_std, goal_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)

    # Rows grouped by the frame they see: a frame is encoded once per step for all its rows.
    def groups(sel):
        order = np.argsort(frame_of[sel], kind="stable")
        r = sel[order]
        f = frame_of[r]
        cut = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
        return [(int(f[i]), r[i:j]) for i, j in zip(cut, list(cut[1:]) + [len(r)])]

    train_groups = groups(train_rows)
    held_groups = groups(np.flatnonzero(held))
    steps_per_epoch = math.ceil(len(train_groups) / a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch, pct_start=0.1)

    def run(batch_groups, train):
        frames = torch.tensor([f for f, _ in batch_groups])
        rws = np.concatenate([r for _, r in batch_groups])
        which = torch.from_numpy(np.concatenate([np.full(len(r), i) for i, (_, r) in enumerate(batch_groups)]))
        rt = torch.from_numpy(rws)
        if a.arch == "goalmap":
            # One perception per frame (its goal is its episode's), the controller on every row.
            p = model.enc.probs(x_all[frames])[:, 0]  # [F, L]
            G = model.places()  # [L, S]
            ghat = (p @ G)[which]
            out = model.decode_goal(ghat, q[rt])
            loss = (out - y[rt]).abs().mean()
            if not train:
                return loss, loss, out, ghat
            gf = g[rt][np.r_[0, np.cumsum([len(r) for _, r in batch_groups])[:-1]]]  # each frame's goal
            expected = (p * (G[None] - gf[:, None]).abs().sum(-1)).sum(-1).mean() / S
            noisy = g[rt] + a.goal_noise * torch.randn_like(g[rt])
            total = (model.decode_goal(noisy, q[rt]) - y[rt]).abs().mean() + a.goal_weight * expected
            return loss, total, out, ghat
        # Each frame encoded once; its rows share the encoding.
        e = model.enc(x_all[frames])[which]
        out, goal, _ = model.decode(e, q[rt])
        loss = (out - y[rt]).abs().mean()
        if a.arch == "goal" and train:
            # The controller from the recorded goals (with noise, as the perceived goal will have), the perception
            # from the frames; the action loss of the whole does not reach the perception.
            noisy = g[rt] + a.goal_noise * torch.randn_like(g[rt])
            ctrl_out, _, _ = model.decode(e.detach(), q[rt], goal=noisy)
            total = (ctrl_out - y[rt]).abs().mean() + a.goal_weight * (goal - g[rt]).abs().mean()
            return loss, total, out, goal
        else:
            total = loss + (a.goal_weight * (goal - g[rt]).abs().mean() if goal_dim else 0)
        return loss, total, out, goal

    def evaluate(gs):
        """Held-out action L1 and, with a goal, the goal's L1 (standardised units)."""
        model.eval()
        se = ge = n = 0
        with torch.no_grad():
            for i in range(0, len(gs), 64):
                part = gs[i : i + 64]
                loss, _, _, goal = run(part, False)
                k = sum(len(r) for _, r in part)
                se += loss.item() * k
                if goal_dim:
                    rt = torch.from_numpy(np.concatenate([r for _, r in part]))
                    ge += (goal - g[rt]).abs().mean().item() * k
                n += k
        model.train()
        return se / max(1, n), ge / max(1, n)

    mean_l1 = float(y[torch.from_numpy(np.flatnonzero(held))].abs().mean()) if held.any() else float("nan")
    best = (math.inf, 0, None, math.inf)
    for epoch in range(1, a.epochs + 1):
        perm = rng.permutation(len(train_groups))
        tl = tn = 0
        for s in range(steps_per_epoch):
            bg = [train_groups[i] for i in perm[s * a.batch : (s + 1) * a.batch]]
            # The encoder sees each frame once, the rows share it: rows of one frame are one sample's worth of time.
            loss, total, _, _ = run(bg, True)
            opt.zero_grad()
            total.backward()
            opt.step()
            sched.step()
            tl += loss.item()
            tn += 1
        train_l1 = tl / tn
        held_l1, held_goal = evaluate(held_groups) if held.any() else (train_l1, float("nan"))
        # goal: the epoch whose perception is best on held-out episodes (the controller learns from recorded goals,
        # and a perception still wrong everywhere scores a lower action L1 than a half-right one).
        score = held_goal if a.arch in ("goal", "goalmap") and held.any() else held_l1
        better = score < best[0]
        if better:
            best = (score, epoch, {k: v.clone() for k, v in model.state_dict().items()}, held_l1)
        goal_text = f", goal {held_goal:.4f}" if goal_dim else ""
        print(
            f"epoch {epoch}/{a.epochs}: training L1 {train_l1:.4f}, held-out {held_l1:.4f}{goal_text}{' (best)' if better else ''} ({time.time() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        if epoch - best[1] >= a.patience:
            break
    model.load_state_dict(best[2])
    model.eval()
    print(
        f"kept epoch {best[1]} of {epoch}: held-out L1 {best[3]:.4f}{f', goal {best[0]:.4f}' if a.arch in ('goal', 'goalmap') and held.any() else ''} on {int(held.sum())} rows of {len(held_groups)} frames "
        f"(the mean chunk: {mean_l1:.4f}; standardised units), {time.time() - t0:.0f} s"
    )

    # Export: 'features' raw (a map's standardisation is inside the model; flat features are standardised by the
    # statistics file), 'state' standardised by the statistics file, 'actions' standardised.
    spatial = grid is not None
    wrapped = Exported.wrap(torch, nn, model, spatial).eval()
    ex_f = x_all[:2].clone()
    ex_s = q[:2].clone() if S > 0 else torch.zeros(2, 0)
    names_in = ["features", "state"] if S > 0 else ["features"]
    names_out = ["actions", "keypoints"] if spatial else ["actions"]
    dyn = {n: {0: "batch"} for n in names_in + names_out}
    tmp = f"{a.out}.tmp-{os.getpid()}"
    args = (ex_f, ex_s) if S > 0 else (ex_f,)
    if S == 0:
        inner = wrapped
        wrapped = type("NoState", (nn.Module,), {"__init__": lambda self: (nn.Module.__init__(self), setattr(self, "w", inner))[0], "forward": lambda self, f: self.w(f, torch.zeros(f.shape[0], 0))})()
    warnings.filterwarnings("ignore", message="You are using the legacy TorchScript")  # this exporter needs no onnxscript
    torch.onnx.export(wrapped, args, tmp, input_names=names_in, output_names=names_out, dynamic_axes=dyn, opset_version=17, dynamo=False)
    stats = {"action": {"mean": a_mean.tolist(), "std": a_std.tolist()}}
    if S > 0:
        stats["observation.state"] = {"mean": s_mean.tolist(), "std": s_std.tolist()}
    if not spatial:
        stats["observation.features"] = {"mean": f_mean.tolist(), "std": f_std.tolist()}

    # The ONNX model against PyTorch on held-out rows (or the last 64 training rows when nothing is held out).
    import onnxruntime as ort

    check_rows = np.flatnonzero(held)[:256] if held.any() else train_rows[-64:]
    sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    feeds = {"features": x_all[torch.from_numpy(frame_of[check_rows])].numpy()}
    if not spatial:
        # The node feeds standardised flat features; x_all already holds them standardised.
        pass
    if S > 0:
        feeds["state"] = q[torch.from_numpy(check_rows)].numpy()
    got = sess.run(["actions"], feeds)[0]
    with torch.no_grad():
        want = model(torch.from_numpy(feeds["features"]), torch.from_numpy(feeds["state"]) if S > 0 else torch.zeros(len(check_rows), 0))[0].numpy()
    # In the units the node publishes (unnormalised actions).
    got_u, want_u = got * (a_std + EPS) + a_mean, want * (a_std + EPS) + a_mean
    rel = float(np.abs(got_u - want_u).max() / max(np.abs(want_u).max(), 1e-12))
    print(f"ONNX vs PyTorch on {len(check_rows)} held-out rows: max relative error {rel:.2e} (max |Δ| / max |action|)")
    if not rel <= 1e-4:
        os.remove(tmp)
        raise UserError(f"--out {a.out}: the exported model differs from PyTorch by {rel:.2e} (> 1e-4); not written")
    stats_path = a.out[: -len(".onnx")] + ".stats.json"
    write_atomic(stats_path, (json.dumps(stats) + "\n").encode())
    os.replace(tmp, a.out)
    shape = f"{'map ' + '×'.join(map(str, grid)) if spatial else str(feats.shape[1]) + ' features'} + {S} state → {T}×{A} actions"
    print(f"wrote {a.out} and {stats_path}: {a.arch}, {shape}{' (outputs actions, keypoints)' if spatial else ''}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"train_head.py: {e}", file=sys.stderr)
        sys.exit(2)
