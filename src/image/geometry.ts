// Pure size planning: which part of a frame is used and where it lands in an output of a given [height, width].

export type CropMode = 'center' | 'pad' | 'none';

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface GeometryPlan {
  /** The region of the frame that is resized (the whole frame except for 'center'). */
  source: Rect;
  /** Where the resized region lands in the output (the whole output except for 'pad'). */
  content: Rect;
  /** Output [height, width]. */
  out: [number, number];
  /** Whether the source region must be resized to fit the content rectangle (false: a plain copy or crop). */
  resized: boolean;
}

/**
 * Plans one output of size `out` = [height, width] from a width×height frame.
 * - 'center': the largest centred region of the frame with the output's aspect ratio (a square for a square output),
 *   resized to fill the output. The odd pixel of an uneven margin goes to the right/bottom (offset = floor(margin/2)).
 * - 'pad': the whole frame, resized to the largest size of the same aspect ratio that fits (rounded to whole pixels),
 *   centred the same way; the rest of the output is padding (see toTensor for its value).
 * - 'none': the whole frame resized to the output, whatever its aspect ratio: the caller chooses `out` (any-shape S²;
 *   sizeKeepingAspect gives one that keeps the frame's aspect).
 */
export function planGeometry(width: number, height: number, crop: CropMode, out: readonly [number, number]): GeometryPlan {
  const [outH, outW] = out;
  const whole: Rect = { left: 0, top: 0, width, height };
  const full: Rect = { left: 0, top: 0, width: outW, height: outH };
  let source = whole;
  let content = full;
  if (crop === 'center') {
    // Compare aspect ratios with integers so a square output gives an exact min-side square.
    let cw = width;
    let ch = height;
    if (width * outH > height * outW) cw = clamp(Math.round((height * outW) / outH), 1, width);
    else if (width * outH < height * outW) ch = clamp(Math.round((width * outH) / outW), 1, height);
    source = { left: Math.floor((width - cw) / 2), top: Math.floor((height - ch) / 2), width: cw, height: ch };
  } else if (crop === 'pad') {
    let cw = outW;
    let ch = outH;
    if (width * outH > height * outW) ch = clamp(Math.round((height * outW) / width), 1, outH);
    else if (width * outH < height * outW) cw = clamp(Math.round((width * outH) / height), 1, outW);
    content = { left: Math.floor((outW - cw) / 2), top: Math.floor((outH - ch) / 2), width: cw, height: ch };
  }
  const resized = source.width !== content.width || source.height !== content.height;
  return { source, content, out: [outH, outW], resized };
}

/** An output [height, width] with the frame's aspect ratio and the given shorter side, for crop 'none'. */
export function sizeKeepingAspect(width: number, height: number, shortSide: number): [number, number] {
  const s = shortSide / Math.min(width, height);
  return [Math.max(1, Math.round(height * s)), Math.max(1, Math.round(width * s))];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
