// Camera frames of the simulation as a backbone batch (N×3×H×W, ingested and normalised exactly as the node feeds
// a base image): calibration and held-out data for INT8 and benchmarks when the user has no recording at hand.
import { createIngester } from '../image/ingest.js';
import type { Normalization } from '../image/normalize.js';
import type { Tensor } from '../s2/tensor.js';
import { TabletopSim } from './tabletop.js';

export interface SimFramesOptions {
  count: number;
  seed: number;
  /** Base size [h, w] of the batch. */
  size: [number, number];
  normalization: Normalization;
  /** Steps of an episode before the next one starts (frames of one episode differ by the arm's motion). */
  episodeFrames?: number;
}

/** `count` frames of expert episodes (a new seeded episode every `episodeFrames` frames), ingested as the node does. */
export async function simFrames(o: SimFramesOptions): Promise<Tensor> {
  const [h, w] = o.size;
  const ingester = createIngester({ crop: 'center', resize: 'reference', baseSize: [h, w], normalization: o.normalization, maxPixels: 4096 * 4096 });
  const sim = new TabletopSim({ seed: o.seed });
  const per = 3 * h * w;
  const data = new Float32Array(o.count * per);
  const episodeFrames = o.episodeFrames ?? 40;
  let episode = 0;
  for (let i = 0; i < o.count; i++) {
    if (i % episodeFrames === 0 || sim.status.done) sim.reset(o.seed + episode++);
    const r = await ingester.ingest(sim.render(), 'raw');
    if (!r.ok) throw new Error(`simulated frame rejected by ingestion: ${r.detail}`);
    data.set(r.base.data, i * per);
    // A few expert steps between frames, so that consecutive frames differ.
    for (let k = 0; k < 3 && !sim.status.done; k++) sim.step(sim.expertAction());
  }
  return { dims: [o.count, 3, h, w], data };
}
