// rosbag2 folders: metadata.yaml in rosbag2's layout (versions 8 and 9), split and zstd-compressed recordings read as
// one stream, the metadata cross-checked against the files, folders written as ros2 bag record writes them, and
// replay/extract taking a folder in and writing one out.
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  McapRosReader,
  McapRosWriter,
  Rosbag2Writer,
  openRecordingPath,
  parseRosbag2Metadata,
  serializeRosbag2Metadata,
  defaultOfferedQos,
  type BagMessage,
  type Float64MultiArrayMsg,
  type RecordingReader,
  type RecordingWriter,
  type Rosbag2Metadata,
} from '../src/bag/index.js';
import { decompressedBound, isZstd, zstdCompress, zstdDecompress } from '../src/bag/zstd.js';
import { UserError } from '../src/errors.js';
import { writeDemoKit, type DemoKit } from '../src/run/demo-kit.js';
import { cli, ROOT, tempDir } from './helpers/util.js';

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    message = e.message;
    assert.match(message, pattern);
    assert.ok(!message.includes('\n'), 'one line');
    return true;
  });
  return message;
}

async function readAll(reader: RecordingReader): Promise<BagMessage[]> {
  const out: BagMessage[] = [];
  try {
    for await (const m of reader.messages()) out.push(m);
  } finally {
    await reader.close();
  }
  return out;
}

/** Two topics at 100 Hz and 30 Hz with payloads that identify each message; `n` ms of recording. */
async function fill(w: RecordingWriter, ms: number, payloadBytes = 200): Promise<{ topic: string; t: bigint; v: number }[]> {
  const a = await w.addChannel('/a', 'std_msgs/msg/Float64MultiArray', {
    qos: [defaultOfferedQos({ reliability: 'best_effort', history: 'keep_last', depth: 5 })],
  });
  const b = await w.addChannel('/b', 'std_msgs/msg/Float64MultiArray', { typeHash: 'RIHS01_' + '0'.repeat(64) });
  const written: { topic: string; t: bigint; v: number }[] = [];
  const pad = Array.from({ length: payloadBytes / 8 }, (_, i) => i);
  for (let t = 0; t < ms; t++) {
    const at = T0 + BigInt(t) * MS;
    if (t % 10 === 0) {
      await w.write(a, { layout: { dim: [], data_offset: 0 }, data: [t, ...pad] }, at);
      written.push({ topic: '/a', t: at, v: t });
    }
    if (t % 33 === 5) {
      await w.write(b, { layout: { dim: [], data_offset: 0 }, data: [-t] }, at);
      written.push({ topic: '/b', t: at, v: -t });
    }
  }
  return written;
}

function simple(messages: BagMessage[]): { topic: string; t: bigint; v: number }[] {
  return messages.map((m) => ({ topic: m.topic, t: m.logTime, v: (m.message as Float64MultiArrayMsg).data[0] }));
}

