// Scripted expert episodes without rendering: the trajectory the expert drives, for tests and demonstrations.
import type { TabletopSim } from './tabletop.js';

export interface TrajectoryStep {
  /** Joint positions and velocities before the action (the observation). */
  position: [number, number];
  velocity: [number, number];
  /** End effector before the action: table frame (metres) and pixels. */
  effector: [number, number];
  effectorPx: [number, number];
  /** The expert's joint velocities (rad/s), as sent to step(). */
  action: Float32Array;
  /** Outcome of the step. */
  distance: number;
  success: boolean;
  done: boolean;
}

export interface ExpertEpisode {
  seed: number;
  success: boolean;
  steps: number;
  finalDistance: number;
  trajectory: TrajectoryStep[];
  /** End-effector pixels from the start pose through every step (steps + 1 points), for renderEpisodesPng. */
  points: [number, number][];
  /** The target's centre in pixels. */
  target: [number, number];
}

/** Resets `sim` to `seed` and lets the expert act until the episode ends. */
export function runExpertEpisode(sim: TabletopSim, seed: number): ExpertEpisode {
  sim.reset(seed);
  const trajectory: TrajectoryStep[] = [];
  const points: [number, number][] = [sim.armPixels().effector];
  let status = sim.status;
  while (!status.done) {
    const [q1, q2] = sim.joints;
    const [v1, v2] = sim.jointVelocities;
    const effectorPx = points[points.length - 1];
    const effector = sim.effector();
    const action = sim.expertAction();
    status = sim.step(action);
    trajectory.push({
      position: [q1, q2],
      velocity: [v1, v2],
      effector,
      effectorPx,
      action,
      distance: status.distance,
      success: status.success,
      done: status.done,
    });
    points.push(sim.armPixels().effector);
  }
  const t = sim.scene.target;
  return { seed, success: status.success, steps: status.steps, finalDistance: status.distance, trajectory, points, target: [t.u, t.v] };
}
