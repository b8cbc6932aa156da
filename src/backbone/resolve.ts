// Completes S² options for a given backbone and input shape: checks the crops fit the model and fills the output
// layout and prefix-token count from detection where the user did not set them.
import { planScales, type S2Options, type S2Plan } from '../s2/plan.js';
import type { Layout } from './layout.js';
import type { OnnxBackbone } from './onnx-backbone.js';

export interface ResolvedS2 {
  options: S2Options;
  plan: S2Plan;
  /** The detected layout per crop size ('h×w'). */
  layouts: Map<string, Layout>;
}

export async function resolveS2Options(backbone: OnnxBackbone, options: S2Options, inputDims: readonly number[]): Promise<ResolvedS2> {
  const first = planScales(inputDims, options);
  backbone.assertPlanFits(first);
  const layouts = new Map<string, Layout>();
  for (const s of first.scales) {
    const key = `${s.cropSize[0]}×${s.cropSize[1]}`;
    if (!layouts.has(key)) layouts.set(key, await backbone.layoutFor(s.cropSize, { outputShape: options.outputShape, numPrefixToken: options.numPrefixToken }));
  }
  const layout = [...layouts.values()][0];
  const resolved: S2Options = {
    ...options,
    outputShape: options.outputShape ?? layout.outputShape,
    numPrefixToken: options.numPrefixToken ?? layout.numPrefixToken,
  };
  return { options: resolved, plan: planScales(inputDims, resolved), layouts };
}
