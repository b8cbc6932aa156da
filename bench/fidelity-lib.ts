// Replay fidelity: plays a recording with `ros2 bag play` into the live node while `ros2 bag record` captures its
// actions, replays the same recording with `s2-policy replay`, and compares the two action streams on the
// recording's timeline (number of actions, ticks whose action differs, stale periods). Used by bench:fidelity and the
// live test; needs a sourced ROS 2 with ros2bag.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { McapRosReader } from '../src/bag/reader.js';
import { openRecordingPath } from '../src/bag/rosbag2-reader.js';
import { Rosbag2Writer } from '../src/bag/rosbag2-writer.js';
import { loadConfig, type Config } from '../src/config/config.js';
import type { JointStateMsg, JointTrajectoryMsg, Float64MultiArrayMsg, TwistStampedMsg } from '../src/msgs/types.js';
import { timeToNs } from '../src/msgs/types.js';
import { configToParams, stringifyParamsFile } from '../src/ros/params.js';
import { ACTION_TYPES } from '../src/pipeline/messages.js';
import { resolveTopic } from '../src/run/replay.js';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 's2-policy.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TimedAction {
  /** On the recording's timeline, ns since its first message. */
  t: number;
  v: number[];
}

/** The values of an action message (positions, else velocities, of a trajectory's first point). */
export function actionValues(type: string, msg: unknown): number[] {
  if (type.endsWith('Float64MultiArray')) return Array.from((msg as Float64MultiArrayMsg).data);
  if (type.endsWith('TwistStamped')) {
    const t = (msg as TwistStampedMsg).twist;
    return [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z];
  }
  const p = (msg as JointTrajectoryMsg).points[0];
  return p ? Array.from(p.positions.length > 0 ? p.positions : p.velocities) : [];
}

/** The actions of a recording on `topic`, at their log times minus `offsetNs`. */
export async function readActions(path: string, topic: string, offsetNs: bigint): Promise<TimedAction[]> {
  const r = await openRecordingPath(path);
  const out: TimedAction[] = [];
  try {
    for await (const m of r.messages({ topics: [topic] })) out.push({ t: Number(m.logTime - offsetNs), v: actionValues(m.type, m.message) });
  } finally {
    await r.close();
  }
  return out;
}

/**
 * Where the live recording's clock stands against the source recording's: the median, over the joint states both
 * hold (matched by header stamp, which `ros2 bag play` leaves as recorded), of live receive time − recorded log time.
 */
export async function clockOffset(source: string, live: string, jointTopic: string): Promise<{ offsetNs: bigint; matched: number; spreadMs: number }> {
  const recorded = new Map<bigint, bigint>();
  const src = await openRecordingPath(source);
  for await (const m of src.messages({ topics: [jointTopic] })) recorded.set(timeToNs((m.message as JointStateMsg).header.stamp), m.logTime);
  await src.close();
  const deltas: bigint[] = [];
  const lv = await openRecordingPath(live);
  for await (const m of lv.messages({ topics: [jointTopic] })) {
    const at = recorded.get(timeToNs((m.message as JointStateMsg).header.stamp));
    if (at !== undefined) deltas.push(m.logTime - at);
  }
  await lv.close();
  if (deltas.length === 0) throw new Error(`${live}: none of the played joint states on ${jointTopic} was recorded`);
  deltas.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const q = (f: number) => deltas[Math.min(deltas.length - 1, Math.floor(f * deltas.length))];
  return { offsetNs: q(0.5), matched: deltas.length, spreadMs: Number(q(0.95) - q(0.05)) / 1e6 };
}

export interface StalePeriod {
  startMs: number;
  endMs: number;
}

export interface Comparison {
  windowMs: [number, number];
  liveActions: number;
  replayActions: number;
  /** Replay ticks paired one-to-one with a live tick within 0.6 control period. */
  paired: number;
  /** Of the paired ticks, those whose actions differ by more than `tolerance` in some component. */
  differing: number;
  differingFraction: number;
  /** Paired ticks where either action is not the safe (all-zero) one, and of those the ones differing by > coarse. */
  pairedMoving: number;
  differingMoving: number;
  differingCoarse: number;
  coarseTolerance: number;
  /** Of pairedMoving, those whose live action is within coarseTolerance of a replay action at most one period away. */
  matchedWithinOneTick: number;
  medianAbsDiff: number;
  maxAbsDiff: number;
  /** Median |live tick time − replay tick time| of the pairs (the two clocks' phase), ms. */
  medianPhaseMs: number;
  liveStale: StalePeriod[];
  replayStale: StalePeriod[];
}

/** Runs of at least two consecutive all-zero (safe) actions. */
export function stalePeriods(actions: readonly TimedAction[]): StalePeriod[] {
  const out: StalePeriod[] = [];
  let start = -1;
  for (let i = 0; i <= actions.length; i++) {
    const safe = i < actions.length && actions[i].v.every((x) => x === 0);
    if (safe && start < 0) start = i;
    if (!safe && start >= 0) {
      if (i - start >= 2) out.push({ startMs: actions[start].t / 1e6, endMs: actions[i - 1].t / 1e6 });
      start = -1;
    }
  }
  return out;
}

