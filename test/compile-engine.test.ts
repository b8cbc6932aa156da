// The pipeline's S² engine: compiled by default, equal to the JavaScript engine, one onnxruntime call per camera
// group, and the settings it cannot honour refused in one line.
import { strict as assert } from 'node:assert';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileS2 } from '../src/compile/compile.js';
import { CompiledS2, checkCompiled, randomBatch } from '../src/compile/engine.js';
import { parseConfig, type Config } from '../src/config/config.js';
import { UserError } from '../src/errors.js';
import { buildConvNet } from '../src/models/zoo.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { configToParams, flattenParams, paramsToConfigObject } from '../src/ros/params.js';
import { maxAbsDiff, modelPath, rms, tempDir } from './helpers/util.js';

function config(
  dir: string,
  preset: 'vit-tiny' | 'vit-tiny-b1' | 'convnet-tiny',
  extra: { s2?: Record<string, unknown>; image?: Record<string, unknown>; pool?: string } = {},
): Config {
  copyFileSync(modelPath(preset), join(dir, 'backbone.onnx'));
  return parseConfig(
    {
      backbone: { model: 'backbone.onnx' },
      s2: {
        img_sizes: [
          [48, 64],
          [96, 128],
        ],
        max_split_size: 32,
        ...extra.s2,
      },
      image: { base_size: [48, 64], crop: 'none', ...extra.image },
      cameras: [
        { name: 'a', topic: '/a' },
        { name: 'b', topic: '/b' },
      ],
      features: { pool: extra.pool ?? 'tokens' },
      policy: { model: 'policy.onnx' },
      control: { rate_hz: 10, command_type: 'velocity' },
    },
    join(dir, 'config.yaml'),
    dir,
  );
}

describe('S² engine of the pipeline', () => {
  it("is 'compiled' by default and gives the JavaScript engine's features, both cameras in one onnxruntime call", async () => {
    for (const preset of ['vit-tiny', 'convnet-tiny'] as const) {
      const dir = tempDir();
      const pool = preset === 'vit-tiny' ? 'tokens' : 'mean';
      const compiled = await FeatureExtractor.create(config(dir, preset, { pool }));
      const js = await FeatureExtractor.create(config(dir, preset, { pool, s2: { engine: 'js' } }));
      try {
        assert.equal(compiled.engine, 'compiled');
        assert.equal(js.engine, 'js');
        assert.deepEqual(compiled.layout, js.layout);
        const inputs = [0, 1].map((k) => ({ base: randomBatch([1, 3, 48, 64], 99 + k) }));
        const a = await compiled.extract(inputs.map((i) => ({ base: { dims: i.base.dims, data: i.base.data.slice() } })));
        assert.equal(compiled.timings.calls, 1);
        // 2 cameras × (2 + 3×4 crops) through the one call.
        assert.equal(compiled.timings.crops, 2 * (2 * 2 + 3 * 4));
        const b = await js.extract(inputs);
        for (let cam = 0; cam < 2; cam++) {
          assert.equal(a[cam].length, b[cam].length);
          assert.ok(maxAbsDiff(a[cam], b[cam]) <= 1e-4 * rms(b[cam]), `${preset} camera ${cam}`);
        }
      } finally {
        await compiled.release();
        await js.release();
      }
    }
  });

  it('refuses what the compiled engine cannot honour, naming the key and the way out', async () => {
    const dir = tempDir();
    const refuse = async (c: Config, pattern: RegExp) => {
      await assert.rejects(FeatureExtractor.create(c), (e: Error) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'));
    };
    await refuse(config(dir, 'vit-tiny', { s2: { max_batch: 4 } }), /^s2\.max_batch: .*s2\.engine 'js'/);
    await refuse(config(dir, 'vit-tiny-b1'), /^s2\.engine: .*fixed batch of 1.*s2\.engine 'js'/);
    // The same settings run with the JavaScript engine.
    const js = await FeatureExtractor.create(config(dir, 'vit-tiny-b1', { s2: { engine: 'js', max_batch: 4 } }));
    assert.equal(js.engine, 'js');
    await js.release();
  });

  it('the self-check detects a model that does not compute the S² of the backbone', async () => {
    // Compiled from one backbone, checked against another with the same output shape.
    const m = await compileS2(modelPath('convnet-tiny'), { imgSizes: [32, 64], maxSplitSize: 32 }, [32, 32]);
    const engine = await CompiledS2.fromBytes(m.bytes, 'convnet-tiny');
    const other = join(tempDir(), 'scaled.onnx');
    writeFileSync(other, buildConvNet({ stages: [8, 16], dim: 12, seed: 9 }).serialize());
    const bb = await OnnxBackbone.load(other);
    const same = await OnnxBackbone.load(modelPath('convnet-tiny'));
    try {
      const bad = await checkCompiled(engine, bb, m.info.options, 2);
      assert.equal(bad.ok, false);
      assert.ok(bad.maxError > bad.bound);
      const good = await checkCompiled(engine, same, m.info.options, 2);
      assert.equal(good.ok, true, `max error ${good.maxError} > ${good.bound}`);
    } finally {
      await engine.release();
      await bb.release();
      await same.release();
    }
  });

  it('s2.engine round-trips through the ROS parameters and is validated', () => {
    const dir = tempDir();
    const c = config(dir, 'vit-tiny', { s2: { engine: 'js' } });
    const flat = flattenParams(configToParams(c));
    assert.equal(flat.get('s2.engine'), 'js');
    const back = parseConfig(paramsToConfigObject(flat), 'params', dir);
    assert.equal(back.s2.engine, 'js');
    assert.equal(config(dir, 'vit-tiny').s2.engine, 'compiled');
    assert.throws(
      () => config(dir, 'vit-tiny', { s2: { engine: 'gpu' } }),
      (e: Error) => e instanceof UserError && /s2\.engine/.test(e.message),
    );
  });
});
