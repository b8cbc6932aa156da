// Demonstrations to a policy through ROS 2, as a user with an arm goes: the simulation node's scripted expert drives
// the arm and publishes its commands, `ros2 bag record` records each demonstration (camera, /joint_states, commands;
// sqlite3 storage, Humble's default), `s2-policy extract` and `s2-policy fit --head bc` make a head of them, and the
// policy node runs that head against the simulation node over ROS (simulated time). The same head is also run in
// memory, and a head fitted on the same demonstrations collected in memory is run both ways, so the two paths can be
// compared: `npm run demos:ros2 -- --demos 100 --episodes 20 --out out/ros-demos` (needs a sourced ROS 2 and
// rclnodejs built against it). Prints one line per step with its time, a table, and writes OUT/result.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/config.js';
import { configToParams, stringifyParamsFile } from '../src/ros/params.js';
import { wilson } from '../src/sim/closed-loop.js';
import { DEMO_SIZES, ensureDemoBackbone, simConfig } from '../src/sim/closed-loop.js';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'out/ros-demos' },
    demos: { type: 'string', default: '100' },
    'demo-seed': { type: 'string', default: '1000' },
    'frame-every': { type: 'string', default: '12' },
    episodes: { type: 'string', default: '20' },
    seed: { type: 'string', default: '0' },
    epochs: { type: 'string' },
    chunk: { type: 'string', default: '2' },
    storage: { type: 'string', default: 'sqlite3' },
    steps: { type: 'string', default: 'record,extract,fit,collect,fit-memory,ros,memory' },
  },
});
const out = resolve(a.out);
const n = (k: keyof typeof a) => Number(a[k]);
const steps = new Set(a.steps.split(','));
const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const CLI = join(ROOT, 'bin', 's2-policy.js');
const EXPERT_TOPIC = '/teleop/joint_velocity';
const CAMERA_TOPIC = '/overhead_camera/image_raw';
const times: Record<string, number> = {};

