// `compileS2`: one ONNX model computing what multiscaleForward computes for a backbone and S² options — the S²
// graph of s2-graph.ts with the backbone's graph inlined once per crop size (weights shared between copies).
import { basename } from 'node:path';
import { OnnxBackbone, ModelError, type BackboneOptions } from '../backbone/onnx-backbone.js';
import { resolveS2Options } from '../backbone/resolve.js';
import type { S2Options, S2Plan } from '../s2/plan.js';
import type { Dim } from '../onnx/builder.js';
import { readModelFile } from '../onnx/file.js';
import {
  copyOf,
  encodeModel,
  metadataProps,
  PRODUCER,
  pruneTo,
  renamedNode,
  renamedTensor,
  subgraphNode,
  type GraphProto,
  type NodeProto,
  type OperatorSetIdProto,
} from '../onnx/model.js';
import { BACKBONE_PLACEHOLDER, buildS2Graph, COMPILED_INPUT, COMPILED_OUTPUT, scaleInputName, type CompiledResize } from './s2-graph.js';

/** Metadata key holding the compiled S² description (JSON); its presence marks a compiled model. */
export const COMPILED_KEY = 's2.compiled';

/** Lowest default-domain opset of a backbone the compiler takes; the compiled model has max(17, backbone's). */
const MIN_BACKBONE_OPSET = 13;

export interface CompiledInfo {
  version: 1;
  backbone: string;
  inputSize: [number, number];
  channels: number;
  options: S2Options;
  scales: { size: [number, number]; numSplit: [number, number]; splitSize: [number, number]; cropSize: [number, number] }[];
  splitMode: S2Plan['splitMode'] | null;
  maxSplitSize: number;
  outputShape: 'bnc' | 'bchw';
  numPrefixToken: number;
  resizeOutputToIdx: number;
  /** The first input: `image`, or with resize 'native' `image_scale0`. */
  input: string;
  output: string;
  outputDims: Dim[];
  backboneCalls: number;
  /** Where the scales come from (absent in models compiled before per-scale inputs existed: 'reference'). */
  resize?: CompiledResize;
  /** Every input with its dims (absent in older models: `input` [batch, channels, …inputSize]). */
  inputs?: { name: string; dims: Dim[] }[];
}

/** The inputs a compiled model takes, for older descriptions too. */
export function compiledInputs(info: CompiledInfo): { name: string; dims: Dim[] }[] {
  return info.inputs ?? [{ name: info.input, dims: ['batch', info.channels, info.inputSize[0], info.inputSize[1]] }];
}

/** 'reference' (one base image input) or 'native' (one input per scale). */
export const compiledResize = (info: CompiledInfo): CompiledResize => info.resize ?? 'reference';

export interface CompiledModel {
  bytes: Uint8Array;
  info: CompiledInfo;
  plan: S2Plan;
}

/** Reads the compiled description of a model's metadata, or undefined for any other model. */
export function compiledInfo(metadata: Record<string, string>, file: string): CompiledInfo | undefined {
  const text = metadata[COMPILED_KEY];
  if (text === undefined) return undefined;
  try {
    const info = JSON.parse(text) as CompiledInfo;
    if (info.version !== 1 || !Array.isArray(info.inputSize)) throw new Error('unknown version');
    return info;
  } catch {
    throw new ModelError(`${file}: metadata ${COMPILED_KEY} is not a compiled S² description this version reads`);
  }
}

/**
 * Compiles a loaded backbone (its file is read again for the graph) for base images of inputSize; with resize
 * 'native' the model takes each scale's image (at the size the plan gives it for that base size) instead.
 */
