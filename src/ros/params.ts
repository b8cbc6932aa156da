// ROS 2 parameters ↔ the typed config. The parameters are the config's keys joined with dots (backbone.model,
// control.rate_hz, …); the camera list becomes parallel arrays (cameras.names/topics/transports) and non-square
// S² sizes strings ('224x336'), since ROS parameters hold no lists of records. No rclnodejs here: the mapping is
// tested without ROS 2.
import { dirname, isAbsolute, resolve } from 'node:path';
import { Scalar, stringify as stringifyYaml } from 'yaml';
import { parseConfig, readYamlFile, type Config } from '../config/config.js';
import { UserError } from '../errors.js';

export type ParamType = 'bool' | 'integer' | 'double' | 'string' | 'integer_array' | 'double_array' | 'string_array';
export type ParamValue = boolean | number | string | number[] | string[];

export interface ParamSpec {
  name: string;
  type: ParamType;
  /** Value when the parameter is not given; '' / [] / NaN mean "unset" for optional keys. */
  default: ParamValue;
  description: string;
  /** Fixed once the node is configured (models, topics). */
  readOnly: boolean;
}

const p = (name: string, type: ParamType, def: ParamValue, description: string, readOnly = true): ParamSpec => ({ name, type, default: def, description, readOnly });

/** Every parameter the node declares, with its type, default and description. */
export const PARAMS: ParamSpec[] = [
  p('backbone.model', 'string', '', 'ONNX backbone file'),
  p('backbone.threads', 'integer', 0, 'intra-op threads for the backbone (0 = onnxruntime default)'),
  p('backbone.providers', 'string_array', ['cpu'], 'execution providers in order of preference: cpu, cuda, tensorrt'),
  p('backbone.input_name', 'string', '', 'image input name (empty = the single image input)'),
  p('backbone.output_name', 'string', '', 'feature output name (empty = first rank-3/4 output)'),
  p('s2.scales', 'double_array', [], 'S² scale factors (or s2.img_sizes)'),
  p('s2.img_sizes', 'string_array', [], "S² sizes: '224' or '224x336' per scale (or s2.scales)"),
  p('s2.max_split_size', 'integer', 0, 'crop side fed to the backbone (0 = the base size)'),
  p('s2.num_prefix_token', 'integer', -1, 'prefix tokens (-1 = detect)'),
  p('s2.output_shape', 'string', '', "'bnc' or 'bchw' (empty = detect)"),
  p('s2.resize_output_to_idx', 'integer', 0, 'scale whose grid all scales are pooled to'),
  p('s2.split_mode', 'string', '', "'resize' or 'pad' for any-shape S² (empty = square algorithm)"),
  p('s2.max_batch', 'integer', 0, 'crops per backbone call (0 = all)'),
  p('s2.engine', 'string', 'compiled', "'compiled' (S² inside one ONNX model, checked against js at start-up) or 'js'"),
  p('image.base_size', 'string', '224', "base size: '224' or '96x128' (height x width)"),
  p('image.crop', 'string', 'center', 'center, pad or none'),
  p('image.resize', 'string', 'reference', 'reference or native'),
  p('image.normalization', 'string', 'imagenet', 'imagenet, clip or none (or image.mean/image.std)'),
  p('image.mean', 'double_array', [], 'per-channel mean (with image.std; overrides image.normalization)'),
  p('image.std', 'double_array', [], 'per-channel std'),
  p('image.max_pixels', 'integer', 4096 * 4096, 'frames with more pixels are rejected'),
  p('cameras.names', 'string_array', [], 'camera names, in policy order'),
  p('cameras.topics', 'string_array', [], 'image topics (raw: Image; compressed: <topic>/compressed CompressedImage)'),
  p('cameras.transports', 'string_array', [], 'raw or compressed per camera (default raw)'),
  p('cameras.qos', 'string', 'sensor_data', 'camera QoS: sensor_data (best effort, depth 5) or reliable'),
  p('sync.mode', 'string', 'latest', 'approximate or latest'),
  p('sync.slop_ms', 'double', 30, 'approximate sync: largest spread of header stamps in a group'),
  p('joint_states.topic', 'string', '', 'sensor_msgs/JointState topic (empty = no joint state)'),
  p('joint_states.names', 'string_array', [], 'joint order of the state vector'),
  p('joint_states.max_age_ms', 'double', 100, 'older joint states are not used'),
  p('features.pool', 'string', 'cls', 'cls, mean, tokens or grid:K'),
  p('features.publish', 'bool', false, 'publish S2Features', false),
  p('features.topic', 'string', '~/features', 'S2Features topic'),
  p('policy.model', 'string', '', 'ONNX policy head file'),
  p('policy.stats', 'string', '', 'normalisation statistics (empty = <model>.stats.json if present)'),
  p('policy.features_input', 'string', 'features', 'policy input that takes the features'),
  p('policy.state_input', 'string', '', 'policy input that takes the joint state (empty = none)'),
  p('policy.output', 'string', '', 'policy output (empty = the only output)'),
  p('policy.chunk_mode', 'string', 'ensemble', 'ensemble or latest'),
  p('policy.ensemble_k', 'double', 0.01, 'temporal ensembling decay k', false),
  p('control.rate_hz', 'double', 20, 'action rate', false),
  p('control.command_type', 'string', 'velocity', 'velocity (safe action: zero) or position (safe action: hold)'),
  p('control.action_interface', 'string', 'float64_multi_array', 'float64_multi_array, joint_trajectory or twist_stamped'),
  p('control.action_topic', 'string', '~/actions', 'action topic'),
  p('control.joint_names', 'string_array', [], 'joint names for joint_trajectory'),
  p('control.lower', 'double_array', [], 'per-dimension lower limits', false),
  p('control.upper', 'double_array', [], 'per-dimension upper limits', false),
  p('control.max_delta', 'double_array', [], 'largest change per tick per dimension', false),
  p('control.enabled', 'bool', true, 'publish actions (features keep flowing when false)', false),
  p('watchdog.stale_after_ms', 'double', 500, 'no fresh features for this long → safe action', false),
  p('autostart', 'bool', false, 'configure and activate on start (for launch files that do not drive transitions)'),
];

