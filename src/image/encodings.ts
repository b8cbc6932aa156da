// The sensor_msgs/Image encodings this module decodes, with the byte layout each one implies.

/** Interleaved samples, one or more channels of 8 or 16 bits; alpha is dropped, grey stays one channel. */
export interface PackedLayout {
  kind: 'packed';
  /** Channels stored per pixel (1, 3 or 4). */
  srcChannels: number;
  bytesPerSample: 1 | 2;
  /** Channels after decoding: 1 for grey, 3 for RGB. */
  outChannels: 1 | 3;
  /** Sample index of red, green and blue within a pixel (grey: all 0). */
  order: readonly [number, number, number];
}

/** 4:2:2 YUV, two pixels per four-byte macropixel; byte offsets of the samples inside the macropixel. */
export interface YuvLayout {
  kind: 'yuv422';
  y0: number;
  u: number;
  v: number;
}

export type BayerPattern = 'rggb' | 'bggr' | 'gbrg' | 'grbg';

/** One 8-bit sample per pixel under a 2×2 colour filter; `pattern` reads the cell row by row. */
export interface BayerLayout {
  kind: 'bayer';
  pattern: BayerPattern;
}

export type Layout = PackedLayout | YuvLayout | BayerLayout;

export interface EncodingInfo {
  bytesPerPixel: number;
  layout: Layout;
}

const packed = (srcChannels: number, bytesPerSample: 1 | 2, order: [number, number, number]): EncodingInfo => ({
  bytesPerPixel: srcChannels * bytesPerSample,
  layout: { kind: 'packed', srcChannels, bytesPerSample, outChannels: srcChannels === 1 ? 1 : 3, order },
});

export const ENCODINGS = {
  rgb8: packed(3, 1, [0, 1, 2]),
  bgr8: packed(3, 1, [2, 1, 0]),
  rgba8: packed(4, 1, [0, 1, 2]),
  bgra8: packed(4, 1, [2, 1, 0]),
  rgb16: packed(3, 2, [0, 1, 2]),
  bgr16: packed(3, 2, [2, 1, 0]),
  rgba16: packed(4, 2, [0, 1, 2]),
  bgra16: packed(4, 2, [2, 1, 0]),
  mono8: packed(1, 1, [0, 0, 0]),
  mono16: packed(1, 2, [0, 0, 0]),
  // ROS 'yuv422' is UYVY (U Y0 V Y1); 'yuv422_yuy2' is YUYV (Y0 U Y1 V).
  yuv422: { bytesPerPixel: 2, layout: { kind: 'yuv422', y0: 1, u: 0, v: 2 } },
  yuv422_yuy2: { bytesPerPixel: 2, layout: { kind: 'yuv422', y0: 0, u: 1, v: 3 } },
  bayer_rggb8: { bytesPerPixel: 1, layout: { kind: 'bayer', pattern: 'rggb' } },
  bayer_bggr8: { bytesPerPixel: 1, layout: { kind: 'bayer', pattern: 'bggr' } },
  bayer_gbrg8: { bytesPerPixel: 1, layout: { kind: 'bayer', pattern: 'gbrg' } },
  bayer_grbg8: { bytesPerPixel: 1, layout: { kind: 'bayer', pattern: 'grbg' } },
} as const satisfies Record<string, EncodingInfo>;

export type RawEncoding = keyof typeof ENCODINGS;

export const RAW_ENCODINGS = Object.keys(ENCODINGS) as RawEncoding[];

export function encodingInfo(encoding: string): EncodingInfo | undefined {
  return Object.prototype.hasOwnProperty.call(ENCODINGS, encoding) ? ENCODINGS[encoding as RawEncoding] : undefined;
}

/** Colour encodings in image_transport's sense (enc::isColor): their compressed form may carry a BGR/RGB note. */
export function isColorEncoding(encoding: RawEncoding): boolean {
  const l = ENCODINGS[encoding].layout;
  return l.kind === 'packed' && l.outChannels === 3;
}
