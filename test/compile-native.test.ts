// The compiled S² model with per-scale inputs (image.resize native): fed the PyTorch-resized scales it reproduces the
// golden cases, it equals the JavaScript engine given the same scale images (several sizes, non-square, splitting,
// padding, two cameras), the node runs it by default with native resize, and compile/inspect/features describe it.
import { strict as assert } from 'node:assert';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileS2 } from '../src/compile/compile.js';
import { CompiledS2, checkCompiled, randomBatch } from '../src/compile/engine.js';
import { parseConfig, type Config } from '../src/config/config.js';
import { buildConvNet } from '../src/models/zoo.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { multiscaleForward } from '../src/s2/multiscale.js';
import { planScales, type S2Options } from '../src/s2/plan.js';
import { resizeBicubic } from '../src/s2/resize.js';
import type { Tensor } from '../src/s2/tensor.js';
import { simConfig } from '../src/sim/closed-loop.js';
import { assertClose, goldenIndex, goldenOptions, loadGolden } from './helpers/golden.js';
import { cli, maxAbsDiff, modelPath, rms, tempDir } from './helpers/util.js';

const copy = (t: Tensor): Tensor => ({ dims: [...t.dims], data: t.data.slice() });

describe('compiled S² model with per-scale inputs (resize native)', function () {
  this.timeout(120_000);

  describe('fed each scale bicubic-resized from the base, reproduces the PyTorch golden cases', () => {
    for (const c of goldenIndex.s2) {
      it(c.name, async () => {
        const x = loadGolden(c.input);
        const m = await compileS2(modelPath(c.preset), goldenOptions(c.options, false), [x.dims[2], x.dims[3]], {}, 'native');
        const engine = await CompiledS2.fromBytes(m.bytes, c.name);
        try {
          assert.equal(engine.resize, 'native');
          // The golden input resized to every scale as the reference does (PyTorch's bicubic, in resize.ts).
          const scales = m.plan.scales.map((s) => resizeBicubic(x, s.size[0], s.size[1]));
          const got = await engine.forward(copy(x), scales);
          const y = loadGolden(c.output);
          assert.deepEqual(got.dims, y.dims);
          assertClose(got.data, y.data, c.name);
        } finally {
          await engine.release();
        }
      });
    }
  });

  // Square and non-square bases, a scale equal to the base and to its split size, any-shape resize and pad, sizes
  // that are not whole crops, three scales; both backbone layouts.
  const plans: { name: string; options: S2Options; base: [number, number] }[] = [
    { name: 'square [32, 64]', options: { imgSizes: [32, 64] }, base: [32, 32] },
    { name: 'scales [1, 2, 3]', options: { scales: [1, 2, 3] }, base: [32, 32] },
    {
      name: 'non-square 48×64, 96×128, crops of 32 (resize)',
      options: {
        imgSizes: [
          [48, 64],
          [96, 128],
        ],
        maxSplitSize: 32,
      },
      base: [48, 64],
    },
    {
      name: 'non-square 48×64, 96×128, crops of 32 (pad), pooled to scale 1',
      options: {
        imgSizes: [
          [48, 64],
          [96, 128],
        ],
        maxSplitSize: 32,
        splitMode: 'pad',
        resizeOutputToIdx: 1,
      },
      base: [48, 64],
    },
    {
      name: 'scales not whole crops, 40×56 and 80×100 (resize)',
      options: {
        imgSizes: [
          [40, 56],
          [80, 100],
        ],
        maxSplitSize: 32,
      },
      base: [48, 64],
    },
  ];
  for (const preset of ['vit-tiny', 'convnet-tiny'] as const) {
    for (const p of plans) {
      it(`equals the JavaScript engine given the same scale images: ${preset}, ${p.name}, batch 1 and 2`, async () => {
        const m = await compileS2(modelPath(preset), p.options, p.base, {}, 'native');
        const engine = await CompiledS2.fromBytes(m.bytes, preset);
        const bb = await OnnxBackbone.load(modelPath(preset));
        try {
          assert.deepEqual(
            engine.model.inputs.map((i) => [i.name, i.dims]),
            m.plan.scales.map((s, i) => [`image_scale${i}`, ['batch', 3, s.size[0], s.size[1]]]),
          );
          for (const batch of [1, 2]) {
            const r = await checkCompiled(engine, bb, m.info.options, batch);
            assert.equal(r.ok, true, `batch ${batch}: max error ${r.maxError} > ${r.bound}`);
          }
          // The scale images are what it uses: images that are not resizes of the base give other features than the
          // base resized inside the model, and the same features as the JavaScript engine given those images.
          const base = randomBatch([2, 3, p.base[0], p.base[1]], 5);
          const scales = m.plan.scales.map((s, i) => randomBatch([2, 3, s.size[0], s.size[1]], 50 + i));
          const got = await engine.forward(copy(base), scales.map(copy));
          const js = await multiscaleForward(bb, base, m.info.options, undefined, scales);
          const fromBase = await multiscaleForward(bb, base, m.info.options);
          assert.ok(maxAbsDiff(got.data, js.data) <= 1e-4 * rms(js.data));
          assert.ok(maxAbsDiff(got.data, fromBase.data) > 0.05 * rms(fromBase.data), 'the scale images must matter');
        } finally {
          await engine.release();
          await bb.release();
        }
      });
    }
  }

  it('refuses scale images of the wrong number or size in one line', async () => {
    const m = await compileS2(modelPath('vit-tiny'), { imgSizes: [32, 64] }, [32, 32], {}, 'native');
    const engine = await CompiledS2.fromBytes(m.bytes, 'native.onnx');
    try {
      const base = randomBatch([1, 3, 32, 32]);
      await assert.rejects(engine.forward(base), /takes one image batch per scale \(1×3×32×32, 1×3×64×64\); 0 given$/);
      await assert.rejects(engine.forward(base, [randomBatch([1, 3, 32, 32]), randomBatch([1, 3, 64, 48])]), /^ModelError: scale 1 image is \[1, 3, 64, 48\]/);
    } finally {
      await engine.release();
    }
  });

  it('the self-check tells a native model of another backbone', async () => {
    const m = await compileS2(modelPath('convnet-tiny'), { imgSizes: [32, 64] }, [32, 32], {}, 'native');
    const engine = await CompiledS2.fromBytes(m.bytes, 'convnet-tiny');
    // Another ConvNet with the same output shape.
    const file = join(tempDir(), 'other.onnx');
    writeFileSync(file, buildConvNet({ stages: [8, 16], dim: 12, seed: 9 }).serialize());
    const other = await OnnxBackbone.load(file);
    try {
      const r = await checkCompiled(engine, other, m.info.options, 2);
      assert.equal(r.ok, false);
      assert.ok(r.maxError > r.bound);
    } finally {
      await engine.release();
      await other.release();
    }
  });
});

