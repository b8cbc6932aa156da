// CompressedImage decoding: PNG exact and JPEG close to the raw frame, image_transport format strings, grey and
// 16-bit PNGs, Bayer PNGs, EXIF orientation, and one rejection per reason.
import { strict as assert } from 'node:assert';
import sharp from 'sharp';
import type { CompressedImageMsg } from '../src/msgs/types.js';
import { decodeCompressed, parseCompressedFormat } from '../src/image/compressed.js';
import { decodeImage, type DecodedImage } from '../src/image/decode.js';
import { encodeImage } from '../src/image/encode.js';

const BIG = 1 << 24;
const W = 48;
const H = 32;

function smoothRgb(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[i] = Math.round(128 + 100 * Math.sin(0.13 * x + 0.05 * y));
      out[i + 1] = Math.round(128 + 100 * Math.cos(0.09 * x - 0.11 * y));
      out[i + 2] = Math.round(20 + 4 * x + y);
    }
  }
  return out;
}

const rgb = smoothRgb(W, H);
const grey = Uint8Array.from({ length: W * H }, (_, i) => (i * 7 + (i >> 5)) & 255);

function raw8(data: Uint8Array, channels: 1 | 3, w = W, h = H) {
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width: w, height: h, channels } }).toColourspace(
    channels === 1 ? 'b-w' : 'srgb',
  );
}

function compressed(format: string, data: Uint8Array | number[]): CompressedImageMsg {
  return { header: { stamp: { sec: 1, nanosec: 2 }, frame_id: 'cam' }, format, data };
}

async function decodedOk(msg: CompressedImageMsg): Promise<DecodedImage> {
  const r = await decodeCompressed(msg, BIG);
  if (!r.ok) assert.fail(`${msg.format}: ${r.reason}: ${r.detail}`);
  return r.image;
}

function stats(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    max = Math.max(max, e);
    sum += e;
  }
  return { max, mean: sum / a.length };
}

/** The same pixels with red and blue exchanged. */
function swapped(px: Uint8Array): number[] {
  const out = Array.from(px);
  for (let i = 0; i < out.length; i += 3) [out[i], out[i + 2]] = [out[i + 2], out[i]];
  return out;
}

describe('image compressed: PNG and JPEG', () => {
  let png: Buffer;
  let jpeg: Buffer;
  before(async () => {
    png = await raw8(rgb, 3).png().toBuffer();
    jpeg = await raw8(rgb, 3).jpeg({ quality: 95 }).toBuffer();
  });

  for (const format of ['png', 'bgr8; png compressed bgr8', 'rgb8; png compressed bgr8', 'rgba8; png compressed bgr8', ' PNG ']) {
    it(`'${format}' decodes exactly to the raw RGB frame`, async () => {
      const img = await decodedOk(compressed(format, png));
      assert.deepEqual([img.width, img.height, img.channels, img.depth], [W, H, 3, 8]);
      assert.deepEqual(Array.from(img.data), Array.from(rgb));
    });
  }

  // JPEG at quality 95 with 4:2:0 chroma on a smooth image: a few levels of error, 1 on average.
  for (const format of ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8', 'bgr8; jpeg compressed bgr8', 'bgra8; jpeg compressed bgr8']) {
    it(`'${format}' decodes to the raw frame within 12 levels (mean ≤ 1.5)`, async () => {
      const img = await decodedOk(compressed(format, jpeg));
      assert.equal(img.channels, 3);
      const s = stats(img.data, rgb);
      assert.ok(s.max <= 12 && s.mean <= 1.5, `max ${s.max} mean ${s.mean.toFixed(3)}`);
    });
  }

  it("legacy colour formats without 'compressed bgr' get red and blue swapped, as image_transport's subscriber does", async () => {
    for (const format of ['rgb8; png compressed', 'rgb8; png compressed rgb8', 'bgr8; png compressed rgb8']) {
      const img = await decodedOk(compressed(format, png));
      assert.deepEqual(Array.from(img.data), swapped(rgb), format);
    }
  });

  it('a plain number[] data field decodes like a Uint8Array', async () => {
    const img = await decodedOk(compressed('png', Array.from(png)));
    assert.deepEqual(Array.from(img.data), Array.from(rgb));
  });
});

