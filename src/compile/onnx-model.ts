// Reading an ONNX ModelProto into the parts a graph can be rebuilt from (nodes, initializers, inputs, outputs,
// opsets, local functions), renaming a graph's values, and writing a ModelProto from such parts.
import { ProtoWriter, readFields, type ProtoField } from '../models/protobuf.js';

export interface OnnxNode {
  inputs: string[];
  outputs: string[];
  name: string;
  opType: string;
  domain: string;
  /** Every other field of the NodeProto (attributes, domain, doc string, …) as it was: all are length-delimited. */
  rest: { field: number; bytes: Uint8Array }[];
}

/** A named message kept as its original bytes (TensorProto, ValueInfoProto). */
export interface NamedRaw {
  name: string;
  raw: Uint8Array;
}

export interface OnnxGraphParts {
  name: string;
  nodes: OnnxNode[];
  initializers: NamedRaw[];
  inputs: NamedRaw[];
  outputs: NamedRaw[];
}

export interface OnnxModelParts {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  /** Model-local functions (FunctionProto), kept as they are. */
  functions: Uint8Array[];
  metadata: Record<string, string>;
  graph: OnnxGraphParts;
}

/** A model the compiler cannot take apart; the message says why (the caller adds the file name). */
export class OnnxStructureError extends Error {
  override name = 'OnnxStructureError';
}

const dec = new TextDecoder();
const text = (f: ProtoField): string => (f.bytes ? dec.decode(f.bytes) : '');

function nameOf(bytes: Uint8Array, field: number, what: string): string {
  let name = '';
  for (const f of readFields(bytes, what)) if (f.field === field && f.bytes) name = dec.decode(f.bytes);
  return name;
}

function parseNode(bytes: Uint8Array): OnnxNode {
  const node: OnnxNode = { inputs: [], outputs: [], name: '', opType: '', domain: '', rest: [] };
  for (const f of readFields(bytes, 'NodeProto')) {
    if (!f.bytes) throw new OnnxStructureError(`node field ${f.field} has an unexpected wire type ${f.wireType}`);
    switch (f.field) {
      case 1:
        node.inputs.push(text(f));
        break;
      case 2:
        node.outputs.push(text(f));
        break;
      case 3:
        node.name = text(f);
        break;
      case 4:
        node.opType = text(f);
        break;
      default:
        if (f.field === 7) node.domain = text(f);
        if (f.field === 5) checkAttribute(f.bytes, node);
        node.rest.push({ field: f.field, bytes: f.bytes });
    }
  }
  return node;
}

function checkAttribute(bytes: Uint8Array, node: OnnxNode): void {
  for (const f of readFields(bytes, 'AttributeProto')) {
    // Subgraphs (If, Loop, Scan) read outer values by name; renaming them is not supported.
    if (f.field === 6 || f.field === 11)
      throw new OnnxStructureError(`node '${node.name || node.opType}' (${node.opType}) has a subgraph, which compile does not support`);
  }
}

function parseInitializer(bytes: Uint8Array): NamedRaw {
  let name = '';
  for (const f of readFields(bytes, 'TensorProto')) {
    if (f.field === 8 && f.bytes) name = dec.decode(f.bytes);
    if (f.field === 14 && f.value === 1n)
      throw new OnnxStructureError(`initializer '${name}' is stored in an external data file; save the model with its weights inside`);
  }
  return { name, raw: bytes };
}

export function parseOnnxModel(bytes: Uint8Array): OnnxModelParts {
  const model: OnnxModelParts = {
    irVersion: 0,
    opsets: [],
    functions: [],
    metadata: {},
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [] },
  };
  let sawGraph = false;
  for (const f of readFields(bytes, 'ModelProto')) {
    if (f.field === 1 && f.value !== undefined) model.irVersion = Number(f.value);
    if (!f.bytes) continue;
    if (f.field === 7) {
      sawGraph = true;
      model.graph = parseGraph(f.bytes);
    } else if (f.field === 8) {
      let domain = '';
      let version = 0;
      for (const o of readFields(f.bytes, 'OperatorSetIdProto')) {
        if (o.field === 1) domain = text(o);
        if (o.field === 2 && o.value !== undefined) version = Number(o.value);
      }
      model.opsets.push({ domain: domain === 'ai.onnx' ? '' : domain, version });
    } else if (f.field === 14) {
      model.metadata[nameOf(f.bytes, 1, 'StringStringEntryProto')] = nameOf(f.bytes, 2, 'StringStringEntryProto');
    } else if (f.field === 25) {
      model.functions.push(f.bytes);
    }
  }
  if (!sawGraph) throw new OnnxStructureError('the model has no graph');
  return model;
}

