// Pipeline outputs as ROS 2 messages: actions (three action interfaces), S2Features, and /diagnostics.
// Shared by every transport, so a recording and a live node publish the same messages.
import {
  nsToTime,
  type DiagnosticArrayMsg,
  type Float64MultiArrayMsg,
  type Header,
  type JointTrajectoryMsg,
  type S2FeaturesMsg,
  type Time,
  type TwistStampedMsg,
} from '../msgs/types.js';
import type { ActionCommand, CommandType } from './controller.js';
import type { FeatureLayout } from './extractor.js';
import type { MetricsSnapshot } from './metrics.js';
import type { FeatureResult } from './pipeline.js';

export type ActionInterface = 'float64_multi_array' | 'joint_trajectory' | 'twist_stamped';

export const ACTION_TYPES: Record<ActionInterface, string> = {
  float64_multi_array: 'std_msgs/msg/Float64MultiArray',
  joint_trajectory: 'trajectory_msgs/msg/JointTrajectory',
  twist_stamped: 'geometry_msgs/msg/TwistStamped',
};

export function msToTime(ms: number): Time {
  return nsToTime(BigInt(Math.round(ms * 1e6)));
}

function header(stamp: Time, frameId = ''): Header {
  return { stamp, frame_id: frameId };
}

export interface ActionMessageOptions {
  interface: ActionInterface;
  commandType: CommandType;
  jointNames?: readonly string[];
  /** Control period, ms (a one-point trajectory's time_from_start is trajectoryHorizonMs of it). */
  periodMs: number;
  frameId?: string;
}

/**
 * time_from_start of a streamed one-point trajectory, in control periods. A JointTrajectoryController starts each
 * message from the state it measures when it first samples it and moves linearly to the point, and the next message
 * (one period later) replaces it. Two periods: a message that comes a little late finds the arm still moving rather
 * than standing at the point; the delay the node cannot see (transport, the controller's sampling) costs a velocity
 * lag/(2 periods) instead of lag/(1 period); and when messages stop, the arm comes to rest at the last point, at
 * most two periods later.
 */
export const TRAJECTORY_HORIZON_PERIODS = 2;

/**
 * The time_from_start of a command's point: TRAJECTORY_HORIZON_PERIODS control periods, or one for a zero velocity
 * (a stop: the point is the measured position, and nothing is integrated that a longer horizon would smooth), so
 * the arm is at rest one period after a stop reaches the controller.
 */
export function trajectoryHorizonMs(periodMs: number, cmd?: ActionCommand, commandType?: CommandType): number {
  const stop = commandType === 'velocity' && cmd !== undefined && cmd.values.every((v) => v === 0);
  return (stop ? 1 : TRAJECTORY_HORIZON_PERIODS) * periodMs;
}

/** The zero Time: a JointTrajectory stamped with it starts when the controller first samples it. */
const START_ON_RECEIPT: Time = { sec: 0, nanosec: 0 };

/**
 * The positions of the one point of a streamed trajectory: a position command as it is, a velocity command
 * integrated from the measured positions over the point's time_from_start and the state's age (q + v·(T + age)). A default
 * JointTrajectoryController refuses a last point with a non-zero velocity, and with a velocity command interface
 * and its default gains it would not move the arm at all, so velocities are sent as positions.
 */
export function trajectoryPositions(cmd: ActionCommand, commandType: CommandType, horizonMs: number, periodMs = horizonMs): Float64Array {
  if (commandType === 'position') return Float64Array.from(cmd.values);
  const q = cmd.measured;
  if (!q || q.length !== cmd.values.length) {
    throw new Error(`joint_trajectory: a velocity command needs the ${cmd.values.length} measured joint positions, got ${q?.length ?? 'none'}`);
  }
  // The controller starts the point from where the arm is when it samples it, which is where it was measured plus
  // what it moved since (about v times the state's age): integrating over T + age delivers v instead of
  // v·(1 − age/T). The age is bounded by one period, so that an old state cannot turn into a jump.
  const age = Math.min(Math.max(cmd.measuredAgeMs ?? 0, 0), periodMs);
  const t = (horizonMs + age) / 1000;
  return Float64Array.from(cmd.values, (v, i) => q[i] + v * t);
}

/**
 * The message for one control-tick command. `stamp` is the tick's time; a JointTrajectory is stamped zero instead
 * ("start on receipt"): a controller refuses a stamped trajectory whose end (stamp + time_from_start) has passed on
 * its own clock, which would drop every late tick and every tick of a node on simulated time or another machine's
 * clock.
 */
