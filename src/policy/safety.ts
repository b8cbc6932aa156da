// Limits applied to every commanded action: per-dimension clamps and a maximum change per control tick.

export interface ActionLimits {
  lower?: readonly number[];
  upper?: readonly number[];
  /** Largest change of each dimension from one tick's command to the next. */
  maxDelta?: readonly number[];
}

export function isFiniteArray(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/** Clamps `action` (in place) to [lower, upper] and to within maxDelta of `previous` when there is one. */
export function limitAction(action: Float32Array, limits: ActionLimits, previous?: Float32Array): Float32Array {
  for (let d = 0; d < action.length; d++) {
    let v = action[d];
    if (previous && limits.maxDelta) {
      const m = limits.maxDelta[d];
      v = Math.min(Math.max(v, previous[d] - m), previous[d] + m);
    }
    if (limits.lower) v = Math.max(v, limits.lower[d]);
    if (limits.upper) v = Math.min(v, limits.upper[d]);
    action[d] = v;
  }
  return action;
}
