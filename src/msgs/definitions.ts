// The ROS 2 message definitions this project records and replays, and the concatenated schema text that
// rosbag2_storage_mcap stores for a type (the .msg, then each dependency after a line of 80 '=' and 'MSG: pkg/Type').
import { parse } from '@foxglove/rosmsg';
import type { MessageDefinition } from '@foxglove/message-definition';
import { UserError } from '../errors.js';

// Field lines follow the ROS 2 interface definitions (rolling) exactly; the comments are ours and shorter.
// Relative type names (`Twist twist`) stay relative as upstream writes them, because rosbag2 names a
// dependency's 'MSG:' section by the spelling used in the field line.
const MSG_TEXT: Readonly<Record<string, string>> = {
  'builtin_interfaces/msg/Time': `# A point in time: seconds and nanoseconds since the epoch of the clock that stamped it.
int32 sec
uint32 nanosec
`,
  'builtin_interfaces/msg/Duration': `# A span of time: whole seconds, plus nanoseconds in [0, 1e9).
int32 sec
uint32 nanosec
`,
  'std_msgs/msg/Header': `# When and in which coordinate frame the data of a stamped message was taken.
builtin_interfaces/Time stamp
string frame_id
`,
  'std_msgs/msg/MultiArrayDimension': `# One dimension of a multi-array: its name, its length, and the stride of the dimension above it.
string label
uint32 size
uint32 stride
`,
  'std_msgs/msg/MultiArrayLayout': `# The layout of the data of a multi-array: one entry per dimension, outermost first, and the
# number of unused elements at the start of data.
MultiArrayDimension[] dim
uint32 data_offset
`,
  'std_msgs/msg/Float64MultiArray': `# A multi-dimensional array of float64, laid out as described by layout.
MultiArrayLayout layout
float64[] data
`,
  'sensor_msgs/msg/Image': `# An uncompressed image: height rows of step bytes each, pixels encoded as named by encoding
# (rgb8, bgr8, mono8, 16UC1, ...).
std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data
`,
  'sensor_msgs/msg/CompressedImage': `# A compressed image; format names the codec (jpeg, png, or "<encoding>; <codec> compressed <codec>").
std_msgs/Header header
string format
uint8[] data
`,
  'sensor_msgs/msg/JointState': `# The state of a set of joints: name[i] goes with position[i], velocity[i] and effort[i].
# Each of the three arrays is either empty or as long as name.
std_msgs/Header header
string[] name
float64[] position
float64[] velocity
float64[] effort
`,
  'trajectory_msgs/msg/JointTrajectoryPoint': `# One waypoint of a joint trajectory, reached time_from_start after the trajectory's header stamp.
# Each array is empty or has one entry per joint of the trajectory.
float64[] positions
float64[] velocities
float64[] accelerations
float64[] effort
builtin_interfaces/Duration time_from_start
`,
  'trajectory_msgs/msg/JointTrajectory': `# A trajectory for a set of joints: waypoints in time order, each listing the joints in joint_names order.
std_msgs/Header header
string[] joint_names
JointTrajectoryPoint[] points
`,
  'geometry_msgs/msg/Vector3': `# A vector in free space.
float64 x
float64 y
float64 z
`,
  'geometry_msgs/msg/Twist': `# Velocity in free space: linear (m/s) and angular (rad/s) parts.
Vector3 linear
Vector3 angular
`,
  'geometry_msgs/msg/TwistStamped': `# A twist with the time and reference frame it is expressed in.
std_msgs/Header header
Twist twist
`,
  'diagnostic_msgs/msg/KeyValue': `# One named value of a diagnostic status.
string key
string value
`,
  'diagnostic_msgs/msg/DiagnosticStatus': `# The status of one component: its level, name, a human-readable message, and key/value details.
byte OK=0
byte WARN=1
byte ERROR=2
byte STALE=3
byte level
string name
string message
string hardware_id
KeyValue[] values
`,
  'diagnostic_msgs/msg/DiagnosticArray': `# The statuses of any number of components, as published on /diagnostics.
std_msgs/Header header
DiagnosticStatus[] status
`,
  // Identical to msg/S2Features.msg, which the ROS package builds; a test keeps the two in step.
  's2_policy/msg/S2Features': `# S2 (scaling-on-scales) visual features of one set of camera frames, as the s2_policy node computes them
# for its policy head. Published optionally, and recorded so that a policy can be fitted or evaluated
# offline without running the vision backbone again.

# stamp: the stamp of the newest camera frame the features were computed from.
# frame_id: the optical frame of the first camera in camera_names.
std_msgs/Header header

# The cameras whose frames went into these features, in the order their features appear in data.
string[] camera_names

# The S2 scales, smallest first: every frame was resized to scale_heights[i] x scale_widths[i] pixels
# for scale i. Both arrays have one entry per scale.
uint32[] scale_heights
uint32[] scale_widths

# Non-spatial tokens (CLS, registers) that come before the grid tokens of each camera, averaged over
# the crops of each scale; 0 for backbones that output feature maps.
uint32 num_prefix_tokens

# The token grid every scale was area-pooled to, and the channels of one token after concatenating
# the scales (backbone channels x number of scales).
uint32 grid_height
uint32 grid_width
uint32 channels

# How the tokens were reduced before publishing, which decides shape; for example "none" (every
# token: [cameras, num_prefix_tokens + grid_height*grid_width, channels]) or "mean" (the average of
# the grid tokens: [cameras, channels]).
string pooling

# The dimensions of data in row-major (C) order; their product is the length of data.
uint32[] shape
float32[] data
`,
};

