// ROS 2 parameters ↔ the typed config, derived from the configuration table (src/config/table.ts): one parameter
// per key, joined with dots (backbone.model, control.rate_hz, …); the camera list becomes parallel arrays
// (cameras.names/topics/transports/qos) and sizes strings ('224x336'), since ROS parameters hold no lists of
// records. Unset optional values are '' / [] / NaN / (minimum − 1) for integers. No rclnodejs here: the mapping is
// tested without ROS 2.
import { dirname, isAbsolute, resolve } from 'node:path';
import { Scalar, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfig, parseConfig, readYamlFile, type Config } from '../config/config.js';
import { ENTRIES, SECTIONS, isUnset, type Entry, type ParamValue, type RosType } from '../config/table.js';
import { UserError } from '../errors.js';

export type { ParamValue } from '../config/table.js';
export type ParamType = RosType;

export interface ParamSpec {
  name: string;
  type: ParamType;
  /** Value when the parameter is not given; '' / [] / NaN / (min − 1) mean "unset" for optional keys. */
  default: ParamValue;
  description: string;
  /** Fixed once the node is configured (models, topics). */
  readOnly: boolean;
  /** The config key it carries (undefined for node-only parameters such as autostart). */
  key?: string;
}

const listType = (t: RosType): RosType =>
  t === 'bool' || t === 'string' ? 'string_array' : t === 'integer' ? 'integer_array' : t === 'double' ? 'double_array' : t;

/** The ROS parameters of one table entry, in the order of its codec's values. */
function paramsOf(e: Entry): ParamSpec[] {
  const base = e.spec.ros ?? e.key;
  return e.spec.codec.ros.map((r, i) => {
    const name = r.suffix === '' ? base : base.replace(/[^.]+$/, r.suffix.slice(1));
    const type = e.list ? listType(r.type) : r.type;
    let def: ParamValue = r.unset;
    if (e.list) def = [];
    else if (e.spec.mode === 'default') def = e.spec.codec.toRos(e.spec.default)[i];
    const description = e.list
      ? `${e.spec.doc} (one per camera${e.spec.mode === 'default' ? `, default ${e.spec.codec.show(e.spec.default)}` : ''})`
      : e.spec.doc;
    return { name, type, default: def, description, readOnly: !e.spec.dynamic, key: e.key };
  });
}

const NODE_PARAMS: ParamSpec[] = [
  {
    name: 'config_file',
    type: 'string',
    default: '',
    description: 'YAML config file (the same file replay and extract take); parameters given with it override its values',
    readOnly: true,
  },
  {
    name: 'autostart',
    type: 'bool',
    default: false,
    description: 'configure and activate on start (for launch files that do not drive transitions)',
    readOnly: true,
  },
];

/** Every parameter the node declares, with its type, default and description. */
export const PARAMS: ParamSpec[] = [...ENTRIES.flatMap(paramsOf), ...NODE_PARAMS];

const SPECS = new Map(PARAMS.map((s) => [s.name, s]));

/** Builds the config object (the YAML shape) from parameter values; unset optional values are left out. */
export function paramsToConfigObject(values: ReadonlyMap<string, ParamValue>, source = 'parameters'): Record<string, unknown> {
  const get = (spec: ParamSpec): ParamValue => values.get(spec.name) ?? spec.default;
  const obj: Record<string, unknown> = {};
  for (const sec of SECTIONS) {
    const entries = ENTRIES.filter((e) => e.section === sec.name);
    if (sec.kind === 'list') {
      const columns = entries.map((e) => {
        const specs = paramsOf(e);
        return { e, specs, values: specs.map((s) => get(s) as unknown[]) };
      });
      const key = columns[0];
      const n = key.values[0].length;
      for (const col of columns) {
        col.values.forEach((v, i) => {
          if (v.length !== 0 && v.length !== n) throw new UserError(`${source}: ${col.specs[i].name} has ${v.length} entries, ${key.specs[0].name} ${n}`);
        });
      }
      obj[sec.name] = Array.from({ length: n }, (_, k) => {
        const item: Record<string, unknown> = {};
        for (const col of columns) {
          const v = col.e.spec.codec.fromRos(col.values.map((a) => (a.length === 0 ? undefined : a[k]) as ParamValue));
          if (v !== undefined) item[col.e.field] = v;
        }
        return item;
      });
      continue;
    }
    const section: Record<string, unknown> = {};
    let changed = false;
    for (const e of entries) {
      const specs = paramsOf(e);
      const raw = specs.map(get);
      if (specs.some((s, i) => values.has(s.name) && JSON.stringify(raw[i]) !== JSON.stringify(s.default))) changed = true;
      const v = e.spec.codec.fromRos(raw);
      if (v !== undefined) section[e.field] = v;
    }
    // An optional section is present when any of its parameters is set to something other than its default.
    if (sec.kind !== 'optional' || changed) obj[sec.name] = section;
  }
  return obj;
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
 * config. Relative model paths resolve against the file's folder; a `config_file` parameter is read first and the
 * other parameters override it.
 */
export function loadParamsFile(file: string, nodeName = 's2_policy'): Config {
  const doc = readYamlFile(file, 'parameter');
  const root = (doc ?? {}) as Record<string, { ros__parameters?: unknown }>;
  const section = root[nodeName] ?? root[`/${nodeName}`] ?? root['/**'];
  if (!section?.ros__parameters) throw new UserError(`${file}: no '${nodeName}: ros__parameters:' section`);
  const values = flattenParams(section.ros__parameters);
  for (const [name, v] of values) {
    if (name === 'use_sim_time') continue;
    const spec = SPECS.get(name);
    if (!spec) throw new UserError(`${file}: unknown parameter ${name}`);
    values.set(name, coerce(spec, v, file));
  }
  return configFromParams(withConfigFile(values, dirname(file)), file, dirname(file));
}

/**
 * Parameter values with those of the `config_file` parameter's YAML config underneath: a value given as a parameter
 * wins over the file's. Without config_file the values are returned as they are.
 */
export function withConfigFile(values: ReadonlyMap<string, ParamValue>, baseDir?: string): Map<string, ParamValue> {
  const file = values.get('config_file');
  if (typeof file !== 'string' || file === '') return new Map(values);
  const abs = baseDir !== undefined && !isAbsolute(file) ? resolve(baseDir, file) : file;
  const merged = flattenParams(configToParams(loadConfig(abs)));
  for (const [k, v] of values) {
    const spec = SPECS.get(k);
    if (!spec || JSON.stringify(v) !== JSON.stringify(spec.default) || !merged.has(k)) merged.set(k, v);
  }
  return merged;
}

/** The typed config from parameter values (`source` names them in errors). */
export function configFromParams(values: ReadonlyMap<string, ParamValue>, source: string, baseDir?: string): Config {
  return parseConfig(paramsToConfigObject(values, source), source, baseDir);
}

/** The `ros__parameters` tree for a typed config (the inverse of paramsToConfigObject), for writing parameter files. */
export function configToParams(c: Config): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  const put = (name: string, v: ParamValue) => {
    const parts = name.split('.');
    let node = tree;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1]] = v;
  };
  const record = c as unknown as Record<string, unknown>;
  for (const e of ENTRIES) {
    const sec = record[e.section];
    if (sec === undefined) continue;
    const specs = paramsOf(e);
    if (e.list) {
      const items = sec as Record<string, unknown>[];
      const vals = items.map((it) => (it[e.field] === undefined ? undefined : e.spec.codec.toRos(it[e.field])));
      if (vals.every((v) => v === undefined)) continue;
      specs.forEach((s, i) => put(s.name, vals.map((v) => (v === undefined ? '' : v[i])) as ParamValue));
      continue;
    }
    const v = (sec as Record<string, unknown>)[e.field];
    if (v === undefined) continue;
    const ros = e.spec.codec.toRos(v);
    specs.forEach((s, i) => {
      if (!isUnset(ros[i]) || s.type === 'bool') put(s.name, ros[i]);
    });
  }
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

