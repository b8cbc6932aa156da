// The fused S² path (multiscaleForward) against the readable reference steps (reference.ts), as properties over
// random shapes and options, with a small deterministic JavaScript backbone whose output depends on every pixel,
// position and channel (a misplaced crop, token or channel changes it).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { multiscaleForward, type Backbone } from '../src/s2/multiscale.js';
import { S2OptionError, type S2Options } from '../src/s2/plan.js';
import { areaResize } from '../src/s2/pool.js';
import { multiscaleForwardReference } from '../src/s2/reference.js';
import type { Tensor } from '../src/s2/tensor.js';

/** Area-pool to a grid, mix channels with fixed weights, add a position term, tanh; prefix tokens from the crop mean. */
export class ToyBackbone implements Backbone {
  constructor(
    readonly shape: 'bnc' | 'bchw',
    readonly prefix: number,
    readonly channels: number,
    readonly grid = 3,
  ) {}

  private w(o: number, i: number): number {
    return Math.sin(1.3 * o + 0.7 * i + 0.1);
  }

  forward(crops: Tensor): Promise<Tensor> {
    return Promise.resolve(this.run(crops));
  }

  private run(crops: Tensor): Tensor {
    const [n, c, h, w] = crops.dims;
    const [gh, gw] = this.shape === 'bnc' ? [this.grid, this.grid] : [Math.ceil(h / 4), Math.ceil(w / 4)];
    const pooled = areaResize(crops, gh, gw).data;
    const cells = gh * gw;
    const d = this.channels;
    const cell = (i: number, k: number, o: number) => {
      let v = 0.05 * k - 0.02 * o;
      for (let ch = 0; ch < c; ch++) v += this.w(o, ch) * pooled[(i * c + ch) * cells + k];
      return Math.tanh(v);
    };
    if (this.shape === 'bchw') {
      const out = new Float32Array(n * d * cells);
      for (let i = 0; i < n; i++) for (let o = 0; o < d; o++) for (let k = 0; k < cells; k++) out[(i * d + o) * cells + k] = cell(i, k, o);
      return { dims: [n, d, gh, gw], data: out };
    }
    const t = this.prefix + cells;
    const out = new Float32Array(n * t * d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < this.prefix; j++)
        for (let o = 0; o < d; o++) out[(i * t + j) * d + o] = Math.cos(j + o) * cell(i, 0, o) + cell(i, cells - 1, o) * (j + 1);
      for (let k = 0; k < cells; k++) for (let o = 0; o < d; o++) out[(i * t + this.prefix + k) * d + o] = cell(i, k, o);
    }
    return { dims: [n, t, d], data: out };
  }
}

const sideArb = fc.integer({ min: 8, max: 40 });
const sizeArb = fc.oneof(fc.integer({ min: 8, max: 64 }), fc.tuple(fc.integer({ min: 8, max: 64 }), fc.integer({ min: 8, max: 64 })));

const caseArb = fc.record({
  batch: fc.integer({ min: 1, max: 2 }),
  h: sideArb,
  square: fc.boolean(),
  w: sideArb,
  useScales: fc.boolean(),
  scales: fc.array(fc.constantFrom(0.5, 1, 1.5, 2, 2.5), { minLength: 1, maxLength: 3 }),
  sizes: fc.array(sizeArb, { minLength: 1, maxLength: 3 }),
  maxSplit: fc.option(fc.integer({ min: 8, max: 32 }), { nil: undefined }),
  splitMode: fc.constantFrom(undefined, 'resize' as const, 'pad' as const),
  shape: fc.constantFrom('bnc' as const, 'bchw' as const),
  prefix: fc.integer({ min: 0, max: 2 }),
  idx: fc.nat(2),
  maxBatch: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  seed: fc.integer({ min: 1, max: 1000 }),
});

describe('S² fused path against the reference steps', function () {
  this.timeout(120000);
  let ran = 0;
  let planned = 0;

  it('equal outputs (or the same refusal) on random shapes and options', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (k) => {
        ran++;
        const w = k.square ? k.h : k.w;
        const data = Float32Array.from({ length: k.batch * 3 * k.h * w }, (_, i) => Math.sin(i * 0.37 + k.seed));
        const input: Tensor = { dims: [k.batch, 3, k.h, w], data };
        const n = k.useScales ? k.scales.length : k.sizes.length;
        const o: S2Options = {
          ...(k.useScales ? { scales: k.scales } : { imgSizes: k.sizes }),
          maxSplitSize: k.maxSplit,
          splitMode: k.splitMode,
          outputShape: k.shape,
          numPrefixToken: k.shape === 'bnc' ? k.prefix : 0,
          resizeOutputToIdx: k.idx % n,
          maxBatch: k.maxBatch,
        };
        const backbone = new ToyBackbone(k.shape, o.numPrefixToken ?? 0, 5);
        const fused = await multiscaleForward(backbone, input, o).catch((e: unknown) => e);
        const ref = await multiscaleForwardReference(backbone, input, o).catch((e: unknown) => e);
        if (fused instanceof Error || ref instanceof Error) {
          assert.ok(fused instanceof S2OptionError && ref instanceof S2OptionError, `both refuse: fused ${String(fused)}, reference ${String(ref)}`);
          return;
        }
        planned++;
        const a = fused as Tensor;
        const b = ref as Tensor;
        assert.deepEqual(a.dims, b.dims);
        let worst = 0;
        for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
        assert.ok(worst <= 1e-5, `max difference ${worst}`);
      }),
      { numRuns: 120, seed: 20261201 },
    );
    console.log(`      ${ran} random cases, ${planned} planned and compared, ${ran - planned} refused by both`);
    assert.ok(planned >= ran / 3, 'most generated cases are valid plans');
  });
});