describe('rosbag2 metadata.yaml', () => {
  // Laid out as yaml-cpp writes it for `ros2 bag record` on Jazzy (version 9: QoS as a list with policy names).
  const jazzy = `rosbag2_bagfile_information:
  version: 9
  storage_identifier: mcap
  duration:
    nanoseconds: 2500000001
  starting_time:
    nanoseconds_since_epoch: 1733000000123456789
  message_count: 7
  topics_with_message_count:
    - topic_metadata:
        name: /camera/image_raw
        type: sensor_msgs/msg/Image
        serialization_format: cdr
        offered_qos_profiles:
          - history: keep_last
            depth: 10
            reliability: best_effort
            durability: volatile
            deadline:
              sec: 9223372036
              nsec: 854775807
            lifespan:
              sec: 9223372036
              nsec: 854775807
            liveliness: automatic
            liveliness_lease_duration:
              sec: 9223372036
              nsec: 854775807
            avoid_ros_namespace_conventions: false
        type_description_hash: RIHS01_d31ea6ea2e3a2b62ba5b29cc4e4ad1da5f6c12e2e9b2b7cbd6ef71e7c6d0d2d2
      message_count: 5
    - topic_metadata:
        name: /joint_states
        type: sensor_msgs/msg/JointState
        serialization_format: cdr
        offered_qos_profiles: []
        type_description_hash: ""
      message_count: 2
  compression_format: zstd
  compression_mode: FILE
  relative_file_paths:
    - run_0.mcap.zstd
    - run_1.mcap.zstd
  files:
    - path: run_0.mcap
      starting_time:
        nanoseconds_since_epoch: 1733000000123456789
      duration:
        nanoseconds: 1000000000
      message_count: 4
    - path: run_1.mcap
      starting_time:
        nanoseconds_since_epoch: 1733000001223456789
      duration:
        nanoseconds: 1400000001
      message_count: 3
  custom_data: ~
  ros_distro: jazzy
`;

  it('parses the Jazzy layout exactly: 64-bit times, QoS lists with names, compressed file names', () => {
    const m = parseRosbag2Metadata(jazzy, 'metadata.yaml');
    assert.equal(m.version, 9);
    assert.equal(m.startingTimeNs, 1733000000123456789n);
    assert.equal(m.durationNs, 2500000001n);
    assert.equal(m.compressionMode, 'file');
    assert.deepEqual(m.relativeFilePaths, ['run_0.mcap.zstd', 'run_1.mcap.zstd']);
    assert.equal(m.files[1].startingTimeNs, 1733000001223456789n);
    assert.equal(m.topics[0].offeredQos[0].reliability, 'best_effort');
    assert.equal(m.topics[0].offeredQos[0].depth, 10);
    assert.deepEqual(m.topics[0].offeredQos[0].deadline, { sec: 9223372036, nsec: 854775807 });
    assert.deepEqual(m.topics[1].offeredQos, []);
    assert.equal(m.rosDistro, 'jazzy');
    assert.deepEqual(m.customData, {});
  });

  it('parses version 8 (QoS as one string with integer enums) and writes both versions back to the same content', () => {
    const m = parseRosbag2Metadata(jazzy, 'metadata.yaml');
    for (const version of [8, 9] as const) {
      const text = serializeRosbag2Metadata({ ...m, version });
      const back = parseRosbag2Metadata(text, 'metadata.yaml');
      assert.deepEqual({ ...back, version: 9 }, m);
      if (version === 8) assert.match(text, /offered_qos_profiles: "- history: 1\\n {2}depth: 10\\n {2}reliability: 2\\n/);
      else assert.match(text, /offered_qos_profiles:\n {10}- history: keep_last\n {12}depth: 10\n {12}reliability: best_effort\n/);
    }
    // Text that differs only in the written form reads the same; byte-identical to the layout above for version 9.
    assert.equal(serializeRosbag2Metadata(m), jazzy);
  });

  it('names the key at fault in one line', () => {
    assert.throws(() => parseRosbag2Metadata('a: 1', 'x/metadata.yaml'), /^UserError: x\/metadata\.yaml: not a rosbag2 metadata file/);
    assert.throws(
      () => parseRosbag2Metadata(jazzy.replace('nanoseconds: 2500000001', 'nanoseconds: -3'), 'm.yaml'),
      /m\.yaml: rosbag2_bagfile_information\.duration\.nanoseconds: is -3, expected a non-negative integer/,
    );
    assert.throws(
      () => parseRosbag2Metadata(jazzy.replace('        name: /joint_states\n', ''), 'm.yaml'),
      /rosbag2_bagfile_information\.topics_with_message_count\[1\]\.topic_metadata\.name: missing/,
    );
    assert.throws(
      () => parseRosbag2Metadata(jazzy.replace('compression_mode: FILE', 'compression_mode: CHUNK'), 'm.yaml'),
      /compression_mode: is 'CHUNK', expected FILE, MESSAGE, NONE or empty/,
    );
    assert.throws(
      () => parseRosbag2Metadata(jazzy.replace('reliability: best_effort', 'reliability: sometimes'), 'm.yaml'),
      /offered_qos_profiles \(topic \/camera\/image_raw\): offered_qos_profiles reliability is "sometimes"/,
    );
  });
});

describe('zstd for rosbag2 file and message compression', () => {
  it('bounds and decompresses frames without a content size (streamed, as rosbag2 compresses files), concatenated with sized ones', async () => {
    const plain = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251);
    // A frame as a streaming compressor writes it: no content size, window 1 MiB, raw and RLE blocks.
    const raw1 = plain.subarray(0, 100_000);
    const header = [0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 - 10) << 3];
    const block = (type: number, size: number, last: boolean) => {
      const h = (size << 3) | (type << 1) | (last ? 1 : 0);
      return [h & 255, (h >> 8) & 255, (h >> 16) & 255];
    };
    const streamed = Uint8Array.from([...header, ...block(0, raw1.length, false), ...raw1, ...block(1, 5000, true), 42]);
    const sized = await zstdCompress(plain);
    const both = new Uint8Array(streamed.length + sized.length);
    both.set(streamed);
    both.set(sized, streamed.length);
    assert.ok(isZstd(both));
    assert.equal(decompressedBound(streamed), 105_000);
    assert.equal(decompressedBound(both), 405_000);
    const out = await zstdDecompress(both);
    assert.equal(out.length, 405_000);
    assert.deepEqual(out.subarray(0, 100_000), raw1);
    assert.ok(out.subarray(100_000, 105_000).every((b) => b === 42));
    assert.deepEqual(out.subarray(105_000), plain);
    assert.throws(() => decompressedBound(streamed.subarray(0, 5000)), /cut short/);
  });
});

