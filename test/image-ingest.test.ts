// Ingest: crop/pad/none geometry, resize alignment, reference vs native scales, normalisation values,
// configuration errors and buffer reuse.
import { strict as assert } from 'node:assert';
import sharp from 'sharp';
import { UserError } from '../src/errors.js';
import type { CompressedImageMsg, ImageMsg } from '../src/msgs/types.js';
import { decodeCompressed } from '../src/image/compressed.js';
import { encodeImage } from '../src/image/encode.js';
import { planGeometry, sizeKeepingAspect } from '../src/image/geometry.js';
import { createIngester, ingest, parseIngestConfig, type IngestConfig, type IngestResult } from '../src/image/ingest.js';
import { NORMALIZATION_PRESETS, type Normalization } from '../src/image/normalize.js';
import type { Tensor } from '../src/s2/tensor.js';

const NONE = NORMALIZATION_PRESETS.none;
const IMAGENET = NORMALIZATION_PRESETS.imagenet;

function config(over: Partial<IngestConfig> = {}): IngestConfig {
  return { crop: 'center', resize: 'reference', baseSize: [4, 4], normalization: NONE, maxPixels: 1 << 24, ...over };
}

function ok(r: IngestResult): Extract<IngestResult, { ok: true }> {
  if (!r.ok) assert.fail(`${r.reason}: ${r.detail}`);
  return r;
}

/** Value of channel c at (x, y) of a 1×3×H×W tensor. */
function at(t: Tensor, c: number, x: number, y: number): number {
  const [, , h, w] = t.dims;
  return t.data[c * h * w + y * w + x];
}

/** An image whose pixel (x, y) is (10x, 10y, 7): every position is recognisable. */
function positional(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.set([10 * x, 10 * y, 7], (y * w + x) * 3);
  return out;
}

function solid(w: number, h: number, rgb: [number, number, number]): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) out.set(rgb, i * 3);
  return out;
}

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol;

describe('image geometry: planGeometry', () => {
  it('centre crop of 640×480 to a square takes the middle 480×480', () => {
    const p = planGeometry(640, 480, 'center', [224, 224]);
    assert.deepEqual(p.source, { left: 80, top: 0, width: 480, height: 480 });
    assert.deepEqual(p.content, { left: 0, top: 0, width: 224, height: 224 });
    assert.equal(p.resized, true);
  });

  it('centre crop puts the odd pixel of an uneven margin on the right/bottom', () => {
    assert.deepEqual(planGeometry(641, 480, 'center', [480, 480]).source, { left: 80, top: 0, width: 480, height: 480 });
    assert.deepEqual(planGeometry(480, 643, 'center', [480, 480]).source, { left: 0, top: 81, width: 480, height: 480 });
    assert.equal(planGeometry(641, 480, 'center', [480, 480]).resized, false);
  });

  it('centre crop to a non-square output takes its aspect ratio', () => {
    assert.deepEqual(planGeometry(640, 480, 'center', [224, 448]).source, { left: 0, top: 80, width: 640, height: 320 });
  });

  it('pad letterboxes 640×480 into 224×224: 224×168 content, 28 rows above and below', () => {
    const p = planGeometry(640, 480, 'pad', [224, 224]);
    assert.deepEqual(p.source, { left: 0, top: 0, width: 640, height: 480 });
    assert.deepEqual(p.content, { left: 0, top: 28, width: 224, height: 168 });
  });

  it('pad pillarboxes a portrait frame', () => {
    assert.deepEqual(planGeometry(480, 640, 'pad', [224, 224]).content, { left: 28, top: 0, width: 168, height: 224 });
  });

  it("'none' uses the whole frame for the whole output", () => {
    const p = planGeometry(640, 480, 'none', [224, 299]);
    assert.deepEqual(p.source, { left: 0, top: 0, width: 640, height: 480 });
    assert.deepEqual(p.content, { left: 0, top: 0, width: 299, height: 224 });
  });

  it('sizeKeepingAspect gives [h, w] with the shorter side fixed', () => {
    assert.deepEqual(sizeKeepingAspect(640, 480, 224), [224, 299]);
    assert.deepEqual(sizeKeepingAspect(480, 640, 224), [299, 224]);
  });
});

