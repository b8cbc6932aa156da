#!/usr/bin/env python3
"""Export a pretrained vision backbone from PyTorch to ONNX for s2_policy, with the metadata the node reads.

The output returns tokens B x N x C (ViTs, prefix tokens first) with a dynamic batch axis, and carries these
metadata_props (all strings): s2.kind, s2.image_size, s2.num_prefix_tokens, s2.mean, s2.std. s2-policy reads them
to pick the crop size, the prefix-token count and the default normalisation.

Examples (run where the weights can be downloaded; needs torch, plus timm for the timm models):

    python3 scripts/export_backbone.py --model dinov2_vits14 --out dinov2_vits14.onnx
    python3 scripts/export_backbone.py --model timm:vit_base_patch16_clip_224.openai --out clip_b16.onnx
    python3 scripts/export_backbone.py --model timm:vit_base_patch16_siglip_224 --out siglip_b16.onnx
    npx s2-policy inspect --model dinov2_vits14.onnx --img-sizes 224,448

`--model tiny-test` exports a small random ViT (no download) to check the pipeline end to end.
"""
import argparse
import struct
import sys

import torch

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class Tokens(torch.nn.Module):
    """Wraps a model so that forward(pixels) returns its final token sequence B x N x C."""

    def __init__(self, model, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, x):
        return self.fn(self.model, x)


class TinyViT(torch.nn.Module):
    """A small random ViT with a CLS token, for checking the export path without downloads."""

    def __init__(self, size=32, patch=8, dim=32):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, dim, patch, patch)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.pos = torch.nn.Parameter(torch.randn(1, 1 + (size // patch) ** 2, dim) * 0.1)
        layer = torch.nn.TransformerEncoderLayer(dim, 2, dim * 2, batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, 2)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.blocks(t)


def load(name):
    """Returns (module returning B x N x C, image size, prefix tokens, (mean, std), kind)."""
    if name == 'tiny-test':
        torch.manual_seed(0)
        return TinyViT(), 32, 1, IMAGENET, 'vit'
    if name.startswith('dinov2_'):
        model = torch.hub.load('facebookresearch/dinov2', name)
        registers = 4 if name.endswith('_reg') else 0

        def tokens(m, x):
            out = m.forward_features(x)
            return torch.cat([out['x_norm_clstoken'][:, None], out.get('x_norm_regtokens', out['x_norm_clstoken'][:, :0]), out['x_norm_patchtokens']], 1)

        return Tokens(model, tokens), 224, 1 + registers, IMAGENET, 'vit'
    if name.startswith('timm:'):
        import timm
        model = timm.create_model(name[5:], pretrained=True, num_classes=0)
        cfg = model.pretrained_cfg
        size = cfg['input_size'][-1]
        prefix = getattr(model, 'num_prefix_tokens', 1)
        norm = (tuple(cfg['mean']), tuple(cfg['std']))
        return Tokens(model, lambda m, x: m.forward_features(x)), size, prefix, norm, 'vit'
    sys.exit(f'export_backbone: unknown --model {name} (dinov2_*, timm:<name> or tiny-test)')


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def metadata_entry(key, value):
    """ModelProto.metadata_props (field 14): StringStringEntryProto {key = 1, value = 2}, appended as protobuf allows."""
    return field(14, field(1, key.encode()) + field(2, value.encode()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--image-size', type=int, help='crop size to export at (default: the model\'s own)')
    ap.add_argument('--opset', type=int, default=17)
    a = ap.parse_args()
    module, size, prefix, (mean, std), kind = load(a.model)
    size = a.image_size or size
    module.eval()
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        n = module(x).shape[1]
    torch.onnx.export(module, x, a.out, input_names=['pixel_values'], output_names=['features'],
                      dynamic_axes={'pixel_values': {0: 'batch'}, 'features': {0: 'batch'}}, opset_version=a.opset)
    meta = {'s2.kind': kind, 's2.image_size': str(size), 's2.num_prefix_tokens': str(prefix),
            's2.mean': ','.join(f'{v:g}' for v in mean), 's2.std': ','.join(f'{v:g}' for v in std)}
    with open(a.out, 'ab') as f:
        for k, v in meta.items():
            f.write(metadata_entry(k, v))
    print(f'wrote {a.out}: {n} tokens per {size}x{size} crop ({prefix} prefix), metadata {meta}')


if __name__ == '__main__':
    main()
