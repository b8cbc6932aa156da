// S² engine benchmark: backbone alone on the exact crops vs the whole multiscaleForward, and where the time goes.
// Run with `npm run bench`. Prints medians; the ratio b/a is the S² overhead (target ≤ 1.05 on 2 CPU cores).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import { multiscaleForward, type S2Timings } from '../src/s2/multiscale.js';
import { planScales, type S2Options } from '../src/s2/plan.js';
import type { Tensor } from '../src/s2/tensor.js';
import { median, planCrops } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const WARMUP = 3;

function randomImage(dims: number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = (s / 4294967296 - 0.5) * 4;
  }
  return { dims, data };
}

async function bench(preset: PresetName, options: S2Options): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 's2-bench-')), `${preset}.onnx`);
  writePresetModel(preset, file);
  const bb = await OnnxBackbone.load(file);
  const input = randomImage([1, 3, 224, 224]);
  const plan = planScales(input.dims, options);
  const layout = await bb.layoutFor(plan.scales[0].cropSize);
  const opts: S2Options = { ...options, outputShape: layout.outputShape, numPrefixToken: layout.numPrefixToken };

  // The exact crops multiscaleForward feeds the backbone, in one batch.
  const cropTensor = planCrops(input, plan);
  const [crops, , ch, cw] = cropTensor.dims;

  const a: number[] = [];
  const b: number[] = [];
  const split = { resize: [] as number[], inference: [] as number[], merge: [] as number[] };
  let outDims: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    // Interleaved, so that drift in machine load hits both measurements alike.
    // forward() hands its buffer to the inference thread, so each run gets its own copy (made before the clock starts).
    const crops: Tensor = { dims: cropTensor.dims, data: cropTensor.data.slice() };
    let t = performance.now();
    await bb.forward(crops);
    const ta = performance.now() - t;
    const timings: S2Timings = { resizeMs: 0, inferenceMs: 0, mergeMs: 0, crops: 0, calls: 0 };
    t = performance.now();
    const out = await multiscaleForward(bb, input, opts, timings);
    const tb = performance.now() - t;
    outDims = out.dims;
    if (i < WARMUP) continue;
    a.push(ta);
    b.push(tb);
    split.resize.push(timings.resizeMs);
    split.inference.push(timings.inferenceMs);
    split.merge.push(timings.mergeMs);
  }
  const ma = median(a);
  const mb = median(b);
  const sizes = plan.scales.map((s) => s.size[0]).join(', ');
  console.log(
    `\n${preset}: input 1×3×224×224, sizes [${sizes}], ${crops} crops of ${ch}×${cw} in 1 call, output [${outDims.join('×')}] (${layout.outputShape})`,
  );
  console.log(`  (a) backbone alone, same crops, one batch   median ${ma.toFixed(1)} ms`);
  console.log(`  (b) multiscaleForward                       median ${mb.toFixed(1)} ms`);
  console.log(`  b/a                                          ${(mb / ma).toFixed(3)}   (target ≤ 1.05), S² work b−a ${(mb - ma).toFixed(1)} ms`);
  console.log(
    `  split of (b): resize+split ${median(split.resize).toFixed(2)} ms | inference ${median(split.inference).toFixed(1)} ms | merge+pool ${median(split.merge).toFixed(2)} ms`,
  );
  await bb.release();
}

console.log(`S² benchmark: ${RUNS} runs after ${WARMUP} warm-up, medians; onnxruntime CPU, default threads`);
// Backbones with the compute of the smallest real ones S² is used with (ViT-S/16, ResNet-18), then small ones
// whose inference is so short that the fixed S² work dominates the ratio.
for (const preset of ['vit-s16-bench', 'convnet-r18-bench', 'vit-bench', 'convnet-bench'] as const) {
  await bench(preset, { imgSizes: [224, 448, 672] });
}
