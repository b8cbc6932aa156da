// The policy head: binding by name, shape checks, LeRobot-style normalisation around the model, chunk shapes.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxGraph } from '../src/onnx/builder.js';
import { buildLinearPolicy } from '../src/models/policy.js';
import { PolicyHead } from '../src/policy/head.js';
import { normalizeInPlace, parseStats, unnormalizeInPlace } from '../src/policy/stats.js';
import { tempDir } from './helpers/util.js';

describe('policy head', () => {
  const dir = tempDir('s2-policy-');
  // features 3, state 2, chunk 2, action 2: W is 5×4, row-major.
  const weight = Float32Array.from({ length: 20 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  const bias = Float32Array.of(0.1, -0.2, 0.3, -0.4);
  const model = join(dir, 'linear.onnx');
  writeFileSync(model, buildLinearPolicy({ featureDim: 3, stateDim: 2, chunk: 2, actionDim: 2, weight, bias }).serialize());
  const stats = join(dir, 'linear.stats.json');
  writeFileSync(
    stats,
    JSON.stringify({
      'observation.features': { mean: [1, 2, 3], std: [2, 2, 2] },
      'observation.state': { min: [-1, 0], max: [1, 4] },
      action: { mean: [0.5, -0.5], std: [3, 0.1] },
    }),
  );

  it('computes normalise → model → unnormalise', async () => {
    const head = await PolicyHead.load({ model, stats, featuresInput: 'features', stateInput: 'state' });
    assert.deepEqual(head.shape, { featureDim: 3, stateDim: 2, chunk: 2, actionDim: 2 });
    const f = Float32Array.of(3, 0, 5);
    const s = Float32Array.of(0.5, 1);
    const out = await head.act(f, s);
    const x = [(3 - 1) / 2, (0 - 2) / 2, (5 - 3) / 2, (2 * (0.5 + 1)) / 2 - 1, (2 * (1 - 0)) / 4 - 1];
    for (let j = 0; j < 4; j++) {
      let y = bias[j];
      for (let i = 0; i < 5; i++) y += x[i] * weight[i * 4 + j];
      const d = j % 2;
      const expected = y * ([3, 0.1][d] + 1e-8) + [0.5, -0.5][d];
      assert.ok(Math.abs(out[j] - expected) < 1e-4, `action ${j}: ${out[j]} vs ${expected}`);
    }
    assert.deepEqual([...f], [3, 0, 5], 'inputs are not modified');
    await head.release();
  });

  it('names unbound or unknown inputs, outputs and mismatched statistics', async () => {
    await assert.rejects(PolicyHead.load({ model, featuresInput: 'features' }), /policy inputs state are not bound/);
    await assert.rejects(
      PolicyHead.load({ model, featuresInput: 'feats', stateInput: 'state' }),
      /policy\.features_input names input 'feats', the model's inputs are: features, state/,
    );
    await assert.rejects(PolicyHead.load({ model, featuresInput: 'features', stateInput: 'state', output: 'act' }), /no output named 'act'/);
    const bad = join(dir, 'bad.stats.json');
    writeFileSync(bad, JSON.stringify({ action: { mean: [0, 0, 0], std: [1, 1, 1] } }));
    await assert.rejects(
      PolicyHead.load({ model, stats: bad, featuresInput: 'features', stateInput: 'state' }),
      /'action' has 3 values, the policy's dimension is 2/,
    );
    await assert.rejects(PolicyHead.load({ model: join(dir, 'none.onnx'), featuresInput: 'f' }), /none\.onnx: no such policy model file/);
    assert.throws(() => parseStats({ action: { mean: [1], std: ['x'] } }, 's.json'), /s\.json: action\.std must be a non-empty array of finite numbers/);
  });

  it('reads [T, D] without a batch axis as a chunk, and [B, D] as one action', async () => {
    const g = new OnnxGraph('chunk_td');
    const x = g.input('features', [4]);
    const w = g.weight(
      'w',
      [4, 6],
      Float32Array.from({ length: 24 }, (_, i) => i / 24),
    );
    g.op('Reshape', [g.op('MatMul', [x, w]), g.ints([3, 2])], {}, 'actions');
    g.output('actions', [3, 2]);
    const td = join(dir, 'td.onnx');
    writeFileSync(td, g.serialize());
    const head = await PolicyHead.load({ model: td, featuresInput: 'features' });
    assert.deepEqual(head.shape, { featureDim: 4, stateDim: 0, chunk: 3, actionDim: 2 });
    assert.equal((await head.act(Float32Array.of(1, 0, 0, 0))).length, 6);
    await head.release();
    const single = join(dir, 'single.onnx');
    writeFileSync(
      single,
      buildLinearPolicy({ featureDim: 2, stateDim: 0, chunk: 1, actionDim: 3, weight: new Float32Array(6), bias: Float32Array.of(1, 2, 3) }).serialize(),
    );
    const h2 = await PolicyHead.load({ model: single, featuresInput: 'features' });
    assert.deepEqual([...(await h2.act(Float32Array.of(0, 0)))], [1, 2, 3]);
    await h2.release();
  });

  it('normalisation round-trips for mean/std and min/max', () => {
    const st = parseStats({ a: { mean: [1, -2], std: [0.5, 3] }, b: { min: [0, -1], max: [10, 1] } }, 'x');
    for (const key of ['a', 'b']) {
      const v = Float32Array.of(0.3, 7, -4, 2);
      const orig = v.slice();
      normalizeInPlace(v, st[key]);
      unnormalizeInPlace(v, st[key]);
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(v[i] - orig[i]) < 1e-5);
    }
  });
});
