// Where a compiled S² model spends its time, from onnxruntime's own profile: per preset and size set, the median
// kernel time of every node, summed over the inlined backbone's nodes, the nodes onnxruntime adds (fusions, layout
// reorders; they serve the backbone) and the S² operators (by op type).
// Less sensitive to other load than wall-clock medians: a kernel's time does not include waiting to be scheduled
// between kernels. Run with `npm run build && node dist/bench/compile-profile.bench.js`; BENCH_RUNS (default 20),
// BENCH_PRESETS (default convnet-bench,convnet-r18-bench), BENCH_THREADS.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { compileLoaded } from '../src/compile/compile.js';
import { randomBatch } from '../src/compile/engine.js';
import { writePresetModel } from '../src/models/write.js';
import type { PresetName } from '../src/models/zoo.js';
import { median } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const THREADS = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
const PRESETS = (process.env.BENCH_PRESETS ?? 'convnet-bench,convnet-r18-bench').split(',') as PresetName[];
const SIZES = [
  [224, 448],
  [224, 448, 672],
];

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args: { op_name?: string };
}

console.log(`compiled S² kernel times: median per node over ${RUNS} runs, summed, ms, input 1×3×224×224, ${THREADS ?? 'default'} threads`);
for (const preset of PRESETS) {
  for (const imgSizes of SIZES) {
    const dir = mkdtempSync(join(tmpdir(), 's2-profile-'));
    const file = join(dir, `${preset}.onnx`);
    writePresetModel(preset, file);
    const bb = await OnnxBackbone.load(file);
    const m = await compileLoaded(bb, { imgSizes }, [224, 224]);
    await bb.release();
    const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: join(dir, 'profile') };
    if (THREADS !== undefined) opts.intraOpNumThreads = THREADS;
    const session = await ort.InferenceSession.create(m.bytes, opts);
    const x = randomBatch([1, 3, 224, 224]);
    for (let i = 0; i < RUNS; i++) await session.run({ image: new ort.Tensor('float32', x.data, x.dims) });
    session.endProfiling();
    await session.release();
    const profile = readdirSync(dir).find((f) => f.startsWith('profile'));
    if (!profile) throw new Error(`onnxruntime wrote no profile in ${dir}`);
    const events = JSON.parse(readFileSync(join(dir, profile), 'utf8')) as ProfileEvent[];
    rmSync(dir, { recursive: true, force: true });

    const perNode = new Map<string, { op: string; us: number[] }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      const n = perNode.get(name) ?? { op: e.args.op_name ?? '?', us: [] };
      n.us.push(e.dur);
      perNode.set(name, n);
    }
    let backbone = 0;
    let other = 0;
    const s2 = new Map<string, number>();
    for (const [name, n] of perNode) {
      const ms = median(n.us) / 1000;
      // The S² graph names every node after its output (`matmul_5`, `features`; onnxruntime's fusions append
      // `/…`); inlined backbone nodes carry the backbone prefix (fused ones their first node's name, or its output's,
      // backbone_out_…). Nodes onnxruntime makes itself (`BiasGelu_token_3`, layout reorders) are counted apart.
      if (name.startsWith('backbone')) backbone += ms;
      else if (/^([a-z0-9]+_\d+|features)(\/|$)/.test(name)) s2.set(n.op, (s2.get(n.op) ?? 0) + ms);
      else other += ms;
    }
    const total = [...s2.values()].reduce((a, b) => a + b, 0);
    const ops = [...s2].sort((a, b) => b[1] - a[1]).map(([op, ms]) => `${op} ${ms.toFixed(3)}`);
    console.log(
      `  ${preset} [${imgSizes.join(', ')}]: backbone ${backbone.toFixed(2)}, onnxruntime's own nodes ${other.toFixed(2)}, S² operators ${total.toFixed(3)} (${((100 * total) / (backbone + other)).toFixed(1)} % of the other two): ${ops.join(', ')}`,
    );
  }
}
