#!/usr/bin/env python3
"""Export a vision backbone from PyTorch to ONNX for s2_policy, with the metadata the node reads, and optionally
verify that `s2-policy features` on the ONNX gives the same S² features as the reference S² wrapper in PyTorch.

Where the model comes from (--model):
  timm:NAME              timm.create_model(NAME); weights from --checkpoint FILE, none with --no-pretrained,
                         else timm's pretrained download
  torchvision:NAME       torchvision.models.get_model(NAME); same three choices of weights
  hf:DIR  (or --hf-dir DIR)  a Hugging Face transformers vision model saved in a local folder (config.json and
                         weights, as save_pretrained writes it); the vision tower of CLIP/SigLIP-style models
  dinov2:NAME            DINOv2 from a local checkout of its hub repository (--hub-dir DIR, no download), with
                         --checkpoint FILE or --no-pretrained; plain `dinov2_vits14` etc. download through torch.hub
  MODULE:FUNCTION        any importable module (or path/to/file.py) whose FUNCTION returns an nn.Module
                         (keyword arguments from --kwargs JSON); --checkpoint loads weights into it
  tiny-test              a small random ViT (no download)

Which output (--output):
  last (default)         the final tokens B x N x C of a ViT (prefix tokens first: CLS, registers), or the last
                         feature map B x C x h x w of a ConvNet (timm/DINOv2/MODULE: forward_features when the model
                         has it; Hugging Face: last_hidden_state)
  layer:NAME             the output of the submodule NAME (model.get_submodule), e.g. layer:blocks.10 or
                         layer:layer3; for a Hugging Face model an integer picks hidden_states[N]
  stage:N                stage N of a ConvNet (timm feature_info index, torchvision ResNet layerN,
                         Hugging Face hidden_states[N])

The ONNX file has input 'pixel_values' (B x 3 x H x W, dynamic batch; --dynamic-size makes H and W dynamic too) and
output 'features', and metadata_props s2.kind (vit | convnet), s2.image_size, s2.num_prefix_tokens (ViTs),
s2.mean, s2.std, which `s2-policy` reads for the crop size, the prefix-token count, the output layout and the
default normalisation.

--verify runs S² both ways on the same input with the given S² options (--scales / --img-sizes, --max-split-size,
--split-mode, --resize-output-to-idx): the reference in PyTorch on the model (the installed `s2wrapper` package
when importable, else this project's scripts/s2ref.py) and `s2-policy features` on the exported ONNX (needs
`npm run build`), and prints the largest error relative to the reference's RMS with PASS/FAIL against 1e-4, for a
random input and for each --verify-image (preprocessed once, by --preprocess, and fed to both as the same array).

Examples (no download):
    python3 scripts/export_backbone.py --model timm:vit_small_patch14_reg4_dinov2 --checkpoint ft.pth \\
        --image-size 224 --out dinov2_reg.onnx --verify --scales 1,2
    python3 scripts/export_backbone.py --model torchvision:resnet50 --checkpoint resnet50.pth --out r50.onnx --verify
    python3 scripts/export_backbone.py --hf-dir ./my-siglip --out siglip.onnx --verify --verify-image cup.jpg
    python3 scripts/export_backbone.py --model mypkg.nets:build_encoder --kwargs '{"width": 256}' \\
        --checkpoint enc.pt --image-size 224 --out enc.onnx --verify

Errors (a missing package, a bad flag, a checkpoint that does not fit) are one line and exit 2; --verify that fails
exits 1. The output file appears only when the export succeeded.
"""
import argparse
import contextlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROG = 'export_backbone'
TOLERANCE = 1e-4

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# What each package is needed for, named in the error when it is missing.
PIP_NAMES = {'PIL': 'pillow', 'sklearn': 'scikit-learn'}


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit 2."""


def need(package, purpose):
    """Imports a package, or raises a one-line error naming it (and the missing dependency, if that is the cause)."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        missing = (e.name or package).split('.')[0]
        pip = PIP_NAMES.get(missing, missing)
        via = '' if missing == package.split('.')[0] else f' (needed by {package})'
        raise UserError(f'{missing} is not installed for {sys.executable}{via}; {purpose} needs it '
                        f'(pip install {pip})') from None
    except Exception as e:  # e.g. a torchvision built for another torch
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f'{package} cannot be imported by {sys.executable}: {first}') from None


# ---------------------------------------------------------------------------------------------------------------
# Loading models
# ---------------------------------------------------------------------------------------------------------------

class Loaded:
    """What the exporter needs to know about a model: the module to export and its conventions."""

    def __init__(self, module, size, norm, prefix=None, patch=None, source='', nhwc=False, extra=None):
        self.module = module  # nn.Module: pixels -> the chosen output (tensor)
        self.size = size  # native crop side
        self.norm = norm  # (mean, std)
        self.prefix = prefix  # prefix-token count when known from the model (None: infer)
        self.patch = patch  # patch side when known (for prefix inference)
        self.source = source
        self.nhwc = nhwc  # output is B x H x W x C (permuted to bchw on export)
        self.extra = extra or {}  # e.g. the timm model / HF folder for --preprocess


def torch_module():
    return need('torch', 'exporting')


