// rosbag2's metadata.yaml (rosbag2_storage BagMetadata, versions 1-9): parsed into a typed object with one-line
// errors naming the key, and written as rosbag2 (yaml-cpp) writes it, so `ros2 bag info` and `ros2 bag play` take it.
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import { offeredQosFromValue, serializeOfferedQos, type QosDuration, type QosProfile } from './qos.js';

export const METADATA_FILE = 'metadata.yaml';

export type Rosbag2CompressionMode = 'none' | 'file' | 'message';

export interface Rosbag2Topic {
  name: string;
  type: string;
  serializationFormat: string;
  offeredQos: QosProfile[];
  /** RIHS01_… (version ≥ 7), '' when not known. */
  typeDescriptionHash: string;
  messageCount: number;
}

export interface Rosbag2File {
  path: string;
  startingTimeNs: bigint;
  durationNs: bigint;
  messageCount: number;
}

export interface Rosbag2Metadata {
  version: number;
  storageIdentifier: string;
  durationNs: bigint;
  startingTimeNs: bigint;
  messageCount: number;
  topics: Rosbag2Topic[];
  /** 'zstd' or '' (rosbag2 has no other compressor). */
  compressionFormat: string;
  compressionMode: Rosbag2CompressionMode;
  relativeFilePaths: string[];
  /** Per-file times and counts (version ≥ 5; empty before). */
  files: Rosbag2File[];
  customData: Record<string, string>;
  rosDistro: string;
}

/** The metadata version Jazzy writes: offered_qos_profiles as a YAML list with policy names. */
export const JAZZY_METADATA_VERSION = 9;

type Node = Record<string, unknown>;

class Fields {
  constructor(
    private readonly file: string,
    private readonly node: Node,
    private readonly path: string,
  ) {}

  private where(key: string): string {
    return `${this.file}: ${this.path}.${key}`;
  }

  has(key: string): boolean {
    return this.node[key] !== undefined && this.node[key] !== null;
  }

  raw(key: string): unknown {
    return this.node[key];
  }

