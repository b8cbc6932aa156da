// A small ONNX graph builder: nodes, float/int64 initializers and typed inputs/outputs, serialised to a ModelProto.
import { ProtoWriter, readFields } from './protobuf.js';

const FLOAT = 1;
const INT64 = 7;

export type Dim = number | string;
export type AttrValue = number | number[] | string | { floats: number[] };

interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

interface InitDef {
  name: string;
  dims: number[];
  type: typeof FLOAT | typeof INT64;
  data: Float32Array | BigInt64Array;
}

interface IoDef {
  name: string;
  dims: Dim[];
}

export class OnnxGraph {
  private nodes: NodeDef[] = [];
  private inits: InitDef[] = [];
  private inputs: IoDef[] = [];
  private outputs: IoDef[] = [];
  private counter = 0;
  readonly metadata: Record<string, string> = {};

  constructor(
    readonly name: string,
    readonly opset = 17,
  ) {}

  input(name: string, dims: Dim[]): string {
    this.inputs.push({ name, dims });
    return name;
  }

  output(name: string, dims: Dim[]): void {
    this.outputs.push({ name, dims });
  }

  /** A float32 initializer; returns its name. */
  weight(name: string, dims: number[], data: Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(',')}]`);
    this.inits.push({ name, dims, type: FLOAT, data });
    return name;
  }

  /** An int64 constant initializer (shapes, axes, indices). dims [] makes a scalar. */
  ints(values: number[], dims: number[] = [values.length]): string {
    const name = `const_i64_${this.counter++}`;
    this.inits.push({ name, dims, type: INT64, data: BigInt64Array.from(values.map((v) => BigInt(v))) });
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    const name = `const_f32_${this.counter++}`;
    this.inits.push({ name, dims: [], type: FLOAT, data: Float32Array.of(value) });
    return name;
  }

  /** Adds a node with one output and returns that output's name. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const out = outName ?? `${op.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ op, inputs, outputs: [out], attrs });
    return out;
  }

  /** Float32 initializers by name, for exporting weights next to the model. */
  floatWeights(): Map<string, { dims: number[]; data: Float32Array }> {
    const m = new Map<string, { dims: number[]; data: Float32Array }>();
    for (const i of this.inits) {
      if (i.type === FLOAT && !i.name.startsWith('const_')) m.set(i.name, { dims: i.dims, data: i.data as Float32Array });
    }
    return m;
  }

  serialize(): Uint8Array {
    const w = new ProtoWriter();
    w.int(1, 8); // ir_version 8 pairs with opset 17
    w.string(2, 's2_policy');
    w.string(3, '0.1.0');
    w.message(7, (g) => {
      for (const n of this.nodes) g.message(1, (nw) => writeNode(nw, n));
      g.string(2, this.name);
      for (const i of this.inits) g.message(5, (tw) => writeTensor(tw, i));
      for (const i of this.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
      for (const o of this.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
    });
    w.message(8, (o) => {
      o.string(1, '');
      o.int(2, this.opset);
    });
    for (const [key, value] of Object.entries(this.metadata)) {
      w.message(14, (e) => {
        e.string(1, key);
        e.string(2, value);
      });
    }
    return w.finish();
  }
}

function writeNode(w: ProtoWriter, n: NodeDef): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.outputs[0]);
  w.string(4, n.op);
  for (const [name, value] of Object.entries(n.attrs)) {
    w.message(5, (a) => {
      a.string(1, name);
      if (typeof value === 'number') {
        if (Number.isInteger(value)) {
          a.int(3, value);
          a.int(20, 2);
        } else {
          a.float(2, value);
          a.int(20, 1);
        }
      } else if (typeof value === 'string') {
        a.string(4, value);
        a.int(20, 3);
      } else if (Array.isArray(value)) {
        for (const v of value) a.int(8, v);
        a.int(20, 7);
      } else {
        for (const v of value.floats) a.float(7, v);
        a.int(20, 6);
      }
    });
  }
}

function writeTensor(w: ProtoWriter, t: InitDef): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.type);
  w.string(8, t.name);
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  w.bytes(9, bytes); // raw_data is little-endian, as typed arrays are on every supported platform
}

function writeValueInfo(w: ProtoWriter, v: IoDef): void {
  w.string(1, v.name);
  w.message(2, (tp) =>
    tp.message(1, (tt) => {
      tt.int(1, FLOAT);
      tt.message(2, (shape) => {
        for (const d of v.dims) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

/** Reads a model's metadata_props (ModelProto field 14) without decoding the graph. */
export function readOnnxMetadata(model: Uint8Array, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const dec = new TextDecoder();
  for (const f of readFields(model, file)) {
    if (f.field !== 14 || !f.bytes) continue;
    let key = '';
    let value = '';
    for (const e of readFields(f.bytes, `${file} metadata_props`)) {
      if (e.field === 1 && e.bytes) key = dec.decode(e.bytes);
      if (e.field === 2 && e.bytes) value = dec.decode(e.bytes);
    }
    out[key] = value;
  }
  return out;
}
