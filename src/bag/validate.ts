// Checks a message object against its parsed definition before CDR encoding, because MessageWriter silently writes
// zeros for a missing or mistyped field and a wrong length prefix for a typed array of the wrong kind.
import type { MessageDefinition, MessageDefinitionField } from '@foxglove/message-definition';

/** A message that does not fit its definition; `path` is the field at fault, e.g. 'header.stamp.sec'. */
export class MessageShapeError extends Error {
  override name = 'MessageShapeError';
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`field '${path}': expected ${expected}, got ${got}`);
  }
}

const INT_RANGE: Readonly<Record<string, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

// The typed arrays MessageWriter copies as they are; any other typed array gets a length prefix but no data.
const TYPED_ARRAY: Readonly<Record<string, readonly (abstract new (...args: never[]) => ArrayBufferView)[]>> = {
  int8: [Int8Array],
  uint8: [Uint8Array, Uint8ClampedArray],
  int16: [Int16Array],
  uint16: [Uint16Array],
  int32: [Int32Array],
  uint32: [Uint32Array],
  int64: [BigInt64Array],
  uint64: [BigUint64Array],
  float32: [Float32Array],
  float64: [Float64Array],
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return typeof v;
}

/** Any text: strings are written as UTF-8 (see cdr-utf8.ts; a lone surrogate becomes U+FFFD, as TextEncoder does). */
function checkString(v: unknown, path: string): void {
  if (typeof v !== 'string') throw new MessageShapeError(path, 'a string', describe(v));
}

/** Checks one primitive scalar; returns the value to encode (a boolean in an integer field becomes 0/1). */
function checkScalar(type: string, v: unknown, path: string): unknown {
  switch (type) {
    case 'bool':
      if (typeof v !== 'boolean') throw new MessageShapeError(path, 'a boolean', describe(v));
      return v;
    case 'string':
      checkString(v, path);
      return v;
    case 'float32':
    case 'float64':
      if (typeof v !== 'number') throw new MessageShapeError(path, `a number (${type})`, describe(v));
      return v;
    case 'int64':
    case 'uint64':
      if (typeof v === 'bigint') return v;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || (type === 'uint64' && v < 0)) {
        throw new MessageShapeError(path, `a bigint or safe integer (${type})`, describe(v));
      }
      return v;
    case 'time':
    case 'duration': {
      if (typeof v !== 'object' || v === null) throw new MessageShapeError(path, `{sec, nanosec} (${type})`, describe(v));
      const t = v as { sec?: unknown; nanosec?: unknown };
      checkScalar('int32', t.sec, `${path}.sec`);
      checkScalar('uint32', t.nanosec, `${path}.nanosec`);
      return v;
    }
    default: {
      const range = INT_RANGE[type];
      if (!range) throw new MessageShapeError(path, `a supported primitive type`, `type ${type}`);
      const n = typeof v === 'boolean' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < range[0] || n > range[1]) {
        throw new MessageShapeError(path, `an integer in [${range[0]}, ${range[1]}] (${type})`, describe(v));
      }
      return n;
    }
  }
}

function checkArray(field: MessageDefinitionField, v: unknown, path: string, types: ReadonlyMap<string, MessageDefinitionField[]>): unknown {
  const typedKinds = TYPED_ARRAY[field.type];
  const isTyped = ArrayBuffer.isView(v);
  if (isTyped && !(typedKinds ?? []).some((k) => v instanceof k)) {
    const allowed = (typedKinds ?? []).map((k) => k.name).join(' or ');
    throw new MessageShapeError(path, `${allowed ? `${allowed} or ` : ''}an array (${field.type}[])`, describe(v));
  }
  if (!isTyped && !Array.isArray(v)) throw new MessageShapeError(path, `an array (${field.type}[])`, describe(v));
  const length = (v as { length: number }).length;
  if (field.arrayLength !== undefined && length !== field.arrayLength) {
    throw new MessageShapeError(path, `exactly ${field.arrayLength} elements`, `${length}`);
  }
  if (field.arrayUpperBound !== undefined && length > field.arrayUpperBound) {
    throw new MessageShapeError(path, `at most ${field.arrayUpperBound} elements`, `${length}`);
  }
  if (isTyped) return v;
  const items = v as unknown[];
  let out: unknown[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const checked = field.isComplex === true ? checkStruct(field.type, item, `${path}[${i}]`, types) : checkScalar(field.type, item, `${path}[${i}]`);
    if (checked !== item) {
      out ??= items.slice();
      out[i] = checked;
    }
  }
  return out ?? v;
}

function checkStruct(type: string, v: unknown, path: string, types: ReadonlyMap<string, MessageDefinitionField[]>): unknown {
  const fields = types.get(type);
  if (!fields) throw new MessageShapeError(path, `a defined type`, `unknown type ${type}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw new MessageShapeError(path || '(message)', `an object (${type})`, describe(v));
  }
  const obj = v as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const field of fields) {
    if (field.isConstant === true) continue;
    const fieldPath = path ? `${path}.${field.name}` : field.name;
    const value = obj[field.name];
    if (value === undefined) throw new MessageShapeError(fieldPath, `a value (${field.type}${field.isArray === true ? '[]' : ''})`, 'nothing');
    let checked: unknown;
    if (field.isArray === true) checked = checkArray(field, value, fieldPath, types);
    else if (field.isComplex === true) checked = checkStruct(field.type, value, fieldPath, types);
    else {
      checked = checkScalar(field.type, value, fieldPath);
      if (field.type === 'string' && field.upperBound !== undefined && (value as string).length > field.upperBound) {
        throw new MessageShapeError(fieldPath, `at most ${field.upperBound} characters`, `${(value as string).length}`);
      }
    }
    if (checked !== value) {
      out ??= { ...obj };
      out[field.name] = checked;
    }
  }
  return out ?? v;
}

/** Name → fields of every definition, the root under ''. */
export function definitionMap(defs: readonly MessageDefinition[]): Map<string, MessageDefinitionField[]> {
  const map = new Map<string, MessageDefinitionField[]>();
  defs.forEach((d, i) => map.set(i === 0 ? '' : (d.name ?? ''), d.definitions));
  return map;
}

/**
 * Checks `message` against the root of `types` (from definitionMap) and returns what to encode: the same object, or a
 * shallow copy where booleans in integer fields became 0/1. Throws MessageShapeError naming the field at fault.
 */
export function checkMessage(types: ReadonlyMap<string, MessageDefinitionField[]>, message: unknown): unknown {
  return checkStruct('', message, '', types);
}
