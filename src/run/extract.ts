// Feature extraction for training: every synchronised camera group of a recording through ingestion and S² (no
// frame dropped for speed), with the joint state and recorded action aligned to each group, written as .npy files
// plus a JSON index.
import { join } from 'node:path';
import { Subject } from 'rxjs';
import type { Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomic.js';
import { writeArray } from '../io/npy.js';
import type { Float64MultiArrayMsg, JointStateMsg, JointTrajectoryMsg, TwistStampedMsg } from '../msgs/types.js';
import { timeToNs } from '../msgs/types.js';
import type { FeatureExtractor, CameraInput, StartupNote } from '../pipeline/extractor.js';
import { jointStateVector } from '../pipeline/pipeline.js';
import { buildRuntime } from '../runtime/build.js';
import { syncCameras, type CameraFrame } from '../pipeline/operators.js';
import type { RecordingReader } from '../bag/rosbag2-reader.js';
import { inputTopics, messageAccounting, openRecording, type MessageAccounting } from './replay.js';

const ACTION_TOPIC_TYPES = ['std_msgs/msg/Float64MultiArray', 'trajectory_msgs/msg/JointTrajectory', 'geometry_msgs/msg/TwistStamped'];

export interface ExtractOptions {
  /** One recording, or several: each is one episode (episodes.npy names each row's recording). */
  bags: string[];
  config: Config;
  configFile: string;
  out: string;
  /** Topic of recorded actions (Float64MultiArray, JointTrajectory or TwistStamped). */
  actionsTopic?: string;
  /**
   * frames (default): one row per camera group, with the latest state and action at or before it. actions: one row
   * per recorded action (the control rate), with the joint state and camera group the commander last had
   * (frame_of.npy names each row's group), as a teleoperator's commands and a slower camera are recorded.
   */
  rows?: 'frames' | 'actions';
  progress?: (done: number, total: number) => void;
  /** Disagreements between a folder's metadata.yaml and its files. */
  onWarning?: (message: string) => void;
  /** The runtime's start-up notes (a given compiled model, an INT8 record), once the models are loaded. */
  onNote?: (note: StartupNote) => void;
}

export interface ExtractSummary {
  frames: number;
  /** Rows of state.npy/actions.npy (the frames, or the actions with --rows actions). */
  rows: number;
  /** The recordings read (each one episode). */
  episodes: number;
  featureDim: number;
  dropped: Record<string, number>;
  files: string[];
  /** Every message of the recording by what became of it (as index.json's accounting.messages). */
  accounting: MessageAccounting;
  /** Per camera: in = processed + Σ dropped. */
  cameras: Record<string, { in: number; processed: number; dropped: Record<string, number> }>;
}

/** The values of a recorded action message as a flat vector. */
function actionValues(type: string, msg: unknown): number[] {
  if (type === 'std_msgs/msg/Float64MultiArray') return Array.from((msg as Float64MultiArrayMsg).data);
  if (type === 'geometry_msgs/msg/TwistStamped') {
    const t = (msg as TwistStampedMsg).twist;
    return [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z];
  }
  const p = (msg as JointTrajectoryMsg).points[0];
  if (!p) return [];
  return Array.from(p.positions.length > 0 ? p.positions : p.velocities);
}

/** The latest sample at or before `t` (ns) from a time-sorted list, or undefined. */
function latestAtOrBefore<T>(samples: { t: bigint; v: T }[], t: bigint): T | undefined {
  const i = latestIndex(samples.length, (k) => samples[k].t, t);
  return i < 0 ? undefined : samples[i].v;
}

/** What one recording gave: its groups' features and alignment, before the recordings are written together. */
interface BagRows {
  bag: string;
  feats: Float32Array[];
  stamps: bigint[];
  logTimes: bigint[];
  states: Float32Array[];
  acts: number[][];
  /** --rows actions: each row's camera group within this recording. */
  frameOf: number[];
  actionType?: string;
  accounting: MessageAccounting;
  jointsIn: number;
  jointsUsed: number;
  jointsTopic?: string;
}

/** The last of `n` time-sorted items whose time (`timeOf(k)`, ns) is at or before `t`, or -1. */
function latestIndex(n: number, timeOf: (k: number) => bigint, t: bigint): number {
  let lo = 0;
  let hi = n - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (timeOf(mid) <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export async function extractFeatures(o: ExtractOptions): Promise<ExtractSummary> {
  if (o.bags.length === 0) throw new UserError('extract: --bag is required');
  const rowsMode = o.rows ?? 'frames';
  if (rowsMode === 'actions' && o.actionsTopic === undefined) throw new UserError('extract: --rows actions needs --actions-topic (the rows are its messages)');
  // Every recording is opened and checked before the model is loaded, so a bad last one fails in seconds.
  const total: number[] = [];
  for (const bag of o.bags) {
    const reader = await openRecording(bag, o.onWarning);
    try {
      total.push(await bagFrames(reader, o, bag));
    } finally {
      await reader.close();
    }
  }
  const all = total.reduce((a, b) => a + b, 0);
  const runtime = await buildRuntime(o.config, o.configFile, { features: true, policy: false, by: 'extract' });
  for (const n of runtime.notes) o.onNote?.(n);
  const extractor = runtime.extractor as FeatureExtractor;
  const dropped: Record<string, number> = {};
  const drop = (reason: string, n = 1) => (dropped[reason] = (dropped[reason] ?? 0) + n);
  // Per camera: in = processed + Σ dropped, as in replay's summary and /diagnostics.
  const perCamera: Record<string, { in: number; processed: number; dropped: Record<string, number> }> = Object.fromEntries(
    o.config.cameras.map((c) => [c.name, { in: 0, processed: 0, dropped: {} }]),
  );
  const dropFrame = (camera: string, reason: string) => {
    drop(reason);
    const d = perCamera[camera].dropped;
    d[reason] = (d[reason] ?? 0) + 1;
  };
  try {
    const parts: BagRows[] = [];
    let done = 0;
    for (const bag of o.bags) {
      const reader = await openRecording(bag, undefined);
      try {
        const seenBefore = done;
        parts.push(
          await extractBag(reader, bag, o, rowsMode, extractor, drop, dropFrame, perCamera, (seen) => {
            done = seenBefore + seen;
            o.progress?.(done, all);
          }),
        );
      } finally {
        await reader.close();
      }
    }
    return await writeExtraction(o, rowsMode, parts, extractor, dropped, perCamera);
  } finally {
    await runtime.release();
  }
}

/** The recording's camera messages (for progress), after checking its topics against the configuration. */
async function bagFrames(reader: RecordingReader, o: ExtractOptions, bag: string): Promise<number> {
  const allTopics = await reader.topics();
  const topics = inputTopics(o.config, allTopics, bag);
  if (o.actionsTopic !== undefined) {
    const t = allTopics.find((x) => x.topic === o.actionsTopic);
    if (!t) throw new UserError(`${bag}: has no topic ${o.actionsTopic} (--actions-topic)`);
    if (!ACTION_TOPIC_TYPES.includes(t.type))
      throw new UserError(`${bag}: --actions-topic ${o.actionsTopic} is ${t.type}; expected one of ${ACTION_TOPIC_TYPES.join(', ')}`);
  }
  return allTopics.filter((t) => topics.cameras.has(t.topic)).reduce((n, t) => n + t.messageCount, 0);
}

async function extractBag(
  reader: RecordingReader,
  bag: string,
  o: ExtractOptions,
  rowsMode: 'frames' | 'actions',
  extractor: FeatureExtractor,
  drop: (reason: string, n?: number) => void,
  dropFrame: (camera: string, reason: string) => void,
  perCamera: Record<string, { in: number; processed: number; dropped: Record<string, number> }>,
  progress: (seen: number) => void,
): Promise<BagRows> {
  const allTopics = await reader.topics();
  const topics = inputTopics(o.config, allTopics, bag);
  const actionType = o.actionsTopic === undefined ? undefined : allTopics.find((x) => x.topic === o.actionsTopic)?.type;
  const delivered = new Map<string, number>();
  const deliver = (topic: string) => delivered.set(topic, (delivered.get(topic) ?? 0) + 1);
  let jointsIn = 0;
  const cameras = o.config.cameras.map((c) => c.name);
  const jointNames = o.config.joint_states?.names ?? [];
  // Joint states by header stamp (aligned to a group's header stamp) and by log time (aligned to a recorded action,
  // which has no header: both are then times of arrival at the recorder).
  const joints: { t: bigint; v: Float32Array }[] = [];
  const jointsByLog: { t: bigint; v: Float32Array }[] = [];
  const actions: { t: bigint; v: number[] }[] = [];
  const frameTopics = [...topics.cameras.keys()];

  // Joint states and actions first (small), so that each group can be aligned by its header stamp.
  const side = [...(topics.joints ? [topics.joints] : []), ...(o.actionsTopic ? [o.actionsTopic] : [])];
  if (side.length > 0) {
    for await (const m of reader.messages({ topics: side })) {
      deliver(m.topic);
      if (m.topic === topics.joints) {
        jointsIn++;
        const js = m.message as JointStateMsg;
        const v = jointStateVector(jointNames, js);
        if (v) {
          joints.push({ t: timeToNs(js.header.stamp), v });
          jointsByLog.push({ t: m.logTime, v });
        } else drop('joint_state:missing_joint');
      } else {
        actions.push({ t: m.logTime, v: actionValues(actionType as string, m.message) });
      }
    }
  }
  const byTime = (a: { t: bigint }, b: { t: bigint }) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0);
  joints.sort(byTime);
  jointsByLog.sort(byTime);
  actions.sort(byTime);

  const groups: CameraFrame[][] = [];
  const frames = new Subject<CameraFrame>();
  const sub = frames
    .pipe(syncCameras<CameraFrame>(cameras, { mode: o.config.sync.mode, slopMs: o.config.sync.slop_ms }, (f, r) => dropFrame(f.camera, `frame:${r}`)))
    .subscribe((g) => groups.push(g));
  const out: BagRows = {
    bag,
    feats: [],
    stamps: [],
    logTimes: [],
    states: [],
    acts: [],
    frameOf: [],
    actionType,
    accounting: { total: 0, items: {} },
    jointsIn: 0,
    jointsUsed: 0,
    jointsTopic: topics.joints,
  };
  let seen = 0;
  const flush = async (logTime: bigint) => {
    while (groups.length > 0) {
      const g = groups.shift() as CameraFrame[];
      const results = await Promise.all(g.map((f) => extractor.ingestFrame(f)));
      const inputs: CameraInput[] = [];
      results.forEach((r, i) => {
        if (r.ok) inputs.push({ base: r.base, scales: r.scales });
        else dropFrame(g[i].camera, `frame:rejected:${r.reason}`);
      });
      if (inputs.length !== g.length) {
        results.forEach((r, i) => r.ok && dropFrame(g[i].camera, 'frame:group_incomplete'));
        continue;
      }
      const stamp = g.map((f) => timeToNs(f.msg.header.stamp)).reduce((a, b) => (a > b ? a : b));
      // With a row per frame, a frame needs its state and action; with a row per action, each action finds its own.
      const state = topics.joints && rowsMode === 'frames' ? latestAtOrBefore(joints, stamp) : undefined;
      const action = o.actionsTopic && rowsMode === 'frames' ? latestAtOrBefore(actions, logTime) : undefined;
      if (rowsMode === 'frames' && ((topics.joints && !state) || (o.actionsTopic && !action))) {
        for (const f of g) dropFrame(f.camera, 'frame:no_aligned_state_or_action');
        continue;
      }
      const per = await extractor.extract(inputs);
      // Features with a NaN or Inf are not written (a training set must not carry them silently).
      if (per.some((x) => x.some((y) => !Number.isFinite(y)))) {
        for (const f of g) dropFrame(f.camera, 'frame:nonfinite_features');
        continue;
      }
      for (const f of g) perCamera[f.camera].processed++;
      const v = new Float32Array(per.reduce((n, x) => n + x.length, 0));
      let off = 0;
      for (const x of per) {
        v.set(x, off);
        off += x.length;
      }
      out.feats.push(v);
      out.stamps.push(stamp);
      out.logTimes.push(logTime);
      if (state) out.states.push(state);
      if (action) out.acts.push(action);
    }
  };
  for await (const m of reader.messages({ topics: frameTopics })) {
    const cam = topics.cameras.get(m.topic);
    if (!cam) continue;
    deliver(m.topic);
    perCamera[cam.camera].in++;
    frames.next({ camera: cam.camera, kind: cam.kind, msg: m.message as CameraFrame['msg'] });
    seen++;
    await flush(m.logTime);
    progress(seen);
  }
  frames.complete();
  sub.unsubscribe();

  if (rowsMode === 'actions') {
    // Each recorded command with what its sender last had: the newest extracted group and joint state that had
    // reached the recorder before it. Commands before the first group (or state) have nothing to learn from.
    for (const a of actions) {
      const f = latestIndex(out.logTimes.length, (k) => out.logTimes[k], a.t);
      if (f < 0) {
        drop('action:before_first_frame');
        continue;
      }
      let state: Float32Array | undefined;
      if (topics.joints) {
        const j = latestIndex(jointsByLog.length, (k) => jointsByLog[k].t, a.t);
        if (j < 0) {
          drop('action:no_state');
          continue;
        }
        state = jointsByLog[j].v;
      }
      out.frameOf.push(f);
      if (state) out.states.push(state);
      out.acts.push(a.v);
    }
  }
  if (out.feats.length === 0)
    throw new UserError(`${bag}: no synchronised camera group could be extracted (frames dropped so far: ${JSON.stringify(perCamera)})`);
  if (rowsMode === 'actions' && out.acts.length === 0) throw new UserError(`${bag}: no action on ${o.actionsTopic} comes after a camera group`);
  out.accounting = messageAccounting(reader, allTopics, delivered);
  out.jointsIn = jointsIn;
  out.jointsUsed = joints.length;
  return out;
}

/** The recordings' rows written together into --out (replaced whole, only when complete). */
async function writeExtraction(
  o: ExtractOptions,
  rowsMode: 'frames' | 'actions',
  parts: BagRows[],
  extractor: FeatureExtractor,
  dropped: Record<string, number>,
  perCamera: Record<string, { in: number; processed: number; dropped: Record<string, number> }>,
): Promise<ExtractSummary> {
  const cameras = o.config.cameras.map((c) => c.name);
  const jointNames = o.config.joint_states?.names ?? [];
  const frames = parts.reduce((n, p) => n + p.feats.length, 0);
  const d = parts[0].feats[0].length;
  const acts = parts.flatMap((p) => p.acts);
  const states = parts.flatMap((p) => p.states);
  const rows = rowsMode === 'actions' ? acts.length : frames;
  const actionType = parts[0].actionType;
  const accounting: MessageAccounting = { total: 0, items: {} };
  for (const p of parts) {
    accounting.total += p.accounting.total;
    for (const [k, v] of Object.entries(p.accounting.items)) accounting.items[k] = (accounting.items[k] ?? 0) + v;
  }
  const jointsIn = parts.reduce((n, p) => n + p.jointsIn, 0);
  const jointsUsed = parts.reduce((n, p) => n + p.jointsUsed, 0);
  const files: string[] = [];
  await withAtomicDir(
    o.out,
    (dir) => {
      const put = (name: string, dims: number[], data: Float32Array | BigInt64Array) => {
        writeArray(join(dir, name), dims, data);
        files.push(name);
      };
      const all = new Float32Array(frames * d);
      let f = 0;
      for (const p of parts) for (const x of p.feats) all.set(x, d * f++);
      put('features.npy', [frames, d], all);
      put('stamps_ns.npy', [frames], BigInt64Array.from(parts.flatMap((p) => p.stamps)));
      put('log_times_ns.npy', [frames], BigInt64Array.from(parts.flatMap((p) => p.logTimes)));
      if (states.length > 0) {
        const s = new Float32Array(states.length * jointNames.length);
        states.forEach((x, i) => s.set(x, i * jointNames.length));
        put('state.npy', [states.length, jointNames.length], s);
      }
      if (acts.length > 0) {
        const a = acts[0].length;
        const bad = parts.find((p) => p.acts.some((x) => x.length !== a));
        if (bad) throw new UserError(`${bad.bag}: recorded actions on ${o.actionsTopic} change length`);
        put('actions.npy', [acts.length, a], Float32Array.from(acts.flat()));
      }
      if (rowsMode === 'actions') {
        // Each recording's group indices, offset by the groups of the recordings before it.
        const frameOf = new Float32Array(rows);
        let r = 0;
        let base = 0;
        for (const p of parts) {
          for (const x of p.frameOf) frameOf[r++] = base + x;
          base += p.feats.length;
        }
        put('frame_of.npy', [rows], frameOf);
      }
      if (parts.length > 1) {
        const ep = new Float32Array(rows);
        let r = 0;
        parts.forEach((p, e) => {
          const n = rowsMode === 'actions' ? p.acts.length : p.feats.length;
          ep.fill(e, r, r + n);
          r += n;
        });
        put('episodes.npy', [rows], ep);
      }
      const L = extractor.layout;
      const index = {
        generator: 's2-policy extract',
        bag: parts.length === 1 ? parts[0].bag : undefined,
        bags: parts.length > 1 ? parts.map((p) => p.bag) : undefined,
        config: o.configFile,
        rows_per: rowsMode === 'actions' ? 'action' : 'frame',
        rows,
        frames,
        files,
        features: { file: 'features.npy', shape: [frames, d], cameras, per_camera: L.perCamera, pooling: L.pooling },
        s2: {
          backbone: o.config.backbone.model,
          scale_sizes: L.scaleSizes,
          num_prefix_tokens: L.numPrefixTokens,
          grid: [L.gridHeight, L.gridWidth],
          channels: L.channels,
          output_shape: L.outputShape,
          options: extractor.options,
        },
        image: o.config.image,
        state:
          states.length > 0
            ? {
                file: 'state.npy',
                joints: jointNames,
                aligned:
                  rowsMode === 'actions' ? 'latest joint state received at or before the action' : 'latest joint state at or before the group header stamp',
              }
            : null,
        actions:
          acts.length > 0
            ? {
                file: 'actions.npy',
                topic: o.actionsTopic,
                type: actionType,
                aligned: rowsMode === 'actions' ? 'one row per recorded action' : 'latest action at or before the group log time',
              }
            : null,
        frame_of: rowsMode === 'actions' ? { file: 'frame_of.npy', meaning: 'the latest camera group received at or before each action' } : null,
        episodes: parts.length > 1 ? { file: 'episodes.npy', meaning: 'the recording (--bag, in order) of each row' } : null,
        stamps: { file: 'stamps_ns.npy', meaning: 'newest header stamp of each camera group, ns' },
        dropped,
        accounting: {
          messages: { total: accounting.total, ...accounting.items },
          cameras: perCamera,
          joint_states: parts[0].jointsTopic
            ? { topic: parts[0].jointsTopic, in: jointsIn, used: jointsUsed, 'joint_state:missing_joint': jointsIn - jointsUsed }
            : null,
        },
      };
      writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 2));
      files.push('index.json');
    },
    '--out',
  );
  return { frames, rows, episodes: parts.length, featureDim: d, dropped, files, accounting, cameras: perCamera };
}
