// Why a frame was not turned into a tensor: a closed set of reason codes plus a one-line detail naming the field.

export const REJECT_REASONS = [
  /** A field has the wrong type or is not a non-negative integer (width, height, step, data, encoding, format). */
  'bad_field',
  /** width or height is 0. */
  'zero_size',
  /** The raw encoding (or the original encoding named by a compressed format) is not one we decode. */
  'unknown_encoding',
  /** The CompressedImage format string names no compression we decode (jpeg, png). */
  'unknown_format',
  /** width × height exceeds the configured maxPixels. */
  'too_large',
  /** yuv422 / yuv422_yuy2 with an odd width (a macropixel covers two pixels). */
  'odd_width',
  /** A Bayer mosaic smaller than one 2×2 cell. */
  'too_small',
  /** step is smaller than width × bytes per pixel. */
  'bad_step',
  /** data is shorter than step × height. */
  'short_data',
  /** data is a plain array holding something other than bytes 0..255. */
  'bad_data',
  /** The compressed bytes cannot be decoded, or are not the compression the format names. */
  'undecodable',
  /** The ingest configuration is invalid (only from the one-shot ingest(); createIngester throws instead). */
  'bad_config',
  /** An unexpected exception inside this module: our bug, with the message in the detail. */
  'internal',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  ok: false;
  reason: RejectReason;
  /** One line naming the field at fault and what was expected. */
  detail: string;
}

export function reject(reason: RejectReason, detail: string): Rejection {
  return { ok: false, reason, detail };
}

/** Whether a value is a Rejection (as opposed to a result or pixel buffer). */
export function isRejection(x: unknown): x is Rejection {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}

/** The first line of an error's message, for details that must stay one line. */
export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0].trim();
}
