// The behaviour-cloning head in the simulation: demonstrations recorded as a real arm's would be (camera frames'
// S² maps, joint states, the commands the expert sent; no keypoint, target or expert query), the head fitted on
// them, and its closed-loop success over seeded episodes with a 95% Wilson interval.
import { join } from 'node:path';
import { need } from '../config/config.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { fitBc, writeBcPolicy, type BcData, type BcFit, type BcOptions } from '../policy/bc.js';
import { writeDetectorPolicy } from '../policy/detector.js';
import { fitHindsight, type HindsightFit, type HindsightOptions } from '../policy/hindsight.js';
import type { PolicyHead } from '../policy/head.js';
import { buildRuntime } from '../runtime/build.js';
import { UserError } from '../errors.js';
import { ensureDemoBackbone, runClosedLoop, simConfig, simFrameFeatures, wilson, type ClosedLoopProgress, type EpisodeResult } from './closed-loop.js';
import { runExpertEpisode } from './expert.js';
import type { TabletopSimOptions } from './options.js';
import { TabletopSim } from './tabletop.js';

/**
 * Records `episodes` expert demonstrations (seeds from `seed`): every control step's joint state and the command
 * sent, and the camera frame's S² map every `frameEvery` steps (a camera slower than the control rate; each step
 * sees the latest frame, as the pipeline's latest-frame sync does). Nothing else of the simulation is kept.
 */
export async function collectBcDemos(
  extractor: FeatureExtractor,
  episodes: number,
  seed: number,
  frameEvery = 1,
  simOptions: TabletopSimOptions = {},
  onEpisode?: (episode: number, frames: number) => void,
  /** Filled with the milliseconds each frame's S² features took (ingestion, backbone, pooling). */
  frameMs?: number[],
): Promise<BcData> {
  const layout = extractor.layout;
  if (layout.pooling !== 'tokens' || layout.outputShape !== 'bchw')
    throw new UserError(`sim: the bc head needs a bchw backbone pooled as tokens, got ${layout.outputShape} pooled as ${layout.pooling}`);
  if (!Number.isInteger(frameEvery) || frameEvery < 1) throw new UserError(`sim: frameEvery must be an integer ≥ 1, got ${frameEvery}`);
  const sim = new TabletopSim({ ...simOptions, seed });
  // The episodes' lengths, to allocate the frames once (the expert is deterministic: the recording below repeats them).
  let rows = 0;
  let frames = 0;
  for (let e = 0; e < episodes; e++) {
    const n = runExpertEpisode(sim, seed + e).steps;
    rows += n;
    frames += Math.ceil(n / frameEvery);
  }
  const per = layout.perCamera;
  const features = new Float32Array(frames * per);
  const state = new Float32Array(rows * 2);
  const actions = new Float32Array(rows * 2);
  const ids = new Int32Array(rows);
  const frameOf = new Int32Array(rows);
  const buf = new Uint8Array(sim.options.width * sim.options.height * 3);
  let r = 0;
  let f = 0;
  for (let e = 0; e < episodes; e++) {
    sim.reset(seed + e);
    for (let k = 0; !sim.status.done; k++) {
      if (k % frameEvery === 0) {
        if (f >= frames) throw new Error('sim: the recorded episodes are longer than their dry run');
        const image = sim.render({ out: buf });
        const t0 = performance.now();
        features.set(await simFrameFeatures(extractor, image), f * per);
        frameMs?.push(performance.now() - t0);
        f++;
      }
      const q = sim.joints;
      const a = sim.expertAction();
      state[2 * r] = q[0];
      state[2 * r + 1] = q[1];
      actions[2 * r] = a[0];
      actions[2 * r + 1] = a[1];
      ids[r] = e;
      frameOf[r] = f - 1;
      r++;
      sim.step(a);
    }
    onEpisode?.(e, f);
  }
  if (r !== rows || f !== frames) throw new Error(`sim: recorded ${r} rows and ${f} frames, the dry run gave ${rows} and ${frames}`);
  return {
    features,
    frames,
    channels: layout.channels,
    height: layout.gridHeight,
    width: layout.gridWidth,
    state,
    actions,
    episodes: ids,
    frameOf,
    rows,
    stateDim: 2,
    actionDim: 2,
  };
}

