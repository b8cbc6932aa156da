// Raw sensor_msgs/Image decoding: every encoding against its rgb8 twin, step padding, byte order, YUV and Bayer
// values checked by hand, and one rejection per reason.
import { strict as assert } from 'node:assert';
import type { ImageMsg } from '../src/msgs/types.js';
import { decodeImage, type DecodedImage } from '../src/image/decode.js';
import { encodeImage, bayerChannel } from '../src/image/encode.js';
import { RAW_ENCODINGS } from '../src/image/encodings.js';
import { ingest } from '../src/image/ingest.js';
import { NORMALIZATION_PRESETS } from '../src/image/normalize.js';
import { BufferPool } from '../src/image/pool.js';

const BIG = 1 << 24;

/** Deterministic bytes covering 0..255 with no spatial structure (catches channel and offset mix-ups). */
function noiseRgb(w: number, h: number, seed = 1): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A smooth colour image: neighbouring pixels differ by a few levels (for YUV and Bayer, which interpolate). */
function smoothRgb(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[i] = Math.round(128 + 90 * Math.sin(0.11 * x + 0.05 * y));
      out[i + 1] = Math.round(128 + 90 * Math.cos(0.07 * x - 0.09 * y));
      out[i + 2] = Math.round(128 + 60 * Math.sin(0.06 * (x + y) + 1));
    }
  }
  return out;
}

function greyRgb(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) out.fill((i * 37 + (i >> 3)) & 255, i * 3, i * 3 + 3);
  return out;
}

function decoded(msg: ImageMsg, pool?: BufferPool): DecodedImage {
  const r = decodeImage(msg, BIG, pool);
  if (!r.ok) assert.fail(`${msg.encoding}: ${r.reason}: ${r.detail}`);
  return r.image;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function msgOf(encoding: string, width: number, height: number, step: number, data: Uint8Array | number[], is_bigendian: number | boolean = 0): ImageMsg {
  return { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: 'cam' }, width, height, step, encoding, is_bigendian, data };
}

describe('image decode: raw encodings', () => {
  const W = 10;
  const H = 6;
  const rgb = noiseRgb(W, H);

  it('rgb8 decodes to the source pixels, three 8-bit channels', () => {
    const img = decoded(encodeImage(rgb, W, H, 'rgb8'));
    assert.deepEqual([img.width, img.height, img.channels, img.depth], [W, H, 3, 8]);
    assert.deepEqual(Array.from(img.data), Array.from(rgb));
  });

  for (const enc of ['bgr8', 'rgba8', 'bgra8'] as const) {
    it(`${enc} decodes exactly to its rgb8 twin`, () => {
      const img = decoded(encodeImage(rgb, W, H, enc));
      assert.equal(img.channels, 3);
      assert.deepEqual(Array.from(img.data), Array.from(rgb));
    });
  }

  for (const enc of ['rgb16', 'bgr16', 'rgba16', 'bgra16'] as const) {
    for (const bigEndian of [false, true]) {
      it(`${enc} ${bigEndian ? 'big' : 'little'}-endian decodes to 257 × its rgb8 twin at 16 bits`, () => {
        const img = decoded(encodeImage(rgb, W, H, enc, { bigEndian }));
        assert.equal(img.depth, 16);
        assert.deepEqual(
          Array.from(img.data),
          Array.from(rgb, (v) => v * 257),
        );
      });
    }
  }

  it('mono8 decodes to one grey channel equal to the grey twin', () => {
    const g = greyRgb(W, H);
    const img = decoded(encodeImage(g, W, H, 'mono8'));
    assert.deepEqual([img.channels, img.depth], [1, 8]);
    assert.deepEqual(
      Array.from(img.data),
      Array.from({ length: W * H }, (_, i) => g[i * 3]),
    );
  });

  it('mono16 big-endian equals its little-endian twin, both 257 × grey', () => {
    const g = greyRgb(W, H);
    const le = decoded(encodeImage(g, W, H, 'mono16', { bigEndian: false }));
    const be = decoded(encodeImage(g, W, H, 'mono16', { bigEndian: true }));
    assert.equal(le.depth, 16);
    assert.deepEqual(Array.from(be.data), Array.from(le.data));
    assert.deepEqual(
      Array.from(le.data),
      Array.from({ length: W * H }, (_, i) => g[i * 3] * 257),
    );
  });

  it('mono16 keeps all 16 bits and honours is_bigendian given as a boolean', () => {
    // 0x1234 = 4660 is not a multiple of 257: an 8-bit path would lose it.
    const be = decodeImage(msgOf('mono16', 2, 1, 4, new Uint8Array([0x12, 0x34, 0xff, 0x01]), true), BIG);
    const le = decodeImage(msgOf('mono16', 2, 1, 4, new Uint8Array([0x34, 0x12, 0x01, 0xff]), false), BIG);
    assert.ok(be.ok && le.ok);
    assert.deepEqual(Array.from(be.image.data), [0x1234, 0xff01]);
    assert.deepEqual(Array.from(le.image.data), [0x1234, 0xff01]);
  });

  it('mono8 and mono16 ingest to the same tensor as their grey rgb8 twin', async () => {
    const g = greyRgb(W, H);
    const cfg = {
      crop: 'none' as const,
      resize: 'reference' as const,
      baseSize: [H, W] as [number, number],
      normalization: NORMALIZATION_PRESETS.imagenet,
      maxPixels: BIG,
    };
    const twin = await ingest(encodeImage(g, W, H, 'rgb8'), 'raw', cfg);
    const m8 = await ingest(encodeImage(g, W, H, 'mono8'), 'raw', cfg);
    const m16 = await ingest(encodeImage(g, W, H, 'mono16', { bigEndian: true }), 'raw', cfg);
    assert.ok(twin.ok && m8.ok && m16.ok);
    assert.deepEqual(Array.from(m8.base.data), Array.from(twin.base.data));
    assert.ok(maxDiff(m16.base.data, twin.base.data) < 1e-6);
  });

  it('a number[] data field decodes like the Uint8Array', () => {
    const msg = encodeImage(rgb, W, H, 'bgr8');
    const plain = { ...msg, data: Array.from(msg.data) };
    assert.deepEqual(Array.from(decoded(plain).data), Array.from(rgb));
  });
});

