// Detecting a backbone's output layout ('bnc' tokens or 'bchw' maps) and its prefix-token count from a probe output.
import type { OutputShape } from '../s2/plan.js';

export interface Layout {
  outputShape: OutputShape;
  numPrefixToken: number;
  /** Channels per crop output. */
  channels: number;
  /** Spatial feature grid of one crop. */
  grid: [number, number];
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Largest prefix-token count considered when guessing (CLS + registers; DINOv2-reg has 5). */
const MAX_GUESSED_PREFIX = 16;

/**
 * Prefix-token counts P for which N − P tokens form a square g×g grid that tiles a cropSide crop with an integer
 * patch of at least 4 pixels, with fewer prefix than grid tokens: the readings of N tokens a ViT-like model can have.
 */
export function prefixCandidates(numTokens: number, cropSide: number): number[] {
  const out: number[] = [];
  for (let p = 0; p <= Math.min(MAX_GUESSED_PREFIX, numTokens - 1); p++) {
    const g = Math.round(Math.sqrt(numTokens - p));
    if (g * g !== numTokens - p) continue;
    if (cropSide % g !== 0 || cropSide / g < 4) continue;
    if (p >= g * g) continue; // prefix tokens are a few extras, never as many as the grid
    out.push(p);
  }
  return out;
}

/**
 * A B×H×W×C (channels-last) output read as B×C×H×W gives a grid whose aspect does not follow the crop's (a 7×256
 * "grid" from a square crop) while H×W read channels-last does: refused, as no reading of it would be right.
 */
function refuseChannelsLast(outDims: readonly number[], cropSize: readonly [number, number]): void {
  const [, d1, d2, d3] = outDims;
  const crop = cropSize[0] / cropSize[1];
  const off = (a: number) => Math.abs(Math.log(a / crop));
  if (off(d2 / d3) > Math.log(1.5) && off(d1 / d2) < Math.log(1.2) && d3 > d1) {
    throw new LayoutError(
      `feature output [${outDims.join(', ')}] looks channels-last (B×H×W×C: a ${d1}×${d2} grid of ${d3} channels) for a ${cropSize[0]}×${cropSize[1]} crop; ` +
        `read as B×C×H×W it would be a ${d2}×${d3} grid: export the model with B×C×H×W output (e.g. x.permute(0, 3, 1, 2))`,
    );
  }
}

/**
 * Reads the layout from one crop's output dims (batch axis included). Overrides win; a prefix count from the
 * model's metadata comes next; otherwise it is inferred and must be unambiguous.
 */
export function inferLayout(
  outDims: readonly number[],
  cropSize: readonly [number, number],
  overrides: { outputShape?: OutputShape; numPrefixToken?: number; metadataPrefix?: number } = {},
): Layout {
  const shape: OutputShape | undefined = overrides.outputShape ?? (outDims.length === 3 ? 'bnc' : outDims.length === 4 ? 'bchw' : undefined);
  if (shape === undefined) {
    throw new LayoutError(`feature output has rank ${outDims.length} [${outDims.join(', ')}]; expected B×N×C tokens or B×C×h×w maps`);
  }
  if (shape === 'bchw') {
    if (outDims.length !== 4) throw new LayoutError(`output shape bchw needs a rank-4 output, the model gives [${outDims.join(', ')}]`);
    refuseChannelsLast(outDims, cropSize);
    if ((overrides.numPrefixToken ?? 0) > 0) throw new LayoutError('prefix tokens only exist in bnc (token) outputs');
    return { outputShape: 'bchw', numPrefixToken: 0, channels: outDims[1], grid: [outDims[2], outDims[3]] };
  }
  if (outDims.length !== 3) throw new LayoutError(`output shape bnc needs a rank-3 output, the model gives [${outDims.join(', ')}]`);
  const [, n, c] = outDims;
  let p = overrides.numPrefixToken ?? overrides.metadataPrefix;
  if (p === undefined) {
    const candidates = cropSize[0] === cropSize[1] ? prefixCandidates(n, cropSize[0]) : [];
    if (candidates.length !== 1) {
      throw new LayoutError(
        `cannot tell the prefix-token count from ${n} tokens for a ${cropSize[0]}×${cropSize[1]} crop` +
          (candidates.length > 1 ? ` (could be ${candidates.join(' or ')})` : '') +
          '; pass --num-prefix-token',
      );
    }
    p = candidates[0];
  }
  const g = Math.round(Math.sqrt(n - p));
  if (p < 0 || p >= n || g * g !== n - p) {
    throw new LayoutError(`${n} tokens with ${p} prefix tokens leave ${n - p} spatial tokens, not a square grid`);
  }
  return { outputShape: 'bnc', numPrefixToken: p, channels: c, grid: [g, g] };
}