def wrap(model, fn):
    torch = torch_module()

    class Output(torch.nn.Module):
        """forward(pixels) = fn(model, pixels): picks the output that is exported."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return fn(self.model, x)

    return Output()


def first_tensor(out):
    """The feature tensor of a module's output: a tensor, ModelOutput.last_hidden_state, or a tuple's first item."""
    torch = torch_module()
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, 'last_hidden_state') and out.last_hidden_state is not None:
        return out.last_hidden_state
    if isinstance(out, dict) and 'x_norm_patchtokens' in out:
        return dinov2_tokens(out)
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise UserError(f'the chosen output is a {type(out).__name__}, not a tensor; pick one with --output layer:NAME')


def dinov2_tokens(out):
    """DINOv2's forward_features dict -> CLS, registers, patch tokens as one B x N x C sequence."""
    torch = torch_module()
    cls = out['x_norm_clstoken'][:, None]
    regs = out.get('x_norm_regtokens')
    parts = [cls] + ([regs] if regs is not None and regs.shape[1] > 0 else []) + [out['x_norm_patchtokens']]
    return torch.cat(parts, 1)


def hooked(model, name, call):
    """Exports the output of submodule `name` while running `call(model, x)`."""
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise UserError(f'--output layer:{name}: the model has no submodule {name!r} '
                        f'(top level: {", ".join(names[:12])}{", …" if len(names) > 12 else ""})') from None
    store = {}
    layer.register_forward_hook(lambda _m, _i, out: store.__setitem__('out', first_tensor(out)))

    def fn(m, x):
        store.pop('out', None)
        call(m, x)
        if 'out' not in store:
            raise UserError(f'--output layer:{name}: the submodule did not run in forward')
        return store['out']

    return wrap(model, fn)


def forward_features_or_forward(m, x):
    return first_tensor(m.forward_features(x) if hasattr(m, 'forward_features') else m(x))


def load_checkpoint(model, file, strict=True):
    """Loads a state dict from .pth/.pt/.bin/.safetensors, unwrapping the usual containers and key prefixes."""
    torch = torch_module()
    if not os.path.isfile(file):
        raise UserError(f'--checkpoint {file}: no such file')
    try:
        if file.endswith('.safetensors'):
            sd = need('safetensors.torch', 'reading .safetensors').load_file(file)
        else:
            try:
                sd = torch.load(file, map_location='cpu', weights_only=True)
            except TypeError:  # torch without weights_only
                sd = torch.load(file, map_location='cpu')
    except UserError:
        raise
    except Exception as e:
        raise UserError(f'--checkpoint {file}: cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__})') from None
    for key in ('state_dict', 'model', 'module', 'teacher', 'model_ema', 'state_dict_ema'):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict) and not any(isinstance(v, torch.Tensor) for v in sd.values()):
            sd = sd[key]
    if isinstance(sd, torch.nn.Module):
        sd = sd.state_dict()
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f'--checkpoint {file}: not a state dict of tensors')
    own = set(model.state_dict().keys())
    for prefix in ('module.', 'backbone.', 'model.', 'encoder.', 'teacher.backbone.', 'student.backbone.'):
        if not (set(sd) & own) and any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    # Classifier heads of the checkpoint are dropped when the model was built without one (num_classes=0).
    sd = {k: v for k, v in sd.items() if k in own or not k.startswith(('head.', 'fc.', 'classifier.', 'heads.'))}
    missing = sorted(own - set(sd))
    unexpected = sorted(set(sd) - own)
    if strict and (missing or unexpected):
        def few(keys):
            return ', '.join(keys[:4]) + (f' (+{len(keys) - 4} more)' if len(keys) > 4 else '')
        parts = ([f'{len(missing)} missing keys: {few(missing)}'] if missing else []) + \
                ([f'{len(unexpected)} unexpected keys: {few(unexpected)}'] if unexpected else [])
        raise UserError(f'--checkpoint {file} does not fit the model: {"; ".join(parts)}')
    try:
        model.load_state_dict(sd, strict=strict)
    except RuntimeError as e:
        line = next((l.strip() for l in str(e).splitlines() if 'size mismatch' in l), str(e).splitlines()[0])
        raise UserError(f'--checkpoint {file} does not fit the model: {line}') from None


def pretrained_flag(a):
    if a.checkpoint and a.no_pretrained:
        raise UserError('give either --checkpoint or --no-pretrained, not both')
    return not (a.checkpoint or a.no_pretrained)


def load_timm(name, a):
    timm = need('timm', f'timm:{name}')
    pretrained = pretrained_flag(a)
    kw = dict(pretrained=pretrained, num_classes=0)
    vit_kw = {}
    if a.image_size:
        vit_kw['img_size'] = a.image_size
    if a.dynamic_size:
        vit_kw['dynamic_img_size'] = True
    try:
        try:
            model = timm.create_model(name, **kw, **vit_kw)
        except TypeError:  # ConvNets take no img_size / dynamic_img_size
            model = timm.create_model(name, **kw)
    except RuntimeError as e:
        msg = str(e).splitlines()[0]
        if 'Unknown model' in msg or 'Invalid model' in msg:
            raise UserError(f'timm has no model {name!r} (timm.list_models("*part*") lists names)') from None
        raise
    if a.checkpoint:
        load_checkpoint(model, a.checkpoint)
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    size = int(cfg.get('input_size', (3, 224, 224))[-1])
    if 'img_size' in vit_kw:
        size = a.image_size
    norm = (tuple(cfg.get('mean', IMAGENET[0])), tuple(cfg.get('std', IMAGENET[1])))
    nhwc = getattr(model, 'output_fmt', 'NCHW') == 'NHWC'
    pe = getattr(model, 'patch_embed', None)
    patch = pe.patch_size[0] if pe is not None and hasattr(pe, 'patch_size') else None
    prefix = getattr(model, 'num_prefix_tokens', None)
    if a.output.startswith('stage:'):
        # The module timm's features_only would tap for this stage, on the model as built (so the checkpoint
        # loads strictly into the same names).
        n = int(a.output[6:])
        info = getattr(model, 'feature_info', None) or []
        if n >= len(info):
            raise UserError(f'--output {a.output}: timm {name} has {len(info)} feature stages (0-{len(info) - 1})')
        module = hooked(model, info[n]['module'], lambda m, x: m.forward_features(x))
    elif a.output.startswith('layer:'):
        module = hooked(model, a.output[6:], lambda m, x: m.forward_features(x))
    else:
        module = wrap(model, lambda m, x: m.forward_features(x))
    return Loaded(module, size, norm, prefix=prefix, patch=patch, source=f'timm:{name}', nhwc=nhwc,
                  extra={'timm_model': model})


