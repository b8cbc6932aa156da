// Normalisation statistics stored next to a policy model (LeRobot's convention): per key, mean/std or min/max.
import { readFileSync, existsSync } from 'node:fs';
import { UserError } from '../errors.js';

export type StatsEntry = { kind: 'mean_std'; mean: Float32Array; std: Float32Array } | { kind: 'min_max'; min: Float32Array; max: Float32Array };

/** Keys: 'observation.features', 'observation.state', 'action' (others are ignored). */
export type PolicyStats = Record<string, StatsEntry>;

const EPS = 1e-8;

function numbers(v: unknown, where: string): Float32Array {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new UserError(`${where} must be a non-empty array of finite numbers`);
  }
  return Float32Array.from(v as number[]);
}

export function parseStats(json: unknown, file: string): PolicyStats {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${file}: expected a JSON object of statistics`);
  const out: PolicyStats = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) throw new UserError(`${file}: '${key}' must be an object with mean/std or min/max`);
    const v = value as Record<string, unknown>;
    if ('mean' in v || 'std' in v) {
      const mean = numbers(v.mean, `${file}: ${key}.mean`);
      const std = numbers(v.std, `${file}: ${key}.std`);
      if (mean.length !== std.length) throw new UserError(`${file}: ${key}.mean has ${mean.length} values, ${key}.std ${std.length}`);
      out[key] = { kind: 'mean_std', mean, std };
    } else if ('min' in v || 'max' in v) {
      const min = numbers(v.min, `${file}: ${key}.min`);
      const max = numbers(v.max, `${file}: ${key}.max`);
      if (min.length !== max.length) throw new UserError(`${file}: ${key}.min has ${min.length} values, ${key}.max ${max.length}`);
      out[key] = { kind: 'min_max', min, max };
    } else {
      throw new UserError(`${file}: '${key}' has neither mean/std nor min/max`);
    }
  }
  return out;
}

export function loadStats(file: string): PolicyStats {
  if (!existsSync(file)) throw new UserError(`${file}: no such statistics file`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return parseStats(json, file);
}

export function statsLength(e: StatsEntry): number {
  return e.kind === 'mean_std' ? e.mean.length : e.min.length;
}

/** In place: x ← (x − mean)/(std + ε), or x ← 2(x − min)/(max − min + ε) − 1; the entry repeats along x. */
export function normalizeInPlace(x: Float32Array, e: StatsEntry): void {
  const n = statsLength(e);
  for (let i = 0; i < x.length; i++) {
    const k = i % n;
    x[i] = e.kind === 'mean_std' ? (x[i] - e.mean[k]) / (e.std[k] + EPS) : (2 * (x[i] - e.min[k])) / (e.max[k] - e.min[k] + EPS) - 1;
  }
}

/** The inverse of normalizeInPlace. */
export function unnormalizeInPlace(x: Float32Array, e: StatsEntry): void {
  const n = statsLength(e);
  for (let i = 0; i < x.length; i++) {
    const k = i % n;
    x[i] = e.kind === 'mean_std' ? x[i] * (e.std[k] + EPS) + e.mean[k] : ((x[i] + 1) / 2) * (e.max[k] - e.min[k] + EPS) + e.min[k];
  }
}
