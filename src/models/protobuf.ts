// Minimal protocol-buffers wire format: a writer for building ONNX files and a
// reader for the few top-level fields the runtime needs (metadata_props).

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private varint(value: bigint): void {
    // Negative int64 values are written as their 64-bit two's complement, as protobuf does.
    let v = value < 0n ? (1n << 64n) + value : value;
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wireType: number): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

export interface ProtoField {
  field: number;
  wireType: number;
  /** Varint value (wire type 0). */
  value?: bigint;
  /** Payload (wire type 2), a view into the source buffer. */
  bytes?: Uint8Array;
}

/** Reads the top-level fields of one message; throws naming the byte offset where the data is malformed. */
export function readFields(buf: Uint8Array, what: string): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error(`${what}: truncated varint at byte ${pos}`);
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new Error(`${what}: varint too long at byte ${pos}`);
    }
  };
  while (pos < buf.length) {
    const start = pos;
    const key = Number(readVarint());
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 0) throw new Error(`${what}: invalid field number 0 at byte ${start}`);
    switch (wireType) {
      case 0:
        fields.push({ field, wireType, value: readVarint() });
        break;
      case 1:
        pos += 8;
        fields.push({ field, wireType });
        break;
      case 2: {
        const len = Number(readVarint());
        if (pos + len > buf.length) throw new Error(`${what}: field ${field} at byte ${start} runs past the end`);
        fields.push({ field, wireType, bytes: buf.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        fields.push({ field, wireType });
        break;
      default:
        throw new Error(`${what}: unsupported wire type ${wireType} at byte ${start}`);
    }
    if (pos > buf.length) throw new Error(`${what}: field ${field} at byte ${start} runs past the end`);
  }
  return fields;
}
