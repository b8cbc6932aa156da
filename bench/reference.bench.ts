// The readable reference steps (src/s2/reference.ts) against the fused multiscaleForward on the same backbone and
// input: what the fusion buys outside inference. Run with `npm run bench:reference`; prints medians side by side.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import { multiscaleForward, type S2Timings } from '../src/s2/multiscale.js';
import type { S2Options } from '../src/s2/plan.js';
import { multiscaleForwardReference } from '../src/s2/reference.js';
import type { Tensor } from '../src/s2/tensor.js';
import { median } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 11);

async function bench(preset: PresetName, options: S2Options): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 's2-bench-')), `${preset}.onnx`);
  writePresetModel(preset, file);
  const bb = await OnnxBackbone.load(file);
  const side = 224;
  const input: Tensor = { dims: [1, 3, side, side], data: Float32Array.from({ length: 3 * side * side }, (_, i) => Math.sin(i * 0.01)) };
  const layout = await bb.layoutFor([side, side]);
  const o: S2Options = { ...options, outputShape: layout.outputShape, numPrefixToken: layout.numPrefixToken };
  const fused: number[] = [];
  const reference: number[] = [];
  const inference: number[] = [];
  const refInf: number[] = [];
  for (let r = 0; r < RUNS + 2; r++) {
    const t: S2Timings = { resizeMs: 0, inferenceMs: 0, mergeMs: 0, crops: 0, calls: 0 };
    let t0 = performance.now();
    await multiscaleForward(bb, input, o, t);
    const f = performance.now() - t0;
    let refInference = 0;
    const timed = {
      forward: async (x: Tensor) => {
        const a = performance.now();
        const y = await bb.forward(x);
        refInference += performance.now() - a;
        return y;
      },
    };
    t0 = performance.now();
    await multiscaleForwardReference(timed, input, o);
    const g = performance.now() - t0;
    if (r >= 2) {
      fused.push(f);
      reference.push(g);
      inference.push(t.inferenceMs);
      refInf.push(refInference);
    }
  }
  const mf = median(fused);
  const mr = median(reference);
  const mi = median(inference);
  const mri = median(refInf);
  console.log(
    `${preset.padEnd(14)} ${JSON.stringify(options.imgSizes).padEnd(16)} fused ${mf.toFixed(1).padStart(7)} ms  reference ${mr.toFixed(1).padStart(7)} ms  ` +
      `outside the backbone: fused ${(mf - mi).toFixed(1)} ms, reference ${(mr - mri).toFixed(1)} ms (backbone: ${mi.toFixed(1)} ms in one call per crop size, ${mri.toFixed(1)} ms in one call per scale)`,
  );
  await bb.release();
}

console.log(`reference steps vs fused multiscaleForward, 224×224 input, medians of ${RUNS} runs`);
await bench('convnet-bench', { imgSizes: [224, 448] });
await bench('vit-bench', { imgSizes: [224, 448] });
await bench('vit-bench', { imgSizes: [224, 448, 672] });
