// Models whose weights live in external data files (what PyTorch's exporter writes by default): the tensors are
// read from their files and written back into the model as raw_data, so the model can be loaded from bytes.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { ProtoWriter, readFields, type ProtoField } from '../models/protobuf.js';
import { UserError } from '../errors.js';

const dec = new TextDecoder();

/** Re-emits a field read by readFields; only varint and length-delimited fields occur in the messages rewritten here. */
function copyField(w: ProtoWriter, f: ProtoField, what: string): void {
  if (f.bytes) w.bytes(f.field, f.bytes);
  else if (f.value !== undefined) w.int(f.field, f.value);
  else throw new UserError(`${what}: unexpected fixed-width field ${f.field} next to external data`);
}

function isExternal(tensor: Uint8Array, what: string): boolean {
  return readFields(tensor, what).some((f) => f.field === 14 && f.value === 1n);
}

function inlineTensor(tensor: Uint8Array, dir: string, file: string, files: Map<string, Uint8Array>): Uint8Array {
  const fields = readFields(tensor, `${file} initializer`);
  let name = '';
  const ext: Record<string, string> = {};
  for (const f of fields) {
    if (f.field === 8 && f.bytes) name = dec.decode(f.bytes);
    if (f.field === 13 && f.bytes) {
      let k = '';
      let v = '';
      for (const e of readFields(f.bytes, `${file} external_data`)) {
        if (e.field === 1 && e.bytes) k = dec.decode(e.bytes);
        if (e.field === 2 && e.bytes) v = dec.decode(e.bytes);
      }
      ext[k] = v;
    }
  }
  const location = ext.location;
  if (location === undefined || isAbsolute(location) || normalize(location).startsWith('..')) {
    throw new UserError(`${file}: initializer '${name}' has external data location '${location ?? ''}'; expected a file next to the model`);
  }
  let data = files.get(location);
  if (!data) {
    const path = join(dir, location);
    if (!existsSync(path)) throw new UserError(`${file}: external data file ${path} of initializer '${name}' does not exist`);
    data = readFileSync(path);
    files.set(location, data);
  }
  const offset = Number(ext.offset ?? 0);
  const length = ext.length === undefined ? data.length - offset : Number(ext.length);
  if (!(offset >= 0 && length >= 0 && offset + length <= data.length)) {
    throw new UserError(`${file}: initializer '${name}' reads bytes ${offset}…${offset + length} of ${location}, which has ${data.length}`);
  }
  const w = new ProtoWriter();
  for (const f of fields) if (f.field !== 13 && f.field !== 14) copyField(w, f, file);
  w.bytes(9, data.subarray(offset, offset + length));
  return w.finish();
}

/**
 * The model with every external initializer's bytes inlined as raw_data; the same bytes when it has none.
 * `dir` is the model file's folder (external locations are relative to it).
 */
export function inlineExternalData(model: Uint8Array, dir: string, file: string): Uint8Array {
  const top = readFields(model, file);
  const graph = top.find((f) => f.field === 7 && f.bytes);
  if (!graph?.bytes) return model;
  const graphFields = readFields(graph.bytes, `${file} graph`);
  if (!graphFields.some((f) => f.field === 5 && f.bytes && isExternal(f.bytes, `${file} initializer`))) return model;
  const files = new Map<string, Uint8Array>();
  const g = new ProtoWriter();
  for (const f of graphFields) {
    if (f.field === 5 && f.bytes && isExternal(f.bytes, `${file} initializer`)) g.bytes(5, inlineTensor(f.bytes, dir, file, files));
    else copyField(g, f, `${file} graph`);
  }
  const w = new ProtoWriter();
  for (const f of top) {
    if (f.field === 7) w.bytes(7, g.finish());
    else copyField(w, f, file);
  }
  return w.finish();
}