describe('image decode: step (row padding)', () => {
  const W = 6;
  const H = 5;
  const rgb = smoothRgb(W, H);
  for (const enc of RAW_ENCODINGS) {
    it(`${enc}: padded rows decode identically to tight rows`, () => {
      const tight = encodeImage(rgb, W, H, enc, { bigEndian: true });
      const padded = encodeImage(rgb, W, H, enc, { bigEndian: true, step: tight.step + 7, padByte: 0xee });
      assert.equal(padded.data.length, (tight.step + 7) * H);
      assert.deepEqual(Array.from(decoded(padded).data), Array.from(decoded(tight).data));
    });
  }
});

describe('image decode: yuv422 (UYVY) and yuv422_yuy2 (YUYV)', () => {
  // Expected RGB from BT.601 limited range, R = 1.164(Y−16) + 1.596(V−128), G = 1.164(Y−16) − 0.813(V−128) −
  // 0.391(U−128), B = 1.164(Y−16) + 2.018(U−128), rounded and clamped; computed in Python both in floating point
  // and in OpenCV's 20-bit fixed point (identical here). The last three are the BT.601 red, green and blue primaries.
  const cases: { y: [number, number]; u: number; v: number; rgb: [number, number, number][] }[] = [
    {
      y: [16, 235],
      u: 128,
      v: 128,
      rgb: [
        [0, 0, 0],
        [255, 255, 255],
      ],
    },
    {
      y: [100, 180],
      u: 90,
      v: 200,
      rgb: [
        [213, 54, 21],
        [255, 147, 114],
      ],
    },
    {
      y: [16, 16],
      u: 255,
      v: 255,
      rgb: [
        [203, 0, 255],
        [203, 0, 255],
      ],
    },
    {
      y: [81, 81],
      u: 90,
      v: 240,
      rgb: [
        [254, 0, 0],
        [254, 0, 0],
      ],
    },
    {
      y: [145, 145],
      u: 54,
      v: 34,
      rgb: [
        [0, 255, 1],
        [0, 255, 1],
      ],
    },
    {
      y: [41, 41],
      u: 240,
      v: 110,
      rgb: [
        [0, 0, 255],
        [0, 0, 255],
      ],
    },
  ];
  for (const c of cases) {
    it(`Y ${c.y.join('/')} U ${c.u} V ${c.v} → ${c.rgb.map((p) => p.join(',')).join(' | ')}`, () => {
      const uyvy = decodeImage(msgOf('yuv422', 2, 1, 4, new Uint8Array([c.u, c.y[0], c.v, c.y[1]])), BIG);
      const yuyv = decodeImage(msgOf('yuv422_yuy2', 2, 1, 4, new Uint8Array([c.y[0], c.u, c.y[1], c.v])), BIG);
      assert.ok(uyvy.ok && yuyv.ok);
      assert.deepEqual(Array.from(uyvy.image.data), c.rgb.flat());
      assert.deepEqual(Array.from(yuyv.image.data), c.rgb.flat());
    });
  }

  for (const enc of ['yuv422', 'yuv422_yuy2'] as const) {
    it(`${enc} round trip of arbitrary colours, equal within each pixel pair, is within 2 levels (quantisation only)`, () => {
      const W = 64;
      const H = 8;
      const rgb = noiseRgb(W, H, 7);
      for (let i = 0; i < W * H; i += 2) rgb.copyWithin((i + 1) * 3, i * 3, i * 3 + 3);
      const img = decoded(encodeImage(rgb, W, H, enc));
      assert.ok(maxDiff(img.data, rgb) <= 2, `max diff ${maxDiff(img.data, rgb)}`);
    });
  }

  // Round trip through our RGB→YUV 4:2:2 encoder (OpenCV's BT.601 limited-range formula). Colour is quantised to
  // 219 luma / 224 chroma levels and chroma is shared by a pixel pair, so on a smooth image each channel is within
  // 4 levels of the original and 1.5 on average.
  for (const enc of ['yuv422', 'yuv422_yuy2'] as const) {
    it(`${enc} round trip of a smooth image is within 4 levels (mean ≤ 1.5)`, () => {
      const W = 40;
      const H = 12;
      const rgb = smoothRgb(W, H);
      const img = decoded(encodeImage(rgb, W, H, enc));
      let sum = 0;
      for (let i = 0; i < rgb.length; i++) sum += Math.abs(img.data[i] - rgb[i]);
      assert.ok(maxDiff(img.data, rgb) <= 4, `max diff ${maxDiff(img.data, rgb)}`);
      assert.ok(sum / rgb.length <= 1.5, `mean diff ${sum / rgb.length}`);
    });
  }
});