describe('image ingest: geometry on pixels', () => {
  it('centre crop of an 8×4 frame to 4×4 picks columns 2..5', async () => {
    const r = ok(await ingest(encodeImage(positional(8, 4), 8, 4, 'rgb8'), 'raw', config({ baseSize: [4, 4] })));
    assert.deepEqual(r.base.dims, [1, 3, 4, 4]);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        assert.ok(close(at(r.base, 0, x, y), (10 * (x + 2)) / 255), `red at (${x},${y})`);
        assert.ok(close(at(r.base, 1, x, y), (10 * y) / 255), `green at (${x},${y})`);
      }
    }
    assert.deepEqual([r.width, r.height], [8, 4]);
  });

  it('pad puts a 4×2 frame in rows 1..2 of a 4×4 output, black above and below (normalised: −mean/std)', async () => {
    const r = ok(await ingest(encodeImage(positional(4, 2), 4, 2, 'rgb8'), 'raw', config({ crop: 'pad', normalization: IMAGENET })));
    for (let c = 0; c < 3; c++) {
      const black = (0 - IMAGENET.mean[c]) / IMAGENET.std[c];
      for (let x = 0; x < 4; x++) {
        assert.ok(close(at(r.base, c, x, 0), black, 1e-5) && close(at(r.base, c, x, 3), black, 1e-5), `pad value c${c} x${x}`);
        for (let y = 0; y < 2; y++) {
          const v = [10 * x, 10 * y, 7][c];
          assert.ok(close(at(r.base, c, x, y + 1), (v / 255 - IMAGENET.mean[c]) / IMAGENET.std[c], 1e-5), `content c${c} (${x},${y})`);
        }
      }
    }
  });

  it('pad with a resize: a 64×32 solid frame fills rows 8..23 of 32×32, the rest black', async () => {
    const r = ok(await ingest(encodeImage(solid(64, 32, [200, 100, 50]), 64, 32, 'rgb8'), 'raw', config({ crop: 'pad', baseSize: [32, 32] })));
    for (let y = 0; y < 32; y++) {
      const inside = y >= 8 && y < 24;
      for (const x of [0, 13, 31]) {
        assert.ok(close(at(r.base, 0, x, y), inside ? 200 / 255 : 0, 1e-5), `red (${x},${y})`);
        assert.ok(close(at(r.base, 2, x, y), inside ? 50 / 255 : 0, 1e-5), `blue (${x},${y})`);
      }
    }
  });

  it("'none' keeps the frame's shape: an 8×4 frame at baseSize [4, 8] is the frame itself", async () => {
    const px = positional(8, 4);
    const r = ok(await ingest(encodeImage(px, 8, 4, 'bgr8'), 'raw', config({ crop: 'none', baseSize: [4, 8] })));
    assert.deepEqual(r.base.dims, [1, 3, 4, 8]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) assert.ok(close(at(r.base, 0, x, y), (10 * x) / 255));
  });

  it('resizing samples pixel centres: a 240-wide ramp (value = x) shrunk 10× reads 10x + 4.5', async () => {
    const w = 240;
    const h = 6;
    const px = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) px.fill(i % w, i * 3, i * 3 + 3);
    const r = ok(await ingest(encodeImage(px, w, h, 'rgb8'), 'raw', config({ crop: 'none', baseSize: [h, 24] })));
    // An implementation aligning corners (or top-left sampling) would read 10x, 4.5 levels off.
    for (let x = 2; x < 22; x++) {
      const v = at(r.base, 1, x, 3) * 255;
      assert.ok(Math.abs(v - (10 * x + 4.5)) <= 1, `x=${x}: ${v.toFixed(2)} vs ${10 * x + 4.5}`);
    }
  });

  it('mono16 keeps 16-bit precision through a sharp crop and resize', async () => {
    // 1000 is not a multiple of 257: an 8-bit path would give round(1000 / 257) / 255 = 0.01569, not 0.01526.
    const data = new Uint8Array(64 * 32 * 2);
    for (let i = 0; i < 64 * 32; i++) data.set([1000 >> 8, 1000 & 255], i * 2);
    const msg: ImageMsg = {
      header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
      width: 64,
      height: 32,
      step: 128,
      encoding: 'mono16',
      is_bigendian: 1,
      data,
    };
    const r = ok(await ingest(msg, 'raw', config({ baseSize: [8, 8] })));
    for (let c = 0; c < 3; c++) assert.ok(close(at(r.base, c, 3, 5), 1000 / 65535, 1e-6), `channel ${c}: ${at(r.base, c, 3, 5)}`);
  });
});

