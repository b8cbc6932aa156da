#!/usr/bin/python3
"""Golden test values for s2_policy, computed independently with PyTorch.

Writes into test/golden/data/ (next to this script):
  * interp_*.npy  - F.interpolate goldens: mode='bicubic' (align_corners=False, no antialias)
                    and mode='area' (== adaptive_avg_pool2d), up/down/non-square/identity.
  * model_*.npy   - outputs of float32 torch mirrors of the project's test backbones
                    (src/models/zoo.ts: buildVit / buildConvNet), loaded from the .npy weight dumps.
  * s2_*.npy      - S² (Scaling on Scales) forward goldens: the master (square) path and the
                    dev_any_shape path (split_mode 'resize' / 'pad'), with the mirrors as backbones.
  * index.json    - the list of cases (schema: see README.md).

The S² code is our own re-implementation of the semantics of bfshi/scaling_on_scales
(s2wrapper/core.py on master and on dev_any_shape) in scripts/s2ref.py, shared with
scripts/export_backbone.py --verify; it does not need einops.
Before writing anything, the script runs sanity checks (see `sanity_checks`) and aborts on failure.

Run it (from the repo root; needs torch + numpy, CI does not: the outputs are committed):
    node dist/scripts/write-test-models.js /tmp/models && /usr/bin/python3 test/golden/make_golden.py /tmp/models
(`npx tsc -p .` first if dist/ is missing.)
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts'))
from s2ref import area, bicubic, merge_chessboard, s2_any_shape, s2_forward, s2_master, split_chessboard  # noqa: E402
DATA = os.path.join(HERE, 'data')

# Architecture of the presets in src/models/zoo.ts (the weights themselves come from the .npy dumps).
VIT_PRESETS = {
    'vit-tiny': dict(img=32, patch=8, dim=24, depth=2, heads=2, prefix=1),
    'vit-tiny-noprefix': dict(img=32, patch=8, dim=24, depth=2, heads=2, prefix=0),
    'vit-tiny-reg': dict(img=32, patch=8, dim=24, depth=1, heads=2, prefix=5),
}
CONV_PRESETS = {
    'convnet-tiny': dict(stages=2, dim=12),
}


def rand(seed, shape, kind='normal'):
    """Deterministic float32 test data (numpy's legacy RandomState is stable across versions)."""
    rs = np.random.RandomState(seed)
    if kind == 'normal':
        a = rs.standard_normal(shape)
    elif kind == 'uniform':
        a = rs.uniform(0.0, 1.0, shape)
    else:
        raise ValueError(kind)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# --------------------------------------------------------------------------------------------
# Backbone mirrors
# --------------------------------------------------------------------------------------------

def load_weights(models_dir, preset):
    folder = os.path.join(models_dir, preset)
    if not os.path.isdir(folder):
        sys.exit(f'{folder} not found: run `node dist/scripts/write-test-models.js {models_dir}` first')
    w = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith('.npy'):
            a = np.load(os.path.join(folder, f))
            assert a.dtype == np.float32, (preset, f, a.dtype)
            w[f[:-4]] = torch.from_numpy(a)
    return w


class VitMirror:
    """buildVit: patch conv, prefix tokens, pos, pre-norm blocks (exact GELU), final LayerNorm (eps 1e-6)."""

    def __init__(self, w, img, patch, dim, depth, heads, prefix):
        self.w, self.img, self.p, self.d, self.depth, self.heads, self.prefix = w, img, patch, dim, depth, heads, prefix
        grid = img // patch
        assert w['patch.weight'].shape == (dim, 3, patch, patch)
        assert w['pos'].shape == (1, prefix + grid * grid, dim)
        assert ('prefix' in w) == (prefix > 0)
        if prefix:
            assert w['prefix'].shape == (1, prefix, dim)
        assert f'blocks.{depth - 1}.ln1.weight' in w and f'blocks.{depth}.ln1.weight' not in w
        self.num_tokens = prefix + grid * grid

    def __call__(self, x):
        w, d, p = self.w, self.d, self.p
        b = x.shape[0]
        # The ONNX graph has a fixed 32×32 input: anything else is a bug in the caller.
        assert tuple(x.shape[1:]) == (3, self.img, self.img), x.shape
        y = F.conv2d(x, w['patch.weight'], w['patch.bias'], stride=p)
        y = y.reshape(b, d, -1).transpose(1, 2)
        if self.prefix:
            y = torch.cat([w['prefix'].expand(b, -1, -1), y], dim=1)
        y = y + w['pos']
        n = y.shape[1]
        dh = d // self.heads
        for i in range(self.depth):
            pre = f'blocks.{i}'
            h = F.layer_norm(y, (d,), w[f'{pre}.ln1.weight'], w[f'{pre}.ln1.bias'], eps=1e-6)
            qkv = h @ w[f'{pre}.attn.qkv.weight'] + w[f'{pre}.attn.qkv.bias']
            qkv = qkv.reshape(b, n, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            att = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(dh)), dim=-1)
            o = (att @ v).transpose(1, 2).reshape(b, n, d)
            y = y + (o @ w[f'{pre}.attn.proj.weight'] + w[f'{pre}.attn.proj.bias'])
            h = F.layer_norm(y, (d,), w[f'{pre}.ln2.weight'], w[f'{pre}.ln2.bias'], eps=1e-6)
            h = F.gelu(h @ w[f'{pre}.mlp.fc1.weight'] + w[f'{pre}.mlp.fc1.bias'])  # exact (erf) GELU
            y = y + (h @ w[f'{pre}.mlp.fc2.weight'] + w[f'{pre}.mlp.fc2.bias'])
        return F.layer_norm(y, (d,), w['norm.weight'], w['norm.bias'], eps=1e-6)


