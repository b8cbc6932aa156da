// Per-channel normalisation presets and parsing of mean/std triples.
import { UserError } from '../errors.js';

export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

export const NORMALIZATION_PRESETS: Record<string, Normalization> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  clip: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
  none: { mean: [0, 0, 0], std: [1, 1, 1] },
};

/** Parses 'a,b,c' into three finite numbers; `what` names the flag or key in the error. */
export function parseTriple(text: string, what: string): [number, number, number] {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) throw new UserError(`${what} must be three comma-separated numbers, got '${text}'`);
  return [parts[0], parts[1], parts[2]];
}

export function presetNormalization(name: string, what: string): Normalization {
  const n = NORMALIZATION_PRESETS[name];
  if (!n) throw new UserError(`${what} must be one of ${Object.keys(NORMALIZATION_PRESETS).join(', ')}, got '${name}'`);
  return n;
}
