// The `offered_qos_profiles` channel metadata of rosbag2: a YAML list of QoS profiles, written with integer enums
// (rosbag2 metadata version ≤ 8: Humble, Iron) or with policy names (version 9: Jazzy and later). We read both and
// write integers, which every distribution reads (see McapRosWriter for the metadata record that makes Jazzy+ agree).
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';

export type HistoryPolicy = 'system_default' | 'keep_last' | 'keep_all' | 'unknown';
export type ReliabilityPolicy = 'system_default' | 'reliable' | 'best_effort' | 'unknown' | 'best_available';
export type DurabilityPolicy = 'system_default' | 'transient_local' | 'volatile' | 'unknown' | 'best_available';
export type LivelinessPolicy = 'system_default' | 'automatic' | 'manual_by_node' | 'manual_by_topic' | 'unknown' | 'best_available';

/** rmw_time_t: seconds and nanoseconds; INFINITE_DURATION means "no limit". */
export interface QosDuration {
  sec: number;
  nsec: number;
}

export interface QosProfile {
  history: HistoryPolicy;
  depth: number;
  reliability: ReliabilityPolicy;
  durability: DurabilityPolicy;
  deadline: QosDuration;
  lifespan: QosDuration;
  liveliness: LivelinessPolicy;
  liveliness_lease_duration: QosDuration;
  avoid_ros_namespace_conventions: boolean;
}

/** RMW_DURATION_INFINITE (INT64_MAX ns) as rosbag2 writes it. */
export const INFINITE_DURATION: QosDuration = { sec: 9223372036, nsec: 854775807 };

// Index = the rmw enum value (rmw/types.h).
const HISTORY: readonly HistoryPolicy[] = ['system_default', 'keep_last', 'keep_all', 'unknown'];
const RELIABILITY: readonly ReliabilityPolicy[] = ['system_default', 'reliable', 'best_effort', 'unknown', 'best_available'];
const DURABILITY: readonly DurabilityPolicy[] = ['system_default', 'transient_local', 'volatile', 'unknown', 'best_available'];
const LIVELINESS: readonly LivelinessPolicy[] = ['system_default', 'automatic', 'manual_by_node', 'manual_by_topic', 'unknown', 'best_available'];

/**
 * What `ros2 bag record` stores for an ordinary publisher seen through the graph (history and depth are not
 * visible there): reliable, volatile, no deadline, lifespan or lease.
 */
export function defaultOfferedQos(overrides: Partial<QosProfile> = {}): QosProfile {
  return {
    history: 'unknown',
    depth: 0,
    reliability: 'reliable',
    durability: 'volatile',
    deadline: INFINITE_DURATION,
    lifespan: INFINITE_DURATION,
    liveliness: 'automatic',
    liveliness_lease_duration: INFINITE_DURATION,
    avoid_ros_namespace_conventions: false,
    ...overrides,
  };
}

function duration(d: QosDuration): string {
  return `\n    sec: ${d.sec}\n    nsec: ${d.nsec}`;
}

/**
 * The YAML text rosbag2 (yaml-cpp) writes for a list of profiles; '[]' for none. Integer enums by default (metadata
 * version ≤ 8, what Humble and Iron read); 'names' as Jazzy's sqlite3 plugin stores them in its topics table.
 */
export function serializeOfferedQos(profiles: readonly QosProfile[], form: 'integers' | 'names' = 'integers'): string {
  if (profiles.length === 0) return '[]';
  const e = <T extends string>(names: readonly T[], v: T) => (form === 'names' ? v : String(names.indexOf(v)));
  return profiles
    .map(
      (p) =>
        `- history: ${e(HISTORY, p.history)}\n  depth: ${p.depth}\n  reliability: ${e(RELIABILITY, p.reliability)}\n` +
        `  durability: ${e(DURABILITY, p.durability)}\n  deadline:${duration(p.deadline)}\n  lifespan:${duration(p.lifespan)}\n` +
        `  liveliness: ${e(LIVELINESS, p.liveliness)}\n  liveliness_lease_duration:${duration(p.liveliness_lease_duration)}\n` +
        `  avoid_ros_namespace_conventions: ${p.avoid_ros_namespace_conventions}`,
    )
    .join('\n');
}

/**
 * Policies Humble's rmw (rmw/types.h, branch humble) has no value for: 'best_available' came with Iron. A profile
 * using one cannot be written for Humble.
 */
export function humbleQosProblem(p: QosProfile): string | undefined {
  for (const [key, value] of [
    ['reliability', p.reliability],
    ['durability', p.durability],
    ['liveliness', p.liveliness],
  ] as const)
    if (value === 'best_available') return `${key} best_available does not exist in Humble`;
  return undefined;
}

function policy<T extends string>(names: readonly T[], value: unknown, key: string, what: string): T {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < names.length) return names[value];
  if (typeof value === 'string' && (names as readonly string[]).includes(value)) return value as T;
  throw new UserError(`${what}: offered_qos_profiles ${key} is ${JSON.stringify(value)}, expected one of ${names.join(', ')} or 0-${names.length - 1}`);
}

function parseDuration(value: unknown, key: string, what: string): QosDuration {
  const d = value as { sec?: unknown; nsec?: unknown } | null;
  if (typeof d !== 'object' || d === null || typeof d.sec !== 'number' || typeof d.nsec !== 'number') {
    throw new UserError(`${what}: offered_qos_profiles ${key} is not {sec, nsec}`);
  }
  return { sec: d.sec, nsec: d.nsec };
}

/** Parses `offered_qos_profiles` in either rosbag2 format; `what` names the file and topic in errors. */
export function parseOfferedQos(text: string, what: string): QosProfile[] {
  if (text.trim() === '') return [];
  let doc: unknown;
  try {
    // Large ints (9223372036854775807-style) do not occur: rosbag2 splits durations into sec and nsec.
    doc = parseYaml(text);
  } catch (e) {
    throw new UserError(`${what}: offered_qos_profiles is not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return offeredQosFromValue(doc, what);
}

/** The profiles of an already parsed offered_qos_profiles value (metadata.yaml version 9 holds it as a list). */
export function offeredQosFromValue(doc: unknown, what: string): QosProfile[] {
  if (!Array.isArray(doc)) throw new UserError(`${what}: offered_qos_profiles is not a YAML list`);
  return doc.map((item: unknown) => {
    const p = item as Record<string, unknown> | null;
    if (typeof p !== 'object' || p === null) throw new UserError(`${what}: offered_qos_profiles entry is not a mapping`);
    return {
      history: policy(HISTORY, p.history, 'history', what),
      depth: typeof p.depth === 'number' ? p.depth : 0,
      reliability: policy(RELIABILITY, p.reliability, 'reliability', what),
      durability: policy(DURABILITY, p.durability, 'durability', what),
      deadline: parseDuration(p.deadline, 'deadline', what),
      lifespan: parseDuration(p.lifespan, 'lifespan', what),
      liveliness: policy(LIVELINESS, p.liveliness, 'liveliness', what),
      liveliness_lease_duration: parseDuration(p.liveliness_lease_duration, 'liveliness_lease_duration', what),
      avoid_ros_namespace_conventions: p.avoid_ros_namespace_conventions === true,
    };
  });
}