function config(dir: string, preset: 'vit-tiny' | 'convnet-tiny', s2: Record<string, unknown>, base: [number, number], pool: string): Config {
  copyFileSync(modelPath(preset), join(dir, 'backbone.onnx'));
  return parseConfig(
    {
      backbone: { model: 'backbone.onnx' },
      s2,
      image: { base_size: base, crop: 'none', resize: 'native' },
      cameras: [
        { name: 'a', topic: '/a' },
        { name: 'b', topic: '/b' },
      ],
      features: { pool },
      policy: { model: 'policy.onnx' },
      control: { rate_hz: 10, command_type: 'velocity' },
    },
    join(dir, 'config.yaml'),
    dir,
  );
}

describe('the node with image.resize native', function () {
  this.timeout(120_000);

  const cases = [
    {
      preset: 'vit-tiny' as const,
      s2: {
        img_sizes: [
          [48, 64],
          [96, 128],
        ],
        max_split_size: 32,
      },
      base: [48, 64] as [number, number],
      pool: 'tokens',
    },
    { preset: 'convnet-tiny' as const, s2: { img_sizes: [32, 64, 96] }, base: [32, 32] as [number, number], pool: 'mean' },
    {
      preset: 'vit-tiny' as const,
      s2: {
        img_sizes: [
          [40, 56],
          [80, 100],
        ],
        max_split_size: 32,
        split_mode: 'pad',
      },
      base: [48, 64] as [number, number],
      pool: 'cls',
    },
  ];
  for (const c of cases) {
    it(`runs the compiled engine by default and gives the JavaScript engine's features for 2 cameras: ${c.preset} ${JSON.stringify(c.s2)}`, async () => {
      const dir = tempDir();
      const compiled = await FeatureExtractor.create(config(dir, c.preset, c.s2, c.base, c.pool));
      const js = await FeatureExtractor.create(config(dir, c.preset, { ...c.s2, engine: 'js' }, c.base, c.pool));
      try {
        assert.equal(compiled.engine, 'compiled');
        assert.equal(compiled.compiled?.resize, 'native');
        assert.equal(js.engine, 'js');
        assert.deepEqual(compiled.layout, js.layout);
        const plan = planScales([1, 3, c.base[0], c.base[1]], { imgSizes: c.s2.img_sizes as [number, number][], maxSplitSize: c.s2.max_split_size });
        const inputs = [0, 1].map((k) => ({
          base: randomBatch([1, 3, c.base[0], c.base[1]], 10 + k),
          scales: plan.scales.map((s, i) => randomBatch([1, 3, s.size[0], s.size[1]], 100 * k + i)),
        }));
        const clone = () => inputs.map((x) => ({ base: copy(x.base), scales: x.scales.map(copy) }));
        const a = await compiled.extract(clone());
        assert.equal(compiled.timings.calls, 1);
        const b = await js.extract(clone());
        for (let cam = 0; cam < 2; cam++) {
          assert.equal(a[cam].length, b[cam].length);
          assert.ok(maxAbsDiff(a[cam], b[cam]) <= 1e-4 * rms(b[cam]), `camera ${cam}: ${maxAbsDiff(a[cam], b[cam])} vs rms ${rms(b[cam])}`);
        }
        // The two cameras' scale images differ, and so do their features: the batch is not mixed up.
        assert.ok(maxAbsDiff(a[0], a[1]) > 1e-3 * rms(a[0]));
      } finally {
        await compiled.release();
        await js.release();
      }
    });
  }

  it('the simulation runs the default engine (compiled) with native resize', () => {
    const c = simConfig(tempDir(), {
      sizes: [
        [240, 320],
        [480, 640],
      ],
    });
    assert.equal(c.s2.engine, 'compiled');
    assert.equal(c.image.resize, 'native');
  });
});

