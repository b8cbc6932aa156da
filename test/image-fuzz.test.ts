// Property-based fuzzing of Image and CompressedImage fields with fast-check: no exception escapes, every bad
// frame is rejected with a known reason (the expected one where a single fault was injected), good frames give
// finite tensors. 1,300 cases in all (numRuns below).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import sharp from 'sharp';
import type { CompressedImageMsg, ImageMsg } from '../src/msgs/types.js';
import { ENCODINGS, RAW_ENCODINGS, encodingInfo, type RawEncoding } from '../src/image/encodings.js';
import { ingest, type IngestConfig, type IngestResult } from '../src/image/ingest.js';
import { NORMALIZATION_PRESETS } from '../src/image/normalize.js';
import { REJECT_REASONS, type RejectReason } from '../src/image/reject.js';

const KNOWN = new Set<string>(REJECT_REASONS);
const header = { stamp: { sec: 0, nanosec: 0 }, frame_id: 'fuzz' };

const cfg = (crop: IngestConfig['crop'], maxPixels = 1 << 20): IngestConfig => ({
  crop,
  resize: 'reference',
  baseSize: [5, 7],
  normalization: NORMALIZATION_PRESETS.imagenet,
  maxPixels,
});

function bytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** The invariants every result must satisfy; returns the reason when rejected. */
function checkResult(r: IngestResult, what: string): RejectReason | undefined {
  assert.equal(typeof r.ok, 'boolean', what);
  if (!r.ok) {
    assert.ok(KNOWN.has(r.reason), `${what}: unknown reason ${String(r.reason)}`);
    assert.ok(r.reason !== 'internal', `${what}: internal error: ${r.detail}`);
    assert.ok(r.detail.length > 0 && !r.detail.includes('\n'), `${what}: detail '${r.detail}'`);
    return r.reason;
  }
  assert.deepEqual(r.base.dims, [1, 3, 5, 7], what);
  for (const v of r.base.data) assert.ok(Number.isFinite(v), `${what}: non-finite value`);
  return undefined;
}

const MUTATIONS = ['none', 'short_data', 'bad_step', 'zero_size', 'unknown_encoding', 'too_large', 'odd_width', 'bad_field', 'bad_data', 'array_ok'] as const;
type Mutation = (typeof MUTATIONS)[number];

