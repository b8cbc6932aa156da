// scripts/quantize_int8.py on a compiled model: runs where python3 has onnxruntime and onnx (skipped otherwise;
// npm test never needs Python). Checks the QDQ structure, the carried metadata, that onnxruntime-node runs the
// result, and that INT8 tokens stay close to fp32 on the simulation frames it was not calibrated on.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileS2 } from '../src/compile/compile.js';
import { CompiledS2, randomBatch } from '../src/compile/engine.js';
import { readModelFile } from '../src/onnx/file.js';
import { metadataOf } from '../src/onnx/model.js';
import { quantizationInfo, quantizationWarning } from '../src/compile/quantization.js';
import { createIngester } from '../src/image/ingest.js';
import { presetNormalization } from '../src/image/normalize.js';
import { writeNpy } from '../src/io/npy.js';
import type { Tensor } from '../src/s2/tensor.js';
import { TabletopSim } from '../src/sim/index.js';
import { ROOT, modelPath, tempDir } from './helpers/util.js';

const SCRIPT = join(ROOT, 'scripts', 'quantize_int8.py');

function pythonHasQuantization(): boolean {
  const r = spawnSync('python3', ['-c', 'import onnx, onnxruntime.quantization'], { encoding: 'utf8' });
  return r.status === 0;
}

async function simFrames(count: number, seed: number, side: number): Promise<Tensor> {
  const ingester = createIngester({
    crop: 'center',
    resize: 'reference',
    baseSize: [side, side],
    normalization: presetNormalization('imagenet', 'normalization'),
    maxPixels: 4096 * 4096,
  });
  const sim = new TabletopSim({ seed });
  const per = 3 * side * side;
  const data = new Float32Array(count * per);
  for (let i = 0; i < count; i++) {
    if (sim.status.done) sim.reset(seed + i);
    const r = await ingester.ingest(sim.render(), 'raw');
    if (!r.ok) throw new Error(r.detail);
    data.set(r.base.data, i * per);
    for (let k = 0; k < 4 && !sim.status.done; k++) sim.step(sim.expertAction());
  }
  return { dims: [count, 3, side, side], data };
}

describe('INT8 recipe (scripts/quantize_int8.py)', function () {
  this.timeout(180000);

  before(function () {
    if (!pythonHasQuantization()) {
      console.log('      skipped: python3 with onnx and onnxruntime not found');
      this.skip();
    }
  });

  it('quantizes the backbone weights of a compiled model, keeps its metadata, and stays close to fp32', async () => {
    const dir = tempDir('s2-int8-');
    const m = await compileS2(modelPath('vit-tiny'), { imgSizes: [32, 64] }, [32, 32]);
    const fp32File = join(dir, 's2.onnx');
    writeFileSync(fp32File, m.bytes);
    writeNpy(join(dir, 'calib.npy'), await simFrames(16, 300, 32));
    const out = join(dir, 's2.int8.onnx');
    const r = spawnSync('python3', [SCRIPT, '--model', fp32File, '--calibration', join(dir, 'calib.npy'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /backbone weight products quantized/);

    const parts = readModelFile(out).model;
    const ops = (parts.graph?.node ?? []).map((n) => n.opType);
    assert.ok(ops.includes('QuantizeLinear') && ops.includes('DequantizeLinear'), 'QDQ nodes present');
    // The S² resampling products stay float: their matrices are not quantized.
    const quantizedInits = new Set((parts.graph?.initializer ?? []).map((i) => i.name));
    assert.ok(
      [...quantizedInits].some((n) => n.startsWith('backbone/') && n.includes('quantized')),
      'backbone weights quantized',
    );
    assert.ok(![...quantizedInits].some((n) => n.startsWith('s2_') && n.includes('quantized')), 'S² matrices left in float32');
    assert.ok(metadataOf(parts)['s2.compiled'] !== undefined);
    // What the Python tool records, the TypeScript reader takes: the gate met with every product quantized.
    const q = quantizationInfo(metadataOf(parts), out);
    assert.ok(q?.measured && q.excluded.length === 0 && q.measured.p_cosine >= 0.99 && q.measured.frames === 12, JSON.stringify(q));
    assert.equal(quantizationWarning(q, out), undefined);

    const fp32 = await CompiledS2.fromBytes(m.bytes, 'fp32');
    const int8 = await CompiledS2.load(out);
    try {
      const frames = await simFrames(4, 900, 32);
      const a = await fp32.forward({ dims: frames.dims, data: frames.data.slice() });
      const b = await int8.forward(frames);
      assert.deepEqual(a.dims, b.dims);
      const c = a.dims[2];
      let minCos = 1;
      for (let t = 0; t < a.data.length / c; t++) {
        let ab = 0;
        let aa = 0;
        let bb = 0;
        for (let k = 0; k < c; k++) {
          ab += a.data[t * c + k] * b.data[t * c + k];
          aa += a.data[t * c + k] ** 2;
          bb += b.data[t * c + k] ** 2;
        }
        minCos = Math.min(minCos, ab / Math.sqrt(aa * bb));
      }
      assert.ok(minCos > 0.95, `min token cosine ${minCos}`);
      // Not the same numbers: the model really changed.
      assert.ok(a.data.some((v, i) => v !== b.data[i]));
    } finally {
      await fp32.release();
      await int8.release();
    }
  });

  it('refuses a model that is not compiled and frames of the wrong shape, in one line, writing nothing', () => {
    const dir = tempDir('s2-int8-');
    writeNpy(join(dir, 'calib.npy'), randomBatch([2, 3, 16, 16]));
    const out = join(dir, 'q.onnx');
    let r = spawnSync('python3', [SCRIPT, '--model', modelPath('vit-tiny'), '--calibration', join(dir, 'calib.npy'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^quantize_int8: .*not a compiled S² model/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const compiled = join(dir, 's2.onnx');
    assert.equal(
      spawnSync(process.execPath, [join(ROOT, 'bin', 's2-policy.js'), 'compile', '--model', modelPath('vit-tiny'), '--scales', '1,2', '--out', compiled])
        .status,
      0,
    );
    r = spawnSync('python3', [SCRIPT, '--model', compiled, '--calibration', join(dir, 'calib.npy'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /calib\.npy: is float32 \(2, 3, 16, 16\), the model takes float32 N x 3 x 32 x 32/);
    assert.ok(!existsSync(out));
  });
});
