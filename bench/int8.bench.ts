// INT8 benchmark: the ViT-S/16-sized backbone compiled with S² [224, 448], quantized by scripts/quantize_int8.py
// (onnxruntime static quantization, per-channel, calibrated on simulation frames passed through the node's own
// ingestion), against fp32: median time of one base image, and the token cosine of INT8 to fp32 features on
// held-out frames (mean and minimum over tokens). Run with `npm run bench:int8` (needs python3 with onnxruntime).
// BENCH_PRESET picks another backbone, BENCH_CALIB / BENCH_EVAL the frame counts, BENCH_METHOD the calibration.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileLoaded } from '../src/compile/compile.js';
import { CompiledS2 } from '../src/compile/engine.js';
import { presetNormalization } from '../src/image/normalize.js';
import { createIngester } from '../src/image/ingest.js';
import { writeNpy } from '../src/io/npy.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import type { Tensor } from '../src/s2/tensor.js';
import { TabletopSim } from '../src/sim/index.js';

const PRESET = (process.env.BENCH_PRESET ?? 'vit-s16-bench') as PresetName;
const CALIB = Number(process.env.BENCH_CALIB ?? 32);
const EVAL = Number(process.env.BENCH_EVAL ?? 12);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const METHOD = process.env.BENCH_METHOD ?? 'percentile';
const SIZES = [224, 448];
const script = fileURLToPath(new URL('../../scripts/quantize_int8.py', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `count` frames of simulated episodes (expert actions, a new episode every 40 steps), ingested as the node does. */
async function simFrames(count: number, seed: number): Promise<Tensor> {
  const ingester = createIngester({ crop: 'center', resize: 'reference', baseSize: [224, 224], normalization: presetNormalization('imagenet', 'normalization'), maxPixels: 4096 * 4096 });
  const sim = new TabletopSim({ seed });
  const per = 3 * 224 * 224;
  const data = new Float32Array(count * per);
  let episode = 0;
  for (let i = 0; i < count; i++) {
    if (i % 40 === 0 || sim.status.done) sim.reset(seed + episode++);
    const r = await ingester.ingest(sim.render(), 'raw');
    if (!r.ok) throw new Error(`sim frame rejected: ${r.detail}`);
    data.set(r.base.data, i * per);
    // A few steps between frames, so that the frames differ.
    for (let k = 0; k < 3 && !sim.status.done; k++) sim.step(sim.expertAction());
  }
  return { dims: [count, 3, 224, 224], data };
}

const dir = mkdtempSync(join(tmpdir(), 's2-int8-'));
const backboneFile = join(dir, `${PRESET}.onnx`);
writePresetModel(PRESET, backboneFile);
const bb = await OnnxBackbone.load(backboneFile);
const compiled = await compileLoaded(bb, { imgSizes: SIZES }, [224, 224]);
await bb.release();
const fp32File = join(dir, 's2_fp32.onnx');
writeFileSync(fp32File, compiled.bytes);
const calib = await simFrames(CALIB, 1000);
const evalFrames = await simFrames(EVAL, 5000);
writeNpy(join(dir, 'calib.npy'), calib);

console.log(`INT8 benchmark: ${PRESET}, S² [${SIZES.join(', ')}] compiled, ${CALIB} calibration and ${EVAL} held-out simulation frames, ${METHOD} calibration`);
const t0 = performance.now();
const q = spawnSync('python3', [script, '--model', fp32File, '--calibration', join(dir, 'calib.npy'), '--out', join(dir, 's2_int8.onnx'), '--method', METHOD], { encoding: 'utf8' });
if (q.status !== 0) {
  console.error(`quantization failed (status ${q.status}):\n${q.stderr}`);
  process.exit(1);
}
console.log(`  ${q.stdout.trim()} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

const fp32 = await CompiledS2.load(fp32File);
const int8 = await CompiledS2.load(join(dir, 's2_int8.onnx'));
const per = 3 * 224 * 224;
const frame = (i: number): Tensor => ({ dims: [1, 3, 224, 224], data: evalFrames.data.slice(i * per, (i + 1) * per) });

// Token cosine of INT8 to fp32 over every token of every held-out frame.
const cosines: number[] = [];
for (let i = 0; i < EVAL; i++) {
  const a = await fp32.forward(frame(i));
  const b = await int8.forward(frame(i));
  const [, n, c] = a.dims;
  for (let t = 0; t < n; t++) {
    let ab = 0;
    let aa = 0;
    let bb2 = 0;
    for (let k = 0; k < c; k++) {
      const x = a.data[t * c + k];
      const y = b.data[t * c + k];
      ab += x * y;
      aa += x * x;
      bb2 += y * y;
    }
    cosines.push(ab / Math.sqrt(aa * bb2));
  }
}
const meanCos = cosines.reduce((s, v) => s + v, 0) / cosines.length;
const minCos = Math.min(...cosines);

const tf: number[] = [];
const ti: number[] = [];
for (let i = 0; i < 2 + RUNS; i++) {
  const x1 = frame(i % EVAL);
  const x2 = frame(i % EVAL);
  let t = performance.now();
  await fp32.forward(x1);
  const a = performance.now() - t;
  t = performance.now();
  await int8.forward(x2);
  const b = performance.now() - t;
  if (i < 2) continue;
  tf.push(a);
  ti.push(b);
}
await fp32.release();
await int8.release();
const speedup = median(tf) / median(ti);
console.log(`  fp32 S² median ${median(tf).toFixed(1)} ms, INT8 S² median ${median(ti).toFixed(1)} ms: ${speedup.toFixed(2)}× faster (target ≥ 1.8×)`);
console.log(`  token cosine INT8 vs fp32 over ${cosines.length} tokens: mean ${meanCos.toFixed(4)}, min ${minCos.toFixed(4)} (targets ≥ 0.99 / ≥ 0.97)`);
console.log(`  targets: speed ${speedup >= 1.8 ? 'met' : 'not met'}, mean cosine ${meanCos >= 0.99 ? 'met' : 'not met'}, min cosine ${minCos >= 0.97 ? 'met' : 'not met'}`);
