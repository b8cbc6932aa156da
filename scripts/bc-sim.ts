// Measures the behaviour-cloning head in the simulation beside the demo's detector head and the linear probe, on the
// same closed-loop seeds: `node dist/scripts/bc-sim.js --head bc|detector|linear [options] --out DIR` prints one JSON
// line per run (success, Wilson 95% interval, training time, demonstrations, where failed episodes ended) and writes
// it to DIR/result.json; `--cache DIR` keeps the recorded demonstrations for later fits. `--head bc` fits by
// `--recipe hindsight` (the default: self-calibrated labels and the detector head's training; `--goal rest|end`,
// `--near-cells`) or `--recipe end-to-end` (keypoint maps and an MLP on the actions: `--keypoints` … `--goal-weight`).
// `--head diagnose --out DIR` reports where the fitted model's keypoints fall against the target on held-out scenes
// (diagnosis only).
// `--head onnx --policy FILE.onnx` runs a head trained elsewhere (fit --head bc, scripts/train_head.py; its
// FILE.stats.json beside it) in the same closed loop.
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/io/atomic.js';
import type { FeatureExtractor } from '../src/pipeline/extractor.js';
import type { BcData } from '../src/policy/bc.js';
import type { PolicyHead } from '../src/policy/head.js';
import { buildRuntime } from '../src/runtime/build.js';
import { evaluateBcHead, keypointsOnTarget, scoreResults, traceFailures, type ClosedLoopScore } from '../src/sim/bc-eval.js';
import { OrtSession } from '../src/backbone/ort-session.js';
import { PROBE_SEED } from '../src/sim/probe.js';
import { TabletopSim } from '../src/sim/tabletop.js';
import { ensureDemoBackbone, ensureDemoModels, runClosedLoop, simConfig, simFrameFeatures, type ClosedLoopProgress } from '../src/sim/closed-loop.js';
import { DEMO_SIZES } from '../src/sim/closed-loop.js';

/** A closed-loop score as every run's result reports it: the rate, its interval, each episode, where failures ended. */
function outcome(s: ClosedLoopScore): Record<string, unknown> {
  return {
    success: `${s.successes}/${s.episodes}`,
    rate: s.success,
    interval: s.interval,
    meanDistance: s.meanDistance,
    seeds: s.results.map((x) => x.seed),
    successes: s.results.map((x) => x.success),
    finalDistances: s.results.map((x) => x.finalDistance),
    failures: traceFailures(s.results),
  };
}

const { values: a } = parseArgs({
  options: {
    head: { type: 'string', default: 'bc' },
    out: { type: 'string' },
    demos: { type: 'string', default: '400' },
    'frame-every': { type: 'string', default: '1' },
    episodes: { type: 'string', default: '50' },
    seed: { type: 'string', default: '0' },
    keypoints: { type: 'string', default: '2' },
    'score-hidden': { type: 'string', default: '0' },
    hidden: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '30' },
    patience: { type: 'string', default: '5' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string', default: '0.01' },
    chunk: { type: 'string', default: '2' },
    'fit-seed': { type: 'string', default: '17' },
    'goal-weight': { type: 'string', default: '0' },
    recipe: { type: 'string', default: 'hindsight' },
    goal: { type: 'string', default: 'rest' },
    'near-cells': { type: 'string' },
    cache: { type: 'string' },
    policy: { type: 'string' },
  },
});
const out = resolve(a.out ?? `out/bc-sim/${a.head}`);
mkdirSync(out, { recursive: true });
const n = (k: keyof typeof a) => Number(a[k]);
const log = (l: string) => console.error(`[${a.head}] ${l}`);
const t0 = performance.now();

