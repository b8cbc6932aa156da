// The node's configuration: one YAML file (or the ROS 2 parameters with the same keys), validated once at
// start-up into a typed object. Errors name the key and what was expected.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { NORMALIZATION_PRESETS } from '../image/normalize.js';

const posInt = z.number().int().positive();
const size = z.union([posInt, z.tuple([posInt, posInt])]);
const triple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);

const normalization = z.union([
  z.enum(Object.keys(NORMALIZATION_PRESETS) as [string, ...string[]]),
  z.strictObject({ mean: triple, std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]) }),
]);

const camera = z.strictObject({
  /** Name used in S2Features and in metrics. */
  name: z.string().min(1),
  topic: z.string().min(1),
  /** raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage. */
  transport: z.enum(['raw', 'compressed']).default('raw'),
});

const pool = z.string().regex(/^(cls|mean|tokens|grid:[1-9][0-9]*)$/, "expected 'cls', 'mean', 'tokens' or 'grid:K'");

export const configSchema = z.strictObject({
  backbone: z.strictObject({
    model: z.string().min(1),
    threads: posInt.optional(),
    providers: z.array(z.string()).min(1).default(['cpu']),
    input_name: z.string().optional(),
    output_name: z.string().optional(),
  }),
  s2: z
    .strictObject({
      scales: z.array(z.number().positive()).min(1).optional(),
      img_sizes: z.array(size).min(1).optional(),
      max_split_size: posInt.optional(),
      num_prefix_token: z.number().int().min(0).optional(),
      output_shape: z.enum(['bnc', 'bchw']).optional(),
      resize_output_to_idx: z.number().int().min(0).default(0),
      split_mode: z.enum(['resize', 'pad']).optional(),
      max_batch: posInt.optional(),
      /** compiled: S² inside one ONNX model built at start-up (checked against js); js: multiscaleForward. */
      engine: z.enum(['compiled', 'js']).default('compiled'),
    })
    .refine((s) => (s.scales === undefined) !== (s.img_sizes === undefined), { message: 'give exactly one of scales or img_sizes' }),
  image: z.strictObject({
    base_size: size,
    crop: z.enum(['center', 'pad', 'none']).default('center'),
    resize: z.enum(['reference', 'native']).default('reference'),
    normalization: normalization.default('imagenet'),
    max_pixels: posInt.default(4096 * 4096),
  }),
  cameras: z.array(camera).min(1),
  sync: z
    .strictObject({
      mode: z.enum(['approximate', 'latest']).default('latest'),
      slop_ms: z.number().positive().default(30),
    })
    .default({ mode: 'latest', slop_ms: 30 }),
  joint_states: z
    .strictObject({
      topic: z.string().min(1).default('/joint_states'),
      /** Joint order of the state vector; names missing from a message make it unusable. */
      names: z.array(z.string().min(1)).min(1),
      max_age_ms: z.number().positive().default(100),
    })
    .optional(),
  features: z
    .strictObject({
      pool: pool.default('cls'),
      publish: z.boolean().default(false),
      topic: z.string().default('~/features'),
    })
    .default({ pool: 'cls', publish: false, topic: '~/features' }),
  policy: z.strictObject({
    model: z.string().min(1),
    /** Normalisation statistics; default: <model without .onnx>.stats.json when that file exists. */
    stats: z.string().optional(),
    features_input: z.string().default('features'),
    state_input: z.string().optional(),
    output: z.string().optional(),
    chunk_mode: z.enum(['ensemble', 'latest']).default('ensemble'),
    ensemble_k: z.number().min(0).default(0.01),
  }),
  control: z.strictObject({
    rate_hz: z.number().positive().max(1000),
    /** velocity: the safe action is zero; position: the safe action holds the last command. */
    command_type: z.enum(['velocity', 'position']),
    action_interface: z.enum(['float64_multi_array', 'joint_trajectory', 'twist_stamped']).default('float64_multi_array'),
    action_topic: z.string().min(1).default('~/actions'),
    joint_names: z.array(z.string()).optional(),
    lower: z.array(z.number()).optional(),
    upper: z.array(z.number()).optional(),
    max_delta: z.array(z.number().positive()).optional(),
    enabled: z.boolean().default(true),
  }),
  watchdog: z
    .strictObject({ stale_after_ms: z.number().positive().default(500) })
    .default({ stale_after_ms: 500 }),
});

export type Config = z.infer<typeof configSchema>;

/** Validates a config object; `source` names the file (or parameter set) in errors. Paths resolve against baseDir. */
export function parseConfig(value: unknown, source: string, baseDir?: string): Config {
  const r = configSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    const unknown = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}` : issue.message;
    throw new UserError(`${source}: ${key}: ${unknown}`);
  }
  const c = r.data;
  const names = new Set<string>();
  for (const cam of c.cameras) {
    if (names.has(cam.name)) throw new UserError(`${source}: cameras: camera name '${cam.name}' appears twice`);
    names.add(cam.name);
  }
  if (c.features.pool === 'cls' && c.s2.output_shape === 'bchw') throw new UserError(`${source}: features.pool: 'cls' needs token outputs (s2.output_shape bnc)`);
  const dim = c.control.lower?.length ?? c.control.upper?.length ?? c.control.max_delta?.length;
  for (const key of ['lower', 'upper', 'max_delta'] as const) {
    const v = c.control[key];
    if (v && dim !== undefined && v.length !== dim) throw new UserError(`${source}: control.${key}: has ${v.length} values, other limits have ${dim}`);
  }
  if (c.control.lower && c.control.upper && c.control.lower.some((l, i) => l > (c.control.upper as number[])[i])) {
    throw new UserError(`${source}: control.lower: exceeds control.upper`);
  }
  if (c.control.action_interface === 'joint_trajectory' && !c.control.joint_names) {
    throw new UserError(`${source}: control.joint_names: required with action_interface joint_trajectory`);
  }
  if (c.policy.state_input !== undefined && !c.joint_states) throw new UserError(`${source}: joint_states: required when policy.state_input is set`);
  if (baseDir !== undefined) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
    c.backbone.model = abs(c.backbone.model);
    c.policy.model = abs(c.policy.model);
    if (c.policy.stats !== undefined) c.policy.stats = abs(c.policy.stats);
  }
  if (c.policy.stats === undefined) {
    const guess = c.policy.model.replace(/\.onnx$/i, '') + '.stats.json';
    if (existsSync(guess)) c.policy.stats = guess;
  }
  return c;
}

/** Reads a YAML file; a missing or malformed file is a one-line UserError naming it (`what`: 'config', …). */
export function readYamlFile(file: string, what: string): unknown {
  if (!existsSync(file)) throw new UserError(`${file}: no such ${what} file`);
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
}

export function loadConfig(file: string): Config {
  return parseConfig(readYamlFile(file, 'config'), file, dirname(file));
}

/** [height, width] of a size that may be a single side. */
export function pair(s: number | readonly [number, number]): [number, number] {
  return typeof s === 'number' ? [s, s] : [s[0], s[1]];
}
