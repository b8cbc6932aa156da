// TypeScript shapes of the registered ROS 2 types as CDR decodes them (and as the writer accepts them), keyed by
// type name, so that channels and decoded messages can be typed by their 'pkg/msg/Type'.
import type { CompressedImageMsg, Header, ImageMsg, JointStateMsg, Time } from '../msgs/types.js';

// The shapes not yet in src/msgs/types.ts; they could move there when another folder needs them.

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

/** Registered type name → message shape. */
export interface RosMessageTypes {
  'builtin_interfaces/msg/Time': Time;
  'builtin_interfaces/msg/Duration': Duration;
  'std_msgs/msg/Header': Header;
  'std_msgs/msg/Float64MultiArray': Float64MultiArrayMsg;
  'sensor_msgs/msg/Image': ImageMsg;
  'sensor_msgs/msg/CompressedImage': CompressedImageMsg;
  'sensor_msgs/msg/JointState': JointStateMsg;
  'trajectory_msgs/msg/JointTrajectory': JointTrajectoryMsg;
  'geometry_msgs/msg/TwistStamped': TwistStampedMsg;
  'diagnostic_msgs/msg/DiagnosticArray': DiagnosticArrayMsg;
  's2_policy/msg/S2Features': S2FeaturesMsg;
}

export type KnownRosType = keyof RosMessageTypes;

/** 'pkg/Type' → 'pkg/msg/Type', at the type level, as canonicalType() does at run time. */
export type CanonicalType<K extends string> = K extends `${string}/msg/${string}` ? K : K extends `${infer P}/${infer T}` ? `${P}/msg/${T}` : K;

/** The message shape of a type name: the registered shape, or any object for other types (checked at run time). */
export type MessageOf<K extends string> = CanonicalType<K> extends KnownRosType ? RosMessageTypes[CanonicalType<K>] : object;