export function actionMessage(cmd: ActionCommand, stamp: Time, o: ActionMessageOptions): Float64MultiArrayMsg | JointTrajectoryMsg | TwistStampedMsg {
  const values = Float64Array.from(cmd.values);
  switch (o.interface) {
    case 'float64_multi_array':
      return { layout: { dim: [], data_offset: 0 }, data: values };
    case 'joint_trajectory': {
      const names = o.jointNames ?? [];
      if (names.length !== values.length) throw new Error(`joint_trajectory: ${names.length} joint names for ${values.length} action values`);
      const empty = new Float64Array(0);
      const horizonMs = trajectoryHorizonMs(o.periodMs, cmd, o.commandType);
      return {
        header: header(START_ON_RECEIPT, o.frameId),
        joint_names: [...names],
        points: [
          {
            positions: trajectoryPositions(cmd, o.commandType, horizonMs, o.periodMs),
            velocities: empty,
            accelerations: empty,
            effort: empty,
            time_from_start: msToTime(horizonMs),
          },
        ],
      };
    }
    case 'twist_stamped': {
      if (values.length !== 6) throw new Error(`twist_stamped needs 6 action values (linear xyz, angular xyz), the policy gives ${values.length}`);
      return {
        header: header(stamp, o.frameId),
        twist: { linear: { x: values[0], y: values[1], z: values[2] }, angular: { x: values[3], y: values[4], z: values[5] } },
      };
    }
  }
}

/** One S2Features message for a group: the pooled features of every camera, in camera order. */
export function featuresMessage(r: FeatureResult, layout: FeatureLayout, frameId = r.frameId ?? ''): S2FeaturesMsg {
  const per = r.perCamera[0]?.length ?? 0;
  const data = new Float32Array(r.perCamera.length * per);
  r.perCamera.forEach((v, i) => data.set(v, i * per));
  return {
    header: header(msToTime(r.stampMs), frameId),
    camera_names: [...r.cameras],
    scale_heights: Uint32Array.from(layout.scaleSizes.map((s) => s[0])),
    scale_widths: Uint32Array.from(layout.scaleSizes.map((s) => s[1])),
    num_prefix_tokens: layout.numPrefixTokens,
    grid_height: layout.gridHeight,
    grid_width: layout.gridWidth,
    channels: layout.channels,
    pooling: layout.pooling,
    shape: Uint32Array.of(r.perCamera.length, per),
    data,
  };
}

/** The inverse of featuresMessage: a feature result from a received S2Features message (stamp from its header). */
export function featureResultFromMessage(msg: S2FeaturesMsg, at: number): FeatureResult {
  const [cameras, per] = Array.from(msg.shape);
  const data = msg.data instanceof Float32Array ? msg.data : Float32Array.from(msg.data);
  if (msg.shape.length !== 2 || cameras * per !== data.length || cameras !== msg.camera_names.length) {
    throw new Error(`S2Features: shape [${Array.from(msg.shape).join(', ')}] does not match ${data.length} values and ${msg.camera_names.length} cameras`);
  }
  const perCamera = Array.from({ length: cameras }, (_, i) => data.slice(i * per, (i + 1) * per));
  return { stampMs: msg.header.stamp.sec * 1000 + msg.header.stamp.nanosec / 1e6, at, cameras: [...msg.camera_names], perCamera };
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** /diagnostics from a metrics snapshot: OK, WARN while stale or dropping, ERROR after an error. */
export function diagnosticsMessage(m: MetricsSnapshot, stamp: Time, name: string, hardwareId = ''): DiagnosticArrayMsg {
  const values: { key: string; value: string }[] = [
    { key: 'state', value: m.state },
    { key: 'frames_in_per_s', value: fmt(m.rates.framesIn) },
    { key: 'groups_per_s', value: fmt(m.rates.groups) },
    { key: 'actions_per_s', value: fmt(m.rates.actions) },
    { key: 'frames_in', value: String(m.counts.framesIn) },
    { key: 'frames_processed', value: String(m.counts.framesProcessed) },
    { key: 'safe_actions', value: String(m.counts.safeActions) },
    { key: 'actions_held_past_chunk', value: String(m.counts.heldPastChunk) },
  ];
  for (const [stage, s] of Object.entries(m.latencyMs)) {
    values.push({ key: `${stage}_ms_p50`, value: fmt(s.p50) }, { key: `${stage}_ms_p95`, value: fmt(s.p95) }, { key: `${stage}_ms_max`, value: fmt(s.max) });
  }
  for (const [reason, n] of Object.entries(m.dropped)) values.push({ key: `dropped_${reason}`, value: String(n) });
  // Per camera: in = processed + Σ dropped (+ frames in flight).
  for (const [camera, c] of Object.entries(m.cameras)) {
    values.push({ key: `camera_${camera}_in`, value: String(c.in) }, { key: `camera_${camera}_processed`, value: String(c.processed) });
    for (const [reason, n] of Object.entries(c.dropped)) values.push({ key: `camera_${camera}_dropped_${reason}`, value: String(n) });
  }
  values.push(
    { key: 'joint_states_in', value: String(m.joints.in) },
    { key: 'joint_states_used', value: String(m.joints.used) },
    { key: 'joint_states_per_s', value: fmt(m.joints.ratePerS) },
    { key: 'joint_state_age_ms', value: fmt(m.joints.ageMs) },
  );
  for (const [key, value] of Object.entries(m.settings ?? {})) values.push({ key, value });
  if (m.lastError) values.push({ key: 'last_error', value: m.lastError });
  const level = m.lastError && (m.dropped.error ?? 0) > 0 ? 2 : m.state === 'stale' ? 1 : 0;
  const message =
    level === 2 ? `error: ${m.lastError}` : m.state === 'stale' ? 'stale: no fresh features, safe action' : m.state === 'disabled' ? 'actions disabled' : 'ok';
  return { header: header(stamp), status: [{ level, name, message, hardware_id: hardwareId, values }] };
}
