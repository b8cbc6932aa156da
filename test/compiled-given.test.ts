// A compiled S² model given as backbone.model (s2-policy compile, scripts/quantize_int8.py): run as it is when it was
// built for what the config asks, refused in one line naming the key and both values otherwise, and told at
// start-up in the log (an INT8 model with its record, a warning when the record does not vouch for it).
import { strict as assert } from 'node:assert';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileS2 } from '../src/compile/compile.js';
import { CompiledS2, randomBatch } from '../src/compile/engine.js';
import { QUANTIZATION_KEY, quantizationLine, quantizationInfo } from '../src/compile/quantization.js';
import type { CompiledResize } from '../src/compile/s2-graph.js';
import { parseConfig, type Config } from '../src/config/config.js';
import { UserError } from '../src/errors.js';
import { decodeModel, encodeModel, metadataOf, metadataProps } from '../src/onnx/model.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { buildRuntime } from '../src/runtime/build.js';
import type { Tensor } from '../src/s2/tensor.js';
import { ROOT, cli, maxAbsDiff, modelPath, rms, tempDir } from './helpers/util.js';

const INT8 = join(ROOT, 'test', 'fixtures', 'int8', 'outlier_s2.int8.onnx');

function config(dir: string, o: { model: string; s2?: Record<string, unknown>; image?: Record<string, unknown>; pool?: string }): Config {
  return parseConfig(
    {
      backbone: { model: o.model },
      s2: o.s2 ?? {
        img_sizes: [
          [48, 64],
          [96, 128],
        ],
        max_split_size: 32,
      },
      image: { base_size: [48, 64], crop: 'none', ...o.image },
      cameras: [
        { name: 'a', topic: '/a' },
        { name: 'b', topic: '/b' },
      ],
      features: { pool: o.pool ?? 'tokens' },
      policy: { model: 'policy.onnx' },
      control: { rate_hz: 10, command_type: 'velocity' },
    },
    join(dir, 'config.yaml'),
    dir,
  );
}

/** vit-tiny compiled for base 48×64, S² 48×64 + 96×128 in crops of 32, into `dir`. */
async function compiledFile(dir: string, resize: CompiledResize): Promise<string> {
  const file = join(dir, `s2_${resize}.onnx`);
  writeFileSync(
    file,
    (
      await compileS2(
        modelPath('vit-tiny'),
        {
          imgSizes: [
            [48, 64],
            [96, 128],
          ],
          maxSplitSize: 32,
        },
        [48, 64],
        {},
        resize,
      )
    ).bytes,
  );
  return file;
}

const stack = (ts: Tensor[]): Tensor => {
  const per = ts[0].data.length;
  const data = new Float32Array(ts.length * per);
  ts.forEach((t, i) => data.set(t.data, i * per));
  return { dims: [ts.length, ...ts[0].dims.slice(1)], data };
};
const copy = (t: Tensor): Tensor => ({ dims: [...t.dims], data: t.data.slice() });