/** Every type the registry defines, as 'pkg/msg/Type'. */
export const REGISTERED_TYPES: readonly string[] = Object.keys(MSG_TEXT);

const SEPARATOR = '='.repeat(80);
// rosbag2_storage_mcap's own pattern for the type of each field line of a .msg (message_definition_cache.cpp).
const FIELD_TYPE = /(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+/g;
const PRIMITIVES = new Set(['bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'string']);

/** 'pkg/Type' or 'pkg/msg/Type' → 'pkg/msg/Type'; anything else is returned unchanged. */
export function canonicalType(type: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9_]*)\/(?:msg\/)?([a-zA-Z][a-zA-Z0-9_]*)$/.exec(type);
  return m ? `${m[1]}/msg/${m[2]}` : type;
}

/** The .msg text of one registered type (without its dependencies). */
export function msgText(type: string): string {
  const text = MSG_TEXT[canonicalType(type)];
  if (text === undefined) {
    throw new UserError(`ROS type '${type}' has no message definition here; known types: ${REGISTERED_TYPES.join(', ')}`);
  }
  return text;
}

/** The complex types a .msg refers to, spelled as in the text ('pkg/Type', relative names qualified), sorted. */
export function msgDependencies(text: string, pkg: string): string[] {
  const deps = new Set<string>();
  for (const m of text.matchAll(FIELD_TYPE)) {
    const type = m[1];
    if (PRIMITIVES.has(type)) continue;
    deps.add(type.includes('/') ? type : `${pkg}/${type}`);
  }
  // std::set<std::string> order: bytewise, which for these ASCII names is JavaScript's default sort.
  return [...deps].sort();
}

/**
 * The schema text rosbag2_storage_mcap writes for a type: the type's .msg, then depth-first each dependency not
 * yet written (in sorted order), each after '\n' + 80 '=' + '\nMSG: pkg/Type\n'.
 */
export function rosbag2DefinitionText(type: string): string {
  const seen = new Set<string>();
  const append = (name: string, depth: number): string => {
    if (depth > 50) throw new UserError(`message definition of '${type}' nests deeper than 50 types`);
    const canonical = canonicalType(name);
    const text = msgText(canonical);
    let out = text;
    for (const dep of msgDependencies(text, canonical.split('/')[0])) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      out += `\n${SEPARATOR}\nMSG: ${dep}\n${append(dep, depth + 1)}`;
    }
    return out;
  };
  return append(type, 0);
}

const parsedCache = new Map<string, MessageDefinition[]>();

/**
 * Parses a ros2msg schema text (as stored in MCAP) into the definitions MessageReader/MessageWriter take; the
 * root type comes first. `what` names the source in errors (a file and topic, or a type).
 */
export function parseRos2Msg(text: string, what: string): MessageDefinition[] {
  const cached = parsedCache.get(text);
  if (cached) return cached;
  let defs: MessageDefinition[];
  try {
    defs = parse(text, { ros2: true });
  } catch (e) {
    throw new UserError(`${what}: cannot parse the ros2msg message definition: ${(e as Error).message}`);
  }
  if (defs.length === 0) throw new UserError(`${what}: empty message definition`);
  // Cache only our own registry's few texts and files' schemas; both are small and few per process.
  if (parsedCache.size < 256) parsedCache.set(text, defs);
  return defs;
}

/** Parsed definitions of a registered type. */
export function registeredDefinitions(type: string): MessageDefinition[] {
  return parseRos2Msg(rosbag2DefinitionText(type), canonicalType(type));
}
