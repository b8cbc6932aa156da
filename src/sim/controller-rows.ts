// The detector head's controller data: the demonstrations' keypoint labels (where the demonstrator's gripper comes
// to rest) and (keypoint, joint state) → expert action chunk rows, without camera frames; and the controller fitted
// in a worker thread.
import { Worker } from 'node:worker_threads';
import type { ControllerOptions, ControllerParams } from '../policy/detector.js';
import { runExpertEpisode } from './expert.js';
import { expertJointVelocities, forwardKinematics, type Vec2 } from './kinematics.js';
import type { TabletopSimOptions } from './options.js';
import { Rng } from './random.js';
import { TabletopSim } from './tabletop.js';

/**
 * Where the demonstrator's gripper comes to rest: the expert keeps acting after the episode's success until it
 * settles, and the end effector's pixel (forward kinematics, the camera model) is the demonstration's keypoint label.
 */
export function settledEffectorPixel(sim: TabletopSim): [number, number] {
  const o = sim.options;
  const t = sim.scene.target;
  let q: Vec2 = sim.joints;
  const v = new Float32Array(2);
  for (let k = 0; k < 80; k++) {
    expertJointVelocities(q, [t.x, t.y], o.linkLengths, o.jointLimits, o.maxJointVelocity, v);
    q = [q[0] + v[0] * o.dt, q[1] + v[1] * o.dt];
  }
  const [x, y] = forwardKinematics(q[0], q[1], o.linkLengths).effector;
  return sim.camera.toPixel(x, y);
}

/** The expert's next `chunk` joint-velocity actions from joint state q (integrated as the sim does, without joint limits). */
function expertChunk(sim: TabletopSim, q: Vec2, chunk: number, out: Float32Array, offset: number): void {
  const o = sim.options;
  const t = sim.scene.target;
  let cur = q;
  const v = new Float32Array(2);
  for (let k = 0; k < chunk; k++) {
    expertJointVelocities(cur, [t.x, t.y], o.linkLengths, o.jointLimits, o.maxJointVelocity, v);
    out[offset + 2 * k] = v[0];
    out[offset + 2 * k + 1] = v[1];
    cur = [cur[0] + v[0] * o.dt, cur[1] + v[1] * o.dt];
  }
}

/**
 * The controller's rows: every state of `episodes` expert episodes, and `perturbed` joint states around each, with
 * the expert's action chunk from that state as the label and the episode's keypoint (its settled gripper pixel in
 * [-1, 1], with `noisePx` of Gaussian noise) as the input. No frames are needed: the detector supplies the keypoint.
 */
export function controllerRows(episodes: number, seed: number, chunk: number, perturbed: number, noisePx: number, simOptions: TabletopSimOptions = {}) {
  const sim = new TabletopSim({ ...simOptions, seed });
  const rng = new Rng(seed ^ 0xc0a7);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(1e-12, rng.next()))) * Math.cos(2 * Math.PI * rng.next());
  const kps: number[] = [];
  const states: number[] = [];
  const chunks: number[] = [];
  const tmp = new Float32Array(chunk * 2);
  const { width, height, jointLimits } = sim.options;
  const push = (u: number, v: number, q: Vec2) => {
    kps.push(((u + noisePx * gauss()) / width) * 2 - 1, ((v + noisePx * gauss()) / height) * 2 - 1);
    states.push(q[0], q[1]);
    expertChunk(sim, q, chunk, tmp, 0);
    for (const a of tmp) chunks.push(a);
  };
  for (let e = 0; e < episodes; e++) {
    const ep = runExpertEpisode(sim, seed + e);
    const [u, v] = settledEffectorPixel(sim);
    for (const step of ep.trajectory) {
      push(u, v, step.position);
      for (let k = 0; k < perturbed; k++) {
        const sd = rng.next() < 0.5 ? 0.05 : 0.4;
        const q: Vec2 = [
          Math.min(jointLimits[0][1] - 0.05, Math.max(jointLimits[0][0] + 0.05, step.position[0] + sd * gauss())),
          Math.min(jointLimits[1][1] - 0.05, Math.max(jointLimits[1][0] + 0.05, step.position[1] + sd * gauss())),
        ];
        push(u, v, q);
      }
    }
  }
  const rows = states.length / 2;
  return { keypoints: Float32Array.from(kps), state: Float32Array.from(states), targets: Float32Array.from(chunks), rows, stateDim: 2, chunk, actionDim: 2 };
}

export interface ControllerJob {
  episodes: number;
  seed: number;
  chunk: number;
  perturbed: number;
  noisePx: number;
  simOptions: TabletopSimOptions;
  fit: Omit<ControllerOptions, 'log'>;
}

/** controllerRows + fitController in a worker thread: the caller's thread stays free (for the detector's training). */
export interface ControllerResult {
  params: ControllerParams;
  rows: number;
  trainMse: number;
  seconds: number;
}

export function fitControllerInWorker(job: ControllerJob): Promise<ControllerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./controller-worker.js', import.meta.url), { workerData: job });
    worker.once('message', (m: ControllerResult) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`controller worker exited with code ${code}`));
    });
  });
}
