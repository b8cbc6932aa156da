// src/bag throughput on 640×480 rgb8 Images: write then read N frames and report ms per frame. N is 100 here and
// BAG_BENCH_FRAMES=1000 for the full measurement (a 0.9 GB file). The bound only catches order-of-magnitude regressions.
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { McapRosReader, McapRosWriter } from '../src/bag/index.js';
import type { ImageMsg } from '../src/msgs/types.js';
import { tempDir } from './helpers/util.js';

const FRAMES = Number(process.env.BAG_BENCH_FRAMES ?? 100);
const MAX_MS_PER_FRAME = 50;

describe('bag: throughput', () => {
  it(`writes and reads ${FRAMES} 640×480 rgb8 Images in well under ${MAX_MS_PER_FRAME} ms per frame`, async function () {
    this.timeout(Math.max(60_000, FRAMES * 200));
    const file = join(tempDir('s2-bag-perf-'), 'images.mcap');
    const pixels = new Uint8Array(640 * 480 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 13) & 0xff;
    const image: ImageMsg = {
      header: { stamp: { sec: 0, nanosec: 0 }, frame_id: 'cam' },
      height: 480,
      width: 640,
      encoding: 'rgb8',
      is_bigendian: 0,
      step: 1920,
      data: pixels,
    };

    const t0 = performance.now();
    const writer = await McapRosWriter.create(file);
    const cam = await writer.addChannel('/camera/image_raw', 'sensor_msgs/msg/Image');
    for (let i = 0; i < FRAMES; i++) {
      pixels[0] = i & 0xff;
      await writer.write(cam, { ...image, header: { stamp: { sec: i, nanosec: 0 }, frame_id: 'cam' } }, BigInt(i) * 33_333_333n);
    }
    await writer.close();
    const t1 = performance.now();

    const reader = await McapRosReader.open(file);
    let n = 0;
    let checksum = 0;
    for await (const m of reader.messages()) {
      const data = (m.message as ImageMsg).data as Uint8Array;
      assert.equal(data[0], n & 0xff);
      checksum += data[data.length - 1];
      n++;
    }
    await reader.close();
    const t2 = performance.now();

    const mb = statSync(file).size / 1e6;
    rmSync(file);
    const writeMs = (t1 - t0) / FRAMES;
    const readMs = (t2 - t1) / FRAMES;
    console.log(
      `      ${FRAMES} frames, ${mb.toFixed(0)} MB: write ${writeMs.toFixed(2)} ms/frame (${(mb / ((t1 - t0) / 1000)).toFixed(0)} MB/s), read+decode ${readMs.toFixed(2)} ms/frame (${(mb / ((t2 - t1) / 1000)).toFixed(0)} MB/s)`,
    );
    assert.equal(n, FRAMES);
    assert.equal(checksum, FRAMES * pixels[pixels.length - 1]);
    assert.ok(writeMs < MAX_MS_PER_FRAME, `write ${writeMs.toFixed(1)} ms/frame`);
    assert.ok(readMs < MAX_MS_PER_FRAME, `read ${readMs.toFixed(1)} ms/frame`);
  });
});
