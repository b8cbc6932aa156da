// src/bag: ROS 2 MCAP write → read round trips, the rosbag2 schema/metadata conventions, ordering and filters, and
// how damaged files and undecodable messages are reported.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageReader, MessageWriter } from '@foxglove/rosmsg2-serialization';
import { McapIndexedReader, McapWriter, type IWritable, type McapWriterOptions } from '@mcap/core';
import {
  McapRosReader,
  McapRosWriter,
  isMessageOf,
  msgText,
  rosbag2DefinitionText,
  registeredDefinitions,
  parseOfferedQos,
  defaultOfferedQos,
  serializeOfferedQos,
  REGISTERED_TYPES,
  type BagMessage,
  type DecodeFailure,
  type DiagnosticArrayMsg,
  type Float64MultiArrayMsg,
  type JointTrajectoryMsg,
  type S2FeaturesMsg,
  type TwistStampedMsg,
} from '../src/bag/index.js';
import { FileReadable } from '../src/bag/file-io.js';
import type { CompressedImageMsg, ImageMsg, JointStateMsg } from '../src/msgs/types.js';
import { UserError } from '../src/errors.js';
import { ROOT, tempDir } from './helpers/util.js';

const SEP = '='.repeat(80);
const SEC = 1_000_000_000n;

/** Typed arrays → plain arrays, recursively, so decoded and written values compare with deepStrictEqual. */
function plain(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

async function readAll(file: string, query = {}, onDecodeError?: (f: DecodeFailure) => void): Promise<BagMessage[]> {
  const reader = await McapRosReader.open(file, { onDecodeError });
  try {
    const out: BagMessage[] = [];
    for await (const m of reader.messages(query)) out.push(m);
    return out;
  } finally {
    await reader.close();
  }
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    message = e.message;
    return true;
  });
  assert.match(message, pattern);
  assert.ok(!message.includes('\n'), `error is one line: ${message}`);
  return message;
}

function header(sec: number, frame = 'camera_optical'): { stamp: { sec: number; nanosec: number }; frame_id: string } {
  return { stamp: { sec, nanosec: 123_456_789 }, frame_id: frame };
}