export interface ClosedLoopScore {
  episodes: number;
  successes: number;
  success: number;
  interval: [number, number];
  meanDistance: number;
  results: EpisodeResult[];
}

export function scoreResults(results: EpisodeResult[]): ClosedLoopScore {
  const ok = results.filter((r) => r.success).length;
  return {
    episodes: results.length,
    successes: ok,
    success: ok / Math.max(1, results.length),
    interval: wilson(ok, results.length),
    meanDistance: results.reduce((a, r) => a + r.finalDistance, 0) / Math.max(1, results.length),
    results,
  };
}

export interface BcSimOptions {
  /** Folder for the backbone, the fitted head and its configuration. */
  dir: string;
  /** S² sizes, [height, width] per scale. */
  sizes: [number, number][];
  /** Expert demonstrations (seeds from demoSeed, default 1000). */
  demos?: number;
  demoSeed?: number;
  /** A camera frame every this many control steps in the demonstrations (default 1). */
  frameEvery?: number;
  /** Closed-loop episodes (default 50) from evalSeed (default 0). */
  episodes?: number;
  evalSeed?: number;
  /** 'end-to-end' (fitBc with `fit`) or 'hindsight' (fitHindsight with `hindsight`; the default). */
  recipe?: 'hindsight' | 'end-to-end';
  /** The end-to-end head's options; chunk defaults to 2, as the demo head's. */
  fit?: BcOptions;
  /** The hindsight recipe's options; chunk defaults to 2. */
  hindsight?: HindsightOptions;
  simOptions?: TabletopSimOptions;
  /** Demonstrations already recorded (e.g. by an earlier call), instead of recording them. */
  data?: BcData;
  /** Called with the demonstrations as soon as they are recorded (e.g. to keep them for another fit). */
  onData?: (d: BcData) => void;
  /** Called during the closed loop (runClosedLoop's progress). */
  onProgress?: (p: ClosedLoopProgress) => void;
  log?: (line: string) => void;
}

export interface BcSimResult {
  /** The end-to-end fit, or the hindsight recipe's (without the parameters). */
  fit: Omit<BcFit, 'params'> | Omit<HindsightFit, 'detector' | 'controller'>;
  data: BcData;
  rows: number;
  frames: number;
  demos: number;
  collectSeconds: number;
  closedLoop: ClosedLoopScore;
  evalSeconds: number;
}

/**
 * Records demonstrations (unless given), fits the bc head on them, writes it into `dir` (policy.onnx,
 * policy.stats.json, with the configuration simConfig gives) and runs it in closed loop.
 */
