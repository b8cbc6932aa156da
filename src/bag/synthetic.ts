// Synthetic ROS 2 recordings for demos, tests and benchmarks: moving scenes from one or more cameras (raw rgb8 or
// JPEG CompressedImage), joint states and recorded actions, written as `ros2 bag record -s mcap` would.
import sharp from 'sharp';
import { nsToTime, type CompressedImageMsg, type ImageMsg, type JointStateMsg } from '../msgs/types.js';
import { McapRosWriter } from './writer.js';

export interface SyntheticCamera {
  name: string;
  topic: string;
  transport: 'raw' | 'compressed';
  /** The camera stops publishing after this many seconds (a stalled driver). */
  stopAfterS?: number;
}

export interface SyntheticRecordingOptions {
  file: string;
  durationS: number;
  fps: number;
  width: number;
  height: number;
  cameras: SyntheticCamera[];
  joints?: { topic: string; names: string[]; rateHz: number };
  /** Recorded commands (std_msgs/Float64MultiArray), e.g. a teleoperator's, for feature extraction. */
  actions?: { topic: string; rateHz: number };
  /** Frames in flight are rendered concurrently (JPEG encoding). */
  jpegQuality?: number;
}

/** Joint positions of the scripted arm at time t (s): slow sinusoids, one per joint. */
export function jointPositions(t: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => 0.6 * Math.sin(0.7 * t + i * 1.3));
}

/** Joint velocities (the derivative of jointPositions), the "recorded action". */
export function jointVelocities(t: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => 0.42 * Math.cos(0.7 * t + i * 1.3));
}

/** A tabletop-like scene: a textured gradient and a square whose position follows the arm. */
export function renderScene(width: number, height: number, t: number, cameraIndex: number, out?: Uint8Array): Uint8Array {
  const px = out ?? new Uint8Array(width * height * 3);
  const q = jointPositions(t, 2);
  const cx = Math.round(width * (0.5 + 0.35 * q[0]));
  const cy = Math.round(height * (0.5 + 0.35 * q[1]));
  const half = Math.max(2, Math.round(Math.min(width, height) / 10));
  const tint = 40 * cameraIndex;
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    const inY = Math.abs(y - cy) <= half;
    for (let x = 0; x < width; x++) {
      const o = row + x * 3;
      if (inY && Math.abs(x - cx) <= half) {
        px[o] = 230;
        px[o + 1] = 40;
        px[o + 2] = 30 + tint;
      } else {
        const checker = ((x >> 4) + (y >> 4)) & 1 ? 20 : 0;
        px[o] = ((x * 255) / width + checker) & 255;
        px[o + 1] = ((y * 255) / height + tint) & 255;
        px[o + 2] = 90 + checker;
      }
    }
  }
  return px;
}

/** Writes the recording; returns the number of messages per topic. */
export async function writeSyntheticRecording(o: SyntheticRecordingOptions): Promise<Map<string, number>> {
  const w = await McapRosWriter.create(o.file);
  const counts = new Map<string, number>();
  try {
    const start = 1_700_000_000_000_000_000n;
    const camChannels = await Promise.all(
      o.cameras.map((c) => w.addChannel(c.topic, c.transport === 'raw' ? 'sensor_msgs/msg/Image' : 'sensor_msgs/msg/CompressedImage')),
    );
    const jointCh = o.joints ? await w.addChannel(o.joints.topic, 'sensor_msgs/msg/JointState') : undefined;
    const actionCh = o.actions ? await w.addChannel(o.actions.topic, 'std_msgs/msg/Float64MultiArray') : undefined;
    type Ev = { t: number; kind: 'cam' | 'joint' | 'action'; i: number };
    const events: Ev[] = [];
    const frames = Math.round(o.durationS * o.fps);
    o.cameras.forEach((c, i) => {
      for (let f = 0; f < frames; f++) {
        const t = f / o.fps;
        if (c.stopAfterS !== undefined && t >= c.stopAfterS) break;
        events.push({ t, kind: 'cam', i });
      }
    });
    if (o.joints) for (let k = 0; k < Math.round(o.durationS * o.joints.rateHz); k++) events.push({ t: k / o.joints.rateHz, kind: 'joint', i: 0 });
    if (o.actions) for (let k = 0; k < Math.round(o.durationS * o.actions.rateHz); k++) events.push({ t: k / o.actions.rateHz, kind: 'action', i: 0 });
    events.sort((a, b) => a.t - b.t || a.kind.localeCompare(b.kind) || a.i - b.i);
    const buf = new Uint8Array(o.width * o.height * 3);
    const nJoints = o.joints?.names.length ?? 2;
    for (const ev of events) {
      const ns = start + BigInt(Math.round(ev.t * 1e9));
      if (ev.kind === 'cam') {
        const c = o.cameras[ev.i];
        const pixels = renderScene(o.width, o.height, ev.t, ev.i, buf);
        const header = { stamp: nsToTime(ns), frame_id: `${c.name}_optical_frame` };
        if (c.transport === 'raw') {
          const msg: ImageMsg = { header, height: o.height, width: o.width, encoding: 'rgb8', is_bigendian: 0, step: o.width * 3, data: pixels };
          await w.write(camChannels[ev.i], msg, ns);
        } else {
          const jpeg = await sharp(pixels, { raw: { width: o.width, height: o.height, channels: 3 } })
            .jpeg({ quality: o.jpegQuality ?? 85 })
            .toBuffer();
          const msg: CompressedImageMsg = { header, format: 'rgb8; jpeg compressed bgr8', data: new Uint8Array(jpeg) };
          await w.write(camChannels[ev.i], msg, ns);
        }
        counts.set(c.topic, (counts.get(c.topic) ?? 0) + 1);
      } else if (ev.kind === 'joint' && o.joints && jointCh) {
        const msg: JointStateMsg = {
          header: { stamp: nsToTime(ns), frame_id: '' },
          name: o.joints.names,
          position: Float64Array.from(jointPositions(ev.t, nJoints)),
          velocity: Float64Array.from(jointVelocities(ev.t, nJoints)),
          effort: new Float64Array(0),
        };
        await w.write(jointCh, msg, ns);
        counts.set(o.joints.topic, (counts.get(o.joints.topic) ?? 0) + 1);
      } else if (ev.kind === 'action' && o.actions && actionCh) {
        await w.write(actionCh, { layout: { dim: [], data_offset: 0 }, data: Float64Array.from(jointVelocities(ev.t, nJoints)) }, ns);
        counts.set(o.actions.topic, (counts.get(o.actions.topic) ?? 0) + 1);
      }
    }
  } finally {
    await w.close();
  }
  return counts;
}
