// INT8 benchmark: a backbone compiled with S² [224, 448] (by default the ViT-S/16-sized preset; `--model file.onnx`
// takes any backbone, e.g. the pretrained models/vit_mae_sim), quantized by scripts/quantize_int8.py (onnxruntime
// static quantization, per-channel, calibrated on simulation frames passed through the node's own ingestion, behind
// its accuracy gate on the held-out frames), against fp32: median time of one base image, and the token cosine of
// INT8 to fp32 features on the held-out frames (mean, 1st percentile and minimum over tokens). Run with
// `npm run bench:int8 [-- --model file.onnx]` (needs python3 with onnxruntime). BENCH_PRESET picks another preset,
// BENCH_CALIB / BENCH_EVAL the frame counts, BENCH_METHOD the calibration, BENCH_VARIANTS the variants of
// scripts/quantize_int8.py --mode:--products to compare (default static:weights,static:all,dynamic:weights),
// BENCH_THREADS onnxruntime's intra-op threads (default: its own, all cores; 1 is steadier on a shared machine).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileLoaded } from '../src/compile/compile.js';
import { CompiledS2 } from '../src/compile/engine.js';
import { presetNormalization } from '../src/image/normalize.js';
import { writeNpy } from '../src/io/npy.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import type { Tensor } from '../src/s2/tensor.js';
import { simFrames as framesOfSim } from '../src/sim/frames.js';
import { median } from './common.js';

const { values: flags } = parseArgs({ options: { model: { type: 'string' } } });
const PRESET = (process.env.BENCH_PRESET ?? 'vit-s16-bench') as PresetName;
const CALIB = Number(process.env.BENCH_CALIB ?? 32);
const EVAL = Number(process.env.BENCH_EVAL ?? 12);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const THREADS = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
const METHOD = process.env.BENCH_METHOD ?? 'percentile';
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'static:weights,static:all,dynamic:weights').split(',').map((v) => {
  const [mode, products] = v.split(':');
  if (!['static', 'dynamic'].includes(mode) || !['weights', 'all'].includes(products))
    throw new Error(`BENCH_VARIANTS: '${v}' is not static|dynamic:weights|all`);
  return { mode, products, name: `${mode}, ${products} products` };
});
const SIZES = [224, 448];
const script = fileURLToPath(new URL('../../scripts/quantize_int8.py', import.meta.url));

const simFrames = (count: number, seed: number) =>
  framesOfSim({ count, seed, size: [224, 224], normalization: presetNormalization('imagenet', 'normalization') });

const dir = mkdtempSync(join(tmpdir(), 's2-int8-'));
const backboneFile = flags.model ?? join(dir, `${PRESET}.onnx`);
if (!flags.model) writePresetModel(PRESET, backboneFile);
const NAME = flags.model ? basename(flags.model) : PRESET;
const bb = await OnnxBackbone.load(backboneFile);
const compiled = await compileLoaded(bb, { imgSizes: SIZES }, [224, 224]);
await bb.release();
const fp32File = join(dir, 's2_fp32.onnx');
writeFileSync(fp32File, compiled.bytes);
const calib = await simFrames(CALIB, 1000);
const evalFrames = await simFrames(EVAL, 5000);
writeNpy(join(dir, 'calib.npy'), calib);
writeNpy(join(dir, 'heldout.npy'), evalFrames);

console.log(
  `INT8 benchmark: ${NAME}, S² [${SIZES.join(', ')}] compiled, ${THREADS ?? 'default'} threads, ${CALIB} calibration and ${EVAL} held-out simulation frames, ${METHOD} calibration, variants: ${VARIANTS.map((v) => v.name).join('; ')}`,
);
const int8Files: string[] = [];
const variants: string[] = [];
for (const { mode, products, name } of VARIANTS) {
  const t0 = performance.now();
  const out = join(dir, `s2_int8_${mode}_${products}.onnx`);
  const q = spawnSync(
    'python3',
    [
      script,
      ...['--model', fp32File, '--calibration', join(dir, 'calib.npy'), '--frames', join(dir, 'heldout.npy'), '--out', out],
      ...['--mode', mode, '--method', METHOD, '--products', products],
    ],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    },
  );
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  for (const line of q.stdout.trim().split('\n')) console.log(`  ${line}`);
  if (q.status === 1) {
    // The gate refused every choice: nothing to time for this variant.
    console.log(`  ${name}: ${q.stderr.trim()} (${seconds} s)`);
    continue;
  }
  if (q.status !== 0) {
    console.error(`quantization failed (status ${q.status}, signal ${q.signal}):\n${q.stderr}`);
    process.exit(1);
  }
  console.log(`  (${seconds} s)`);
  int8Files.push(out);
  variants.push(name);
}

const fp32 = await CompiledS2.load(fp32File, { threads: THREADS });
const int8 = await Promise.all(int8Files.map((f) => CompiledS2.load(f, { threads: THREADS })));
const per = 3 * 224 * 224;
const frame = (i: number): Tensor => ({ dims: [1, 3, 224, 224], data: evalFrames.data.slice(i * per, (i + 1) * per) });

/** Token cosine of a model's features to fp32 over every token of every held-out frame: mean and minimum. */
async function cosine(model: CompiledS2): Promise<{ mean: number; p1: number; min: number; tokens: number }> {
  const cos: number[] = [];
  for (let i = 0; i < EVAL; i++) {
    const a = await fp32.forward(frame(i));
    const b = await model.forward(frame(i));
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
      cos.push(ab / Math.sqrt(aa * bb2));
    }
  }
  cos.sort((x, y) => x - y);
  const pos = 0.01 * (cos.length - 1);
  const p1 = cos[Math.floor(pos)] + (pos - Math.floor(pos)) * (cos[Math.ceil(pos)] - cos[Math.floor(pos)]);
  return { mean: cos.reduce((s2, v) => s2 + v, 0) / cos.length, p1, min: cos[0], tokens: cos.length };
}
const cosines: { mean: number; p1: number; min: number; tokens: number }[] = [];
for (const m of int8) cosines.push(await cosine(m));

// Interleaved timing of fp32 and every INT8 variant, one base image per call.
const times: number[][] = [[], ...int8.map(() => [])];
const models = [fp32, ...int8];
for (let i = 0; i < 2 + RUNS; i++) {
  for (let k = 0; k < models.length; k++) {
    const x = frame(i % EVAL);
    const t = performance.now();
    await models[k].forward(x);
    if (i >= 2) times[k].push(performance.now() - t);
  }
}
for (const m of models) await m.release();
const fp32Ms = median(times[0]);
console.log(`  fp32 S² median ${fp32Ms.toFixed(1)} ms (fastest ${Math.min(...times[0]).toFixed(1)} ms)`);
variants.forEach((name, k) => {
  const ms = median(times[k + 1]);
  const speedup = fp32Ms / ms;
  const c = cosines[k];
  console.log(
    `  INT8 (${name}) S² median ${ms.toFixed(1)} ms (fastest ${Math.min(...times[k + 1]).toFixed(1)} ms): ${speedup.toFixed(2)}× faster (target ≥ 1.8×); ` +
      `token cosine to fp32 over ${c.tokens} tokens mean ${c.mean.toFixed(4)}, p1 ${c.p1.toFixed(4)}, min ${c.min.toFixed(4)} (target p1 ≥ 0.99): ` +
      `speed ${speedup >= 1.8 ? 'met' : 'not met'}, p1 ${c.p1 >= 0.99 ? 'met' : 'not met'}`,
  );
});