/** Parameters holding file paths: relative ones resolve against the parameter file that names them. */
const PATH_PARAMS = new Set([
  ...PARAMS.filter((s) => s.key !== undefined && ENTRIES.find((e) => e.key === s.key)?.spec.codec.path).map((s) => s.name),
  'config_file',
]);

/**
 * Parameter values for this node from the ROS arguments, as rcl applies them: every `--params-file FILE` and every
 * `-p name:=value` (or `-p node:name:=value` for this node) in the order given, a later value replacing an earlier
 * one, so `-p` after `--params-file` overrides the file. In a file, sections `/**`, `name`, `/name` and
 * `/namespace/name` all apply (rcl accepts each of these forms). A `-p` value is read as YAML, as rcl reads it. Values
 * are coerced to the declared types (an integer written for a double parameter is taken as that double).
 */
export function rosArgParams(argv: readonly string[], name: string, namespace: string): Map<string, ParamValue> {
  const ns = namespace === '' || namespace === '/' ? '' : namespace.replace(/\/$/, '');
  const keys = ['/**', name, `/${name}`, `${ns}/${name}`];
  const out = new Map<string, ParamValue>();
  const specs = new Map(PARAMS.map((s) => [s.name, s]));
  const set = (k: string, v: ParamValue, where: string, base: string | undefined) => {
    const spec = specs.get(k);
    // use_sim_time is rclnodejs's, but rclnodejs reads it only from '/**' and 'name' sections, not from the '/name'
    // ones launch_ros writes: it is carried here too. Unknown keys are left to rcl and the node's own checks.
    if (k === 'use_sim_time' && typeof v === 'boolean') out.set(k, v);
    if (!spec) return;
    const value = coerce(spec, v, where);
    // Model files are found next to the parameter file that names them (and from the working folder for -p).
    out.set(k, PATH_PARAMS.has(k) && typeof value === 'string' && value !== '' && !isAbsolute(value) ? resolve(base ?? '.', value) : value);
  };
  for (let i = 0; i < argv.length - 1; i++) {
    const arg = argv[i];
    if (arg === '--params-file') {
      const file = argv[i + 1];
      const doc = (readYamlFile(file, 'parameter') ?? {}) as Record<string, { ros__parameters?: unknown }>;
      for (const key of keys) {
        const section = doc[key]?.ros__parameters;
        if (!section) continue;
        for (const [k, v] of flattenParams(section)) set(k, v, file, dirname(file));
      }
    } else if (arg === '-p' || arg === '--param') {
      const m = /^(?:([^:=]+):)?([^:=]+):=(.*)$/s.exec(argv[i + 1]);
      if (!m) throw new UserError(`ROS argument -p ${argv[i + 1]}: expected name:=value`);
      const [, node, param, text] = m;
      if (node !== undefined && node !== name && node !== `/${name}` && node !== `${ns}/${name}`) continue;
      let value: unknown;
      try {
        value = parseYaml(text);
      } catch {
        value = text; // rcl takes a value YAML cannot read as a string
      }
      set(param, (value ?? '') as ParamValue, `-p ${argv[i + 1]}`, undefined);
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
