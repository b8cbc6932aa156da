// The s2.quantization record of INT8 compiled models: read from the committed fixture that scripts/quantize_int8.py
// wrote (its search repaired the outlier model), checked against onnxruntime-node's own run of the fp32 and INT8
// models, told in one line by inspect, and malformed records refused in one line naming the field. No Python here.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileS2 } from '../src/compile/compile.js';
import { CompiledS2 } from '../src/compile/engine.js';
import { QUANTIZATION_KEY, quantizationInfo, quantizationLine, quantizationWarning, type QuantizationInfo } from '../src/compile/quantization.js';
import { presetNormalization } from '../src/image/normalize.js';
import { decodeModel, encodeModel, metadataOf, metadataProps } from '../src/onnx/model.js';
import type { Tensor } from '../src/s2/tensor.js';
import { simFrames } from '../src/sim/frames.js';
import { ROOT, cli, tempDir } from './helpers/util.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'int8');
const INT8 = join(FIXTURES, 'outlier_s2.int8.onnx');
const BACKBONE = join(FIXTURES, 'vit_outlier.onnx');
const REPAIRED = 'backbone@32x32/block0/fc2/matmul';

/** The fixture's record with `edit` applied, as a model file in a temp folder. */
function withRecord(edit: (record: string) => string): string {
  const model = decodeModel(readFileSync(INT8), INT8);
  const meta = metadataOf(model);
  meta[QUANTIZATION_KEY] = edit(meta[QUANTIZATION_KEY]);
  model.metadataProps = metadataProps(meta);
  const file = join(tempDir('s2-int8-meta-'), 'edited.int8.onnx');
  writeFileSync(file, encodeModel(model));
  return file;
}

const recordOf = (): QuantizationInfo => JSON.parse(metadataOf(decodeModel(readFileSync(INT8), INT8))[QUANTIZATION_KEY]) as QuantizationInfo;

/** Token cosines over channels of two B×N×C feature batches. */
function tokenCosines(a: Tensor, b: Tensor): number[] {
  const c = a.dims[2];
  const out: number[] = [];
  for (let t = 0; t < a.data.length / c; t++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < c; k++) {
      const x = a.data[t * c + k];
      const y = b.data[t * c + k];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out.push(ab / Math.sqrt(aa * bb));
  }
  return out;
}

