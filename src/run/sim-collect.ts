// Demonstrations in the built-in simulation, written as the .npy files `fit` reads: expert episodes with their
// pooled S² features, state and actions (linear and keypoint heads), the detector head's frames, keypoint labels
// and controller rows, or the behaviour-cloning head's unlabelled demonstrations (S² maps, joint states, commands).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomic.js';
import { writeNpy } from '../io/npy.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import { collectDemos, collectPerception, DEMO_RECIPE, DEMO_SIZES, ensureDemoBackbone, simConfig } from '../sim/closed-loop.js';
import { controllerRows } from '../sim/controller-rows.js';
import { TabletopSim } from '../sim/tabletop.js';
import { collectBcDemos } from '../sim/bc-eval.js';
import { writeBcFiles } from './fit-bc.js';

export interface SimCollectOptions {
  /** Output folder, replaced whole when the collection is complete. */
  out: string;
  /** 'linear' (every step's features pooled grid:16; also what the keypoint head fits), 'detector' or 'bc'. */
  head?: 'linear' | 'detector' | 'bc';
  episodes?: number;
  seed?: number;
  /** S² sizes as [height, width] per scale (default DEMO_SIZES). */
  sizes?: [number, number][];
  /** Detector: episodes (the first ones) whose frames are recorded; default min(episodes, the demo recipe's). */
  frames?: number;
  /** bc: a frame's S² map every this many control steps (default 1); the steps between see the latest one. */
  frameEvery?: number;
  /** Progress per stage: `done` of `total` episodes. */
  onProgress?: (stage: 'episodes' | 'frames', done: number, total: number) => void;
  /** Stages that give no count (the detector's controller rows). */
  log?: (line: string) => void;
}

export interface LinearCollectResult {
  head: 'linear';
  out: string;
  episodes: number;
  rows: number;
  featureDim: number;
}

export interface DetectorCollectResult {
  head: 'detector';
  out: string;
  episodes: number;
  frames: number;
  /** Features per frame (channels × grid). */
  featureDim: number;
  controllerRows: number;
}

export interface BcCollectResult {
  head: 'bc';
  out: string;
  episodes: number;
  rows: number;
  frames: number;
  /** Features per frame (channels × grid). */
  featureDim: number;
}

export type SimCollectResult = LinearCollectResult | DetectorCollectResult | BcCollectResult;

/** Collects expert demonstrations into `o.out` (a fresh folder put in place only when complete). */
export async function simCollect(o: SimCollectOptions): Promise<SimCollectResult> {
  const head = o.head ?? 'linear';
  if (head !== 'linear' && head !== 'detector' && head !== 'bc') throw new UserError(`sim collect: head must be linear, detector or bc, got '${String(head)}'`);
  const sizes = o.sizes ?? DEMO_SIZES;
  const episodes = o.episodes ?? 24;
  const seed = o.seed ?? 1000;
  if (head === 'detector') return collectDetector(o.out, sizes, episodes, o.frames ?? Math.min(episodes, DEMO_RECIPE.perceptionEpisodes), seed, o);
  if (head === 'bc') return collectBc(o.out, sizes, episodes, seed, o.frameEvery ?? 1, o);
  return withAtomicDir(
    o.out,
    async (tmp) => {
      // A 16×16 grid of every channel: the linear head's (ridge probe's) input, of a size that fits in memory.
      const config = simConfig(tmp, { sizes, pool: 'grid:16' });
      await ensureDemoBackbone(config.backbone.model);
      const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
      const extractor = runtime.extractor as FeatureExtractor;
      try {
        const t0 = performance.now();
        o.onProgress?.('episodes', 0, episodes);
        const d = await collectDemos(extractor, episodes, seed, (e) => o.onProgress?.('episodes', e + 1, episodes));
        const msPerFrame = (performance.now() - t0) / d.rows;
        writeNpy(join(tmp, 'features.npy'), { dims: [d.rows, d.featureDim], data: d.features });
        writeNpy(join(tmp, 'state.npy'), { dims: [d.rows, 2], data: d.state });
        writeNpy(join(tmp, 'actions.npy'), { dims: [d.rows, 2], data: d.actions });
        writeNpy(join(tmp, 'episodes.npy'), { dims: [d.rows], data: Float32Array.from(d.episodes) });
        const index = {
          generator: 's2-policy sim collect',
          episodes,
          seed,
          rows: d.rows,
          featureDim: d.featureDim,
          sizes,
          backbone: 'k-means filters pretrained on simulated frames (src/sim/pretrain.ts)',
          pool: config.features.pool,
          channels: extractor.layout.channels,
          frame_period_ms: 1000 * new TabletopSim().options.dt,
          processing_ms: Number(msPerFrame.toFixed(2)),
        };
        writeFileAtomic(join(tmp, 'index.json'), JSON.stringify(index, null, 2));
        return { head: 'linear', out: o.out, episodes, rows: d.rows, featureDim: d.featureDim };
      } finally {
        await runtime.release();
      }
    },
    '--out',
  );
}