def load_torchvision(name, a):
    need('torch', f'torchvision:{name}')
    tv = need('torchvision', f'torchvision:{name}')
    pretrained = pretrained_flag(a)
    kw = {'weights': 'DEFAULT' if pretrained else None}
    try:
        try:
            model = tv.models.get_model(name, **kw, **({'image_size': a.image_size} if a.image_size else {}))
        except TypeError:
            model = tv.models.get_model(name, **kw)
    except ValueError:
        raise UserError(f'torchvision has no model {name!r} (torchvision.models.list_models() lists them)') from None
    if a.checkpoint:
        load_checkpoint(model, a.checkpoint)
    size = a.image_size or getattr(model, 'image_size', 224)
    patch = getattr(model, 'patch_size', None)
    out = a.output
    if out.startswith('layer:'):
        return Loaded(hooked(model, out[6:], lambda m, x: m(x)), size, IMAGENET, patch=patch,
                      prefix=1 if hasattr(model, 'class_token') else None, source=f'torchvision:{name}')
    if hasattr(model, 'class_token'):  # VisionTransformer: CLS + patch tokens after the encoder's final LayerNorm
        if out != 'last':
            raise UserError(f'--output {out}: a ViT has no stages; use last or layer:encoder.layers.encoder_layer_N')

        def vit_tokens(m, x):
            t = m._process_input(x)
            t = a_cat(m.class_token.expand(t.shape[0], -1, -1), t)
            return m.encoder(t)

        return Loaded(wrap(model, vit_tokens), size, IMAGENET, prefix=1, patch=patch, source=f'torchvision:{name}')
    if out.startswith('stage:'):
        n = int(out[6:])
        if not hasattr(model, f'layer{n}'):
            raise UserError(f'--output {out}: torchvision {name} has no layer{n}; use --output layer:NAME')
        return Loaded(hooked(model, f'layer{n}', lambda m, x: m(x)), size, IMAGENET, source=f'torchvision:{name}')
    if hasattr(model, 'features'):  # convnext, efficientnet, mobilenet, regnet-free families, swin (NHWC), vgg
        swin = type(model).__name__ == 'SwinTransformer'
        feats = (lambda m, x: m.norm(m.features(x))) if swin else (lambda m, x: m.features(x))
        return Loaded(wrap(model, feats), size, IMAGENET, nhwc=swin, source=f'torchvision:{name}')
    if hasattr(model, 'avgpool') and hasattr(model, 'fc'):  # ResNet, ResNeXt, RegNet-style: everything before the pool
        children = [c for n, c in model.named_children() if n not in ('avgpool', 'fc')]
        body = torch_module().nn.Sequential(*children)
        return Loaded(wrap(body, lambda m, x: m(x)), size, IMAGENET, source=f'torchvision:{name}')
    raise UserError(f'torchvision {name}: no known feature output; pick one with --output layer:NAME')


def a_cat(cls, t):
    return torch_module().cat([cls, t], 1)


def load_hf(folder, a):
    need('torch', 'Hugging Face models')
    transformers = need('transformers', f'--hf-dir {folder}')
    if not os.path.isfile(os.path.join(folder, 'config.json')):
        raise UserError(f'--hf-dir {folder}: no config.json there (a folder written by save_pretrained)')
    if a.checkpoint or a.no_pretrained:
        raise UserError('--hf-dir takes its weights from the folder; --checkpoint and --no-pretrained do not apply')
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f'--hf-dir {folder}: transformers cannot load it ({str(e).splitlines()[0]})') from None
    kind = config.model_type
    vconfig = config
    if hasattr(model, 'vision_model') and hasattr(config, 'vision_config'):  # CLIPModel, SiglipModel: the vision tower
        model, vconfig = model.vision_model, config.vision_config
    pre = {}
    pre_file = os.path.join(folder, 'preprocessor_config.json')
    if os.path.isfile(pre_file):
        with open(pre_file) as f:
            pre = json.load(f)
    if 'image_mean' in pre and 'image_std' in pre:
        norm = (tuple(pre['image_mean']), tuple(pre['image_std']))
    else:
        norm = CLIP if 'clip' in kind else HALF if 'siglip' in kind else IMAGENET
    native = getattr(vconfig, 'image_size', None)
    size = a.image_size or native or 224
    patch = getattr(vconfig, 'patch_size', None)
    params = inspect.signature(model.forward).parameters
    kw = {}
    if 'interpolate_pos_encoding' in params and (a.dynamic_size or size != native):
        kw['interpolate_pos_encoding'] = True
    out = a.output
    layer = None
    if out.startswith('stage:') or (out.startswith('layer:') and out[6:].lstrip('-').isdigit()):
        layer = int(out.split(':', 1)[1])
    elif out.startswith('layer:'):
        return Loaded(hooked(model, out[6:], lambda m, x: m(pixel_values=x, **kw)), size, norm, patch=patch,
                      source=f'hf:{folder}', extra={'hf_dir': folder})

    def fn(m, x):
        if layer is None:
            return first_tensor(m(pixel_values=x, **kw))
        o = m(pixel_values=x, output_hidden_states=True, **kw)
        return o.hidden_states[layer]

    # The prefix-token count is measured on the probe: N - (size / patch)^2.
    return Loaded(wrap(model, fn), size, norm, patch=patch, source=f'hf:{folder}',
                  extra={'hf_dir': folder})