/** Compares two action streams on one timeline over [fromMs, toMs]. */
export function compareActions(
  live: readonly TimedAction[],
  replay: readonly TimedAction[],
  periodMs: number,
  fromMs: number,
  toMs: number,
  tolerance = 1e-6,
  coarseTolerance = 1e-2,
): Comparison {
  const inWindow = (a: TimedAction) => a.t / 1e6 >= fromMs && a.t / 1e6 <= toMs;
  const l = live.filter(inWindow);
  const r = replay.filter(inWindow);
  const diffs: number[] = [];
  const phases: number[] = [];
  let differing = 0;
  let pairedMoving = 0;
  let differingMoving = 0;
  let differingCoarse = 0;
  let matchedWithinOneTick = 0;
  // One-to-one pairs in time order: the nearest live tick not yet paired, within 0.6 period (the two clocks tick at
  // the same rate with an arbitrary phase between them).
  let j = 0;
  for (const a of r) {
    while (j < l.length && (l[j].t - a.t) / 1e6 < -0.6 * periodMs) j++;
    if (j + 1 < l.length && Math.abs(l[j + 1].t - a.t) < Math.abs(l[j].t - a.t)) j++;
    const b = l[j];
    if (!b || Math.abs(b.t - a.t) / 1e6 > 0.6 * periodMs) continue;
    j++;
    phases.push(Math.abs(b.t - a.t) / 1e6);
    const d = Math.max(0, ...a.v.map((x, k) => Math.abs(x - (b.v[k] ?? NaN))));
    diffs.push(Number.isNaN(d) ? Infinity : d);
    if (!(d <= tolerance)) differing++;
    if (a.v.some((x) => x !== 0) || b.v.some((x) => x !== 0)) {
      pairedMoving++;
      if (!(d <= tolerance)) differingMoving++;
      if (!(d <= coarseTolerance)) differingCoarse++;
      const near = r.filter((x) => Math.abs(x.t - b.t) / 1e6 <= 1.5 * periodMs);
      if (near.some((x) => Math.max(0, ...x.v.map((y, k) => Math.abs(y - (b.v[k] ?? NaN)))) <= coarseTolerance)) matchedWithinOneTick++;
    }
  }
  const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]);
  return {
    windowMs: [fromMs, toMs],
    liveActions: l.length,
    replayActions: r.length,
    paired: diffs.length,
    differing,
    differingFraction: diffs.length === 0 ? NaN : differing / diffs.length,
    pairedMoving,
    differingMoving,
    differingCoarse,
    coarseTolerance,
    matchedWithinOneTick,
    medianAbsDiff: median(diffs),
    maxAbsDiff: diffs.length === 0 ? NaN : Math.max(...diffs),
    medianPhaseMs: median(phases),
    liveStale: stalePeriods(l),
    replayStale: stalePeriods(r),
  };
}

/** The demo recording copied into a rosbag2 folder by the project's writer (what `ros2 bag play` is given). */
export async function copyToFolder(source: string, folder: string, maxFileSize?: number): Promise<void> {
  const r = await McapRosReader.open(source);
  const w = await Rosbag2Writer.create(folder, { maxFileSize });
  const channels = new Map<string, Awaited<ReturnType<typeof w.addChannel>>>();
  for (const t of await r.topics()) channels.set(t.topic, await w.addChannel(t.topic, t.type));
  for await (const m of r.messages({ decode: false })) await w.writeRaw(channels.get(m.topic) as never, m.data, m.logTime, m.publishTime);
  await w.close();
  await r.close();
}

