// `npm run test:export`: scripts/export_backbone.py on randomly initialised models of each family it supports,
// each exported to ONNX and checked with --verify (reference S² in PyTorch vs `s2-policy features`). Needs a Python
// with PyTorch (several interpreters may be given: S2_PYTHON=python3,/usr/bin/python3); without one it prints one
// "skipped: PyTorch not installed" line. Not part of `npm test`.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackbone } from '../../src/backbone/onnx-backbone.js';
import { readModelFile } from '../../src/onnx/file.js';
import { metadataOf as modelMetadata } from '../../src/onnx/model.js';
import { maxAbsDiff, rms, ROOT, tempDir } from '../helpers/util.js';

const SCRIPT = join(ROOT, 'scripts', 'export_backbone.py');
const FIXTURES = join(ROOT, 'test', 'export', 'fixtures', 'backbones.py');
const MAKE_MODELS = join(ROOT, 'test', 'export', 'make_models.py');
const TOLERANCE = 1e-4;
const PACKAGES = ['torch', 'torchvision', 'timm', 'transformers', 'PIL', 'numpy', 's2wrapper', 'onnx'] as const;
type Package = (typeof PACKAGES)[number];

interface Interpreter {
  command: string;
  executable: string;
  versions: Partial<Record<Package, string>>;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  interpreter: Interpreter;
}

const PROBE = `
import json, sys
r = {'executable': sys.executable, 'versions': {}}
for m in ${JSON.stringify(PACKAGES)}:
    try:
        mod = __import__(m)
        r['versions'][m] = str(getattr(mod, '__version__', 'yes'))
    except Exception:
        pass
print(json.dumps(r))
`;

const env = { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', PYTHONDONTWRITEBYTECODE: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1' };

function findInterpreters(): Interpreter[] {
  const candidates = (process.env.S2_PYTHON ?? 'python3,/usr/bin/python3')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const found: Interpreter[] = [];
  for (const command of candidates) {
    const r = spawnSync(command, ['-c', PROBE], { encoding: 'utf8', env, timeout: 120000 });
    if (r.status !== 0) continue;
    const info = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { executable: string; versions: Interpreter['versions'] };
    if (found.some((f) => f.executable === info.executable)) continue;
    found.push({ command, executable: info.executable, versions: info.versions });
  }
  return found;
}

let interpreters: Interpreter[] = [];
const results: { name: string; interpreter: string; reference: string; ratios: string[] }[] = [];

function pick(needs: Package[]): Interpreter | undefined {
  return interpreters.find((i) => needs.every((p) => i.versions[p] !== undefined));
}

