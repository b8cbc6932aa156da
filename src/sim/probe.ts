// A linear probe of what the features hold about the target (the paper's protocol, used here for evaluation only):
// one linear score per grid cell over the channels, softmax over the cells, trained on scenes whose target cell is
// known, scored on other scenes. The labels never reach the backbone's pretraining or the policy heads.
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { seededRandom } from '../models/zoo.js';
import type { TabletopSimOptions } from './options.js';
import { TabletopSim } from './tabletop.js';

export interface ProbeResult {
  /** Held-out scenes whose target cell is the probe's top cell. */
  exact: number;
  /** … or one of its 8 neighbours. */
  near: number;
  tested: number;
  trained: number;
  /** Median ingest + S² + pooling time per frame, ms. */
  msPerFrame: number;
  featuresPerFrame: number;
}

/** Scene seeds of the probe (apart from demonstrations, DAgger and closed-loop evaluation). */
export const PROBE_SEED = 20_000;

export async function probeTargetCell(
  extractor: FeatureExtractor,
  grid: number,
  scenes: number,
  simOptions: TabletopSimOptions = {},
  iterations = 300,
): Promise<ProbeResult> {
  const sim = new TabletopSim(simOptions);
  const feats: Float32Array[] = [];
  const labels: number[] = [];
  const times: number[] = [];
  const { width, height } = sim.options;
  for (let s = 0; s < scenes; s++) {
    sim.reset(PROBE_SEED + s);
    const frame = sim.render();
    const t0 = performance.now();
    const r = await extractor.ingester.ingest(frame, 'raw');
    if (!r.ok) throw new Error(`probe frame rejected: ${r.detail}`);
    const [f] = await extractor.extract([{ base: r.base, scales: r.scales }]);
    times.push(performance.now() - t0);
    feats.push(f);
    const t = sim.scene.target;
    labels.push(Math.min(grid - 1, Math.floor((t.v / height) * grid)) * grid + Math.min(grid - 1, Math.floor((t.u / width) * grid)));
  }
  const L = grid * grid;
  const C = feats[0].length / L;
  const trained = Math.floor(scenes * 0.75);
  // Per-channel standardisation on the training scenes.
  const mean = new Float64Array(C);
  const sd = new Float64Array(C);
  for (let i = 0; i < trained; i++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) mean[c] += feats[i][c * L + l];
  for (let c = 0; c < C; c++) mean[c] /= trained * L;
  for (let i = 0; i < trained; i++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) sd[c] += (feats[i][c * L + l] - mean[c]) ** 2;
  for (let c = 0; c < C; c++) sd[c] = Math.sqrt(sd[c] / (trained * L)) + 1e-6;
  const x = feats.map((f) => Float32Array.from(f, (v, i) => (v - mean[Math.floor(i / L)]) / sd[Math.floor(i / L)]));
  const rand = seededRandom(11);
  const w = Float64Array.from({ length: C }, () => (rand() - 0.5) * 0.01);
  const m1 = new Float64Array(C);
  const m2 = new Float64Array(C);
  const s = new Float64Array(L);
  const scores = (xi: Float32Array) => {
    s.fill(0);
    for (let c = 0; c < C; c++) {
      const wc = w[c];
      for (let l = 0; l < L; l++) s[l] += wc * xi[c * L + l];
    }
  };
  for (let it = 1; it <= iterations; it++) {
    const g = new Float64Array(C);
    for (let i = 0; i < trained; i++) {
      scores(x[i]);
      let mx = -Infinity;
      for (let l = 0; l < L; l++) mx = Math.max(mx, s[l]);
      let sum = 0;
      for (let l = 0; l < L; l++) sum += s[l] = Math.exp(s[l] - mx);
      for (let l = 0; l < L; l++) s[l] /= sum;
      s[labels[i]] -= 1;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let l = 0; l < L; l++) acc += s[l] * x[i][c * L + l];
        g[c] += acc / trained;
      }
    }
    for (let c = 0; c < C; c++) {
      m1[c] = 0.9 * m1[c] + 0.1 * g[c];
      m2[c] = 0.999 * m2[c] + 0.001 * g[c] * g[c];
      w[c] -= (0.05 * (m1[c] / (1 - 0.9 ** it))) / (Math.sqrt(m2[c] / (1 - 0.999 ** it)) + 1e-8);
    }
  }
  let exact = 0;
  let near = 0;
  for (let i = trained; i < scenes; i++) {
    scores(x[i]);
    let best = 0;
    for (let l = 1; l < L; l++) if (s[l] > s[best]) best = l;
    if (best === labels[i]) exact++;
    if (Math.abs(Math.floor(best / grid) - Math.floor(labels[i] / grid)) <= 1 && Math.abs((best % grid) - (labels[i] % grid)) <= 1) near++;
  }
  times.sort((a, b) => a - b);
  return { exact, near, tested: scenes - trained, trained, msPerFrame: times[Math.floor(times.length / 2)], featuresPerFrame: feats[0].length };
}
