// The one size syntax of the project: a side (224) or height × width (224x336, also written 224×336 or [224, 336]).
// Command-line flags, YAML configs and ROS parameters all parse sizes here.

import type { Size } from '../s2/plan.js';

export type { Size };

/** Largest side accepted anywhere (a 16384² float tensor is already 3 GiB); larger sizes are refused before allocation. */
export const MAX_SIDE = 16384;

/** Parses one size; returns an error text (without the key) instead of throwing, so each caller can name its key. */
export function parseSize(v: unknown): Size | string {
  const side = (n: unknown): number | string => {
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) return `sizes must be positive integers, got ${JSON.stringify(n)}`;
    if (n > MAX_SIDE) return `a side of ${n} exceeds the limit of ${MAX_SIDE}`;
    return n;
  };
  if (typeof v === 'number') return side(v);
  if (Array.isArray(v)) {
    if (v.length !== 2) return `expected a size like 224 or [224, 336], got ${JSON.stringify(v)}`;
    const h = side(v[0]);
    const w = side(v[1]);
    if (typeof h === 'string') return h;
    if (typeof w === 'string') return w;
    return [h, w];
  }
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*$/.exec(v);
    if (!m) return `expected a size like 224 or 224x336, got '${v}'`;
    const h = side(Number(m[1]));
    if (typeof h === 'string') return h;
    if (m[2] === undefined) return h;
    const w = side(Number(m[2]));
    if (typeof w === 'string') return w;
    return [h, w];
  }
  return `expected a size like 224 or 224x336, got ${JSON.stringify(v)}`;
}

/** The size as its canonical text: '224' or '224x336'. */
export function formatSize(s: Size): string {
  return typeof s === 'number' ? String(s) : `${s[0]}x${s[1]}`;
}

/** [height, width] of a size that may be a single side. */
export function pair(s: Size): [number, number] {
  return typeof s === 'number' ? [s, s] : [s[0], s[1]];
}