class ConvMirror:
    """buildConvNet: [Conv 3×3 stride 2 pad 1 + ReLU] per stage, then a 1×1 Conv projection."""

    def __init__(self, w, stages, dim):
        self.w, self.stages, self.dim = w, stages, dim
        assert f'stages.{stages - 1}.weight' in w and f'stages.{stages}.weight' not in w
        assert w['proj.weight'].shape[0] == dim

    def __call__(self, x):
        w = self.w
        assert x.shape[1] == 3, x.shape
        for i in range(self.stages):
            x = F.relu(F.conv2d(x, w[f'stages.{i}.weight'], w[f'stages.{i}.bias'], stride=2, padding=1))
        return F.conv2d(x, w['proj.weight'], w['proj.bias'])


def load_models(models_dir):
    models = {}
    for name, cfg in VIT_PRESETS.items():
        models[name] = VitMirror(load_weights(models_dir, name), **cfg)
    for name, cfg in CONV_PRESETS.items():
        models[name] = ConvMirror(load_weights(models_dir, name), **cfg)
    return models


# --------------------------------------------------------------------------------------------
# Independent float64 NumPy references for the two interpolations (used only as sanity checks)
# --------------------------------------------------------------------------------------------

def np_bicubic(x, out_h, out_w, a=-0.75):
    """PyTorch's bicubic, align_corners=False: src = (dst + 0.5)·in/out − 0.5 (NOT clamped at 0 for cubic),
    4 taps at floor(src)−1 … floor(src)+2 with indices clamped to the border, Keys kernel with A = −0.75."""
    def weights(n_in, n_out):
        mat = np.zeros((n_out, n_in))
        scale = n_in / n_out
        for o in range(n_out):
            src = (o + 0.5) * scale - 0.5
            i0 = math.floor(src)
            t = src - i0
            ws = [((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                  ((a + 2) * t - (a + 3)) * t * t + 1,
                  ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
                  ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a]
            for k, wk in enumerate(ws):
                mat[o, min(max(i0 - 1 + k, 0), n_in - 1)] += wk
        return mat
    wh, ww = weights(x.shape[-2], out_h), weights(x.shape[-1], out_w)
    return np.einsum('oh,nchw,pw->ncop', wh, x.astype(np.float64), ww)


def np_area(x, out_h, out_w):
    """adaptive_avg_pool2d: output i averages input [floor(i·in/out), ceil((i+1)·in/out))."""
    def weights(n_in, n_out):
        mat = np.zeros((n_out, n_in))
        for o in range(n_out):
            s, e = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
            mat[o, s:e] = 1.0 / (e - s)
        return mat
    wh, ww = weights(x.shape[-2], out_h), weights(x.shape[-1], out_w)
    return np.einsum('oh,nchw,pw->ncop', wh, x.astype(np.float64), ww)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

def edges_image():
    """2×11×13 image with hard steps, a bright 1-pixel line and a checkerboard patch (bicubic overshoot)."""
    x = np.zeros((1, 2, 11, 13), np.float32)
    x[0, 0, :, 6:] = 1.0
    x[0, 0, 4, :] = 3.0
    x[0, 1, 2:5, 2:5] = -2.0
    x[0, 1, 6:10, 7:12] = (np.indices((4, 5)).sum(0) % 2) * 4.0 - 2.0
    return torch.from_numpy(x)


INTERP_CASES = [
    # name, mode, input (seed, shape) or 'edges', output size
    ('bicubic_up2', 'bicubic', (101, (1, 3, 6, 7)), (12, 14)),
    ('bicubic_up_3p5', 'bicubic', (102, (2, 2, 6, 5)), (21, 17)),
    ('bicubic_down_20_to_7', 'bicubic', (103, (1, 3, 20, 20)), (7, 7)),
    ('bicubic_down_17_to_5', 'bicubic', (104, (1, 2, 17, 17)), (5, 5)),
    ('bicubic_nonsquare_9x13_to_20x6', 'bicubic', (105, (1, 3, 9, 13)), (20, 6)),
    ('bicubic_identity', 'bicubic', (106, (2, 3, 8, 11)), (8, 11)),
    ('bicubic_edges_up', 'bicubic', 'edges', (25, 30)),
    ('bicubic_edges_down', 'bicubic', 'edges', (6, 5)),
    ('bicubic_to_1x2', 'bicubic', (107, (1, 2, 6, 5)), (1, 2)),
    ('bicubic_from_2x3', 'bicubic', (108, (1, 2, 2, 3)), (7, 5)),
    ('area_down_10_to_3', 'area', (201, (1, 3, 10, 10)), (3, 3)),
    ('area_down_7_to_4', 'area', (202, (2, 2, 7, 7)), (4, 4)),
    ('area_up_3_to_7', 'area', (203, (1, 3, 3, 3)), (7, 7)),
    ('area_nonsquare_13x9_to_5x12', 'area', (204, (1, 3, 13, 9)), (5, 12)),
    ('area_down_divisible_12_to_4', 'area', (205, (1, 2, 12, 12)), (4, 4)),
    ('area_identity', 'area', (206, (1, 2, 5, 6)), (5, 6)),
    ('area_edges_down', 'area', 'edges', (4, 6)),
]

MODEL_CASES = [
    # preset, seed, input shape
    ('vit-tiny', 301, (3, 3, 32, 32)),
    ('vit-tiny-noprefix', 302, (3, 3, 32, 32)),
    ('vit-tiny-reg', 303, (3, 3, 32, 32)),
    ('convnet-tiny', 304, (3, 3, 24, 40)),
    ('convnet-tiny', 305, (2, 3, 21, 35)),  # odd sizes: output ceil(H/4)×ceil(W/4)
]


def opts(img_sizes=None, scales=None, max_split_size=None, num_prefix_token=0, output_shape='bnc',
         resize_output_to_idx=0, split_mode=None):
    o = {}
    if img_sizes is not None:
        o['imgSizes'] = img_sizes
    if scales is not None:
        o['scales'] = scales
    o.update(maxSplitSize=max_split_size, numPrefixToken=num_prefix_token, outputShape=output_shape,
             resizeOutputToIdx=resize_output_to_idx, splitMode=split_mode)
    return o


S2_CASES = [
    # name, preset, seed, input shape, options, note
    ('vit_master_up_32_64_96', 'vit-tiny', 401, (1, 3, 32, 32),
     opts(img_sizes=[32, 64, 96], num_prefix_token=1),
     'master path, upscaling; 1, 4 and 9 crops of 32'),
    ('vit_master_down_64_idx1', 'vit-tiny', 402, (1, 3, 64, 64),
     opts(img_sizes=[32, 64], max_split_size=32, num_prefix_token=1, resize_output_to_idx=1),
     'master path, input 64 resized down to 32 and kept at 64; output grid of scale 1 (8×8)'),
    ('vit_noprefix_scales_1_2', 'vit-tiny-noprefix', 403, (1, 3, 32, 32),
     opts(scales=[1, 2], num_prefix_token=0),
     'master path, no prefix tokens, sizes from scales'),
    ('vit_reg_prefix5_32_64', 'vit-tiny-reg', 404, (1, 3, 32, 32),
     opts(img_sizes=[32, 64], num_prefix_token=5),
     'master path, 5 prefix tokens (CLS + 4 registers) averaged over crops'),
    ('vit_master_b2_scales_1_2_3', 'vit-tiny', 405, (2, 3, 32, 32),
     opts(scales=[1, 2, 3], num_prefix_token=1),
     'master path, batch 2: crop order (i·n + j)·B + b'),
    ('convnet_master_48_96_idx1', 'convnet-tiny', 406, (1, 3, 48, 48),
     opts(img_sizes=[48, 96], max_split_size=32, output_shape='bchw', resize_output_to_idx=1),
     'master path, bchw: 48 -> 2×2 crops of 24 (not 32), 96 -> 3×3 crops of 32; output 24×24'),
    ('convnet_master_b2_scales_half_1_1p5', 'convnet-tiny', 407, (2, 3, 32, 32),
     opts(scales=[0.5, 1, 1.5], output_shape='bchw'),
     'master path, bchw, batch 2: 16 (1 crop), 32 (1 crop), 48 (2×2 crops of 24); area down to 4×4'),
    ('vit_anyshape_resize_48x64', 'vit-tiny', 408, (1, 3, 48, 64),
     opts(scales=[1, 2], max_split_size=32, num_prefix_token=1, split_mode='resize'),
     'any-shape resize: 48×64 -> 64×64 (2×2 crops), 96×128 (3×4 crops); output 8×8'),
    ('vit_anyshape_pad_48x64', 'vit-tiny', 408, (1, 3, 48, 64),
     opts(scales=[1, 2], max_split_size=32, num_prefix_token=1, split_mode='pad'),
     'any-shape pad: 48×64 zero-padded to 64×64, features cropped to 6×8; 96×128 not padded'),
    ('vit_anyshape_pad_40_80', 'vit-tiny', 409, (1, 3, 40, 40),
     opts(img_sizes=[40, 80], max_split_size=32, num_prefix_token=1, split_mode='pad'),
     'any-shape pad, square int sizes not multiples of 32: features cropped to 5×5 and 10×10'),
    ('vit_anyshape_resize_40_80', 'vit-tiny', 409, (1, 3, 40, 40),
     opts(img_sizes=[40, 80], max_split_size=32, num_prefix_token=1, split_mode='resize'),
     'any-shape resize, square int sizes not multiples of 32: 40 -> 64, 80 -> 96'),
    ('vit_reg_anyshape_pad_b2_idx1', 'vit-tiny-reg', 410, (2, 3, 40, 56),
     opts(scales=[1, 2], max_split_size=32, num_prefix_token=5, split_mode='pad', resize_output_to_idx=1),
     'any-shape pad, batch 2, 5 prefix tokens; output grid of scale 1 (10×14)'),
    ('convnet_anyshape_pad_pairs', 'convnet-tiny', 411, (1, 3, 45, 63),
     opts(img_sizes=[[40, 56], [80, 112]], max_split_size=32, output_shape='bchw', split_mode='pad'),
     'any-shape pad, bchw, explicit [h, w] sizes: 40×56 -> pad 64×64, crop 10×14; 80×112 -> 96×128, crop 20×28'),
    ('convnet_anyshape_resize_b2_pairs_idx1', 'convnet-tiny', 412, (2, 3, 30, 50),
     opts(img_sizes=[[30, 50], [60, 100]], max_split_size=24, output_shape='bchw', split_mode='resize',
          resize_output_to_idx=1),
     'any-shape resize, bchw, batch 2, m = 24: 30×50 -> 48×72, 60×100 -> 72×120; output 18×30'),
    ('convnet_anyshape_pad_float_ceil', 'convnet-tiny', 413, (1, 3, 58, 58),
     opts(img_sizes=[116, 58], max_split_size=28, output_shape='bchw', split_mode='pad'),
     'FLOAT TRAP: 116 -> pad 140 (5×5 crops of 28 -> 35×35 features); the reference crops to '
     'ceil(116/140*35) = ceil(29.000000000000004) = 30 in float64, exact integer ceil would give 29. '
     'This golden follows the reference (30×30 output).'),
]


def sanity_checks(models):
    torch.manual_seed(0)
    g = rand(1, (2, 3, 9, 9))
    # identity bicubic is exact
    assert torch.equal(bicubic(g, (9, 9)), g)
    y = rand(2, (1, 2, 7, 13))
    assert torch.equal(bicubic(y, (7, 13)), y)
    # area == adaptive_avg_pool2d
    for size in [(3, 3), (4, 7), (13, 20)]:
        assert torch.equal(area(y, size), F.adaptive_avg_pool2d(y, size))
    # torch's interpolations match the float64 NumPy references of the documented formulas
    for case in INTERP_CASES:
        _, mode, src, size = case
        x = edges_image() if src == 'edges' else rand(src[0], src[1])
        ref = (np_bicubic if mode == 'bicubic' else np_area)(x.numpy(), *size)
        got = (bicubic if mode == 'bicubic' else area)(x, size).numpy()
        err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
        assert err < 1e-5, (case[0], err)
    # split / merge: order (i·nw + j)·B + b, and merge inverts split
    x = rand(3, (2, 3, 6, 8))
    s = split_chessboard(x, 2, 4)
    for i in range(2):
        for j in range(4):
            for b in range(2):
                assert torch.equal(s[(i * 4 + j) * 2 + b], x[b, :, i * 3:(i + 1) * 3, j * 2:(j + 1) * 2])
    assert torch.equal(merge_chessboard(s, 2, 4), x)
    # any-shape path == master path for square input and sizes that are multiples of m
    checks = [
        ('vit-tiny', (1, 3, 32, 32), dict(img_sizes=[32, 64, 96], num_prefix_token=1)),
        ('vit-tiny', (2, 3, 64, 64), dict(img_sizes=[32, 64], max_split_size=32, num_prefix_token=1,
                                          resize_output_to_idx=1)),
        ('vit-tiny-reg', (1, 3, 32, 32), dict(scales=[1, 2], num_prefix_token=5)),
        ('convnet-tiny', (2, 3, 40, 40), dict(img_sizes=[40, 80, 120], output_shape='bchw')),
    ]
    for preset, shape, kw in checks:
        x = rand(4, shape)
        ref = s2_master(models[preset], x, **kw)
        for mode in ('resize', 'pad'):
            got = s2_any_shape(models[preset], x, split_mode=mode, **kw)
            assert got.shape == ref.shape and torch.equal(got, ref), (preset, kw, mode)
    # with a single scale of the crop size and no split, S² is just the model (plus nothing)
    x = rand(5, (2, 3, 32, 32))
    assert torch.equal(s2_master(models['vit-tiny'], x, scales=[1], num_prefix_token=1), models['vit-tiny'](x))
    print('sanity checks passed')


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: /usr/bin/python3 test/golden/make_golden.py MODELS_DIR  (from write-test-models.js)')
    torch.manual_seed(0)
    torch.set_num_threads(1)  # fixed reduction order, so reruns give byte-identical files
    models = load_models(sys.argv[1])
    sanity_checks(models)

    os.makedirs(DATA, exist_ok=True)
    for f in os.listdir(DATA):
        if f.endswith('.npy'):
            os.remove(os.path.join(DATA, f))

    def save(name, t):
        a = np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)
        np.save(os.path.join(DATA, name), a)
        return name

    index = {'generator': 'make_golden.py', 'torch': torch.__version__, 'interp': [], 'models': [], 's2': []}

    with torch.no_grad():
        for name, mode, src, size in INTERP_CASES:
            x = edges_image() if src == 'edges' else rand(src[0], src[1])
            y = (bicubic if mode == 'bicubic' else area)(x, size)
            index['interp'].append({'name': name, 'mode': mode, 'input': save(f'interp_{name}.input.npy', x),
                                    'output': save(f'interp_{name}.output.npy', y), 'size': list(size)})

        for k, (preset, seed, shape) in enumerate(MODEL_CASES):
            x = rand(seed, shape)
            y = models[preset](x)
            stem = f'model_{preset}_{"x".join(map(str, shape))}'
            index['models'].append({'preset': preset, 'input': save(f'{stem}.input.npy', x),
                                    'output': save(f'{stem}.output.npy', y)})

        for name, preset, seed, shape, o, note in S2_CASES:
            x = rand(seed, shape)
            y = s2_forward(models[preset], x, o)
            index['s2'].append({'name': name, 'preset': preset, 'input': save(f's2_{name}.input.npy', x),
                                'output': save(f's2_{name}.output.npy', y), 'options': o, 'note': note})
            print(f'{name:40s} {tuple(x.shape)} -> {tuple(y.shape)}')

    with open(os.path.join(DATA, 'index.json'), 'w') as f:
        json.dump(index, f, indent=2)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(DATA, f)) for f in os.listdir(DATA))
    print(f'wrote {len(os.listdir(DATA))} files, {total / 1024:.0f} KiB, to {DATA}')


if __name__ == '__main__':
    main()
