// The simulation in a closed loop with the node's real pipeline (ingestion, S², policy head, control-rate actions,
// watchdog) on a virtual clock, plus demonstration collection with the scripted expert and the demo models.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { need, parseConfig, type Config } from '../config/config.js';
import { ManualClock, runOnClock, type TimedInput } from '../pipeline/clock.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import { PolicyPipeline } from '../pipeline/pipeline.js';
import { fitPolicy, stackChunks, writePolicy, type PolicyFit } from '../policy/fit.js';
import { fitKeypointHead, predictKeypoint, writeKeypointPolicy, type KeypointData } from '../policy/keypoint.js';
import { fitDetector, writeDetectorPolicy } from '../policy/detector.js';
import { fitControllerInWorker, settledEffectorPixel } from './controller-rows.js';
import { runExpertEpisode } from './expert.js';
import { Rng } from './random.js';
import { resolveSimOptions, type TabletopSimOptions } from './options.js';
import { pretrainBackbone, type PretrainOptions, type PretrainResult } from './pretrain.js';
import { PolicyHead } from '../policy/head.js';
import { timeToMs, type ImageMsg } from '../msgs/types.js';
import { TabletopSim } from './tabletop.js';
import type { EpisodePath } from './plot.js';

/** Wilson score interval for a binomial proportion, 95%. */
export function wilson(successes: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.959964;
  const p = successes / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

export const SIM_CAMERA = 'overhead';
export const SIM_CAMERA_TOPIC = '/overhead_camera/image_raw';
/** Bumped whenever the demo models or their recipe change, so cached models are rebuilt. */
export const DEMO_MODELS_VERSION = 'sim-demo-v5';
/** The demo's pooling: the whole S² map (channels × H × W at the first scale's grid), for the detector head. */
export const DEMO_POOL = 'tokens';
/** S² crops of 80×80 pixels: a divisor of every demo scale (240×320, 480×640, 720×960). */
export const DEMO_SPLIT = 80;

/** The demo models' S² sizes, used by `start` and `eval`: the camera's 3:4 aspect, two scales. */
export const DEMO_SIZES: [number, number][] = [
  [240, 320],
  [480, 640],
];

/** The demo recipe's defaults (see DemoRecipe). */
export const DEMO_RECIPE = {
  pool: 'tokens',
  chunk: 2,
  head: 'detector' as const,
  episodes: 400,
  perceptionEpisodes: 360,
  framesPerEpisode: 3,
  seed: 1000,
  daggerRounds: 0,
  daggerEpisodes: 20,
  daggerSteps: 40,
  epochs: 15,
  /** Detector head's controller: perturbed joint states per demonstration state, keypoint noise (px), epochs. */
  controllerPerturbed: 2,
  controllerNoisePx: 1.5,
  controllerEpochs: 20,
};

export interface SimModelOptions {
  /** S² sizes as [height, width] per scale, e.g. [[96, 128], [192, 256]]. */
  sizes: [number, number][];
  /** Feature pooling (grid:K keeps where things are). */
  pool?: string;
  chunk?: number;
  /**
   * The policy head: 'detector' (a keypoint detector over the S² map + an MLP controller; the default), 'keypoint'
   * (spatial softmax + MLP, end-to-end behaviour cloning) or 'linear' (ridge probe).
   */
  head?: 'detector' | 'keypoint' | 'linear';
  /** S² crop side (pixels); the default divides every demo scale. */
  splitSize?: number;
}

/** The S² crop side for `sizes`: the largest of 80, 64, 48, 40, 32, 24, 16 that divides every side. */
export function splitFor(sizes: [number, number][]): number {
  return [DEMO_SPLIT, 64, 48, 40, 32, 24, 16].find((k) => sizes.every(([h, w]) => h % k === 0 && w % k === 0)) ?? Math.min(...sizes.flat());
}

/** The node configuration the simulation runs: one overhead camera, joint states, a linear policy head. */
export function simConfig(dir: string, o: SimModelOptions): Config {
  return parseConfig(
    {
      backbone: { model: 'backbone.onnx' },
      // s2.engine left at its default (compiled): the compiled model takes the per-scale images resized from the frame.
      s2: { img_sizes: o.sizes, max_split_size: o.splitSize ?? splitFor(o.sizes) },
      // Every scale resized from the camera frame itself, so the larger scales hold detail the base has lost.
      image: { base_size: o.sizes[0], crop: 'none', resize: 'native', normalization: 'imagenet' },
      cameras: [{ name: SIM_CAMERA, topic: SIM_CAMERA_TOPIC, transport: 'raw' }],
      sync: { mode: 'latest' },
      joint_states: { topic: '/joint_states', names: ['joint1', 'joint2'], max_age_ms: 100 },
      features: { pool: o.pool ?? DEMO_POOL },
      policy: { model: 'policy.onnx', features_input: 'features', state_input: 'state', output: 'actions', chunk_mode: 'ensemble', ensemble_k: 0.1 },
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

/** The pooled S² features of one simulated camera frame: ingested, then one S² pass. */
export async function simFrameFeatures(extractor: FeatureExtractor, frame: ImageMsg): Promise<Float32Array> {
  const r = await extractor.ingester.ingest(frame, 'raw');
  if (!r.ok) throw new Error(`sim frame rejected: ${r.detail}`);
  const [f] = await extractor.extract([{ base: r.base, scales: r.scales }]);
  return f;
}

/** Runs the expert for `episodes` seeded episodes, rendering every step and computing its pooled S² features. */
export async function collectDemos(
  extractor: FeatureExtractor,
  episodes: number,
  seed: number,
  onEpisode?: (i: number) => void,
  simOptions: TabletopSimOptions = {},
): Promise<Demos> {
  const sim = new TabletopSim({ ...simOptions, seed });
  const feats: Float32Array[] = [];
  const states: number[] = [];
  const actions: number[] = [];
  const eps: number[] = [];
  const buf = new Uint8Array(sim.options.width * sim.options.height * 3);
  for (let e = 0; e < episodes; e++) {
    sim.reset(seed + e);
    while (!sim.status.done) {
      const f = await simFrameFeatures(extractor, sim.render({ out: buf }));
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
    // λ up to 1e6: with weak features the held-out error can keep falling with strong shrinkage (fit warns at the edge).
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
export async function runClosedLoop(
  config: Config,
  extractor: FeatureExtractor,
  head: PolicyHead,
  episodes: number,
  seed: number,
  onProgress?: (p: ClosedLoopProgress) => void,
  simOptions: TabletopSimOptions = {},
): Promise<EpisodeResult[]> {
  const sim = new TabletopSim({ ...simOptions, seed });
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
  return results.map((r) => ({
    points: r.points,
    success: r.success,
    target: r.target,
    label: `seed ${r.seed}: ${r.success ? 'success' : 'failure'}, ${(100 * r.finalDistance).toFixed(1)} cm`,
  }));
}

export interface DemoRecipe extends SimModelOptions {
  /** Expert demonstration episodes (seeds from `seed`, default 1000). */
  episodes?: number;
  seed?: number;
  /** DAgger rounds: the head drives, the expert labels every state it visits, the head is refitted on all rows. */
  daggerRounds?: number;
  /** Episodes per DAgger round (seeds from 3000), each cut at daggerSteps steps. */
  daggerEpisodes?: number;
  daggerSteps?: number;
  /** Training epochs of the detector (or of the keypoint head). */
  epochs?: number;
  /** Detector head: expert episodes that also record camera frames (the first ones), and frames kept per episode. */
  perceptionEpisodes?: number;
  framesPerEpisode?: number;
  /** Target size of the simulated scenes (px), for the detail experiment; the default task's 8 px otherwise. */
  targetSizePx?: number;
}

export interface PerceptionData {
  features: Float32Array;
  rows: number;
  /** Keypoint labels in grid units (x across, y down). */
  labels: Float32Array;
  groups: Int32Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * Camera frames of expert episodes for the detector: `perEpisode` frames per episode (its first step and others at
 * random steps), each labelled with the episode's settled gripper pixel. No step is favoured: frames that always show
 * the gripper over the target teach the detector that a red thing in the gripper is the target, and the closed loop
 * then locks onto a decoy the gripper passes.
 */
export async function collectPerception(
  extractor: FeatureExtractor,
  episodes: number,
  seed: number,
  perEpisode: number,
  simOptions: TabletopSimOptions = {},
  onEpisode?: (i: number) => void,
): Promise<PerceptionData> {
  const layout = extractor.layout;
  if (layout.pooling !== 'tokens' || layout.outputShape !== 'bchw')
    throw new UserError(`sim: the detector head needs a bchw backbone pooled as tokens, got ${layout.outputShape} pooled as ${layout.pooling}`);
  const H = layout.gridHeight;
  const W = layout.gridWidth;
  const C = layout.channels;
  const per = layout.perCamera;
  const sim = new TabletopSim({ ...simOptions, seed });
  const rng = new Rng(seed ^ 0x5e1ec7);
  const features = new Float32Array(episodes * perEpisode * per);
  const labels: number[] = [];
  const groups: number[] = [];
  const buf = new Uint8Array(sim.options.width * sim.options.height * 3);
  let rows = 0;
  for (let e = 0; e < episodes; e++) {
    const ep = runExpertEpisode(sim, seed + e);
    const [u, v] = settledEffectorPixel(sim);
    const n = ep.steps;
    const picks = new Set<number>([0]);
    while (picks.size < Math.min(perEpisode, n)) picks.add(rng.int(0, n - 1));
    const last = Math.max(...picks);
    sim.reset(seed + e);
    for (let k = 0; k <= last; k++) {
      if (picks.has(k)) {
        features.set(await simFrameFeatures(extractor, sim.render({ out: buf })), rows * per);
        labels.push((u / sim.options.width) * W, (v / sim.options.height) * H);
        groups.push(e);
        rows++;
      }
      if (k < last) sim.step(sim.expertAction());
    }
    onEpisode?.(e);
  }
  return {
    features: features.subarray(0, rows * per),
    rows,
    labels: Float32Array.from(labels),
    groups: Int32Array.from(groups),
    channels: C,
    height: H,
    width: W,
  };
}

export interface DemoSummary {
  head: 'detector' | 'keypoint' | 'linear';
  /** Detector head: frames it was fitted on, and its held-out keypoint error (pixels). */
  detector?: { frames: number; medianPx: number; withinHalfCell: number; withinCell: number; temperature: number; seconds: number };
  rows: number;
  featureDim: number;
  expertEpisodes: number;
  daggerRows: number;
  /** Linear head only. */
  lambda?: number;
  note: string;
  pretrain: { seconds: number; weightsHash: string; filters: number; cached: boolean };
  msPerFrame: number;
}

export interface DemoModels {
  dir: string;
  config: Config;
  summary: DemoSummary;
  trainSeconds: number;
}

/** The demo backbone recipe: k-means filters from frames at every resolution the demo and evaluation use. */
export const DEMO_PRETRAIN: PretrainOptions = {
  seed: 1,
  sizes: [
    [240, 320],
    [480, 640],
    [720, 960],
  ],
  filters: 32,
};

/** Backbones pretrained in this process, by recipe: eval's variants share one. */
const made = new Map<string, PretrainResult>();

/**
 * Writes the pretrained demo backbone to `file` unless a backbone of the same recipe is already there (its recipe
 * hash is kept in `file`.json). Returns how it was made.
 */
export async function ensureDemoBackbone(file: string, o: PretrainOptions = DEMO_PRETRAIN): Promise<DemoSummary['pretrain']> {
  const key = JSON.stringify({ v: DEMO_MODELS_VERSION, o });
  const stamp = `${file}.json`;
  if (existsSync(file) && existsSync(stamp)) {
    const saved = JSON.parse(readFileSync(stamp, 'utf8')) as { key: string; seconds: number; weightsHash: string; filters: number };
    if (saved.key === key) return { seconds: saved.seconds, weightsHash: saved.weightsHash, filters: saved.filters, cached: true };
  }
  let r = made.get(key);
  const cached = r !== undefined;
  r ??= await pretrainBackbone(o);
  made.set(key, r);
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, r.onnx);
  writeFileAtomic(stamp, JSON.stringify({ key, seconds: r.seconds, weightsHash: r.weightsHash, filters: r.filters }));
  return { seconds: r.seconds, weightsHash: r.weightsHash, filters: r.filters, cached };
}

/** The grid side of a 'grid:K' pooling. */
function gridOf(pool: string): number {
  const m = /^grid:(\d+)$/.exec(pool);
  if (!m) throw new UserError(`sim: the keypoint head needs features.pool grid:K, got '${pool}'`);
  return Number(m[1]);
}

function concatDemos(a: Demos, b: Demos): Demos {
  const cat = <T extends Float32Array | Int32Array>(x: T, y: T, make: (n: number) => T): T => {
    const out = make(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const shift = a.rows > 0 ? Math.max(...a.episodes) + 1 : 0;
  return {
    features: cat(a.features, b.features, (n) => new Float32Array(n)),
    state: cat(a.state, b.state, (n) => new Float32Array(n)),
    actions: cat(a.actions, b.actions, (n) => new Float32Array(n)),
    episodes: cat(
      a.episodes,
      Int32Array.from(b.episodes, (e) => e + shift),
      (n) => new Int32Array(n),
    ),
    rows: a.rows + b.rows,
    featureDim: a.featureDim,
  };
}

/**
 * DAgger's data: the fitted head drives (its chunk's first action, clamped to the velocity limit), the expert's action
 * for every visited state is recorded as the label. Episodes end at success or after `maxSteps`.
 */
export async function collectDagger(
  extractor: FeatureExtractor,
  act: (features: Float32Array, state: Float32Array) => Float32Array,
  episodes: number,
  seed: number,
  maxSteps: number,
  simOptions: TabletopSimOptions = {},
): Promise<Demos> {
  const sim = new TabletopSim({ ...simOptions, seed });
  const feats: Float32Array[] = [];
  const states: number[] = [];
  const actions: number[] = [];
  const eps: number[] = [];
  const buf = new Uint8Array(sim.options.width * sim.options.height * 3);
  for (let e = 0; e < episodes; e++) {
    sim.reset(seed + e);
    for (let k = 0; k < maxSteps && !sim.status.done; k++) {
      const f = await simFrameFeatures(extractor, sim.render({ out: buf }));
      const q = Float32Array.from(sim.joints);
      const expert = sim.expertAction();
      feats.push(f);
      states.push(q[0], q[1]);
      actions.push(expert[0], expert[1]);
      eps.push(e);
      const a = act(f, q);
      sim.step([Math.max(-1, Math.min(1, a[0])), Math.max(-1, Math.min(1, a[1]))]);
    }
  }
  const d = extractor.layout.perCamera;
  const features = new Float32Array(feats.length * d);
  feats.forEach((f, i) => features.set(f, i * d));
  return { features, state: Float32Array.from(states), actions: Float32Array.from(actions), episodes: Int32Array.from(eps), rows: feats.length, featureDim: d };
}

function keypointData(demos: Demos, grid: number, chunk: number): KeypointData {
  const targets = stackChunks({ dims: [demos.rows, 2], data: demos.actions }, demos.episodes, chunk);
  return {
    features: demos.features,
    state: demos.state,
    targets: targets.data,
    rows: demos.rows,
    channels: demos.featureDim / (grid * grid),
    grid,
    stateDim: 2,
    chunk,
    actionDim: 2,
  };
}

/**
 * The demo models, cached in `dir` (rebuilt when DEMO_MODELS_VERSION or the recipe change): the backbone pretrained
 * without labels (pretrain.ts), expert demonstrations in the simulation, a head fitted on them (keypoint by
 * behaviour cloning with DAgger rounds, or the linear ridge probe), written as ONNX with its statistics.
 */
export async function ensureDemoModels(dir: string, o: DemoRecipe, log?: (line: string) => void): Promise<DemoModels> {
  const recipe = { ...DEMO_RECIPE, ...(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as DemoRecipe) };
  const key = JSON.stringify({ v: DEMO_MODELS_VERSION, recipe, pretrain: DEMO_PRETRAIN });
  const stamp = join(dir, 'models.json');
  const config = simConfig(dir, recipe);
  const policy = need(config, 'policy', 'demo config', 'the demo');
  if (existsSync(stamp) && existsSync(policy.model)) {
    const saved = JSON.parse(readFileSync(stamp, 'utf8')) as { key: string; summary: DemoSummary; trainSeconds: number };
    if (saved.key === key) return { dir, config, summary: saved.summary, trainSeconds: saved.trainSeconds };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const pretrain = await ensureDemoBackbone(config.backbone.model);
  log?.(
    pretrain.cached
      ? `backbone: k-means filters (cached, sha256 ${pretrain.weightsHash.slice(0, 12)})`
      : `backbone: ${pretrain.filters} k-means filters learned from simulated frames in ${pretrain.seconds.toFixed(1)} s (no labels; sha256 ${pretrain.weightsHash.slice(0, 12)})`,
  );
  const runtime = await buildRuntime(config, 'demo config', { features: true, policy: false, by: 'the demo' });
  const extractor = runtime.extractor as FeatureExtractor;
  const simOptions: TabletopSimOptions = recipe.targetSizePx !== undefined ? { targetSizePx: recipe.targetSizePx } : {};
  try {
    const episodes = recipe.episodes;
    const chunk = recipe.chunk;
    let summary: DemoSummary;
    if (recipe.head === 'detector') {
      const scenes = Math.min(recipe.perceptionEpisodes, episodes);
      log?.(`recording ${recipe.framesPerEpisode} camera frames in each of ${scenes} expert demonstrations (seeds ${recipe.seed}…)…`);
      const tc = performance.now();
      const perception = await collectPerception(extractor, scenes, recipe.seed, recipe.framesPerEpisode, simOptions);
      const msPerFrame = (performance.now() - tc) / perception.rows;
      log?.(`${perception.rows} frames of ${perception.channels}×${perception.height}×${perception.width} S² features (${msPerFrame.toFixed(1)} ms per frame)`);
      // The controller needs no frames: it trains in a worker while the detector trains here.
      const controller = fitControllerInWorker({
        episodes,
        seed: recipe.seed,
        chunk,
        perturbed: recipe.controllerPerturbed,
        noisePx: recipe.controllerNoisePx,
        simOptions,
        fit: { epochs: recipe.controllerEpochs, seed: 13 },
      });
      // Awaited together, so that a failure of either is reported and neither rejection goes unhandled.
      const [det, ctrl] = await Promise.all([fitDetector(perception, { epochs: recipe.epochs, seed: 11 }), controller]);
      const cellPx = resolveSimOptions(simOptions).width / perception.width;
      log?.(
        `detector fitted in ${det.seconds.toFixed(1)} s: held-out keypoint error median ${det.heldOut.median.toFixed(2)} cells (${(det.heldOut.median * cellPx).toFixed(1)} px), ` +
          `${(100 * det.heldOut.withinOne).toFixed(0)}% within one cell (${cellPx} px), temperature ${det.params.temperature}`,
      );
      log?.(`controller fitted on ${ctrl.rows} expert (keypoint, state) rows in ${ctrl.seconds.toFixed(1)} s (training MSE ${ctrl.trainMse.toFixed(4)})`);
      writeDetectorPolicy({ model: policy.model, stats: join(dir, 'policy.stats.json') }, det.params, ctrl.params);
      summary = {
        head: 'detector',
        rows: ctrl.rows,
        featureDim: perception.channels * perception.height * perception.width,
        expertEpisodes: episodes,
        daggerRows: 0,
        note: `detector on ${perception.rows} frames, controller MSE ${ctrl.trainMse.toFixed(4)}`,
        detector: {
          frames: perception.rows,
          medianPx: det.heldOut.median * cellPx,
          withinHalfCell: det.heldOut.withinHalf,
          withinCell: det.heldOut.withinOne,
          temperature: det.params.temperature,
          seconds: det.seconds,
        },
        pretrain,
        msPerFrame,
      };
      const trainSeconds = (performance.now() - t0) / 1000;
      log?.(`demo models ready in ${trainSeconds.toFixed(1)} s`);
      writeFileAtomic(stamp, JSON.stringify({ key, summary, trainSeconds }));
      return { dir, config: simConfig(dir, recipe), summary, trainSeconds };
    }
    log?.(`collecting ${episodes} expert demonstrations (seeds ${recipe.seed}…)…`);
    const tc = performance.now();
    let demos = await collectDemos(extractor, episodes, recipe.seed, undefined, simOptions);
    const msPerFrame = (performance.now() - tc) / demos.rows;
    if (recipe.head === 'linear') {
      const fit = fitDemos(demos, chunk);
      writePolicy({ model: policy.model, stats: join(dir, 'policy.stats.json') }, fit);
      summary = {
        head: 'linear',
        rows: demos.rows,
        featureDim: demos.featureDim,
        expertEpisodes: episodes,
        daggerRows: 0,
        lambda: fit.lambda,
        note: `λ = ${fit.lambda}, ${fit.selection.note}`,
        pretrain,
        msPerFrame,
      };
    } else {
      const grid = gridOf(config.features.pool);
      let fit = fitKeypointHead(keypointData(demos, grid, chunk), { epochs: recipe.epochs, seed: 7 });
      log?.(`keypoint head fitted on ${demos.rows} expert steps (training MSE ${fit.trainMse.toFixed(3)}, ${fit.seconds.toFixed(1)} s)`);
      let daggerRows = 0;
      for (let r = 0; r < recipe.daggerRounds; r++) {
        const current = fit;
        const extra = await collectDagger(
          extractor,
          (f, q) => predictKeypoint(current, f, q),
          recipe.daggerEpisodes,
          3000 + r * recipe.daggerEpisodes,
          recipe.daggerSteps,
          simOptions,
        );
        daggerRows += extra.rows;
        demos = concatDemos(demos, extra);
        fit = fitKeypointHead(keypointData(demos, grid, chunk), { epochs: recipe.epochs, seed: 7 + r + 1 });
        log?.(
          `DAgger round ${r + 1}: +${extra.rows} expert-labelled states the head visited, refitted on ${demos.rows} (training MSE ${fit.trainMse.toFixed(3)})`,
        );
      }
      writeKeypointPolicy({ model: policy.model, stats: join(dir, 'policy.stats.json') }, fit);
      summary = {
        head: 'keypoint',
        rows: demos.rows,
        featureDim: demos.featureDim,
        expertEpisodes: episodes,
        daggerRows,
        note: `training MSE ${fit.trainMse.toFixed(3)}`,
        pretrain,
        msPerFrame,
      };
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    log?.(`demo models ready in ${trainSeconds.toFixed(1)} s (${demos.rows} rows × ${demos.featureDim} features, ${msPerFrame.toFixed(1)} ms per frame)`);
    writeFileAtomic(stamp, JSON.stringify({ key, summary, trainSeconds }));
    return { dir, config: simConfig(dir, recipe), summary, trainSeconds };
  } finally {
    await runtime.release();
  }
}