function run(cmd: string, args: string[], log: (s: string) => void): ChildProcess {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => log(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log(d.toString()));
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function stop(child: ChildProcess, ms = 10000): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGINT');
  const done = await Promise.race([exited(child).then(() => true), sleep(ms).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited(child);
  }
}

/** The control settings the comparison needs (a features-only configuration has none). */
export function controlOf(config: Config): NonNullable<Config['control']> {
  if (!config.control) throw new Error('the fidelity run compares actions; the configuration has no control section');
  return config.control;
}

export interface LiveRunOptions {
  /** The recording to play (file or rosbag2 folder) and the configuration it was made for. */
  bag: string;
  configFile: string;
  /** Working folder; the live recording goes to `dir/live`. */
  dir: string;
  /** Extra arguments for `ros2 bag record` (e.g. splitting and compression). */
  recordArgs?: string[];
  log?: (s: string) => void;
}

export interface LiveRun {
  liveBag: string;
  actionTopic: string;
  config: Config;
}

/**
 * Starts the node with the configuration as a parameter file, records its actions (and the played joint states, to
 * align the clocks) with `ros2 bag record`, plays the recording with `ros2 bag play`, and stops both.
 */
export async function runLive(o: LiveRunOptions): Promise<LiveRun> {
  const log = o.log ?? (() => undefined);
  const config = loadConfig(o.configFile);
  mkdirSync(o.dir, { recursive: true });
  const params = join(o.dir, 'params.yaml');
  writeFileSync(params, stringifyParamsFile({ ...configToParams(config), autostart: true }, ['s2_policy']));
  const actionTopic = resolveTopic(controlOf(config).action_topic);
  const jointTopic = config.joint_states?.topic;
  if (!jointTopic) throw new Error('the fidelity run aligns clocks by joint states; the configuration has none');
  const liveBag = join(o.dir, 'live');
  const node = run(process.execPath, [BIN, 'ros', '--ros-args', '--params-file', params], (s) => log(`[node] ${s}`));
  let recorder: ChildProcess | undefined;
  try {
    // The node publishes (safe actions) once configured and active; wait for the first.
    const first = spawnSync('timeout', ['90', 'ros2', 'topic', 'echo', '--once', actionTopic, ACTION_TYPES[controlOf(config).action_interface]], {
      encoding: 'utf8',
    });
    if (first.status !== 0) throw new Error(`no action on ${actionTopic} within 90 s of starting the node`);
    // The inputs too, as the node received them: the live folder can then be replayed itself.
    const inputs = [...config.cameras.map((c) => c.topic), jointTopic];
    recorder = run('ros2', ['bag', 'record', '-s', 'mcap', '-o', liveBag, ...(o.recordArgs ?? []), actionTopic, '/diagnostics', ...inputs], (s) =>
      log(`[record] ${s}`),
    );
    await sleep(3000);
    const play = spawnSync('ros2', ['bag', 'play', o.bag], { encoding: 'utf8', cwd: ROOT });
    log(`[play] ${play.stdout}${play.stderr}`);
    if (play.status !== 0) throw new Error(`ros2 bag play ${o.bag} failed (${play.status}): ${play.stderr.split('\n').slice(-3).join(' ')}`);
    await sleep(1500);
  } finally {
    if (recorder) await stop(recorder);
    await stop(node);
  }
  return { liveBag, actionTopic, config };
}

/** Runs `s2-policy replay` at the given rate; returns the output path. */
export function runReplay(bag: string, configFile: string, out: string, rate: number): string {
  const r = spawnSync(process.execPath, [BIN, 'replay', '--bag', bag, '--config', configFile, '--out', out, '--rate', String(rate), '--force'], {
    encoding: 'utf8',
    cwd: ROOT,
  });
  if (r.status !== 0) throw new Error(`s2-policy replay failed (${r.status}): ${r.stderr.trim()}`);
  return out;
}

/**
 * The configuration with its commands on the wire as they are: a Float64MultiArray on `~/commands`. A JointTrajectory
 * carrying a velocity command holds positions integrated from the joint state the node had (see messages.ts), which
 * neither compare as commands nor show the safe action as zero. Written beside the original (its paths are relative
 * to its folder); returns the new file.
 */
export function commandsConfig(configFile: string): string {
  const raw = parseYaml(readFileSync(configFile, 'utf8')) as { control?: Record<string, unknown> };
  if (raw.control) Object.assign(raw.control, { action_interface: 'float64_multi_array', action_topic: '~/commands' });
  const out = configFile.replace(/(\.ya?ml)?$/, '.commands.yaml');
  writeFileSync(out, stringifyYaml(raw));
  return out;
}

/**
 * The whole measurement: live run, replay at `rates`, and the comparison of each with the live actions (the
 * commands, as commandsConfig puts them on the wire).
 */
export async function measureFidelity(
  o: LiveRunOptions & { rates: number[] },
): Promise<{ live: LiveRun; offset: Awaited<ReturnType<typeof clockOffset>>; durationMs: number; results: { rate: number; c: Comparison }[] }> {
  o = { ...o, configFile: commandsConfig(o.configFile) };
  const live = await runLive(o);
  const offset = await clockOffset(o.bag, live.liveBag, live.config.joint_states?.topic as string);
  const src = await openRecordingPath(o.bag);
  const range = src.timeRange as { start: bigint; end: bigint };
  await src.close();
  const durationMs = Number(range.end - range.start) / 1e6;
  const liveActions = await readActions(live.liveBag, live.actionTopic, range.start + offset.offsetNs);
  const periodMs = 1000 / controlOf(live.config).rate_hz;
  // The window the replay covers: the recording plus the watchdog's tail.
  const toMs = durationMs + live.config.watchdog.stale_after_ms + periodMs;
  const results: { rate: number; c: Comparison }[] = [];
  for (const rate of o.rates) {
    const out = runReplay(o.bag, o.configFile, join(o.dir, `replay_rate${rate}.mcap`), rate);
    const replayActions = await readActions(out, live.actionTopic, range.start);
    results.push({ rate, c: compareActions(liveActions, replayActions, periodMs, 0, toMs) });
  }
  return { live, offset, durationMs, results };
}
