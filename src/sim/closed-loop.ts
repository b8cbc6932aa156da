// The simulation in a closed loop with the node's real pipeline (ingestion, S², policy head, control-rate actions,
// watchdog) on a virtual clock, plus demonstration collection with the scripted expert and the demo models.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { join } from 'node:path';
import { need, parseConfig, type Config } from '../config/config.js';
import { writePresetModel } from '../models/write.js';
import { ManualClock, runOnClock, type TimedInput } from '../pipeline/clock.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import { PolicyPipeline } from '../pipeline/pipeline.js';
import { fitPolicy, writePolicy, type PolicyFit } from '../policy/fit.js';
import type { PolicyHead } from '../policy/head.js';
import { timeToMs } from '../msgs/types.js';
import { TabletopSim } from './tabletop.js';
import type { EpisodePath } from './plot.js';

export const SIM_CAMERA = 'overhead';
export const SIM_CAMERA_TOPIC = '/overhead_camera/image_raw';
/** Bumped whenever the demo models or their recipe change, so cached models are rebuilt. */
export const DEMO_MODELS_VERSION = 'sim-demo-v2';

export interface SimModelOptions {
  /** S² sizes as [height, width] per scale, e.g. [[96, 128], [192, 256]]. */
  sizes: [number, number][];
  /** Feature pooling (grid:K keeps where things are). */
  pool?: string;
  chunk?: number;
}

/** The node configuration the simulation runs: one overhead camera, joint states, a linear policy head. */
export function simConfig(dir: string, o: SimModelOptions): Config {
  return parseConfig(
    {
      backbone: { model: 'backbone.onnx' },
      s2: { img_sizes: o.sizes, max_split_size: 32 },
      image: { base_size: o.sizes[0], crop: 'none', resize: 'reference', normalization: 'imagenet' },
      cameras: [{ name: SIM_CAMERA, topic: SIM_CAMERA_TOPIC, transport: 'raw' }],
      sync: { mode: 'latest' },
      joint_states: { topic: '/joint_states', names: ['joint1', 'joint2'], max_age_ms: 100 },
      features: { pool: o.pool ?? 'grid:8' },
      policy: { model: 'policy.onnx', features_input: 'features', state_input: 'state', chunk_mode: 'ensemble', ensemble_k: 0.1 },
      control: { rate_hz: 20, command_type: 'velocity', lower: [-1, -1], upper: [1, 1], max_delta: [0.5, 0.5] },
      watchdog: { stale_after_ms: 200 },
    },
    join(dir, 'config.yaml'),
    dir,
  );
}

export interface Demos {
  features: Float32Array;
  state: Float32Array;
  actions: Float32Array;
  episodes: Int32Array;
  rows: number;
  featureDim: number;
}

/** Runs the expert for `episodes` seeded episodes, rendering every step and computing its pooled S² features. */
export async function collectDemos(extractor: FeatureExtractor, episodes: number, seed: number, onEpisode?: (i: number) => void): Promise<Demos> {
  const sim = new TabletopSim({ seed });
  const feats: Float32Array[] = [];
  const states: number[] = [];
  const actions: number[] = [];
  const eps: number[] = [];
  const buf = new Uint8Array(sim.options.width * sim.options.height * 3);
  for (let e = 0; e < episodes; e++) {
    sim.reset(seed + e);
    while (!sim.status.done) {
      const frame = sim.render({ out: buf });
      const r = await extractor.ingester.ingest(frame, 'raw');
      if (!r.ok) throw new Error(`sim frame rejected: ${r.detail}`);
      const [f] = await extractor.extract([{ base: r.base, scales: r.scales }]);
      const q = sim.joints;
      const a = sim.expertAction();
      feats.push(f);
      states.push(q[0], q[1]);
      actions.push(a[0], a[1]);
      eps.push(e);
      sim.step(a);
    }
    onEpisode?.(e);
  }
  const d = feats[0].length;
  const features = new Float32Array(feats.length * d);
  feats.forEach((f, i) => features.set(f, i * d));
  return { features, state: Float32Array.from(states), actions: Float32Array.from(actions), episodes: Int32Array.from(eps), rows: feats.length, featureDim: d };
}

export function fitDemos(demos: Demos, chunk: number): PolicyFit {
  return fitPolicy(
    {
      features: { dims: [demos.rows, demos.featureDim], data: demos.features },
      state: { dims: [demos.rows, 2], data: demos.state },
      actions: { dims: [demos.rows, 2], data: demos.actions },
      episodes: demos.episodes,
    },
    // λ up to 1e6: with random (not pretrained) features the held-out error keeps falling with strong shrinkage.
    { chunk, lambdas: [1e-2, 1e-1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6] },
  );
}

