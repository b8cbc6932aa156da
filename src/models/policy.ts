// A linear policy head as ONNX: [features ‖ state] · W + b, reshaped to an action chunk 1×T×D.
import { OnnxGraph } from '../onnx/builder.js';

export interface LinearPolicyOptions {
  featureDim: number;
  /** 0 for a policy without a state input. */
  stateDim: number;
  chunk: number;
  actionDim: number;
  /** (featureDim + stateDim) × (chunk·actionDim), row-major. */
  weight: Float32Array;
  /** chunk·actionDim */
  bias: Float32Array;
}

export function buildLinearPolicy(o: LinearPolicyOptions): OnnxGraph {
  const inDim = o.featureDim + o.stateDim;
  const outDim = o.chunk * o.actionDim;
  const g = new OnnxGraph('s2_linear_policy');
  g.metadata['s2.policy'] = 'linear';
  const features = g.input('features', ['batch', o.featureDim]);
  const x = o.stateDim > 0 ? g.op('Concat', [features, g.input('state', ['batch', o.stateDim])], { axis: 1 }) : features;
  const w = g.weight('head.weight', [inDim, outDim], o.weight);
  const b = g.weight('head.bias', [outDim], o.bias);
  const y = g.op('Add', [g.op('MatMul', [x, w]), b]);
  g.op('Reshape', [y, g.ints([-1, o.chunk, o.actionDim])], {}, 'actions');
  g.output('actions', ['batch', o.chunk, o.actionDim]);
  return g;
}
