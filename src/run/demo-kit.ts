// The demo kit: a complete, deterministic folder — backbone, linear policy head with its statistics, a config, and a
// two-camera recording (one raw, one JPEG, joint states, recorded actions) in which the compressed camera stops
// part-way (to show the watchdog). Written whole or not at all.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeSyntheticRecording } from '../bag/synthetic.js';
import { parseConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomic.js';
import { buildLinearPolicy } from '../models/policy.js';
import { writePresetModel } from '../models/write.js';
import { seededRandom } from '../models/zoo.js';
import { FeatureExtractor } from '../pipeline/extractor.js';

export interface DemoKit {
  dir: string;
  config: string;
  recording: string;
  backbone: string;
  policy: string;
}

export interface DemoOptions {
  durationS?: number;
  width?: number;
  height?: number;
}

/** The demo's configuration (paths relative to the folder). */
export function demoConfig(): Record<string, unknown> {
  return {
    backbone: { model: 'backbone.onnx' },
    s2: { img_sizes: [32, 64] },
    image: { base_size: 32, crop: 'center', resize: 'reference', normalization: 'imagenet' },
    cameras: [
      { name: 'wrist', topic: '/wrist/image_raw', transport: 'raw' },
      { name: 'front', topic: '/front/image_raw/compressed', transport: 'compressed' },
    ],
    sync: { mode: 'approximate', slop_ms: 20 },
    joint_states: { topic: '/joint_states', names: ['joint1', 'joint2'], max_age_ms: 100 },
    features: { pool: 'cls', publish: true },
    policy: { model: 'policy.onnx', features_input: 'features', state_input: 'state', chunk_mode: 'ensemble', ensemble_k: 0.01 },
    control: {
      rate_hz: 20,
      command_type: 'velocity',
      action_interface: 'joint_trajectory',
      action_topic: '~/joint_trajectory',
      joint_names: ['joint1', 'joint2'],
      lower: [-0.5, -0.5],
      upper: [0.5, 0.5],
      max_delta: [0.05, 0.05],
    },
    watchdog: { stale_after_ms: 300 },
  };
}

/** Writes the kit into a fresh folder that replaces `dir` whole when complete (nothing is left on failure). */
export async function writeDemoKit(dir: string, o: DemoOptions = {}): Promise<DemoKit> {
  const final: DemoKit = {
    dir,
    config: join(dir, 'config.yaml'),
    recording: join(dir, 'demo.mcap'),
    backbone: join(dir, 'backbone.onnx'),
    policy: join(dir, 'policy.onnx'),
  };
  checkDemoSize(o);
  await withAtomicDir(dir, (tmp) => fillDemoKit(tmp, o), '--out');
  return final;
}

/** make-demo's image size limit, checked before anything is allocated. */
export const DEMO_MAX_SIDE = 4096;

function checkDemoSize(o: DemoOptions): void {
  for (const [flag, v] of [
    ['--width', o.width],
    ['--height', o.height],
  ] as const) {
    if (v !== undefined && v > DEMO_MAX_SIDE) throw new UserError(`make-demo: ${flag} ${v} exceeds the limit of ${DEMO_MAX_SIDE} pixels`);
  }
  if (o.durationS !== undefined && o.durationS > 600) throw new UserError(`make-demo: --duration ${o.durationS} exceeds the limit of 600 s`);
}

async function fillDemoKit(dir: string, o: DemoOptions): Promise<void> {
  const kit: DemoKit = {
    dir,
    config: join(dir, 'config.yaml'),
    recording: join(dir, 'demo.mcap'),
    backbone: join(dir, 'backbone.onnx'),
    policy: join(dir, 'policy.onnx'),
  };
  writePresetModel('vit-tiny', kit.backbone);
  const raw = demoConfig();
  writeFileAtomic(kit.config, `# s2_policy demo: project-made backbone (not pretrained) and a random linear policy head.\n${stringify(raw)}`);

  // The policy's input size follows from the S² layout: build the feature extractor once to read it.
  const probe = parseConfig({ ...raw, policy: { ...(raw.policy as object), model: 'unused.onnx' } }, kit.config, dir);
  const extractor = await FeatureExtractor.create(probe);
  const featureDim = extractor.layout.perCamera * probe.cameras.length;
  await extractor.release();
  const stateDim = 2;
  const chunk = 8;
  const actionDim = 2;
  const rand = seededRandom(42);
  const weight = Float32Array.from({ length: (featureDim + stateDim) * chunk * actionDim }, () => (rand() * 2 - 1) * (0.5 / Math.sqrt(featureDim)));
  const bias = Float32Array.from({ length: chunk * actionDim }, () => (rand() * 2 - 1) * 0.05);
  writeFileAtomic(kit.policy, buildLinearPolicy({ featureDim, stateDim, chunk, actionDim, weight, bias }).serialize());
  writeFileAtomic(
    join(dir, 'policy.stats.json'),
    JSON.stringify(
      {
        'observation.features': { mean: Array(featureDim).fill(0), std: Array(featureDim).fill(1) },
        'observation.state': { mean: [0, 0], std: [0.5, 0.5] },
        action: { mean: [0, 0], std: [0.3, 0.3] },
      },
      null,
      1,
    ),
  );
  const durationS = o.durationS ?? 6;
  await writeSyntheticRecording({
    file: kit.recording,
    durationS,
    fps: 30,
    width: o.width ?? 160,
    height: o.height ?? 120,
    cameras: [
      { name: 'wrist', topic: '/wrist/image_raw', transport: 'raw' },
      { name: 'front', topic: '/front/image_raw/compressed', transport: 'compressed', stopAfterS: durationS * 0.6 },
    ],
    joints: { topic: '/joint_states', names: ['joint1', 'joint2'], rateHz: 50 },
    actions: { topic: '/teleop/joint_velocity', rateHz: 20 },
  });
}
