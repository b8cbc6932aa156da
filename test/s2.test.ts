// Unit behaviour of the S² steps: crop order, split/merge, prefix averaging, maxBatch and fixed-batch models.
import { strict as assert } from 'node:assert';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { mergeChessboard, splitChessboard } from '../src/s2/chessboard.js';
import { multiscaleForward, type Backbone, type S2Timings } from '../src/s2/multiscale.js';
import { planScales, countCalls, S2OptionError } from '../src/s2/plan.js';
import { areaBounds } from '../src/s2/pool.js';
import { resizeBicubic } from '../src/s2/resize.js';
import type { Tensor } from '../src/s2/tensor.js';
import { modelPath } from './helpers/util.js';

function ramp(dims: number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  return { dims, data };
}

function seeded(dims: number[], seed = 7): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 2147483648 - 0.5;
  }
  return { dims, data };
}

/**
 * A transparent backbone for checking bookkeeping: each crop becomes P prefix tokens holding the crop's call-order
 * index, then one token per 8×8 block holding the block's mean in every channel.
 */
class BlockMeanBackbone implements Backbone {
  seen = 0;
  batches: number[] = [];
  constructor(
    private prefix: number,
    private channels = 2,
  ) {}
  forward(x: Tensor): Promise<Tensor> {
    const [n, c, h, w] = x.dims;
    const g = h / 8;
    const tokens = this.prefix + g * g;
    const out = new Float32Array(n * tokens * this.channels);
    this.batches.push(n);
    for (let b = 0; b < n; b++) {
      const idx = this.seen++;
      for (let p = 0; p < this.prefix; p++) for (let k = 0; k < this.channels; k++) out[(b * tokens + p) * this.channels + k] = idx + p * 1000;
      for (let by = 0; by < g; by++) {
        for (let bx = 0; bx < g; bx++) {
          let s = 0;
          for (let ch = 0; ch < c; ch++)
            for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) s += x.data[((b * c + ch) * h + by * 8 + y) * w + bx * 8 + xx];
          const t = this.prefix + by * g + bx;
          for (let k = 0; k < this.channels; k++) out[(b * tokens + t) * this.channels + k] = s / (c * 64);
        }
      }
    }
    return Promise.resolve({ dims: [n, tokens, this.channels], data: out });
  }
}

