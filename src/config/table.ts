// The one description of the configuration: every key with its type, default, whether it is required, whether it
// may change while running, and its documentation. The zod schema, the ROS 2 parameter declarations, both directions
// of the parameters ↔ config mapping and the README's parameter table are all derived from this table.
import { z } from 'zod';
import { NORMALIZATION_PRESETS } from '../image/normalize.js';
import { MAX_SIDE, formatSize, parseSize, type Size } from './size.js';

export type RosType = 'bool' | 'integer' | 'double' | 'string' | 'integer_array' | 'double_array' | 'string_array';
export type ParamValue = boolean | number | string | number[] | string[];

/** How one config value is checked (zod) and carried by one or more ROS 2 parameters. */
export interface Codec<T> {
  schema: z.ZodType<T>;
  /** Type as the README shows it. */
  type: string;
  /** The ROS parameters holding the value: suffixes of the key ('' = the key itself) with their types. */
  ros: { suffix: string; type: RosType; unset: ParamValue }[];
  toRos(v: T): ParamValue[];
  /** The config value from the parameters (undefined: not set); zod checks it afterwards. */
  fromRos(v: ParamValue[]): unknown;
  /** The value as the README shows it. */
  show(v: T): string;
  /** A file path, resolved against the config file's folder. */
  path?: boolean;
}

type Mode = 'required' | 'default' | 'optional';

export interface Field<T, M extends Mode = Mode> {
  codec: Codec<T>;
  mode: M;
  default?: T;
  doc: string;
  /** May change while the node runs (applied by reconfigure); all others are fixed once configured. */
  dynamic: boolean;
  /** ROS parameter name when it differs from the key (the camera list's parallel arrays). */
  ros?: string;
}

/** '' / [] / NaN: the ROS 2 form of an unset optional value. */
export const isUnset = (v: ParamValue | undefined): boolean =>
  v === undefined || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'number' && Number.isNaN(v));

// ---------------------------------------------------------------------------------------------------- codecs

const one = <T>(type: RosType, unset: ParamValue, schema: z.ZodType<T>, typeText: string, extra: Partial<Codec<T>> = {}): Codec<T> => ({
  schema,
  type: typeText,
  ros: [{ suffix: '', type, unset }],
  toRos: (v) => [v as unknown as ParamValue],
  fromRos: ([v]) => (isUnset(v) ? undefined : v),
  show: (v) => JSON.stringify(v),
  ...extra,
});

export const bool = (): Codec<boolean> => one('bool', false, z.boolean(), 'bool', { fromRos: ([v]) => v });

export function int(o: { min?: number; max?: number } = {}): Codec<number> {
  let s = z.number().int();
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  const unset = (o.min ?? 0) - 1;
  return one<number>('integer', unset, s, o.min === undefined ? 'int' : `int ≥ ${o.min}`, {
    fromRos: ([v]) => (v === unset || isUnset(v) ? undefined : v),
    show: String,
  });
}

export function num(o: { positive?: boolean; min?: number; max?: number } = {}): Codec<number> {
  let s = z.number().finite();
  if (o.positive) s = s.positive();
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  return one<number>('double', Number.NaN, s, o.positive ? 'number > 0' : o.min !== undefined ? `number ≥ ${o.min}` : 'number', { show: String });
}

export const str = (): Codec<string> => one('string', '', z.string().min(1), 'string', { show: (v) => (v === '' ? "''" : v) });

export const path = (): Codec<string> => ({ ...str(), type: 'path', path: true });

export function oneOf<const V extends readonly [string, ...string[]]>(values: V): Codec<V[number]> {
  return one('string', '', z.enum(values), values.join(' \\| '), { show: (v) => v });
}

export function numArray(o: { positive?: boolean } = {}): Codec<number[]> {
  const item = o.positive ? z.number().finite().positive() : z.number().finite();
  return one('double_array', [], z.array(item).min(1), o.positive ? 'list of numbers > 0' : 'list of numbers', { show: (v) => `[${v.join(', ')}]` });
}

export const strArray = (): Codec<string[]> =>
  one('string_array', [], z.array(z.string().min(1)).min(1), 'list of strings', { show: (v) => `[${v.join(', ')}]` });

const sizeSchema = z.unknown().transform((v, ctx): Size => {
  const s = parseSize(v);
  if (typeof s === 'string') {
    ctx.addIssue({ code: 'custom', message: s });
    return z.NEVER;
  }
  return s;
});

