// Flag parsing shared by the commands: strict (unknown flags are errors) and typed, with one-line errors.
import { readdirSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.js';
import { parseSize } from '../config/size.js';
import type { Config } from '../config/config.js';
import type { NamedPath } from '../io/atomic.js';
import type { S2Options, Size } from '../s2/plan.js';

export type Flags = Record<string, string | boolean | undefined>;

export function parseFlags(command: string, argv: string[], options: ParseArgsConfig['options']): Flags {
  try {
    // '--img-sizes -5': a value that looks like a negative number goes to the option (and its validator), rather
    // than parseArgs' "argument is ambiguous".
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const name = argv[i].startsWith('--') ? argv[i].slice(2) : undefined;
      if (name !== undefined && options?.[name]?.type === 'string' && /^-[\d.]/.test(argv[i + 1] ?? '')) {
        args.push(`${argv[i]}=${argv[i + 1]}`);
        i++;
      } else args.push(argv[i]);
    }
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UserError(`${command}: unexpected argument '${positionals[0]}'`);
    return values;
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = (e as Error).message.split('\n')[0];
    throw new UserError(`${command}: ${msg.replace(/\. To specify a positional argument.*$/, '')}`);
  }
}

export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(flags: Flags, name: string, command: string): string {
  const v = str(flags, name);
  if (v === undefined || v === '') throw new UserError(`${command}: --${name} is required`);
  return v;
}

export function int(flags: Flags, name: string, min = 1): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

export function numberList(text: string, name: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n) || n <= 0)) {
    throw new UserError(`--${name} must be comma-separated positive numbers, got '${text}'`);
  }
  return nums;
}

/** '224,448' (squares) or '224x336,448x672' (height x width pairs), in the project's one size syntax. */
export function sizeList(text: string, name: string): Size[] {
  return text.split(',').map((part) => {
    const s = parseSize(part);
    if (typeof s === 'string') throw new UserError(`--${name}: ${s}`);
    return s;
  });
}

export const S2_FLAGS = {
  scales: { type: 'string' },
  'img-sizes': { type: 'string' },
  'max-split-size': { type: 'string' },
  'num-prefix-token': { type: 'string' },
  'output-shape': { type: 'string' },
  'resize-output-to-idx': { type: 'string' },
  'split-mode': { type: 'string' },
  'max-batch': { type: 'string' },
} as const;

export const MODEL_FLAGS = {
  model: { type: 'string' },
  threads: { type: 'string' },
  provider: { type: 'string' },
  'input-name': { type: 'string' },
  'output-name': { type: 'string' },
} as const;

/** The S² options given on the command line (layout options may still come from detection). */
export function s2OptionsFromFlags(flags: Flags): S2Options {
  const o: S2Options = {};
  const scales = str(flags, 'scales');
  const sizes = str(flags, 'img-sizes');
  if (scales !== undefined && sizes !== undefined) throw new UserError('give either --scales or --img-sizes, not both');
  if (scales !== undefined) o.scales = numberList(scales, 'scales');
  if (sizes !== undefined) o.imgSizes = sizeList(sizes, 'img-sizes');
  o.maxSplitSize = int(flags, 'max-split-size');
  o.numPrefixToken = int(flags, 'num-prefix-token', 0);
  o.resizeOutputToIdx = int(flags, 'resize-output-to-idx', 0);
  o.maxBatch = int(flags, 'max-batch');
  const shape = str(flags, 'output-shape');
  if (shape !== undefined) {
    if (shape !== 'bnc' && shape !== 'bchw') throw new UserError(`--output-shape must be bnc or bchw, got '${shape}'`);
    o.outputShape = shape;
  }
  const mode = str(flags, 'split-mode');
  if (mode !== undefined) {
    if (mode !== 'resize' && mode !== 'pad') throw new UserError(`--split-mode must be resize or pad, got '${mode}'`);
    o.splitMode = mode;
  }
  return o;
}

/**
 * Output folders are replaced whole on success: an existing folder with files in it is refused unless --force, so
 * that a mistyped --out cannot swallow an unrelated folder.
 */
export function refuseNonEmpty(dir: string, force: boolean, command: string): void {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) return;
    entries = readdirSync(dir);
  } catch {
    return;
  }
  if (entries.length > 0 && !force) throw new UserError(`${command}: --out ${dir} is not empty; pass --force to replace it (the whole folder is replaced)`);
}

/** The files a configuration reads (models and statistics), for refuseAliases. */
export function configInputs(config: Config): NamedPath[] {
  const out: NamedPath[] = [{ path: config.backbone.model, what: 'backbone.model' }];
  const policy = (config as { policy?: { model?: string; stats?: string } }).policy;
  if (policy?.model) out.push({ path: policy.model, what: 'policy.model' });
  if (policy?.stats) out.push({ path: policy.stats, what: 'policy.stats' });
  return out;
}
