// The compiled form of resize + chessboard split on its own: the banded tiles of a resize matrix (tileRows) and the
// crops the emitted operators compute in onnxruntime, against the JavaScript engine's scaleInput + splitChessboard,
// at the cases the banded form has edges: equal size, downscaling, any-shape 'resize' (two resizes folded) and
// 'pad', crops of prime size, one crop, batch 2.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import ort from 'onnxruntime-node';
import { bicubicMatrix, tileRows, tileSizeFor, type Matrix } from '../src/compile/matrices.js';
import { emitCrops, scaleAxisMatrix } from '../src/compile/s2-graph.js';
import { randomBatch } from '../src/compile/engine.js';
import { OnnxGraph } from '../src/onnx/builder.js';
import { splitChessboard } from '../src/s2/chessboard.js';
import { scaleInput } from '../src/s2/multiscale.js';
import { planScales, type S2Options } from '../src/s2/plan.js';
import type { Tensor } from '../src/s2/tensor.js';

/** The tiles put back into an out×in matrix. */
function untile(t: ReturnType<typeof tileRows>, cols: number): Float64Array {
  const out = new Float64Array(t.tiles * t.tile * cols);
  for (let k = 0; k < t.tiles; k++) {
    assert.ok(t.starts[k] >= 0 && t.starts[k] + t.length <= cols, `window ${k} [${t.starts[k]}, +${t.length}) outside 0..${cols}`);
    for (let o = k * t.tile; o < (k + 1) * t.tile; o++) {
      for (let l = 0; l < t.length; l++) out[o * cols + t.starts[k] + l] = t.weights[o * t.length + l];
    }
  }
  return out;
}

function assertTilesReproduce(m: Matrix, tile: number): void {
  const t = tileRows(m, tile);
  const back = untile(t, m.cols);
  for (let i = 0; i < m.data.length; i++) {
    assert.equal(back[i], Math.fround(m.data[i]), `entry (${Math.floor(i / m.cols)}, ${i % m.cols}) of ${m.rows}×${m.cols}, tile ${tile}`);
  }
}

/** One scale's crops through onnxruntime, from a graph holding only emitCrops. */
async function compiledCrops(input: Tensor, options: S2Options, scale: number): Promise<{ got: Tensor; want: Tensor }> {
  const [B, C, H, W] = input.dims;
  const plan = planScales(input.dims, options);
  const s = plan.scales[scale];
  const g = new OnnxGraph('crops');
  const x = g.input('x', ['batch', C, H, W]);
  let transposed: string | undefined;
  const src = { x, C, H, W, transposed: () => (transposed ??= g.op('Transpose', [x], { perm: [3, 0, 1, 2] })) };
  const mh = scaleAxisMatrix(H, s.size[0], s.splitSize[0], plan.splitMode);
  const mw = scaleAxisMatrix(W, s.size[1], s.splitSize[1], plan.splitMode);
  g.op('Identity', [emitCrops(g, src, mh, mw, s, 's2_test')], {}, 'crops');
  g.output('crops', ['n', C, s.cropSize[0], s.cropSize[1]]);
  const session = await ort.InferenceSession.create(g.serialize());
  try {
    const out = (await session.run({ x: new ort.Tensor('float32', input.data.slice(), [B, C, H, W]) })).crops;
    const want = splitChessboard(scaleInput(input, plan, s), s.numSplit[0], s.numSplit[1]);
    return { got: { dims: out.dims.map(Number), data: out.data as Float32Array }, want };
  } finally {
    await session.release();
  }
}

/** max |got − want| ≤ 1e-5 × RMS(want), the bound the golden tests hold interpolation to. */
function assertCropsClose({ got, want }: { got: Tensor; want: Tensor }, what: string): void {
  assert.deepEqual(got.dims, want.dims, `${what}: dims`);
  let err = 0;
  let ss = 0;
  for (let i = 0; i < want.data.length; i++) {
    err = Math.max(err, Math.abs(got.data[i] - want.data[i]));
    ss += want.data[i] * want.data[i];
  }
  const rms = Math.sqrt(ss / want.data.length);
  assert.ok(err <= 1e-5 * rms, `${what}: max error ${err} > 1e-5 × RMS ${rms}`);
}

