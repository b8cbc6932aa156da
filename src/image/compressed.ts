// Decodes a sensor_msgs/CompressedImage (JPEG or PNG, plain or image_transport-style format) with sharp.
//
// What image_transport's compressed plugin does (compressed_image_transport, publisher and subscriber):
// - format is '<original encoding>; <jpeg|png> compressed <target>', or plain 'jpeg'/'png' from older or other
//   producers. Colour images are converted to a BGR cv::Mat (target 'bgr8', or 'bgr16' for 16-bit PNG) and written
//   with cv::imencode, which treats a 3-channel Mat as BGR: the file itself is a standard, colour-correct JPEG/PNG,
//   so sharp's RGB decode is already right and 'bgr8' needs no swap.
// - Grey and other non-colour encodings: JPEG converts to 'mono8' first; PNG stores the raw samples unconverted
//   (target empty): mono16 becomes a 16-bit grey PNG (kept at 16 bits here) and a Bayer mosaic a grey PNG of the
//   mosaic, which we demosaic like the raw encoding. yuv422 PNGs (packed YUV stored as grey+alpha) are rejected.
// - The subscriber swaps red and blue when a colour image's format has a ';' but no 'compressed bgr' (the layout of
//   pre-2013 publishers, which encoded an RGB Mat as if it were BGR). We do the same, so a stream that looks right
//   in rqt_image_view looks right here.
// - cv::imdecode applies EXIF orientation by default; so do we (autoOrient).
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import type { CompressedImageMsg } from '../msgs/types.js';
import { checkMaxPixels, decodeImage, messageBytes, show, type DecodeResult } from './decode.js';
import { ENCODINGS, RAW_ENCODINGS, encodingInfo, isColorEncoding, type RawEncoding } from './encodings.js';
import type { GeometryPlan } from './geometry.js';
import type { BufferPool } from './pool.js';
import { firstLine, isRejection, reject, type Rejection } from './reject.js';
import { RESIZE_KERNEL } from './tensorize.js';

export type Compression = 'jpeg' | 'png';

export interface CompressedFormat {
  compression: Compression;
  /** The encoding of the image before compression, when the format string names it. */
  original?: RawEncoding;
  /** What image_transport converted to before compressing ('bgr8', 'mono8', …); '' when the raw samples were stored. */
  target?: string;
}

const PLAIN: Record<string, Compression> = { jpeg: 'jpeg', jpg: 'jpeg', png: 'png' };

/** Parses a CompressedImage format string: 'jpeg', 'png', or '<encoding>; <jpeg|png> compressed [<target>]'. */
export function parseCompressedFormat(format: string): CompressedFormat | Rejection {
  const f = format.trim();
  const semi = f.indexOf(';');
  if (semi < 0) {
    const compression = PLAIN[f.toLowerCase()];
    if (!compression) return reject('unknown_format', `format ${show(format)} is not jpeg or png (nor '<encoding>; jpeg|png compressed <target>')`);
    return { compression };
  }
  const original = f.slice(0, semi).trim();
  const rest = f.slice(semi + 1).trim();
  const m = /^(jpeg|png)\s+compressed(?:\s+(\S+))?$/i.exec(rest);
  if (!m) {
    const why = /compressedDepth/i.test(rest) ? ' (compressedDepth carries depth images, which this module does not ingest)' : '';
    return reject('unknown_format', `format ${show(format)}: '${rest.slice(0, 30)}' is not 'jpeg compressed' or 'png compressed'${why}`);
  }
  if (!encodingInfo(original)) {
    return reject(
      'unknown_encoding',
      `format ${show(format)} names original encoding ${show(original)}, which is not supported (supported: ${RAW_ENCODINGS.join(', ')})`,
    );
  }
  return { compression: m[1].toLowerCase() as Compression, original: original as RawEncoding, target: m[2] ?? '' };
}

/** CompressedImage → pixels. Never throws; rejects before decoding when the header says the image is too large. */
export async function decodeCompressed(msg: CompressedImageMsg, maxPixels: number, pool?: BufferPool): Promise<DecodeResult> {
  try {
    const opened = await openCompressed(msg, maxPixels);
    return isRejection(opened) ? opened : await decodeOpened(opened, maxPixels, pool);
  } catch (e) {
    return reject('internal', `decodeCompressed: ${firstLine(e)}`);
  }
}

/** A compressed image whose fields and header have been checked, not yet decoded. */
export interface OpenedCompressed {
  /** The sharp input (EXIF orientation applied); use once. */
  img: Sharp;
  format: CompressedFormat;
  /** Size after orientation. */
  width: number;
  height: number;
  channels: 1 | 3;
  depth: 8 | 16;
  /** The PNG holds a raw Bayer mosaic, to be demosaiced after a full decode. */
  mosaic: boolean;
  /** Red and blue must be exchanged after decoding (image_transport's legacy colour layout). */
  swapRedBlue: boolean;
}