def load_dinov2(name, a):
    torch = torch_module()
    if a.hub_dir is None:
        raise UserError(f'dinov2:{name} needs --hub-dir DIR, a local checkout of the DINOv2 hub repository '
                        f'(or use --model {name} to download it through torch.hub)')
    if not os.path.isfile(os.path.join(a.hub_dir, 'hubconf.py')):
        raise UserError(f'--hub-dir {a.hub_dir}: no hubconf.py there')
    pretrained = pretrained_flag(a)
    try:
        model = torch.hub.load(a.hub_dir, name, source='local', pretrained=pretrained)
    except AttributeError:
        raise UserError(f'--hub-dir {a.hub_dir} has no entry point {name!r}') from None
    if a.checkpoint:
        load_checkpoint(model, a.checkpoint)
    return dinov2_loaded(model, f'dinov2:{name}', a)


def dinov2_loaded(model, source, a):
    prefix = 1 + int(getattr(model, 'num_register_tokens', 0))
    patch = getattr(model, 'patch_size', 14)
    if a.output.startswith('layer:'):
        module = hooked(model, a.output[6:], lambda m, x: m.forward_features(x))
    else:
        module = wrap(model, lambda m, x: dinov2_tokens(m.forward_features(x)))
    return Loaded(module, a.image_size or 224, IMAGENET, prefix=prefix, patch=patch, source=source)