describe('S² steps', () => {
  it('orders crops (row, column, image): crop (i, j) of image b at (i·nw + j)·B + b', () => {
    const x = ramp([2, 1, 4, 6]); // 2 images, split 2×3 into 2×2 crops
    const crops = splitChessboard(x, 2, 3);
    assert.deepEqual(crops.dims, [12, 1, 2, 2]);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        for (let b = 0; b < 2; b++) {
          const k = (i * 3 + j) * 2 + b;
          // The crop's top-left pixel is pixel (2i, 2j) of image b.
          assert.equal(crops.data[k * 4], x.data[b * 24 + 2 * i * 6 + 2 * j], `crop ${k}`);
          assert.equal(crops.data[k * 4 + 3], x.data[b * 24 + (2 * i + 1) * 6 + 2 * j + 1], `crop ${k} bottom-right`);
        }
      }
    }
  });

  it('merges crops back exactly (split/merge round trip)', () => {
    const x = seeded([3, 2, 12, 8]);
    for (const [nh, nw] of [
      [1, 1],
      [2, 2],
      [3, 4],
      [6, 2],
    ] as const) {
      const back = mergeChessboard(splitChessboard(x, nh, nw), nh, nw);
      assert.deepEqual(back.dims, x.dims);
      assert.deepEqual(back.data, x.data, `${nh}×${nw}`);
    }
  });

  it('uses the adaptive-pooling cell bounds, also when upsampling', () => {
    assert.deepEqual([...areaBounds(10, 3)], [0, 4, 3, 7, 6, 10]);
    assert.deepEqual([...areaBounds(3, 7)], [0, 1, 0, 1, 0, 2, 1, 2, 1, 3, 2, 3, 2, 3]);
  });

  it('returns the input unchanged for a same-size bicubic resize and preserves constants', () => {
    const x = seeded([1, 2, 5, 7]);
    assert.deepEqual(resizeBicubic(x, 5, 7).data, x.data);
    const c = { dims: [1, 1, 4, 4], data: new Float32Array(16).fill(0.25) };
    for (const v of resizeBicubic(c, 9, 3).data) assert.ok(Math.abs(v - 0.25) < 1e-6);
  });

  it("averages prefix tokens over each scale's crops and concatenates them on channels", async () => {
    const bb = new BlockMeanBackbone(1);
    const out = await multiscaleForward(bb, seeded([2, 3, 16, 16]), { imgSizes: [16, 32, 48], maxSplitSize: 16, numPrefixToken: 1 });
    // Crops in call order: scale 0 → 2 (indices 0,1), scale 1 → 8 (2..9), scale 2 → 18 (10..27).
    // Image b's prefix at scale s is the mean of its crops' indices.
    assert.deepEqual(out.dims, [2, 1 + 4, 6]);
    const expect = (b: number) => [b, b, (2 + b + 4 + b + 6 + b + 8 + b) / 4, (2 + b + 4 + b + 6 + b + 8 + b) / 4];
    for (let b = 0; b < 2; b++) {
      const prefix = [...out.data.subarray(b * 5 * 6, b * 5 * 6 + 6)];
      const s2 = [10, 12, 14, 16, 18, 20, 22, 24, 26].reduce((a, v) => a + v + b, 0) / 9;
      assert.deepEqual(prefix, [...expect(b), s2, s2], `image ${b}`);
    }
  });

  it('places every merged block where the image had it (bnc grid order)', async () => {
    // With an 8-pixel block-mean backbone and no resizing (sizes = input), S² at one scale equals block means.
    const x = seeded([1, 1, 32, 32]);
    const out = await multiscaleForward(new BlockMeanBackbone(0, 1), x, { imgSizes: [32], maxSplitSize: 16 });
    assert.deepEqual(out.dims, [1, 16, 1]);
    for (let by = 0; by < 4; by++) {
      for (let bx = 0; bx < 4; bx++) {
        let s = 0;
        for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) s += x.data[(by * 8 + y) * 32 + bx * 8 + xx];
        assert.ok(Math.abs(out.data[by * 4 + bx] - s / 64) < 1e-6, `block ${by},${bx}`);
      }
    }
  });

  it('gives the same features for every maxBatch, in the expected number of calls', async () => {
    const bb = await OnnxBackbone.load(modelPath('vit-tiny'));
    const x = seeded([2, 3, 32, 32], 11);
    const opts = { imgSizes: [32, 64, 96], numPrefixToken: 1 } as const;
    const t: S2Timings = { resizeMs: 0, inferenceMs: 0, mergeMs: 0, crops: 0, calls: 0 };
    const whole = await multiscaleForward(bb, x, opts, t);
    assert.equal(t.crops, 28);
    assert.equal(t.calls, 1);
    for (const maxBatch of [1, 2, 5, 27]) {
      const part = await multiscaleForward(bb, x, { ...opts, maxBatch }, t);
      assert.equal(t.calls, Math.ceil(28 / maxBatch));
      let err = 0;
      for (let i = 0; i < whole.data.length; i++) err = Math.max(err, Math.abs(whole.data[i] - part.data[i]));
      assert.ok(err < 1e-5, `maxBatch ${maxBatch}: max difference ${err}`);
    }
    await bb.release();
  });

  it('runs a fixed-batch model in a loop with the same results as the dynamic-batch twin', async () => {
    const dyn = await OnnxBackbone.load(modelPath('vit-tiny'));
    const fixed = await OnnxBackbone.load(modelPath('vit-tiny-b1'));
    assert.equal(dyn.fixedBatch, undefined);
    assert.equal(fixed.fixedBatch, 1);
    const x = seeded([1, 3, 32, 32], 5);
    const a = await multiscaleForward(dyn, x, { scales: [1, 2], numPrefixToken: 1 });
    const before = fixed.calls;
    const b = await multiscaleForward(fixed, x, { scales: [1, 2], numPrefixToken: 1 });
    assert.equal(fixed.calls - before, 5);
    assert.equal(countCalls(planScales(x.dims, { scales: [1, 2] }), 1).calls, 5);
    for (let i = 0; i < a.data.length; i++) assert.ok(Math.abs(a.data[i] - b.data[i]) < 1e-5);
    await dyn.release();
    await fixed.release();
  });

  it('groups crops by size: one call per crop size', () => {
    const plan = planScales([1, 3, 48, 48], { imgSizes: [48, 96], maxSplitSize: 32 });
    assert.deepEqual(
      plan.scales.map((s) => s.cropSize),
      [
        [24, 24],
        [32, 32],
      ],
    );
    assert.deepEqual(countCalls(plan), {
      crops: 13,
      calls: 2,
      groups: new Map([
        ['24×24', 4],
        ['32×32', 9],
      ]),
    });
  });

  it('rejects options the reference would reject, naming the option', () => {
    const bad: [number[], Parameters<typeof planScales>[1], RegExp][] = [
      [[1, 3, 32, 48], { scales: [1] }, /not square.*maxSplitSize is required/],
      [[1, 3, 32, 32], {}, /one of scales or imgSizes/],
      [[1, 3, 32, 32], { scales: [1], imgSizes: [32] }, /either scales or imgSizes/],
      [[1, 3, 32, 32], { imgSizes: [51], maxSplitSize: 32 }, /size 51 cannot be cut into 2×2 equal crops/],
      [[1, 3, 32, 32], { scales: [1], outputShape: 'bchw', numPrefixToken: 1 }, /numPrefixToken must be 0/],
      [[1, 3, 32, 32], { scales: [1, 2], resizeOutputToIdx: 2 }, /resizeOutputToIdx 2 is out of range/],
      [[3, 32, 32], { scales: [1] }, /B×C×H×W/],
    ];
    for (const [dims, o, re] of bad)
      assert.throws(
        () => planScales(dims, o),
        (e: unknown) => e instanceof S2OptionError && re.test(e.message),
      );
  });

  it('plans any-shape sizes per axis from scales, as int(side × scale)', () => {
    const plan = planScales([1, 3, 45, 63], { scales: [1, 1.5], maxSplitSize: 32, splitMode: 'pad' });
    assert.deepEqual(
      plan.scales.map((s) => [s.size, s.numSplit, s.splitSize]),
      [
        [
          [45, 63],
          [2, 2],
          [64, 64],
        ],
        [
          [67, 94],
          [3, 3],
          [96, 96],
        ],
      ],
    );
  });
});