function parseGraph(bytes: Uint8Array): OnnxGraphParts {
  const g: OnnxGraphParts = { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };
  for (const f of readFields(bytes, 'GraphProto')) {
    if (!f.bytes) continue;
    switch (f.field) {
      case 1:
        g.nodes.push(parseNode(f.bytes));
        break;
      case 2:
        g.name = text(f);
        break;
      case 5:
        g.initializers.push(parseInitializer(f.bytes));
        break;
      case 11:
        g.inputs.push({ name: nameOf(f.bytes, 1, 'ValueInfoProto'), raw: f.bytes });
        break;
      case 12:
        g.outputs.push({ name: nameOf(f.bytes, 1, 'ValueInfoProto'), raw: f.bytes });
        break;
      case 15:
        throw new OnnxStructureError('the graph has sparse initializers, which compile does not support');
      default:
      // value_info (13) is dropped: shapes are re-inferred, and the backbone's batch dimension is not ours.
    }
  }
  return g;
}

/** The nodes needed to compute `output`, in their original (topological) order. */
export function pruneTo(nodes: OnnxNode[], output: string): OnnxNode[] {
  const need = new Set([output]);
  const keep: boolean[] = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (nodes[i].outputs.some((o) => need.has(o))) {
      keep[i] = true;
      for (const inp of nodes[i].inputs) if (inp !== '') need.add(inp);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

/** A NodeProto with its value names mapped and its name prefixed (an empty name stays empty). */
export function encodeNode(n: OnnxNode, rename: (value: string) => string, namePrefix: string): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i === '' ? '' : rename(i));
  for (const o of n.outputs) w.string(2, o === '' ? '' : rename(o));
  if (n.name !== '') w.string(3, namePrefix + n.name);
  w.string(4, n.opType);
  for (const r of n.rest) w.bytes(r.field, r.bytes);
  return w.finish();
}

/**
 * The message with a new name: protobuf keeps the last value of a non-repeated field, so appending the name field
 * renames it without decoding the rest (TensorProto name is field 8, ValueInfoProto name field 1).
 */
export function renamed(raw: Uint8Array, field: number, name: string): Uint8Array {
  const tail = new ProtoWriter().string(field, name).finish();
  const out = new Uint8Array(raw.length + tail.length);
  out.set(raw, 0);
  out.set(tail, raw.length);
  return out;
}

export interface ModelOut {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  functions: Uint8Array[];
  metadata: Record<string, string>;
  graphName: string;
  /** Encoded NodeProto, in topological order. */
  nodes: Uint8Array[];
  /** Encoded TensorProto. */
  initializers: Uint8Array[];
  /** Encoded ValueInfoProto. */
  inputs: Uint8Array[];
  outputs: Uint8Array[];
}

export function writeOnnxModel(m: ModelOut): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, 's2_policy');
  w.string(3, '0.1.0');
  w.message(7, (g) => {
    for (const n of m.nodes) g.bytes(1, n);
    g.string(2, m.graphName);
    for (const i of m.initializers) g.bytes(5, i);
    for (const i of m.inputs) g.bytes(11, i);
    for (const o of m.outputs) g.bytes(12, o);
  });
  for (const o of m.opsets) {
    w.message(8, (e) => {
      e.string(1, o.domain);
      e.int(2, o.version);
    });
  }
  for (const [key, value] of Object.entries(m.metadata)) {
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  for (const f of m.functions) w.bytes(25, f);
  return w.finish();
}
