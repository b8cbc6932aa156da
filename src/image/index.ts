// Image ingestion: sensor_msgs Image / CompressedImage → normalised 1×3×H×W float tensors for S² (public surface).
export { REJECT_REASONS, isRejection, type RejectReason, type Rejection } from './reject.js';
export { ENCODINGS, RAW_ENCODINGS, type RawEncoding, type BayerPattern } from './encodings.js';
export { decodeImage, type DecodedImage, type DecodeResult } from './decode.js';
export { decodeCompressed, parseCompressedFormat, type CompressedFormat, type Compression } from './compressed.js';
export { planGeometry, sizeKeepingAspect, type CropMode, type GeometryPlan, type Rect } from './geometry.js';
export { RESIZE_KERNEL, resizeToPlan, toTensor } from './tensorize.js';
export {
  ingest,
  createIngester,
  parseIngestConfig,
  checkIngestConfig,
  ingestConfigSchema,
  MAX_OUTPUT_SIDE,
  type IngestConfig,
  type IngestResult,
  type Ingester,
  type MessageKind,
  type ResizeMode,
} from './ingest.js';
export { BufferPool } from './pool.js';
export { encodeImage, rgbPairToYuv422, bayerChannel, type EncodeOptions } from './encode.js';
export { NORMALIZATION_PRESETS, presetNormalization, parseTriple, type Normalization } from './normalize.js';
export { loadStillImage, type StillSize } from './still.js';
