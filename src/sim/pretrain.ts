// Pretrains the demo backbone without task labels, in the manner of Coates & Ng (2011): image patches sampled from
// the simulation's own frames at every S² scale, ZCA-whitened, clustered by k-means; the centroids become the
// filters of a convolution (whitening folded into the weights), followed by a soft threshold and pooling.
// Deterministic: the same options give byte-identical ONNX. Nothing here reads the target's position, an action or
// an outcome; the frames are rendered scenes with the arm at random poses.
import { createHash } from 'node:crypto';
import { createIngester, type Ingester } from '../image/ingest.js';
import { presetNormalization } from '../image/normalize.js';
import { OnnxGraph } from '../onnx/builder.js';
import { Rng } from './random.js';
import { TabletopSim } from './tabletop.js';

export interface PretrainOptions {
  /** Seed of the patch sampling and k-means initialisation (default 1). */
  seed?: number;
  /** [height, width] of each resolution the backbone will see; patches are drawn from all of them. */
  sizes: [number, number][];
  /** Number of filters (k-means centroids), default 64. */
  filters?: number;
  /** Patch side in pixels (odd), default 5. */
  patch?: number;
  /** Number of scenes rendered, default 24 (scene seeds 700000 + i, apart from demo and evaluation seeds). */
  scenes?: number;
  /** Patches kept for k-means, default 20000. */
  patches?: number;
  /** k-means iterations, default 20. */
  iterations?: number;
}

export interface PretrainResult {
  onnx: Uint8Array;
  /** sha256 of the filter weights and biases (float32 bytes). */
  weightsHash: string;
  filters: number;
  patch: number;
  patchesUsed: number;
  seconds: number;
}

/** Soft threshold of the encoder (Coates & Ng's "soft threshold" encoding with α on unit-norm centroids). */
const ALPHA = 0.25;
/**
 * Whitening regulariser, added to the covariance's eigenvalues (normalised-pixel² units): large enough that the
 * table's faint grain is not amplified to the level of object edges and colours.
 */
const ZCA_EPS = 0.5;
/** Scene seeds used for pretraining frames (the demos start at 1000, the evaluation at 0). */
export const PRETRAIN_SCENE_SEED = 700_000;

/** Symmetric eigen-decomposition by cyclic Jacobi rotations: returns eigenvalues and row-major eigenvectors (columns). */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => m[i * n + i]), vectors: v };
}

/** Frames of the simulation (arm at random poses) ingested at each size exactly as the pipeline does. */
async function sampleImages(sizes: [number, number][], scenes: number, rng: Rng): Promise<{ data: Float32Array; h: number; w: number }[]> {
  const ingesters: Ingester[] = sizes.map((s) =>
    createIngester({ crop: 'none', resize: 'reference', baseSize: s, normalization: presetNormalization('imagenet', 'pretrain'), maxPixels: 1 << 24 }),
  );
  const sim = new TabletopSim();
  const images: { data: Float32Array; h: number; w: number }[] = [];
  for (let s = 0; s < scenes; s++) {
    sim.reset(PRETRAIN_SCENE_SEED + s);
    const steps = rng.int(0, 40);
    for (let k = 0; k < steps && !sim.status.done; k++) sim.step([rng.range(-1, 1), rng.range(-1, 1)]);
    const frame = sim.render();
    for (let i = 0; i < sizes.length; i++) {
      const r = await ingesters[i].ingest(frame, 'raw');
      if (!r.ok) throw new Error(`pretraining frame rejected: ${r.detail}`);
      images.push({ data: r.base.data, h: sizes[i][0], w: sizes[i][1] });
    }
  }
  return images;
}

/**
 * Samples patches (3·p·p values, channel-major as a Conv weight) uniformly over positions; keeps the more varied
 * half (a flat patch of table carries nothing to cluster), a label-free choice.
 */
function samplePatches(images: { data: Float32Array; h: number; w: number }[], p: number, count: number, rng: Rng): Float64Array {
  const dim = 3 * p * p;
  const candidates = count * 2;
  const raw = new Float64Array(candidates * dim);
  const variance = new Float64Array(candidates);
  for (let n = 0; n < candidates; n++) {
    const img = images[rng.int(0, images.length - 1)];
    const y0 = rng.int(0, img.h - p);
    const x0 = rng.int(0, img.w - p);
    let s = 0;
    let s2 = 0;
    for (let c = 0; c < 3; c++) {
      for (let dy = 0; dy < p; dy++) {
        for (let dx = 0; dx < p; dx++) {
          const v = img.data[c * img.h * img.w + (y0 + dy) * img.w + x0 + dx];
          raw[n * dim + c * p * p + dy * p + dx] = v;
          s += v;
          s2 += v * v;
        }
      }
    }
    variance[n] = s2 / dim - (s / dim) ** 2;
  }
  const order = Array.from({ length: candidates }, (_, i) => i).sort((a, b) => variance[b] - variance[a] || a - b);
  const out = new Float64Array(count * dim);
  for (let i = 0; i < count; i++) out.set(raw.subarray(order[i] * dim, (order[i] + 1) * dim), i * dim);
  return out;
}

