#!/usr/bin/env python3
"""S² (Scaling on Scales) in PyTorch: the project's own re-implementation of the semantics of bfshi/scaling_on_scales
(s2wrapper/core.py on master, and on dev_any_shape for split_mode 'resize' / 'pad'), without einops.

It is the reference that test/golden/make_golden.py computes the golden values with and that
scripts/export_backbone.py --verify compares `s2-policy features` against when the `s2wrapper` package is not
installed. `forward` takes the reference's arguments (split_mode=None selects the master, square-only path).
"""

import math

import torch
import torch.nn.functional as F


def split_chessboard(x, nh, nw):
    """B×C×(nh·h)×(nw·w) -> (nh·nw·B)×C×h×w; crop (i, j) of image b goes to batch index (i·nw + j)·B + b."""
    b, c, hh, ww = x.shape
    assert hh % nh == 0 and ww % nw == 0, (x.shape, nh, nw)
    h, w = hh // nh, ww // nw
    return x.reshape(b, c, nh, h, nw, w).permute(2, 4, 0, 1, 3, 5).reshape(nh * nw * b, c, h, w)


def merge_chessboard(x, nh, nw):
    """Inverse of split_chessboard."""
    nb, c, h, w = x.shape
    assert nb % (nh * nw) == 0
    b = nb // (nh * nw)
    return x.reshape(nh, nw, b, c, h, w).permute(2, 3, 0, 4, 1, 5).reshape(b, c, nh * h, nw * w)


def bicubic(x, size):
    return F.interpolate(x, size=size, mode='bicubic', align_corners=False)


def area(x, size):
    return F.interpolate(x, size=size, mode='area')


def tokens_to_grid(out):
    """B×N×C -> B×C×h×w with h = w = int(sqrt(N)) (square token grid, as the reference assumes)."""
    b, n, c = out.shape
    h = int(n ** 0.5)
    assert h * h == n, f'{n} tokens are not a square grid'
    return out.reshape(b, h, h, c).permute(0, 3, 1, 2)


def grid_to_tokens(out):
    b, c, h, w = out.shape
    return out.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _finish(outs, prefixes, b, resize_output_to_idx, output_shape, output_size):
    """Area-resize every scale to output_size, concat on channels, flatten, prepend the averaged prefix."""
    out = torch.cat([area(o, output_size) for o in outs], dim=1)
    if output_shape == 'bnc':
        out = grid_to_tokens(out)
    if prefixes is not None:
        # mean of each scale's prefix tokens over that scale's crops, then concat the scales on channels
        pre = torch.cat([torch.stack(p.split(b, dim=0), dim=0).mean(dim=0) for p in prefixes], dim=-1)
        out = torch.cat([pre, out], dim=1)
    return out


def _run(model, crops, num_prefix_token, output_shape):
    out = model(crops)
    prefix = None
    if num_prefix_token > 0:
        prefix, out = out[:, :num_prefix_token], out[:, num_prefix_token:]
    if output_shape == 'bnc':
        out = tokens_to_grid(out)
    return out, prefix


def s2_master(model, x, scales=None, img_sizes=None, max_split_size=None, resize_output_to_idx=0,
              num_prefix_token=0, output_shape='bnc'):
    assert x.dim() == 4 and x.shape[2] == x.shape[3], 'master path: square input only'
    assert output_shape in ('bnc', 'bchw') and (output_shape == 'bnc' or num_prefix_token == 0)
    b, _, size_in, _ = x.shape
    assert (scales is None) != (img_sizes is None)
    img_sizes = img_sizes or [int(size_in * s) for s in scales]
    m = max_split_size or size_in
    outs, prefixes = [], []
    for size in img_sizes:
        n = math.ceil(size / m)
        crops = split_chessboard(bicubic(x, (size, size)), n, n)  # crops of size/n (need not be m)
        out, prefix = _run(model, crops, num_prefix_token, output_shape)
        outs.append(merge_chessboard(out, n, n))
        prefixes.append(prefix)
    output_size = outs[resize_output_to_idx].shape[-2]
    return _finish(outs, prefixes if num_prefix_token > 0 else None, b, resize_output_to_idx, output_shape,
                   (output_size, output_size))


def s2_any_shape(model, x, scales=None, img_sizes=None, max_split_size=None, split_mode='resize',
                 resize_output_to_idx=0, num_prefix_token=0, output_shape='bnc'):
    assert x.dim() == 4
    assert split_mode in ('resize', 'pad')
    assert output_shape in ('bnc', 'bchw') and (output_shape == 'bnc' or num_prefix_token == 0)
    b, _, h_in, w_in = x.shape
    assert (scales is None) != (img_sizes is None)
    if img_sizes is None:
        img_sizes = [(int(h_in * s), int(w_in * s)) for s in scales]
    else:
        img_sizes = [(s, s) if isinstance(s, int) else tuple(s) for s in img_sizes]
    assert max_split_size is not None or h_in == w_in, 'max_split_size is required for non-square input'
    m = max_split_size or h_in
    outs, prefixes = [], []
    for (h, w) in img_sizes:
        nh, nw = math.ceil(h / m), math.ceil(w / m)
        ph, pw = nh * m, nw * m
        xs = bicubic(x, (h, w))
        if split_mode == 'resize':
            xs = bicubic(xs, (ph, pw))
        else:
            xs = F.pad(xs, (0, pw - w, 0, ph - h))  # zeros at the bottom and right
        out, prefix = _run(model, split_chessboard(xs, nh, nw), num_prefix_token, output_shape)
        out = merge_chessboard(out, nh, nw)
        if split_mode == 'pad':
            # Same float64 expression as the reference: ceil(original / padded * feature).
            fh = math.ceil(h / ph * out.shape[-2])
            fw = math.ceil(w / pw * out.shape[-1])
            out = out[:, :, :fh, :fw]
        outs.append(out)
        prefixes.append(prefix)
    output_size = tuple(outs[resize_output_to_idx].shape[-2:])
    return _finish(outs, prefixes if num_prefix_token > 0 else None, b, resize_output_to_idx, output_shape,
                   output_size)


def s2_forward(model, x, opts):
    """Dispatch on the JSON options (camelCase) exactly as the golden index stores them."""
    kw = dict(max_split_size=opts['maxSplitSize'], resize_output_to_idx=opts['resizeOutputToIdx'],
              num_prefix_token=opts['numPrefixToken'], output_shape=opts['outputShape'],
              scales=opts.get('scales'), img_sizes=opts.get('imgSizes'))
    if opts['splitMode'] is None:
        return s2_master(model, x, **kw)
    return s2_any_shape(model, x, split_mode=opts['splitMode'], **kw)


def forward(model, input, scales=None, img_sizes=None, max_split_size=None, resize_output_to_idx=0, num_prefix_token=0,
            output_shape='bnc', split_mode=None):
    """s2wrapper.forward's arguments; split_mode None is the master path, 'resize' / 'pad' the dev_any_shape path."""
    kw = dict(scales=scales, img_sizes=img_sizes, max_split_size=max_split_size,
              resize_output_to_idx=resize_output_to_idx, num_prefix_token=num_prefix_token, output_shape=output_shape)
    if split_mode is None:
        return s2_master(model, input, **kw)
    return s2_any_shape(model, input, split_mode=split_mode, **kw)