describe('a compiled S² model as backbone.model', function () {
  this.timeout(120_000);

  for (const resize of ['reference', 'native'] as const) {
    it(`runs as it is when built for the config (image.resize ${resize}): the same features as the model run directly`, async () => {
      const dir = tempDir();
      const file = await compiledFile(dir, resize);
      const ex = await FeatureExtractor.create(config(dir, { model: file, image: { resize } }));
      const direct = await CompiledS2.load(file);
      const plain = join(dir, 'backbone.onnx');
      copyFileSync(modelPath('vit-tiny'), plain);
      const fromPlain = await FeatureExtractor.create(config(dir, { model: plain, image: { resize } }));
      try {
        assert.equal(ex.engine, 'compiled');
        assert.equal(ex.compiled?.model.file, file);
        assert.deepEqual(ex.layout, fromPlain.layout);
        assert.equal(ex.notes.length, 1);
        assert.equal(ex.notes[0].level, 'info');
        assert.match(
          ex.notes[0].text,
          /^S² engine: .*s2_(reference|native)\.onnx is a compiled S² model built for these s2\/image settings; run as it is, without the start-up check against the JavaScript engine \(that needs the plain backbone\)$/,
        );
        assert.deepEqual(fromPlain.notes, []);
        const inputs = [0, 1].map((k) => ({
          base: randomBatch([1, 3, 48, 64], 3 + k),
          scales: resize === 'native' ? [randomBatch([1, 3, 48, 64], 30 + k), randomBatch([1, 3, 96, 128], 40 + k)] : undefined,
        }));
        const clone = () => inputs.map((x) => ({ base: copy(x.base), scales: x.scales?.map(copy) }));
        const got = await ex.features(clone());
        const want = await direct.forward(
          stack(inputs.map((x) => x.base)),
          resize === 'native' ? [0, 1].map((k) => stack(inputs.map((x) => (x.scales as Tensor[])[k]))) : undefined,
        );
        assert.deepEqual(got.dims, want.dims);
        assert.ok(maxAbsDiff(got.data, want.data) <= 1e-6 * rms(want.data), `${maxAbsDiff(got.data, want.data)}`);
        // And what the node compiles from the plain backbone at start-up.
        const start = await fromPlain.features(clone());
        assert.ok(maxAbsDiff(got.data, start.data) <= 1e-4 * rms(start.data));
      } finally {
        await ex.release();
        await direct.release();
        await fromPlain.release();
      }
    });
  }

  it('is refused in one line naming the config key, the config value and the model value when built for other settings', async () => {
    const dir = tempDir();
    const file = await compiledFile(dir, 'reference');
    const sizes = {
      img_sizes: [
        [48, 64],
        [96, 128],
      ],
      max_split_size: 32,
    };
    const cases: [string, Parameters<typeof config>[1], RegExp][] = [
      [
        'base size',
        { model: file, image: { base_size: [32, 32] } },
        /^image\.base_size: 32x32, but \S+s2_reference\.onnx is a compiled S² model built for base images of 48x64 \(/,
      ],
      [
        'resize',
        { model: file, image: { resize: 'native' } },
        /^image\.resize: native, but \S+ is a compiled S² model built for reference \(one base image input\)/,
      ],
      [
        'scale sizes',
        {
          model: file,
          s2: {
            img_sizes: [
              [48, 64],
              [64, 96],
            ],
            max_split_size: 32,
          },
        },
        /^s2\.img_sizes: scale sizes 48x64,64x96, but \S+ .*built for scale sizes 48x64,96x128/,
      ],
      ['scales', { model: file, s2: { scales: [1, 1.5], max_split_size: 32 } }, /^s2\.scales: scale sizes 48x64,72x96, but .*scale sizes 48x64,96x128/],
      ['split size', { model: file, s2: { ...sizes, max_split_size: 16 } }, /^s2\.max_split_size: 16, but .*built for max split size 32/],
      ['split mode', { model: file, s2: { ...sizes, split_mode: 'pad' } }, /^s2\.split_mode: pad, but .*built for split mode resize/],
      ['prefix', { model: file, s2: { ...sizes, num_prefix_token: 0 } }, /^s2\.num_prefix_token: 0, but .*built for 1 prefix tokens/],
      ['output shape', { model: file, s2: { ...sizes, output_shape: 'bchw' } }, /^s2\.output_shape: bchw, but .*built for bnc/],
      ['pooled scale', { model: file, s2: { ...sizes, resize_output_to_idx: 1 } }, /^s2\.resize_output_to_idx: 1, but .*built for pooling to scale 0/],
      ['max batch', { model: file, s2: { ...sizes, max_batch: 4 } }, /^s2\.max_batch: 4, but .*all crops of a size in one pass/],
      [
        'engine',
        { model: file, s2: { ...sizes, engine: 'js' } },
        /^s2\.engine: 'js' runs S² around the plain backbone, and backbone\.model \S+ is a compiled S² model; set s2\.engine 'compiled' or give the plain backbone$/,
      ],
    ];
    for (const [what, o, pattern] of cases) {
      await assert.rejects(FeatureExtractor.create(config(dir, o)), (e: Error) => {
        assert.ok(e instanceof UserError, `${what}: ${e.stack}`);
        assert.match(e.message, pattern, what);
        assert.ok(!e.message.includes('\n'), what);
        return true;
      });
    }
  });

  it('INT8 (the committed fixture): runs as it is, gives what the model gives run directly, and tells its record in one start-up line', async () => {
    const dir = tempDir();
    const c = config(dir, { model: INT8, s2: { img_sizes: [32, 64] }, image: { base_size: 32 }, pool: 'cls' });
    const run = await buildRuntime(c, 'int8 config', { features: true, policy: false, by: 'the test' });
    const direct = await CompiledS2.load(INT8);
    try {
      const ex = run.extractor as FeatureExtractor;
      assert.equal(ex.engine, 'compiled');
      const q = quantizationInfo(metadataOf(decodeModel(readFileSync(INT8), INT8)), INT8);
      assert.ok(q);
      assert.deepEqual(run.notes, [
        {
          level: 'info',
          text: `S² engine: ${INT8} is an INT8 compiled S² model built for these s2/image settings, run as it is (not compared with fp32 at start-up): ${quantizationLine(q)}`,
        },
      ]);
      assert.match(run.notes[0].text, /INT8 \(static\) 12 of 13 weight products .* token cosine to fp32 p1 0\.99\d\d \(gate ≥ 0\.99\)/);
      const inputs = [0, 1].map((k) => ({ base: randomBatch([1, 3, 32, 32], 70 + k) }));
      const got = await ex.extract(inputs.map((x) => ({ base: copy(x.base) })));
      const want = await direct.forward(stack(inputs.map((x) => x.base)));
      // cls pooling: each camera's first token, 2 scales × 32 channels.
      for (let cam = 0; cam < 2; cam++) {
        assert.equal(got[cam].length, 64);
        assert.deepEqual(Array.from(got[cam]), Array.from(want.data.subarray(cam * 17 * 64, cam * 17 * 64 + 64)));
      }
    } finally {
      await run.release();
      await direct.release();
    }
  });

  it('INT8 whose record misses its own gate: starts, with a warning line after the record', async () => {
    const dir = tempDir();
    const model = decodeModel(readFileSync(INT8), INT8);
    const meta = metadataOf(model);
    const record = JSON.parse(meta[QUANTIZATION_KEY]) as { measured: Record<string, number> };
    meta[QUANTIZATION_KEY] = JSON.stringify({ ...record, measured: { ...record.measured, p_cosine: 0.95 } });
    model.metadataProps = metadataProps(meta);
    const file = join(dir, 'below_gate.int8.onnx');
    writeFileSync(file, encodeModel(model));
    const ex = await FeatureExtractor.create(config(dir, { model: file, s2: { img_sizes: [32, 64] }, image: { base_size: 32 }, pool: 'cls' }));
    try {
      assert.deepEqual(
        ex.notes.map((n) => n.level),
        ['info', 'warn'],
      );
      assert.match(ex.notes[1].text, /below_gate\.int8\.onnx: metadata s2\.quantization: measured\.p_cosine 0\.95 is below its own gate 0\.99/);
    } finally {
      await ex.release();
    }
  });

  it('extract prints the INT8 start-up line (stderr), as replay and the node log it', () => {
    const dir = tempDir();
    const demo = join(dir, 'demo');
    assert.equal(cli(['make-demo', '--out', demo, '--duration', '1']).status, 0);
    const yaml = readFileSync(join(demo, 'config.yaml'), 'utf8').replace('model: backbone.onnx', `model: ${INT8}`);
    writeFileSync(join(demo, 'int8.yaml'), yaml);
    const r = cli(['extract', '--bag', join(demo, 'demo.mcap'), '--config', join(demo, 'int8.yaml'), '--out', join(dir, 'features')]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.includes('INT8'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^s2-policy: S² engine: .*outlier_s2\.int8\.onnx is an INT8 compiled S² model .*: INT8 \(static\) 12 of 13 weight products/);
    assert.match(r.stdout, /^extracted \d+ frame groups × 128 features/m);
  });
});
