// Image / CompressedImage message → decoded pixels → crop or pad → sharp resize → normalised 1×3×H×W tensors.
import { z } from 'zod';
import { UserError } from '../errors.js';
import type { CompressedImageMsg, ImageMsg } from '../msgs/types.js';
import type { Tensor } from '../s2/tensor.js';
import { compressedPixels, decodeOpened, openCompressed, type OpenedCompressed } from './compressed.js';
import { decodeImage, type DecodeResult, type DecodedImage } from './decode.js';
import { planGeometry, type CropMode } from './geometry.js';
import type { Normalization } from './normalize.js';
import { BufferPool } from './pool.js';
import { firstLine, isRejection, reject, type Rejection } from './reject.js';
import { resizeToPlan, toTensor } from './tensorize.js';

export type ResizeMode = 'reference' | 'native';
export type MessageKind = 'raw' | 'compressed';

export interface IngestConfig {
  /** 'center': centre crop to the base size's aspect (square for a square base); 'pad': letterbox; 'none': stretch. */
  crop: CropMode;
  /**
   * 'reference': one tensor at baseSize (S² interpolates every scale from it, as the Python reference does when fed
   * the base image). 'native': also one tensor per scaleSizes entry, each resized directly from the full frame.
   */
  resize: ResizeMode;
  /** [height, width] of the base tensor. */
  baseSize: [number, number];
  /** [height, width] per S² scale; required with resize 'native', not allowed with 'reference'. */
  scaleSizes?: [number, number][];
  normalization: Normalization;
  /** Frames with more pixels than this are rejected ('too_large') before any pixel is decoded. */
  maxPixels: number;
}

export type IngestResult =
  | {
      ok: true;
      /** 1×3×baseSize tensor. */
      base: Tensor;
      /** With resize 'native': one 1×3×H×W tensor per scaleSizes entry, in order. */
      scales?: Tensor[];
      /** Size of the decoded frame. */
      width: number;
      height: number;
    }
  | Rejection;

/** Largest output side accepted in a configuration; larger sizes are almost surely a typo. */
export const MAX_OUTPUT_SIDE = 16384;

const side = z.number().int().positive().max(MAX_OUTPUT_SIDE);
const size = z.tuple([side, side]);
const finite = z.number().finite();
const stdValue = z.number().finite().positive();

export const ingestConfigSchema = z
  .strictObject({
    crop: z.enum(['center', 'pad', 'none']),
    resize: z.enum(['reference', 'native']),
    baseSize: size,
    scaleSizes: z.array(size).min(1).optional(),
    normalization: z.strictObject({ mean: z.tuple([finite, finite, finite]), std: z.tuple([stdValue, stdValue, stdValue]) }),
    maxPixels: z.number().int().positive(),
  })
  .refine((c) => c.resize !== 'native' || c.scaleSizes !== undefined, { message: "is required with resize 'native'", path: ['scaleSizes'] })
  .refine((c) => c.resize !== 'reference' || c.scaleSizes === undefined, {
    message: "is only used with resize 'native' (with 'reference' S² interpolates the scales from the base)",
    path: ['scaleSizes'],
  });

/** Validates a configuration; the error names the first offending key, e.g. "image: baseSize.0: …". */
export function checkIngestConfig(value: unknown, what = 'image ingest config'): IngestConfig | string {
  const r = ingestConfigSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  return `${what}: ${path}: ${issue.message}`;
}

/** Validates a configuration read from a file or flags; throws a one-line UserError naming the key. */
export function parseIngestConfig(value: unknown, what?: string): IngestConfig {
  const c = checkIngestConfig(value, what);
  if (typeof c === 'string') throw new UserError(c);
  return c;
}

export interface Ingester {
  readonly config: IngestConfig;
  ingest(msg: ImageMsg, kind: 'raw'): Promise<IngestResult>;
  ingest(msg: CompressedImageMsg, kind: 'compressed'): Promise<IngestResult>;
}