describe('compiled resize and split (banded tiles)', () => {
  it('tiles hold every entry of the resize matrices, in windows inside the axis', () => {
    for (const [inSize, outSize, tile] of [
      [224, 448, 32],
      [224, 672, 32],
      [448, 224, 32], // downscale: windows of about 2·32 + 3
      [37, 37, 37], // equal size: the identity
      [20, 60, 5],
      [9, 90, 45], // windows reach both borders
    ]) {
      assertTilesReproduce(bicubicMatrix(inSize, outSize), tile);
    }
    // The second resize and the padding of any-shape splitting, folded into one matrix.
    assertTilesReproduce(scaleAxisMatrix(30, 45, 48, 'resize'), 24);
    assertTilesReproduce(scaleAxisMatrix(30, 45, 48, 'pad'), 16); // the last 3 rows are zero
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 80 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 8 }), (inSize, tile, tiles) =>
        assertTilesReproduce(bicubicMatrix(inSize, tile * tiles), tile),
      ),
      { numRuns: 60, seed: 5 },
    );
  });

  it('reads short windows: per 32 outputs 16 + 4 inputs at 224 → 448, 14 at 224 → 672, 62 + 4 at 448 → 224', () => {
    // 32 outputs span 31/r input steps, plus the 4 taps (3 more inputs) and one for the fractional start.
    assert.equal(tileRows(bicubicMatrix(224, 448), 32).length, 20);
    assert.equal(tileRows(bicubicMatrix(224, 672), 32).length, 14);
    assert.equal(tileRows(bicubicMatrix(448, 224), 32).length, 66);
  });

  it('cuts crops into tiles of the divisor nearest 32', () => {
    assert.deepEqual(
      [224, 32, 14, 37, 60, 336].map((n) => tileSizeFor(n)),
      [32, 32, 14, 37, 30, 28],
    );
  });

  describe('crops equal the JavaScript engine', () => {
    const cases: [string, number[], S2Options, number][] = [
      ['upscale 2×, 2×2 crops', [1, 3, 32, 32], { imgSizes: [32, 64] }, 1],
      ['upscale 3×, 3×3 crops, batch 2', [2, 3, 32, 32], { imgSizes: [32, 96] }, 1],
      ['equal size, one crop', [1, 3, 32, 32], { imgSizes: [32, 64] }, 0],
      ['equal size, 2×2 crops (split only)', [2, 3, 64, 64], { imgSizes: [64], maxSplitSize: 32 }, 0],
      ['downscale, one crop', [2, 3, 48, 48], { imgSizes: [24, 48], maxSplitSize: 24 }, 0],
      ['downscale to 2×2 crops', [1, 3, 80, 80], { imgSizes: [48], maxSplitSize: 24 }, 0],
      ['any-shape resize (two resizes folded), non-square', [2, 3, 30, 40], { imgSizes: [[45, 70]], maxSplitSize: 24, splitMode: 'resize' }, 0],
      ['any-shape pad, non-square', [2, 3, 30, 40], { imgSizes: [[45, 70]], maxSplitSize: 24, splitMode: 'pad' }, 0],
      ['prime crop size 37, 2×3 crops', [1, 3, 20, 30], { imgSizes: [[74, 111]], maxSplitSize: 37, splitMode: 'resize' }, 0],
      ['one input row and column stretched', [1, 2, 1, 1], { imgSizes: [[16, 16]], maxSplitSize: 8, splitMode: 'resize' }, 0],
    ];
    for (const [what, dims, options, scale] of cases) {
      it(what, async () => assertCropsClose(await compiledCrops(randomBatch(dims), options, scale), what));
    }

    it('on generated sizes, both split modes', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            h: fc.integer({ min: 1, max: 40 }),
            w: fc.integer({ min: 1, max: 40 }),
            size: fc.tuple(fc.integer({ min: 4, max: 90 }), fc.integer({ min: 4, max: 90 })),
            split: fc.integer({ min: 4, max: 40 }),
            mode: fc.constantFrom('resize' as const, 'pad' as const),
            batch: fc.integer({ min: 1, max: 2 }),
          }),
          async (p) => {
            const options: S2Options = { imgSizes: [p.size], maxSplitSize: p.split, splitMode: p.mode };
            assertCropsClose(await compiledCrops(randomBatch([p.batch, 3, p.h, p.w]), options, 0), JSON.stringify(p));
          },
        ),
        { numRuns: 40, seed: 21 },
      );
    });
  });
});