def load_callable(spec, a):
    torch = torch_module()
    mod_name, fn_name = spec.rsplit(':', 1)
    try:
        if mod_name.endswith('.py'):
            if not os.path.isfile(mod_name):
                raise UserError(f'--model {spec}: no such file {mod_name}')
            s = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(mod_name))[0], mod_name)
            module = importlib.util.module_from_spec(s)
            sys.path.insert(0, os.path.dirname(os.path.abspath(mod_name)))
            s.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise UserError(f'--model {spec}: cannot import {e.name or mod_name} for {sys.executable}') from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise UserError(f'--model {spec}: {mod_name} has no function {fn_name!r}')
    try:
        kwargs = json.loads(a.kwargs) if a.kwargs else {}
    except json.JSONDecodeError as e:
        raise UserError(f'--kwargs: not JSON ({e.msg} at column {e.colno})') from None
    if not isinstance(kwargs, dict):
        raise UserError('--kwargs: expected a JSON object')
    model = fn(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise UserError(f'--model {spec}: {fn_name}() returned a {type(model).__name__}, not a torch.nn.Module')
    if a.checkpoint:
        load_checkpoint(model, a.checkpoint)
    if a.image_size is None:
        raise UserError(f'--model {spec}: give the crop size with --image-size')
    pe = getattr(model, 'patch_embed', None)
    patch = getattr(model, 'patch_size', None) or (pe.patch_size[0] if pe is not None and hasattr(pe, 'patch_size') else None)
    if isinstance(patch, (tuple, list)):
        patch = patch[0]
    prefix = getattr(model, 'num_prefix_tokens', None)
    if prefix is None and hasattr(model, 'num_register_tokens'):
        prefix = 1 + int(model.num_register_tokens)
    if a.output.startswith('layer:'):
        module = hooked(model, a.output[6:], forward_features_or_forward)
    elif a.output == 'last':
        module = wrap(model, forward_features_or_forward)
    else:
        raise UserError(f'--output {a.output}: for MODULE:FUNCTION models use last or layer:NAME')
    return Loaded(module, a.image_size, IMAGENET, prefix=prefix, patch=patch, source=spec)


class TinyViT:
    """A small random ViT with a CLS token, for checking the export path without downloads."""

    @staticmethod
    def build(size=32, patch=8, dim=32):
        torch = torch_module()

        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.patch = torch.nn.Conv2d(3, dim, patch, patch)
                self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
                self.pos = torch.nn.Parameter(torch.randn(1, 1 + (size // patch) ** 2, dim) * 0.1)
                layer = torch.nn.TransformerEncoderLayer(dim, 2, dim * 2, batch_first=True, norm_first=True)
                self.blocks = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

            def forward(self, x):
                t = self.patch(x).flatten(2).transpose(1, 2)
                t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
                return self.blocks(t)

        return Tiny()


def load(a):
    spec = a.model
    if a.hf_dir is not None:
        if spec is not None:
            raise UserError('give either --model or --hf-dir, not both')
        return load_hf(a.hf_dir, a)
    if spec is None:
        raise UserError('one of --model or --hf-dir is required')
    if spec == 'tiny-test':
        return Loaded(TinyViT.build(), 32, IMAGENET, prefix=1, patch=8, source='tiny-test')
    family, _, rest = spec.partition(':')
    if family == 'timm' and rest:
        return load_timm(rest, a)
    if family == 'torchvision' and rest:
        return load_torchvision(rest, a)
    if family == 'hf' and rest:
        return load_hf(rest, a)
    if family == 'dinov2' and rest:
        return load_dinov2(rest, a)
    if spec.startswith('dinov2_') and ':' not in spec:
        torch = torch_module()
        model = torch.hub.load('facebookresearch/dinov2', spec)
        return dinov2_loaded(model, spec, a)
    if ':' in spec and rest:
        return load_callable(spec, a)
    raise UserError(f'--model {spec}: expected timm:NAME, torchvision:NAME, hf:DIR, dinov2:NAME, MODULE:FUNCTION '
                    f'or tiny-test')


# ---------------------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------------------

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


class ToBchw:
    """Wraps a module whose output is B x H x W x C so that the export gives B x C x H x W."""

    @staticmethod
    def wrap(module):
        torch = torch_module()

        class Permuted(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, x):
                return self.inner(x).permute(0, 3, 1, 2)

        return Permuted()


def prefix_count(loaded, n, size, flag):
    """Prefix tokens of a B x N x C output at crop `size`: the flag, the model's own count, its patch grid, or the
    unique reading of N as prefix + square grid (as s2-policy would guess)."""
    if flag is not None:
        return flag
    if loaded.patch:
        grid = (size // loaded.patch) ** 2
        if size % loaded.patch == 0 and 0 <= n - grid < grid:
            if loaded.prefix is not None and loaded.prefix != n - grid:
                raise UserError(f'{n} tokens at {size}x{size} with patch {loaded.patch} leave {n - grid} prefix tokens, '
                                f'the model says {loaded.prefix}; set --num-prefix-tokens')
            return n - grid
    if loaded.prefix is not None:
        return loaded.prefix
    found = [p for p in range(0, min(16, n - 1) + 1)
             if math.isqrt(n - p) ** 2 == n - p and size % math.isqrt(n - p) == 0 and size // math.isqrt(n - p) >= 4
             and p < n - p]
    if len(found) != 1:
        raise UserError(f'cannot tell the prefix-token count from {n} tokens at {size}x{size}'
                        f'{" (could be " + " or ".join(map(str, found)) + ")" if found else ""}; set --num-prefix-tokens')
    return found[0]


def export(loaded, a):
    torch = torch_module()
    module = ToBchw.wrap(loaded.module) if (loaded.nhwc or a.nhwc) else loaded.module
    module.eval()
    size = a.image_size or loaded.size
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        try:
            probe = module(x)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f'{loaded.source} fails on a 1x3x{size}x{size} input: {str(e).splitlines()[0] if str(e) else type(e).__name__}') from None
    if not isinstance(probe, torch.Tensor) or probe.dim() not in (3, 4):
        shape = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
        raise UserError(f'{loaded.source}: the chosen output is {shape}, expected B x N x C tokens or B x C x h x w maps '
                        f'(pick another with --output)')
    kind = 'vit' if probe.dim() == 3 else 'convnet'
    meta = {'s2.kind': kind, 's2.image_size': str(size)}
    if kind == 'vit':
        prefix = prefix_count(loaded, probe.shape[1], size, a.num_prefix_tokens)
        meta['s2.num_prefix_tokens'] = str(prefix)
    mean, std = loaded.norm
    if a.mean:
        mean = parse_triple(a.mean, '--mean')
    if a.std:
        std = parse_triple(a.std, '--std')
    meta['s2.mean'] = ','.join(f'{v:g}' for v in mean)
    meta['s2.std'] = ','.join(f'{v:g}' for v in std)

    axes_in = {0: 'batch'}
    axes_out = {0: 'batch'}
    if a.dynamic_size:
        axes_in.update({2: 'height', 3: 'width'})
        axes_out.update({1: 'tokens'} if kind == 'vit' else {2: 'grid_h', 3: 'grid_w'})
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        raise UserError(f'--out {a.out}: folder {out_dir} does not exist')
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(a.out) + '.', suffix='.part', dir=out_dir)
    os.close(fd)
    try:
        run_export(module, x, tmp, axes_in, axes_out, loaded.source, a)
        if os.path.exists(tmp + '.data') or any(f.endswith('.data') for f in os.listdir(out_dir) if f.startswith('.' + os.path.basename(a.out))):
            raise UserError(f'{loaded.source} is too large for one ONNX file (over 2 GB)')
        with open(tmp, 'ab') as f:
            for k, v in meta.items():
                f.write(metadata_entry(k, v))
        if a.dynamic_size:
            check_dynamic(module, tmp, a, size, loaded)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the model private
        os.replace(tmp, a.out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    shape = 'x'.join(map(str, probe.shape[1:]))
    what = f'{probe.shape[1]} tokens ({meta["s2.num_prefix_tokens"]} prefix) x {probe.shape[2]}' if kind == 'vit' \
        else f'{probe.shape[1]} x {probe.shape[2]} x {probe.shape[3]} maps'
    print(f'wrote {a.out}: {loaded.source}, {kind} ({what}) per {size}x{size} crop'
          f'{", dynamic height/width" if a.dynamic_size else ""}; metadata '
          + ' '.join(f'{k}={v}' for k, v in meta.items()))
    return module, meta, shape


@contextlib.contextmanager
def quiet(debug):
    """Silences what the exporters print (graph dumps, registration warnings) at the file-descriptor level, as
    part of it comes from C++; --debug keeps it."""
    if debug:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, 'w') as null, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            with contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_export(module, x, file, axes_in, axes_out, source, a):
    """torch.onnx.export with the TorchScript exporter (the same path on torch 1.13 and 2.x); with --exporter auto,
    a model it cannot take (e.g. antialiased resizing of position embeddings) is retried with the dynamo exporter."""
    torch = torch_module()
    has_dynamo = 'dynamo' in inspect.signature(torch.onnx.export).parameters
    names = dict(input_names=['pixel_values'], output_names=['features'],
                 dynamic_axes={'pixel_values': axes_in, 'features': axes_out})
    if a.exporter == 'dynamo' and not has_dynamo:
        raise UserError(f'--exporter dynamo: torch {torch.__version__} has no dynamo exporter')
    failure = None
    if a.exporter in ('auto', 'torchscript'):
        kw = dict(names, opset_version=a.opset, **({'dynamo': False} if has_dynamo else {}))
        try:
            with quiet(a.debug):
                torch.onnx.export(module, (x,), file, **kw)
            return
        except Exception as e:
            if a.debug:
                raise
            failure = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if a.exporter == 'torchscript' or not has_dynamo:
                raise UserError(f'torch.onnx.export failed for {source}: {failure} (--debug shows the traceback)') from None
    try:
        with quiet(a.debug):
            torch.onnx.export(module, (x,), file, dynamo=True, external_data=False, opset_version=max(a.opset, 18),
                              verbose=False, **names)
    except Exception as e:
        if a.debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f'torch.onnx.export (dynamo) failed for {source}: {msg} (--debug shows the traceback)') from None
    if failure is not None:
        print(f'note: the TorchScript exporter failed ({failure[:120]}); exported with the dynamo exporter')


def check_dynamic(module, file, a, size, loaded):
    """A traced graph can keep the trace's size (a position embedding resized only when the size differs): run the
    export at a second size through s2-policy and compare with PyTorch, so a size-fixed graph is an error here."""
    torch = torch_module()
    np = need('numpy', '--dynamic-size')
    step = loaded.patch or 32
    other = max(step, (size * 3 // 4) // step * step)
    if other == size:
        other = size + step
    try:
        cmd = s2_policy_command(a)
    except UserError:
        print(f'note: --dynamic-size not checked at a second size (run `npm run build` in {ROOT} to check it)')
        return
    x = torch.randn(1, 3, other, other, generator=torch.Generator().manual_seed(a.seed + 1))
    with torch.no_grad():
        want = module(x).numpy()
    with tempfile.TemporaryDirectory(prefix='s2-dyn-') as tmp:
        np.save(os.path.join(tmp, 'x.npy'), x.numpy())
        r = subprocess.run(cmd + ['features', '--model', file, '--input', os.path.join(tmp, 'x.npy'), '--out',
                                  os.path.join(tmp, 'y.npy'), '--img-sizes', str(other), '--max-split-size', str(other)],
                           capture_output=True, text=True)
        got = np.load(os.path.join(tmp, 'y.npy')) if r.returncode == 0 else None
    if got is not None and got.shape == want.shape:
        ratio = float(np.abs(got - want).max()) / max(float(np.sqrt(np.mean(want.astype(np.float64) ** 2))), 1e-30)
        if ratio < TOLERANCE:
            return
    raise UserError(f'--dynamic-size: the exported graph does not follow the input size (checked at {other}x{other}); '
                    f'the model fixes its size while tracing: export without --dynamic-size, or with '
                    f'--exporter dynamo on torch 2')


def parse_triple(text, flag):
    try:
        v = tuple(float(t) for t in text.split(','))
    except ValueError:
        v = ()
    if len(v) != 3:
        raise UserError(f'{flag} {text}: expected three comma-separated numbers')
    return v


# ---------------------------------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------------------------------

def parse_sizes(text, flag):
    sizes = []
    for part in text.split(','):
        p = part.strip().lower()
        try:
            if 'x' in p:
                h, w = p.split('x')
                sizes.append((int(h), int(w)))
            else:
                sizes.append(int(p))
        except ValueError:
            raise UserError(f'{flag} {text}: expected sizes like 224,448 or 224x336,448x672') from None
    return sizes


def s2_kwargs(a, meta):
    kw = {}
    if a.scales and a.img_sizes:
        raise UserError('give either --scales or --img-sizes, not both')
    if a.img_sizes:
        kw['img_sizes'] = parse_sizes(a.img_sizes, '--img-sizes')
    else:
        try:
            kw['scales'] = [float(s) for s in (a.scales or '1,2').split(',')]
        except ValueError:
            raise UserError(f'--scales {a.scales}: expected numbers like 1,2') from None
    if a.max_split_size:
        kw['max_split_size'] = a.max_split_size
    kw['resize_output_to_idx'] = a.resize_output_to_idx
    kw['num_prefix_token'] = int(meta.get('s2.num_prefix_tokens', 0))
    kw['output_shape'] = 'bnc' if meta['s2.kind'] == 'vit' else 'bchw'
    if a.split_mode:
        kw['split_mode'] = a.split_mode
    return kw


def cli_flags(a):
    flags = ['--img-sizes', a.img_sizes] if a.img_sizes else ['--scales', a.scales or '1,2']
    if a.max_split_size:
        flags += ['--max-split-size', str(a.max_split_size)]
    if a.resize_output_to_idx:
        flags += ['--resize-output-to-idx', str(a.resize_output_to_idx)]
    if a.split_mode:
        flags += ['--split-mode', a.split_mode]
    return flags


def reference(a, kw):
    """(forward function, its name): the installed s2wrapper, or the project's scripts/s2ref.py."""
    if a.reference in ('auto', 's2wrapper'):
        try:
            s2wrapper = importlib.import_module('s2wrapper')
            fwd = s2wrapper.forward
            if 'split_mode' in kw and 'split_mode' not in inspect.signature(fwd).parameters:
                if a.reference == 's2wrapper':
                    raise UserError('--split-mode: the installed s2wrapper has no split_mode (the master branch); '
                                    'install its dev_any_shape branch or use --reference project')
                print('note: the installed s2wrapper has no split_mode; using the project\'s scripts/s2ref.py')
            else:
                where = os.path.dirname(getattr(s2wrapper, '__file__', '') or '')
                return fwd, f's2wrapper ({where})'
        except ImportError as e:
            if a.reference == 's2wrapper':
                raise UserError(f'--reference s2wrapper: s2wrapper cannot be imported by {sys.executable} ({e})') from None
    sys.path.insert(0, HERE)
    import s2ref
    return s2ref.forward, 'scripts/s2ref.py'


def preprocess_image(a, loaded, size, meta):
    """The user's image as 1 x 3 x H x W float32, with the chosen preprocessing."""
    torch = torch_module()
    Image = need('PIL.Image', '--verify-image')
    pre = a.preprocess
    mean = parse_triple(meta['s2.mean'], 's2.mean')
    std = parse_triple(meta['s2.std'], 's2.std')
    if pre in ('resize', 'crop'):
        img = Image.open(a.verify_image_current).convert('RGB')
        if pre == 'crop':  # shorter side to size, centre crop (torchvision's Resize + CenterCrop)
            w, h = img.size
            s = size / min(w, h)
            img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
        else:
            img = img.resize((size, size), Image.BICUBIC)
        np = need('numpy', '--verify-image')
        arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        x = (arr - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    elif pre == 'timm':
        timm = need('timm', '--preprocess timm')
        model = loaded.extra.get('timm_model')
        if model is None:
            raise UserError('--preprocess timm needs a timm:NAME model')
        cfg = timm.data.resolve_data_config(model=model)
        cfg['input_size'] = (3, size, size)
        x = timm.data.create_transform(**cfg)(Image.open(a.verify_image_current).convert('RGB'))
    elif pre == 'hf':
        transformers = need('transformers', '--preprocess hf')
        folder = loaded.extra.get('hf_dir')
        if folder is None:
            raise UserError('--preprocess hf needs an --hf-dir model')
        proc = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        x = proc(images=Image.open(a.verify_image_current).convert('RGB'), return_tensors='pt')['pixel_values'][0]
    elif ':' in pre:
        mod_name, fn_name = pre.rsplit(':', 1)
        sys.path.insert(0, os.getcwd())
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError):
            raise UserError(f'--preprocess {pre}: cannot import {fn_name} from {mod_name}') from None
        x = fn(Image.open(a.verify_image_current).convert('RGB'))
        x = torch.as_tensor(x, dtype=torch.float32)
    else:
        raise UserError(f'--preprocess {pre}: expected resize, crop, timm, hf or MODULE:FUNCTION')
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] != 3:
        raise UserError(f'--preprocess {pre} gave shape {tuple(x.shape)}, expected 3 x H x W')
    return x.float().contiguous()


def s2_policy_command(a):
    if a.s2_policy:
        return shlex.split(a.s2_policy)
    bin_js = os.path.join(ROOT, 'bin', 's2-policy.js')
    if not os.path.isfile(os.path.join(ROOT, 'dist', 'src', 'cli', 'main.js')):
        raise UserError(f'--verify needs the built CLI: run `npm run build` in {ROOT} first')
    return [a.node, bin_js]


def verify_one(label, module, x, a, meta, fwd, ref_name, tmp):
    torch = torch_module()
    np = need('numpy', '--verify')
    kw = s2_kwargs(a, meta)
    with torch.no_grad():
        try:
            ref = fwd(module, x, **kw)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f'the reference S² ({ref_name}) fails on {label} {tuple(x.shape)} with these options: '
                            f'{str(e).splitlines()[0] if str(e) else type(e).__name__}') from None
    ref = ref.float().numpy()
    x_file = os.path.join(tmp, 'input.npy')
    y_file = os.path.join(tmp, 'features.npy')
    np.save(x_file, np.ascontiguousarray(x.numpy(), dtype=np.float32))
    cmd = s2_policy_command(a) + ['features', '--model', a.out, '--input', x_file, '--out', y_file] + cli_flags(a)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        err = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise UserError(f's2-policy features failed on {label}: {err[-1] if err else "exit " + str(r.returncode)}')
    got = np.load(y_file)
    if got.shape != ref.shape:
        print(f'verify {label} {tuple(x.shape)}: FAIL, s2-policy gives {got.shape}, the reference {ref.shape}')
        return False, float('inf')
    diff = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    ratio = diff / rms if rms > 0 else (0.0 if diff == 0 else float('inf'))
    ok = ratio < TOLERANCE
    opts = ' '.join(cli_flags(a))
    print(f'verify {label} {tuple(x.shape)}, {opts}: output {tuple(ref.shape)}, max error {ratio:.2e} x RMS '
          f'(max |diff| {diff:.3g}, RMS {rms:.3g}) against {ref_name}: {"PASS" if ok else "FAIL"} (< {TOLERANCE:g})')
    return ok, ratio


def verify(module, loaded, meta, a):
    torch = torch_module()
    size = int(meta['s2.image_size'])
    kw = s2_kwargs(a, meta)
    fwd, ref_name = reference(a, kw)
    if a.verify_size:
        vs = parse_sizes(a.verify_size, '--verify-size')
        if len(vs) != 1:
            raise UserError(f'--verify-size {a.verify_size}: one size')
        hw = vs[0] if isinstance(vs[0], tuple) else (vs[0], vs[0])
    else:
        hw = (size, size)
    module.eval()
    results = []
    with tempfile.TemporaryDirectory(prefix='s2-verify-') as tmp:
        g = torch.Generator().manual_seed(a.seed)
        x = torch.randn(a.verify_batch, 3, hw[0], hw[1], generator=g)
        results.append(verify_one('random input', module, x, a, meta, fwd, ref_name, tmp))
        for image in a.verify_image or []:
            if not os.path.isfile(image):
                raise UserError(f'--verify-image {image}: no such file')
            a.verify_image_current = image
            xi = preprocess_image(a, loaded, hw[0] if hw[0] == hw[1] else size, meta)
            results.append(verify_one(f'{image} (--preprocess {a.preprocess})', module, xi, a, meta, fwd, ref_name, tmp))
    return all(ok for ok, _ in results), max(r for _, r in results)


def main(argv=None):
    ap = argparse.ArgumentParser(prog='export_backbone.py', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', help='timm:NAME, torchvision:NAME, hf:DIR, dinov2:NAME, MODULE:FUNCTION or tiny-test')
    ap.add_argument('--hf-dir', help='a local Hugging Face transformers model folder')
    ap.add_argument('--hub-dir', help='local checkout of the DINOv2 torch.hub repository (for dinov2:NAME)')
    ap.add_argument('--checkpoint', help='weights to load (.pth/.pt/.bin state dict or .safetensors)')
    ap.add_argument('--no-pretrained', action='store_true', help='the architecture with random weights')
    ap.add_argument('--kwargs', help='JSON keyword arguments for MODULE:FUNCTION')
    ap.add_argument('--output', default='last', help='last | layer:NAME | stage:N (default last)')
    ap.add_argument('--nhwc', action='store_true', help='the chosen output is B x H x W x C: export it as B x C x H x W')
    ap.add_argument('--num-prefix-tokens', type=int, help='prefix tokens of a ViT output (default: from the model)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--image-size', type=int, help='crop size to export at (default: the model\'s own)')
    ap.add_argument('--dynamic-size', action='store_true', help='make the input height and width dynamic')
    ap.add_argument('--mean', help='normalisation mean r,g,b for the metadata (default: the model\'s)')
    ap.add_argument('--std', help='normalisation std r,g,b for the metadata (default: the model\'s)')
    ap.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17; 18 or more with dynamo)')
    ap.add_argument('--exporter', choices=['auto', 'torchscript', 'dynamo'], default='auto',
                    help='torch.onnx exporter: TorchScript, or dynamo (torch 2.x); auto tries TorchScript first')
    ap.add_argument('--seed', type=int, default=0, help='torch seed for random weights and the verify input')
    ap.add_argument('--debug', action='store_true', help='show tracebacks of export failures')
    v = ap.add_argument_group('verification (--verify)')
    v.add_argument('--verify', action='store_true', help='compare s2-policy features with the reference S²')
    v.add_argument('--scales', help='S² scales, e.g. 1,2 (default 1,2)')
    v.add_argument('--img-sizes', help='S² sizes instead of scales, e.g. 224,448 or 224x336,448x672')
    v.add_argument('--max-split-size', type=int)
    v.add_argument('--split-mode', choices=['resize', 'pad'], help='any-shape S² (the reference\'s dev_any_shape)')
    v.add_argument('--resize-output-to-idx', type=int, default=0)
    v.add_argument('--verify-size', help='random input size H or HxW (default: the crop size)')
    v.add_argument('--verify-batch', type=int, default=1)
    v.add_argument('--verify-image', action='append', help='also verify on this image (repeatable)')
    v.add_argument('--preprocess', default='resize',
                   help='for --verify-image: resize (to the crop, bicubic) | crop (shorter side, centre crop) | '
                        'timm | hf | MODULE:FUNCTION (PIL image -> 3 x H x W tensor); then normalised by s2.mean/std '
                        'for resize and crop')
    v.add_argument('--reference', choices=['auto', 's2wrapper', 'project'], default='auto',
                   help='reference S²: the installed s2wrapper if importable (auto), or scripts/s2ref.py')
    v.add_argument('--s2-policy', help='command that runs the CLI (default: node bin/s2-policy.js of this repo)')
    v.add_argument('--node', default='node', help='node executable (default: node)')
    a = ap.parse_args(argv)
    try:
        if a.output != 'last' and not a.output.startswith(('layer:', 'stage:')):
            raise UserError(f'--output {a.output}: expected last, layer:NAME or stage:N')
        if a.output.startswith('stage:') and not a.output[6:].isdigit():
            raise UserError(f'--output {a.output}: stage takes a number')
        if a.verify:
            s2_kwargs(a, {'s2.kind': 'vit'})  # check the S² flags before the (slow) export
            s2_policy_command(a)
        torch = torch_module()
        torch.manual_seed(a.seed)
        loaded = load(a)
        module, meta, _ = export(loaded, a)
        if a.verify:
            ok, _ = verify(module, loaded, meta, a)
            if not ok:
                return 1
        return 0
    except UserError as e:
        print(f'{PROG}: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