/** Unlabelled demonstrations for the bc head, as readBcFolder reads them (scripts/train_head.py too). */
async function collectBc(
  out: string,
  sizes: [number, number][],
  episodes: number,
  seed: number,
  frameEvery: number,
  o: SimCollectOptions,
): Promise<BcCollectResult> {
  return withAtomicDir(
    out,
    async (tmp) => {
      const config = simConfig(tmp, { sizes, pool: 'tokens' });
      await ensureDemoBackbone(config.backbone.model);
      const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
      const extractor = runtime.extractor as FeatureExtractor;
      try {
        o.onProgress?.('episodes', 0, episodes);
        const frameMs: number[] = [];
        const d = await collectBcDemos(extractor, episodes, seed, frameEvery, {}, (e) => o.onProgress?.('episodes', e + 1, episodes), frameMs);
        // The median: the first frames also warm the backbone's session up.
        frameMs.sort((a, b) => a - b);
        writeBcFiles(tmp, d, {
          generator: 's2-policy sim collect --head bc',
          episodes,
          seed,
          sizes,
          backbone: 'k-means filters pretrained on simulated frames (src/sim/pretrain.ts)',
          frame_every: frameEvery,
          // The closed loop sees a frame every control step (50 ms): the chunk fit chooses is for that camera.
          frame_period_ms: 1000 * new TabletopSim().options.dt,
          processing_ms: Number(frameMs[Math.floor(frameMs.length / 2)].toFixed(2)),
        });
        return { head: 'bc', out, episodes, rows: d.rows, frames: d.frames, featureDim: d.channels * d.height * d.width };
      } finally {
        await runtime.release();
      }
    },
    '--out',
  );
}

/** The demo recipe's data for the detector head, as files `fit --head detector` reads. */
async function collectDetector(
  out: string,
  sizes: [number, number][],
  episodes: number,
  frames: number,
  seed: number,
  o: SimCollectOptions,
): Promise<DetectorCollectResult> {
  const chunk = DEMO_RECIPE.chunk;
  return withAtomicDir(
    out,
    async (tmp) => {
      const config = simConfig(tmp, { sizes });
      await ensureDemoBackbone(config.backbone.model);
      const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
      const extractor = runtime.extractor as FeatureExtractor;
      try {
        const scenes = Math.min(frames, episodes);
        o.onProgress?.('frames', 0, scenes);
        const p = await collectPerception(extractor, scenes, seed, DEMO_RECIPE.framesPerEpisode, {}, (e) => o.onProgress?.('frames', e + 1, scenes));
        const per = p.channels * p.height * p.width;
        writeNpy(join(tmp, 'features.npy'), { dims: [p.rows, per], data: p.features });
        // Keypoints in [-1, 1] (x across, y down), as the controller takes them.
        const kp = Float32Array.from(p.labels, (v, i) => (v / (i % 2 === 0 ? p.width : p.height)) * 2 - 1);
        writeNpy(join(tmp, 'keypoints.npy'), { dims: [p.rows, 2], data: kp });
        writeNpy(join(tmp, 'episodes.npy'), { dims: [p.rows], data: Float32Array.from(p.groups) });
        o.log?.(`controller rows: every state of ${episodes} expert episodes and ${DEMO_RECIPE.controllerPerturbed} perturbed states around each…`);
        const c = controllerRows(episodes, seed, chunk, DEMO_RECIPE.controllerPerturbed, DEMO_RECIPE.controllerNoisePx);
        mkdirSync(join(tmp, 'controller'));
        writeNpy(join(tmp, 'controller', 'keypoints.npy'), { dims: [c.rows, 2], data: c.keypoints });
        writeNpy(join(tmp, 'controller', 'state.npy'), { dims: [c.rows, 2], data: c.state });
        writeNpy(join(tmp, 'controller', 'actions.npy'), { dims: [c.rows, chunk * 2], data: c.targets });
        const index = {
          generator: 's2-policy sim collect --head detector',
          episodes,
          seed,
          rows: p.rows,
          sizes,
          pool: config.features.pool,
          channels: p.channels,
          grid_height: p.height,
          grid_width: p.width,
          chunk,
          controller_rows: c.rows,
        };
        writeFileAtomic(join(tmp, 'index.json'), JSON.stringify(index, null, 2));
        return { head: 'detector', out, episodes, frames: p.rows, featureDim: per, controllerRows: c.rows };
      } finally {
        await runtime.release();
      }
    },
    '--out',
  );
}