describe('INT8 record (s2.quantization)', function () {
  this.timeout(60000);

  it('is read from the fixture when the compiled model loads: the outlier product kept in float32, the gate met', async () => {
    const m = await CompiledS2.load(INT8);
    try {
      const q = m.quantization;
      assert.ok(q, 'the INT8 fixture has a record');
      assert.deepEqual(q.excluded, [REPAIRED]);
      assert.equal(q.quantized, 12);
      assert.equal(q.search, 'sensitivity');
      assert.deepEqual(q.gate, { metric: 'token cosine to fp32', percentile: 1, min_cosine: 0.99 });
      assert.ok(q.measured);
      assert.equal(q.measured.frames, 12);
      assert.equal(q.measured.tokens, 12 * 17);
      assert.ok(q.measured.p_cosine >= 0.99 && q.measured.p_cosine <= q.measured.mean_cosine, JSON.stringify(q.measured));
      assert.equal(quantizationWarning(q, INT8), undefined, 'the gate is met: no warning');
    } finally {
      await m.release();
    }
  });

  it('states figures that onnxruntime-node reproduces on the same held-out frames, against the fp32 model compiled here', async () => {
    const { measured } = recordOf();
    assert.ok(measured);
    const fp32Model = await compileS2(BACKBONE, { imgSizes: [32, 64] }, [32, 32]);
    const fp32 = await CompiledS2.fromBytes(fp32Model.bytes, 'fp32');
    const int8 = await CompiledS2.load(INT8);
    try {
      // The frames the tool rendered: sim frames --count 12 --size 32x32 --seed 5000 --normalization imagenet.
      const frames = await simFrames({ count: 12, seed: 5000, size: [32, 32], normalization: presetNormalization('imagenet', 'normalization') });
      const a = await fp32.forward({ dims: frames.dims, data: frames.data.slice() });
      const b = await int8.forward(frames);
      const cos = tokenCosines(a, b).sort((x, y) => x - y);
      const mean = cos.reduce((s, v) => s + v, 0) / cos.length;
      // numpy's linear-interpolation percentile, p1 of 204 tokens.
      const pos = 0.01 * (cos.length - 1);
      const p1 = cos[Math.floor(pos)] + (pos - Math.floor(pos)) * (cos[Math.ceil(pos)] - cos[Math.floor(pos)]);
      assert.equal(cos.length, measured.tokens);
      assert.ok(Math.abs(mean - measured.mean_cosine) < 1e-4, `mean ${mean} vs recorded ${measured.mean_cosine}`);
      assert.ok(Math.abs(p1 - measured.p_cosine) < 1e-3, `p1 ${p1} vs recorded ${measured.p_cosine}`);
      // Really INT8: not the fp32 numbers.
      assert.ok(cos[0] < 0.99999, `lowest cosine ${cos[0]}`);
    } finally {
      await fp32.release();
      await int8.release();
    }
  });

  it('is told in one line by inspect', () => {
    const r = cli(['inspect', '--model', INT8]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('quantized'));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^quantized {2}INT8 \(static\) 12 of 13 weight products \(1 kept in float32: backbone@32x32\/block0\/fc2\/matmul\); token cosine to fp32 p1 0\.99\d\d \(gate ≥ 0\.99\), mean 0\.99\d\d, rel\. error 0\.\d{4} on 12 held-out frames; percentile calibration on 32 frames$/,
    );
    assert.ok(!r.stdout.includes(`metadata   ${QUANTIZATION_KEY}`), 'the record is not repeated as raw metadata');
  });

  it('gives a line without figures for a record that has none', () => {
    const q = recordOf();
    assert.match(
      quantizationLine({ ...q, gate: undefined, measured: undefined }),
      /\(1 kept in float32: [^)]*\); no accuracy gate or figures recorded; percentile calibration/,
    );
    assert.match(quantizationLine({ ...q, measured: undefined }), /; no accuracy gate or figures recorded \(gate p1 ≥ 0\.99, never measured\);/);
  });

  it('gives a line that names what stayed float32, or none', () => {
    const q = recordOf();
    assert.match(quantizationLine(q), /1 kept in float32: backbone@32x32\/block0\/fc2\/matmul/);
    assert.match(quantizationLine({ ...q, quantized: 13, excluded: [] }), /^INT8 \(static\) 13 of 13 weight products \(none kept in float32\)/);
    assert.match(quantizationLine({ ...q, mode: 'dynamic' }), /; activation ranges per run$/);
  });

  it('is absent from a float model', () => {
    assert.equal(quantizationInfo({ 's2.compiled': '{}' }, 'f.onnx'), undefined);
  });

  const malformed: [string, (s: string) => string, RegExp][] = [
    ['not JSON', () => '{"method": ', /^edited\.int8\.onnx: metadata s2\.quantization is not JSON \(/],
    ['a field missing', (s) => JSON.stringify({ ...JSON.parse(s), calibration: undefined }), /s2\.quantization: calibration: /],
    [
      'a cosine out of range',
      (s) => JSON.stringify({ ...JSON.parse(s), measured: { ...(JSON.parse(s) as QuantizationInfo).measured, p_cosine: 7 } }),
      /s2\.quantization: measured\.p_cosine: /,
    ],
    ['an unknown mode', (s) => JSON.stringify({ ...JSON.parse(s), mode: 'int4' }), /s2\.quantization: mode: /],
    ['excluded not a list', (s) => JSON.stringify({ ...JSON.parse(s), excluded: 'fc2' }), /s2\.quantization: excluded: /],
  ];
  for (const [what, edit, message] of malformed) {
    it(`is refused in one line when malformed: ${what}`, async () => {
      const file = withRecord(edit);
      await assert.rejects(CompiledS2.load(file), (e: Error) => {
        assert.equal(e.name, 'ModelError');
        assert.match(e.message.replace(file, 'edited.int8.onnx'), message);
        assert.equal(e.message.split('\n').length, 1);
        return true;
      });
      const r = cli(['inspect', '--model', file]);
      assert.notEqual(r.status, 0);
      const err = r.stderr.trim().split('\n');
      assert.equal(err.length, 1, r.stderr);
      assert.match(err[0], /s2\.quantization/);
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    });
  }
  // Records that do not vouch for the model's accuracy: the model loads (the user chose it), and the warning says why.
  const unvouched: [string, (s: string) => string, RegExp][] = [
    [
      'no gate (a record written before the gate existed)',
      (s) => JSON.stringify({ ...JSON.parse(s), gate: undefined }),
      /^edited\.int8\.onnx: metadata s2\.quantization has no accuracy gate: this INT8 model's features were never compared with fp32 \(re-run scripts\/quantize_int8\.py to measure them\)$/,
    ],
    [
      'no measured figures',
      (s) => JSON.stringify({ ...JSON.parse(s), measured: undefined }),
      /^edited\.int8\.onnx: metadata s2\.quantization has no measured figures: /,
    ],
    [
      'figures below its own gate',
      (s) => JSON.stringify({ ...JSON.parse(s), measured: { ...(JSON.parse(s) as QuantizationInfo).measured, p_cosine: 0.9 } }),
      /^edited\.int8\.onnx: metadata s2\.quantization: measured\.p_cosine 0\.9 is below its own gate 0\.99: this INT8 model's features differ from fp32 more than the gate allows/,
    ],
  ];
  for (const [what, edit, message] of unvouched) {
    it(`loads with a one-line warning when the record has ${what}; inspect prints it`, async () => {
      const file = withRecord(edit);
      const m = await CompiledS2.load(file);
      try {
        assert.ok(m.quantization);
        const w = quantizationWarning(m.quantization, file);
        assert.ok(w !== undefined && !w.includes('\n'));
        assert.match(w.replace(file, 'edited.int8.onnx'), message);
      } finally {
        await m.release();
      }
      const r = cli(['inspect', '--model', file]);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('warning '));
      assert.equal(lines.length, 1, r.stdout);
      assert.match(lines[0].replace(/^warning {4}/, '').replace(file, 'edited.int8.onnx'), message);
    });
  }
});