describe('image decode: Bayer (bilinear demosaic)', () => {
  it('bayer_rggb8 values on a 4×4 mosaic, by hand', () => {
    // Mosaic (row by row), RGGB: R at even row/even column, B at odd/odd, G elsewhere.
    // prettier-ignore
    const m = [
      10, 200, 30, 220,
      90, 40, 70, 60,
      50, 180, 20, 160,
      100, 80, 110, 0,
    ];
    const img = decoded(msgOf('bayer_rggb8', 4, 4, 4, new Uint8Array(m)));
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3));
    // (1,1) blue site: G = (90+70+200+180+2)>>2 = 135, R = (10+30+50+20+2)>>2 = 28.
    assert.deepEqual(px(1, 1), [28, 135, 40]);
    // (2,1) green on a blue row: R from above/below = (30+20+1)>>1 = 25, B from left/right = (40+60+1)>>1 = 50.
    assert.deepEqual(px(2, 1), [25, 70, 50]);
    // (1,2) green on a red row: R from left/right = (50+20+1)>>1 = 35, B from above/below = (40+80+1)>>1 = 60.
    assert.deepEqual(px(1, 2), [35, 180, 60]);
    // (0,0) red corner, borders mirrored without repeating the edge: G = (200+200+90+90+2)>>2 = 145, B = 40.
    assert.deepEqual(px(0, 0), [10, 145, 40]);
    // (3,3) blue corner: G = (110+110+160+160+2)>>2 = 135, R = 20 (all four diagonals mirror to (2,2)).
    assert.deepEqual(px(3, 3), [20, 135, 0]);
  });

  // Bilinear interpolation is exact for linear ramps, so inside the frame a smooth image comes back within rounding
  // (1 level). On the one-pixel border the mirrored neighbour stands in for the missing one, so the error there is
  // bounded by the image's change over two pixels.
  for (const enc of ['bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8'] as const) {
    it(`${enc}: exact at the sampled sites, within 1 level inside a smooth image`, () => {
      const W = 31;
      const H = 17;
      const rgb = smoothRgb(W, H);
      const img = decoded(encodeImage(rgb, W, H, enc));
      const pattern = enc.slice(6, 10) as 'rggb';
      let inner = 0;
      let border = 0;
      let twoPixelChange = 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const i = (y * W + x) * 3;
          const c = bayerChannel(pattern, x, y);
          assert.equal(img.data[i + c], rgb[i + c], `${enc} site (${x},${y}) channel ${c}`);
          const onBorder = x === 0 || y === 0 || x === W - 1 || y === H - 1;
          for (let k = 0; k < 3; k++) {
            const e = Math.abs(img.data[i + k] - rgb[i + k]);
            if (onBorder) border = Math.max(border, e);
            else inner = Math.max(inner, e);
            if (x + 2 < W) twoPixelChange = Math.max(twoPixelChange, Math.abs(rgb[i + 6 + k] - rgb[i + k]));
            if (y + 2 < H) twoPixelChange = Math.max(twoPixelChange, Math.abs(rgb[i + 6 * W + k] - rgb[i + k]));
          }
        }
      }
      assert.ok(inner <= 1, `interior error ${inner}`);
      assert.ok(border <= twoPixelChange, `border error ${border} > two-pixel change ${twoPixelChange}`);
    });
  }

  it('a pool gives the same result and reuses the output buffer once it is returned', () => {
    const pool = new BufferPool();
    const msg = encodeImage(smoothRgb(8, 6), 8, 6, 'bayer_grbg8');
    const a = decoded(msg, pool);
    const copy = Array.from(a.data);
    pool.give(a.data);
    const b = decoded(msg, pool);
    assert.equal(b.data, a.data);
    assert.deepEqual(Array.from(b.data), copy);
    assert.deepEqual(Array.from(decoded(msg).data), copy);
  });
});