function rgbImage(seed: number): ImageMsg {
  const data = new Uint8Array(640 * 480 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  return { header: header(seed), height: 480, width: 640, encoding: 'rgb8', is_bigendian: 0, step: 640 * 3, data };
}

/** An in-memory IWritable for building MCAP files with layouts McapRosWriter does not produce. */
class MemoryWritable implements IWritable {
  chunks: Uint8Array[] = [];
  private size = 0n;
  write(buffer: Uint8Array): Promise<void> {
    this.chunks.push(buffer.slice());
    this.size += BigInt(buffer.byteLength);
    return Promise.resolve();
  }
  position(): bigint {
    return this.size;
  }
  save(file: string): void {
    writeFileSync(file, Buffer.concat(this.chunks));
  }
}

describe('bag: message definitions', () => {
  it('embeds msg/S2Features.msg byte for byte', () => {
    const onDisk = readFileSync(join(ROOT, 'msg', 'S2Features.msg'), 'utf8');
    assert.equal(msgText('s2_policy/msg/S2Features'), onDisk);
  });

  it('writes sensor_msgs/msg/Image as rosbag2 does: the .msg, then Header, then Time after 80 "=" and MSG: lines', () => {
    const text = rosbag2DefinitionText('sensor_msgs/msg/Image');
    assert.ok(text.startsWith(msgText('sensor_msgs/msg/Image')));
    assert.ok(text.includes('================================================================================\nMSG: std_msgs/Header'));
    const expected =
      msgText('sensor_msgs/msg/Image') +
      `\n${SEP}\nMSG: std_msgs/Header\n` +
      msgText('std_msgs/msg/Header') +
      `\n${SEP}\nMSG: builtin_interfaces/Time\n` +
      msgText('builtin_interfaces/msg/Time');
    assert.equal(text, expected);
  });

  it('orders dependencies depth-first in sorted order, each once, named as spelled in the field line', () => {
    const sections = (type: string): string[] => [...rosbag2DefinitionText(type).matchAll(/^MSG: (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections('trajectory_msgs/msg/JointTrajectory'), [
      'std_msgs/Header',
      'builtin_interfaces/Time',
      'trajectory_msgs/JointTrajectoryPoint',
      'builtin_interfaces/Duration',
    ]);
    assert.deepEqual(sections('diagnostic_msgs/msg/DiagnosticArray'), [
      'diagnostic_msgs/DiagnosticStatus',
      'diagnostic_msgs/KeyValue',
      'std_msgs/Header',
      'builtin_interfaces/Time',
    ]);
    assert.deepEqual(sections('geometry_msgs/msg/TwistStamped'), [
      'geometry_msgs/Twist',
      'geometry_msgs/Vector3',
      'std_msgs/Header',
      'builtin_interfaces/Time',
    ]);
    assert.deepEqual(sections('std_msgs/msg/Float64MultiArray'), ['std_msgs/MultiArrayLayout', 'std_msgs/MultiArrayDimension']);
  });

  it('parses every registered type into the ROS field list', () => {
    const fields = (type: string): string[] =>
      registeredDefinitions(type)[0]
        .definitions.filter((f) => f.isConstant !== true)
        .map((f) => `${f.type}${f.isArray === true ? '[]' : ''} ${f.name}`);
    assert.deepEqual(fields('sensor_msgs/msg/Image'), [
      'std_msgs/Header header',
      'uint32 height',
      'uint32 width',
      'string encoding',
      'uint8 is_bigendian',
      'uint32 step',
      'uint8[] data',
    ]);
    assert.deepEqual(fields('s2_policy/msg/S2Features'), [
      'std_msgs/Header header',
      'string[] camera_names',
      'uint32[] scale_heights',
      'uint32[] scale_widths',
      'uint32 num_prefix_tokens',
      'uint32 grid_height',
      'uint32 grid_width',
      'uint32 channels',
      'string pooling',
      'uint32[] shape',
      'float32[] data',
    ]);
    assert.deepEqual(fields('trajectory_msgs/msg/JointTrajectory'), [
      'std_msgs/Header header',
      'string[] joint_names',
      'trajectory_msgs/JointTrajectoryPoint[] points',
    ]);
    for (const type of REGISTERED_TYPES) assert.ok(registeredDefinitions(type).length >= 1, type);
  });
});

describe('bag: offered_qos_profiles', () => {
  it('writes the integer form rosbag2 stores for a plain publisher', () => {
    assert.equal(
      serializeOfferedQos([defaultOfferedQos()]),
      '- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n' +
        '  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n' +
        '    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false',
    );
  });

  it('reads both the integer (≤ Iron) and the named (Jazzy) forms', () => {
    const named =
      '- history: keep_last\n  depth: 5\n  reliability: best_effort\n  durability: transient_local\n  deadline:\n    sec: 0\n    nsec: 0\n' +
      '  lifespan:\n    sec: 1\n    nsec: 5\n  liveliness: automatic\n  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n  avoid_ros_namespace_conventions: true';
    const [p] = parseOfferedQos(named, 'test');
    assert.equal(p.history, 'keep_last');
    assert.equal(p.depth, 5);
    assert.equal(p.reliability, 'best_effort');
    assert.equal(p.durability, 'transient_local');
    assert.deepEqual(p.lifespan, { sec: 1, nsec: 5 });
    assert.equal(p.avoid_ros_namespace_conventions, true);
    assert.deepEqual(parseOfferedQos(serializeOfferedQos([p]), 'test'), [p]);
    assert.throws(() => parseOfferedQos('- history: 9\n', 'f.mcap: topic /x'), /f\.mcap: topic \/x: offered_qos_profiles history is 9/);
  });
});

describe('bag: round trips', () => {
  const dir = tempDir('s2-bag-');

  it('round-trips every registered message type with equal values', async () => {
    const file = join(dir, 'all.mcap');
    const image = rgbImage(3);
    const compressed: CompressedImageMsg = { header: header(4), format: 'jpeg', data: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]) };
    const joints: JointStateMsg = {
      header: header(5, ''),
      name: ['shoulder_pan', 'shoulder_lift', 'elbow'],
      position: new Float64Array([0.1, -1.2, Math.PI]),
      velocity: [0.5, 0, -0.25],
      effort: [],
    };
    const multi: Float64MultiArrayMsg = {
      layout: {
        dim: [
          { label: 'rows', size: 2, stride: 6 },
          { label: 'cols', size: 3, stride: 3 },
        ],
        data_offset: 0,
      },
      data: [1.5, 2.5, -3.5, 1e-300, 1e300, -0],
    };
    const trajectory: JointTrajectoryMsg = {
      header: header(6, 'base_link'),
      joint_names: ['a', 'b'],
      points: [
        { positions: [0, 1], velocities: [], accelerations: [], effort: [], time_from_start: { sec: 0, nanosec: 500_000_000 } },
        { positions: [0.5, 1.5], velocities: [0.1, 0.2], accelerations: [0, 0], effort: [], time_from_start: { sec: 1, nanosec: 0 } },
      ],
    };
    const twist: TwistStampedMsg = { header: header(7, 'tool0'), twist: { linear: { x: 0.1, y: -0.2, z: 0.3 }, angular: { x: 0, y: 0, z: -1.5 } } };
    const diagnostics: DiagnosticArrayMsg = {
      header: header(8, ''),
      status: [
        { level: 0, name: 's2_policy: engine', message: 'ok', hardware_id: '', values: [{ key: 'latency_ms', value: '12.5' }] },
        { level: 2, name: 's2_policy: camera', message: 'no frames for 2 s', hardware_id: 'cam0', values: [] },
      ],
    };
    const features: S2FeaturesMsg = {
      header: header(9, 'camera_optical'),
      camera_names: ['wrist', 'scene'],
      scale_heights: [224, 448],
      scale_widths: [224, 448],
      num_prefix_tokens: 1,
      grid_height: 2,
      grid_width: 2,
      channels: 3,
      pooling: 'none',
      shape: [2, 5, 3],
      data: Float32Array.from({ length: 30 }, (_, i) => i * 0.25 - 3),
    };
    const writer = await McapRosWriter.create(file);
    const channels = {
      image: await writer.addChannel('/camera/image_raw', 'sensor_msgs/msg/Image'),
      compressed: await writer.addChannel('/camera/image_raw/compressed', 'sensor_msgs/msg/CompressedImage'),
      joints: await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState'),
      multi: await writer.addChannel('/policy/action', 'std_msgs/msg/Float64MultiArray'),
      trajectory: await writer.addChannel('/arm_controller/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory'),
      twist: await writer.addChannel('/servo/delta_twist_cmds', 'geometry_msgs/msg/TwistStamped'),
      diagnostics: await writer.addChannel('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray'),
      features: await writer.addChannel('/s2/features', 's2_policy/msg/S2Features'),
    };
    await writer.write(channels.image, image, 1n * SEC);
    await writer.write(channels.compressed, compressed, 2n * SEC);
    await writer.write(channels.joints, joints, 3n * SEC, 3n * SEC - 100n);
    await writer.write(channels.multi, multi, 4n * SEC);
    await writer.write(channels.trajectory, trajectory, 5n * SEC);
    await writer.write(channels.twist, twist, 6n * SEC);
    await writer.write(channels.diagnostics, diagnostics, 7n * SEC);
    await writer.write(channels.features, features, 8n * SEC);
    await writer.close();

    const got = await readAll(file);
    assert.deepEqual(
      got.map((m) => m.topic),
      Object.values(channels).map((c) => c.topic),
    );
    const byTopic = new Map(got.map((m) => [m.topic, m]));

    const img = byTopic.get('/camera/image_raw') as BagMessage;
    assert.ok(isMessageOf(img, 'sensor_msgs/msg/Image'));
    const { data: imgData, ...imgRest } = img.message;
    const { data: srcData, ...srcRest } = image;
    assert.deepEqual(imgRest, srcRest);
    assert.ok(imgData instanceof Uint8Array, 'uint8[] decodes to a Uint8Array');
    assert.equal(imgData.length, 921_600);
    assert.ok(Buffer.from(imgData).equals(Buffer.from(srcData as Uint8Array)), 'image bytes equal');
    assert.equal(imgData.buffer, img.data.buffer, 'image data is a view into the payload, not a copy');

    const js = byTopic.get('/joint_states') as BagMessage;
    assert.ok(isMessageOf(js, 'sensor_msgs/msg/JointState'));
    assert.ok(js.message.position instanceof Float64Array, 'float64[] decodes to a Float64Array');
    assert.deepEqual(plain(js.message), plain(joints));
    assert.equal(js.publishTime, 3n * SEC - 100n);
    assert.equal(js.logTime, 3n * SEC);

    const expected: [string, unknown][] = [
      ['/camera/image_raw/compressed', compressed],
      ['/policy/action', multi],
      ['/arm_controller/joint_trajectory', trajectory],
      ['/servo/delta_twist_cmds', twist],
      ['/diagnostics', diagnostics],
      ['/s2/features', features],
    ];
    for (const [topic, message] of expected) assert.deepEqual(plain(byTopic.get(topic)?.message), plain(message), topic);
    const feat = byTopic.get('/s2/features')?.message as S2FeaturesMsg;
    assert.ok(feat.data instanceof Float32Array && feat.shape instanceof Uint32Array);
    assert.ok(Object.is((byTopic.get('/policy/action')?.message as Float64MultiArrayMsg).data[5], -0), 'float64 -0 survives');
  });

  it('stores profile ros2, ros2msg schemas, cdr channels with offered_qos_profiles, and a rosbag2 metadata record', async () => {
    const file = join(dir, 'conventions.mcap');
    const writer = await McapRosWriter.create(file, { rosDistro: 'humble' });
    const cam = await writer.addChannel('/cam', 'sensor_msgs/msg/Image', { qos: [defaultOfferedQos({ reliability: 'best_effort' })] });
    const cam2 = await writer.addChannel('/cam2', 'sensor_msgs/Image', { typeHash: 'RIHS01_abc' });
    await writer.write(cam, rgbImage(1), 10n);
    await writer.write(cam2, rgbImage(2), 20n);
    await writer.close();

    const handle = await open(file, 'r');
    try {
      const r = await McapIndexedReader.Initialize({ readable: new FileReadable(handle, BigInt(statSync(file).size)) });
      assert.equal(r.header.profile, 'ros2');
      assert.equal(r.schemasById.size, 1, 'one schema shared by both Image topics');
      const schema = [...r.schemasById.values()][0];
      assert.equal(schema.name, 'sensor_msgs/msg/Image');
      assert.equal(schema.encoding, 'ros2msg');
      assert.equal(new TextDecoder().decode(schema.data), rosbag2DefinitionText('sensor_msgs/msg/Image'));
      const channels = [...r.channelsById.values()];
      assert.deepEqual(
        channels.map((c) => [c.id, c.topic, c.messageEncoding]),
        [
          [1, '/cam', 'cdr'],
          [2, '/cam2', 'cdr'],
        ],
      );
      assert.equal(parseOfferedQos(channels[0].metadata.get('offered_qos_profiles') ?? '', 'cam')[0].reliability, 'best_effort');
      assert.equal(channels[1].metadata.get('topic_type_hash'), 'RIHS01_abc');
      assert.ok(r.chunkIndexes.length >= 2, 'two 900 KiB images do not share a 768 KiB chunk');
      assert.ok(r.chunkIndexes.every((c) => c.compression === '' && c.messageIndexLength > 0n));
      const metadata = [];
      for await (const m of r.readMetadata({ name: 'rosbag2' })) metadata.push(m);
      assert.equal(metadata.length, 1);
      assert.deepEqual([...metadata[0].metadata], [['ROS_DISTRO', 'humble']]);
    } finally {
      await handle.close();
    }
  });

  it('lists topics with types and counts, and iterates two interleaved topics in log-time order', async () => {
    const file = join(dir, 'interleaved.mcap');
    // A small chunk size gives many chunks, and writing one topic after the other leaves them overlapping in time.
    const writer = await McapRosWriter.create(file, { chunkSize: 2048 });
    const joints = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    const twist = await writer.addChannel('/cmd', 'geometry_msgs/msg/TwistStamped');
    for (let i = 0; i < 60; i++) {
      await writer.write(joints, { header: header(i), name: ['j'], position: [i], velocity: [], effort: [] }, BigInt(2 * i) * 1000n);
    }
    for (let i = 0; i < 40; i++) {
      await writer.write(twist, { header: header(i), twist: { linear: { x: i, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } } }, BigInt(2 * i + 1) * 1000n);
    }
    await writer.close();

    const reader = await McapRosReader.open(file);
    assert.ok(reader.isIndexed);
    const topics = await reader.topics();
    assert.deepEqual(
      topics.map((t) => [t.topic, t.type, t.messageCount, t.definition]),
      [
        ['/cmd', 'geometry_msgs/msg/TwistStamped', 40, 'file'],
        ['/joint_states', 'sensor_msgs/msg/JointState', 60, 'file'],
      ],
    );
    assert.deepEqual(reader.timeRange, { start: 0n, end: 118_000n });
    await reader.close();

    const all = await readAll(file);
    assert.equal(all.length, 100);
    const times = all.map((m) => m.logTime);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    // Alternating while both topics have messages, then the rest of /joint_states.
    assert.deepEqual(
      all.slice(0, 4).map((m) => m.topic),
      ['/joint_states', '/cmd', '/joint_states', '/cmd'],
    );
    assert.deepEqual(
      all.slice(80).map((m) => m.topic),
      Array(20).fill('/joint_states'),
    );
    assert.deepEqual(
      all.filter((m) => m.topic === '/joint_states').map((m) => (m.message as JointStateMsg).position[0]),
      [...Array(60).keys()],
    );

    const onlyCmd = await readAll(file, { topics: ['/cmd'] });
    assert.equal(onlyCmd.length, 40);
    assert.ok(onlyCmd.every((m) => m.topic === '/cmd'));

    // Both ends inclusive: 10 µs … 20 µs holds log times 10,11,…,20 µs.
    const window = await readAll(file, { startTime: 10_000n, endTime: 20_000n });
    assert.deepEqual(
      window.map((m) => m.logTime),
      Array.from({ length: 11 }, (_, i) => BigInt(10 + i) * 1000n),
    );
    const both = await readAll(file, { topics: ['/cmd'], startTime: 10_000n, endTime: 20_000n });
    assert.deepEqual(
      both.map((m) => m.logTime),
      [11_000n, 13_000n, 15_000n, 17_000n, 19_000n],
    );
    const raw = await readAll(file, { topics: ['/cmd'], decode: false });
    assert.ok(raw.every((m) => m.message === undefined && m.data.byteLength > 0));
  });
});

describe('bag: interop with CDR built by hand', () => {
  // sensor_msgs/JointState {stamp 1 s 2 ns, frame "base", name [j1, j2], position [0.5, -1.25], velocity [], effort [3]}
  // in CDR_LE, laid out from the CDR rules (alignment relative to byte 4, strings with length and NUL):
  const HAND_BUILT = Buffer.from(
    [
      '00010000', // encapsulation: CDR_LE, options 0
      '01000000',
      '02000000', // stamp.sec, stamp.nanosec
      '05000000',
      '6261736500',
      '000000', // frame_id length 5, "base\0", pad to 4
      '02000000', // name: 2 strings
      '03000000',
      '6a3100',
      '00', // "j1\0", pad
      '03000000',
      '6a3200',
      '00', // "j2\0", pad
      '02000000',
      '00000000', // position: 2 float64, pad to 8 (byte 48 is 44 past the origin)
      '000000000000e03f',
      '000000000000f4bf', // 0.5, -1.25
      '00000000', // velocity: 0
      '01000000',
      '0000000000000840', // effort: 1, 3.0 (already 8-aligned)
    ].join(''),
    'hex',
  );

  it('decodes a hand-built JointState payload, in a bag and directly', async () => {
    assert.equal(HAND_BUILT.length, 84);
    const expected = {
      header: { stamp: { sec: 1, nanosec: 2 }, frame_id: 'base' },
      name: ['j1', 'j2'],
      position: [0.5, -1.25],
      velocity: [],
      effort: [3],
    };
    const direct = new MessageReader(registeredDefinitions('sensor_msgs/msg/JointState')).readMessage(new Uint8Array(HAND_BUILT));
    assert.deepEqual(plain(direct), expected);

    const file = join(tempDir('s2-bag-'), 'hand.mcap');
    const writer = await McapRosWriter.create(file);
    const ch = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    await writer.writeRaw(ch, new Uint8Array(HAND_BUILT), 5n);
    // Our own encoder must produce exactly the same bytes for the same values.
    await writer.write(ch, expected, 6n);
    await writer.close();
    const [fromHand, fromOurs] = await readAll(file);
    assert.deepEqual(plain(fromHand.message), expected);
    assert.ok(Buffer.from(fromOurs.data).equals(HAND_BUILT), `our CDR ${Buffer.from(fromOurs.data).toString('hex')}`);
  });
});

describe('bag: bad input', () => {
  const dir = tempDir('s2-bag-bad-');

  async function writeImages(file: string, n: number, chunkSize?: number): Promise<void> {
    const writer = await McapRosWriter.create(file, { chunkSize });
    const cam = await writer.addChannel('/cam', 'sensor_msgs/msg/Image');
    const js = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    for (let i = 0; i < n; i++) {
      const img = rgbImage(i);
      await writer.write(cam, { ...img, height: 48, width: 64, step: 192, data: (img.data as Uint8Array).subarray(0, 48 * 192) }, BigInt(i) * SEC);
      await writer.write(js, { header: header(i), name: ['a'], position: [i], velocity: [], effort: [] }, BigInt(i) * SEC + 1n);
    }
    await writer.close();
  }

  it('counts and skips undecodable messages on one topic, naming the field, while the others are read', async () => {
    const file = join(dir, 'badcdr.mcap');
    const twist = { header: header(0), twist: { linear: { x: 1, y: 2, z: 3 }, angular: { x: 0, y: 0, z: 0 } } };
    const ok = { header: header(1), name: ['a'], position: [1], velocity: [], effort: [] };
    // A valid header (frame_id "x"), then at byte 20 a name sequence claiming 1e9 strings in a 40-byte payload.
    const broken = Buffer.from('00010000' + '01000000' + '02000000' + '02000000' + '7800' + '0000' + '00ca9a3b' + '00'.repeat(16), 'hex');
    // Valid JointState bytes plus 8 stray bytes: a definition/payload mismatch.
    const valid = new MessageWriter(registeredDefinitions('sensor_msgs/msg/JointState')).writeMessage(ok);
    const padded = new Uint8Array(valid.byteLength + 8);
    padded.set(valid);
    const writer = await McapRosWriter.create(file);
    const good = await writer.addChannel('/cmd', 'geometry_msgs/msg/TwistStamped');
    const bad = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    await writer.writeRaw(bad, new Uint8Array(broken), 1n);
    await writer.write(good, twist, 2n);
    await writer.writeRaw(bad, padded, 3n);
    await writer.write(bad, ok, 4n);
    await writer.close();

    const failures: DecodeFailure[] = [];
    const reader = await McapRosReader.open(file, { onDecodeError: (f) => failures.push(f) });
    const got: BagMessage[] = [];
    for await (const m of reader.messages()) got.push(m);
    assert.deepEqual(
      got.map((m) => [m.topic, m.logTime]),
      [
        ['/cmd', 2n],
        ['/joint_states', 4n],
      ],
    );
    assert.equal(reader.decodeFailures.total, 2);
    assert.equal(reader.decodeFailures.byTopic.get('/joint_states'), 2);
    assert.equal(reader.decodeFailures.byTopic.get('/cmd'), undefined);
    assert.equal(failures[0].file, file);
    assert.equal(failures[0].topic, '/joint_states');
    assert.equal(failures[0].logTime, 1n);
    assert.match(failures[0].reason, /field 'name' \(string\[\]\) at byte 24: 1000000000 elements/);
    assert.match(failures[1].reason, /8 bytes left over/);
    await reader.close();
  });

  it('refuses a file that is not MCAP, naming it', async () => {
    const file = join(dir, 'not.mcap');
    writeFileSync(file, 'this is not an mcap file at all');
    await rejectsWith(McapRosReader.open(file), new RegExp(`^${file.replace(/[.]/g, '\\.')}: not an MCAP file`));
    await rejectsWith(McapRosReader.open(join(dir, 'missing.mcap')), /missing\.mcap: cannot open/);
    await rejectsWith(McapRosReader.open(dir), /: is a directory; pass the \.mcap file inside it$/);
  });

  it('refuses a truncated file in one line naming it, and reads its complete part with allowTruncated', async () => {
    const file = join(dir, 'truncated.mcap');
    await writeImages(file, 20, 4096);
    const size = statSync(file).size;
    truncateSync(file, Math.floor(size * 0.6));
    const message = await rejectsWith(
      McapRosReader.open(file),
      /truncated MCAP \(cut off inside its data section; .*after \d+ complete messages\): repair it with 'mcap recover /,
    );
    assert.ok(message.startsWith(`${file}: `), message);

    const reader = await McapRosReader.open(file, { allowTruncated: true });
    assert.equal(reader.isIndexed, false);
    assert.match(reader.indexProblem ?? '', /magic/);
    assert.ok(reader.truncatedAt !== undefined && reader.truncatedAt < size * 0.6);
    const counts = new Map((await reader.topics()).map((t) => [t.topic, t.messageCount]));
    let n = 0;
    for await (const m of reader.messages()) {
      assert.ok(m.message !== undefined);
      n++;
    }
    assert.ok(n > 5 && n < 40, `read ${n} of 40 messages`);
    assert.equal(n, (counts.get('/cam') ?? 0) + (counts.get('/joint_states') ?? 0));
    assert.equal(reader.decodeFailures.total, 0);
    await reader.close();
  });

  it('ends the iteration with a one-line error naming the file when a chunk is corrupt', async () => {
    const file = join(dir, 'corrupt.mcap');
    await writeImages(file, 20, 4096);
    const handle = await open(file, 'r+');
    const r = await McapIndexedReader.Initialize({ readable: new FileReadable(handle, BigInt(statSync(file).size)) });
    const chunk = r.chunkIndexes[2];
    const at = Number(chunk.chunkStartOffset + chunk.chunkLength / 2n);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, at);
    await handle.close();
    await rejectsWith(readAll(file), /corrupt\.mcap: Incorrect chunk CRC .* \(after the message at log time \d+ ns\)/);
  });

  it('names the file and compression when no decompressor is given, and reads with one', async () => {
    const file = join(dir, 'zstd.mcap');
    // A stand-in "zstd" that stores chunks as they are: enough to exercise the decompressor plumbing.
    const writer = await McapRosWriter.create(file, { compressChunk: (data) => ({ compression: 'zstd', compressedData: data }) });
    const js = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    await writer.write(js, { header: header(1), name: ['a'], position: [1], velocity: [], effort: [] }, 1n);
    await writer.close();
    const reader = await McapRosReader.open(file);
    assert.equal((await reader.topics())[0].messageCount, 1, 'topics are listed without decompressing');
    await rejectsWith(
      (async () => {
        for await (const _ of reader.messages()) void _;
      })(),
      /zstd\.mcap: chunks are zstd-compressed .* no zstd decompressor/,
    );
    await reader.close();
    const withHandler = await McapRosReader.open(file, { decompressHandlers: { zstd: (data) => data } });
    let n = 0;
    for await (const m of withHandler.messages()) n += (m.message as JointStateMsg).name.length;
    assert.equal(n, 1);
    await withHandler.close();
  });

  it('rejects messages that do not fit their definition, naming topic and field', async () => {
    const writer = await McapRosWriter.create(join(dir, 'shape.mcap'));
    const js = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    const cam = await writer.addChannel('/cam', 'sensor_msgs/msg/Image');
    const base = { header: header(1), name: ['a'], position: [1], velocity: [], effort: [] };
    // MessageWriter would write a length prefix and no data for a Float32Array in a float64[] field.
    await rejectsWith(
      writer.write(js, { ...base, position: new Float32Array([1]) as unknown as number[] }, 1n),
      /topic \/joint_states .*field 'position': expected Float64Array or an array/,
    );
    const { name: _name, ...noName } = base;
    await rejectsWith(writer.write(js, noName as unknown as JointStateMsg, 1n), /field 'name': expected a value/);
    await rejectsWith(writer.write(cam, { ...rgbImage(0), height: -1 }, 1n), /field 'height': expected an integer in \[0, 4294967295\]/);
    await assert.rejects(writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState'), /already added/);
    await assert.rejects(writer.addChannel('/odom', 'nav_msgs/msg/Odometry'), /not registered/);
    // A boolean is_bigendian (as rclnodejs may hand it) is written as 0/1.
    await writer.write(cam, { ...rgbImage(0), is_bigendian: true }, 2n);
    await writer.close();
    const [img] = await readAll(join(dir, 'shape.mcap'));
    assert.equal((img.message as ImageMsg).is_bigendian, 1);
  });
});

describe('bag: strings', () => {
  it('writes ROS strings as UTF-8, as rmw does: non-ASCII text round-trips byte-exactly', async () => {
    const dir = tempDir();
    const file = join(dir, 'utf8.mcap');
    const writer = await McapRosWriter.create(file);
    const js = await writer.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
    const names = ['schulter_ü', 'step 100 < 3×64', '関節', '🤖'];
    await writer.write(js, { header: header(1, 'kamera_ü ×'), name: names, position: [1, 2, 3, 4], velocity: [], effort: [] }, 1n);
    await writer.close();
    const [m] = await readAll(file);
    const msg = m.message as JointStateMsg;
    assert.equal(msg.header.frame_id, 'kamera_ü ×');
    assert.deepEqual(msg.name, names);
    // The length prefix counts UTF-8 bytes plus the NUL: 'kamera_ü ×' is 10 characters, 13 bytes.
    const bytes = new TextEncoder().encode('kamera_ü ×');
    const at = Buffer.from(m.data).indexOf(Buffer.from(bytes));
    assert.ok(at >= 4);
    assert.equal(new DataView(m.data.buffer, m.data.byteOffset).getUint32(at - 4, true), bytes.length + 1);
  });
});

describe('bag: unindexed files', () => {
  const dir = tempDir('s2-bag-unindexed-');
  const jointStateSchema = new TextEncoder().encode(rosbag2DefinitionText('sensor_msgs/msg/JointState'));

  /** A JointState file written with @mcap/core directly, in the given (possibly unsorted) log-time order. */
  async function writePlain(file: string, times: bigint[], options: Omit<McapWriterOptions, 'writable'>): Promise<void> {
    const mem = new MemoryWritable();
    const writer = new McapWriter({ writable: mem, ...options });
    await writer.start({ profile: 'ros2', library: 'test' });
    const schemaId = await writer.registerSchema({ name: 'sensor_msgs/msg/JointState', encoding: 'ros2msg', data: jointStateSchema });
    const channelId = await writer.registerChannel({ topic: '/joint_states', schemaId, messageEncoding: 'cdr', metadata: new Map() });
    const encoder = new MessageWriter(registeredDefinitions('sensor_msgs/msg/JointState'));
    for (const t of times) {
      const data = encoder.writeMessage({ header: header(Number(t)), name: ['a'], position: [Number(t)], velocity: [], effort: [] });
      await writer.addMessage({ channelId, sequence: 0, logTime: t, publishTime: t, data });
    }
    await writer.end();
    mem.save(file);
  }

  const noSummary = {
    useStatistics: false,
    useSummaryOffsets: false,
    useChunks: true,
    repeatSchemas: false,
    repeatChannels: false,
    useAttachmentIndex: false,
    useMetadataIndex: false,
    useMessageIndex: false,
    useChunkIndex: false,
  };

  it('streams a file without summary, with counts and time filter', async () => {
    const file = join(dir, 'nosummary.mcap');
    await writePlain(file, [1n, 2n, 3n, 5n, 8n], noSummary);
    const reader = await McapRosReader.open(file);
    assert.equal(reader.isIndexed, false);
    assert.deepEqual(
      (await reader.topics()).map((t) => [t.topic, t.messageCount]),
      [['/joint_states', 5]],
    );
    const got: bigint[] = [];
    for await (const m of reader.messages({ startTime: 2n, endTime: 5n })) got.push(m.logTime);
    assert.deepEqual(got, [2n, 3n, 5n]);
    await reader.close();
  });

  it('reads an unchunked file with a summary (the fastwrite preset), which the index alone cannot serve', async () => {
    const file = join(dir, 'fastwrite.mcap');
    await writePlain(file, [1n, 2n, 3n], { useChunks: false });
    const values = (await readAll(file)).map((m) => (m.message as JointStateMsg).position[0]);
    assert.deepEqual(values, [1, 2, 3]);
  });

  it('refuses to stream an unindexed file whose messages are out of log-time order', async () => {
    const file = join(dir, 'unordered.mcap');
    await writePlain(file, [1n, 5n, 3n], noSummary);
    await rejectsWith(readAll(file), /unordered\.mcap: unindexed and 1 messages are out of log-time order; .*mcap recover/);
  });

  it('names a missing decompressor for compressed chunks in a streamed file', async () => {
    const file = join(dir, 'lz4.mcap');
    await writePlain(file, [1n], { ...noSummary, compressChunk: (data) => ({ compression: 'lz4', compressedData: data }) });
    await rejectsWith(McapRosReader.open(file), /lz4\.mcap: chunks are lz4-compressed/);
  });
});