/** Demonstrations kept as raw little-endian float32 files, so that several fits can share one recording. */
function saveData(dir: string, d: BcData): void {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'features.f32.tmp'), 'w');
  const bytes = new Uint8Array(d.features.buffer, d.features.byteOffset, d.features.byteLength);
  for (let o = 0; o < bytes.length; o += 1 << 28) writeSync(fd, bytes, o, Math.min(1 << 28, bytes.length - o));
  closeSync(fd);
  const { features: _f, state, actions, episodes, frameOf, ...meta } = d;
  void _f;
  writeFileAtomic(
    join(dir, 'rows.json'),
    JSON.stringify({ meta, state: Array.from(state), actions: Array.from(actions), episodes: Array.from(episodes), frameOf: Array.from(frameOf!) }),
  );
  // Renamed last: a cache folder with 'features.f32' is complete.
  renameSync(join(dir, 'features.f32.tmp'), join(dir, 'features.f32'));
}

function loadData(dir: string): BcData {
  const rows = JSON.parse(readFileSync(join(dir, 'rows.json'), 'utf8')) as {
    meta: Omit<BcData, 'features' | 'state' | 'actions' | 'episodes' | 'frameOf'>;
    state: number[];
    actions: number[];
    episodes: number[];
    frameOf: number[];
  };
  const m = rows.meta;
  const features = new Float32Array(m.frames * m.channels * m.height * m.width);
  const bytes = new Uint8Array(features.buffer);
  const fd = openSync(join(dir, 'features.f32'), 'r');
  for (let o = 0; o < bytes.length;) o += readSync(fd, bytes, o, Math.min(1 << 28, bytes.length - o), o);
  closeSync(fd);
  return {
    ...m,
    features,
    state: Float32Array.from(rows.state),
    actions: Float32Array.from(rows.actions),
    episodes: Int32Array.from(rows.episodes),
    frameOf: Int32Array.from(rows.frameOf),
  };
}

async function baseline(head: 'detector' | 'linear'): Promise<Record<string, unknown>> {
  const demos = n('demos');
  const tm = performance.now();
  const models = await ensureDemoModels(
    out,
    head === 'detector' ? { sizes: DEMO_SIZES, episodes: demos } : { sizes: DEMO_SIZES, head: 'linear', pool: 'grid:16', episodes: demos },
    log,
  );
  const trainSeconds = (performance.now() - tm) / 1000;
  const runtime = await buildRuntime(models.config, `${head} demo config`, { features: true, policy: true, by: 'bc-sim' });
  try {
    const t1 = performance.now();
    const results = await runClosedLoop(models.config, runtime.extractor as FeatureExtractor, runtime.head as PolicyHead, n('episodes'), n('seed'), progress);
    return {
      head,
      demos,
      trainSeconds: models.trainSeconds || trainSeconds,
      summary: models.summary,
      evalSeconds: (performance.now() - t1) / 1000,
      ...outcome(scoreResults(results)),
    };
  } finally {
    await runtime.release();
  }
}

/** One line per finished episode, so that a long run can be read before it ends. */
let reported = -1;
function progress(p: ClosedLoopProgress): void {
  if (p.done > reported && p.done > 0) {
    reported = p.done;
    log(`closed loop: ${p.successes}/${p.done} episodes succeeded (seed ${n('seed') + p.done - 1} done)`);
  }
}

/** Where the fitted model's keypoints fall on the first frame of held-out scenes, against the target (diagnosis only). */
async function diagnose(): Promise<Record<string, unknown>> {
  const config = simConfig(out, { sizes: DEMO_SIZES, pool: 'tokens' });
  const runtime = await buildRuntime(config, 'bc diagnose config', { features: true, policy: false, by: 'bc-sim' });
  const session = await OrtSession.create(readFileSync(join(out, 'policy.onnx')), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const sim = new TabletopSim();
    const frames: { features: Float32Array; target: [number, number] }[] = [];
    for (let s = 0; s < n('episodes'); s++) {
      sim.reset(PROBE_SEED + s);
      frames.push({ features: await simFrameFeatures(runtime.extractor as FeatureExtractor, sim.render()), target: [sim.scene.target.u, sim.scene.target.v] });
    }
    const outs: Float32Array[] = [];
    for (const f of frames) {
      const r = await session.run({ features: { dims: [1, f.features.length], data: f.features }, state: { dims: [1, 2], data: new Float32Array(2) } }, [
        'keypoints',
      ]);
      outs.push(Float32Array.from(r.keypoints.data));
    }
    let i = 0;
    const per = keypointsOnTarget(frames, () => outs[i++], sim.options.width, sim.options.height, sim.options.successRadius * sim.camera.scale);
    return { head: 'diagnose', scenes: frames.length, keypoints: per };
  } finally {
    await session.release();
    await runtime.release();
  }
}