const isUnset = (v: ParamValue | undefined): boolean => v === undefined || v === '' || (Array.isArray(v) && v.length === 0);

/** Builds the config object (the YAML shape) from parameter values; unset optional values are left out. */
export function paramsToConfigObject(values: ReadonlyMap<string, ParamValue>): Record<string, unknown> {
  const get = (name: string): ParamValue | undefined => {
    const v = values.get(name) ?? PARAMS.find((s) => s.name === name)?.default;
    return isUnset(v) ? undefined : v;
  };
  const num = (name: string, unsetBelow = 1): number | undefined => {
    const v = get(name);
    return typeof v === 'number' && v >= unsetBelow ? v : undefined;
  };
  const names = (get('cameras.names') as string[] | undefined) ?? [];
  const topics = (get('cameras.topics') as string[] | undefined) ?? [];
  const transports = (get('cameras.transports') as string[] | undefined) ?? [];
  if (topics.length !== names.length) throw new UserError(`parameters: cameras.topics has ${topics.length} entries, cameras.names ${names.length}`);
  if (transports.length > 0 && transports.length !== names.length) throw new UserError(`parameters: cameras.transports has ${transports.length} entries, cameras.names ${names.length}`);
  const sizes = (get('s2.img_sizes') as string[] | undefined)?.map((s) => {
    const m = /^(\d+)(?:x(\d+))?$/.exec(String(s).trim());
    if (!m) throw new UserError(`parameters: s2.img_sizes entries must look like '224' or '224x336', got '${s}'`);
    return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
  });
  const baseText = String(get('image.base_size'));
  const bm = /^(\d+)(?:x(\d+))?$/.exec(baseText.trim());
  if (!bm) throw new UserError(`parameters: image.base_size must look like '224' or '96x128', got '${baseText}'`);
  const base = bm[2] === undefined ? Number(bm[1]) : [Number(bm[1]), Number(bm[2])];
  const mean = get('image.mean') as number[] | undefined;
  const std = get('image.std') as number[] | undefined;
  const jointTopic = get('joint_states.topic') as string | undefined;
  const obj: Record<string, unknown> = {
    backbone: {
      model: get('backbone.model'),
      threads: num('backbone.threads'),
      providers: get('backbone.providers'),
      input_name: get('backbone.input_name'),
      output_name: get('backbone.output_name'),
    },
    s2: {
      scales: get('s2.scales'),
      img_sizes: sizes,
      max_split_size: num('s2.max_split_size'),
      num_prefix_token: num('s2.num_prefix_token', 0),
      output_shape: get('s2.output_shape'),
      resize_output_to_idx: get('s2.resize_output_to_idx'),
      split_mode: get('s2.split_mode'),
      max_batch: num('s2.max_batch'),
      engine: get('s2.engine'),
    },
    image: {
      base_size: base,
      crop: get('image.crop'),
      resize: get('image.resize'),
      normalization: mean || std ? { mean, std } : get('image.normalization'),
      max_pixels: get('image.max_pixels'),
    },
    cameras: names.map((name, i) => ({ name, topic: topics[i], transport: transports[i] ?? 'raw' })),
    sync: { mode: get('sync.mode'), slop_ms: get('sync.slop_ms') },
    joint_states: jointTopic ? { topic: jointTopic, names: get('joint_states.names'), max_age_ms: get('joint_states.max_age_ms') } : undefined,
    features: { pool: get('features.pool'), publish: get('features.publish') ?? false, topic: get('features.topic') },
    policy: {
      model: get('policy.model'),
      stats: get('policy.stats'),
      features_input: get('policy.features_input'),
      state_input: get('policy.state_input'),
      output: get('policy.output'),
      chunk_mode: get('policy.chunk_mode'),
      ensemble_k: get('policy.ensemble_k'),
    },
    control: {
      rate_hz: get('control.rate_hz'),
      command_type: get('control.command_type'),
      action_interface: get('control.action_interface'),
      action_topic: get('control.action_topic'),
      joint_names: get('control.joint_names'),
      lower: get('control.lower'),
      upper: get('control.upper'),
      max_delta: get('control.max_delta'),
      enabled: get('control.enabled') ?? true,
    },
    watchdog: { stale_after_ms: get('watchdog.stale_after_ms') },
  };
  return JSON.parse(JSON.stringify(obj)) as Record<string, unknown>; // drops undefined keys
}