export async function evaluateBcHead(o: BcSimOptions): Promise<BcSimResult> {
  const log = o.log ?? (() => undefined);
  const fitOptions: BcOptions = { chunk: 2, ...o.fit };
  const config = simConfig(o.dir, { sizes: o.sizes, pool: 'tokens' });
  await ensureDemoBackbone(config.backbone.model);
  const runtime = await buildRuntime(config, 'bc sim config', { features: true, policy: false, by: 'the bc evaluation' });
  const extractor = runtime.extractor as FeatureExtractor;
  const simOptions = o.simOptions ?? {};
  let data = o.data;
  let collectSeconds = 0;
  const demos = o.demos ?? 400;
  try {
    if (!data) {
      const t0 = performance.now();
      data = await collectBcDemos(extractor, demos, o.demoSeed ?? 1000, o.frameEvery ?? 1, simOptions, (e, f) => {
        if ((e + 1) % 50 === 0) log(`recorded ${e + 1}/${demos} demonstrations (${f} frames, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      });
      collectSeconds = (performance.now() - t0) / 1000;
      o.onData?.(data);
      log(`${data.rows} steps, ${data.frames} frames of ${data.channels}×${data.height}×${data.width} S² features in ${collectSeconds.toFixed(0)} s`);
    }
    const policy = need(config, 'policy', 'bc sim config', 'the bc evaluation');
    const files = { model: policy.model, stats: join(o.dir, 'policy.stats.json') };
    let summary: BcSimResult['fit'];
    if ((o.recipe ?? 'hindsight') === 'hindsight') {
      const h = await fitHindsight(data, { chunk: 2, ...o.hindsight, log: o.hindsight?.log ?? log });
      writeDetectorPolicy(files, h.detector, h.controller);
      const { detector: _d, controller: _c, ...rest } = h;
      void _d;
      void _c;
      summary = rest;
    } else {
      const fit = fitBc(data, { ...fitOptions, log: fitOptions.log ?? log });
      log(
        `bc head: epoch ${fit.bestEpoch} of ${fit.epochsRun} kept, training MSE ${fit.trainMse.toFixed(4)}, held-out ${fit.heldOutMse.toFixed(4)} (the mean: ${fit.heldOutMeanMse.toFixed(4)}), ${fit.seconds.toFixed(0)} s`,
      );
      writeBcPolicy(files, fit.params);
      const { params: _params, ...rest } = fit;
      void _params;
      summary = rest;
    }
    // Parsed again now that the statistics file exists beside the model (the configuration finds it there).
    const run = await buildRuntime(simConfig(o.dir, { sizes: o.sizes, pool: 'tokens' }), 'bc sim config', {
      features: false,
      policy: true,
      by: 'the bc evaluation',
    });
    try {
      const t1 = performance.now();
      const episodes = o.episodes ?? 50;
      const results = await runClosedLoop(run.config, extractor, run.head as PolicyHead, episodes, o.evalSeed ?? 0, o.onProgress, simOptions);
      const evalSeconds = (performance.now() - t1) / 1000;
      return { fit: summary, data, rows: data.rows, frames: data.frames, demos, collectSeconds, closedLoop: scoreResults(results), evalSeconds };
    } finally {
      await run.release();
    }
  } finally {
    await runtime.release();
  }
}

export interface FailureTrace {
  seed: number;
  /** Final end-effector distance to the target's centre and to the nearest distractor's, pixels. */
  targetPx: number;
  decoyPx: number;
  /** The nearest distractor's shape and colour, e.g. 'red square'. */
  decoy: string;
  /** The path's length over its last 20 steps, pixels (small: it stopped; large: it wandered). */
  lastMovePx: number;
}

/**
 * Where each failed episode ended, against its scene (for diagnosis only; the scene's truth never reaches fitting):
 * near a distractor (the head chose the wrong object), near the target (it stopped short or oscillated), or neither.
 */
export function traceFailures(results: EpisodeResult[], simOptions: TabletopSimOptions = {}): FailureTrace[] {
  const sim = new TabletopSim(simOptions);
  return results
    .filter((r) => !r.success)
    .map((r) => {
      sim.reset(r.seed);
      const [u, v] = r.points[r.points.length - 1];
      let decoyPx = Infinity;
      let decoy = '';
      for (const d of sim.scene.distractors) {
        const dist = Math.hypot(d.u - u, d.v - v);
        if (dist < decoyPx) {
          decoyPx = dist;
          decoy = `${d.colour} ${d.shape}`;
        }
      }
      const tail = r.points.slice(-21);
      let lastMovePx = 0;
      for (let i = 1; i < tail.length; i++) lastMovePx += Math.hypot(tail[i][0] - tail[i - 1][0], tail[i][1] - tail[i - 1][1]);
      return { seed: r.seed, targetPx: Math.hypot(r.target[0] - u, r.target[1] - v), decoyPx, decoy, lastMovePx };
    });
}

/**
 * For diagnosis only: each keypoint's distance to the target's centre (pixels) on the first frame of `scenes`
 * scenes from `seed`: its median, and the share within `radiusPx`. Shows whether some keypoint tracks the target.
 */
export function keypointsOnTarget(
  frames: { features: Float32Array; target: [number, number] }[],
  predict: (features: Float32Array) => Float32Array,
  width: number,
  height: number,
  radiusPx: number,
): { keypoint: number; medianPx: number; within: number }[] {
  const errs: number[][] = [];
  for (const f of frames) {
    const kp = predict(f.features);
    for (let k = 0; k < kp.length / 2; k++) {
      (errs[k] ??= []).push(Math.hypot(((kp[2 * k] + 1) / 2) * width - f.target[0], ((kp[2 * k + 1] + 1) / 2) * height - f.target[1]));
    }
  }
  return errs.map((e, k) => {
    const s = [...e].sort((a, b) => a - b);
    return { keypoint: k, medianPx: s[Math.floor(s.length / 2)], within: e.filter((x) => x <= radiusPx).length / e.length };
  });
}
