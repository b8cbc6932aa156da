// Models with external data, made from project models: every initializer's bytes moved to `<file>.data`, as
// PyTorch's exporter writes large models (onnx.save_model(..., save_as_external_data=True)).
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DataLocation, decodeModel, encodeModel, metadataProps, type TensorProto } from '../../src/onnx/model.js';

/** Writes `model` to `file` with its initializers' data in `${file}.data`; returns how many tensors moved. */
export function toExternalData(model: Uint8Array, file: string): number {
  const m = decodeModel(model, 'model');
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of m.graph?.initializer ?? []) {
    if (!Object.hasOwn(t, 'rawData')) continue;
    const data = t.rawData;
    delete (t as Partial<TensorProto>).rawData;
    t.externalData = metadataProps({ location: `${basename(file)}.data`, offset: String(offset), length: String(data.length) });
    t.dataLocation = DataLocation.EXTERNAL;
    chunks.push(data);
    offset += data.length;
  }
  writeFileSync(file, encodeModel(m));
  writeFileSync(`${file}.data`, Buffer.concat(chunks));
  return chunks.length;
}