/** Flattens the `ros__parameters` of one node in a ROS 2 parameter file into dotted names. */
export function flattenParams(tree: unknown, prefix = '', out = new Map<string, ParamValue>()): Map<string, ParamValue> {
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) return out;
  for (const [k, v] of Object.entries(tree as Record<string, unknown>)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flattenParams(v, name, out);
    else out.set(name, (Array.isArray(v) ? v.map((x) => (typeof x === 'number' || typeof x === 'string' ? x : String(x))) : v) as ParamValue);
  }
  return out;
}

/**
 * Reads a ROS 2 parameter file (`node_name: ros__parameters: …`, or `/**:`) for `nodeName` and returns the typed
 * config. Relative model paths resolve against the file's folder.
 */
export function loadParamsFile(file: string, nodeName = 's2_policy'): Config {
  const doc = readYamlFile(file, 'parameter');
  const root = (doc ?? {}) as Record<string, { ros__parameters?: unknown }>;
  const section = root[nodeName] ?? root[`/${nodeName}`] ?? root['/**'];
  if (!section?.ros__parameters) throw new UserError(`${file}: no '${nodeName}: ros__parameters:' section`);
  const values = flattenParams(section.ros__parameters);
  const known = new Set(PARAMS.map((s) => s.name));
  for (const name of values.keys()) {
    if (!known.has(name) && name !== 'use_sim_time') throw new UserError(`${file}: unknown parameter ${name}`);
  }
  return parseConfig(paramsToConfigObject(values), file, dirname(file));
}

/** The `ros__parameters` tree for a typed config (the inverse of paramsToConfigObject), for writing parameter files. */
export function configToParams(c: Config): Record<string, unknown> {
  const size = (s: number | readonly [number, number]) => (typeof s === 'number' ? String(s) : `${s[0]}x${s[1]}`);
  const base = c.image.base_size;
  const tree: Record<string, unknown> = {
    backbone: { model: c.backbone.model, providers: c.backbone.providers, ...(c.backbone.threads ? { threads: c.backbone.threads } : {}) },
    s2: {
      ...(c.s2.scales ? { scales: c.s2.scales } : {}),
      ...(c.s2.img_sizes ? { img_sizes: c.s2.img_sizes.map(size) } : {}),
      ...(c.s2.max_split_size ? { max_split_size: c.s2.max_split_size } : {}),
      ...(c.s2.split_mode ? { split_mode: c.s2.split_mode } : {}),
      resize_output_to_idx: c.s2.resize_output_to_idx,
      engine: c.s2.engine,
    },
    image: {
      base_size: size(base),
      crop: c.image.crop,
      resize: c.image.resize,
      ...(typeof c.image.normalization === 'string' ? { normalization: c.image.normalization } : { mean: c.image.normalization.mean, std: c.image.normalization.std }),
    },
    cameras: { names: c.cameras.map((x) => x.name), topics: c.cameras.map((x) => x.topic), transports: c.cameras.map((x) => x.transport) },
    sync: { mode: c.sync.mode, slop_ms: c.sync.slop_ms },
    features: { pool: c.features.pool, publish: c.features.publish, topic: c.features.topic },
    policy: {
      model: c.policy.model,
      ...(c.policy.stats ? { stats: c.policy.stats } : {}),
      features_input: c.policy.features_input,
      ...(c.policy.state_input ? { state_input: c.policy.state_input } : {}),
      chunk_mode: c.policy.chunk_mode,
      ensemble_k: c.policy.ensemble_k,
    },
    control: {
      rate_hz: c.control.rate_hz,
      command_type: c.control.command_type,
      action_interface: c.control.action_interface,
      action_topic: c.control.action_topic,
      ...(c.control.joint_names ? { joint_names: c.control.joint_names } : {}),
      ...(c.control.lower ? { lower: c.control.lower } : {}),
      ...(c.control.upper ? { upper: c.control.upper } : {}),
      ...(c.control.max_delta ? { max_delta: c.control.max_delta } : {}),
    },
    watchdog: { stale_after_ms: c.watchdog.stale_after_ms },
  };
  if (c.joint_states) tree.joint_states = { topic: c.joint_states.topic, names: c.joint_states.names, max_age_ms: c.joint_states.max_age_ms };
  return tree;
}