export const size = (): Codec<Size> => ({
  schema: sizeSchema,
  type: `size (224 or [h, w], sides ≤ ${MAX_SIDE})`,
  ros: [{ suffix: '', type: 'string', unset: '' }],
  toRos: (v) => [formatSize(v)],
  fromRos: ([v]) => (isUnset(v) ? undefined : typeof v === 'number' ? String(v) : v),
  show: formatSize,
});

export const sizeArray = (): Codec<Size[]> => ({
  schema: z.array(sizeSchema).min(1),
  type: 'list of sizes',
  ros: [{ suffix: '', type: 'string_array', unset: [] }],
  toRos: (v) => [v.map(formatSize)],
  fromRos: ([v]) => (isUnset(v) ? undefined : (v as unknown[]).map(String)),
  show: (v) => `[${v.map(formatSize).join(', ')}]`,
});

export const pool = (): Codec<string> =>
  one(
    'string',
    '',
    z.string().regex(/^(cls|mean|tokens|grid:[1-9][0-9]*)$/, "expected 'cls', 'mean', 'tokens' or 'grid:K'"),
    'cls \\| mean \\| tokens \\| grid:K',
    { show: (v) => v },
  );

export type Normalization = string | { mean: [number, number, number]; std: [number, number, number] };
const triple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);
const positiveTriple = z.tuple([z.number().finite().positive(), z.number().finite().positive(), z.number().finite().positive()]);

/** A preset name, or explicit mean/std (as ROS parameters: `<key>` for the preset, `image.mean`/`image.std` for the values). */
export const normalization = (): Codec<Normalization> => ({
  schema: z.union([z.enum(Object.keys(NORMALIZATION_PRESETS) as [string, ...string[]]), z.strictObject({ mean: triple, std: positiveTriple })]),
  type: `${Object.keys(NORMALIZATION_PRESETS).join(' \\| ')} or {mean: [3], std: [3]}`,
  ros: [
    { suffix: '', type: 'string', unset: '' },
    { suffix: '@mean', type: 'double_array', unset: [] },
    { suffix: '@std', type: 'double_array', unset: [] },
  ],
  toRos: (v) => (typeof v === 'string' ? [v, [], []] : ['', [...v.mean], [...v.std]]),
  fromRos: ([name, mean, std]) => (!isUnset(mean) || !isUnset(std) ? { mean, std } : isUnset(name) ? undefined : name),
  show: (v) => (typeof v === 'string' ? v : `{mean: [${v.mean.join(', ')}], std: [${v.std.join(', ')}]}`),
});

// ---------------------------------------------------------------------------------------------------- fields

interface FieldOptions {
  dynamic?: boolean;
  ros?: string;
}

export const required = <T>(codec: Codec<T>, doc: string, o: FieldOptions = {}): Field<T, 'required'> => ({
  codec,
  mode: 'required',
  doc,
  dynamic: o.dynamic ?? false,
  ros: o.ros,
});
export const withDefault = <T>(codec: Codec<T>, value: T, doc: string, o: FieldOptions = {}): Field<T, 'default'> => ({
  codec,
  mode: 'default',
  default: value,
  doc,
  dynamic: o.dynamic ?? false,
  ros: o.ros,
});
export const optional = <T>(codec: Codec<T>, doc: string, o: FieldOptions = {}): Field<T, 'optional'> => ({
  codec,
  mode: 'optional',
  doc,
  dynamic: o.dynamic ?? false,
  ros: o.ros,
});

/** One row of the table: a config key with its field description. */
export interface Entry {
  /** Dotted config key: 'control.rate_hz'; list sections use the item's field: 'cameras.topic'. */
  key: string;
  section: string;
  field: string;
  spec: Field<unknown>;
  /** The key belongs to an item of a list section (cameras). */
  list: boolean;
}

export type SectionKind = 'required' | 'optional' | 'defaulted' | 'list';

export interface SectionInfo {
  name: string;
  kind: SectionKind;
  doc: string;
}

type AnyField = Field<any, Mode>; // eslint-disable-line @typescript-eslint/no-explicit-any
type FieldSchema<F> = F extends Field<infer T, infer M> ? (M extends 'optional' ? z.ZodOptional<z.ZodType<T>> : z.ZodType<T>) : never;
type Shape<F extends Record<string, AnyField>> = { [K in keyof F]: FieldSchema<F[K]> };

export const ENTRIES: Entry[] = [];
export const SECTIONS: SectionInfo[] = [];

