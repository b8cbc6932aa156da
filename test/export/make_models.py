#!/usr/bin/env python3
"""Writes small randomly initialised models for the export tests (no downloads): Hugging Face transformers folders
(as save_pretrained writes them, with a preprocessor config) and a module file with a plain PyTorch backbone.

usage: make_models.py KIND OUT_DIR   (KIND: clip | siglip | dinov2-reg | convnext | vit)
"""
import json
import os
import sys

import torch


def save(model, out, mean, std, size):
    torch.manual_seed(0)
    model.save_pretrained(out)
    with open(os.path.join(out, 'preprocessor_config.json'), 'w') as f:
        # what an image processor reads: resize to size x size (bicubic), rescale 1/255, normalise
        json.dump({'image_processor_type': 'CLIPImageProcessor' if mean != [0.5, 0.5, 0.5] else 'SiglipImageProcessor',
                   'do_resize': True, 'size': {'height': size, 'width': size} if mean == [0.5, 0.5, 0.5] else {'shortest_edge': size},
                   'do_center_crop': mean != [0.5, 0.5, 0.5], 'crop_size': {'height': size, 'width': size},
                   'resample': 3, 'do_rescale': True, 'rescale_factor': 1 / 255, 'do_normalize': True,
                   'image_mean': mean, 'image_std': std, 'do_convert_rgb': True}, f, indent=1)


def main():
    kind, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    import transformers as t
    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    if kind == 'clip':
        cfg = t.CLIPVisionConfig(image_size=224, patch_size=32, **small)
        save(t.CLIPVisionModel(cfg), out, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711], 224)
    elif kind == 'siglip':
        cfg = t.SiglipVisionConfig(image_size=224, patch_size=16, **small)
        save(t.SiglipVisionModel(cfg), out, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 224)
    elif kind == 'dinov2-reg':
        cfg = t.Dinov2WithRegistersConfig(image_size=224, patch_size=14, num_register_tokens=4, mlp_ratio=2,
                                          hidden_size=64, num_hidden_layers=2, num_attention_heads=2)
        save(t.Dinov2WithRegistersModel(cfg), out, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 224)
    elif kind == 'convnext':
        cfg = t.ConvNextConfig(num_channels=3, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 2, 1], image_size=224)
        save(t.ConvNextModel(cfg), out, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 224)
    else:
        sys.exit(f'make_models.py: unknown kind {kind}')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
