// Planar two-link arm kinematics in the base frame (x forward across the table, y to the left, metres; angles in
// radians, counter-clockwise seen from above): forward kinematics, analytic inverse kinematics, and the expert's
// joint-space controller.

export type Vec2 = readonly [number, number];
export type Limits = readonly [readonly [number, number], readonly [number, number]];

export interface ArmPose {
  elbow: Vec2;
  effector: Vec2;
}

export function forwardKinematics(q1: number, q2: number, links: Vec2): ArmPose {
  const ex = links[0] * Math.cos(q1);
  const ey = links[0] * Math.sin(q1);
  const a = q1 + q2;
  return { elbow: [ex, ey], effector: [ex + links[1] * Math.cos(a), ey + links[1] * Math.sin(a)] };
}

function wrap(a: number): number {
  return Math.atan2(Math.sin(a), Math.cos(a));
}

/**
 * The joint angles that put the end effector at (x, y): none, or the elbow-positive and elbow-negative solutions
 * that lie within the limits shrunk by `margin`.
 */
export function inverseKinematics(x: number, y: number, links: Vec2, limits: Limits, margin = 0): [number, number][] {
  const [l1, l2] = links;
  const c2 = (x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2);
  if (c2 > 1 || c2 < -1) return [];
  const out: [number, number][] = [];
  for (const sign of [1, -1]) {
    const q2 = sign * Math.acos(c2);
    const q1 = wrap(Math.atan2(y, x) - Math.atan2(l2 * Math.sin(q2), l1 + l2 * Math.cos(q2)));
    const inside = q1 >= limits[0][0] + margin && q1 <= limits[0][1] - margin && q2 >= limits[1][0] + margin && q2 <= limits[1][1] - margin;
    if (inside && !(sign === -1 && q2 === 0)) out.push([q1, q2]);
  }
  return out;
}

/** Proportional gain of the expert's joint-space controller, 1/s: at 20 Hz each step closes 20% of the error. */
export const EXPERT_GAIN = 4;

/**
 * The scripted expert: analytic IK to the target (the solution nearest the current joints), then a P-controller
 * in joint space, scaled as a whole (keeping its direction) so that no joint exceeds the velocity limit. A straight
 * line in joint space stays inside the box-shaped joint limits, so the expert never runs into a limit.
 */
export function expertJointVelocities(
  q: Vec2,
  target: Vec2,
  links: Vec2,
  limits: Limits,
  maxVelocity: number,
  out: Float32Array = new Float32Array(2),
): Float32Array {
  const solutions = inverseKinematics(target[0], target[1], links, limits);
  if (solutions.length === 0) throw new Error(`sim: target (${target[0]}, ${target[1]}) is not reachable within the joint limits`);
  let best = solutions[0];
  let bestCost = Infinity;
  for (const s of solutions) {
    const cost = Math.max(Math.abs(s[0] - q[0]), Math.abs(s[1] - q[1]));
    if (cost < bestCost) {
      bestCost = cost;
      best = s;
    }
  }
  let v1 = EXPERT_GAIN * (best[0] - q[0]);
  let v2 = EXPERT_GAIN * (best[1] - q[1]);
  const peak = Math.max(Math.abs(v1), Math.abs(v2));
  if (peak > maxVelocity) {
    v1 *= maxVelocity / peak;
    v2 *= maxVelocity / peak;
  }
  out[0] = v1;
  out[1] = v2;
  return out;
}
