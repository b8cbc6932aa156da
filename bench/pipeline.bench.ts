// Pipeline benchmark: a generated 30 Hz 640×480 recording (one raw rgb8 camera, one JPEG camera, joint states),
// replayed in real time through the whole pipeline with a project-made backbone and policy head.
// Run with `npm run bench:pipeline`; BENCH_SECONDS sets the recording length (default 84 s = 5,040 frames).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { inputTopics, openRecording, recordingInputs } from '../src/run/replay.js';
import { writeSyntheticRecording } from '../src/bag/synthetic.js';
import { loadConfig } from '../src/config/config.js';
import { buildLinearPolicy } from '../src/models/policy.js';
import { writePresetModel } from '../src/models/write.js';
import { runOnClock, type TimedInput } from '../src/pipeline/clock.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { PolicyPipeline } from '../src/pipeline/pipeline.js';
import { PolicyHead } from '../src/policy/head.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 84);
const dir = fileURLToPath(new URL(`../../.cache/bench-pipeline-${seconds}s/`, import.meta.url));
mkdirSync(dir, { recursive: true });
const bag = join(dir, 'recording.mcap');
const cfgFile = join(dir, 'config.yaml');

if (!existsSync(bag)) {
  console.log(`generating ${bag}: ${seconds} s, 2 cameras × 30 Hz, 640×480 (cached for later runs)`);
  const t = performance.now();
  await writeSyntheticRecording({
    file: bag,
    durationS: seconds,
    fps: 30,
    width: 640,
    height: 480,
    cameras: [
      { name: 'raw', topic: '/cam_raw/image_raw', transport: 'raw' },
      { name: 'jpeg', topic: '/cam_jpeg/image_raw/compressed', transport: 'compressed' },
    ],
    joints: { topic: '/joint_states', names: ['joint1', 'joint2'], rateHz: 100 },
  });
  console.log(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
writePresetModel('vit-bench', join(dir, 'backbone.onnx'));
writeFileSync(
  cfgFile,
  stringify({
    // One inference thread leaves the other core to decoding, ingestion and the control clock.
    backbone: { model: 'backbone.onnx', threads: 1 },
    // BENCH_ENGINE=js runs the JavaScript S² engine; the default is the node's (compiled, with either image.resize).
    s2: { img_sizes: [224, 448], engine: process.env.BENCH_ENGINE ?? 'compiled' },
    // BENCH_RESIZE=native makes every scale with sharp from the full frame instead of S²'s bicubic from the base.
    image: { base_size: 224, crop: 'center', resize: process.env.BENCH_RESIZE === 'native' ? 'native' : 'reference', normalization: 'imagenet' },
    cameras: [
      { name: 'raw', topic: '/cam_raw/image_raw', transport: 'raw' },
      { name: 'jpeg', topic: '/cam_jpeg/image_raw/compressed', transport: 'compressed' },
    ],
    sync: { mode: 'approximate', slop_ms: 10 },
    joint_states: { topic: '/joint_states', names: ['joint1', 'joint2'], max_age_ms: 100 },
    features: { pool: 'cls' },
    policy: { model: 'policy.onnx', features_input: 'features', state_input: 'state', chunk_mode: 'ensemble' },
    control: { rate_hz: 30, command_type: 'velocity', lower: [-1, -1], upper: [1, 1], max_delta: [0.1, 0.1] },
  }),
);
const featureDim = 2 * 192 * 2;
const chunk = 10;
writeFileSync(
  join(dir, 'policy.onnx'),
  buildLinearPolicy({
    featureDim,
    stateDim: 2,
    chunk,
    actionDim: 2,
    weight: new Float32Array((featureDim + 2) * chunk * 2).fill(0.001),
    bias: new Float32Array(chunk * 2),
  }).serialize(),
);

const config = loadConfig(cfgFile);
const extractor = await FeatureExtractor.create(config);
const head = await PolicyHead.load({ model: config.policy!.model, featuresInput: 'features', stateInput: 'state' });
const pipeline = new PolicyPipeline(config, extractor, head);
const reader = await openRecording(bag);
const topics = inputTopics(config, await reader.topics(), bag);
const start = (reader.timeRange as { start: bigint }).start;

let framesRead = 0;
let rssAt1000 = 0;
async function* counted(): AsyncGenerator<TimedInput> {
  for await (const input of recordingInputs(reader, topics, start)) {
    if (input.frame) {
      framesRead++;
      if (framesRead === 1000) rssAt1000 = process.memoryUsage().rss;
    }
    yield input;
  }
}

console.log(
  `replaying ${seconds} s in real time through the pipeline (vit-bench backbone, sizes [224, 448], 2 cameras in one batch, image.resize ${config.image.resize}, s2.engine ${extractor.engine})…`,
);
const wall = performance.now();
await runOnClock(pipeline, counted(), { rate: 1 }, {});
const rssEnd = process.memoryUsage().rss;
const m = pipeline.metrics.snapshot(performance.now());
await reader.close();
await extractor.release();
await head.release();

const dropped = Object.entries(m.dropped).filter(([k]) => k.startsWith('frame:'));
const droppedTotal = dropped.reduce((n, [, v]) => n + v, 0);
const row = (name: string, s: { p50: number; p95: number; max: number; count: number }, note = '') =>
  console.log(
    `  ${name.padEnd(34)} p50 ${s.p50.toFixed(2).padStart(7)} ms   p95 ${s.p95.toFixed(2).padStart(7)} ms   max ${s.max.toFixed(1).padStart(7)} ms${note}`,
  );
const L = m.latencyMs;
console.log(`\nwall time ${((performance.now() - wall) / 1000).toFixed(1)} s for ${seconds} s of recording`);
console.log('per processed group of 2 frames (latency samples: the last 512 groups):');
row('ingestion (decode+geometry+norm, 2 cams)', L.ingest, '   target p50 ≤ 8 ms per frame');
row('S² (resize, inference, merge)', L.s2);
row('  of which backbone inference', L.backbone);
row('policy head', L.policy);
row('overhead (S² pre/post, pooling, glue)', L.overhead, '   target with ingestion ≤ 3 ms');
row('queue wait (backbone busy)', L.queue);
row('end to end (group complete → chunk)', L.end_to_end);
console.log(
  `frames    read ${framesRead}, in ${m.counts.framesIn}, processed ${m.counts.framesProcessed}, dropped ${droppedTotal} (${dropped.map(([k, v]) => `${k} ${v}`).join(', ')})`,
);
console.log(
  `          processed + dropped = ${m.counts.framesProcessed + droppedTotal} ${m.counts.framesProcessed + droppedTotal === framesRead ? '=' : '≠'} frames read ${framesRead}`,
);
console.log(`actions   ${m.counts.actions} (${m.counts.safeActions} safe), chunks ${m.counts.chunks}`);
const growth = ((rssEnd - rssAt1000) / rssAt1000) * 100;
console.log(
  `RSS       ${(rssAt1000 / 2 ** 20).toFixed(0)} MiB at frame 1,000, ${(rssEnd / 2 ** 20).toFixed(0)} MiB at the end: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)}% (target ≤ 5%)`,
);