describe('a file compressed by the zstd tool in streaming mode (test/fixtures)', () => {
  const fixture = join(ROOT, 'test', 'fixtures', 'streamed_0.mcap.zstd');
  const check = (ms: BagMessage[]) => {
    assert.equal(ms.length, 800);
    ms.forEach((m, i) => {
      assert.equal(m.logTime, T0 + BigInt(i) * 10n * MS);
      assert.deepEqual(
        Array.from((m.message as Float64MultiArrayMsg).data),
        Array.from({ length: 16 }, (_, k) => i * 16 + k),
      );
    });
  };

  it('reads as a lone .mcap.zstd and as a FILE-compressed folder', async () => {
    const bytes = readFileSync(fixture);
    // No content size in the frame header (Frame_Content_Size_flag 0, Single_Segment 0): the bound comes from blocks.
    assert.equal(bytes[4] >> 5, 0);
    check(await readAll(await openRecordingPath(fixture)));
    const dir = join(tempDir('s2-rb2-'), 'streamed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'streamed_0.mcap.zstd'), bytes);
    const span = 799n * 10n * MS;
    const meta: Rosbag2Metadata = {
      version: 9,
      storageIdentifier: 'mcap',
      durationNs: span,
      startingTimeNs: T0,
      messageCount: 800,
      topics: [
        {
          name: '/counter',
          type: 'std_msgs/msg/Float64MultiArray',
          serializationFormat: 'cdr',
          offeredQos: [defaultOfferedQos()],
          typeDescriptionHash: '',
          messageCount: 800,
        },
      ],
      compressionFormat: 'zstd',
      compressionMode: 'file',
      relativeFilePaths: ['streamed_0.mcap.zstd'],
      files: [{ path: 'streamed_0.mcap', startingTimeNs: T0, durationNs: span, messageCount: 800 }],
      customData: {},
      rosDistro: 'jazzy',
    };
    writeFileSync(join(dir, 'metadata.yaml'), serializeRosbag2Metadata(meta));
    const warnings: string[] = [];
    check(await readAll(await openRecordingPath(dir, { onWarning: (w) => warnings.push(w) })));
    assert.deepEqual(warnings, []);
  });
});

describe('rosbag2 folders', function () {
  this.timeout(60000);

  it('writes a folder as ros2 bag record does and reads it back as one stream', async () => {
    const dir = join(tempDir('s2-rb2-'), 'rec');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { rosDistro: 'jazzy' });
    const written = await fill(w, 1000);
    const meta = await w.finish();
    assert.deepEqual(readdirSync(dir).sort(), ['metadata.yaml', 'rec_0.mcap']);
    const m = parseRosbag2Metadata(readFileSync(join(dir, 'metadata.yaml'), 'utf8'), 'metadata.yaml');
    assert.deepEqual(m, meta);
    assert.equal(m.version, 9);
    assert.equal(m.storageIdentifier, 'mcap');
    assert.equal(m.messageCount, written.length);
    assert.equal(m.startingTimeNs, T0);
    assert.equal(m.durationNs, written[written.length - 1].t - T0);
    assert.deepEqual(
      m.topics.map((t) => [t.name, t.type, t.messageCount, t.offeredQos[0].reliability, t.typeDescriptionHash]),
      [
        ['/a', 'std_msgs/msg/Float64MultiArray', 100, 'best_effort', ''],
        ['/b', 'std_msgs/msg/Float64MultiArray', written.filter((x) => x.topic === '/b').length, 'reliable', 'RIHS01_' + '0'.repeat(64)],
      ],
    );
    assert.deepEqual(m.files, [{ path: 'rec_0.mcap', startingTimeNs: T0, durationNs: m.durationNs, messageCount: written.length }]);
    const warnings: string[] = [];
    for (const p of [dir, join(dir, 'metadata.yaml'), join(dir, 'rec_0.mcap')]) {
      assert.deepEqual(simple(await readAll(await openRecordingPath(p, { onWarning: (x) => warnings.push(x) }))), written, p);
    }
    assert.deepEqual(warnings, []);
  });

  for (const compression of ['none', 'file', 'message'] as const) {
    it(`splits by size and reads the parts in order (compression ${compression})`, async () => {
      const dir = join(tempDir('s2-rb2-'), 'split');
      mkdirSync(dir);
      const w = await Rosbag2Writer.create(dir, { maxFileSize: 8 * 1024, chunkSize: 2048, compression });
      const written = await fill(w, 2000);
      const meta = await w.finish();
      const ext = compression === 'file' ? '.mcap.zstd' : '.mcap';
      assert.ok(meta.relativeFilePaths.length >= 4, `${meta.relativeFilePaths.length} files`);
      assert.deepEqual(
        meta.relativeFilePaths,
        meta.relativeFilePaths.map((_, i) => `split_${i}${ext}`),
      );
      assert.deepEqual(readdirSync(dir).sort(), [...meta.relativeFilePaths, 'metadata.yaml'].sort());
      assert.equal(meta.compressionMode, compression);
      assert.equal(meta.compressionFormat, compression === 'none' ? '' : 'zstd');
      assert.equal(
        meta.files.reduce((n, f) => n + f.messageCount, 0),
        written.length,
      );
      for (let i = 1; i < meta.files.length; i++)
        assert.ok(meta.files[i].startingTimeNs > meta.files[i - 1].startingTimeNs + meta.files[i - 1].durationNs - 1n);
      for (const p of meta.relativeFilePaths) {
        const bytes = readFileSync(join(dir, p));
        assert.equal(isZstd(bytes), compression === 'file', p);
        // Each part except the last reached the size limit (payloads ~200 bytes, so within one message of it).
        if (compression === 'none' && p !== meta.relativeFilePaths.at(-1)) assert.ok(statSync(join(dir, p)).size >= 8 * 1024 - 1024, p);
      }
      const warnings: string[] = [];
      const reader = await openRecordingPath(dir, { onWarning: (x) => warnings.push(x) });
      assert.deepEqual(
        (await reader.topics()).map((t) => [t.topic, t.messageCount]),
        [
          ['/a', 200],
          ['/b', written.length - 200],
        ],
      );
      assert.deepEqual(reader.timeRange, { start: T0, end: written[written.length - 1].t });
      assert.deepEqual(simple(await readAll(reader)), written);
      assert.equal(reader.decodeFailures.total, 0);
      assert.deepEqual(warnings, []);
      if (compression === 'message') {
        // Stored payloads are zstd frames: without the folder's metadata they do not decode as CDR.
        const part = await McapRosReader.open(join(dir, meta.relativeFilePaths[0]), { decodePayload: (d) => (isZstd(d) ? d : new Uint8Array(0)) });
        const first = (await part.messages({ decode: false }).next()).value as BagMessage;
        assert.ok(isZstd(first.data));
        await part.close();
      }
    });
  }

  it('splits by duration', async () => {
    const dir = join(tempDir('s2-rb2-'), 'dur');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { maxDurationNs: 300n * MS });
    const written = await fill(w, 1000);
    const meta = await w.finish();
    assert.deepEqual(
      meta.files.map((f) => [f.path, Number((f.startingTimeNs - T0) / MS)]),
      [
        ['dur_0.mcap', 0],
        ['dur_1.mcap', 300],
        ['dur_2.mcap', 600],
        ['dur_3.mcap', 900],
      ],
    );
    assert.ok(meta.files.every((f) => f.durationNs < 300n * MS));
    assert.deepEqual(simple(await readAll(await openRecordingPath(dir))), written);
  });

  it('merges overlapping files by log time and cross-checks metadata.yaml, warning with both numbers', async () => {
    const dir = join(tempDir('s2-rb2-'), 'odd');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { maxDurationNs: 500n * MS });
    const written = await fill(w, 1000);
    await w.finish();
    // A third file whose messages fall between the others' (as two recorders' output merged by hand would).
    const extra = await McapRosWriter.create(join(dir, 'extra.mcap'));
    const a = await extra.addChannel('/a', 'std_msgs/msg/Float64MultiArray');
    await extra.write(a, { layout: { dim: [], data_offset: 0 }, data: [0.5] }, T0 + 5n);
    await extra.write(a, { layout: { dim: [], data_offset: 0 }, data: [600.5] }, T0 + 600n * MS + 5n);
    await extra.close();
    const metaFile = join(dir, 'metadata.yaml');
    const text = readFileSync(metaFile, 'utf8').replace('    - odd_1.mcap\n', '    - odd_1.mcap\n    - extra.mcap\n');
    writeFileSync(metaFile, text);
    const warnings: string[] = [];
    const got = simple(await readAll(await openRecordingPath(dir, { onWarning: (x) => warnings.push(x) })));
    const expected = [...written, { topic: '/a', t: T0 + 5n, v: 0.5 }, { topic: '/a', t: T0 + 600n * MS + 5n, v: 600.5 }].sort((x, y) =>
      x.t < y.t ? -1 : x.t > y.t ? 1 : 0,
    );
    assert.deepEqual(got, expected);
    assert.deepEqual(warnings, [
      `${metaFile}: topic /a: message_count 100 in the metadata, the files hold 102`,
      `${metaFile}: message_count ${written.length} in the metadata, the files hold ${written.length + 2}`,
      `${metaFile}: files lists 2 entries, relative_file_paths 3`,
    ]);
    // Counts and duration edited by hand.
    const m = parseRosbag2Metadata(readFileSync(metaFile, 'utf8'), metaFile);
    const edited: Rosbag2Metadata = {
      ...m,
      relativeFilePaths: m.relativeFilePaths.slice(0, 2),
      durationNs: 5n * 1_000_000_000n,
      topics: m.topics.map((t) => ({ ...t, messageCount: t.name === '/b' ? 1 : 100 })),
    };
    writeFileSync(metaFile, serializeRosbag2Metadata(edited));
    warnings.length = 0;
    await (await openRecordingPath(join(dir, 'metadata.yaml'), { onWarning: (x) => warnings.push(x) })).close();
    const nb = written.filter((x) => x.topic === '/b').length;
    const span = written[written.length - 1].t - T0;
    assert.deepEqual(warnings, [
      `${metaFile}: topic /b: message_count 1 in the metadata, the files hold ${nb}`,
      `${metaFile}: duration 5000000000 ns in the metadata, the files' messages span ${span} ns`,
    ]);
  });

  it('refuses folders it cannot read, naming the file and what is wrong', async () => {
    const root = tempDir('s2-rb2-');
    const plainDir = join(root, 'plain');
    mkdirSync(plainDir);
    await rejectsWith(openRecordingPath(plainDir), /plain: no metadata\.yaml in this folder, so it is not a rosbag2 recording; 'ros2 bag reindex/);
    const dir = join(root, 'rec');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { maxDurationNs: 400n * MS, compression: 'file' });
    await fill(w, 1000);
    await w.finish();
    const metaFile = join(dir, 'metadata.yaml');
    const good = readFileSync(metaFile, 'utf8');
    writeFileSync(metaFile, good.replace('storage_identifier: mcap', 'storage_identifier: rosbag_v1'));
    await rejectsWith(openRecordingPath(dir), /metadata\.yaml: storage_identifier is 'rosbag_v1'; mcap and sqlite3 recordings are read/);
    writeFileSync(metaFile, good.replace('storage_identifier: mcap', 'storage_identifier: sqlite3'));
    await rejectsWith(openRecordingPath(dir), /rec_0\.mcap\.zstd: not an SQLite database \(no 'SQLite format 3' header at byte 0\)$/);
    writeFileSync(metaFile, good.replace('rec_1.mcap.zstd', 'rec_9.mcap.zstd'));
    await rejectsWith(openRecordingPath(dir), /rec_9\.mcap\.zstd: listed in .*metadata\.yaml but missing$/);
    writeFileSync(metaFile, good.replace('compression_mode: FILE', 'compression_mode: ""'));
    await rejectsWith(openRecordingPath(dir), /rec_0\.mcap\.zstd: not an MCAP file/);
    writeFileSync(metaFile, good);
    const part = join(dir, 'rec_1.mcap.zstd');
    const bytes = readFileSync(part);
    writeFileSync(part, bytes.subarray(0, bytes.length - 7));
    await rejectsWith(openRecordingPath(dir), /rec_1\.mcap\.zstd: cannot decompress: frame at byte 0 is cut short/);
    // Nothing of the input was changed by reading it.
    writeFileSync(part, bytes);
    const before = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).length]);
    await readAll(await openRecordingPath(dir));
    assert.deepEqual(
      readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).length]),
      before,
    );
  });
});

