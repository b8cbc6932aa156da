// Whole-buffer Zstandard for rosbag2's compressed recordings (a file compressed as a whole, or each message payload),
// through the WebAssembly zstd that @mcap/support already loads. rosbag2 compresses files in streaming mode, so their
// frames do not state the decompressed size; it is bounded here by walking the frame's block headers (RFC 8878).
import * as wasmZstd from '@foxglove/wasm-zstd';

const ZSTD_MAGIC = 0xfd2fb528;
const BLOCK_MAXIMUM = 128 * 1024;
/** The WebAssembly heap holds input and output at once and grows to 2 GiB; stay well below. */
export const ZSTD_MAX_DECOMPRESSED = 1536 * 1024 * 1024;

let loaded: Promise<boolean> | undefined;

async function ready(): Promise<void> {
  await (loaded ??= wasmZstd.isLoaded);
}

export class ZstdFormatError extends Error {
  override name = 'ZstdFormatError';
}

function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 0x1000000;
}

/** True when `data` starts with a zstd frame (or a skippable frame). */
export function isZstd(data: Uint8Array): boolean {
  if (data.byteLength < 4) return false;
  const magic = u32(data, 0);
  return magic === ZSTD_MAGIC || (magic >= 0x184d2a50 && magic <= 0x184d2a5f);
}

/**
 * An upper bound of the decompressed size of all frames in `data`: the frame content size where the header gives it,
 * else the sum over blocks (raw and RLE blocks state their size; a compressed block yields at most the block maximum).
 * A malformed frame is a ZstdFormatError naming the byte.
 */
export function decompressedBound(data: Uint8Array): number {
  let at = 0;
  let total = 0;
  while (at < data.byteLength) {
    if (data.byteLength - at < 4) throw new ZstdFormatError(`${data.byteLength - at} stray bytes at byte ${at} after the last frame`);
    const magic = u32(data, at);
    if (magic >= 0x184d2a50 && magic <= 0x184d2a5f) {
      if (data.byteLength - at < 8) throw new ZstdFormatError(`skippable frame at byte ${at} is cut short`);
      at += 8 + u32(data, at + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new ZstdFormatError(`no zstd frame magic at byte ${at}`);
    const frameStart = at;
    at += 4;
    const descriptor = data[at++];
    if (descriptor === undefined) throw new ZstdFormatError(`frame at byte ${frameStart} is cut short in its header`);
    const fcsFlag = descriptor >> 6;
    const singleSegment = (descriptor >> 5) & 1;
    const checksum = (descriptor >> 2) & 1;
    const dictFlag = descriptor & 3;
    if ((descriptor >> 3) & 1) throw new ZstdFormatError(`frame at byte ${frameStart} sets the reserved header bit`);
    let windowSize = Infinity;
    if (!singleSegment) {
      const w = data[at++];
      const exponent = w >> 3;
      const base = 2 ** (10 + exponent);
      windowSize = base + (base / 8) * (w & 7);
    }
    at += [0, 1, 2, 4][dictFlag];
    const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
    let contentSize: number | undefined;
    if (fcsBytes > 0) {
      if (at + fcsBytes > data.byteLength) throw new ZstdFormatError(`frame at byte ${frameStart} is cut short in its header`);
      let v = 0;
      for (let i = fcsBytes - 1; i >= 0; i--) v = v * 256 + data[at + i];
      contentSize = fcsBytes === 2 ? v + 256 : v;
      at += fcsBytes;
    }
    if (singleSegment && contentSize !== undefined) windowSize = contentSize;
    const blockMax = Math.min(windowSize, BLOCK_MAXIMUM);
    let blocks = 0;
    for (;;) {
      if (at + 3 > data.byteLength) throw new ZstdFormatError(`frame at byte ${frameStart} is cut short (block header at byte ${at})`);
      const header = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
      at += 3;
      const last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (type === 3) throw new ZstdFormatError(`reserved block type at byte ${at - 3}`);
      const stored = type === 1 ? 1 : size;
      if (at + stored > data.byteLength) throw new ZstdFormatError(`frame at byte ${frameStart} is cut short (block at byte ${at - 3} needs ${stored} bytes)`);
      at += stored;
      blocks += type === 2 ? blockMax : size;
      if (last) break;
    }
    if (checksum) at += 4;
    if (at > data.byteLength) throw new ZstdFormatError(`frame at byte ${frameStart} is cut short in its checksum`);
    total += contentSize ?? blocks;
  }
  return total;
}

/** Decompresses every frame of `data` into one buffer. */
export async function zstdDecompress(data: Uint8Array): Promise<Uint8Array> {
  await ready();
  return zstdDecompressLoaded(data);
}

/** zstdDecompress for callers that awaited zstdReady() once (per-message payloads). */
export function zstdDecompressLoaded(data: Uint8Array): Uint8Array {
  const bound = decompressedBound(data);
  if (bound > ZSTD_MAX_DECOMPRESSED) {
    throw new ZstdFormatError(`decompresses to up to ${bound} bytes, more than the ${ZSTD_MAX_DECOMPRESSED} this reader holds in memory`);
  }
  if (bound === 0) return new Uint8Array(0);
  try {
    const out = wasmZstd.decompress(data, bound);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new ZstdFormatError(`corrupt zstd data: ${(e as Error).message}`);
  }
}

export async function zstdReady(): Promise<void> {
  await ready();
}

/** One zstd frame (content size stated, checksum-free), as rosbag2 compresses a message. */
export async function zstdCompress(data: Uint8Array, level = 1): Promise<Uint8Array> {
  await ready();
  const out = wasmZstd.compress(data, level);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
