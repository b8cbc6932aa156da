// Replaying a ROS 2 recording through the node's pipeline: camera and joint-state topics in, actions, S2Features
// and /diagnostics (and optionally the inputs) out, on the recording's clock.
import { loadDecompressHandlers } from '@mcap/support';
import { need, type Config } from '../config/config.js';
import type { FeatureExtractor, StartupNote } from '../pipeline/extractor.js';
import type { Runtime } from '../runtime/build.js';
import { UserError } from '../errors.js';
import { nsToTime, type CompressedImageMsg, type ImageMsg, type JointStateMsg } from '../msgs/types.js';
import { runOnClock, schedulerFor, type TimedInput } from '../pipeline/clock.js';
import { ACTION_TYPES, actionMessage, diagnosticsMessage, featuresMessage } from '../pipeline/messages.js';
import type { MetricsSnapshot } from '../pipeline/metrics.js';
import { DEFAULT_NODE_NAME, resolveName } from '../msgs/names.js';
import { buildRuntime } from '../runtime/build.js';
import type { TopicInfo } from '../bag/reader.js';
import { openRecordingPath, type RecordingReader } from '../bag/rosbag2-reader.js';
import { createRecordingWriter, type OutputOptions, type RecordingWriter } from '../bag/rosbag2-writer.js';
import type { RosChannel } from '../bag/writer.js';

export const NODE_NAME = DEFAULT_NODE_NAME;

/** A topic as the node named `node` in the root namespace resolves it. */
export const resolveTopic = (name: string, node = NODE_NAME): string => resolveName(name, node);

/** A .mcap file, a rosbag2 folder or its metadata.yaml; metadata disagreements go to onWarning. */
export async function openRecording(file: string, onWarning?: (message: string) => void): Promise<RecordingReader> {
  return openRecordingPath(file, { decompressHandlers: await loadDecompressHandlers(), onWarning });
}

export interface InputTopics {
  cameras: Map<string, { camera: string; kind: 'raw' | 'compressed' }>;
  joints?: string;
}

/** Checks that the recording has every configured input topic with the right type. */
export function inputTopics(config: Config, topics: TopicInfo[], file: string, only?: readonly string[]): InputTopics {
  const byName = new Map(topics.map((t) => [t.topic, t]));
  const cameras = new Map<string, { camera: string; kind: 'raw' | 'compressed' }>();
  const want = (topic: string, type: string, key: string) => {
    const t = byName.get(topic);
    if (!t) throw new UserError(`${file}: has no topic ${topic} (${key}); its topics: ${topics.map((x) => x.topic).join(', ')}`);
    if (t.type !== type) throw new UserError(`${file}: topic ${topic} (${key}) is ${t.type}, expected ${type}`);
  };
  config.cameras.forEach((c, i) => {
    want(c.topic, c.transport === 'raw' ? 'sensor_msgs/msg/Image' : 'sensor_msgs/msg/CompressedImage', `cameras.${i}.topic`);
    cameras.set(c.topic, { camera: c.name, kind: c.transport });
  });
  let joints: string | undefined;
  if (config.joint_states) {
    want(config.joint_states.topic, 'sensor_msgs/msg/JointState', 'joint_states.topic');
    joints = config.joint_states.topic;
  }
  if (only) {
    const known = new Set([...cameras.keys(), ...(joints ? [joints] : [])]);
    for (const t of only) if (!known.has(t)) throw new UserError(`--topics: ${t} is not a configured camera or joint-state topic`);
    // Every configured camera feeds the policy: leaving one out would silently change its input.
    config.cameras.forEach((c, i) => {
      if (!only.includes(c.topic))
        throw new UserError(`--topics: leaves out ${c.topic} (cameras.${i}, '${c.name}'); every configured camera is an input of the policy`);
    });
    for (const t of [...cameras.keys()]) if (!only.includes(t)) cameras.delete(t);
    if (joints && !only.includes(joints)) joints = undefined;
  }
  return { cameras, joints };
}

/**
 * Where every message of a recording went: `total` is what the file's index or scan says it holds; the items are
 * what reading found — 'input <topic>' delivered, 'undecodable <topic>', 'not an input <topic>' (not read),
 * 'unknown channel <id>' (no Channel record). They add up to total unless a message vanished.
 */
export interface MessageAccounting {
  total: number;
  items: Record<string, number>;
}