describe('replay and extract with rosbag2 folders', function () {
  this.timeout(180000);
  let kit: DemoKit;

  /** The demo recording copied into a split, file-compressed rosbag2 folder. */
  async function asFolder(dir: string, compression: 'file' | 'message'): Promise<void> {
    mkdirSync(dir);
    const r = await McapRosReader.open(kit.recording);
    const w = await Rosbag2Writer.create(dir, { maxFileSize: 64 * 1024, compression });
    const channels = new Map<string, Awaited<ReturnType<typeof w.addChannel>>>();
    for (const t of await r.topics()) channels.set(t.topic, await w.addChannel(t.topic, t.type));
    for await (const m of r.messages({ decode: false })) await w.writeRaw(channels.get(m.topic) as never, m.data, m.logTime, m.publishTime);
    await w.finish();
    await r.close();
  }

  before(async () => {
    kit = await writeDemoKit(tempDir('s2-rb2-demo-'), { durationS: 2, width: 64, height: 48 });
  });

  it('replay takes a split, compressed folder and gives the actions of the single file; writes a folder out', async () => {
    const folder = join(kit.dir, 'demo_split');
    await asFolder(folder, 'file');
    const parts = readdirSync(folder).filter((f) => f.endsWith('.mcap.zstd'));
    assert.ok(parts.length >= 3, `${parts.length} parts`);
    const fromFile = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'a.mcap')]);
    assert.equal(fromFile.status, 0, fromFile.stderr);
    const out = join(kit.dir, 'actions_out');
    const fromFolder = cli(['replay', '--bag', folder, '--config', kit.config, '--out', out, '--max-file-size', '20000']);
    assert.equal(fromFolder.status, 0, fromFolder.stderr);
    assert.equal(fromFolder.stderr, '');
    const line = (s: string, key: string) => s.split('\n').find((l) => l.startsWith(key));
    assert.equal(line(fromFolder.stdout, 'actions'), line(fromFile.stdout, 'actions'));
    assert.equal(line(fromFolder.stdout, 'frames'), line(fromFile.stdout, 'frames'));
    // The output folder is a rosbag2 recording named after itself; its actions equal the single-file output's.
    const meta = parseRosbag2Metadata(readFileSync(join(out, 'metadata.yaml'), 'utf8'), 'metadata.yaml');
    assert.ok(meta.relativeFilePaths.length >= 2);
    assert.ok(meta.relativeFilePaths.every((p, i) => p === `actions_out_${i}.mcap`));
    const a = await readAll(await openRecordingPath(join(kit.dir, 'a.mcap')));
    const b = await readAll(await openRecordingPath(out));
    const actions = (ms: BagMessage[]) => ms.filter((m) => m.topic === '/s2_policy/joint_trajectory').map((m) => [m.logTime, Array.from(m.data)]);
    assert.ok(actions(a).length > 10);
    assert.deepEqual(actions(b), actions(a));
    assert.equal(meta.messageCount, b.length);
    // An existing output is left alone without --force, and replaced whole with it.
    const again = cli(['replay', '--bag', folder, '--config', kit.config, '--out', out]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^s2-policy: replay: --out .*actions_out exists and is not empty; pass --force to replace it\n$/);
    const forced = cli(['replay', '--bag', join(folder, 'metadata.yaml'), '--config', kit.config, '--out', out, '--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['actions_out_0.mcap', 'metadata.yaml']);
  });

  it('a failed replay leaves no output; metadata disagreements are warnings on stderr', async () => {
    const folder = join(kit.dir, 'demo_msg');
    await asFolder(folder, 'message');
    const metaFile = join(folder, 'metadata.yaml');
    const m = parseRosbag2Metadata(readFileSync(metaFile, 'utf8'), metaFile);
    writeFileSync(metaFile, serializeRosbag2Metadata({ ...m, messageCount: m.messageCount + 3 }));
    const out = join(kit.dir, 'warned');
    const r = cli(['replay', '--bag', folder, '--config', kit.config, '--out', out, '--compression-mode', 'message']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, `s2-policy: warning: ${metaFile}: message_count ${m.messageCount + 3} in the metadata, the files hold ${m.messageCount}\n`);
    assert.equal(parseRosbag2Metadata(readFileSync(join(out, 'metadata.yaml'), 'utf8'), 'm').compressionMode, 'message');
    // A missing part stops the run before anything is written.
    writeFileSync(metaFile, serializeRosbag2Metadata({ ...m, relativeFilePaths: [...m.relativeFilePaths, 'gone.mcap'] }));
    const failed = join(kit.dir, 'failed');
    const f = cli(['replay', '--bag', folder, '--config', kit.config, '--out', failed]);
    assert.equal(f.status, 2);
    assert.match(f.stderr, /^s2-policy: .*gone\.mcap: listed in .*metadata\.yaml but missing\n$/);
    assert.equal(existsSync(failed), false);
    assert.deepEqual(
      readdirSync(kit.dir).filter((x) => x.includes('.tmp')),
      [],
    );
    const bad = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'x.mcap'), '--max-file-size', '1000']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /x\.mcap: --max-file-size split or compress a rosbag2 folder; give --out a folder name \(without \.mcap\)/);
    assert.equal(existsSync(join(kit.dir, 'x.mcap')), false);
  });

  it('extract takes a folder and gives the features of the single file', async () => {
    const folder = join(kit.dir, 'demo_split_x');
    await asFolder(folder, 'file');
    const a = cli(['extract', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'xa')]);
    assert.equal(a.status, 0, a.stderr);
    const b = cli(['extract', '--bag', folder, '--config', kit.config, '--out', join(kit.dir, 'xb')]);
    assert.equal(b.status, 0, b.stderr);
    for (const f of ['features.npy', 'stamps_ns.npy', 'state.npy'])
      assert.deepEqual(readFileSync(join(kit.dir, 'xb', f)), readFileSync(join(kit.dir, 'xa', f)), f);
  });
});