  string(key: string, fallback?: string): string {
    const v = this.node[key];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v === 'string') return v;
    if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new UserError(`${this.where(key)}: ${v === undefined ? 'missing' : `is ${JSON.stringify(v)}, expected a string`}`);
  }

  bigint(key: string): bigint {
    const v = this.node[key];
    if (typeof v === 'bigint' && v >= 0n) return v;
    if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
    throw new UserError(
      `${this.where(key)}: ${v === undefined ? 'missing' : `is ${typeof v === 'bigint' || typeof v === 'number' ? String(v) : JSON.stringify(v)}, expected a non-negative integer`}`,
    );
  }

  count(key: string): number {
    const v = this.bigint(key);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${this.where(key)}: ${v} is too large`);
    return Number(v);
  }

  /** A {key: {inner: integer}} pair such as duration.nanoseconds. */
  nested(key: string, inner: string): bigint {
    return this.child(key).bigint(inner);
  }

  child(key: string): Fields {
    const v = this.node[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`${this.where(key)}: ${v === undefined ? 'missing' : 'is not a mapping'}`);
    return new Fields(this.file, v as Node, `${this.path}.${key}`);
  }

  list(key: string): Fields[] {
    const v = this.node[key];
    if (v === null) return [];
    if (!Array.isArray(v)) throw new UserError(`${this.where(key)}: ${v === undefined ? 'missing' : 'is not a list'}`);
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new UserError(`${this.where(key)}[${i}]: is not a mapping`);
      return new Fields(this.file, item as Node, `${this.path}.${key}[${i}]`);
    });
  }

  strings(key: string): string[] {
    const v = this.node[key];
    if (v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      throw new UserError(`${this.where(key)}: ${v === undefined ? 'missing' : 'is not a list of strings'}`);
    return v as string[];
  }

  label(key: string): string {
    return this.where(key);
  }
}

/** bigint → number inside a parsed QoS value (seconds up to 9223372036 and nanoseconds are exact as doubles). */
function numbers(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(numbers);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, numbers(x)]));
  return v;
}

function compressionMode(text: string, where: string): Rosbag2CompressionMode {
  const m = text.toUpperCase();
  if (m === '' || m === 'NONE') return 'none';
  if (m === 'FILE') return 'file';
  if (m === 'MESSAGE') return 'message';
  throw new UserError(`${where}: is '${text}', expected FILE, MESSAGE, NONE or empty`);
}

function yamlDocument(text: string, file: string): unknown {
  try {
    return parseYaml(text, { intAsBigInt: true });
  } catch (e) {
    throw new UserError(`${file}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Parses the text of a metadata.yaml; `file` names it in errors. */
export function parseRosbag2Metadata(text: string, file: string): Rosbag2Metadata {
  const top = yamlDocument(text, file) as Node | null;
  if (typeof top !== 'object' || top === null || typeof top.rosbag2_bagfile_information !== 'object' || top.rosbag2_bagfile_information === null) {
    throw new UserError(`${file}: not a rosbag2 metadata file (no rosbag2_bagfile_information mapping)`);
  }
  return metadataFromNode(new Fields(file, top.rosbag2_bagfile_information as Node, 'rosbag2_bagfile_information'));
}

/**
 * Parses the metadata a sqlite3 recording keeps in its own `metadata` table (schema version 3 and later): the same
 * fields without the rosbag2_bagfile_information key. `where` names the file and row in errors.
 */
export function parseStoredRosbag2Metadata(text: string, where: string): Rosbag2Metadata {
  const top = yamlDocument(text, where) as Node | null;
  if (typeof top !== 'object' || top === null || Array.isArray(top)) throw new UserError(`${where}: not a YAML mapping`);
  return metadataFromNode(new Fields(where, top, 'metadata'));
}

function metadataFromNode(info: Fields): Rosbag2Metadata {
  const version = info.count('version');
  const topics = info.list('topics_with_message_count').map((t): Rosbag2Topic => {
    const m = t.child('topic_metadata');
    const name = m.string('name');
    let offeredQos: QosProfile[] = [];
    const what = `${m.label('offered_qos_profiles')} (topic ${name})`;
    if (m.has('offered_qos_profiles')) {
      const q = m.raw('offered_qos_profiles');
      // Version ≤ 8 holds the profiles as one YAML string with integer enums; 9 as a list with policy names.
      offeredQos =
        typeof q === 'string'
          ? offeredQosFromValue(numbers(q.trim() === '' ? [] : parseYaml(q, { intAsBigInt: true })), what)
          : offeredQosFromValue(numbers(q), what);
    }
    return {
      name,
      type: m.string('type'),
      serializationFormat: m.string('serialization_format', 'cdr'),
      offeredQos,
      typeDescriptionHash: m.string('type_description_hash', ''),
      messageCount: t.count('message_count'),
    };
  });
  const files = info.has('files')
    ? info.list('files').map((f) => ({
        path: f.string('path'),
        startingTimeNs: f.nested('starting_time', 'nanoseconds_since_epoch'),
        durationNs: f.nested('duration', 'nanoseconds'),
        messageCount: f.count('message_count'),
      }))
    : [];
  const customData: Record<string, string> = {};
  if (info.has('custom_data')) {
    const c = info.child('custom_data');
    for (const k of Object.keys(info.raw('custom_data') as Node)) customData[k] = c.string(k, '');
  }
  return {
    version,
    storageIdentifier: info.string('storage_identifier'),
    durationNs: info.nested('duration', 'nanoseconds'),
    startingTimeNs: info.nested('starting_time', 'nanoseconds_since_epoch'),
    messageCount: info.count('message_count'),
    topics,
    compressionFormat: info.string('compression_format', ''),
    compressionMode: compressionMode(info.string('compression_mode', ''), info.label('compression_mode')),
    relativeFilePaths: info.strings('relative_file_paths'),
    files,
    customData,
    rosDistro: info.string('ros_distro', ''),
  };
}

/** A YAML scalar as yaml-cpp writes it: plain when that reads back as the same string, else double-quoted. */
function scalar(s: string): string {
  if (s === '') return '""';
  if (/^[A-Za-z_/][A-Za-z0-9_./+-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|y|n|~)$/i.test(s)) return s;
  return JSON.stringify(s);
}

function durationYaml(d: QosDuration, indent: string): string {
  return `\n${indent}  sec: ${d.sec}\n${indent}  nsec: ${d.nsec}`;
}

/** Version 9's offered_qos_profiles: a block list with policy names (rmw's *_to_str names, 'unknown' as is). */
function qosListYaml(profiles: readonly QosProfile[], indent: string): string {
  if (profiles.length === 0) return ' []';
  return profiles
    .map((p) => {
      const i = `${indent}  `;
      return (
        `\n${indent}- history: ${p.history}\n${i}depth: ${p.depth}\n${i}reliability: ${p.reliability}\n${i}durability: ${p.durability}` +
        `\n${i}deadline:${durationYaml(p.deadline, i)}\n${i}lifespan:${durationYaml(p.lifespan, i)}\n${i}liveliness: ${p.liveliness}` +
        `\n${i}liveliness_lease_duration:${durationYaml(p.liveliness_lease_duration, i)}\n${i}avoid_ros_namespace_conventions: ${p.avoid_ros_namespace_conventions}`
      );
    })
    .join('');
}

/** The metadata version Humble writes (rosbag2_storage/bag_metadata.hpp, branch humble: `int version = 5`). */
export const HUMBLE_METADATA_VERSION = 5;

/**
 * The text of metadata.yaml in the layout `ros2 bag record` writes: version 5 as Humble writes it (no
 * type_description_hash, custom_data or ros_distro; offered QoS as a string with integer enums), 8 as Iron, 9 as Jazzy.
 */
export function serializeRosbag2Metadata(m: Rosbag2Metadata): string {
  if (m.version !== 5 && m.version !== 8 && m.version !== 9) throw new Error(`metadata version ${m.version} cannot be written (5, 8 or 9)`);
  const lines: string[] = [];
  const push = (s: string) => lines.push(s);
  push('rosbag2_bagfile_information:');
  push(`  version: ${m.version}`);
  push(`  storage_identifier: ${scalar(m.storageIdentifier)}`);
  push('  duration:');
  push(`    nanoseconds: ${m.durationNs}`);
  push('  starting_time:');
  push(`    nanoseconds_since_epoch: ${m.startingTimeNs}`);
  push(`  message_count: ${m.messageCount}`);
  if (m.topics.length === 0) push('  topics_with_message_count: []');
  else push('  topics_with_message_count:');
  for (const t of m.topics) {
    push('    - topic_metadata:');
    push(`        name: ${scalar(t.name)}`);
    push(`        type: ${scalar(t.type)}`);
    push(`        serialization_format: ${scalar(t.serializationFormat)}`);
    if (m.version >= 9) push(`        offered_qos_profiles:${qosListYaml(t.offeredQos, '          ')}`);
    else push(`        offered_qos_profiles: ${JSON.stringify(serializeOfferedQos(t.offeredQos))}`);
    if (m.version >= 7) push(`        type_description_hash: ${scalar(t.typeDescriptionHash)}`);
    push(`      message_count: ${t.messageCount}`);
  }
  const mode = m.compressionMode === 'none' ? '' : m.compressionMode.toUpperCase();
  push(`  compression_format: ${scalar(m.compressionFormat)}`);
  push(`  compression_mode: ${scalar(mode)}`);
  if (m.relativeFilePaths.length === 0) push('  relative_file_paths: []');
  else push('  relative_file_paths:');
  for (const p of m.relativeFilePaths) push(`    - ${scalar(p)}`);
  if (m.files.length === 0) push('  files: []');
  else push('  files:');
  for (const f of m.files) {
    push(`    - path: ${scalar(f.path)}`);
    push('      starting_time:');
    push(`        nanoseconds_since_epoch: ${f.startingTimeNs}`);
    push('      duration:');
    push(`        nanoseconds: ${f.durationNs}`);
    push(`      message_count: ${f.messageCount}`);
  }
  if (m.version >= 6) {
    const custom = Object.entries(m.customData);
    if (custom.length === 0) push('  custom_data: ~');
    else push('  custom_data:');
    for (const [k, v] of custom) push(`    ${scalar(k)}: ${scalar(v)}`);
  }
  if (m.version >= 8) push(`  ros_distro: ${scalar(m.rosDistro)}`);
  return `${lines.join('\n')}\n`;
}

/** The metadata as a sqlite3 recording stores it in its `metadata` table: metadata.yaml's fields at the top level. */
export function serializeStoredRosbag2Metadata(m: Rosbag2Metadata): string {
  return serializeRosbag2Metadata(m)
    .split('\n')
    .slice(1)
    .map((l) => l.slice(2))
    .join('\n');
}
