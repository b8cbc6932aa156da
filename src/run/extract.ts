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
  bag: string;
  config: Config;
  configFile: string;
  out: string;
  /** Topic of recorded actions (Float64MultiArray, JointTrajectory or TwistStamped). */
  actionsTopic?: string;
  progress?: (done: number, total: number) => void;
  /** Disagreements between a folder's metadata.yaml and its files. */
  onWarning?: (message: string) => void;
  /** The runtime's start-up notes (a given compiled model, an INT8 record), once the models are loaded. */
  onNote?: (note: StartupNote) => void;
}

export interface ExtractSummary {
  frames: number;
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
  let lo = 0;
  let hi = samples.length - 1;
  let found: T | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (samples[mid].t <= t) {
      found = samples[mid].v;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export async function extractFeatures(o: ExtractOptions): Promise<ExtractSummary> {
  const reader = await openRecording(o.bag, o.onWarning);
  try {
    return await extractFrom(reader, o);
  } finally {
    await reader.close();
  }
}

async function extractFrom(reader: RecordingReader, o: ExtractOptions): Promise<ExtractSummary> {
  const allTopics = await reader.topics();
  const topics = inputTopics(o.config, allTopics, o.bag);
  let actionType: string | undefined;
  if (o.actionsTopic !== undefined) {
    const t = allTopics.find((x) => x.topic === o.actionsTopic);
    if (!t) throw new UserError(`${o.bag}: has no topic ${o.actionsTopic} (--actions-topic)`);
    if (!ACTION_TOPIC_TYPES.includes(t.type))
      throw new UserError(`${o.bag}: --actions-topic ${o.actionsTopic} is ${t.type}; expected one of ${ACTION_TOPIC_TYPES.join(', ')}`);
    actionType = t.type;
  }
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
  const delivered = new Map<string, number>();
  const deliver = (topic: string) => delivered.set(topic, (delivered.get(topic) ?? 0) + 1);
  let jointsIn = 0;
  try {
    const cameras = o.config.cameras.map((c) => c.name);
    const jointNames = o.config.joint_states?.names ?? [];
    const joints: { t: bigint; v: Float32Array }[] = [];
    const actions: { t: bigint; v: number[] }[] = [];
    const frameTopics = [...topics.cameras.keys()];
    const totalFrames = allTopics.filter((t) => topics.cameras.has(t.topic)).reduce((n, t) => n + t.messageCount, 0);

    // Joint states and actions first (small), so that each group can be aligned by its header stamp.
    const side = [...(topics.joints ? [topics.joints] : []), ...(o.actionsTopic ? [o.actionsTopic] : [])];
    if (side.length > 0) {
      for await (const m of reader.messages({ topics: side })) {
        deliver(m.topic);
        if (m.topic === topics.joints) {
          jointsIn++;
          const js = m.message as JointStateMsg;
          const v = jointStateVector(jointNames, js);
          if (v) joints.push({ t: timeToNs(js.header.stamp), v });
          else drop('joint_state:missing_joint');
        } else {
          actions.push({ t: m.logTime, v: actionValues(actionType as string, m.message) });
        }
      }
    }
    joints.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));

    const groups: CameraFrame[][] = [];
    const frames = new Subject<CameraFrame>();
    const sub = frames
      .pipe(syncCameras<CameraFrame>(cameras, { mode: o.config.sync.mode, slopMs: o.config.sync.slop_ms }, (f, r) => dropFrame(f.camera, `frame:${r}`)))
      .subscribe((g) => groups.push(g));
    const feats: Float32Array[] = [];
    const stamps: bigint[] = [];
    const logTimes: bigint[] = [];
    const states: Float32Array[] = [];
    const acts: number[][] = [];
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
        const state = topics.joints ? latestAtOrBefore(joints, stamp) : undefined;
        const action = o.actionsTopic ? latestAtOrBefore(actions, logTime) : undefined;
        if ((topics.joints && !state) || (o.actionsTopic && !action)) {
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
        feats.push(v);
        stamps.push(stamp);
        logTimes.push(logTime);
        if (state) states.push(state);
        if (action) acts.push(action);
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
      o.progress?.(seen, totalFrames);
    }
    frames.complete();
    sub.unsubscribe();

    if (feats.length === 0) throw new UserError(`${o.bag}: no synchronised camera group could be extracted (dropped: ${JSON.stringify(dropped)})`);
    const accounting = messageAccounting(reader, allTopics, delivered);
    // Written into a fresh folder that takes the place of --out only when complete.
    const d = feats[0].length;
    const files: string[] = [];
    await withAtomicDir(
      o.out,
      (dir) => {
        const put = (name: string, dims: number[], data: Float32Array | BigInt64Array) => {
          writeArray(join(dir, name), dims, data);
          files.push(name);
        };
        const all = new Float32Array(feats.length * d);
        feats.forEach((f, i) => all.set(f, i * d));
        put('features.npy', [feats.length, d], all);
        put('stamps_ns.npy', [stamps.length], BigInt64Array.from(stamps));
        put('log_times_ns.npy', [logTimes.length], BigInt64Array.from(logTimes));
        if (states.length > 0) {
          const s = new Float32Array(states.length * jointNames.length);
          states.forEach((x, i) => s.set(x, i * jointNames.length));
          put('state.npy', [states.length, jointNames.length], s);
        }
        if (acts.length > 0) {
          const a = acts[0].length;
          if (acts.some((x) => x.length !== a)) throw new UserError(`${o.bag}: recorded actions on ${o.actionsTopic} change length`);
          put('actions.npy', [acts.length, a], Float32Array.from(acts.flat()));
        }
        const L = extractor.layout;
        const index = {
          generator: 's2-policy extract',
          bag: o.bag,
          config: o.configFile,
          frames: feats.length,
          files,
          features: { file: 'features.npy', shape: [feats.length, d], cameras, per_camera: L.perCamera, pooling: L.pooling },
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
          state: states.length > 0 ? { file: 'state.npy', joints: jointNames, aligned: 'latest joint state at or before the group header stamp' } : null,
          actions:
            acts.length > 0 ? { file: 'actions.npy', topic: o.actionsTopic, type: actionType, aligned: 'latest action at or before the group log time' } : null,
          stamps: { file: 'stamps_ns.npy', meaning: 'newest header stamp of each camera group, ns' },
          dropped,
          accounting: {
            messages: { total: accounting.total, ...accounting.items },
            cameras: perCamera,
            joint_states: topics.joints
              ? { topic: topics.joints, in: jointsIn, used: joints.length, 'joint_state:missing_joint': jointsIn - joints.length }
              : null,
          },
        };
        writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 2));
        files.push('index.json');
      },
      '--out',
    );
    return { frames: feats.length, featureDim: d, dropped, files, accounting, cameras: perCamera };
  } finally {
    await runtime.release();
  }
}
