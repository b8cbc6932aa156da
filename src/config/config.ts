// The node's configuration: one YAML file (or the ROS 2 parameters with the same keys, see params.ts), validated
// once into a typed object. The keys, types and defaults are described once, in table.ts; this file adds the rules
// that relate several keys. Errors name the source and the key.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import { ENTRIES, configSchema, type Config } from './table.js';

export { configSchema, type Config, type ControlConfig, type PolicyConfig } from './table.js';
export { pair } from './size.js';

/** Rules that relate several keys (each key's own type and range is checked by the schema). */
function checkRelations(c: Config, source: string): void {
  const fail = (key: string, why: string): never => {
    throw new UserError(`${source}: ${key}: ${why}`);
  };
  if ((c.s2.scales === undefined) === (c.s2.img_sizes === undefined)) fail('s2', 'give exactly one of scales or img_sizes');
  const names = new Set<string>();
  for (const cam of c.cameras) {
    if (names.has(cam.name)) fail('cameras', `camera name '${cam.name}' appears twice`);
    names.add(cam.name);
  }
  if (c.features.pool === 'cls' && c.s2.output_shape === 'bchw') fail('features.pool', "'cls' needs token outputs (s2.output_shape bnc)");
  const ctl = c.control;
  if (ctl) {
    const dim = ctl.lower?.length ?? ctl.upper?.length ?? ctl.max_delta?.length;
    for (const key of ['lower', 'upper', 'max_delta'] as const) {
      const v = ctl[key];
      if (v && dim !== undefined && v.length !== dim) fail(`control.${key}`, `has ${v.length} values, other limits have ${dim}`);
    }
    if (ctl.lower && ctl.upper && ctl.lower.some((l, i) => l > (ctl.upper as number[])[i])) fail('control.lower', 'exceeds control.upper');
    if (ctl.action_interface === 'joint_trajectory' && !ctl.joint_names) fail('control.joint_names', 'required with action_interface joint_trajectory');
    if (ctl.action_interface === 'joint_trajectory' && ctl.command_type === 'velocity') {
      // The trajectory's positions are integrated from the measured joint state (messages.ts trajectoryPositions).
      const why = 'action_interface joint_trajectory with command_type velocity sends positions integrated from the measured joint state';
      const measured = (c.joint_states ?? fail('joint_states', `required: control.${why}`)).names;
      const missing = (ctl.joint_names ?? []).filter((n) => !measured.includes(n));
      if (missing.length > 0) fail('joint_states.names', `must list every control.joint_names joint (missing ${missing.join(', ')}): control.${why}`);
    }
  }
  if (c.policy?.state_input !== undefined && !c.joint_states) fail('joint_states', 'required when policy.state_input is set');
}

/** Validates a config object; `source` names the file (or parameter set) in errors. Paths resolve against baseDir. */
export function parseConfig(value: unknown, source: string, baseDir?: string): Config {
  const r = configSchema.safeParse(value ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    const why = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}` : issue.message;
    throw new UserError(`${source}: ${key}: ${why}`);
  }
  const c = r.data;
  checkRelations(c, source);
  if (baseDir !== undefined) {
    for (const e of ENTRIES) {
      if (!e.spec.codec.path || e.list) continue;
      const sec = (c as unknown as Record<string, Record<string, unknown> | undefined>)[e.section];
      const v = sec?.[e.field];
      if (sec && typeof v === 'string' && !isAbsolute(v)) sec[e.field] = resolve(baseDir, v);
    }
  }
  if (c.policy && c.policy.stats === undefined) {
    const guess = c.policy.model.replace(/\.onnx$/i, '') + '.stats.json';
    if (existsSync(guess)) c.policy.stats = guess;
  }
  return c;
}

/** Reads a YAML file; a missing or malformed file is a one-line UserError naming it (`what`: 'config', …). */
export function readYamlFile(file: string, what: string): unknown {
  if (!existsSync(file)) throw new UserError(`${file}: no such ${what} file`);
  if (statSync(file).isDirectory()) throw new UserError(`${file}: is a directory, not a YAML ${what} file; give the file inside it`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]})`);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
}

export function loadConfig(file: string): Config {
  return parseConfig(readYamlFile(file, 'config'), file, dirname(file));
}

/** The sections a run needs, named in the error when missing: `need(config, 'policy', file)`. */
export function need<K extends 'policy' | 'control' | 'joint_states'>(c: Config, key: K, source: string, by: string): NonNullable<Config[K]> {
  const v = c[key];
  if (v === undefined) throw new UserError(`${source}: ${key}: required by ${by}`);
  return v;
}

/**
 * The config with its policy.model replaced by another head (replay --policy), and policy.stats by that model's own
 * statistics file when one lies beside it. The other policy keys (input and output names) stay as configured.
 */
export function withPolicyModel(config: Config, model: string | undefined, source: string): Config {
  if (model === undefined) return config;
  if (!config.policy) throw new UserError(`--policy ${model}: ${source} has no policy section to take it (policy.features_input, policy.state_input)`);
  if (!existsSync(model)) throw new UserError(`--policy ${model}: no such file`);
  const stats = model.replace(/\.onnx$/i, '') + '.stats.json';
  return { ...config, policy: { ...config.policy, model: resolve(model), stats: existsSync(stats) ? resolve(stats) : undefined } };
}
