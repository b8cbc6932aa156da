// Flag parsing shared by the commands: strict (unknown flags are errors) and typed, with one-line errors.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.js';
import { parseSize } from '../config/size.js';
import type { Config } from '../config/config.js';
import type { NamedPath } from '../io/atomic.js';
import type { Size } from '../s2/plan.js';

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
    const msg = (e as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    const unknown = /^Unknown option '(-[^']*)'/.exec(msg)?.[1];
    const hint = unknown === undefined ? '' : suggestFlag(unknown, Object.keys(options ?? {}));
    throw new UserError(`${command}: ${msg}${hint === undefined ? `; see s2-policy ${command} --help` : hint}`);
  }
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * '; did you mean --img-sizes?' for an unknown flag close to a known one (underscores read as dashes; a typo of at
 * most a third of the name, or one of the two begins the other); undefined when none is.
 */
export function suggestFlag(given: string, known: readonly string[]): string | undefined {
  const name = given.replace(/^-+/, '').split('=')[0].replace(/_/g, '-').toLowerCase();
  let best: { flag: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(name, k);
    if (best === undefined || d < best.d) best = { flag: k, d };
  }
  if (best && best.d <= Math.max(1, Math.floor(name.length / 3))) return `; did you mean --${best.flag}?`;
  // --output for --out (the known flag begins the given one), --max-split for --max-split-size (the other way).
  const longer = known.filter((k) => name.startsWith(k) && k.length >= 3).sort((a, b) => b.length - a.length)[0];
  const shorter = name.length >= 3 ? known.filter((k) => k.startsWith(name)) : [];
  const prefix = longer ?? (shorter.length === 1 ? shorter[0] : undefined);
  return prefix === undefined ? undefined : `; did you mean --${prefix}?`;
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

/** The files a configuration reads (models and statistics), for refuseAliases. */
export function configInputs(config: Config): NamedPath[] {
  const out: NamedPath[] = [{ path: config.backbone.model, what: 'backbone.model' }];
  const policy = (config as { policy?: { model?: string; stats?: string } }).policy;
  if (policy?.model) out.push({ path: policy.model, what: 'policy.model' });
  if (policy?.stats) out.push({ path: policy.stats, what: 'policy.stats' });
  return out;
}