/** Checks a CompressedImage's fields, format string and image header (size against maxPixels) without decoding pixels. */
export async function openCompressed(msg: CompressedImageMsg, maxPixels: number): Promise<OpenedCompressed | Rejection> {
  const bad = checkMaxPixels(maxPixels);
  if (bad) return bad;
  if (typeof msg !== 'object' || msg === null) return reject('bad_field', `compressed image message must be an object, got ${show(msg)}`);
  if (typeof msg.format !== 'string') return reject('bad_field', `format must be a string, got ${show(msg.format)}`);
  const fmt = parseCompressedFormat(msg.format);
  if ('ok' in fmt) return fmt;
  const bytes = messageBytes(msg.data, Array.isArray(msg.data) ? msg.data.length : 0);
  if (!(bytes instanceof Uint8Array)) return bytes;
  if (bytes.length === 0) return reject('undecodable', 'data is empty');
  const origLayout = fmt.original ? ENCODINGS[fmt.original].layout : undefined;
  const rawSamples = fmt.compression === 'png' && fmt.target === '';
  if (rawSamples && origLayout?.kind === 'yuv422') {
    return reject('unknown_format', `format ${show(msg.format)}: PNG of raw packed YUV (stored as grey+alpha) is not supported`);
  }

  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const img = sharp(input, { failOn: 'error', autoOrient: true });
  let meta: Metadata;
  try {
    meta = await img.metadata();
  } catch (e) {
    return reject('undecodable', `data is not a decodable ${fmt.compression} image (${firstLine(e)})`);
  }
  if (meta.format !== fmt.compression) return reject('undecodable', `format says ${fmt.compression} but data is ${meta.format}`);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!(width > 0 && height > 0)) return reject('undecodable', `${fmt.compression} header has size ${width}×${height}`);
  if (width * height > maxPixels) return reject('too_large', `${fmt.compression} image ${width}×${height} exceeds maxPixels ${maxPixels}`);
  const channels = meta.channels <= 2 ? 1 : 3;
  const depth = meta.depth === 'ushort' ? 16 : 8;
  const mosaic = rawSamples && origLayout?.kind === 'bayer' && channels === 1 && depth === 8;
  const swap = fmt.original !== undefined && isColorEncoding(fmt.original) && !fmt.target?.startsWith('bgr') && channels === 3;
  return { img, format: fmt, width, height, channels, depth, mosaic, swapRedBlue: swap };
}

/** Decodes an opened image in full. */
export async function decodeOpened(o: OpenedCompressed, maxPixels: number, pool: BufferPool | undefined): Promise<DecodeResult> {
  const px = await runPipeline(o, o.img, o.width, o.height);
  if (isRejection(px)) return px;
  if (o.mosaic && px instanceof Uint8Array) {
    // The PNG holds the mosaic itself: demosaic it as the raw encoding would be.
    const msg = {
      header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
      width: o.width,
      height: o.height,
      encoding: o.format.original ?? '',
      is_bigendian: 0,
      step: o.width,
      data: px,
    };
    return decodeImage(msg, maxPixels, pool);
  }
  const base = { width: o.width, height: o.height, channels: o.channels };
  return { ok: true, image: px instanceof Uint16Array ? { ...base, depth: 16, data: px } : { ...base, depth: 8, data: px } };
}

/**
 * Decodes, crops and resizes an opened image in one sharp pipeline (faster than decoding in full first), giving
 * plan.content-sized pixels. The crop is always applied before the resize, which keeps libjpeg's shrink-on-load off:
 * the result is the same as decoding in full and resizing the raw pixels. Not for mosaic PNGs (check `mosaic`).
 */
export async function compressedPixels(o: OpenedCompressed, plan: GeometryPlan): Promise<Uint8Array | Uint16Array | Rejection> {
  let p = o.img.extract(plan.source);
  if (plan.resized) p = p.resize(plan.content.width, plan.content.height, { fit: 'fill', kernel: RESIZE_KERNEL });
  return runPipeline(o, p, plan.content.width, plan.content.height);
}

async function runPipeline(o: OpenedCompressed, p: Sharp, width: number, height: number): Promise<Uint8Array | Uint16Array | Rejection> {
  const deep = o.depth === 16;
  p = o.channels === 1 ? p.toColourspace(deep ? 'grey16' : 'b-w') : p.removeAlpha().toColourspace(deep ? 'rgb16' : 'srgb');
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await p.raw({ depth: deep ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    return reject('undecodable', `${o.format.compression} data cannot be decoded (${firstLine(e)})`);
  }
  const { info } = out;
  if (info.channels !== o.channels || info.width !== width || info.height !== height) {
    return reject('internal', `sharp decoded ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${o.channels}`);
  }
  const px = deep ? toUint16(out.data) : out.data;
  if (o.swapRedBlue) swapRedBlue(px);
  return px;
}

/** sharp's 16-bit raw output is in host byte order; view it as Uint16Array (copying only if misaligned). */
function toUint16(buf: Buffer): Uint16Array {
  if (buf.byteOffset % 2 === 0) return new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
  const copy = new Uint8Array(buf);
  return new Uint16Array(copy.buffer, 0, copy.byteLength / 2);
}

function swapRedBlue(px: Uint8Array | Uint16Array): void {
  for (let i = 0; i < px.length; i += 3) {
    const r = px[i];
    px[i] = px[i + 2];
    px[i + 2] = r;
  }
}
