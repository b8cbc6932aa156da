// What a model is and what S² would do with it: inputs, outputs, metadata, the detected layout of one crop, and for
// given S² options the plan (scales, crops, backbone calls) and the output's shape; a compiled model's built-in plan.
import { OnnxBackbone, type BackboneOptions } from '../backbone/onnx-backbone.js';
import type { Layout } from '../backbone/layout.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { COMPILED_KEY, compiledInfo, type CompiledInfo } from '../compile/compile.js';
import { QUANTIZATION_KEY, quantizationInfo, quantizationWarning, type QuantizationInfo } from '../compile/quantization.js';
import { UserError } from '../errors.js';
import { countCalls, S2OptionError, type S2Options, type S2Plan } from '../s2/plan.js';

export interface IoDescription {
  name: string;
  type: string;
  dims: (number | string)[];
}

export interface InspectOptions {
  model: string;
  backbone?: BackboneOptions;
  /** S² options; without scales or imgSizes only the layout of one crop is probed. */
  s2: S2Options;
  /** The base image size to plan for (default the model's input size, else the first image size). */
  inputSize?: [number, number];
  batch?: number;
}

export interface S2Description {
  batch: number;
  inputSize: [number, number];
  plan: S2Plan;
  /** Layout per crop size ('32×32'). */
  layouts: Map<string, Layout>;
  outputShape: 'bnc' | 'bchw';
  /** Grid of the pooled output and its channels (all scales). */
  grid: [number, number];
  channels: number;
  crops: number;
  calls: number;
}

export interface ModelReport {
  model: string;
  inputs: IoDescription[];
  outputs: IoDescription[];
  inputName: string;
  outputName: string;
  fixedBatch?: number;
  fixedSize?: [number, number];
  nativeSize?: number;
  /** Metadata, without the compiled and INT8 descriptions (those are `compiled` and `quantization`). */
  metadata: Record<string, string>;
  compiled?: CompiledInfo;
  /** An INT8 compiled model's description: what was quantized and the accuracy gate's figures. */
  quantization?: QuantizationInfo;
  /** Why the INT8 record does not vouch for the model's accuracy (quantizationWarning), when it does not. */
  quantizationWarning?: string;
  /** Without S² options: the layout of one crop of `crop`, when the size is known. */
  layout?: { crop: [number, number]; layout: Layout };
  s2?: S2Description;
}

/** Loads the model and describes it (and, with S² options, the S² plan for it). */
export async function inspectModel(o: InspectOptions): Promise<ModelReport> {
  const backbone = await OnnxBackbone.load(o.model, o.backbone ?? {});
  try {
    const metadata = Object.fromEntries(Object.entries(backbone.metadata).filter(([k]) => k !== COMPILED_KEY && k !== QUANTIZATION_KEY));
    const report: ModelReport = {
      model: o.model,
      inputs: backbone.inputs,
      outputs: backbone.outputs,
      inputName: backbone.inputName,
      outputName: backbone.outputName,
      fixedBatch: backbone.fixedBatch,
      fixedSize: backbone.fixedSize,
      nativeSize: backbone.nativeSize,
      metadata,
    };
    const compiled = compiledInfo(backbone.metadata, o.model);
    if (compiled) {
      const given = Object.entries(o.s2).find(([, v]) => v !== undefined);
      // The option's name is spelled as the user wrote it by the caller (renameS2Options).
      if (given) throw new S2OptionError(`inspect: ${o.model} is a compiled S² model (its S² options are built in); drop ${given[0]}`);
      const quantization = quantizationInfo(backbone.metadata, o.model);
      return { ...report, compiled, quantization, quantizationWarning: quantization && quantizationWarning(quantization, o.model) };
    }
    let size = o.inputSize ?? (backbone.nativeSize !== undefined ? [backbone.nativeSize, backbone.nativeSize] : undefined);
    if (o.s2.scales === undefined && o.s2.imgSizes === undefined) {
      if (size === undefined) return report;
      return { ...report, layout: { crop: size, layout: await backbone.layoutFor(size) } };
    }
    if (size === undefined) {
      const first = o.s2.imgSizes?.[0];
      if (first === undefined) throw new UserError('inspect: the model has no fixed input size; pass --input-size');
      size = typeof first === 'number' ? [first, first] : [first[0], first[1]];
    }
    const batch = o.batch ?? 1;
    const { options: resolved, plan, layouts } = await resolveS2Options(backbone, o.s2, [batch, backbone.inputChannels ?? 3, size[0], size[1]]);
    const { crops, calls } = countCalls(plan, backbone.fixedBatch);
    // The output size comes from the per-crop grids: merge, optional pad crop, then the chosen scale's grid.
    const grids = plan.scales.map((s) => {
      const l = layouts.get(`${s.cropSize[0]}×${s.cropSize[1]}`);
      if (!l) throw new Error('layout missing for a planned crop size');
      let gh = l.grid[0] * s.numSplit[0];
      let gw = l.grid[1] * s.numSplit[1];
      if (plan.splitMode === 'pad') {
        gh = Math.ceil((s.size[0] / s.splitSize[0]) * gh);
        gw = Math.ceil((s.size[1] / s.splitSize[1]) * gw);
      }
      return { gh, gw, channels: l.channels };
    });
    const g = grids[plan.resizeOutputToIdx];
    const s2: S2Description = {
      batch,
      inputSize: size,
      plan,
      layouts,
      outputShape: resolved.outputShape ?? 'bnc',
      grid: [g.gh, g.gw],
      channels: grids.reduce((n, x) => n + x.channels, 0),
      crops,
      calls,
    };
    return { ...report, s2 };
  } finally {
    await backbone.release();
  }
}
