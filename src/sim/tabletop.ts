// TabletopSim: a seeded planar two-joint arm reaching for a small target on a textured table, seen by an overhead
// camera, under joint-velocity control on a simulated clock.
import { UserError } from '../errors.js';
import type { ImageMsg, JointStateMsg, Time } from '../msgs/types.js';
import { expertJointVelocities, forwardKinematics, type Vec2 } from './kinematics.js';
import { checkSeed, resolveSimOptions, type ResolvedSimOptions, type TabletopSimOptions } from './options.js';
import { fillCapsule, fillDisc, fillRing, type Canvas, type Rgb } from './raster.js';
import { BASE_RADIUS, CameraGeometry, generateScene, renderBackground, type Scene } from './scene.js';

/** The simulated clock's time at construction (2023-11-14T22:13:20Z): fixed, so stamps are reproducible. */
export const SIM_EPOCH: Readonly<Time> = Object.freeze({ sec: 1_700_000_000, nanosec: 0 });
export const JOINT_NAMES: readonly string[] = Object.freeze(['joint1', 'joint2']);
export const CAMERA_FRAME_ID = 'overhead_camera';

/** Arm drawing sizes in metres (scaled by the camera's pixels per metre) and colours. */
const ARM = {
  link1Radius: 0.012,
  link2Radius: 0.009,
  shoulderRadius: 0.008,
  elbowRadius: 0.007,
  effectorOuter: 0.011,
  effectorInner: 0.0065,
  base: [60, 62, 68] as Rgb,
  link1: [205, 207, 212] as Rgb,
  link1Edge: [120, 122, 130] as Rgb,
  link2: [176, 182, 194] as Rgb,
  link2Edge: [105, 110, 120] as Rgb,
  joint: [70, 72, 80] as Rgb,
  effector: [28, 28, 32] as Rgb,
};

export interface StepResult {
  /** The episode is over: success, or the step budget is spent. */
  done: boolean;
  success: boolean;
  /** End effector to target centre, metres. */
  distance: number;
  /** The same distance in image pixels. */
  distancePx: number;
  /** Steps taken in this episode. */
  steps: number;
}

export interface ArmPixels {
  base: [number, number];
  elbow: [number, number];
  effector: [number, number];
}

export class TabletopSim {
  readonly options: Readonly<ResolvedSimOptions>;
  readonly camera: CameraGeometry;
  private current!: Scene;
  private background: Uint8Array | undefined;
  private readonly q = new Float64Array(2);
  private readonly qd = new Float64Array(2);
  private stepCount = 0;
  private result!: StepResult;
  private elapsedNs = 0;
  private readonly dtNs: number;

  constructor(options: TabletopSimOptions = {}) {
    this.options = Object.freeze(resolveSimOptions(options));
    this.camera = new CameraGeometry(this.options.width, this.options.height);
    this.dtNs = Math.round(this.options.dt * 1e9);
    this.reset(this.options.seed);
  }

  /**
   * Starts the episode of `seed`: a new target, distractors, texture and start pose, joints at rest. The clock keeps
   * running (stamps never go back), so only the clock differs between a reset sim and a fresh one.
   */
  reset(seed: number): void {
    checkSeed(seed);
    this.current = generateScene(seed, this.options, this.camera);
    this.background = undefined;
    this.q[0] = this.current.initialJoints[0];
    this.q[1] = this.current.initialJoints[1];
    this.qd.fill(0);
    this.stepCount = 0;
    this.result = this.evaluate();
  }

  /** The current episode's layout (read-only). */
  get scene(): Readonly<Scene> {
    return this.current;
  }

  /**
   * Applies joint velocities (rad/s) for one control period: each is clamped to ±maxJointVelocity, the joints are
   * integrated over dt and stopped at their limits (the reported velocity is then the one actually achieved).
   */
  step(action: ArrayLike<number>): StepResult {
    if (this.result.done) {
      throw new UserError(
        `sim: the episode of seed ${this.current.seed} is over (${this.result.success ? 'success' : 'step budget spent'} after ${this.stepCount} steps); call reset(seed)`,
      );
    }
    if (action.length !== 2 || !Number.isFinite(action[0]) || !Number.isFinite(action[1])) {
      throw new UserError(`sim: action must be 2 finite joint velocities, got [${Array.from(action).join(', ')}]`);
    }
    const { dt, maxJointVelocity: vmax, jointLimits } = this.options;
    for (let i = 0; i < 2; i++) {
      const v = Math.min(vmax, Math.max(-vmax, action[i]));
      const next = this.q[i] + v * dt;
      const [lo, hi] = jointLimits[i];
      if (next < lo || next > hi) {
        const stop = next < lo ? lo : hi;
        this.qd[i] = (stop - this.q[i]) / dt;
        this.q[i] = stop;
      } else {
        this.qd[i] = v;
        this.q[i] = next;
      }
    }
    this.stepCount++;
    this.elapsedNs += this.dtNs;
    this.result = this.evaluate();
    return this.result;
  }

