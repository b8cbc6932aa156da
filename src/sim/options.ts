// The simulation's options: defaults, and validation into a resolved object with one-line errors naming the option.
import { UserError } from '../errors.js';

export interface TabletopSimOptions {
  /** Camera image width in pixels (default 640). */
  width?: number;
  /** Camera image height in pixels (default 480). */
  height?: number;
  /** Control period in seconds: one step() advances the clock by this much (default 0.05, i.e. 20 Hz). */
  dt?: number;
  /** Upper and lower arm link lengths in metres (default [0.35, 0.30]). */
  linkLengths?: readonly [number, number];
  /** Joint velocity limit in rad/s, the same for both joints (default 1). */
  maxJointVelocity?: number;
  /** Joint angle limits in radians, [[min1, max1], [min2, max2]] (default ±2.8 for both). */
  jointLimits?: readonly [readonly [number, number], readonly [number, number]];
  /** Target diameter in pixels (default 8). */
  targetSizePx?: number;
  /** The episode succeeds when the end effector is this close to the target centre, in metres (default 0.01). */
  successRadius?: number;
  /** Steps per episode before it ends as a failure (default 200, i.e. 10 s at 20 Hz). */
  stepBudget?: number;
  /** Inclusive range of the number of distractor objects (default [3, 6]). */
  distractors?: readonly [number, number];
  /** Seed of the first episode (default 0); reset(seed) starts the others. */
  seed?: number;
}

export interface ResolvedSimOptions {
  width: number;
  height: number;
  dt: number;
  linkLengths: readonly [number, number];
  maxJointVelocity: number;
  jointLimits: readonly [readonly [number, number], readonly [number, number]];
  targetSizePx: number;
  successRadius: number;
  stepBudget: number;
  distractors: readonly [number, number];
  seed: number;
}

export const SIM_DEFAULTS: Readonly<ResolvedSimOptions> = Object.freeze({
  width: 640,
  height: 480,
  dt: 0.05,
  linkLengths: [0.35, 0.3] as const,
  maxJointVelocity: 1,
  jointLimits: [
    [-2.8, 2.8],
    [-2.8, 2.8],
  ] as const,
  targetSizePx: 8,
  successRadius: 0.01,
  stepBudget: 200,
  distractors: [3, 6] as const,
  seed: 0,
});

const KEYS = new Set(Object.keys(SIM_DEFAULTS));

function fail(key: string, expected: string, got: unknown): never {
  throw new UserError(`sim: ${key} must be ${expected}, got ${show(got)}`);
}

function show(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function integer(key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) fail(key, `an integer from ${lo} to ${hi}`, v);
  return v;
}

function positive(key: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) fail(key, `a number > 0 and ≤ ${max}`, v);
  return v;
}

function pair(key: string, v: unknown): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    fail(key, 'a pair of finite numbers', v);
  }
  return [v[0] as number, v[1] as number];
}

/** Seeds are unsigned 32-bit integers so that every seed names a distinct stream. */
export function checkSeed(seed: unknown, key = 'seed'): number {
  return integer(key, seed, 0, 0xffffffff);
}

export function resolveSimOptions(options: TabletopSimOptions = {}): ResolvedSimOptions {
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new UserError(`sim: unknown option ${key}; known: ${[...KEYS].join(', ')}`);
  }
  const o = { ...SIM_DEFAULTS, ...stripUndefined(options) };
  const width = integer('width', o.width, 64, 8192);
  const height = integer('height', o.height, 48, 8192);
  const dt = positive('dt', o.dt, 1);
  const links = pair('linkLengths', o.linkLengths);
  if (links[0] <= 0 || links[1] <= 0) fail('linkLengths', 'two positive lengths in metres', o.linkLengths);
  const maxJointVelocity = positive('maxJointVelocity', o.maxJointVelocity, 100);
  if (!Array.isArray(o.jointLimits) || o.jointLimits.length !== 2) fail('jointLimits', '[[min1, max1], [min2, max2]]', o.jointLimits);
  const limits = [pair('jointLimits[0]', o.jointLimits[0]), pair('jointLimits[1]', o.jointLimits[1])] as const;
  limits.forEach(([lo, hi], i) => {
    if (!(lo < hi) || lo < -Math.PI || hi > Math.PI) fail(`jointLimits[${i}]`, 'min < max within [-π, π]', [lo, hi]);
  });
  const targetSizePx = integer('targetSizePx', o.targetSizePx, 2, Math.floor(Math.min(width, height) / 8));
  const successRadius = positive('successRadius', o.successRadius, 1);
  const stepBudget = integer('stepBudget', o.stepBudget, 1, 1_000_000);
  const d = pair('distractors', o.distractors);
  if (!Number.isInteger(d[0]) || !Number.isInteger(d[1]) || d[0] < 0 || d[0] > d[1] || d[1] > 12) {
    fail('distractors', 'integers [min, max] with 0 ≤ min ≤ max ≤ 12', o.distractors);
  }
  const seed = checkSeed(o.seed);
  return { width, height, dt, linkLengths: links, maxJointVelocity, jointLimits: limits, targetSizePx, successRadius, stepBudget, distractors: d, seed };
}

function stripUndefined(o: TabletopSimOptions): Partial<ResolvedSimOptions> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