/**
 * An ingest function bound to a validated configuration (throws UserError if invalid) that reuses its decode
 * buffers across frames of the same size. Frames may be ingested concurrently. Its ingest() never throws.
 */
export function createIngester(config: IngestConfig): Ingester {
  const cfg = parseIngestConfig(config);
  const pool = new BufferPool();
  return {
    config: cfg,
    ingest: (msg: ImageMsg | CompressedImageMsg, kind: MessageKind) => run(msg, kind, cfg, pool),
  };
}

/** One-shot ingest: validates the configuration on every call ('bad_config' if invalid) and reuses nothing. Never throws. */
export function ingest(msg: ImageMsg, kind: 'raw', config: IngestConfig): Promise<IngestResult>;
export function ingest(msg: CompressedImageMsg, kind: 'compressed', config: IngestConfig): Promise<IngestResult>;
export async function ingest(msg: ImageMsg | CompressedImageMsg, kind: MessageKind, config: IngestConfig): Promise<IngestResult> {
  const cfg = checkIngestConfig(config);
  if (typeof cfg === 'string') return reject('bad_config', cfg);
  return run(msg, kind, cfg);
}

async function run(msg: ImageMsg | CompressedImageMsg, kind: MessageKind, cfg: IngestConfig, pool?: BufferPool): Promise<IngestResult> {
  try {
    let decoded: DecodeResult;
    if (kind === 'raw') decoded = decodeImage(msg as ImageMsg, cfg.maxPixels, pool);
    else if (kind === 'compressed') {
      const opened = await openCompressed(msg as CompressedImageMsg, cfg.maxPixels);
      if (isRejection(opened)) return opened;
      // One output: decode, crop and resize in a single sharp pipeline. Several: decode once, resize each.
      if (cfg.resize === 'reference' && !opened.mosaic) return await renderCompressed(opened, cfg);
      decoded = await decodeOpened(opened, cfg.maxPixels, pool);
    } else return reject('bad_field', `kind must be 'raw' or 'compressed', got '${String(kind)}'`);
    if (!decoded.ok) return decoded;
    const img = decoded.image;
    try {
      const sizes = cfg.resize === 'native' && cfg.scaleSizes ? [cfg.baseSize, ...cfg.scaleSizes] : [cfg.baseSize];
      // Each distinct size is rendered once from the full frame, all in parallel; a repeated size (a scale equal to
      // the base) gets a copy, so every tensor handed out owns its buffer.
      const rendered = new Map<string, Promise<Tensor>>();
      const tensors = await Promise.all(
        sizes.map(async (s) => {
          const k = `${s[0]}x${s[1]}`;
          const pending = rendered.get(k);
          if (!pending) {
            const t = render(img, cfg.crop, s, cfg.normalization);
            rendered.set(k, t);
            return t;
          }
          const t = await pending;
          return { dims: [...t.dims], data: t.data.slice() };
        }),
      );
      const [base, ...scales] = tensors;
      return cfg.resize === 'native'
        ? { ok: true, base, scales, width: img.width, height: img.height }
        : { ok: true, base, width: img.width, height: img.height };
    } finally {
      pool?.give(img.data);
    }
  } catch (e) {
    return reject('internal', `ingest: ${firstLine(e)}`);
  }
}

async function renderCompressed(opened: OpenedCompressed, cfg: IngestConfig): Promise<IngestResult> {
  const plan = planGeometry(opened.width, opened.height, cfg.crop, cfg.baseSize);
  const px = await compressedPixels(opened, plan);
  if (isRejection(px)) return px;
  const base = toTensor(px, opened.channels, opened.depth, plan.content, plan.out, cfg.normalization);
  return { ok: true, base, width: opened.width, height: opened.height };
}

async function render(img: DecodedImage, crop: CropMode, size: readonly [number, number], norm: Normalization): Promise<Tensor> {
  const plan = planGeometry(img.width, img.height, crop, size);
  const px = await resizeToPlan(img, plan);
  return toTensor(px, img.channels, img.depth, plan.content, plan.out, norm);
}
