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