describe('s2-policy compile --resize native', function () {
  this.timeout(120_000);

  it('writes a model with one input per scale, which inspect describes and features refuses in one line', () => {
    const dir = tempDir();
    const out = join(dir, 'native.onnx');
    const r = cli([
      'compile',
      '--model',
      modelPath('vit-tiny'),
      '--img-sizes',
      '48x64,96x128',
      '--max-split-size',
      '32',
      '--input-size',
      '48x64',
      '--resize',
      'native',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^wrote .*native\.onnx: image_scale0 \[batch, 3, 48, 64\], image_scale1 \[batch, 3, 96, 128\] -> features \[batch, 65, 48\] .*checked against the S² engine/,
    );
    const i = cli(['inspect', '--model', out]);
    assert.equal(i.status, 0, i.stderr);
    assert.match(i.stdout, /^compiled {3}S² of .*: input image_scale0 \[batch, 3, 48, 64\], image_scale1 \[batch, 3, 96, 128\] -> features/m);
    assert.match(i.stdout, /^S² input {3}one image per scale \(image\.resize native\), for base images of 48×64/m);
    const f = cli(['features', '--model', out, '--image', join(dir, 'none.png'), '--out', join(dir, 'y.npy')]);
    assert.notEqual(f.status, 0);
    assert.match(f.stderr.trim(), /^s2-policy: features: .*native\.onnx takes one image per scale \(compiled with --resize native\)[^\n]*$/);
    const bad = cli(['compile', '--model', modelPath('vit-tiny'), '--img-sizes', '32,64', '--resize', 'frame', '--out', join(dir, 'x.onnx')]);
    assert.notEqual(bad.status, 0);
    assert.equal(bad.stderr.trim(), "s2-policy: --resize must be reference or native, got 'frame'");
  });
});