function log(line: string): void {
  console.log(`[ros-demos ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** Runs `cmd` to completion, its output to the log file; a failure stops the script with the log's tail. */
function run(cmd: string, args: string[], logFile: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  writeFileSync(logFile, `$ ${cmd} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed (${r.status}): ${r.stderr.split('\n').slice(-5).join(' | ')}`);
  return r.stdout;
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((res) => (p.exitCode !== null ? res(p.exitCode) : p.once('exit', (code) => res(code))));
}

async function timed<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  times[name] = (performance.now() - t0) / 1000;
  log(`${name}: ${times[name].toFixed(0)} s`);
  return r;
}

const models = join(out, 'models');
mkdirSync(models, { recursive: true });
const backbone = join(models, 'backbone.onnx');
await ensureDemoBackbone(backbone);

/** The demo configuration with the S² map pooled as tokens (what the bc head reads), and `policy` for the node. */
function configFor(policy?: string): Record<string, unknown> {
  const c = simConfig(models, { sizes: DEMO_SIZES, pool: 'tokens' }) as unknown as Record<string, unknown>;
  const { policy: p, ...rest } = c;
  if (!policy) return rest;
  const { stats: _stats, ...head } = p as Record<string, unknown>;
  void _stats;
  return { ...rest, policy: { ...head, model: policy } };
}
const extractConfig = join(out, 'extract.yaml');
writeFileSync(extractConfig, stringify(configFor()));

const bags = join(out, 'bags');
const demoSeeds = Array.from({ length: n('demos') }, (_, i) => n('demo-seed') + i);

if (steps.has('record')) {
  await timed('record', async () => {
    mkdirSync(bags, { recursive: true });
    for (const seed of demoSeeds) {
      const bag = join(bags, `demo_${seed}`);
      if (existsSync(join(bag, 'metadata.yaml'))) continue;
      rmSync(bag, { recursive: true, force: true });
      // One recording per demonstration, as demonstrations are usually kept.
      const recorder = spawn('ros2', ['bag', 'record', '-s', a.storage, '-o', bag, '--topics', CAMERA_TOPIC, '/joint_states', EXPERT_TOPIC], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let recErr = '';
      recorder.stderr?.on('data', (d: Buffer) => (recErr += d.toString()));
      const sim = spawnSync(
        'node',
        [
          CLI,
          'ros',
          '--node',
          'sim',
          '--ros-args',
          '-p',
          `seed:=${seed}`,
          '-p',
          'episodes:=1',
          '-p',
          `expert_topic:=${EXPERT_TOPIC}`,
          '-p',
          `camera_every:=${a['frame-every']}`,
        ],
        { encoding: 'utf8', timeout: 120000 },
      );
      // The sim node returns after its last command: give the recorder a moment to write it, then stop it.
      await new Promise((r) => setTimeout(r, 500));
      recorder.kill('SIGINT');
      await exited(recorder);
      if (sim.status !== 0 || !existsSync(join(bag, 'metadata.yaml')))
        throw new Error(`demonstration ${seed}: sim node ${sim.status}: ${sim.stderr.slice(-400)} | recorder: ${recErr.slice(-400)}`);
      const last = /episode 1\/1 \(seed \d+\): (\w+) after (\d+) steps/.exec(sim.stdout + sim.stderr);
      if ((seed - n('demo-seed')) % 10 === 0) log(`recorded demonstration ${seed}: ${last ? `${last[1]} after ${last[2]} steps` : '?'}`);
    }
  });
}

const rosData = join(out, 'features-ros');
if (steps.has('extract')) {
  const list = readdirSync(bags)
    .filter((d) => demoSeeds.includes(Number(d.replace('demo_', ''))))
    .sort((x, y) => Number(x.replace('demo_', '')) - Number(y.replace('demo_', '')));
  const args = ['extract', ...list.flatMap((d) => ['--bag', join(bags, d)]), '--config', extractConfig, '--out', rosData];
  const stdout = await timed('extract', () =>
    run('node', [CLI, ...args, '--actions-topic', EXPERT_TOPIC, '--rows', 'actions', '--force'], join(out, 'extract.log')),
  );
  log(stdout.split('\n')[0]);
}

const fitArgs = ['--head', 'bc', ...(a.epochs ? ['--epochs', a.epochs] : []), '--chunk', a.chunk, '--force'];
const rosHead = join(out, 'head-ros', 'policy.onnx');
if (steps.has('fit')) {
  mkdirSync(join(out, 'head-ros'), { recursive: true });
  const stdout = await timed('fit', () => run('node', [CLI, 'fit', '--data', rosData, '--out', rosHead, ...fitArgs], join(out, 'fit-ros.log')));
  log(stdout.split('\n').find((l) => l.startsWith('bc head')) ?? '');
}

const memData = join(out, 'features-memory');
if (steps.has('collect')) {
  const args = ['sim', 'collect', '--head', 'bc', '--episodes', a.demos, '--seed', a['demo-seed'], '--frame-every', a['frame-every']];
  await timed('collect', () => run('node', [CLI, ...args, '--out', memData, '--force'], join(out, 'collect.log')));
}
const memHead = join(out, 'head-memory', 'policy.onnx');
if (steps.has('fit-memory')) {
  mkdirSync(join(out, 'head-memory'), { recursive: true });
  const stdout = await timed('fit-memory', () => run('node', [CLI, 'fit', '--data', memData, '--out', memHead, ...fitArgs], join(out, 'fit-memory.log')));
  log(stdout.split('\n').find((l) => l.startsWith('bc head')) ?? '');
}

interface Score {
  successes: number;
  episodes: number;
  interval: [number, number];
  perSeed: boolean[];
}

function score(perSeed: boolean[]): Score {
  const s = perSeed.filter(Boolean).length;
  return { successes: s, episodes: perSeed.length, interval: wilson(s, perSeed.length), perSeed };
}

/** The head run by the policy node against the simulation node, over ROS on simulated time. */
async function overRos(head: string, name: string): Promise<Score> {
  const params = join(out, `params-${name}.yaml`);
  const config = parseConfig(configFor(head), params, out);
  config.control!.action_topic = '/s2_policy/actions';
  writeFileSync(params, stringifyParamsFile(configToParams(config), ['s2_policy'], `# s2_policy parameters: the ${name} bc head over ROS\n`));
  const policy = spawn(
    'node',
    [CLI, 'ros', '--ros-args', '--params-file', params, '-p', 'autostart:=true', '-p', 'use_sim_time:=true', '-r', '__node:=s2_policy'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let policyLog = '';
  policy.stdout?.on('data', (d: Buffer) => (policyLog += d.toString()));
  policy.stderr?.on('data', (d: Buffer) => (policyLog += d.toString()));
  // The policy node loads its models before it acts; the simulation waits for nothing, so start it once the node
  // says it is configured (autostart activates it right after).
  const t0 = Date.now();
  while (!/configured \(/.test(policyLog)) {
    if (policy.exitCode !== null || Date.now() - t0 > 120000) throw new Error(`policy node did not become active: ${policyLog.slice(-600)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const sim = spawnSync(
    'node',
    [CLI, 'ros', '--node', 'sim', '--ros-args', '-p', `seed:=${a.seed}`, '-p', `episodes:=${a.episodes}`, '-p', 'action_topic:=/s2_policy/actions'],
    { encoding: 'utf8', timeout: 20 * 60000 },
  );
  policy.kill('SIGINT');
  await exited(policy);
  writeFileSync(join(out, `ros-${name}.log`), `${sim.stdout}\n${sim.stderr}\n--- policy node ---\n${policyLog}`);
  const results = [...(sim.stdout + sim.stderr).matchAll(/episode \d+\/\d+ \(seed (\d+)\): (success|failure)/g)].map((m) => m[2] === 'success');
  if (results.length !== n('episodes')) throw new Error(`over ROS (${name}): ${results.length} of ${a.episodes} episodes reported; see ros-${name}.log`);
  return score(results);
}

/** The same head in the in-memory closed loop (scripts/bc-sim.ts --head onnx), on the same seeds. */
function inMemory(head: string, name: string): Score {
  const dir = join(out, `memory-${name}`);
  run(
    'node',
    [join(ROOT, 'dist', 'scripts', 'bc-sim.js'), '--head', 'onnx', '--policy', head, '--episodes', a.episodes, '--seed', a.seed, '--out', dir],
    join(out, `memory-${name}.log`),
  );
  const r = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
    successes?: boolean[];
    closedLoop?: { successes: boolean[] };
  };
  const per = r.successes ?? r.closedLoop?.successes;
  if (!per) throw new Error(`${dir}/result.json: no per-episode successes`);
  return score(per);
}

const table: Record<string, Score> = {};
for (const [data, head] of [
  ['ros', rosHead],
  ['memory', memHead],
] as const) {
  if (!existsSync(head)) continue;
  if (steps.has('ros')) table[`${data}-fitted, run over ROS`] = await timed(`closed loop over ROS (${data}-fitted head)`, () => overRos(head, data));
  if (steps.has('memory')) table[`${data}-fitted, run in memory`] = await timed(`closed loop in memory (${data}-fitted head)`, () => inMemory(head, data));
}
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
console.log(`\n| demonstrations → head, run | success (seeds ${a.seed}…, ${a.episodes} episodes) | Wilson 95% |`);
console.log('|---|---|---|');
for (const [k, s] of Object.entries(table)) console.log(`| ${k} | ${s.successes}/${s.episodes} | ${pct(s.interval[0])}–${pct(s.interval[1])} |`);
console.log(
  `\nstep times (s): ${Object.entries(times)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ')}`,
);
writeFileSync(join(out, 'result.json'), JSON.stringify({ options: a, table, times }, null, 2));
