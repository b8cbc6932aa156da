// Finds the field at which a CDR payload stops fitting its definition, to name it when MessageReader fails (it
// throws a bare RangeError). Runs only on failure, so it favours plain code over speed.
import type { MessageDefinition, MessageDefinitionField } from '@foxglove/message-definition';

const SIZE: Readonly<Record<string, number>> = {
  bool: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float32: 4,
  float64: 8,
};

class Fault extends Error {}

/**
 * Walks `data` (a CDR or CDR_LE payload with its 4-byte encapsulation header) along `defs` (root first) and describes
 * the first field that does not fit, e.g. "field 'data' (uint8[]) at byte 40: 4294967295 elements need 4294967295
 * bytes, 12 left". Returns undefined if the whole definition fits.
 */
export function locateCdrFault(defs: readonly MessageDefinition[], data: Uint8Array): string | undefined {
  if (data.byteLength < 4) return `payload of ${data.byteLength} bytes is shorter than the 4-byte CDR header`;
  const kind = data[1];
  if (data[0] !== 0 || kind > 1) return `encapsulation kind 0x${data[0].toString(16)}${kind.toString(16).padStart(2, '0')} is not plain CDR`;
  const little = kind === 1;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const types = new Map<string, MessageDefinitionField[]>();
  for (const d of defs) if (d.name !== undefined) types.set(d.name, d.definitions);
  let offset = 4;

  const need = (n: number, what: string): void => {
    if (offset + n > data.byteLength) throw new Fault(`${what} at byte ${offset}: needs ${n} bytes, ${data.byteLength - offset} left`);
  };
  const align = (n: number): void => {
    offset += (n - ((offset - 4) % n)) % n;
  };
  const u32 = (what: string): number => {
    align(4);
    need(4, what);
    const v = view.getUint32(offset, little);
    offset += 4;
    return v;
  };
  const primitive = (type: string, what: string): void => {
    if (type === 'string') {
      const len = u32(`${what} length`);
      need(len, `${what} (${len}-byte string)`);
      offset += len;
    } else if (type === 'time' || type === 'duration') {
      align(4);
      need(8, what);
      offset += 8;
    } else {
      const size = SIZE[type];
      if (size === undefined) throw new Fault(`${what}: unsupported type ${type}`);
      align(size);
      need(size, what);
      offset += size;
    }
  };
  const struct = (fields: readonly MessageDefinitionField[], prefix: string): void => {
    const live = fields.filter((f) => f.isConstant !== true);
    if (live.length === 0) {
      need(1, `${prefix || 'message'} (empty struct)`);
      offset += 1;
      return;
    }
    for (const f of live) {
      const name = prefix ? `${prefix}.${f.name}` : f.name;
      const what = `field '${name}' (${f.type}${f.isArray === true ? '[]' : ''})`;
      const nested = f.isComplex === true ? types.get(f.type) : undefined;
      if (f.isComplex === true && !nested) throw new Fault(`${what}: type ${f.type} is not defined`);
      if (f.isArray !== true) {
        if (nested) struct(nested, name);
        else primitive(f.type, what);
        continue;
      }
      const count = f.arrayLength ?? u32(`${what} length`);
      const size = SIZE[f.type];
      if (size !== undefined) {
        if (count > 0) align(size);
        if (offset + count * size > data.byteLength) {
          throw new Fault(`${what} at byte ${offset}: ${count} elements need ${count * size} bytes, ${data.byteLength - offset} left`);
        }
        offset += count * size;
        continue;
      }
      // Each element takes at least one byte, so a count beyond the bytes left is the fault itself.
      if (count > data.byteLength - offset) throw new Fault(`${what} at byte ${offset}: ${count} elements but only ${data.byteLength - offset} bytes left`);
      for (let i = 0; i < count; i++) {
        if (nested) struct(nested, `${name}[${i}]`);
        else primitive(f.type, `field '${name}[${i}]'`);
      }
    }
  };

  try {
    struct(defs[0].definitions, '');
  } catch (e) {
    if (e instanceof Fault) return e.message;
    throw e;
  }
  const trailing = data.byteLength - offset;
  return trailing > 3 ? `${trailing} bytes left over after the last field (byte ${offset} of ${data.byteLength})` : undefined;
}