describe('image ingest: normalisation', () => {
  const cases: [string, Normalization][] = [
    ['imagenet', IMAGENET],
    ['clip', NORMALIZATION_PRESETS.clip],
    ['none', NONE],
  ];
  for (const [name, norm] of cases) {
    it(`${name}: pixel (255, 128, 0) → (p/255 − mean)/std per channel`, async () => {
      const r = ok(
        await ingest(encodeImage(new Uint8Array([255, 128, 0]), 1, 1, 'rgb8'), 'raw', config({ crop: 'none', baseSize: [1, 1], normalization: norm })),
      );
      const expected = [255, 128, 0].map((p, c) => (p / 255 - norm.mean[c]) / norm.std[c]);
      for (let c = 0; c < 3; c++) assert.ok(close(r.base.data[c], expected[c], 1e-6), `${name} c${c}: ${r.base.data[c]} vs ${expected[c]}`);
    });
  }

  it('imagenet values by hand: (2.2489, 0.2052, −1.8044)', async () => {
    const r = ok(
      await ingest(encodeImage(new Uint8Array([255, 128, 0]), 1, 1, 'rgb8'), 'raw', config({ crop: 'none', baseSize: [1, 1], normalization: IMAGENET })),
    );
    assert.deepEqual(
      Array.from(r.base.data, (v) => Math.round(v * 1e4) / 1e4),
      [2.2489, 0.2052, -1.8044],
    );
  });
});

describe('image ingest: reference and native scales', () => {
  // 1-pixel vertical stripes, black and white: the finest detail a frame can hold.
  const S = 896;
  const stripes = new Uint8Array(S * S * 3);
  for (let i = 0; i < S * S; i++) if (i % 2 === 1) stripes.fill(255, i * 3, i * 3 + 3);
  const frame = encodeImage(stripes, S, S, 'rgb8');

  it("'reference' returns only the base tensor", async () => {
    const r = ok(await ingest(frame, 'raw', config({ baseSize: [224, 224] })));
    assert.deepEqual(r.base.dims, [1, 3, 224, 224]);
    assert.equal(r.scales, undefined);
  });

  it("'native' resizes every scale from the full frame: the full-size scale keeps the stripes the base cannot", async () => {
    const r = ok(
      await ingest(
        frame,
        'raw',
        config({
          resize: 'native',
          baseSize: [224, 224],
          scaleSizes: [
            [224, 224],
            [448, 448],
            [896, 896],
          ],
        }),
      ),
    );
    assert.ok(r.scales);
    assert.deepEqual(
      r.scales.map((t) => t.dims),
      [
        [1, 3, 224, 224],
        [1, 3, 448, 448],
        [1, 3, 896, 896],
      ],
    );
    // Downscaled 4× and 2× with an antialiasing kernel the stripes average to grey.
    assert.ok(Math.abs(at(r.base, 0, 100, 100) - 0.5) < 0.02, `base ${at(r.base, 0, 100, 100)}`);
    assert.ok(Math.abs(at(r.scales[1], 0, 200, 200) - 0.5) < 0.02, `448 ${at(r.scales[1], 0, 200, 200)}`);
    // At full size nothing is resampled: the stripes are exact.
    for (const x of [0, 1, 500, 501]) assert.equal(at(r.scales[2], 1, x, 300), x % 2);
    // A scale equal to the base is a separate copy with the same values.
    assert.notEqual(r.scales[0].data, r.base.data);
    assert.deepEqual(r.scales[0].data, r.base.data);
  });

  it("'native' from a JPEG with pad: every scale letterboxed the same way", async () => {
    const jpeg = await sharp(Buffer.from(solid(64, 32, [250, 250, 250])), { raw: { width: 64, height: 32, channels: 3 } })
      .jpeg()
      .toBuffer();
    const msg: CompressedImageMsg = { header: frame.header, format: 'rgb8; jpeg compressed bgr8', data: jpeg };
    const r = ok(await ingest(msg, 'compressed', config({ crop: 'pad', resize: 'native', baseSize: [16, 16], scaleSizes: [[32, 32]] })));
    assert.ok(r.scales);
    assert.ok(at(r.base, 0, 8, 2) === 0 && at(r.base, 0, 8, 4) > 0.95, 'base: black above row 4, content from row 4');
    assert.ok(at(r.scales[0], 0, 16, 7) === 0 && at(r.scales[0], 0, 16, 8) > 0.95, 'scale: black above row 8, content from row 8');
  });
});

