// What the policy's detector sees, for evaluation only: on scenes apart from every demonstration and closed-loop
// seed, the keypoint the policy model outputs for the first frame, against the target's centre (the scene's truth,
// which never reaches pretraining or fitting). Also the cost of one frame.
import { readFileSync } from 'node:fs';
import { OrtSession } from '../backbone/ort-session.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { simFrameFeatures } from './closed-loop.js';
import type { TabletopSimOptions } from './options.js';
import { TabletopSim } from './tabletop.js';

export interface KeypointAccuracy {
  /** Scenes whose keypoint is within the success radius (in pixels) of the target's centre. */
  within: number;
  tested: number;
  /** Median keypoint error, pixels. */
  medianPx: number;
  /** The radius used, pixels. */
  radiusPx: number;
  /** Median render + ingest + S² time per frame, ms. */
  msPerFrame: number;
  featuresPerFrame: number;
}

/** Scene seeds of the keypoint check (apart from demonstrations and closed-loop evaluation). */
export const PROBE_SEED = 20_000;

/** Runs `model`'s 'keypoint' output (a detector-head policy) on the first frame of `scenes` scenes. */
export async function keypointAccuracy(
  extractor: FeatureExtractor,
  model: string,
  scenes: number,
  simOptions: TabletopSimOptions = {},
): Promise<KeypointAccuracy> {
  const sim = new TabletopSim(simOptions);
  const session = await OrtSession.create(readFileSync(model), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const { width, height, successRadius } = sim.options;
  const radiusPx = successRadius * sim.camera.scale;
  const errors: number[] = [];
  const times: number[] = [];
  let featuresPerFrame = 0;
  try {
    for (let s = 0; s < scenes; s++) {
      sim.reset(PROBE_SEED + s);
      const t0 = performance.now();
      const f = await simFrameFeatures(extractor, sim.render());
      times.push(performance.now() - t0);
      featuresPerFrame = f.length;
      const out = await session.run({ features: { dims: [1, f.length], data: f }, state: { dims: [1, 2], data: new Float32Array(2) } }, ['keypoint']);
      const [kx, ky] = out.keypoint.data;
      const t = sim.scene.target;
      errors.push(Math.hypot(((kx + 1) / 2) * width - t.u, ((ky + 1) / 2) * height - t.v));
    }
  } finally {
    await session.release();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    within: errors.filter((e) => e <= radiusPx).length,
    tested: scenes,
    medianPx: median(errors),
    radiusPx,
    msPerFrame: median(times),
    featuresPerFrame,
  };
}