describe('image fuzz (fast-check)', function () {
  this.timeout(60000);

  it('raw Image, one injected fault at a time: the expected reason, or a tensor when nothing was broken (600 runs)', async () => {
    const arb = fc.record({
      enc: fc.constantFrom(...RAW_ENCODINGS),
      w: fc.integer({ min: 2, max: 14 }),
      h: fc.integer({ min: 2, max: 9 }),
      pad: fc.integer({ min: 0, max: 9 }),
      extra: fc.integer({ min: 0, max: 5 }),
      bigEndian: fc.oneof(fc.boolean(), fc.integer({ min: 0, max: 3 })),
      seed: fc.integer(),
      crop: fc.constantFrom('center' as const, 'pad' as const, 'none' as const),
      mutation: fc.constantFrom(...MUTATIONS),
      cut: fc.integer({ min: 1, max: 1000 }),
      garbage: fc.string({ maxLength: 12 }),
      badValue: fc.constantFrom<unknown>(-1, 1.5, NaN, Infinity, '4', null),
      badField: fc.constantFrom('width' as const, 'height' as const, 'step' as const),
      badByte: fc.constantFrom(256, -1, 0.5, 1000),
    });
    await fc.assert(
      fc.asyncProperty(arb, async (a) => {
        const mutation: Mutation = a.mutation;
        let enc: string = mutation === 'odd_width' ? (a.cut % 2 ? 'yuv422' : 'yuv422_yuy2') : a.enc;
        const info = ENCODINGS[enc as RawEncoding];
        // yuv422 needs an even width unless an odd one is the injected fault.
        const w = info.layout.kind !== 'yuv422' ? a.w : mutation === 'odd_width' ? a.w | 1 : a.w & ~1;
        const bpp = info.bytesPerPixel;
        let width: unknown = w;
        let height: unknown = a.h;
        let step: unknown = w * bpp + a.pad;
        let data: Uint8Array | number[] = bytes(a.seed, (step as number) * a.h + a.extra);
        let maxPixels = 1 << 20;
        let expected: RejectReason | undefined;
        switch (mutation) {
          case 'none':
          case 'array_ok':
            if (mutation === 'array_ok') data = Array.from(data);
            break;
          case 'short_data':
            data = data.subarray(0, Math.max(0, (step as number) * a.h - 1 - (a.cut % ((step as number) * a.h))));
            expected = 'short_data';
            break;
          case 'bad_step':
            step = a.cut % (w * bpp);
            expected = 'bad_step';
            break;
          case 'zero_size':
            if (a.cut % 2) width = 0;
            else height = 0;
            expected = 'zero_size';
            break;
          case 'unknown_encoding':
            fc.pre(encodingInfo(a.garbage) === undefined);
            enc = a.garbage;
            expected = 'unknown_encoding';
            break;
          case 'too_large':
            maxPixels = w * a.h - 1;
            expected = 'too_large';
            break;
          case 'odd_width':
            expected = 'odd_width';
            break;
          case 'bad_field':
            if (a.badField === 'width') width = a.badValue;
            else if (a.badField === 'height') height = a.badValue;
            else step = a.badValue;
            expected = 'bad_field';
            break;
          case 'bad_data': {
            const arr: number[] = Array.from(data);
            arr[a.cut % ((step as number) * a.h)] = a.badByte;
            data = arr;
            expected = 'bad_data';
            break;
          }
        }
        const msg = { header, width, height, step, encoding: enc, is_bigendian: a.bigEndian, data } as ImageMsg;
        const r = await ingest(msg, 'raw', cfg(a.crop, maxPixels));
        const reason = checkResult(r, `${mutation} ${enc} ${String(width)}×${String(height)} step ${String(step)}`);
        assert.equal(reason, expected, r.ok ? 'accepted' : r.detail);
      }),
      { numRuns: 600 },
    );
  });

  it('raw Image with arbitrary field values: never throws, bad frames rejected with a known reason (300 runs)', async () => {
    let accepted = 0;
    const num = fc.oneof(fc.integer({ min: -3, max: 24 }), fc.double(), fc.constantFrom(NaN, -0, 2 ** 31, 2 ** 53, 1e300));
    type Fields = Record<'width' | 'height' | 'step' | 'encoding' | 'is_bigendian' | 'data', unknown>;
    const anyFields: fc.Arbitrary<Fields> = fc.record({
      width: fc.oneof(num, fc.anything()),
      height: fc.oneof(num, fc.anything()),
      step: fc.oneof(num, fc.integer({ min: 0, max: 100 })),
      encoding: fc.oneof(fc.constantFrom(...RAW_ENCODINGS), fc.string({ maxLength: 16 }), fc.anything()),
      is_bigendian: fc.anything(),
      data: fc.oneof(fc.uint8Array({ maxLength: 800 }), fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 200 }), fc.anything()),
    });
    // Frames near the valid boundary: small sizes, step and data length a little off the exact values either way.
    const nearValid = fc
      .record({
        width: fc.integer({ min: 0, max: 9 }),
        height: fc.integer({ min: 0, max: 7 }),
        encoding: fc.constantFrom(...RAW_ENCODINGS),
        stepDelta: fc.integer({ min: -2, max: 3 }),
        lengthDelta: fc.integer({ min: -3, max: 3 }),
        is_bigendian: fc.oneof(fc.boolean(), fc.nat(2)),
        asArray: fc.boolean(),
        seed: fc.integer(),
      })
      .map((v): Fields => {
        const step = Math.max(0, v.width * ENCODINGS[v.encoding].bytesPerPixel + v.stepDelta);
        const data = bytes(v.seed, Math.max(0, step * v.height + v.lengthDelta));
        return { width: v.width, height: v.height, step, encoding: v.encoding, is_bigendian: v.is_bigendian, data: v.asArray ? Array.from(data) : data };
      });
    const arb = fc
      .tuple(fc.oneof(anyFields, nearValid), fc.constantFrom('center' as const, 'pad' as const, 'none' as const))
      .map(([f, crop]) => ({ ...f, crop }));
    await fc.assert(
      fc.asyncProperty(arb, async (a) => {
        const msg = { header, ...a } as unknown as ImageMsg;
        const r = await ingest(msg, 'raw', cfg(a.crop, 5000));
        const reason = checkResult(r, JSON.stringify({ w: a.width, h: a.height, s: a.step, e: a.encoding }));
        // An independent notion of a bad frame: any of these must be rejected.
        const uint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
        const { width: w, height: h, step, data } = a;
        const info = typeof a.encoding === 'string' ? encodingInfo(a.encoding) : undefined;
        let bad = true;
        if (uint(w) && uint(h) && uint(step) && info && (data instanceof Uint8Array || Array.isArray(data))) {
          // Only the step × height bytes the frame needs are read; a plain array must hold bytes there.
          const needed = step * h;
          const isBytes = data instanceof Uint8Array || data.slice(0, needed).every((v) => typeof v === 'number' && v >= 0 && v <= 255 && Number.isInteger(v));
          bad =
            !isBytes ||
            w * h === 0 ||
            w * h > 5000 ||
            step < w * info.bytesPerPixel ||
            data.length < needed ||
            (info.layout.kind === 'yuv422' && w % 2 === 1) ||
            (info.layout.kind === 'bayer' && (w < 2 || h < 2));
        }
        assert.equal(reason !== undefined, bad, `bad=${bad} but result ${r.ok ? 'ok' : `${r.reason}: ${r.detail}`}`);
        if (r.ok) accepted++;
      }),
      { numRuns: 300 },
    );
    // The generator must reach both sides of the boundary for the property to mean something.
    assert.ok(accepted >= 20, `only ${accepted} of 300 frames were valid`);
  });

  it('CompressedImage with random bytes and format strings: rejected with a known reason (200 runs)', async () => {
    const formats = ['jpeg', 'png', 'rgb8; jpeg compressed bgr8', 'bgr8; png compressed bgr8', 'mono16; png compressed ', 'bayer_rggb8; png compressed '];
    const arb = fc.record({
      format: fc.oneof(fc.constantFrom(...formats), fc.string({ maxLength: 30 }), fc.anything()),
      data: fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.array(fc.integer({ min: -1, max: 256 }), { maxLength: 50 }), fc.anything()),
      crop: fc.constantFrom('center' as const, 'pad' as const, 'none' as const),
    });
    await fc.assert(
      fc.asyncProperty(arb, async (a) => {
        const r = await ingest({ header, format: a.format, data: a.data } as CompressedImageMsg, 'compressed', cfg(a.crop));
        const reason = checkResult(r, `format ${JSON.stringify(a.format)}`);
        assert.ok(reason !== undefined, 'random bytes must not decode');
      }),
      { numRuns: 200 },
    );
  });

  describe('corrupted real JPEG and PNG', () => {
    const files: Record<'jpeg' | 'png', Buffer> = { jpeg: Buffer.alloc(0), png: Buffer.alloc(0) };
    before(async () => {
      const px = bytes(99, 24 * 16 * 3);
      const img = () => sharp(Buffer.from(px), { raw: { width: 24, height: 16, channels: 3 } });
      files.jpeg = await img().jpeg().toBuffer();
      files.png = await img().png().toBuffer();
    });

    it('truncated, bit-flipped or extended files: never throw; cut below half → undecodable (200 runs)', async () => {
      const arb = fc.record({
        kind: fc.constantFrom('jpeg' as const, 'png' as const),
        op: fc.constantFrom('truncate', 'flip', 'append', 'none'),
        at: fc.nat(),
        flips: fc.array(fc.record({ i: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        tail: fc.uint8Array({ minLength: 1, maxLength: 40 }),
        crop: fc.constantFrom('center' as const, 'pad' as const, 'none' as const),
        original: fc.constantFrom('', 'rgb8; ', 'bgr8; ', 'rgba8; '),
      });
      await fc.assert(
        fc.asyncProperty(arb, async (a) => {
          const file = files[a.kind];
          let data = Uint8Array.from(file);
          if (a.op === 'truncate') data = data.subarray(0, a.at % (file.length >> 1));
          if (a.op === 'flip') for (const f of a.flips) data[f.i % data.length] ^= f.v;
          if (a.op === 'append') data = Uint8Array.from([...data, ...a.tail]);
          const format = a.original ? `${a.original}${a.kind} compressed bgr8` : a.kind;
          const r = await ingest({ header, format, data }, 'compressed', cfg(a.crop));
          const reason = checkResult(r, `${a.op} ${format}`);
          if (a.op === 'truncate') assert.equal(reason, 'undecodable');
          if (a.op === 'none') assert.equal(reason, undefined);
        }),
        { numRuns: 200 },
      );
    });
  });
});
