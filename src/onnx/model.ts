// The ONNX file format as one typed model: decoding and encoding a ModelProto with @bufbuild/protobuf and ONNX's own
// schema (onnx-buf, generated from onnx.proto), metadata, and the graph edits the S² compiler makes.
// onnx-buf is ONNX 1.20's onnx.proto (Apache-2.0, the ONNX Project Contributors) compiled by protoc-gen-es; the
// package is MIT-licensed. Of the project's sources only this folder imports it and @bufbuild/protobuf.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import {
  GraphProtoSchema,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type StringStringEntryProto,
  type TensorProto,
} from 'onnx-buf';
import { UserError } from '../errors.js';

export {
  AttributeProto_AttributeType as AttributeType,
  TensorProto_DataLocation as DataLocation,
  TensorProto_DataType as DataType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

/** What the project writes as producer_name / producer_version. */
export const PRODUCER = { name: 's2_policy', version: '0.1.0' } as const;

/** Bytes that are not an ONNX model, or a model the project cannot use; one line naming the file. */
export class OnnxFormatError extends UserError {
  override name = 'OnnxFormatError';
}

/**
 * Decodes a ModelProto. Byte fields (raw_data of initializers) are views into `bytes`, not copies, so a model of
 * hundreds of megabytes decodes in milliseconds; keep `bytes` unchanged while the model is in use.
 */
export function decodeModel(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.byteLength === 0) throw new OnnxFormatError(`${file}: empty file (0 bytes), not an ONNX model`);
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new OnnxFormatError(`${file}: not an ONNX model (protobuf parsing failed: ${reason})`);
  }
  // Protobuf accepts many byte strings (any run of well-formed fields); a model without a graph is none of ours.
  if (model.graph === undefined) throw new OnnxFormatError(`${file}: not an ONNX model (no graph)`);
  return model;
}

/** A new ModelProto from plain values (nested messages may be plain objects too). */
export function newModel(init: MessageInitShape<typeof ModelProtoSchema> = {}): ModelProto {
  return create(ModelProtoSchema, init);
}

/** A shallow copy of a message (same prototype, so unset proto2 fields keep reading as their defaults). */
export function copyOf<T extends object>(message: T, changes: Partial<T> = {}): T {
  return Object.assign(Object.create(Object.getPrototypeOf(message) as object) as T, message, changes);
}

/** The message with only the fields whose numbers pass `keep` (unknown fields only where `unknown` is true). */
function fieldsOf<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, keep: (n: number) => boolean, unknown: boolean) {
  const part = copyOf(message) as Record<string, unknown>;
  for (const f of schema.fields) if (!keep(f.number)) part[f.localName] = f.fieldKind === 'list' ? [] : undefined;
  if (!unknown) part.$unknown = undefined;
  return toBinary(schema, part as MessageShape<Desc>);
}

const varintSize = (n: number): number => (n < 0x80 ? 1 : 1 + varintSize(Math.floor(n / 0x80)));

/** Protobuf keys (field << 3 | 2) of the length-delimited fields spliced by encodeModel. */
const GRAPH_KEY = (7 << 3) | 2;
const INITIALIZER_KEY = (5 << 3) | 2;
const RAW_DATA_KEY = (9 << 3) | 2;

interface TensorParts {
  head: Uint8Array;
  raw?: Uint8Array;
  tail: Uint8Array;
  size: number;
}

/**
 * Encodes a ModelProto; the bytes are what toBinary(ModelProtoSchema, model) gives. The library's writer grows one
 * buffer by doubling and copies it out at the end, and every fresh page is slow to touch: 86 MB of weights took
 * 3.5–6.5 s here. So each message is encoded by the library except initializers' raw_data, which is copied once
 * into a buffer allocated at its final size (0.5–0.9 s for the same model).
 */
export function encodeModel(model: ModelProto): Uint8Array {
  const graph = model.graph;
  if (graph === undefined) return toBinary(ModelProtoSchema, model);
  const modelHead = fieldsOf(ModelProtoSchema, model, (n) => n < 7, false);
  const modelTail = fieldsOf(ModelProtoSchema, model, (n) => n > 7, true);
  const graphHead = fieldsOf(GraphProtoSchema, graph, (n) => n < 5, false);
  const graphTail = fieldsOf(GraphProtoSchema, graph, (n) => n > 5, true);
  const tensors = graph.initializer.map((t): TensorParts => {
    if (!Object.hasOwn(t, 'rawData') || t.rawData === undefined) {
      const head = toBinary(TensorProtoSchema, t);
      return { head, tail: new Uint8Array(0), size: head.length };
    }
    const head = fieldsOf(TensorProtoSchema, t, (n) => n < 9, false);
    const tail = fieldsOf(TensorProtoSchema, t, (n) => n > 9, true);
    const raw = t.rawData;
    return { head, raw, tail, size: head.length + 1 + varintSize(raw.length) + raw.length + tail.length };
  });
  let graphSize = graphHead.length + graphTail.length;
  for (const t of tensors) graphSize += 1 + varintSize(t.size) + t.size;
  const out = new Uint8Array(modelHead.length + 1 + varintSize(graphSize) + graphSize + modelTail.length);
  let pos = 0;
  const put = (b: Uint8Array) => {
    out.set(b, pos);
    pos += b.length;
  };
  const varint = (n: number) => {
    for (; n >= 0x80; n = Math.floor(n / 0x80)) out[pos++] = (n % 0x80) | 0x80;
    out[pos++] = n;
  };
  put(modelHead);
  out[pos++] = GRAPH_KEY;
  varint(graphSize);
  put(graphHead);
  for (const t of tensors) {
    out[pos++] = INITIALIZER_KEY;
    varint(t.size);
    put(t.head);
    if (t.raw) {
      out[pos++] = RAW_DATA_KEY;
      varint(t.raw.length);
      put(t.raw);
    }
    put(t.tail);
  }
  put(graphTail);
  put(modelTail);
  if (pos !== out.length) throw new Error(`encodeModel: wrote ${pos} of ${out.length} bytes`);
  return out;
}

/** metadata_props as a record; a repeated key keeps its last value, as protobuf readers of a map do. */
export function metadataOf(model: ModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of model.metadataProps) out[e.key] = e.value;
  return out;
}

/** metadata_props entries for a record, in its key order. */
export function metadataProps(metadata: Record<string, string>): StringStringEntryProto[] {
  return Object.entries(metadata).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
}

/** The nodes needed to compute `output`, in their original (topological) order. */
export function pruneTo(nodes: NodeProto[], output: string): NodeProto[] {
  const need = new Set([output]);
  const keep: boolean[] = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (nodes[i].output.some((o) => need.has(o))) {
      keep[i] = true;
      for (const inp of nodes[i].input) if (inp !== '') need.add(inp);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

/** The node with its values renamed (an empty name, an omitted optional value, stays empty) and `name` set. */
export function renamedNode(n: NodeProto, rename: (value: string) => string, name: string): NodeProto {
  const map = (v: string) => (v === '' ? '' : rename(v));
  return copyOf(n, { input: n.input.map(map), output: n.output.map(map), name });
}

/** The tensor under another name, sharing its data. */
export function renamedTensor(t: TensorProto, name: string): TensorProto {
  return copyOf(t, { name });
}

/** A graph's first node or attribute holding a subgraph (If, Loop, Scan), or undefined. */
export function subgraphNode(graph: GraphProto): NodeProto | undefined {
  return graph.node.find((n) => n.attribute.some((a) => a.g !== undefined || a.graphs.length > 0));
}