function objectOf<F extends Record<string, AnyField>>(name: string, fields: F, list: boolean): z.ZodObject<Shape<F>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [k, f] of Object.entries(fields)) {
    ENTRIES.push({ key: `${name}.${k}`, section: name, field: k, spec: f as Field<unknown>, list });
    const s = f.codec.schema as z.ZodType;
    shape[k] = f.mode === 'optional' ? s.optional() : f.mode === 'default' ? s.default(f.default as never) : s;
  }
  return z.strictObject(shape) as unknown as z.ZodObject<Shape<F>>;
}

function section<F extends Record<string, AnyField>>(name: string, kind: 'required', doc: string, fields: F): z.ZodObject<Shape<F>>;
function section<F extends Record<string, AnyField>>(name: string, kind: 'optional', doc: string, fields: F): z.ZodOptional<z.ZodObject<Shape<F>>>;
function section<F extends Record<string, AnyField>>(name: string, kind: 'defaulted', doc: string, fields: F): z.ZodObject<Shape<F>>;
function section<F extends Record<string, AnyField>>(name: string, kind: 'list', doc: string, fields: F): z.ZodArray<z.ZodObject<Shape<F>>>;
function section<F extends Record<string, AnyField>>(name: string, kind: SectionKind, doc: string, fields: F): z.ZodType {
  SECTIONS.push({ name, kind, doc });
  const obj = objectOf(name, fields, kind === 'list');
  if (kind === 'optional') return obj.optional();
  if (kind === 'defaulted') return obj.prefault({} as never);
  if (kind === 'list') return z.array(obj).min(1);
  return obj;
}

// ---------------------------------------------------------------------------------------------------- the table

const PROVIDERS = ['cpu', 'cuda', 'tensorrt'] as const;

