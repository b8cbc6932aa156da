// S² against independent PyTorch golden values: interpolation, the test backbones, and whole S² forwards.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { readNpy } from '../src/io/npy.js';
import { areaResize } from '../src/s2/pool.js';
import { resizeBicubic } from '../src/s2/resize.js';
import { multiscaleForward } from '../src/s2/multiscale.js';
import { multiscaleForwardReference } from '../src/s2/reference.js';
import { assertClose, goldenIndex, goldenOptions, loadGolden, type GoldenS2Case } from './helpers/golden.js';
import { GOLDEN, cli, modelPath, tempDir } from './helpers/util.js';

const index = goldenIndex;
const load = loadGolden;
const toOptions = (o: GoldenS2Case['options']) => goldenOptions(o);

describe('golden values from PyTorch', () => {
  it('has enough cases to mean something', () => {
    assert.ok(index.interp.length >= 10 && index.s2.length >= 10 && index.models.length >= 4);
  });

  describe('interpolation', () => {
    for (const c of index.interp) {
      it(`${c.mode} ${c.name}`, () => {
        const x = load(c.input);
        const y = load(c.output);
        const got = c.mode === 'bicubic' ? resizeBicubic(x, c.size[0], c.size[1]) : areaResize(x, c.size[0], c.size[1]);
        assert.deepEqual(got.dims, y.dims);
        // Interpolation alone is held to a tighter bound than whole S² outputs.
        assertClose(got.data, y.data, c.name, 1e-5);
      });
    }
  });

  describe('project-made backbones match their PyTorch re-implementations', () => {
    for (const c of index.models) {
      it(`${c.preset} on ${c.input}`, async () => {
        const bb = await OnnxBackbone.load(modelPath(c.preset));
        const got = await bb.forward(load(c.input));
        const y = load(c.output);
        assert.deepEqual(got.dims, y.dims);
        assertClose(got.data, y.data, c.preset);
        await bb.release();
      });
    }
  });

  describe('multiscaleForward equals the reference S² wrapper', () => {
    for (const c of index.s2) {
      it(c.name, async () => {
        const bb = await OnnxBackbone.load(modelPath(c.preset));
        const got = await multiscaleForward(bb, load(c.input), toOptions(c.options));
        const y = load(c.output);
        assert.deepEqual(got.dims, y.dims);
        assertClose(got.data, y.data, c.name);
        await bb.release();
      });
    }
  });

  describe('the readable reference steps (src/s2/reference.ts) equal the reference S² wrapper', () => {
    for (const c of index.s2) {
      it(c.name, async () => {
        const bb = await OnnxBackbone.load(modelPath(c.preset));
        const got = await multiscaleForwardReference(bb, load(c.input), toOptions(c.options));
        const y = load(c.output);
        assert.deepEqual(got.dims, y.dims);
        assertClose(got.data, y.data, c.name);
        await bb.release();
      });
    }
  });

  describe('s2-policy features (the CLI) equals the reference S² wrapper', () => {
    for (const c of index.s2) {
      it(c.name, () => {
        const out = join(tempDir(), 'y.npy');
        const o = c.options;
        const args = ['features', '--model', modelPath(c.preset), '--input', join(GOLDEN, c.input), '--out', out];
        if (o.imgSizes) args.push('--img-sizes', o.imgSizes.map((s) => (typeof s === 'number' ? String(s) : `${s[0]}x${s[1]}`)).join(','));
        if (o.scales) args.push('--scales', o.scales.join(','));
        if (o.maxSplitSize !== null) args.push('--max-split-size', String(o.maxSplitSize));
        if (o.splitMode !== null) args.push('--split-mode', o.splitMode);
        if (o.resizeOutputToIdx !== 0) args.push('--resize-output-to-idx', String(o.resizeOutputToIdx));
        // Layout and prefix tokens are left to detection, as a user would.
        const r = cli(args);
        assert.equal(r.status, 0, r.stderr);
        const got = readNpy(out);
        const y = load(c.output);
        assert.deepEqual(got.dims, y.dims);
        assertClose(got.data, y.data, c.name);
      });
    }
  });
});
