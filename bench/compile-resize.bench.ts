// The compiled resize + chessboard split alone, in the forms that were measured for it: the banded tiles the
// compiler emits (emitCrops), the dense matrix products and 6-axis transpose it emitted before, onnxruntime's cubic
// Resize, and 4 taps per output as Gather + Mul + ReduceSum. Prints per form the median wall time of a run, the
// kernel time from onnxruntime's profile (each node's median, summed: less disturbed by other load on the machine)
// and the largest difference from the JavaScript engine (scaleInput + splitChessboard) on one 1×3×224×224 image.
// Run with `npm run build && node dist/bench/compile-resize.bench.js`; BENCH_RUNS (default 30), BENCH_THREADS.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { bicubicMatrix, toFloat32 } from '../src/compile/matrices.js';
import { emitCrops, scaleAxisMatrix } from '../src/compile/s2-graph.js';
import { randomBatch } from '../src/compile/engine.js';
import { OnnxGraph } from '../src/onnx/builder.js';
import { bicubicAxis } from '../src/s2/resize.js';
import { splitChessboard } from '../src/s2/chessboard.js';
import { scaleInput } from '../src/s2/multiscale.js';
import { planScales, type ScalePlan } from '../src/s2/plan.js';
import { median } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const THREADS = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
const C = 3;

type Form = (g: OnnxGraph, x: string, inSize: number, s: ScalePlan) => string;

/** The chessboard split of a resized [B, C, sh, sw] image: one 6-axis transpose. */
function split(g: OnnxGraph, y: string, s: ScalePlan): string {
  const [nh, nw] = s.numSplit;
  const [ch, cw] = s.cropSize;
  const six = g.op('Reshape', [y, g.ints([-1, C, nh, ch, nw, cw])]);
  return g.op('Reshape', [g.op('Transpose', [six], { perm: [2, 4, 0, 1, 3, 5] }), g.ints([-1, C, ch, cw])]);
}

const forms: Record<string, Form> = {
  banded: (g, x, n, s) => {
    let t: string | undefined;
    const src = { x, C, H: n, W: n, transposed: () => (t ??= g.op('Transpose', [x], { perm: [3, 0, 1, 2] })) };
    return emitCrops(g, src, scaleAxisMatrix(n, s.size[0], s.splitSize[0], 'resize'), scaleAxisMatrix(n, s.size[1], s.splitSize[1], 'resize'), s, 'b');
  },
  dense: (g, x, n, s) => {
    const m = bicubicMatrix(n, s.size[0]);
    const y = g.op('MatMul', [x, g.weight('rw', [n, s.size[1]], toFloat32(m, true))]);
    return split(g, g.op('MatMul', [g.weight('rh', [s.size[0], n], toFloat32(m)), y]), s);
  },
  'cubic Resize': (g, x, _n, s) => {
    const attrs = { mode: 'cubic', cubic_coeff_a: -0.75, coordinate_transformation_mode: 'half_pixel', exclude_outside: 0 };
    return split(g, g.op('Resize', [x, '', '', g.ints([1, C, s.size[0], s.size[1]])], attrs), s);
  },
  'Gather+Mul+ReduceSum': (g, x, n, s) => {
    const out = s.size[0];
    const t = bicubicAxis(n, out);
    const idx = g.ints(Array.from(t.index));
    let y = g.op('Gather', [x, idx], { axis: 3 });
    y = g.op('Reshape', [y, g.ints([-1, C, n, out, 4])]);
    y = g.op('ReduceSum', [g.op('Mul', [y, g.weight('ww', [out, 4], t.weight)]), g.ints([4])], { keepdims: 0 });
    y = g.op('Reshape', [g.op('Gather', [y, idx], { axis: 2 }), g.ints([-1, C, out, 4, out])]);
    y = g.op('ReduceSum', [g.op('Mul', [y, g.weight('wh', [out, 4, 1], t.weight)]), g.ints([3])], { keepdims: 0 });
    return split(g, y, s);
  },
};

console.log(`compiled resize + split alone: ${RUNS} runs, medians, input 1×3×224×224, onnxruntime CPU, ${THREADS ?? 'default'} threads`);
console.log('| to | crops | form | median ms | kernel ms | max abs. difference from the JS engine |');
console.log('|---|---|---|---|---|---|');

/** Each node's median kernel time in onnxruntime's profile file, summed, ms. */
function kernelTime(file: string): number {
  const perNode = new Map<string, number[]>();
  for (const e of JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number }[]) {
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) perNode.set(e.name, [...(perNode.get(e.name) ?? []), e.dur]);
  }
  return [...perNode.values()].reduce((a, us) => a + median(us), 0) / 1000;
}

for (const [size, crop] of [
  [448, 224],
  [672, 224],
  [112, 112],
]) {
  const input = randomBatch([1, C, 224, 224]);
  const plan = planScales(input.dims, { imgSizes: [size], maxSplitSize: crop });
  const s = plan.scales[0];
  const want = splitChessboard(scaleInput(input, plan, s), s.numSplit[0], s.numSplit[1]).data;
  const sessions = new Map<string, ort.InferenceSession>();
  const dir = mkdtempSync(join(tmpdir(), 's2-resize-bench-'));
  for (const [k, [name, form]] of Object.entries(forms).entries()) {
    const g = new OnnxGraph('crops');
    g.op('Identity', [form(g, g.input('x', ['batch', C, 224, 224]), 224, s)], {}, 'crops');
    g.output('crops', ['n', C, crop, crop]);
    const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: join(dir, `form${k}`) };
    if (THREADS !== undefined) opts.intraOpNumThreads = THREADS;
    sessions.set(name, await ort.InferenceSession.create(g.serialize(), opts));
  }
  const times = new Map<string, number[]>([...sessions.keys()].map((k) => [k, []]));
  const errors = new Map<string, number>();
  for (let r = 0; r < RUNS + 2; r++) {
    // Interleaved, so that drift in machine load hits every form alike.
    for (const [name, session] of sessions) {
      const feed = { x: new ort.Tensor('float32', input.data.slice(), input.dims) };
      const t0 = performance.now();
      const got = (await session.run(feed)).crops.data as Float32Array;
      const dt = performance.now() - t0;
      if (r >= 2) times.get(name)?.push(dt);
      if (r === 0)
        errors.set(
          name,
          got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0),
        );
    }
  }
  for (const [k, [name, session]] of [...sessions].entries()) {
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.startsWith(`form${k}_`));
    const kernel = file === undefined ? NaN : kernelTime(join(dir, file));
    console.log(
      `| ${size} | ${s.numSplit[0]}×${s.numSplit[1]} | ${name} | ${median(times.get(name) ?? []).toFixed(3)} | ${kernel.toFixed(3)} | ${(errors.get(name) ?? NaN).toExponential(1)} |`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
}