function python(interp: Interpreter, args: string[], timeoutMs = 900000): Run {
  const r = spawnSync(interp.command, args, { encoding: 'utf8', env, cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', interpreter: interp };
}

function needOrSkip(ctx: Mocha.Context, needs: Package[]): Interpreter {
  const interp = pick(needs);
  if (!interp) {
    console.log(`      skipped: no interpreter with ${needs.join(', ')} (tried ${interpreters.map((i) => i.executable).join(', ')})`);
    ctx.skip();
  }
  return interp;
}

/** Parses the --verify lines: label and error ratio of each, all of which must PASS. */
function verifyLines(out: string): { label: string; ratio: number; reference: string; pass: boolean }[] {
  const lines = out.split('\n').filter((l) => l.startsWith('verify '));
  return lines.map((l) => {
    const m = /^verify (.*?): output .* max error ([0-9.e+-]+|inf) x RMS .* against (s2wrapper|scripts\/s2ref\.py).*: (PASS|FAIL) /.exec(l);
    assert.ok(m, `unparsed verify line: ${l}`);
    return { label: m[1], ratio: Number(m[2]), reference: m[3], pass: m[4] === 'PASS' };
  });
}

function metadataOf(file: string): Record<string, string> {
  return modelMetadata(readModelFile(file).model);
}

function exportAndVerify(ctx: Mocha.Context, name: string, needs: Package[], args: string[], expect: Record<string, string>, images = 0): Run {
  const interp = needOrSkip(ctx, needs);
  const out = join(tempDir('s2-export-'), 'model.onnx');
  const r = python(interp, [SCRIPT, ...args, '--out', out, '--verify']);
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(out), 'no ONNX written');
  const meta = metadataOf(out);
  for (const [k, v] of Object.entries(expect)) assert.equal(meta[k], v, `metadata ${k}`);
  if (meta['s2.kind'] === 'convnet') assert.equal(meta['s2.num_prefix_tokens'], undefined, 'a ConvNet has no prefix-token metadata');
  const lines = verifyLines(r.stdout);
  assert.equal(lines.length, 1 + images, `verify lines:\n${r.stdout}`);
  for (const l of lines) {
    assert.ok(l.pass, `${l.label}: FAIL\n${r.stdout}`);
    assert.ok(l.ratio < TOLERANCE, `${l.label}: ${l.ratio}`);
  }
  results.push({
    name,
    interpreter: interp.executable,
    reference: lines[0].reference,
    ratios: lines.map((l) => `${l.label.startsWith('random') ? 'random' : 'image'} ${l.ratio.toExponential(2)}`),
  });
  return r;
}

describe('export_backbone.py (PyTorch → ONNX, verified against the reference S²)', function () {
  this.timeout(1200000);
  let work: string;
  const hf: Record<string, string> = {};
  let photo: string;

  before(function () {
    interpreters = findInterpreters();
    if (!interpreters.some((i) => i.versions.torch !== undefined)) {
      console.log('skipped: PyTorch not installed');
      this.skip();
    }
    interpreters = interpreters.filter((i) => i.versions.torch !== undefined);
    for (const i of interpreters) {
      console.log(
        `      python: ${i.executable} (${Object.entries(i.versions)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
      );
    }
    assert.ok(existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js')), 'run `npm run build` first');
    work = tempDir('s2-export-suite-');
    const maker = pick(['transformers', 'numpy']);
    if (maker) {
      for (const kind of ['clip', 'siglip', 'dinov2-reg', 'convnext']) {
        const dir = join(work, `hf-${kind}`);
        const r = python(maker, [MAKE_MODELS, kind, dir]);
        assert.equal(r.status, 0, r.stderr);
        hf[kind] = dir;
      }
    }
  });

  before(async function () {
    // A photo-like test image (flat regions, hard edges, gradients), written with sharp.
    photo = join(work, 'photo.png');
    const w = 320;
    const h = 240;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        const disc = (x - 130) ** 2 + (y - 110) ** 2 < 70 ** 2;
        const box = x > 180 && x < 300 && y > 120 && y < 220;
        px[o] = disc ? 220 : box ? 40 : 30 + (x >> 2);
        px[o + 1] = disc ? 40 : box ? 200 : 90;
        px[o + 2] = disc ? 40 : box ? 90 : 160 - (y >> 2);
      }
    }
    const sharp = (await import('sharp')).default;
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(photo);
  });

  after(function () {
    if (results.length === 0) return;
    console.log(`\n      ${'family'.padEnd(46)} ${'python'.padEnd(40)} ${'reference'.padEnd(17)} max error / RMS`);
    for (const r of results) console.log(`      ${r.name.padEnd(46)} ${r.interpreter.padEnd(40)} ${r.reference.padEnd(17)} ${r.ratios.join(', ')}`);
  });

  describe('families', function () {
    it('timm ViT (vit_tiny_patch16_224), batch 2, and a photo with timm preprocessing', function () {
      exportAndVerify(
        this,
        'timm vit_tiny_patch16_224',
        ['timm', 'PIL'],
        ['--model', 'timm:vit_tiny_patch16_224', '--no-pretrained', '--scales', '1,2', '--verify-batch', '2', '--verify-image', photo, '--preprocess', 'timm'],
        { 's2.kind': 'vit', 's2.image_size': '224', 's2.num_prefix_tokens': '1' },
        1,
      );
    });

    it('timm DINOv2-style ViT with 4 registers (vit_small_patch14_reg4_dinov2 at 224)', function () {
      exportAndVerify(
        this,
        'timm vit_small_patch14_reg4_dinov2',
        ['timm'],
        ['--model', 'timm:vit_small_patch14_reg4_dinov2', '--no-pretrained', '--image-size', '224', '--img-sizes', '224,448'],
        { 's2.kind': 'vit', 's2.image_size': '224', 's2.num_prefix_tokens': '5', 's2.mean': '0.485,0.456,0.406' },
      );
    });

    it('timm ConvNet stage (convnext_nano, --output stage:2)', function () {
      exportAndVerify(
        this,
        'timm convnext_nano stage 2',
        ['timm'],
        ['--model', 'timm:convnext_nano', '--no-pretrained', '--output', 'stage:2', '--scales', '1,2'],
        { 's2.kind': 'convnet', 's2.image_size': '224' },
      );
    });

    it('torchvision ConvNet (resnet18) and a photo resized and centre-cropped', function () {
      exportAndVerify(
        this,
        'torchvision resnet18',
        ['torchvision', 'PIL'],
        ['--model', 'torchvision:resnet18', '--no-pretrained', '--verify-image', photo, '--preprocess', 'crop'],
        { 's2.kind': 'convnet', 's2.image_size': '224' },
        1,
      );
    });

    it('torchvision ConvNet with dynamic size: any-shape S² (pad) on a 200×300 input', function () {
      exportAndVerify(
        this,
        'torchvision resnet18 dynamic, pad 200x300',
        ['torchvision'],
        ['--model', 'torchvision:resnet18', '--no-pretrained', '--dynamic-size', '--split-mode', 'pad', '--max-split-size', '224', '--verify-size', '200x300'],
        { 's2.kind': 'convnet' },
      );
    });

    it('Hugging Face CLIPVisionModel folder (CLIP-style tower), batch 2, scales 1,2,3, project reference', function () {
      if (!hf.clip) needOrSkip(this, ['transformers']);
      exportAndVerify(
        this,
        'HF CLIPVisionModel',
        ['transformers'],
        ['--hf-dir', hf.clip, '--scales', '1,2,3', '--verify-batch', '2', '--reference', 'project'],
        { 's2.kind': 'vit', 's2.num_prefix_tokens': '1', 's2.mean': '0.481455,0.457827,0.408211' },
      );
    });

    it('Hugging Face SiglipVisionModel folder (SigLIP-style tower), dynamic size, a photo through its image processor', function () {
      if (!hf.siglip) needOrSkip(this, ['transformers']);
      exportAndVerify(
        this,
        'HF SiglipVisionModel dynamic',
        ['transformers', 'PIL'],
        ['--hf-dir', hf.siglip, '--dynamic-size', '--img-sizes', '224,320', '--max-split-size', '224', '--verify-image', photo, '--preprocess', 'hf'],
        { 's2.kind': 'vit', 's2.num_prefix_tokens': '0', 's2.mean': '0.5,0.5,0.5' },
        1,
      );
    });

    it('Hugging Face Dinov2WithRegistersModel folder (CLS + 4 registers)', function () {
      if (!hf['dinov2-reg']) needOrSkip(this, ['transformers']);
      exportAndVerify(
        this,
        'HF Dinov2WithRegistersModel',
        ['transformers'],
        ['--hf-dir', hf['dinov2-reg'], '--img-sizes', '224,448,672', '--max-split-size', '224'],
        { 's2.kind': 'vit', 's2.num_prefix_tokens': '5' },
      );
    });

    it('Hugging Face ConvNextModel folder (a ConvNet as bchw)', function () {
      if (!hf.convnext) needOrSkip(this, ['transformers']);
      exportAndVerify(this, 'HF ConvNextModel', ['transformers'], ['--hf-dir', hf.convnext, '--scales', '1,2'], { 's2.kind': 'convnet' });
    });

    it('MODULE:FUNCTION (a plain PyTorch ViT with 2 registers, forward_features)', function () {
      exportAndVerify(
        this,
        'module:function tiny ViT + 2 registers',
        [],
        ['--model', `${FIXTURES}:tiny_vit`, '--kwargs', '{"registers": 2}', '--image-size', '64', '--scales', '1,2,3'],
        { 's2.kind': 'vit', 's2.image_size': '64', 's2.num_prefix_tokens': '3' },
      );
    });

    it('DINOv2 from a local hub checkout (S2_DINOV2_HUB) with a training checkpoint (teacher / backbone. keys)', function () {
      const hub = process.env.S2_DINOV2_HUB;
      if (!hub) {
        console.log('      skipped: S2_DINOV2_HUB does not name a DINOv2 checkout');
        this.skip();
      }
      const interp = needOrSkip(this, ['numpy']);
      const ckpt = join(tempDir('s2-dinov2-'), 'teacher.pth');
      const save = python(interp, [
        '-c',
        `import torch; torch.manual_seed(3); m = torch.hub.load(${JSON.stringify(hub)}, 'dinov2_vits14_reg', source='local', pretrained=False); ` +
          `torch.save({'teacher': {'backbone.' + k: v for k, v in m.state_dict().items()}}, ${JSON.stringify(ckpt)})`,
      ]);
      assert.equal(save.status, 0, save.stderr);
      exportAndVerify(
        this,
        'DINOv2 hub dinov2_vits14_reg + checkpoint',
        ['numpy'],
        ['--model', 'dinov2:dinov2_vits14_reg', '--hub-dir', hub, '--checkpoint', ckpt, '--img-sizes', '224,448'],
        { 's2.kind': 'vit', 's2.image_size': '224', 's2.num_prefix_tokens': '5' },
      );
    });

    it('the installed s2wrapper as the reference', function () {
      exportAndVerify(
        this,
        'tiny-test against the installed s2wrapper',
        ['s2wrapper'],
        ['--model', 'tiny-test', '--reference', 's2wrapper', '--scales', '1,2,3', '--verify-batch', '2'],
        { 's2.kind': 'vit', 's2.num_prefix_tokens': '1' },
      );
    });
  });

  describe('checkpoints', function () {
    it('--checkpoint loads the weights (wrapped in state_dict with a module. prefix): the export does not depend on the seed', async function () {
      const interp = needOrSkip(this, ['numpy']);
      const dir = tempDir('s2-ckpt-');
      const ckpt = join(dir, 'ft.pth');
      const save = python(interp, [
        '-c',
        `import sys, torch; sys.path.insert(0, ${JSON.stringify(join(ROOT, 'test', 'export', 'fixtures'))}); import backbones; ` +
          `torch.manual_seed(7); m = backbones.tiny_vit(registers=1); ` +
          `torch.save({'epoch': 3, 'state_dict': {'module.' + k: v for k, v in m.state_dict().items()}}, ${JSON.stringify(ckpt)})`,
      ]);
      assert.equal(save.status, 0, save.stderr);
      const files: Record<string, string> = {};
      for (const [name, extra] of [
        ['seed0', ['--checkpoint', ckpt, '--seed', '0']],
        ['seed1', ['--checkpoint', ckpt, '--seed', '1']],
        ['random', ['--seed', '0']],
      ] as const) {
        files[name] = join(dir, `${name}.onnx`);
        const r = python(interp, [
          SCRIPT,
          '--model',
          `${FIXTURES}:tiny_vit`,
          '--kwargs',
          '{"registers": 1}',
          '--image-size',
          '64',
          '--out',
          files[name],
          ...extra,
          ...(name === 'seed1' ? ['--verify'] : []),
        ]);
        assert.equal(r.status, 0, r.stderr);
        if (name === 'seed1')
          assert.ok(
            verifyLines(r.stdout).every((l) => l.pass),
            r.stdout,
          );
      }
      const x = { dims: [1, 3, 64, 64], data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37)) };
      const outs: Record<string, Float32Array> = {};
      for (const [name, file] of Object.entries(files)) {
        const b = await OnnxBackbone.load(file);
        outs[name] = (await b.forward({ dims: x.dims, data: x.data.slice() })).data; // forward may take over the buffer
        await b.release();
      }
      assert.ok(maxAbsDiff(outs.seed0, outs.seed1) === 0, 'the checkpoint weights should make the seed irrelevant');
      assert.ok(maxAbsDiff(outs.seed0, outs.random) > 0.1 * rms(outs.random), 'the checkpoint should change the weights');
    });

    it('a checkpoint that does not fit is one line naming the keys, exit 2, and no output file', function () {
      const interp = needOrSkip(this, []);
      const dir = tempDir('s2-ckpt-');
      const ckpt = join(dir, 'other.pth');
      const save = python(interp, ['-c', `import torch; torch.save({'proj.weight': torch.zeros(2, 2)}, ${JSON.stringify(ckpt)})`]);
      assert.equal(save.status, 0, save.stderr);
      const out = join(dir, 'x.onnx');
      const r = python(interp, [SCRIPT, '--model', `${FIXTURES}:tiny_vit`, '--image-size', '64', '--checkpoint', ckpt, '--out', out]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^export_backbone: --checkpoint .*other\.pth does not fit the model: \d+ missing keys: .*\n$/);
      assert.deepEqual(readdirSync(dir).sort(), ['other.pth']);
    });
  });

  describe('failures', function () {
    it('--verify reports FAIL (exit 1) when the ONNX differs from PyTorch (a traced data-dependent branch)', function () {
      const interp = needOrSkip(this, ['numpy']);
      const out = join(tempDir('s2-export-'), 'branchy.onnx');
      const r = python(interp, [SCRIPT, '--model', `${FIXTURES}:branchy`, '--image-size', '32', '--out', out, '--verify']);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const [line] = verifyLines(r.stdout);
      assert.equal(line.pass, false);
      assert.ok(line.ratio > 1e-2, String(line.ratio));
    });

    it('a missing torch is one line naming it, exit 2, no traceback', function () {
      const interp = needOrSkip(this, []);
      // -S: without site-packages, where torch lives.
      const r = python(interp, ['-S', SCRIPT, '--model', 'timm:resnet18', '--no-pretrained', '--out', join(tempDir(), 'x.onnx')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^export_backbone: torch is not installed for \S+; exporting needs it \(pip install torch\)\n$/);
    });

    for (const [pkg, args] of [
      ['timm', ['--model', 'timm:resnet18', '--no-pretrained']],
      ['transformers', ['--hf-dir', ROOT]],
    ] as const) {
      it(`a missing ${pkg} is one line naming it, exit 2`, function () {
        const interp = interpreters.find((i) => i.versions[pkg] === undefined);
        if (!interp) {
          console.log(`      skipped: every interpreter has ${pkg}`);
          this.skip();
        }
        const r = python(interp, [SCRIPT, ...args, '--out', join(tempDir(), 'x.onnx')]);
        assert.equal(r.status, 2);
        assert.equal(r.stderr.split('\n').length, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`^export_backbone: \\S+ is not installed for \\S+.*${pkg === 'timm' ? 'timm' : 'transformers'}`));
      });
    }

    it('--dynamic-size on a graph that keeps its traced size is an error, and leaves no file', function () {
      const interp = needOrSkip(this, ['timm']);
      const dir = tempDir('s2-export-');
      const r = python(interp, [SCRIPT, '--model', 'timm:vit_tiny_patch16_224', '--no-pretrained', '--dynamic-size', '--out', join(dir, 'v.onnx')]);
      if (r.status === 0) {
        // A torch whose exporter follows the size: then the graph must really be dynamic.
        assert.match(r.stdout, /dynamic height\/width/);
        return;
      }
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^export_backbone: --dynamic-size: the exported graph does not follow the input size/);
      assert.deepEqual(readdirSync(dir), []);
    });

    it('bad flags are one line, exit 2', function () {
      const interp = needOrSkip(this, []);
      for (const [args, re] of [
        [['--model', 'nope', '--out', 'x.onnx'], /--model nope: expected timm:NAME/],
        [['--model', 'tiny-test', '--output', 'middle', '--out', 'x.onnx'], /--output middle: expected last, layer:NAME or stage:N/],
        [['--model', `${FIXTURES}:not_a_module`, '--image-size', '32', '--out', 'x.onnx'], /returned a int, not a torch\.nn\.Module/],
        [['--model', `${FIXTURES}:tiny_vit`, '--image-size', '64', '--output', 'layer:nowhere', '--out', 'x.onnx'], /has no submodule 'nowhere'/],
        [['--model', 'tiny-test', '--verify', '--scales', 'a,b', '--out', 'x.onnx'], /--scales a,b: expected numbers/],
      ] as const) {
        const r = python(interp, [SCRIPT, ...args]);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr.split('\n').length, 2, r.stderr);
        assert.match(r.stderr, re);
      }
      assert.ok(!existsSync(join(ROOT, 'x.onnx')));
    });
  });
});