export async function compileLoaded(
  backbone: OnnxBackbone,
  options: S2Options,
  inputSize: [number, number],
  resize: CompiledResize = 'reference',
): Promise<CompiledModel> {
  const file = backbone.file;
  if (compiledInfo(backbone.metadata, file)) throw new ModelError(`${file}: is already a compiled S² model; compile the plain backbone`);
  if (options.maxBatch !== undefined) throw new ModelError('compile: maxBatch cannot be compiled (the graph runs all crops of one size in one pass)');
  if (backbone.fixedBatch !== undefined) {
    throw new ModelError(
      `${file}: the backbone has a fixed batch of ${backbone.fixedBatch}; compile needs a dynamic batch axis (re-export it with a dynamic batch)`,
    );
  }
  const channels = backbone.inputChannels ?? 3;
  const { options: resolved, plan, layouts } = await resolveS2Options(backbone, options, [1, channels, inputSize[0], inputSize[1]]);

  const model = readModelFile(file).model;
  const bb = model.graph as GraphProto;
  const sub = subgraphNode(bb);
  // Subgraphs (If, Loop, Scan) read outer values by name; renaming them is not supported.
  if (sub) throw new ModelError(`${file}: node '${sub.name || sub.opType}' (${sub.opType}) has a subgraph, which compile does not support`);
  if (bb.sparseInitializer.length > 0) throw new ModelError(`${file}: the graph has sparse initializers, which compile does not support`);
  const defaultDomain = (o: OperatorSetIdProto) => o.domain === '' || o.domain === 'ai.onnx';
  const opset = Number(model.opsetImport.find(defaultDomain)?.version ?? 17);
  if (opset < MIN_BACKBONE_OPSET)
    throw new ModelError(`${file}: the backbone uses opset ${opset}; compile needs opset ≥ ${MIN_BACKBONE_OPSET} (re-export at opset 17)`);

  const s2 = buildS2Graph(plan, layouts, resize);
  const ownModel = s2.graph.toModel();
  const own = ownModel.graph as GraphProto;

  const initNames = new Set(bb.initializer.map((i) => i.name));
  const kept = pruneTo(bb.node, backbone.outputName);
  const used = new Set<string>();
  for (const n of kept) for (const i of n.input) if (initNames.has(i)) used.add(i);
  const weightName = (n: string) => `backbone/${n}`;

  const nodes: NodeProto[] = [];
  let call = 0;
  for (const n of own.node) {
    if (n.opType !== BACKBONE_PLACEHOLDER) {
      nodes.push(n);
      continue;
    }
    const c = s2.calls[call++];
    const scope = `backbone@${c.key.replace('×', 'x')}/`;
    const rename = (v: string): string =>
      v === backbone.inputName ? c.cropsName : v === backbone.outputName ? c.outputName : initNames.has(v) ? weightName(v) : scope + v;
    // Unnamed nodes get a name too, so that tools (quantization, profiling) can select the backbone's nodes.
    kept.forEach((k, idx) => nodes.push(renamedNode(k, rename, scope + (k.name === '' ? `${k.opType}_unnamed_${idx}` : k.name))));
  }
  const initializers = [...own.initializer, ...bb.initializer.filter((i) => used.has(i.name)).map((i) => renamedTensor(i, weightName(i.name)))];

  const backboneKeys = Object.fromEntries(Object.entries(backbone.metadata).filter(([k]) => k.startsWith('s2.')));
  const info: CompiledInfo = {
    version: 1,
    backbone: basename(file),
    inputSize,
    channels,
    options: resolved,
    scales: plan.scales.map((s) => ({ size: s.size, numSplit: s.numSplit, splitSize: s.splitSize, cropSize: s.cropSize })),
    splitMode: plan.splitMode ?? null,
    maxSplitSize: plan.maxSplitSize,
    outputShape: plan.outputShape,
    numPrefixToken: plan.numPrefixToken,
    resizeOutputToIdx: plan.resizeOutputToIdx,
    input: resize === 'native' ? scaleInputName(0) : COMPILED_INPUT,
    output: COMPILED_OUTPUT,
    outputDims: s2.outputDims,
    backboneCalls: s2.calls.length,
    resize,
    inputs:
      resize === 'native'
        ? plan.scales.map((s, i) => ({ name: scaleInputName(i), dims: ['batch', channels, s.size[0], s.size[1]] }))
        : [{ name: COMPILED_INPUT, dims: ['batch', channels, inputSize[0], inputSize[1]] }],
  };
  const opsetImport = [copyOf(ownModel.opsetImport[0], { version: BigInt(Math.max(17, opset)) }), ...model.opsetImport.filter((o) => !defaultDomain(o))];
  // value_info is dropped: shapes are re-inferred, and the backbone's batch dimension is not ours.
  const compiled = copyOf(ownModel, {
    irVersion: model.irVersion > 8n ? model.irVersion : 8n,
    producerName: PRODUCER.name,
    producerVersion: PRODUCER.version,
    graph: copyOf(own, { node: nodes, name: `s2_${bb.name || 'backbone'}`, initializer: initializers }),
    opsetImport,
    metadataProps: metadataProps({ ...backboneKeys, [COMPILED_KEY]: JSON.stringify(info) }),
    functions: model.functions,
  });
  const bytes = encodeModel(compiled);
  return { bytes, info, plan };
}

/** Loads the backbone, compiles it, and releases it. */
export async function compileS2(
  file: string,
  options: S2Options,
  inputSize: [number, number],
  backboneOptions: BackboneOptions = {},
  resize: CompiledResize = 'reference',
): Promise<CompiledModel> {
  const backbone = await OnnxBackbone.load(file, { ...backboneOptions, outputShape: options.outputShape, numPrefixToken: options.numPrefixToken });
  try {
    return await compileLoaded(backbone, options, inputSize, resize);
  } finally {
    await backbone.release();
  }
}
