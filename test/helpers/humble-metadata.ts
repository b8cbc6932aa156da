// What Humble's rosbag2 demands of a metadata.yaml, restated from its source (ros2/rosbag2, branch humble) so that a
// folder written for Humble can be checked here without a Humble:
//  - rosbag2_storage/src/rosbag2_storage/metadata_io.cpp, convert<BagMetadata>::decode: version, storage_identifier,
//    duration.nanoseconds, starting_time.nanoseconds_since_epoch, message_count, topics_with_message_count and
//    relative_file_paths are read with yaml-cpp's as<>() (a missing or mistyped key throws); compression_format and
//    compression_mode from version 3, files (path, starting_time, duration, message_count) from version 5. No upper
//    bound on the version; keys it does not know are ignored.
//  - same file, convert<TopicMetadata>::decode: name, type, serialization_format; from version 4
//    offered_qos_profiles as<std::string>() — a YAML list (as version 9 writes it) is a bad conversion.
//  - rosbag2_transport/src/rosbag2_transport/qos.cpp, convert<Rosbag2QoS>::decode: that string parsed as a list of
//    profiles with history, reliability, durability, liveliness as<int>(), depth as<int>, deadline, lifespan and
//    liveliness_lease_duration as {sec, nsec} uint64, avoid_ros_namespace_conventions as<bool>.
//  - rmw/include/rmw/types.h (ros2/rmw, branch humble): the enums those integers index — history 0-3, reliability
//    0-3, durability 0-3, liveliness 0-4 (no best_available, which came with Iron).
//  - rosbag2_storage/include/rosbag2_storage/bag_metadata.hpp: Humble writes `int version = 5`.
import { parse } from 'yaml';

type Node = Record<string, unknown>;

const isMap = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
/** yaml-cpp's as<std::string>() takes any scalar, not a sequence or map. */
const isScalar = (v: unknown) => v !== undefined && v !== null && typeof v !== 'object';
const isUint = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n);

/** The problems Humble's rosbag2 would have reading this metadata.yaml text; empty when it reads it. */
export function humbleMetadataProblems(text: string): string[] {
  const problems: string[] = [];
  const doc = parse(text, { intAsBigInt: true }) as Node;
  const info = doc?.rosbag2_bagfile_information;
  if (!isMap(info)) return ['no rosbag2_bagfile_information mapping'];
  const need = (node: Node, key: string, ok: (v: unknown) => boolean, where: string) => {
    if (!ok(node[key]))
      problems.push(
        `${where}${key}: ${node[key] === undefined ? 'missing' : `bad conversion of ${JSON.stringify(node[key], (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`}`,
      );
  };
  need(info, 'version', isUint, '');
  const version = Number(info.version);
  need(info, 'storage_identifier', isScalar, '');
  need(info, 'duration', (v) => isMap(v) && isUint(v.nanoseconds), '');
  need(info, 'starting_time', (v) => isMap(v) && isUint(v.nanoseconds_since_epoch), '');
  need(info, 'message_count', isUint, '');
  need(info, 'relative_file_paths', (v) => Array.isArray(v) && v.every(isScalar), '');
  if (version >= 3) {
    need(info, 'compression_format', isScalar, '');
    need(info, 'compression_mode', isScalar, '');
  }
  const topics = info.topics_with_message_count;
  if (!Array.isArray(topics)) problems.push('topics_with_message_count: not a sequence');
  else
    topics.forEach((t: unknown, i) => {
      const where = `topics_with_message_count[${i}].`;
      if (!isMap(t) || !isMap(t.topic_metadata)) return void problems.push(`${where}topic_metadata: missing`);
      need(t, 'message_count', isUint, where);
      const m = t.topic_metadata;
      for (const k of ['name', 'type', 'serialization_format']) need(m, k, isScalar, `${where}topic_metadata.`);
      if (version >= 4) {
        need(m, 'offered_qos_profiles', isScalar, `${where}topic_metadata.`);
        if (typeof m.offered_qos_profiles === 'string') problems.push(...qosProblems(m.offered_qos_profiles, `${where}offered_qos_profiles`));
      }
    });
  if (version >= 5) {
    const files = info.files;
    if (!Array.isArray(files)) problems.push(`files: ${files === undefined ? 'missing' : 'not a sequence'}`);
    else
      files.forEach((f: unknown, i) => {
        const where = `files[${i}].`;
        if (!isMap(f)) return void problems.push(`${where}: not a mapping`);
        need(f, 'path', isScalar, where);
        need(f, 'starting_time', (v) => isMap(v) && isUint(v.nanoseconds_since_epoch), where);
        need(f, 'duration', (v) => isMap(v) && isUint(v.nanoseconds), where);
        need(f, 'message_count', isUint, where);
      });
  }
  return problems;
}

const RANGES = { history: 3, reliability: 3, durability: 3, liveliness: 4 } as const;

function qosProblems(text: string, where: string): string[] {
  if (text.trim() === '') return [];
  const list = parse(text, { intAsBigInt: true }) as unknown;
  if (!Array.isArray(list)) return [`${where}: not a list of profiles`];
  const problems: string[] = [];
  list.forEach((p: unknown, i) => {
    if (!isMap(p)) return void problems.push(`${where}[${i}]: not a mapping`);
    for (const [k, max] of Object.entries(RANGES)) {
      const v = p[k];
      if (typeof v !== 'bigint' || v < 0n || v > BigInt(max)) problems.push(`${where}[${i}].${k}: ${String(v)} is not one of Humble's values 0-${max}`);
    }
    if (typeof p.depth !== 'bigint') problems.push(`${where}[${i}].depth: not an integer`);
    for (const k of ['deadline', 'lifespan', 'liveliness_lease_duration']) {
      const d = p[k];
      if (!isMap(d) || !isUint(d.sec) || !isUint(d.nsec)) problems.push(`${where}[${i}].${k}: not {sec, nsec}`);
    }
    if (typeof p.avoid_ros_namespace_conventions !== 'boolean') problems.push(`${where}[${i}].avoid_ros_namespace_conventions: not a bool`);
  });
  return problems;
}

/** The keys Humble's convert<BagMetadata>::encode writes, in its order: what `ros2 bag record` on Humble produces. */
export const HUMBLE_KEYS = [
  'version',
  'storage_identifier',
  'duration',
  'starting_time',
  'message_count',
  'topics_with_message_count',
  'compression_format',
  'compression_mode',
  'relative_file_paths',
  'files',
];
export const HUMBLE_TOPIC_KEYS = ['name', 'type', 'serialization_format', 'offered_qos_profiles'];
