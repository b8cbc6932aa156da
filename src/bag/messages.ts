// TypeScript shapes of the registered ROS 2 types as CDR decodes them (and as the writer accepts them), keyed by
// type name, so that channels and decoded messages can be typed by their 'pkg/msg/Type'.
import type {
  CompressedImageMsg,
  DiagnosticArrayMsg,
  Duration,
  Float64MultiArrayMsg,
  Header,
  ImageMsg,
  JointStateMsg,
  JointTrajectoryMsg,
  S2FeaturesMsg,
  Time,
  TwistStampedMsg,
} from '../msgs/types.js';

export type * from '../msgs/types.js';

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
