// Compiled S² benchmark: per preset and size set, side by side in one run, the backbone alone on the exact crops
// (one batch), the JavaScript S² engine (multiscaleForward) and the compiled S² model (one onnxruntime call).
// Run with `npm run bench:compile`. Prints medians; target compiled / backbone ≤ 1.03 on 2 CPU cores.
// BENCH_RUNS sets the timed runs (default 9), BENCH_PRESETS a comma-separated subset, BENCH_THREADS intra-op threads.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileLoaded } from '../src/compile/compile.js';
import { CompiledS2, randomBatch } from '../src/compile/engine.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import { multiscaleForward } from '../src/s2/multiscale.js';
import type { S2Options } from '../src/s2/plan.js';
import type { Tensor } from '../src/s2/tensor.js';
import { median, planCrops } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const WARMUP = 2;
const THREADS = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
const PRESETS = (process.env.BENCH_PRESETS ?? 'vit-s16-bench,convnet-r18-bench,vit-bench,convnet-bench').split(',') as PresetName[];
const SIZES = [
  [224, 448],
  [224, 448, 672],
];

const copy = (t: Tensor): Tensor => ({ dims: t.dims, data: t.data.slice() });

interface Row {
  preset: string;
  sizes: string;
  crops: number;
  backbone: number;
  js: number;
  compiled: number;
  /** Fastest runs: less sensitive to other load on a shared machine than medians. */
  min: { backbone: number; js: number; compiled: number };
}

async function bench(preset: PresetName, imgSizes: number[]): Promise<Row> {
  const file = join(mkdtempSync(join(tmpdir(), 's2-bench-')), `${preset}.onnx`);
  writePresetModel(preset, file);
  const bb = await OnnxBackbone.load(file, { threads: THREADS });
  const options: S2Options = { imgSizes };
  const m = await compileLoaded(bb, options, [224, 224]);
  const compiled = await CompiledS2.fromBytes(m.bytes, `${preset} (compiled)`, { threads: THREADS });
  const opts = m.info.options;
  const plan = m.plan;
  const input = randomBatch([1, 3, 224, 224]);
  // The exact crops both engines feed the backbone, in one batch.
  const cropTensor = planCrops(input, plan);
  const crops = cropTensor.dims[0];

  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    // Interleaved, so that drift in machine load hits the three alike; inputs are copied before the clock starts.
    const x1 = copy(cropTensor);
    let t = performance.now();
    await bb.forward(x1);
    const ta = performance.now() - t;
    t = performance.now();
    await multiscaleForward(bb, input, opts);
    const tb = performance.now() - t;
    const x3 = copy(input);
    t = performance.now();
    await compiled.forward(x3);
    const tc = performance.now() - t;
    if (i < WARMUP) continue;
    a.push(ta);
    b.push(tb);
    c.push(tc);
  }
  await bb.release();
  await compiled.release();
  return {
    preset,
    sizes: `[${imgSizes.join(', ')}]`,
    crops,
    backbone: median(a),
    js: median(b),
    compiled: median(c),
    min: { backbone: Math.min(...a), js: Math.min(...b), compiled: Math.min(...c) },
  };
}

console.log(`compiled S² benchmark: ${RUNS} runs after ${WARMUP} warm-up, medians, input 1×3×224×224, onnxruntime CPU, ${THREADS ?? 'default'} threads`);
const rows: Row[] = [];
for (const preset of PRESETS) {
  for (const sizes of SIZES) {
    const r = await bench(preset, sizes);
    rows.push(r);
    console.log(`  ${r.preset} ${r.sizes}: backbone ${r.backbone.toFixed(1)} ms, JS S² ${r.js.toFixed(1)} ms, compiled S² ${r.compiled.toFixed(1)} ms`);
  }
}
console.log('\nmedians:');
console.log('| backbone | sizes | crops | backbone alone ms | JS S² ms | compiled S² ms | JS / backbone | compiled / backbone |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.preset} | ${r.sizes} | ${r.crops} | ${r.backbone.toFixed(1)} | ${r.js.toFixed(1)} | ${r.compiled.toFixed(1)} | ${(r.js / r.backbone).toFixed(3)} | ${(r.compiled / r.backbone).toFixed(3)} |`,
  );
}
console.log('\nfastest runs (the same runs):');
console.log('| backbone | sizes | backbone alone ms | JS S² ms | compiled S² ms | JS / backbone | compiled / backbone |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const m = r.min;
  console.log(
    `| ${r.preset} | ${r.sizes} | ${m.backbone.toFixed(1)} | ${m.js.toFixed(1)} | ${m.compiled.toFixed(1)} | ${(m.js / m.backbone).toFixed(3)} | ${(m.compiled / m.backbone).toFixed(3)} |`,
  );
}
const worst = Math.max(...rows.map((r) => r.compiled / r.backbone));
console.log(`\nworst compiled / backbone of the medians ${worst.toFixed(3)} (target ≤ 1.03): ${worst <= 1.03 ? 'met' : 'not met'}`);