describe('image compressed: grey, 16-bit, Bayer', () => {
  it("'mono8; png compressed ' decodes exactly to one grey channel", async () => {
    const png = await raw8(grey, 1).png().toBuffer();
    const img = await decodedOk(compressed('mono8; png compressed ', png));
    assert.deepEqual([img.channels, img.depth], [1, 8]);
    assert.deepEqual(Array.from(img.data), Array.from(grey));
  });

  it("'mono8; jpeg compressed mono8' decodes to one grey channel close to the frame", async () => {
    const smooth = Uint8Array.from({ length: W * H }, (_, i) => 40 + (i % W) * 3 + Math.floor(i / W));
    const jpeg = await raw8(smooth, 1).jpeg({ quality: 95 }).toBuffer();
    const img = await decodedOk(compressed('mono8; jpeg compressed mono8', jpeg));
    assert.equal(img.channels, 1);
    const s = stats(img.data, smooth);
    assert.ok(s.max <= 4, `max ${s.max}`);
  });

  it("'mono16; png compressed ' keeps all 16 bits", async () => {
    const deep = Uint16Array.from({ length: W * H }, (_, i) => (i * 4099 + 13) & 0xffff);
    const png = await sharp(deep, { raw: { width: W, height: H, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
    const img = await decodedOk(compressed('mono16; png compressed ', png));
    assert.deepEqual([img.channels, img.depth], [1, 16]);
    assert.deepEqual(Array.from(img.data), Array.from(deep));
  });

  it("'rgb16; png compressed bgr16' keeps all 16 bits per channel", async () => {
    const deep = Uint16Array.from({ length: 4 * 2 * 3 }, (_, i) => (i * 2741 + 5) & 0xffff);
    const png = await sharp(deep, { raw: { width: 4, height: 2, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const img = await decodedOk(compressed('rgb16; png compressed bgr16', png));
    assert.deepEqual([img.channels, img.depth], [3, 16]);
    assert.deepEqual(Array.from(img.data), Array.from(deep));
  });

  it("'bayer_grbg8; png compressed ' (the raw mosaic) demosaics exactly like the raw Bayer image", async () => {
    const mosaic = encodeImage(rgb, W, H, 'bayer_grbg8');
    const png = await raw8(mosaic.data, 1).png().toBuffer();
    const fromPng = await decodedOk(compressed('bayer_grbg8; png compressed ', png));
    const fromRaw = decodeImage(mosaic, BIG);
    assert.ok(fromRaw.ok);
    assert.equal(fromPng.channels, 3);
    assert.deepEqual(Array.from(fromPng.data), Array.from(fromRaw.image.data));
  });

  it("'bayer_rggb8; jpeg compressed mono8' (image_transport debayers to grey first) decodes as grey", async () => {
    const jpeg = await raw8(grey, 1).jpeg().toBuffer();
    const img = await decodedOk(compressed('bayer_rggb8; jpeg compressed mono8', jpeg));
    assert.equal(img.channels, 1);
  });

  it('applies EXIF orientation as cv::imdecode does (orientation 6: rotate 90° clockwise)', async () => {
    // A 3×2 image whose top-left pixel is red, the rest black; after a 90° clockwise turn it is 2×3, red top-right.
    const px = new Uint8Array(3 * 2 * 3);
    px[0] = 255;
    const jpeg = await raw8(px, 3, 3, 2).withMetadata({ orientation: 6 }).png().toBuffer();
    const img = await decodedOk(compressed('png', jpeg));
    assert.deepEqual([img.width, img.height], [2, 3]);
    assert.deepEqual(Array.from(img.data.subarray(3, 6)), [255, 0, 0]);
    assert.deepEqual(Array.from(img.data.subarray(0, 3)), [0, 0, 0]);
  });
});

describe('image compressed: format strings', () => {
  const cases: [string, ReturnType<typeof parseCompressedFormat>][] = [
    ['jpeg', { compression: 'jpeg' }],
    ['png', { compression: 'png' }],
    ['rgb8; jpeg compressed bgr8', { compression: 'jpeg', original: 'rgb8', target: 'bgr8' }],
    ['bgr8; png compressed bgr8', { compression: 'png', original: 'bgr8', target: 'bgr8' }],
    ['mono16; png compressed ', { compression: 'png', original: 'mono16', target: '' }],
    ['mono8; jpeg compressed mono8', { compression: 'jpeg', original: 'mono8', target: 'mono8' }],
  ];
  for (const [format, expected] of cases) {
    it(`parses '${format}'`, () => assert.deepEqual(parseCompressedFormat(format), expected));
  }
});

describe('image compressed: rejections', () => {
  let png: Buffer;
  let jpeg: Buffer;
  before(async () => {
    png = await raw8(rgb, 3).png().toBuffer();
    jpeg = await raw8(rgb, 3).jpeg().toBuffer();
  });

  const expectReject = async (msg: CompressedImageMsg, reason: string, mentions: string, maxPixels = BIG) => {
    const r = await decodeCompressed(msg, maxPixels);
    assert.equal(r.ok, false, `${msg.format} should be rejected`);
    if (r.ok) return;
    assert.equal(r.reason, reason, r.detail);
    assert.ok(r.detail.toLowerCase().includes(mentions.toLowerCase()), `detail '${r.detail}' should mention ${mentions}`);
    assert.ok(!r.detail.includes('\n'));
  };

  it('format not a string → bad_field', () => expectReject(compressed(7 as unknown as string, png), 'bad_field', 'format'));
  it('data not bytes → bad_field', () => expectReject(compressed('png', {} as unknown as Uint8Array), 'bad_field', 'data'));
  it('array data with a non-byte → bad_data', () => expectReject(compressed('png', [137, 80, -1]), 'bad_data', 'data[2]'));
  it('tiff → unknown_format', () => expectReject(compressed('rgb8; tiff compressed bgr8', png), 'unknown_format', 'format'));
  it('h264 → unknown_format', () => expectReject(compressed('h264', png), 'unknown_format', 'format'));
  it('compressedDepth → unknown_format, saying why', () => expectReject(compressed('16UC1; compressedDepth png', png), 'unknown_format', 'depth'));
  it('yuv422 PNG (raw packed YUV) → unknown_format', () => expectReject(compressed('yuv422; png compressed ', png), 'unknown_format', 'yuv'));
  it('unknown original encoding → unknown_encoding', () => expectReject(compressed('8UC3; jpeg compressed bgr8', jpeg), 'unknown_encoding', '8UC3'));
  it('empty data → undecodable', () => expectReject(compressed('jpeg', new Uint8Array(0)), 'undecodable', 'empty'));
  it('random bytes → undecodable', () =>
    expectReject(
      compressed(
        'jpeg',
        Uint8Array.from({ length: 300 }, (_, i) => (i * 31) & 255),
      ),
      'undecodable',
      'jpeg',
    ));
  it('JPEG bytes under a png format → undecodable, naming both', () => expectReject(compressed('png', jpeg), 'undecodable', 'data is jpeg'));
  it('truncated JPEG → undecodable', () => expectReject(compressed('jpeg', jpeg.subarray(0, jpeg.length >> 1)), 'undecodable', 'jpeg'));
  it('truncated PNG → undecodable', () => expectReject(compressed('png', png.subarray(0, png.length - 40)), 'undecodable', 'png'));
  it('more pixels than maxPixels → too_large (from the header, before decoding)', () =>
    expectReject(compressed('png', png), 'too_large', 'maxPixels', W * H - 1));
  it('maxPixels not positive → bad_config', () => expectReject(compressed('png', png), 'bad_config', 'maxPixels', -1));
  it('a null message → bad_field', async () => {
    const r = await decodeCompressed(null as unknown as CompressedImageMsg, BIG);
    assert.equal(!r.ok && r.reason, 'bad_field');
  });
});
