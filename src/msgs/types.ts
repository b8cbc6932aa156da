// ROS 2 message shapes the pipeline consumes and produces, as rclnodejs delivers them and as CDR decodes them
// (field names as in the .msg definitions; byte arrays as Uint8Array, float arrays as typed arrays or plain arrays).

export interface Time {
  sec: number;
  nanosec: number;
}

export interface Header {
  stamp: Time;
  frame_id: string;
}

/** sensor_msgs/msg/Image */
export interface ImageMsg {
  header: Header;
  height: number;
  width: number;
  encoding: string;
  is_bigendian: number | boolean;
  step: number;
  data: Uint8Array | number[];
}

/** sensor_msgs/msg/CompressedImage */
export interface CompressedImageMsg {
  header: Header;
  format: string;
  data: Uint8Array | number[];
}

/** sensor_msgs/msg/JointState */
export interface JointStateMsg {
  header: Header;
  name: string[];
  position: Float64Array | number[];
  velocity: Float64Array | number[];
  effort: Float64Array | number[];
}

export function timeToNs(t: Time): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nanosec);
}

export function nsToTime(ns: bigint): Time {
  return { sec: Number(ns / 1_000_000_000n), nanosec: Number(ns % 1_000_000_000n) };
}

export function timeToMs(t: Time): number {
  return t.sec * 1000 + t.nanosec / 1e6;
}

export type Duration = Time;

/** std_msgs/msg/MultiArrayDimension */
export interface MultiArrayDimensionMsg {
  label: string;
  size: number;
  stride: number;
}

/** std_msgs/msg/Float64MultiArray */
export interface Float64MultiArrayMsg {
  layout: { dim: MultiArrayDimensionMsg[]; data_offset: number };
  data: Float64Array | number[];
}

/** trajectory_msgs/msg/JointTrajectoryPoint */
export interface JointTrajectoryPointMsg {
  positions: Float64Array | number[];
  velocities: Float64Array | number[];
  accelerations: Float64Array | number[];
  effort: Float64Array | number[];
  time_from_start: Duration;
}

/** trajectory_msgs/msg/JointTrajectory */
export interface JointTrajectoryMsg {
  header: Header;
  joint_names: string[];
  points: JointTrajectoryPointMsg[];
}

export interface Vector3Msg {
  x: number;
  y: number;
  z: number;
}

/** geometry_msgs/msg/TwistStamped */
export interface TwistStampedMsg {
  header: Header;
  twist: { linear: Vector3Msg; angular: Vector3Msg };
}

/** diagnostic_msgs/msg/DiagnosticStatus; level is OK=0, WARN=1, ERROR=2, STALE=3. */
export interface DiagnosticStatusMsg {
  level: number;
  name: string;
  message: string;
  hardware_id: string;
  values: { key: string; value: string }[];
}

/** diagnostic_msgs/msg/DiagnosticArray */
export interface DiagnosticArrayMsg {
  header: Header;
  status: DiagnosticStatusMsg[];
}

/** s2_policy/msg/S2Features (msg/S2Features.msg) */
export interface S2FeaturesMsg {
  header: Header;
  camera_names: string[];
  scale_heights: Uint32Array | number[];
  scale_widths: Uint32Array | number[];
  num_prefix_tokens: number;
  grid_height: number;
  grid_width: number;
  channels: number;
  pooling: string;
  shape: Uint32Array | number[];
  data: Float32Array | number[];
}
