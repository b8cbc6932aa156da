// Live ROS 2 benchmark: receiving 640×480 rgb8 sensor_msgs/Image at 30 Hz from another process, two ways —
// rclnodejs's own deserialisation into typed arrays, and serialized messages decoded by the project (CDR reader).
// Run with `npm run bench:ros2` in a shell where ROS 2 is sourced. Prints receive rate, CPU per message, latency.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import { registeredDefinitions } from '../src/msgs/definitions.js';
import { loadRclnodejs } from '../src/ros/detect.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const W = 640;
const H = 480;

if (process.argv[2] === 'publisher') {
  // Child: publishes at 30 Hz, stamping each message with the send time.
  const rcl = (await import('rclnodejs')).default;
  await rcl.init();
  const node = rcl.createNode('bench_image_publisher');
  // Our own message shape; rclnodejs's message typings exist only where they were generated.
  const pub = node.createPublisher('sensor_msgs/msg/Image' as never, '/bench/image_raw', { qos: rcl.QoS.profileSensorData }) as unknown as {
    publish(m: object): void;
  };
  const data = new Uint8Array(W * H * 3).map((_, i) => i % 251);
  rcl.spin(node);
  let n = 0;
  const timer = setInterval(() => {
    const ns = BigInt(Date.now()) * 1_000_000n;
    pub.publish({
      header: { stamp: { sec: Number(ns / 1_000_000_000n), nanosec: Number(ns % 1_000_000_000n) }, frame_id: String(n++) },
      height: H,
      width: W,
      encoding: 'rgb8',
      is_bigendian: 0,
      step: W * 3,
      data,
    });
  }, 1000 / 30);
  setTimeout(
    () => {
      clearInterval(timer);
      node.destroy();
      rcl.shutdown();
      process.exit(0);
    },
    (SECONDS + 2) * 1000,
  );
} else {
  const ok = await loadRclnodejs();
  if (!ok.ok) {
    console.log(`skipped: ${ok.reason}`);
    process.exit(0);
  }
  const rcl = (await import('rclnodejs')).default;
  process.env.ROS_DOMAIN_ID ??= String(150 + (process.pid % 50));
  await rcl.init();
  const reader = new MessageReader(registeredDefinitions('sensor_msgs/msg/Image'));

  interface Result {
    mode: string;
    received: number;
    cpuMsPerMsg: number;
    latencyP50: number;
    latencyP95: number;
    bytesOk: boolean;
  }

  async function run(mode: 'typed' | 'serialized'): Promise<Result> {
    const node = rcl.createNode(`bench_image_subscriber_${mode}`);
    const lat: number[] = [];
    let bytesOk = true;
    let measuring = false;
    let received = 0;
    const check = (img: { data: Uint8Array; width: number; height: number; header: { stamp: { sec: number; nanosec: number } } }) => {
      if (!measuring) return;
      received++;
      const sent = Number(img.header.stamp.sec) * 1000 + Number(img.header.stamp.nanosec) / 1e6;
      lat.push(Date.now() - sent);
      if (!(img.data instanceof Uint8Array) || img.data.length !== W * H * 3 || img.data[1000] !== 1000 % 251) bytesOk = false;
    };
    const qos = rcl.QoS.profileSensorData;
    if (mode === 'typed') {
      node.createSubscription('sensor_msgs/msg/Image' as never, '/bench/image_raw', { qos, enableTypedArray: true }, (m: unknown) => check(m as never));
    } else {
      node.createSubscription('sensor_msgs/msg/Image' as never, '/bench/image_raw', { qos, isRaw: true }, (raw: unknown) => {
        const buf = raw as Buffer;
        check(reader.readMessage(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)));
      });
    }
    rcl.spin(node);
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'publisher'], { stdio: 'inherit', env: process.env });
    await new Promise((r) => setTimeout(r, 1500)); // discovery and warm-up
    measuring = true;
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const cpu = process.cpuUsage(cpu0);
    measuring = false;
    await new Promise((r) => child.once('exit', r));
    node.destroy();
    lat.sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
    return { mode, received, cpuMsPerMsg: (cpu.user + cpu.system) / 1000 / Math.max(1, received), latencyP50: q(0.5), latencyP95: q(0.95), bytesOk };
  }

  console.log(
    `ROS 2 ${process.env.ROS_DISTRO} (${process.env.RMW_IMPLEMENTATION ?? 'default RMW'}): 640×480 rgb8 Image at 30 Hz from another process, ${SECONDS} s per mode`,
  );
  for (const mode of ['typed', 'serialized'] as const) {
    const r = await run(mode);
    console.log(
      `  ${r.mode.padEnd(10)} received ${r.received} (${(r.received / SECONDS).toFixed(1)} Hz)  CPU ${r.cpuMsPerMsg.toFixed(2)} ms/msg  latency p50 ${r.latencyP50.toFixed(1)} ms p95 ${r.latencyP95.toFixed(1)} ms  data ${r.bytesOk ? 'intact' : 'WRONG'}`,
    );
  }
  rcl.shutdown();
}