/** A head trained elsewhere, copied into `out` as the simulation's configuration expects it, in the closed loop. */
async function given(): Promise<Record<string, unknown>> {
  const model = a.policy;
  if (model === undefined || !existsSync(model)) throw new Error(`bc-sim: --head onnx needs --policy FILE.onnx (got ${String(model)})`);
  copyFileSync(model, join(out, 'policy.onnx'));
  copyFileSync(model.replace(/\.onnx$/, '') + '.stats.json', join(out, 'policy.stats.json'));
  const config = simConfig(out, { sizes: DEMO_SIZES, pool: 'tokens' });
  await ensureDemoBackbone(config.backbone.model);
  const runtime = await buildRuntime(config, 'onnx head config', { features: true, policy: true, by: 'bc-sim' });
  try {
    const t1 = performance.now();
    const results = await runClosedLoop(runtime.config, runtime.extractor as FeatureExtractor, runtime.head as PolicyHead, n('episodes'), n('seed'), progress);
    return {
      head: 'onnx',
      policy: resolve(model),
      evalSeconds: (performance.now() - t1) / 1000,
      ...outcome(scoreResults(results)),
    };
  } finally {
    await runtime.release();
  }
}

let result: Record<string, unknown>;
if (a.head === 'diagnose') result = await diagnose();
else if (a.head === 'onnx') result = await given();
else if (a.head === 'detector' || a.head === 'linear') result = await baseline(a.head);
else {
  const cache = a.cache !== undefined ? resolve(a.cache) : undefined;
  const data = cache && existsSync(join(cache, 'features.f32')) ? loadData(cache) : undefined;
  if (data) log(`demonstrations from ${cache}: ${data.rows} rows, ${data.frames} frames`);
  const r = await evaluateBcHead({
    dir: out,
    sizes: DEMO_SIZES,
    demos: n('demos'),
    frameEvery: n('frame-every'),
    episodes: n('episodes'),
    evalSeed: n('seed'),
    data,
    onData: (d) => {
      if (cache && !data) saveData(cache, d);
    },
    onProgress: progress,
    recipe: a.recipe === 'end-to-end' ? 'end-to-end' : 'hindsight',
    hindsight: {
      chunk: n('chunk'),
      goal: a.goal === 'end' ? 'end' : 'rest',
      seed: n('fit-seed'),
      nearCells: a['near-cells'] === undefined ? undefined : n('near-cells'),
    },
    fit: {
      chunk: n('chunk'),
      keypoints: n('keypoints'),
      scoreHidden: n('score-hidden'),
      hidden: n('hidden'),
      epochs: n('epochs'),
      patience: n('patience'),
      batch: n('batch'),
      learningRate: n('lr'),
      seed: n('fit-seed'),
      goalWeight: n('goal-weight'),
    },
    log,
  });
  result = {
    head: 'bc',
    options: a,
    demos: r.demos,
    rows: r.rows,
    frames: r.frames,
    collectSeconds: r.collectSeconds,
    trainSeconds: r.fit.seconds,
    fit: r.fit,
    evalSeconds: r.evalSeconds,
    ...outcome(r.closedLoop),
  };
}
result.totalSeconds = (performance.now() - t0) / 1000;
writeFileAtomic(join(out, 'result.json'), JSON.stringify(result, null, 1));
console.log(
  JSON.stringify({ ...result, seeds: undefined, successes: undefined, finalDistances: undefined, summary: undefined, fit: undefined, failures: undefined }),
);