/** Spherical k-means on rows of x (n × d), seeded; returns unit-norm centroids (k × d). */
function sphericalKMeans(x: Float64Array, n: number, d: number, k: number, iterations: number, rng: Rng): Float64Array {
  const c = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    const i = rng.int(0, n - 1);
    for (let t = 0; t < d; t++) c[j * d + t] = x[i * d + t] + 1e-3 * rng.range(-1, 1);
  }
  const normalise = () => {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += c[j * d + t] ** 2;
      const inv = 1 / Math.sqrt(s || 1);
      for (let t = 0; t < d; t++) c[j * d + t] *= inv;
    }
  };
  normalise();
  const acc = new Float64Array(k * d);
  const counts = new Int32Array(k);
  for (let it = 0; it < iterations; it++) {
    acc.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestDot = -Infinity;
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += c[j * d + t] * x[i * d + t];
        if (dot > bestDot) {
          bestDot = dot;
          best = j;
        }
      }
      counts[best]++;
      for (let t = 0; t < d; t++) acc[best * d + t] += x[i * d + t];
    }
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) {
        // An empty cluster restarts at a random patch.
        const i = rng.int(0, n - 1);
        for (let t = 0; t < d; t++) c[j * d + t] = x[i * d + t];
      } else {
        for (let t = 0; t < d; t++) c[j * d + t] = acc[j * d + t];
      }
    }
    normalise();
  }
  return c;
}

/** Pretrains the filters and writes the backbone: Conv(p×p, k filters, stride 1) → Relu(· − α) → MaxPool 4: B×k×H/4×W/4. */
export async function pretrainBackbone(o: PretrainOptions): Promise<PretrainResult> {
  const t0 = performance.now();
  const seed = o.seed ?? 1;
  const k = o.filters ?? 64;
  const p = o.patch ?? 5;
  if (p % 2 !== 1) throw new Error(`pretrain: patch must be odd, got ${p}`);
  const rng = new Rng(seed);
  const images = await sampleImages(o.sizes, o.scenes ?? 24, rng);
  const count = o.patches ?? 20000;
  const d = 3 * p * p;
  const x = samplePatches(images, p, count, rng);

  // Mean and covariance, then ZCA: W = V·diag(1/√(λ+ε))·Vᵀ.
  const mean = new Float64Array(d);
  for (let i = 0; i < count; i++) for (let t = 0; t < d; t++) mean[t] += x[i * d + t];
  for (let t = 0; t < d; t++) mean[t] /= count;
  for (let i = 0; i < count; i++) for (let t = 0; t < d; t++) x[i * d + t] -= mean[t];
  const cov = new Float64Array(d * d);
  for (let i = 0; i < count; i++) {
    const row = i * d;
    for (let a = 0; a < d; a++) {
      const xa = x[row + a];
      for (let b = a; b < d; b++) cov[a * d + b] += xa * x[row + b];
    }
  }
  for (let a = 0; a < d; a++) for (let b = a; b < d; b++) cov[b * d + a] = cov[a * d + b] /= count;
  const { values, vectors } = symmetricEigen(cov, d);
  const zca = new Float64Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += (vectors[a * d + e] * vectors[b * d + e]) / Math.sqrt(Math.max(0, values[e]) + ZCA_EPS);
      zca[a * d + b] = s;
    }
  }
  const white = new Float64Array(count * d);
  for (let i = 0; i < count; i++) {
    for (let a = 0; a < d; a++) {
      let s = 0;
      for (let b = 0; b < d; b++) s += zca[a * d + b] * x[i * d + b];
      white[i * d + a] = s;
    }
  }
  const centroids = sphericalKMeans(white, count, d, k, o.iterations ?? 20, rng);

  // Response r = cᵀ·Z·(x − μ) = (Z·c)ᵀx − (Z·c)ᵀμ (Z symmetric): a conv weight and bias.
  const weight = new Float32Array(k * d);
  const bias = new Float32Array(k);
  for (let j = 0; j < k; j++) {
    let b = 0;
    for (let a = 0; a < d; a++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += zca[a * d + e] * centroids[j * d + e];
      weight[j * d + a] = s;
      b -= s * mean[a];
    }
    bias[j] = b - ALPHA;
  }
  const g = new OnnxGraph('s2_sim_kmeans');
  g.metadata['s2.kind'] = 'convnet';
  g.metadata['s2.mean'] = '0.485,0.456,0.406';
  g.metadata['s2.std'] = '0.229,0.224,0.225';
  g.metadata['s2.pretraining'] =
    `k-means (Coates & Ng 2011) on ${count} ZCA-whitened ${p}x${p} patches of ${o.scenes ?? 24} simulated scenes at ${o.sizes.map((s) => s.join('x')).join(', ')}; seed ${seed}`;
  const input = g.input('pixel_values', ['batch', 3, 'height', 'width']);
  const w = g.weight('encoder.weight', [k, 3, p, p], weight);
  const b = g.weight('encoder.bias', [k], bias);
  const r = g.op('Relu', [g.op('Conv', [input, w, b], { kernel_shape: [p, p], pads: [p >> 1, p >> 1, p >> 1, p >> 1] })]);
  // Max over 4×4 keeps a small object's response undiluted by the table around it.
  g.op('MaxPool', [r], { kernel_shape: [4, 4], strides: [4, 4] }, 'features');
  g.output('features', ['batch', k, 'out_height', 'out_width']);
  const hash = createHash('sha256').update(new Uint8Array(weight.buffer)).update(new Uint8Array(bias.buffer)).digest('hex');
  return { onnx: g.serialize(), weightsHash: hash, filters: k, patch: p, patchesUsed: count, seconds: (performance.now() - t0) / 1000 };
}
