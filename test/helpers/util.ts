// Shared test helpers: repository paths, project-made models in a temp folder, error metrics, and running the CLI.
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { writePresetModel } from '../../src/models/write.js';
import type { PresetName } from '../../src/models/zoo.js';

/** The repository root (tests run from dist/test/…). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const GOLDEN = join(ROOT, 'test', 'golden', 'data');
export const BIN = join(ROOT, 'bin', 's2-policy.js');

let modelDir: string | undefined;

/** Path of a preset backbone, built once per test run into a temp folder. */
export function modelPath(preset: PresetName): string {
  modelDir ??= mkdtempSync(join(tmpdir(), 's2-models-'));
  const file = join(modelDir, `${preset}.onnx`);
  if (!existsSync(file)) writePresetModel(preset, file);
  return file;
}

export function tempDir(prefix = 's2-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function rms(a: Float32Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s / a.length);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real s2-policy executable. */
export function cli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
