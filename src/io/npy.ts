// NumPy .npy files (format 1.0/2.0/3.0): float32 and int64 read/write, C order, little-endian.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Tensor } from '../s2/tensor.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function encodeNpy(t: Tensor): Uint8Array {
  return encodeArray(t.dims, t.data);
}

/** A float32 or int64 array as .npy bytes (C order, little-endian). */
export function encodeArray(dims: readonly number[], data: Float32Array | BigInt64Array): Uint8Array {
  const t = { dims, data };
  const descr = data instanceof BigInt64Array ? '<i8' : '<f4';
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Header padded with spaces so that the data starts on a 64-byte boundary, ending in '\n'.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = header + ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 10 + header.length);
  return out;
}

/** Writes a .npy atomically (temporary name, then rename). */
export function writeNpy(file: string, t: Tensor): void {
  writeFileAtomic(file, encodeNpy(t));
}

export function writeArray(file: string, dims: readonly number[], data: Float32Array | BigInt64Array): void {
  writeFileAtomic(file, encodeArray(dims, data));
}

/** A float32 or int64 array as read from a .npy. */
export interface NpyArray {
  dims: number[];
  data: Float32Array | BigInt64Array;
}

const DTYPES = {
  float32: { descr: ['<f4', '=f4', 'f4'], bytes: 4, name: "float32 ('<f4')", make: (n: number) => new Float32Array(n) },
  int64: { descr: ['<i8', '=i8', 'i8'], bytes: 8, name: "int64 ('<i8')", make: (n: number) => new BigInt64Array(n) },
} as const;
type DtypeName = keyof typeof DTYPES;

/** Parses a .npy holding float32 data; `file` only names the source in error messages. */
export function decodeNpy(buf: Uint8Array, file: string): Tensor {
  return decodeAs(buf, file, ['float32']) as Tensor;
}

/** Parses a .npy holding float32 or int64 data (extract's nanosecond stamps are int64). */
export function decodeNpyArray(buf: Uint8Array, file: string): NpyArray {
  return decodeAs(buf, file, ['float32', 'int64']);
}

/** The shape, dtype and data offset of a .npy from its first bytes (at least the preamble and header). */
function parseHeader(buf: Uint8Array, file: string, accepted: readonly DtypeName[]): { dims: number[]; start: number; kind: DtypeName } {
  if (MAGIC.some((b, i) => i < buf.length && buf[i] !== b)) throw new UserError(`${file}: not a NumPy .npy file (bad magic)`);
  if (buf.length < 12) throw new UserError(`${file}: truncated .npy (${buf.length} bytes, shorter than its preamble)`);
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new UserError(`${file}: unsupported .npy format version ${major}`);
  }
  if (offset + headerLen > buf.length)
    throw new UserError(`${file}: truncated .npy (its header needs ${offset + headerLen} bytes, the file has ${buf.length})`);
  const header = new TextDecoder('latin1').decode(buf.subarray(offset, offset + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new UserError(`${file}: malformed .npy header`);
  const kind = accepted.find((k) => (DTYPES[k].descr as readonly string[]).includes(descr));
  if (kind === undefined) {
    const expected = accepted.map((k) => DTYPES[k].name).join(' or ');
    throw new UserError(`${file}: dtype is '${descr}', expected ${expected}; convert with x.astype(np.${accepted[0]})`);
  }
  if (fortran === 'True') throw new UserError(`${file}: Fortran-ordered array, expected C order; save np.ascontiguousarray(x)`);
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  return { dims, start: offset + headerLen, kind };
}

function decodeAs(buf: Uint8Array, file: string, accepted: readonly DtypeName[]): NpyArray {
  const { dims, start, kind } = parseHeader(buf, file, accepted);
  const dtype = DTYPES[kind];
  const n = dims.reduce((a, b) => a * b, 1);
  const need = n * dtype.bytes;
  if (buf.length - start < need) {
    throw new UserError(`${file}: truncated .npy: shape (${dims.join(', ')}) needs ${need} data bytes, the file has ${buf.length - start}`);
  }
  if (buf.length - start !== need) {
    throw new UserError(`${file}: shape (${dims.join(', ')}) needs ${need} data bytes, file has ${buf.length - start}`);
  }
  const data = dtype.make(n);
  new Uint8Array(data.buffer).set(buf.subarray(start));
  return { dims, data };
}

/** Files larger than this are read straight into their array (readFileSync stops at 2 GiB, and a copy would double the memory). */
const LARGE_FILE = 1 << 30;

/** Reads a float32 .npy; files over `largeAbove` bytes are read piecewise into their array. */
export function readNpy(file: string, largeAbove = LARGE_FILE): Tensor {
  return readAs(file, ['float32'], largeAbove) as Tensor;
}

/** Reads a float32 or int64 .npy. */
export function readNpyArray(file: string, largeAbove = LARGE_FILE): NpyArray {
  return readAs(file, ['float32', 'int64'], largeAbove);
}

function readAs(file: string, accepted: readonly DtypeName[], largeAbove: number): NpyArray {
  let buf: Buffer;
  try {
    if (statSync(file).size > largeAbove) return readLarge(file, accepted);
    buf = readFileSync(file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read (${code ?? String(e)})`);
  }
  return decodeAs(buf, file, accepted);
}

/** A large .npy: the header from the first bytes, then the data read in pieces into the array. */
function readLarge(file: string, accepted: readonly DtypeName[]): NpyArray {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const head = new Uint8Array(Math.min(size, 1 << 20));
    readSync(fd, head, 0, head.length, 0);
    const { dims, start, kind } = parseHeader(head, file, accepted);
    const dtype = DTYPES[kind];
    const n = dims.reduce((a, b) => a * b, 1);
    if (size - start !== n * dtype.bytes)
      throw new UserError(`${file}: shape (${dims.join(', ')}) needs ${n * dtype.bytes} data bytes, file has ${size - start}`);
    const data = dtype.make(n);
    const bytes = new Uint8Array(data.buffer);
    for (let o = 0; o < bytes.length;) {
      const got = readSync(fd, bytes, o, Math.min(1 << 28, bytes.length - o), start + o);
      if (got === 0) throw new UserError(`${file}: truncated while reading (${o} of ${bytes.length} data bytes)`);
      o += got;
    }
    return { dims, data };
  } finally {
    closeSync(fd);
  }
}