describe('image decode: rejections', () => {
  const good = encodeImage(noiseRgb(4, 2), 4, 2, 'rgb8');
  const cases: { name: string; msg: ImageMsg; maxPixels?: number; reason: string; field: string }[] = [
    { name: 'negative width', msg: { ...good, width: -4 }, reason: 'bad_field', field: 'width' },
    { name: 'fractional height', msg: { ...good, height: 1.5 }, reason: 'bad_field', field: 'height' },
    { name: 'NaN step', msg: { ...good, step: NaN }, reason: 'bad_field', field: 'step' },
    { name: 'encoding not a string', msg: { ...good, encoding: 5 as unknown as string }, reason: 'bad_field', field: 'encoding' },
    { name: 'data not bytes', msg: { ...good, data: 'abc' as unknown as Uint8Array }, reason: 'bad_field', field: 'data' },
    { name: 'zero width', msg: { ...good, width: 0 }, reason: 'zero_size', field: 'width' },
    { name: 'zero height', msg: { ...good, height: 0 }, reason: 'zero_size', field: 'height' },
    { name: 'unknown encoding', msg: { ...good, encoding: '8UC3' }, reason: 'unknown_encoding', field: 'encoding' },
    { name: 'encoding with wrong case', msg: { ...good, encoding: 'RGB8' }, reason: 'unknown_encoding', field: 'encoding' },
    { name: 'more pixels than maxPixels', msg: good, maxPixels: 7, reason: 'too_large', field: 'maxPixels' },
    { name: 'odd width for yuv422', msg: msgOf('yuv422', 3, 1, 6, new Uint8Array(6)), reason: 'odd_width', field: 'width' },
    { name: 'odd width for yuv422_yuy2', msg: msgOf('yuv422_yuy2', 5, 2, 10, new Uint8Array(20)), reason: 'odd_width', field: 'width' },
    { name: 'Bayer one row high', msg: msgOf('bayer_rggb8', 4, 1, 4, new Uint8Array(4)), reason: 'too_small', field: 'height' },
    { name: 'step below width × bytes per pixel', msg: { ...good, step: 11 }, reason: 'bad_step', field: 'step' },
    { name: 'mono16 step below 2 × width', msg: msgOf('mono16', 4, 1, 7, new Uint8Array(8)), reason: 'bad_step', field: 'step' },
    { name: 'data shorter than step × height', msg: { ...good, data: good.data.subarray(0, 23) }, reason: 'short_data', field: 'data' },
    { name: 'padded step needs more data', msg: { ...good, step: 13 }, reason: 'short_data', field: 'data' },
    { name: 'array data with a non-byte', msg: { ...good, data: [...Array.from(good.data).slice(0, 23), 256] }, reason: 'bad_data', field: 'data[23]' },
    { name: 'array data with a fraction', msg: { ...good, data: [0.5, ...Array.from(good.data).slice(1)] }, reason: 'bad_data', field: 'data[0]' },
    { name: 'maxPixels not positive', msg: good, maxPixels: 0, reason: 'bad_config', field: 'maxPixels' },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.reason}, naming ${c.field}`, () => {
      const r = decodeImage(c.msg, c.maxPixels ?? BIG);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.reason, c.reason, r.detail);
      assert.ok(r.detail.includes(c.field), `detail '${r.detail}' should name ${c.field}`);
      assert.ok(!r.detail.includes('\n'));
    });
  }

  it('a null message is rejected, not thrown', () => {
    const r = decodeImage(null as unknown as ImageMsg, BIG);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'bad_field');
  });

  it('longer data than step × height is accepted (the tail is ignored)', () => {
    const longer = { ...good, data: new Uint8Array([...good.data, 1, 2, 3]) };
    assert.deepEqual(Array.from(decoded(longer).data), Array.from(decoded(good).data));
  });

  it('every listed encoding is accepted', () => {
    for (const enc of RAW_ENCODINGS) assert.ok(decodeImage(encodeImage(smoothRgb(4, 2), 4, 2, enc), BIG).ok, enc);
  });
});