export const configSchema = z.strictObject({
  backbone: section('backbone', 'required', 'the ONNX vision backbone', {
    model: required(path(), 'ONNX backbone file, or a compiled S² model (compile, INT8) built for these s2/image settings'),
    threads: optional(int({ min: 1 }), 'intra-op threads (unset: onnxruntime default)'),
    providers: withDefault(
      one('string_array', [], z.array(z.enum(PROVIDERS)).min(1), `list of ${PROVIDERS.join(' \\| ')}`, { show: (v) => `[${v.join(', ')}]` }),
      ['cpu'],
      'execution providers in order of preference; a missing one is an error',
    ),
    input_name: optional(str(), 'image input (unset: the single float B×C×H×W input)'),
    output_name: optional(str(), 'feature output (unset: the first rank-3/4 output)'),
  }),
  s2: section('s2', 'required', 'the S² options, as the reference wrapper names them', {
    scales: optional(numArray({ positive: true }), 'scale factors of the base size (give scales or img_sizes)'),
    img_sizes: optional(sizeArray(), 'explicit size per scale (give scales or img_sizes)'),
    max_split_size: optional(int({ min: 1 }), 'crop side fed to the backbone (unset: the base size)'),
    num_prefix_token: optional(int({ min: 0 }), 'leading CLS/register tokens (unset: detected)'),
    output_shape: optional(oneOf(['bnc', 'bchw'] as const), 'tokens or feature maps (unset: detected)'),
    resize_output_to_idx: withDefault(int({ min: 0 }), 0, 'scale whose grid all scales are pooled to'),
    split_mode: optional(oneOf(['resize', 'pad'] as const), 'any-shape splitting (unset: the square algorithm)'),
    max_batch: optional(int({ min: 1 }), 'at most this many crops per backbone call (unset: all)'),
    engine: withDefault(
      oneOf(['compiled', 'js'] as const),
      'compiled',
      'compiled: S² inside one ONNX model built at start-up (with either image.resize) and checked against js; js: the JavaScript engine',
    ),
  }),
  image: section('image', 'defaulted', 'from camera frames to the base tensor', {
    base_size: withDefault(size(), 224, 'size of the tensor S² starts from'),
    crop: withDefault(oneOf(['center', 'pad', 'none'] as const), 'center', 'centre crop to the base aspect, letterbox, or stretch'),
    resize: withDefault(
      oneOf(['reference', 'native'] as const),
      'reference',
      'reference: S² interpolates every scale from the base tensor; native: sharp makes each scale from the frame (either engine)',
    ),
    normalization: withDefault(normalization(), 'imagenet', 'per-channel (x/255 − mean)/std'),
    max_pixels: withDefault(int({ min: 1, max: MAX_SIDE * MAX_SIDE }), 4096 * 4096, 'larger frames are rejected before decoding'),
  }),
  cameras: section('cameras', 'list', 'one entry per camera, in policy order', {
    name: required(str(), 'name used in S2Features and metrics', { ros: 'cameras.names' }),
    topic: required(str(), 'image topic', { ros: 'cameras.topics' }),
    transport: withDefault(oneOf(['raw', 'compressed'] as const), 'raw', 'raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage', {
      ros: 'cameras.transports',
    }),
    qos: withDefault(
      oneOf(['sensor_data', 'default', 'reliable'] as const),
      'sensor_data',
      'subscription QoS: sensor_data (best effort, depth 5), default (reliable, depth 10) or reliable (reliable, depth 1)',
      { ros: 'cameras.qos' },
    ),
  }),
  sync: section('sync', 'defaulted', 'grouping one frame per camera', {
    mode: withDefault(
      oneOf(['approximate', 'latest'] as const),
      'latest',
      'approximate: header stamps within slop_ms; latest: the newest frame of each camera',
    ),
    slop_ms: withDefault(num({ positive: true }), 30, 'approximate sync: largest spread of stamps in a group'),
  }),
  joint_states: section('joint_states', 'optional', 'the robot state given to the policy', {
    topic: withDefault(str(), '/joint_states', 'sensor_msgs/JointState topic'),
    names: required(strArray(), 'joint order of the state vector'),
    max_age_ms: withDefault(num({ positive: true }), 100, 'older joint states are not used'),
  }),
  features: section('features', 'defaulted', 'pooling and publishing the S² features', {
    pool: withDefault(pool(), 'cls', 'per-camera pooling of the S² output'),
    publish: withDefault(bool(), false, 'publish S2Features', { dynamic: true }),
    topic: withDefault(str(), '~/features', 'S2Features topic'),
  }),
  policy: section('policy', 'optional', 'the policy head (needed by every run that acts)', {
    model: required(path(), 'ONNX policy head file'),
    stats: optional(path(), 'normalisation statistics (unset: <model>.stats.json when it exists)'),
    features_input: withDefault(str(), 'features', 'policy input that takes the features'),
    state_input: optional(str(), 'policy input that takes the joint state (unset: none)'),
    output: optional(str(), 'policy output (unset: the only output)'),
    chunk_mode: withDefault(oneOf(['ensemble', 'latest'] as const), 'ensemble', 'ACT temporal ensembling or the latest chunk', { dynamic: true }),
    ensemble_k: withDefault(num({ min: 0 }), 0.01, 'temporal ensembling decay: the i-th oldest prediction weighs exp(−k·i)', { dynamic: true }),
  }),
  control: section('control', 'optional', 'actions at the control rate (needed by every run that acts)', {
    rate_hz: withDefault(num({ positive: true, max: 1000 }), 20, 'action rate', { dynamic: true }),
    command_type: required(oneOf(['velocity', 'position'] as const), 'velocity: the safe action is zero; position: the safe action holds the last command'),
    action_interface: withDefault(oneOf(['float64_multi_array', 'joint_trajectory', 'twist_stamped'] as const), 'float64_multi_array', 'action message type'),
    action_topic: withDefault(str(), '~/actions', 'action topic'),
    joint_names: optional(strArray(), 'joint names (joint_trajectory); one per action dimension'),
    lower: optional(numArray(), 'per-dimension lower limits', { dynamic: true }),
    upper: optional(numArray(), 'per-dimension upper limits', { dynamic: true }),
    max_delta: optional(numArray({ positive: true }), 'largest change per tick per dimension', { dynamic: true }),
    enabled: withDefault(bool(), true, 'publish actions (features keep flowing when false); the ~/enable service sets it', { dynamic: true }),
  }),
  watchdog: section('watchdog', 'defaulted', 'the safe action when features go stale', {
    stale_after_ms: withDefault(num({ positive: true }), 500, 'no fresh features for this long → safe action', { dynamic: true }),
  }),
});

export type Config = z.output<typeof configSchema>;
export type PolicyConfig = NonNullable<Config['policy']>;
export type ControlConfig = NonNullable<Config['control']>;

/** The table row of a key, or undefined. */
export function entry(key: string): Entry | undefined {
  return ENTRIES.find((e) => e.key === key);
}

/** Keys that may change while running. */
export const DYNAMIC_KEYS: readonly string[] = ENTRIES.filter((e) => e.spec.dynamic).map((e) => e.key);
