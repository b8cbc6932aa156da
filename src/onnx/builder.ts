// A small ONNX graph builder (nodes, float/int64 initializers, typed inputs/outputs, metadata) producing a typed
// ModelProto, for the model presets, the policy heads and the S² graph of the compiler.
import { create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, ModelProtoSchema, TensorProtoSchema, TypeProtoSchema, type AttributeProto, type TensorProto, type TypeProto } from 'onnx-buf';
import { AttributeType, DataType, encodeModel, metadataProps, PRODUCER, type ModelProto } from './model.js';

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
  type: DataType.FLOAT | DataType.INT64;
  data: Float32Array | BigInt64Array;
}

interface IoDef {
  name: string;
  dims: Dim[];
}

/** ir_version 8 is the one that pairs with opset 17, the builder's default. */
const IR_VERSION = 8n;

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
    this.inits.push({ name, dims, type: DataType.FLOAT, data });
    return name;
  }

  /** An int64 constant initializer (shapes, axes, indices). dims [] makes a scalar. */
  ints(values: number[], dims: number[] = [values.length]): string {
    const name = `const_i64_${this.counter++}`;
    this.inits.push({ name, dims, type: DataType.INT64, data: BigInt64Array.from(values.map((v) => BigInt(v))) });
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    const name = `const_f32_${this.counter++}`;
    this.inits.push({ name, dims: [], type: DataType.FLOAT, data: Float32Array.of(value) });
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
      if (i.type === DataType.FLOAT && !i.name.startsWith('const_')) m.set(i.name, { dims: i.dims, data: i.data as Float32Array });
    }
    return m;
  }

  /** The model; initializers' raw_data are views of the weights given, not copies. */
  toModel(): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: IR_VERSION,
      producerName: PRODUCER.name,
      producerVersion: PRODUCER.version,
      graph: {
        // Each node is named after its output, so that tools (profiling, quantization) can select it.
        node: this.nodes.map((n) => ({ input: n.inputs, output: n.outputs, name: n.outputs[0], opType: n.op, attribute: attributes(n.attrs) })),
        name: this.name,
        initializer: this.inits.map(tensor),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      opsetImport: [{ domain: '', version: BigInt(this.opset) }],
      metadataProps: metadataProps(this.metadata),
    });
  }

  serialize(): Uint8Array {
    return encodeModel(this.toModel());
  }
}

function attributes(attrs: Record<string, AttrValue>): AttributeProto[] {
  return Object.entries(attrs).map(([name, value]) => {
    if (typeof value === 'number') {
      return Number.isInteger(value)
        ? create(AttributeProtoSchema, { name, i: BigInt(value), type: AttributeType.INT })
        : create(AttributeProtoSchema, { name, f: value, type: AttributeType.FLOAT });
    }
    if (typeof value === 'string') return create(AttributeProtoSchema, { name, s: new TextEncoder().encode(value), type: AttributeType.STRING });
    if (Array.isArray(value)) return create(AttributeProtoSchema, { name, ints: value.map((v) => BigInt(v)), type: AttributeType.INTS });
    return create(AttributeProtoSchema, { name, floats: value.floats, type: AttributeType.FLOATS });
  });
}

function tensor(t: InitDef): TensorProto {
  // raw_data is little-endian, as typed arrays are on every supported platform.
  const rawData = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) as Uint8Array<ArrayBuffer>;
  return create(TensorProtoSchema, { dims: t.dims.map((d) => BigInt(d)), dataType: t.type, name: t.name, rawData });
}

function valueInfo(v: IoDef): { name: string; type: TypeProto } {
  const dim = v.dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } }));
  return { name: v.name, type: create(TypeProtoSchema, { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim } } } }) };
}