/**
 * A ROS 2 parameter file for `nodeNames` with these parameters. Doubles are written with a decimal point (20.0):
 * ROS 2 reads `20` as an integer, which a double parameter refuses.
 */
export function stringifyParamsFile(tree: Record<string, unknown>, nodeNames: string[], header = ''): string {
  const types = new Map(PARAMS.map((s) => [s.name, s.type]));
  const mark = (v: unknown, prefix: string): unknown => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, mark(x, prefix ? `${prefix}.${k}` : k)]));
    }
    const t = types.get(prefix);
    const dbl = (n: unknown) => {
      if (typeof n !== 'number') return n;
      const s = new Scalar(n);
      s.minFractionDigits = 1;
      return s;
    };
    if (t === 'double') return dbl(v);
    if (t === 'double_array' && Array.isArray(v)) return v.map(dbl);
    return v;
  };
  const doc = Object.fromEntries(nodeNames.map((n) => [n, { ros__parameters: mark(tree, '') }]));
  return header + stringifyYaml(doc, { aliasDuplicateObjects: false });
}

/** The node name and namespace after `-r __node:=…` / `-r __ns:=…` remappings in ROS arguments. */
export function remappedName(argv: readonly string[], name: string, namespace: string): { name: string; namespace: string } {
  let n = name;
  let ns = namespace;
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '-r' && argv[i] !== '--remap') continue;
    const m = /^__(node|ns):=(.*)$/.exec(argv[i + 1]);
    if (m?.[1] === 'node') n = m[2];
    else if (m?.[1] === 'ns') ns = m[2];
  }
  return { name: n, namespace: ns };
}

const PATH_PARAMS = new Set(['backbone.model', 'policy.model', 'policy.stats']);

/**
 * Parameter values for this node from every `--params-file` in ROS arguments, in order: sections `/**`, `name`,
 * `/name` and `/namespace/name` all apply (rcl accepts each of these forms). Values are coerced to the declared
 * types (an integer written for a double parameter is taken as that double).
 */
export function paramFileOverrides(argv: readonly string[], name: string, namespace: string): Map<string, ParamValue> {
  const ns = namespace === '' || namespace === '/' ? '' : namespace.replace(/\/$/, '');
  const keys = ['/**', name, `/${name}`, `${ns}/${name}`];
  const out = new Map<string, ParamValue>();
  const specs = new Map(PARAMS.map((s) => [s.name, s]));
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '--params-file') continue;
    const file = argv[i + 1];
    const doc = (readYamlFile(file, 'parameter') ?? {}) as Record<string, { ros__parameters?: unknown }>;
    for (const key of keys) {
      const section = doc[key]?.ros__parameters;
      if (!section) continue;
      for (const [k, v] of flattenParams(section)) {
        const spec = specs.get(k);
        if (!spec) continue; // use_sim_time and unknown keys are left to rcl and the node's own checks
        const value = coerce(spec, v, file);
        // Model files are found next to the parameter file that names them, as with the YAML config.
        out.set(k, PATH_PARAMS.has(k) && typeof value === 'string' && value !== '' && !isAbsolute(value) ? resolve(dirname(file), value) : value);
      }
    }
  }
  return out;
}

function coerce(spec: ParamSpec, v: ParamValue, file: string): ParamValue {
  const bad = () => new UserError(`${file}: parameter ${spec.name} must be ${spec.type.replace('_', ' ')}, got ${JSON.stringify(v)}`);
  switch (spec.type) {
    case 'bool':
      if (typeof v !== 'boolean') throw bad();
      return v;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw bad();
      return v;
    case 'double':
      if (typeof v !== 'number') throw bad();
      return v;
    case 'string':
      if (typeof v === 'number') return String(v);
      if (typeof v !== 'string') throw bad();
      return v;
    case 'integer_array':
    case 'double_array':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || (spec.type === 'integer_array' && !Number.isInteger(x)))) throw bad();
      return v;
    case 'string_array':
      if (!Array.isArray(v)) throw bad();
      return v.map(String);
  }
}
