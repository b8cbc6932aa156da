// Reading an ONNX model file: decoded once, with tensors kept in external data files (what PyTorch's exporter writes
// for large models) inlined as raw_data, so that the model can be handed to a runtime as bytes.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { DataLocation, decodeModel, encodeModel, OnnxFormatError, type ModelProto, type TensorProto } from './model.js';

export class ModelFile {
  private encoded?: Uint8Array;

  constructor(
    readonly file: string,
    readonly model: ModelProto,
    private readonly fileBytes: Uint8Array,
    /** How many tensors were read from external data files. */
    readonly inlined: number,
  ) {}

  /** The model as bytes with every tensor inside: the file as it is, or re-encoded when data was inlined. */
  bytes(): Uint8Array {
    if (this.inlined === 0) return this.fileBytes;
    this.encoded ??= encodeModel(this.model);
    return this.encoded;
  }
}

/** Reads, decodes and inlines a model file; one-line errors name the file (and the tensor at fault). */
export function readModelFile(file: string): ModelFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new OnnxFormatError(`${file}: cannot read the model file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const model = decodeModel(bytes, file);
  return new ModelFile(file, model, bytes, inlineExternalData(model, dirname(file), file));
}

/** The main graph's tensors with a label for messages: initializers, then tensors in node attributes (Constant). */
function tensorsOf(model: ModelProto): { tensor: TensorProto; label: string }[] {
  const out: { tensor: TensorProto; label: string }[] = [];
  const graph = model.graph;
  if (graph === undefined) return out;
  for (const t of graph.initializer) out.push({ tensor: t, label: `initializer '${t.name}'` });
  for (const n of graph.node) {
    for (const a of n.attribute) {
      const label = `node '${n.name || n.opType}' attribute '${a.name}'`;
      if (a.t !== undefined) out.push({ tensor: a.t, label });
      for (const t of a.tensors) out.push({ tensor: t, label });
    }
  }
  return out;
}

/**
 * Reads every tensor of the main graph stored in an external data file into the model (raw_data, as a view of the
 * file's bytes) and drops its external_data entries; returns how many. `dir` is the model file's folder, which
 * locations are relative to. Each external file is read once.
 */
export function inlineExternalData(model: ModelProto, dir: string, file: string): number {
  const files = new Map<string, Uint8Array>();
  let count = 0;
  for (const { tensor, label } of tensorsOf(model)) {
    if (tensor.dataLocation !== DataLocation.EXTERNAL) continue;
    const ext = Object.fromEntries(tensor.externalData.map((e) => [e.key, e.value]));
    const location = ext.location as string | undefined;
    if (location === undefined || isAbsolute(location) || normalize(location).startsWith('..')) {
      throw new OnnxFormatError(`${file}: ${label} has external data location '${location ?? ''}'; expected a file next to the model`);
    }
    let data = files.get(location);
    if (!data) {
      const path = join(dir, location);
      try {
        data = readFileSync(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new OnnxFormatError(`${file}: external data file ${path} of ${label} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
      }
      files.set(location, data);
    }
    const offset = Number(ext.offset ?? 0);
    const length = ext.length === undefined ? data.length - offset : Number(ext.length);
    if (!(offset >= 0 && length >= 0 && offset + length <= data.length)) {
      throw new OnnxFormatError(`${file}: ${label} reads bytes ${offset}…${offset + length} of ${location}, which has ${data.length}`);
    }
    tensor.rawData = data.subarray(offset, offset + length) as Uint8Array<ArrayBuffer>;
    tensor.externalData = [];
    delete (tensor as Partial<TensorProto>).dataLocation;
    count++;
  }
  return count;
}