  /**
   * One control period with the arm where something else put it: the joint angles measured on a real (or
   * ros2_control mock) arm after the period, instead of velocities integrated here. The reported velocity is the
   * change over the period; limits are the arm's own business.
   */
  stepTo(joints: ArrayLike<number>): StepResult {
    if (this.result.done) throw new UserError(`sim: the episode of seed ${this.current.seed} is over; call reset(seed)`);
    if (joints.length !== 2 || !Number.isFinite(joints[0]) || !Number.isFinite(joints[1])) {
      throw new UserError(`sim: stepTo needs 2 finite joint angles, got [${Array.from(joints).join(', ')}]`);
    }
    for (let i = 0; i < 2; i++) {
      this.qd[i] = (joints[i] - this.q[i]) / this.options.dt;
      this.q[i] = joints[i];
    }
    this.stepCount++;
    this.elapsedNs += this.dtNs;
    this.result = this.evaluate();
    return this.result;
  }

  /** The scripted expert's joint velocities for the current state (analytic IK, then a P-controller; see kinematics.ts). */
  expertAction(out?: Float32Array): Float32Array {
    const t = this.current.target;
    return expertJointVelocities([this.q[0], this.q[1]], [t.x, t.y], this.options.linkLengths, this.options.jointLimits, this.options.maxJointVelocity, out);
  }

  /** The last step's outcome (after reset: steps 0, not done). */
  get status(): Readonly<StepResult> {
    return this.result;
  }

  get joints(): Vec2 {
    return [this.q[0], this.q[1]];
  }

  get jointVelocities(): Vec2 {
    return [this.qd[0], this.qd[1]];
  }

  /** End-effector position in the table frame, metres. */
  effector(): [number, number] {
    const [x, y] = forwardKinematics(this.q[0], this.q[1], this.options.linkLengths).effector;
    return [x, y];
  }

  /** Base, elbow and end effector in continuous pixel coordinates [u, v]. */
  armPixels(): ArmPixels {
    const pose = forwardKinematics(this.q[0], this.q[1], this.options.linkLengths);
    return { base: this.camera.toPixel(0, 0), elbow: this.camera.toPixel(...pose.elbow), effector: this.camera.toPixel(...pose.effector) };
  }

  /** Milliseconds since the Unix epoch on the simulated clock. */
  get timeMs(): number {
    return SIM_EPOCH.sec * 1000 + SIM_EPOCH.nanosec / 1e6 + this.elapsedNs / 1e6;
  }

  /** The simulated clock as a ROS Time. */
  get time(): Time {
    const ns = SIM_EPOCH.nanosec + this.elapsedNs;
    return { sec: SIM_EPOCH.sec + Math.floor(ns / 1e9), nanosec: ns % 1e9 };
  }

  jointState(): JointStateMsg {
    return {
      header: { stamp: this.time, frame_id: '' },
      name: [...JOINT_NAMES],
      position: Float64Array.from(this.q),
      velocity: Float64Array.from(this.qd),
      effort: new Float64Array(0),
    };
  }

  /**
   * The overhead camera frame (rgb8), stamped with the simulated clock: the episode's background (built on the first
   * render after reset) copied, with the arm drawn over it. `arm: false` leaves the arm out. The frame is a new
   * buffer unless `out` (width × height × 3 bytes) is given: allocating ~1 MB per frame costs more than drawing it,
   * so a caller that is done with a frame before the next one can hand its buffer back.
   */
  render(options: { arm?: boolean; out?: Uint8Array } = {}): ImageMsg {
    this.background ??= renderBackground(this.current, this.camera);
    const { width, height } = this.camera;
    const { out } = options;
    if (out && out.length !== this.background.length) {
      throw new UserError(`sim: render out must hold ${width}×${height}×3 = ${this.background.length} bytes, got ${out.length}`);
    }
    const data = out ?? new Uint8Array(this.background.length);
    data.set(this.background);
    if (options.arm !== false) this.drawArm({ data, width, height }, this.background);
    return { header: { stamp: this.time, frame_id: CAMERA_FRAME_ID }, height, width, encoding: 'rgb8', is_bigendian: 0, step: width * 3, data };
  }

  private drawArm(c: Canvas, background: Uint8Array): void {
    const s = this.camera.scale;
    const { base, elbow, effector } = this.armPixels();
    fillDisc(c, base[0], base[1], BASE_RADIUS * s, ARM.base);
    fillCapsule(c, base[0], base[1], elbow[0], elbow[1], ARM.link1Radius * s, ARM.link1, ARM.link1Edge, 1.5);
    fillCapsule(c, elbow[0], elbow[1], effector[0], effector[1], ARM.link2Radius * s, ARM.link2, ARM.link2Edge, 1.5);
    fillDisc(c, base[0], base[1], ARM.shoulderRadius * s, ARM.joint);
    fillDisc(c, elbow[0], elbow[1], ARM.elbowRadius * s, ARM.joint);
    // The gripper is open in the middle: the camera sees the table (and the target) through it.
    fillRing(c, effector[0], effector[1], ARM.effectorOuter * s, ARM.effectorInner * s, ARM.effector, background);
  }

  private evaluate(): StepResult {
    const [x, y] = this.effector();
    const t = this.current.target;
    const distance = Math.hypot(x - t.x, y - t.y);
    const success = distance <= this.options.successRadius;
    return { done: success || this.stepCount >= this.options.stepBudget, success, distance, distancePx: distance * this.camera.scale, steps: this.stepCount };
  }
}
