// ONNX file benchmark: encoding, decoding and external-data inlining of a large project model (vit-s16-bench,
// 87 MB of weights), the steps before onnxruntime in `inspect`, `compile` and the node's start-up.
// Run with `npm run bench:onnx`. Prints medians of BENCH_RUNS (default 7) runs after one warm-up.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/io/atomic.js';
import { PRESETS, type PresetName } from '../src/models/zoo.js';
import { readModelFile } from '../src/onnx/file.js';
import { decodeModel, encodeModel, metadataOf } from '../src/onnx/model.js';
import { toExternalData } from '../test/helpers/onnx.js';
import { median } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const PRESET = (process.env.BENCH_PRESET ?? 'vit-s16-bench') as PresetName;

function time(label: string, f: () => unknown): void {
  const ms: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now();
    f();
    if (i > 0) ms.push(performance.now() - t);
  }
  console.log(`| ${label} | ${median(ms).toFixed(1)} | ${Math.min(...ms).toFixed(1)} |`);
}

const dir = mkdtempSync(join(tmpdir(), 's2-onnx-bench-'));
const file = join(dir, `${PRESET}.onnx`);
const external = join(dir, `${PRESET}.external.onnx`);
const graph = PRESETS[PRESET]();
const bytes = graph.serialize();
writeFileAtomic(file, bytes);
toExternalData(bytes, external);
const model = decodeModel(bytes, file);

console.log(`ONNX file benchmark: ${PRESET} (${(bytes.length / 1e6).toFixed(1)} MB), ${RUNS} runs after 1 warm-up`);
console.log('| step | median ms | fastest ms |');
console.log('|---|---|---|');
time('builder: toModel + encode (make-model)', () => graph.serialize());
time('encodeModel of a decoded model (compile output)', () => encodeModel(model));
time('decodeModel of bytes in memory', () => decodeModel(bytes, file));
time('load: read file + decode + metadata (inspect, node start-up)', () => {
  const m = readModelFile(file);
  metadataOf(m.model);
  return m.bytes();
});
time('load with external data: read + decode + inline + encode', () => {
  const m = readModelFile(external);
  metadataOf(m.model);
  return m.bytes();
});
time('read file only (for reference)', () => readFileSync(file));