export interface EpisodeResult {
  seed: number;
  success: boolean;
  steps: number;
  finalDistance: number;
  /** End-effector pixel path. */
  points: [number, number][];
  target: [number, number];
  safeActions: number;
}

export interface ClosedLoopProgress {
  episode: number;
  step: number;
  successes: number;
  done: number;
}

/**
 * Runs `episodes` seeded episodes: each control period the sim renders a frame and publishes its joint state into
 * the pipeline; the pipeline's control clock produces the action that the sim executes. Virtual time, so the result
 * depends only on the seeds and the models.
 */
export async function runClosedLoop(config: Config, extractor: FeatureExtractor, head: PolicyHead, episodes: number, seed: number, onProgress?: (p: ClosedLoopProgress) => void): Promise<EpisodeResult[]> {
  const sim = new TabletopSim({ seed });
  const results: EpisodeResult[] = [];
  const dt = sim.options.dt * 1000;
  for (let e = 0; e < episodes; e++) {
    sim.reset(seed + e);
    const start = sim.timeMs;
    const clock = new ManualClock(start - dt / 2);
    const pipeline = new PolicyPipeline(config, extractor, head, clock);
    const points: [number, number][] = [];
    let lastAction: Float32Array = new Float32Array(2);
    // Frames and joint states at t = start + k·dt; the control tick k falls half a period later, and its action
    // drives the sim for the next period.
    const inputs = (function* (): Generator<TimedInput> {
      while (!sim.status.done) {
        const t = timeToMs(sim.time);
        points.push(sim.armPixels().effector);
        yield { timeMs: t, joints: sim.jointState(), frame: { camera: SIM_CAMERA, kind: 'raw', msg: sim.render() } };
        clock.advanceTo(t + dt / 2);
        sim.step(lastAction);
        onProgress?.({ episode: e, step: sim.status.steps, successes: results.filter((r) => r.success).length, done: e });
      }
    })();
    await runOnClock(pipeline, inputs, { rate: 0 }, { action: (a) => void (lastAction = a.values) });
    const s = sim.status;
    points.push(sim.armPixels().effector);
    const target = sim.scene.target;
    results.push({
      seed: seed + e,
      success: s.success,
      steps: s.steps,
      finalDistance: s.distance,
      points,
      target: [target.u, target.v],
      safeActions: pipeline.metrics.counts.safeActions,
    });
  }
  return results;
}

export function toPaths(results: EpisodeResult[]): EpisodePath[] {
  return results.map((r) => ({ points: r.points, success: r.success, target: r.target }));
}

export interface DemoModels {
  dir: string;
  config: Config;
  fit: PolicyFit;
  trainSeconds: number;
}

/**
 * The demo backbone (project-made, not pretrained) and a linear head fitted on expert demonstrations in the
 * simulation, cached in `dir` (rebuilt when DEMO_MODELS_VERSION or the options change).
 */
export async function ensureDemoModels(dir: string, o: SimModelOptions & { episodes?: number; seed?: number }, log?: (line: string) => void): Promise<DemoModels> {
  const key = JSON.stringify({ v: DEMO_MODELS_VERSION, o });
  const stamp = join(dir, 'models.json');
  const config = simConfig(dir, o);
  const policy = need(config, 'policy', 'demo config', 'the demo');
  if (existsSync(stamp) && existsSync(policy.model)) {
    const saved = JSON.parse(readFileSync(stamp, 'utf8')) as { key: string; fit: PolicyFit; trainSeconds: number };
    if (saved.key === key) return { dir, config, fit: saved.fit, trainSeconds: saved.trainSeconds };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  writePresetModel('convnet-tiny', config.backbone.model);
  const runtime = await buildRuntime(config, 'demo config', { features: true, policy: false, by: 'the demo' });
  const extractor = runtime.extractor as FeatureExtractor;
  try {
    const episodes = o.episodes ?? 24;
    log?.(`collecting ${episodes} expert demonstrations (seeds ${o.seed ?? 1000}…) for the demo policy head…`);
    const demos = await collectDemos(extractor, episodes, o.seed ?? 1000);
    const fit = fitDemos(demos, o.chunk ?? 4);
    writePolicy({ model: policy.model, stats: join(dir, 'policy.stats.json') }, fit);
    const trainSeconds = (performance.now() - t0) / 1000;
    log?.(`fitted a linear head on ${demos.rows} steps × ${demos.featureDim} features (λ = ${fit.lambda}, ${fit.selection.note}) in ${trainSeconds.toFixed(1)} s`);
    const slim = { ...fit, weight: [], bias: [] };
    writeFileAtomic(stamp, JSON.stringify({ key, fit: slim, trainSeconds }));
    return { dir, config: simConfig(dir, o), fit, trainSeconds };
  } finally {
    await runtime.release();
  }
}