describe('image ingest: compressed single-pipeline path', () => {
  // With resize 'reference' a JPEG/PNG is decoded, cropped and resized in one sharp pipeline. It must give exactly
  // what decoding in full and ingesting the raw pixels gives: in particular libjpeg's shrink-on-load (which would
  // pre-shrink a large JPEG by 2, 4 or 8 in the DCT) must stay off.
  const w = 512;
  const h = 384;
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) px.set([128 + 100 * Math.sin(0.7 * x + 0.01 * y), 128 + 80 * Math.cos(0.5 * y), (x ^ y) & 255], (y * w + x) * 3);
  }
  let jpeg: Buffer;
  before(async () => {
    jpeg = await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
  });

  for (const crop of ['center', 'pad', 'none'] as const) {
    it(`crop '${crop}': a 512×384 JPEG to 64×64 equals full decode + raw ingest`, async () => {
      const msg: CompressedImageMsg = { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' }, format: 'rgb8; jpeg compressed bgr8', data: jpeg };
      const cfg = config({ crop, baseSize: [64, 64], normalization: IMAGENET });
      const fast = ok(await ingest(msg, 'compressed', cfg));
      const full = await decodeCompressed(msg, 1 << 24);
      assert.ok(full.ok && full.image.depth === 8);
      const viaRaw = ok(await ingest(encodeImage(full.image.data, w, h, 'rgb8'), 'raw', cfg));
      assert.deepEqual(fast.base.data, viaRaw.base.data);
    });
  }

  it('applies EXIF orientation before cropping', async () => {
    // 3×2, red top-left; orientation 6 turns it into 2×3 with red top-right; 'none' at [3, 2] is that image.
    const small = new Uint8Array(3 * 2 * 3);
    small[0] = 255;
    const png = await sharp(Buffer.from(small), { raw: { width: 3, height: 2, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .png()
      .toBuffer();
    const r = ok(
      await ingest(
        { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' }, format: 'png', data: png },
        'compressed',
        config({ crop: 'none', baseSize: [3, 2] }),
      ),
    );
    assert.deepEqual([r.width, r.height], [2, 3]);
    assert.deepEqual(Array.from(r.base.data.subarray(0, 6)), [0, 1, 0, 0, 0, 0]);
  });

  it("swaps red and blue for a legacy 'rgb8; png compressed rgb8' frame", async () => {
    const png = await sharp(Buffer.from(solid(4, 4, [255, 0, 0])), { raw: { width: 4, height: 4, channels: 3 } })
      .png()
      .toBuffer();
    const header = { stamp: { sec: 0, nanosec: 0 }, frame_id: '' };
    const plain = ok(await ingest({ header, format: 'png', data: png }, 'compressed', config()));
    const legacy = ok(await ingest({ header, format: 'rgb8; png compressed rgb8', data: png }, 'compressed', config()));
    assert.deepEqual([plain.base.data[0], plain.base.data[32]], [1, 0]);
    assert.deepEqual([legacy.base.data[0], legacy.base.data[32]], [0, 1]);
  });
});

describe('image ingest: configuration and reuse', () => {
  it('parseIngestConfig names the offending key in a one-line UserError', () => {
    assert.throws(
      () => parseIngestConfig({ ...config(), baseSize: [0, 224] }),
      (e: Error) => e instanceof UserError && e.message.includes('baseSize.0'),
    );
    assert.throws(
      () => parseIngestConfig({ ...config(), resize: 'native' }),
      (e: Error) => e instanceof UserError && e.message.includes('scaleSizes'),
    );
    assert.throws(
      () => parseIngestConfig({ ...config(), scaleSizes: [[8, 8]] }),
      (e: Error) => e instanceof UserError && e.message.includes('scaleSizes'),
    );
    assert.throws(() => parseIngestConfig({ ...config(), normalization: { mean: [0, 0, 0], std: [1, 0, 1] } }), /normalization\.std\.1/);
    assert.throws(() => parseIngestConfig({ ...config(), crop: 'centre' }), /crop/);
    assert.throws(() => parseIngestConfig({ ...config(), extra: 1 }), /extra|unrecognized/i);
  });

  it('ingest() with a bad configuration returns bad_config instead of throwing', async () => {
    const r = await ingest(encodeImage(positional(4, 4), 4, 4, 'rgb8'), 'raw', config({ maxPixels: -5 }));
    assert.equal(!r.ok && r.reason, 'bad_config');
  });

  it('ingest() with an unknown kind returns bad_field', async () => {
    const r = await ingest(encodeImage(positional(4, 4), 4, 4, 'rgb8'), 'other' as 'raw', config());
    assert.equal(!r.ok && r.reason, 'bad_field');
  });

  it('createIngester throws UserError for a bad configuration', () => {
    assert.throws(() => createIngester(config({ baseSize: [4, 4.5] })), UserError);
  });

  it('an ingester reusing buffers gives the one-shot results, also for concurrent frames', async () => {
    const cfg = config({ baseSize: [6, 6], normalization: IMAGENET });
    const ingester = createIngester(cfg);
    const frames = [0, 1, 2, 3].map((k) =>
      encodeImage(
        positional(12, 8).map((v) => (v + 40 * k) & 255),
        12,
        8,
        k % 2 ? 'bgr8' : 'bayer_rggb8',
      ),
    );
    const expected = await Promise.all(frames.map((f) => ingest(f, 'raw', cfg)));
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(frames.map((f) => ingester.ingest(f, 'raw')));
      got.forEach((g, i) => assert.deepEqual(ok(g).base.data, ok(expected[i]).base.data, `round ${round} frame ${i}`));
    }
  });
});