export function messageAccounting(reader: RecordingReader, all: readonly TopicInfo[], delivered: ReadonlyMap<string, number>): MessageAccounting {
  const items: Record<string, number> = {};
  let total = 0;
  const failures = reader.decodeFailures.byTopic;
  for (const t of all) {
    total += t.messageCount;
    if (delivered.has(t.topic)) {
      items[`input ${t.topic}`] = delivered.get(t.topic) ?? 0;
      const bad = failures.get(t.topic) ?? 0;
      if (bad > 0) items[`undecodable ${t.topic}`] = bad;
    } else if (t.messageCount > 0) items[`not an input ${t.topic}`] = t.messageCount;
  }
  for (const n of reader.unknownChannelsInIndex.values()) total += n;
  for (const [id, n] of reader.unknownChannelMessages) items[`unknown channel ${id}`] = n;
  return { total, items };
}

/**
 * The start-up check of chunk coverage: a chunk of T actions at rate_hz lasts T / rate_hz; when that is not longer
 * than the slowest camera's period (plus the processing time, which only adds), ticks run past the chunk before the
 * next one comes and hold its last action. Returns the warning naming the numbers, or undefined.
 */
export function chunkCoverage(
  config: Config,
  steps: number | undefined,
  topics: readonly TopicInfo[],
  range: { start: bigint; end: bigint } | undefined,
): string | undefined {
  const rate = config.control?.rate_hz;
  if (steps === undefined || rate === undefined || !range) return undefined;
  const durationMs = Number(range.end - range.start) / 1e6;
  let slowest: { name: string; periodMs: number } | undefined;
  for (const cam of config.cameras) {
    const n = topics.find((t) => t.topic === cam.topic)?.messageCount ?? 0;
    if (n < 2 || durationMs <= 0) continue;
    const periodMs = durationMs / (n - 1);
    if (!slowest || periodMs > slowest.periodMs) slowest = { name: cam.name, periodMs };
  }
  const chunkMs = (1000 * steps) / rate;
  if (!slowest || chunkMs > slowest.periodMs) return undefined;
  return (
    `policy chunk of ${steps} actions at control.rate_hz ${rate} covers ${chunkMs.toFixed(0)} ms, not more than camera '${slowest.name}''s ` +
    `period of ${slowest.periodMs.toFixed(0)} ms (${(1000 / slowest.periodMs).toFixed(1)} Hz) plus processing time: ticks past a chunk hold its last ` +
    `action (counted as actions_held_past_chunk) until the next chunk or the watchdog; a chunk of at least ${Math.floor((slowest.periodMs * rate) / 1000) + 1} covers the gap`
  );
}

/** Timed pipeline inputs from a recording, in log-time order, times in ms relative to `startNs`. */
export async function* recordingInputs(
  reader: RecordingReader,
  topics: InputTopics,
  startNs: bigint,
  onMessage?: (topic: string, msg: unknown, logTime: bigint) => Promise<void>,
): AsyncGenerator<TimedInput> {
  const names = [...topics.cameras.keys(), ...(topics.joints ? [topics.joints] : [])];
  for await (const m of reader.messages({ topics: names })) {
    const timeMs = Number(m.logTime - startNs) / 1e6;
    if (onMessage) await onMessage(m.topic, m.message, m.logTime);
    const cam = topics.cameras.get(m.topic);
    if (cam) yield { timeMs, frame: { camera: cam.camera, kind: cam.kind, msg: m.message as ImageMsg | CompressedImageMsg } };
    else yield { timeMs, joints: m.message as JointStateMsg };
  }
}

export interface ReplayOptions {
  bag: string;
  config: Config;
  /** The config's name in errors (its file). */
  source?: string;
  out: string;
  /** 0 = as fast as possible; otherwise × real time. */
  rate: number;
  topics?: string[];
  withInputs: boolean;
  /** How `out` is written: a .mcap name is one file, anything else a rosbag2 folder (split on request). */
  output?: OutputOptions;
  /** Disagreements between a folder's metadata.yaml and its files. */
  onWarning?: (message: string) => void;
  /** The runtime's start-up notes (a given compiled model, an INT8 record), once the models are loaded. */
  onNote?: (note: StartupNote) => void;
}

export interface ReplaySummary {
  messagesIn: number;
  accounting: MessageAccounting;
  actions: number;
  safeActions: number;
  features: number;
  durationMs: number;
  metrics: MetricsSnapshot;
  actionTopic: string;
  featuresTopic: string;
  actionLimitsRespected: boolean;
}

export async function replay(o: ReplayOptions): Promise<ReplaySummary> {
  const reader = await openRecording(o.bag, o.onWarning);
  try {
    return await replayFrom(reader, o);
  } finally {
    await reader.close();
  }
}

async function replayFrom(reader: RecordingReader, o: ReplayOptions): Promise<ReplaySummary> {
  const topics = inputTopics(o.config, await reader.topics(), o.bag, o.topics);
  const { start: startNs, end: endNs } = reader.timeRange ?? { start: 0n, end: 0n };
  let runtime: Runtime | undefined;
  let writer: RecordingWriter | undefined;
  let finished = false;
  try {
    runtime = await buildRuntime(o.config, o.source ?? 'config', { features: true, policy: true, by: 'replay' });
    for (const n of runtime.notes) o.onNote?.(n);
    const extractor = runtime.extractor as FeatureExtractor;
    const pipeline = runtime.pipeline(schedulerFor({ rate: o.rate }, 0));
    const chunkWarning = chunkCoverage(o.config, runtime.head?.shape.chunk, await reader.topics(), reader.timeRange);
    if (chunkWarning) o.onWarning?.(chunkWarning);
    writer = await createRecordingWriter(o.out, o.output);
    const w = writer;
    const c = need(o.config, 'control', o.source ?? 'config', 'replay');
    const actionTopic = resolveTopic(c.action_topic);
    const featuresTopic = resolveTopic(o.config.features.topic);
    const actionCh = await w.addChannel(actionTopic, ACTION_TYPES[c.action_interface]);
    // features.publish false: no S2Features, as the node does not publish them.
    const featuresCh = o.config.features.publish ? await w.addChannel(featuresTopic, 's2_policy/msg/S2Features') : undefined;
    const diagCh = await w.addChannel('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray');
    const inputChannels = new Map<string, RosChannel>();
    if (o.withInputs) {
      for (const t of await reader.topics()) {
        if (topics.cameras.has(t.topic) || t.topic === topics.joints) inputChannels.set(t.topic, await w.addChannel(t.topic, t.type));
      }
    }
    const toNs = (ms: number) => startNs + BigInt(Math.round(ms * 1e6));
    const periodMs = 1000 / c.rate_hz;
    let messagesIn = 0;
    const delivered = new Map<string, number>([...topics.cameras.keys(), ...(topics.joints ? [topics.joints] : [])].map((t) => [t, 0]));
    let actions = 0;
    let features = 0;
    let withinLimits = true;
    let previous: Float32Array | undefined;
    const tol = 1e-6;
    await runOnClock(
      pipeline,
      recordingInputs(reader, topics, startNs, async (topic, msg, logTime) => {
        messagesIn++;
        delivered.set(topic, (delivered.get(topic) ?? 0) + 1);
        const ch = inputChannels.get(topic);
        if (ch) await w.write(ch, msg as never, logTime);
      }),
      { rate: o.rate, tailMs: o.config.watchdog.stale_after_ms + 2 * periodMs },
      {
        action: async (cmd) => {
          actions++;
          // Every published command must respect the clamps, and fresh ones the per-tick change limit.
          cmd.values.forEach((v, d) => {
            if ((c.lower && v < c.lower[d] - tol) || (c.upper && v > c.upper[d] + tol)) withinLimits = false;
            if (cmd.state === 'ok' && previous && c.max_delta && Math.abs(v - previous[d]) > c.max_delta[d] + tol) withinLimits = false;
          });
          previous = cmd.values;
          const at = toNs(cmd.at);
          await w.write(
            actionCh,
            actionMessage(cmd, nsToTime(at), { interface: c.action_interface, commandType: c.command_type, jointNames: c.joint_names, periodMs }),
            at,
          );
        },
        features: async (f) => {
          if (!featuresCh) return;
          features++;
          await w.write(featuresCh, featuresMessage(f, extractor.layout), toNs(f.at));
        },
        metrics: async (m) => {
          const at = toNs(m.at);
          await w.write(diagCh, diagnosticsMessage(m, nsToTime(at), `${NODE_NAME}: pipeline`), at);
        },
      },
    );
    const metrics = pipeline.metrics.snapshot(pipeline.scheduler.now());
    await w.close();
    finished = true;
    return {
      messagesIn,
      accounting: messageAccounting(reader, await reader.topics(), delivered),
      actions,
      safeActions: metrics.counts.safeActions,
      features,
      durationMs: Number(endNs - startNs) / 1e6,
      metrics,
      actionTopic,
      featuresTopic,
      actionLimitsRespected: withinLimits,
    };
  } finally {
    // A failed replay leaves no output: the unfinished recording is removed (an existing --out stays as it was).
    if (!finished) await writer?.abort();
    await runtime?.release();
  }
}
