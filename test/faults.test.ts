// The fault suite: generated bad input — damaged recordings, inconsistent images, bad paths, huge sizes, non-finite
// numbers — through the CLI (in-process; a few spawned), each case checked against the invariants: exit 0 or 2, a user
// mistake as exactly one line 's2-policy: <what>: <why>' and never a stack trace, inputs unchanged byte for byte, no
// partial or temporary output after a failure, and the message and frame counts adding up after a success.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { run } from '../src/cli/main.js';
import { writeDemoKit, type DemoKit } from '../src/run/demo-kit.js';
import { McapRosReader } from '../src/bag/reader.js';
import { McapRosWriter } from '../src/bag/writer.js';
import { openRecordingPath } from '../src/bag/rosbag2-reader.js';
import { loadSqlite } from '../src/bag/sqlite-lib.js';
import { renderScene } from '../src/bag/synthetic.js';
import { UserError } from '../src/errors.js';
import { writeNpy } from '../src/io/npy.js';
import { cli, modelPath, tempDir } from './helpers/util.js';
import { writeSqliteFolder, type SqliteMessage, type SqliteTopic } from './helpers/rosbag2-sqlite.js';

interface Outcome {
  code: number | undefined;
  out: string[];
  err: string[];
  /** Set when run() threw: a stack trace for the user. */
  trace?: unknown;
}

/** Runs the CLI in this process, capturing what it prints. */
async function runCli(args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, error: console.error, warn: console.warn };
  const write = Object.getOwnPropertyDescriptor(process.stderr, 'write');
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  console.warn = (...a: unknown[]) => void out.push(a.join(' '));
  Object.defineProperty(process.stderr, 'write', { value: () => true, configurable: true, writable: true }); // progress bars
  try {
    const code = await run(args);
    return { code, out, err };
  } catch (e) {
    return { code: undefined, out, err, trace: e };
  } finally {
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
    if (write) Object.defineProperty(process.stderr, 'write', write);
    else delete (process.stderr as unknown as Record<string, unknown>).write;
  }
}

/** Content hashes of a file or of every file under a folder, and the folders (a lock folder left behind shows). */
function snapshot(path: string): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(path)) return m;
  const walk = (p: string) => {
    const s = statSync(p);
    if (s.isDirectory()) {
      m.set(`${p}/`, 'folder');
      for (const e of readdirSync(p)) walk(join(p, e));
    } else m.set(p, createHash('sha1').update(readFileSync(p)).digest('hex'));
  };
  walk(path);
  return m;
}

function temporaries(folder: string): string[] {
  return existsSync(folder) ? readdirSync(folder).filter((n) => /\.(tmp|old)$/.test(n)) : [];
}

interface Case {
  name: string;
  args: string[];
  /** Allowed exit codes (default [2]). */
  codes?: number[];
  /** Files and folders that must come out byte for byte as they went in. */
  inputs: string[];
  /** Outputs: after a failure each is absent (or unchanged if it existed); the folder holds no temporary files. */
  outputs: string[];
  /** The one error line must match this. */
  message?: RegExp;
  /** Extra checks after the invariants (e.g. counts). */
  after?: (o: Outcome) => void;
}

const stats = { cases: 0, failed: 0 };
/** Failures of the current test; each case is checked even after an earlier one failed, so all are counted. */
let failures: string[] = [];

/** Wraps a test body: runs every case in it, then fails with all the cases that broke an invariant. */
function cases(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    failures = [];
    await body();
    if (failures.length > 0) throw new Error(`${failures.length} case(s) failed:\n${failures.join('\n')}`);
  };
}

async function check(c: Case): Promise<Outcome> {
  stats.cases++;
  const before = new Map(c.inputs.map((p) => [p, snapshot(p)]));
  const outsBefore = new Map(c.outputs.map((p) => [p, snapshot(p)]));
  const o = await runCli(c.args);
  try {
    assert.equal(o.trace, undefined, `${c.name}: stack trace: ${o.trace instanceof Error ? o.trace.stack : String(o.trace)}`);
    const codes = c.codes ?? [2];
    assert.ok(o.code !== undefined && codes.includes(o.code), `${c.name}: exit ${o.code}, expected ${codes.join(' or ')}; stderr: ${o.err.join(' | ')}`);
    if (o.code === 2) {
      assert.equal(o.err.length, 1, `${c.name}: one error line expected, got ${JSON.stringify(o.err)}`);
      assert.ok(!o.err[0].includes('\n'), `${c.name}: error spans lines: ${o.err[0]}`);
      assert.match(o.err[0], /^s2-policy: \S.*\S$/, `${c.name}: not 's2-policy: <what>: <why>'`);
      if (c.message) assert.match(o.err[0], c.message, c.name);
    }
    for (const [p, snap] of before) assert.deepEqual(snapshot(p), snap, `${c.name}: input ${p} changed`);
    if (o.code !== 0) {
      for (const [p, snap] of outsBefore)
        assert.deepEqual(snapshot(p), snap, `${c.name}: output ${p} left ${snap.size === 0 ? 'behind' : 'changed'} after a failure`);
    }
    for (const p of c.outputs) assert.deepEqual(temporaries(dirname(p)), [], `${c.name}: temporary files left in ${dirname(p)}`);
    if (o.code === 0) c.after?.(o);
  } catch (e) {
    stats.failed++;
    failures.push(`- ${e instanceof Error ? e.message.split('\n').slice(0, 3).join(' ') : String(e)}`);
  }
  return o;
}

/** 'key n, key n' → sum; throws on text that is not such a list. */
function sumItems(text: string, what: string): number {
  let sum = 0;
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'none')) {
    const m = /^(.*\S)\s+(\d+)$/.exec(part);
    assert.ok(m, `${what}: cannot read '${part}'`);
    sum += Number(m[2]);
  }
  return sum;
}

/** The replay summary's accounting: every message of the recording and every camera frame adds up. */
function countsAddUp(o: Outcome): void {
  const messages = o.out.find((l) => l.startsWith('messages '));
  assert.ok(messages, `no 'messages' accounting line in:\n${o.out.join('\n')}`);
  const m = /^messages\s+(\d+) in the recording: (.*)$/.exec(messages);
  assert.ok(m, messages);
  assert.equal(sumItems(m[2], 'messages'), Number(m[1]), messages);
  const cameras = o.out.filter((l) => l.startsWith('camera '));
  assert.ok(cameras.length > 0, 'no per-camera accounting');
  for (const line of cameras) {
    const c = /^camera\s+\S+ \(\S+\): in (\d+): (.*)$/.exec(line);
    assert.ok(c, line);
    assert.equal(sumItems(c[2], line), Number(c[1]), line);
  }
}

/** extract's index.json accounting adds up the same way. */
function indexAddsUp(dir: string): void {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    accounting?: { messages: Record<string, number>; cameras: Record<string, Record<string, number | Record<string, number>>> };
  };
  const a = index.accounting;
  assert.ok(a, 'index.json has no accounting');
  const { total, ...rest } = a.messages;
  assert.equal(
    Object.values(rest).reduce((x, y) => x + y, 0),
    total,
    JSON.stringify(a.messages),
  );
  for (const [name, c] of Object.entries(a.cameras)) {
    const dropped = c.dropped as Record<string, number>;
    assert.equal((c.processed as number) + Object.values(dropped).reduce((x, y) => x + y, 0), c.in, `${name}: ${JSON.stringify(c)}`);
  }
}

// --- MCAP structure, for aimed damage ---------------------------------------------------------------------------

interface Rec {
  op: number;
  at: number;
  /** Offset of the body. */
  body: number;
  len: number;
}

/** The top-level records of an MCAP file (after the leading magic, up to the footer). */
function records(buf: Buffer): Rec[] {
  const out: Rec[] = [];
  let at = 8;
  while (at + 9 <= buf.length - 8) {
    const op = buf[at];
    const len = Number(buf.readBigUInt64LE(at + 1));
    out.push({ op, at, body: at + 9, len });
    at += 9 + len;
    if (op === 0x02) break;
  }
  return out;
}

const OP = { footer: 0x02, chunk: 0x06, messageIndex: 0x07, chunkIndex: 0x08, statistics: 0x0b, dataEnd: 0x0f, summaryOffset: 0x0e } as const;

/** A chunk's inner records and where its CRC and record bytes are (uncompressed chunks only). */
function chunkLayout(buf: Buffer, c: Rec): { crcAt: number; recordsAt: number; recordsLen: number; inner: Rec[] } {
  const crcAt = c.body + 24;
  const compLen = buf.readUInt32LE(crcAt + 4);
  const lenAt = crcAt + 8 + compLen;
  const recordsLen = Number(buf.readBigUInt64LE(lenAt));
  const recordsAt = lenAt + 8;
  const inner: Rec[] = [];
  let at = recordsAt;
  while (at < recordsAt + recordsLen) {
    const len = Number(buf.readBigUInt64LE(at + 1));
    inner.push({ op: buf[at], at, body: at + 9, len });
    at += 9 + len;
  }
  return { crcAt, recordsAt, recordsLen, inner };
}

function fixChunkCrc(buf: Buffer, c: Rec): void {
  const l = chunkLayout(buf, c);
  buf.writeUInt32LE(crc32(buf.subarray(l.recordsAt, l.recordsAt + l.recordsLen)) >>> 0, l.crcAt);
}

describe('fault suite: bad input never crashes, lies or destroys data', function () {
  this.timeout(600000);
  let kit: DemoKit;
  let dir: string;
  let bag: Buffer;
  let recs: Rec[];

  before(async () => {
    dir = tempDir('s2-faults-');
    kit = await writeDemoKit(join(dir, 'kit'), { durationS: 1.5, width: 64, height: 48 });
    bag = readFileSync(kit.recording);
    recs = records(bag);
  });

  after(() => {
    console.log(`      fault suite: ${stats.cases} cases run, ${stats.failed} failed`);
  });

  /** Writes a damaged copy of the demo recording and replays it. */
  async function replayDamaged(name: string, damage: (b: Buffer) => Buffer, codes: number[], message?: RegExp): Promise<Outcome> {
    const file = join(dir, `${name}.mcap`);
    writeFileSync(file, damage(Buffer.from(bag)));
    const out = join(dir, `${name}.out.mcap`);
    return check({
      name,
      args: ['replay', '--bag', file, '--config', kit.config, '--out', out],
      codes,
      inputs: [file, kit.dir],
      outputs: [out],
      message,
      after: countsAddUp,
    });
  }

  describe('damaged recordings', () => {
    it(
      'replays the intact recording with counts that add up',
      cases(async () => {
        const out = join(dir, 'intact.out.mcap');
        await check({
          name: 'intact',
          args: ['replay', '--bag', kit.recording, '--config', kit.config, '--out', out],
          codes: [0],
          inputs: [kit.dir],
          outputs: [out],
          after: countsAddUp,
        });
      }),
    );

    it(
      'refuses a recording cut inside its data section, at several offsets, in one line',
      cases(async () => {
        const dataEnd = recs.find((r) => r.op === OP.dataEnd) as Rec;
        for (const f of [0.02, 0.25, 0.5, 0.75, 0.99]) {
          const cut = Math.floor(dataEnd.at * f);
          await replayDamaged(`cut-${f}`, (b) => b.subarray(0, cut), [2], /truncated|not an MCAP/);
        }
      }),
    );

    it(
      'reads a recording whose summary, footer or trailing magic is cut or damaged (its chunks are intact)',
      cases(async () => {
        const dataEnd = recs.find((r) => r.op === OP.dataEnd) as Rec;
        const footer = recs.find((r) => r.op === OP.footer) as Rec;
        const summaryStart = dataEnd.at + 9 + dataEnd.len;
        await replayDamaged('cut-summary', (b) => b.subarray(0, summaryStart + Math.floor((footer.at - summaryStart) / 2)), [0]);
        await replayDamaged('cut-magic', (b) => b.subarray(0, b.length - 3), [0]);
        const flip = (at: number) => (b: Buffer) => {
          b[at] ^= 0x5a;
          return b;
        };
        await replayDamaged('flip-summary', flip(summaryStart + Math.floor((footer.at - summaryStart) / 2)), [0]);
        const chunkIndex = recs.find((r) => r.op === OP.chunkIndex) as Rec;
        await replayDamaged('flip-chunk-index', flip(chunkIndex.body + 16), [0]);
        await replayDamaged('flip-footer', flip(footer.body + 3), [0]);
        await replayDamaged('flip-magic', flip(bag.length - 2), [0]);
      }),
    );

    it(
      'refuses flipped record lengths and chunk headers in one line naming the file',
      cases(async () => {
        const chunks = recs.filter((r) => r.op === OP.chunk);
        const c = chunks[Math.floor(chunks.length / 2)];
        const set = (at: number, v: number) => (b: Buffer) => {
          b[at] = v;
          return b;
        };
        await replayDamaged('flip-record-length', set(c.at + 6, 0x7f), [2]);
        await replayDamaged('flip-record-length-low', set(c.at + 1, bag[c.at + 1] ^ 0x40), [2]);
        await replayDamaged('flip-chunk-crc', set(c.body + 24, bag[c.body + 24] ^ 0xff), [2]);
        // The uncompressed size of an uncompressed chunk is informative only: read or refused, never a crash.
        await replayDamaged('flip-chunk-size', set(c.body + 16 + 5, 0x7f), [0, 2]);
        await replayDamaged('flip-chunk-compression', set(c.body + 28 + 3, 0x20), [2]);
      }),
    );

    it(
      'counts a message whose CDR does not decode (CRC intact) and replays the rest',
      cases(async () => {
        const o = await replayDamaged(
          'bad-cdr',
          (b) => {
            const c = recs.filter((r) => r.op === OP.chunk)[0];
            const { inner } = chunkLayout(b, c);
            const msg = inner.filter((r) => r.op === 0x05)[2];
            // Message body: channel id u16, sequence u32, log and publish time u64; then the CDR payload, whose
            // header.frame_id length (after 4 bytes of encapsulation and 8 of stamp) becomes 2^31.
            b.writeUInt32LE(0x7fffffff, msg.body + 22 + 12);
            fixChunkCrc(b, c);
            return b;
          },
          [0],
        );
        const line = o.out.find((l) => l.startsWith('messages ')) ?? '';
        assert.match(line, /undecodable \S+ 1\b/, line);
        // extract's summary says the same as replay's (and as its index.json).
        const out = join(dir, 'bad-cdr.features');
        await check({
          name: 'extract bad-cdr',
          args: ['extract', '--bag', join(dir, 'bad-cdr.mcap'), '--config', kit.config, '--out', out],
          codes: [0],
          inputs: [join(dir, 'bad-cdr.mcap'), kit.dir],
          outputs: [out],
          after: (e) => {
            countsAddUp(e);
            const l = e.out.find((x) => x.startsWith('messages ')) ?? '';
            assert.match(l, /undecodable \S+ 1\b/, l);
            indexAddsUp(out);
          },
        });
      }),
    );

    it(
      'counts messages on a channel the file never defines',
      cases(async () => {
        const o = await replayDamaged(
          'unknown-channel',
          (b) => {
            const c = recs.filter((r) => r.op === OP.chunk)[0];
            const { inner } = chunkLayout(b, c);
            for (const msg of inner.filter((r) => r.op === 0x05).slice(0, 2)) b.writeUInt16LE(77, msg.body);
            fixChunkCrc(b, c);
            return b;
          },
          [0, 2],
        );
        if (o.code === 0) assert.match(o.out.find((l) => l.startsWith('messages ')) ?? '', /unknown channel 77 [12]\b/);
      }),
    );

    it(
      'opens any single flipped byte as messages or one UserError, never another error (fast-check)',
      cases(async () => {
        const file = join(dir, 'fuzz.mcap');
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: bag.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
            stats.cases++;
            const b = Buffer.from(bag);
            b[at] ^= x;
            writeFileSync(file, b);
            try {
              const r = await McapRosReader.open(file);
              try {
                await r.topics();
                for await (const m of r.messages()) void m;
              } finally {
                await r.close();
              }
            } catch (e) {
              if (!(e instanceof UserError)) {
                stats.failed++;
                throw new Error(`byte ${at} ^ ${x}: ${e instanceof Error ? e.stack : String(e)}`, { cause: e });
              }
              assert.ok(!e.message.includes('\n'), e.message);
            }
          }),
          { numRuns: 150, seed: 9 },
        );
      }),
    );
  });

  describe('damaged sqlite3 recordings', () => {
    let demo: { topics: SqliteTopic[]; messages: SqliteMessage[] };
    /** A .db3 folder of the demo recording (Humble's layout, metadata 5, split in parts of 90 messages). */
    let folder: string;

    before(async () => {
      const r = await McapRosReader.open(kit.recording);
      const topics = (await r.topics()).map((t) => ({ name: t.topic, type: t.type }));
      const messages: SqliteMessage[] = [];
      for await (const m of r.messages({ decode: false })) messages.push({ topic: m.topic, logTime: m.logTime, cdr: m.data });
      await r.close();
      demo = { topics, messages };
      folder = join(dir, 'db3');
      await writeSqliteFolder(folder, demo.topics, demo.messages, { version: 5, perFile: 90 });
    });

    /** A copy of the .db3 folder named `name`, changed by `damage` (given the folder), replayed. */
    async function replayDamagedDb3(name: string, damage: (dir: string) => Promise<void> | void, codes: number[], message?: RegExp): Promise<Outcome> {
      const copy = join(dir, name);
      mkdirSync(copy);
      for (const f of readdirSync(folder)) copyFileSync(join(folder, f), join(copy, f));
      await damage(copy);
      const out = join(dir, `${name}.out.mcap`);
      return check({
        name,
        args: ['replay', '--bag', copy, '--config', kit.config, '--out', out],
        codes,
        inputs: [copy, kit.dir],
        outputs: [out],
        message,
        after: countsAddUp,
      });
    }

    /** Runs SQL on a .db3 of a damaged copy (the damage is made with SQLite itself, as a bad recorder would). */
    async function sql(file: string, statement: string, values?: (number | bigint | string | Uint8Array)[]): Promise<void> {
      const { Database } = await loadSqlite();
      const db = new Database(file);
      try {
        db.run(statement, values);
      } finally {
        db.close();
      }
    }

    it(
      'replays and extracts the intact .db3 folder with counts that add up, the same as the MCAP',
      cases(async () => {
        const o = await replayDamagedDb3('db3-intact', () => undefined, [0]);
        const mcap = await runCli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(dir, 'db3-ref.out.mcap')]);
        const pick = (x: Outcome) => x.out.filter((l) => /^(messages|camera|actions) /.test(l));
        assert.deepEqual(pick(o), pick(mcap));
        const out = join(dir, 'db3-intact.extract');
        await check({
          name: 'db3 extract',
          args: ['extract', '--bag', folder, '--config', kit.config, '--out', out],
          codes: [0],
          inputs: [folder, kit.dir],
          outputs: [out],
          after: () => indexAddsUp(out),
        });
      }),
    );

    it(
      'refuses a .db3 cut at several offsets, in a folder and alone, in one line naming it',
      cases(async () => {
        for (const f of [0.001, 0.02, 0.25, 0.5, 0.75, 0.99]) {
          await replayDamagedDb3(
            `db3-cut-${f}`,
            (d) => {
              const part = join(d, 'db3_1.db3');
              const b = readFileSync(part);
              writeFileSync(part, b.subarray(0, Math.floor(b.length * f)));
            },
            [2],
            /db3_1\.db3: (truncated SQLite database|SQLite: )/,
          );
          const lone = join(dir, `db3-cut-${f}.db3`);
          const b = readFileSync(join(folder, 'db3_0.db3'));
          writeFileSync(lone, b.subarray(0, Math.floor(b.length * f)));
          const out = join(dir, `db3-cut-${f}.lone.out.mcap`);
          await check({
            name: `lone db3 cut at ${f}`,
            args: ['replay', '--bag', lone, '--config', kit.config, '--out', out],
            inputs: [lone, kit.dir],
            outputs: [out],
            message: /db3-cut-[\d.]+\.db3: (truncated SQLite database|SQLite: |not an SQLite)/,
          });
        }
      }),
    );

    it(
      'refuses a .db3 that is not SQLite (empty, text, an MCAP, random bytes) in one line naming it',
      cases(async () => {
        const contents: [string, Uint8Array][] = [
          ['empty', new Uint8Array(0)],
          ['text', Buffer.from('rosbag2_bagfile_information:\n  version: 5\n')],
          ['mcap', readFileSync(kit.recording)],
          ...fc.sample(fc.uint8Array({ minLength: 1, maxLength: 5000 }), { numRuns: 5, seed: 9 }).map((b, i): [string, Uint8Array] => [`random-${i}`, b]),
        ];
        for (const [what, bytes] of contents)
          await replayDamagedDb3(
            `db3-not-sqlite-${what}`,
            (d) => writeFileSync(join(d, 'db3_1.db3'), bytes),
            [2],
            /db3_1\.db3: (empty file|not an SQLite database)/,
          );
      }),
    );

    it(
      'counts messages whose CDR does not decode (each input topic), and rows of a topic id the file does not define',
      cases(async () => {
        // The damage of the MCAP case: after 4 bytes of encapsulation and 8 of stamp, header.frame_id's length 2^31.
        for (const t of demo.topics.filter((x) => x.type !== 'std_msgs/msg/Float64MultiArray')) {
          const o = await replayDamagedDb3(
            `db3-bad-cdr-${t.name.replace(/\W/g, '_')}`,
            async (d) => {
              const m = demo.messages.filter((x) => x.topic === t.name)[1];
              const bad = Uint8Array.from(m.cdr);
              new DataView(bad.buffer).setUint32(12, 0x7fffffff, true);
              for (const f of readdirSync(d).filter((x) => x.endsWith('.db3')))
                await sql(join(d, f), 'UPDATE messages SET data = ? WHERE timestamp = ? AND topic_id = (SELECT id FROM topics WHERE name = ?)', [
                  bad,
                  m.logTime,
                  t.name,
                ]);
            },
            [0],
          );
          const line = o.out.find((l) => l.startsWith('messages ')) ?? '';
          if (o.code === 0) assert.match(line, new RegExp(`undecodable ${t.name.replace(/\//g, '\\/')} 1\\b`), line);
        }
        const o = await replayDamagedDb3(
          'db3-unknown-topic',
          async (d) => sql(join(d, 'db3_0.db3'), 'UPDATE messages SET topic_id = 77 WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT 2)'),
          [0],
        );
        if (o.code === 0) assert.match(o.out.find((l) => l.startsWith('messages ')) ?? '', /unknown channel 77 2\b/);
      }),
    );

    it(
      'warns, naming both numbers, when metadata.yaml counts disagree with the files; the run succeeds',
      cases(async () => {
        const m = demo.messages.length;
        const o = await replayDamagedDb3(
          'db3-metadata-counts',
          (d) => {
            const file = join(d, 'metadata.yaml');
            writeFileSync(file, readFileSync(file, 'utf8').replace(`\n  message_count: ${m}\n`, `\n  message_count: ${m + 5}\n`));
          },
          [0],
        );
        assert.deepEqual(o.err, [
          `s2-policy: warning: ${join(dir, 'db3-metadata-counts', 'metadata.yaml')}: message_count ${m + 5} in the metadata, the files hold ${m}`,
        ]);
      }),
    );

    it(
      'reads a folder left in WAL mode by a crashed recorder, leaving the .db3, its log and the folder as they were',
      cases(async () => {
        await replayDamagedDb3(
          'db3-wal',
          async (d) => {
            const { Database } = await loadSqlite();
            const part = join(d, 'db3_1.db3');
            const work = join(dir, 'db3-wal-work.db3');
            copyFileSync(part, work);
            const db = new Database(work);
            db.exec('PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;');
            db.run('DELETE FROM messages WHERE id % 2 = 0');
            copyFileSync(work, part);
            copyFileSync(`${work}-wal`, `${part}-wal`);
            db.close();
          },
          [0],
        );
      }),
    );

    it(
      'opens any single flipped byte of a .db3 as messages or one UserError, never another error, and never writes it (fast-check)',
      cases(async () => {
        const file = join(dir, 'fuzz.db3');
        const good = readFileSync(join(folder, 'db3_0.db3'));
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
            stats.cases++;
            const b = Buffer.from(good);
            b[at] ^= x;
            writeFileSync(file, b);
            try {
              const r = await openRecordingPath(file);
              try {
                await r.topics();
                for await (const m of r.messages()) void m;
              } finally {
                await r.close();
              }
            } catch (e) {
              if (!(e instanceof UserError)) {
                stats.failed++;
                throw new Error(`byte ${at} ^ ${x}: ${e instanceof Error ? e.stack : String(e)}`, { cause: e });
              }
              assert.ok(!e.message.includes('\n'), e.message);
              assert.ok(e.message.startsWith(file), e.message);
            }
            assert.ok(readFileSync(file).equals(b), `byte ${at} ^ ${x}: the file changed`);
            assert.deepEqual(
              readdirSync(dir).filter((n) => n.startsWith('fuzz.db3')),
              ['fuzz.db3'],
            );
          }),
          { numRuns: 120, seed: 9 },
        );
      }),
    );
  });

  describe('bad images in a recording', () => {
    it(
      'replays raw frames with inconsistent step, size or encoding and garbage JPEG/PNG, counting each by reason',
      cases(async () => {
        const file = join(dir, 'bad-images.mcap');
        const w = await McapRosWriter.create(file);
        const raw = await w.addChannel('/wrist/image_raw', 'sensor_msgs/msg/Image');
        const comp = await w.addChannel('/front/image_raw/compressed', 'sensor_msgs/msg/CompressedImage');
        const js = await w.addChannel('/joint_states', 'sensor_msgs/msg/JointState');
        const W = 64;
        const H = 48;
        const jpeg = (await import('sharp')).default;
        const good = await jpeg(Buffer.from(renderScene(W, H, 0, 1)), { raw: { width: W, height: H, channels: 3 } })
          .jpeg()
          .toBuffer();
        const t0 = 1_700_000_000_000_000_000n;
        const badRaw = [
          { step: W * 3 - 1 },
          { step: W * 3, data: new Uint8Array(W * 3 * H - 7) },
          { encoding: 'rgb9' },
          { height: 1_000_000, width: 1_000_000 },
          { encoding: 'mono16', step: W },
        ];
        const badComp = [
          { format: 'jpeg', data: new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3, 4]) },
          { format: 'png', data: Uint8Array.from(Buffer.from('\x89PNG\r\n\x1a\n garbage')) },
          { format: 'tiff', data: good },
          { format: 'jpeg', data: new Uint8Array(0) },
        ];
        const n = 12;
        for (let i = 0; i < n; i++) {
          const t = t0 + BigInt(i) * 100_000_000n;
          const stamp = { sec: Number(t / 1_000_000_000n), nanosec: Number(t % 1_000_000_000n) };
          const header = { stamp, frame_id: 'cam' };
          await w.write(js, { header, name: ['joint1', 'joint2'], position: [0, 0], velocity: [], effort: [] }, t);
          const img = { header, height: H, width: W, encoding: 'rgb8', is_bigendian: 0, step: W * 3, data: renderScene(W, H, i * 0.1, 0) };
          await w.write(raw, i % 2 === 1 ? { ...img, ...badRaw[(i >> 1) % badRaw.length] } : img, t);
          await w.write(
            comp,
            i % 3 === 1 ? { header, ...badComp[Math.floor(i / 3) % badComp.length] } : { header, format: 'jpeg', data: good },
            t + 1_000_000n,
          );
        }
        await w.close();
        const out = join(dir, 'bad-images.out.mcap');
        const o = await check({
          name: 'bad images',
          args: ['replay', '--bag', file, '--config', kit.config, '--out', out],
          codes: [0],
          inputs: [file, kit.dir],
          outputs: [out],
          after: countsAddUp,
        });
        const wrist = o.out.find((l) => l.startsWith('camera ') && l.includes('wrist')) ?? '';
        const rejected = [...wrist.matchAll(/frame:rejected:\S+ (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
        assert.equal(rejected, n / 2, wrist);
        const extractOut = join(dir, 'bad-images.extract');
        await check({
          name: 'bad images extract',
          args: ['extract', '--bag', file, '--config', kit.config, '--out', extractOut],
          codes: [0],
          inputs: [file, kit.dir],
          outputs: [extractOut],
          after: () => indexAddsUp(extractOut),
        });
      }),
    );
  });

  describe('paths', () => {
    it(
      'every command: missing inputs, missing and unwritable output folders, outputs that are folders or files',
      cases(async () => {
        const model = modelPath('convnet-tiny');
        const x = join(dir, 'x.npy');
        writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
        const aFile = join(dir, 'a-file');
        writeFileSync(aFile, 'not a folder');
        const aFolder = join(dir, 'a-folder');
        mkdirSync(aFolder, { recursive: true });
        const aFullFolder = join(dir, 'a-full-folder');
        mkdirSync(aFullFolder, { recursive: true });
        writeFileSync(join(aFullFolder, 'keep.txt'), 'keep');
        const nowhere = join(dir, 'no-such-folder', 'o');
        const unwritable = '/proc/self/forbidden';
        const inputs = [kit.dir, x, model];
        const rep = (bagFile: string, out: string) => ['replay', '--bag', bagFile, '--config', kit.config, '--out', out];
        const ext = (bagFile: string, out: string) => ['extract', '--bag', bagFile, '--config', kit.config, '--out', out];
        const feat = (inp: string, out: string) => ['features', '--model', model, '--input', inp, '--out', out, '--scales', '1,2'];
        const cases: [string, string[], string][] = [
          ['replay missing bag', rep(join(dir, 'nope.mcap'), join(dir, 'r1.mcap')), join(dir, 'r1.mcap')],
          [
            'replay missing config',
            ['replay', '--bag', kit.recording, '--config', join(dir, 'nope.yaml'), '--out', join(dir, 'r2.mcap')],
            join(dir, 'r2.mcap'),
          ],
          ['replay out in missing folder', rep(kit.recording, `${nowhere}.mcap`), `${nowhere}.mcap`],
          // A name without .mcap is a rosbag2 folder: an empty folder may take it, a non-empty one is refused.
          ['replay out is a non-empty folder', rep(kit.recording, aFullFolder), aFullFolder],
          ['replay out unwritable', rep(kit.recording, `${unwritable}.mcap`), join(dir, 'unused-1')],
          ['extract out in missing folder', ext(kit.recording, nowhere), nowhere],
          ['extract out is a file', ext(kit.recording, aFile), aFile],
          ['extract missing bag', ext(join(dir, 'nope.mcap'), join(dir, 'e1')), join(dir, 'e1')],
          ['features missing input', feat(join(dir, 'nope.npy'), join(dir, 'f1.npy')), join(dir, 'f1.npy')],
          ['features out in missing folder', feat(x, `${nowhere}.npy`), `${nowhere}.npy`],
          ['features out is a folder', feat(x, aFolder), aFolder],
          ['features out unwritable', feat(x, `${unwritable}.npy`), join(dir, 'unused-2')],
          [
            'features missing model',
            ['features', '--model', join(dir, 'nope.onnx'), '--input', x, '--out', join(dir, 'f2.npy'), '--scales', '1'],
            join(dir, 'f2.npy'),
          ],
          ['make-model out in missing folder', ['make-model', '--preset', 'vit-tiny', '--out', `${nowhere}.onnx`], `${nowhere}.onnx`],
          ['make-model out is a folder', ['make-model', '--preset', 'vit-tiny', '--out', aFolder], aFolder],
          ['make-demo out in missing folder', ['make-demo', '--out', nowhere], nowhere],
          ['make-demo out is a file', ['make-demo', '--out', aFile], aFile],
          ['fit missing data', ['fit', '--data', join(dir, 'nope'), '--out', join(dir, 'p.onnx')], join(dir, 'p.onnx')],
          ['inspect missing model', ['inspect', '--model', join(dir, 'nope.onnx')], join(dir, 'unused-3')],
          ['sim collect out is a file', ['sim', 'collect', '--out', aFile, '--episodes', '1'], aFile],
        ];
        for (const [name, args, out] of cases) await check({ name, args, inputs: [...inputs, aFile, aFolder], outputs: [out] });
      }),
    );

    it(
      'refuses outputs that are inputs — same path, symbolic link, hard link, or the input folder — before opening anything',
      cases(async () => {
        const bagCopy = join(dir, 'alias', 'in.mcap');
        mkdirSync(dirname(bagCopy), { recursive: true });
        copyFileSync(kit.recording, bagCopy);
        symlinkSync(bagCopy, join(dir, 'alias', 'sym.mcap'));
        linkSync(bagCopy, join(dir, 'alias', 'hard.mcap'));
        const x = join(dir, 'alias', 'x.npy');
        writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
        const model = modelPath('convnet-tiny');
        const inputs = [join(dir, 'alias'), kit.dir];
        const aliasCases: [string, string[]][] = [
          ['replay out = bag (--force)', ['replay', '--bag', bagCopy, '--config', kit.config, '--out', bagCopy, '--force']],
          ['replay out = symlink to bag', ['replay', '--bag', bagCopy, '--config', kit.config, '--out', join(dir, 'alias', 'sym.mcap'), '--force']],
          ['replay out = hard link to bag', ['replay', '--bag', bagCopy, '--config', kit.config, '--out', join(dir, 'alias', 'hard.mcap'), '--force']],
          ['replay out = config', ['replay', '--bag', bagCopy, '--config', kit.config, '--out', kit.config, '--force']],
          ['replay out = policy model', ['replay', '--bag', bagCopy, '--config', kit.config, '--out', kit.policy, '--force']],
          ['extract out = folder holding the bag', ['extract', '--bag', bagCopy, '--config', kit.config, '--out', join(dir, 'alias'), '--force']],
          ['extract out = kit folder', ['extract', '--bag', bagCopy, '--config', kit.config, '--out', kit.dir, '--force']],
          ['features out = input', ['features', '--model', model, '--input', x, '--out', x, '--scales', '1']],
          ['features out = model', ['features', '--model', model, '--input', x, '--out', model, '--scales', '1']],
          ['make-model out = an input model', ['make-model', '--preset', 'vit-tiny', '--out', kit.backbone]],
        ];
        for (const [name, args] of aliasCases) await check({ name, args, inputs: [...inputs, model], outputs: [], message: /input|exists|not empty/ });
      }),
    );

    it('spawned: the executable prints one line and exits 2 for a representative subset (no stack trace)', () => {
      const model = modelPath('convnet-tiny');
      for (const args of [
        ['replay', '--bag', kit.recording, '--config', kit.config, '--out', kit.recording, '--force'],
        ['features', '--model', model, '--input', join(dir, 'nope.npy'), '--out', join(dir, 'no-such-folder', 'y.npy'), '--scales', '1'],
        ['make-demo', '--out', join(dir, 'x', 'y', 'z'), '--width', '100000'],
      ]) {
        stats.cases++;
        const before = snapshot(kit.dir);
        const r = cli(args);
        try {
          assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
          const lines = r.stderr.trim().split('\n');
          assert.equal(lines.length, 1, r.stderr);
          assert.match(lines[0], /^s2-policy: \S.*: \S/);
          assert.deepEqual(snapshot(kit.dir), before);
        } catch (e) {
          stats.failed++;
          throw e;
        }
      }
    });
  });

  describe('sizes and numbers', () => {
    it(
      'refuses sizes that cannot be allocated, naming the flag or key, before allocating',
      cases(async () => {
        const model = modelPath('convnet-tiny');
        const x = join(dir, 'sizes-x.npy');
        writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
        const y = join(dir, 'sizes-y.npy');
        const feat = (...flags: string[]) => ['features', '--model', model, '--input', x, '--out', y, ...flags];
        const huge: [string, string[], RegExp][] = [
          ['--img-sizes 100000', feat('--img-sizes', '100000'), /--img-sizes/],
          ['--img-sizes 100000x32', feat('--img-sizes', '100000x32'), /--img-sizes/],
          ['--scales 1e9', feat('--scales', '1e9'), /--scales/],
          ['--scales 1,1e6', feat('--scales', '1,1e6'), /--scales/],
          ['--img-sizes -5', feat('--img-sizes', '-5'), /--img-sizes/],
          ['--max-batch 0', feat('--scales', '1', '--max-batch', '0'), /--max-batch/],
        ];
        for (const [name, args, message] of huge) await check({ name, args, inputs: [x, model], outputs: [y], message });
        const cfg = parse(readFileSync(kit.config, 'utf8')) as Record<string, Record<string, unknown>>;
        const bigCfg = join(kit.dir, '..', 'big.yaml');
        cfg.s2.img_sizes = [100000];
        cfg.backbone.model = kit.backbone;
        cfg.policy.model = kit.policy;
        writeFileSync(bigCfg, stringify(cfg));
        await check({
          name: 's2.img_sizes: [100000]',
          args: ['replay', '--bag', kit.recording, '--config', bigCfg, '--out', join(dir, 'big.mcap')],
          inputs: [kit.dir, bigCfg],
          outputs: [join(dir, 'big.mcap')],
          message: /s2\.img_sizes/,
        });
        await check({
          name: 'make-demo --width 100000',
          args: ['make-demo', '--out', join(dir, 'wide'), '--width', '100000'],
          inputs: [],
          outputs: [join(dir, 'wide')],
          message: /--width/,
        });
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 4097, max: 2 ** 31 }), async (side) => {
            await check({ name: `--img-sizes ${side}`, args: feat('--img-sizes', String(side)), inputs: [x], outputs: [y], message: /--img-sizes/ });
          }),
          { numRuns: 8, seed: 9 },
        );
      }),
    );

    it(
      'refuses NaN/Inf input and a zero --std; names a truncated .npy, an empty batch and an empty .onnx',
      cases(async () => {
        const model = modelPath('convnet-tiny');
        const y = join(dir, 'nan-y.npy');
        const nanIn = join(dir, 'nan.npy');
        const data = new Float32Array(3 * 32 * 32).fill(0.1);
        data[100] = NaN;
        writeNpy(nanIn, { dims: [1, 3, 32, 32], data });
        const infIn = join(dir, 'inf.npy');
        data[100] = Infinity;
        writeNpy(infIn, { dims: [1, 3, 32, 32], data });
        const empty = join(dir, 'empty-batch.npy');
        writeNpy(empty, { dims: [0, 3, 32, 32], data: new Float32Array(0) });
        const trunc = join(dir, 'trunc.npy');
        writeFileSync(trunc, readFileSync(nanIn).subarray(0, 40));
        const emptyOnnx = join(dir, 'empty.onnx');
        writeFileSync(emptyOnnx, '');
        const png = join(dir, 'photo.png');
        const sharp = (await import('sharp')).default;
        await sharp(Buffer.from(renderScene(40, 30, 0, 0)), { raw: { width: 40, height: 30, channels: 3 } })
          .png()
          .toFile(png);
        const feat = (inp: string, ...more: string[]) => ['features', '--model', model, '--input', inp, '--out', y, '--scales', '1,2', ...more];
        const cases: [string, string[], RegExp][] = [
          ['NaN input', feat(nanIn), /NaN|not finite|non-finite/],
          ['Inf input', feat(infIn), /Inf|not finite|non-finite/],
          ['empty batch', feat(empty), /batch|0/],
          ['truncated .npy', feat(trunc), /truncated|ends|header/],
          ['empty .onnx', ['features', '--model', emptyOnnx, '--input', nanIn, '--out', y, '--scales', '1'], /empty/],
          ['--std 0', ['features', '--model', model, '--image', png, '--out', y, '--scales', '1', '--mean', '0,0,0', '--std', '0,0,0'], /--std/],
        ];
        for (const [name, args, message] of cases)
          await check({ name, args, inputs: [nanIn, infIn, empty, trunc, emptyOnnx, png, model], outputs: [y], message });
      }),
    );
  });

  describe('layout flags and outputs', () => {
    it(
      'features and inspect probe with the given --num-prefix-token / --output-shape; channels-last output refused',
      cases(async () => {
        const vit = modelPath('vit-tiny');
        const x = join(dir, 'probe-x.npy');
        writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
        const y = join(dir, 'probe-y.npy');
        await check({
          name: '--num-prefix-token 0 on a CLS model',
          args: ['features', '--model', vit, '--input', x, '--out', y, '--scales', '1', '--num-prefix-token', '0'],
          inputs: [x, vit],
          outputs: [y],
          message: /0 prefix tokens leave \d+ spatial tokens, not a square grid/,
        });
        await check({
          name: '--output-shape bchw on a ViT',
          args: ['features', '--model', vit, '--input', x, '--out', y, '--scales', '1', '--output-shape', 'bchw'],
          inputs: [x, vit],
          outputs: [y],
          message: /bchw needs a rank-4 output/,
        });
        await check({
          name: 'inspect --num-prefix-token 0',
          args: ['inspect', '--model', vit, '--scales', '1,2', '--num-prefix-token', '0'],
          codes: [2],
          inputs: [vit],
          outputs: [],
          message: /prefix/,
        });
        const { inferLayout } = await import('../src/backbone/layout.js');
        stats.cases += 3;
        assert.throws(() => inferLayout([1, 7, 7, 256], [112, 112]), /looks channels-last \(B×H×W×C: a 7×7 grid of 256 channels\)/);
        assert.throws(() => inferLayout([1, 6, 8, 64], [96, 128]), /channels-last/);
        assert.deepEqual(inferLayout([1, 256, 7, 7], [112, 112]).grid, [7, 7]);
      }),
    );

    it(
      'replay writes no S2Features when features.publish is false',
      cases(async () => {
        const cfg = parse(readFileSync(kit.config, 'utf8')) as Record<string, Record<string, unknown>>;
        cfg.features.publish = false;
        const quiet = join(kit.dir, '..', 'no-features.yaml');
        writeFileSync(quiet, stringify({ ...cfg, backbone: { model: kit.backbone }, policy: { ...cfg.policy, model: kit.policy } }));
        const out = join(dir, 'no-features.mcap');
        await check({
          name: 'features.publish false',
          args: ['replay', '--bag', kit.recording, '--config', quiet, '--out', out],
          codes: [0],
          inputs: [kit.dir, quiet],
          outputs: [out],
          after: countsAddUp,
        });
        const r = await McapRosReader.open(out);
        const topics = (await r.topics()).map((t) => t.topic);
        await r.close();
        assert.ok(!topics.includes('/s2_policy/features'), topics.join(', '));
        assert.ok(topics.includes('/diagnostics'));
      }),
    );

    it(
      'extract needs only the sections it uses (no policy, no control)',
      cases(async () => {
        const cfg = parse(readFileSync(kit.config, 'utf8')) as Record<string, unknown>;
        delete cfg.policy;
        delete cfg.control;
        const small = join(kit.dir, '..', 'extract-only.yaml');
        writeFileSync(small, stringify({ ...cfg, backbone: { model: kit.backbone } }));
        const out = join(dir, 'extract-only');
        await check({
          name: 'extract without policy and control',
          args: ['extract', '--bag', kit.recording, '--config', small, '--out', out],
          codes: [0],
          inputs: [kit.dir, small],
          outputs: [out],
          after: () => indexAddsUp(out),
        });
        assert.ok(existsSync(join(out, 'features.npy')));
      }),
    );
  });

  describe('replay clock', () => {
    it(
      '--rate 1 stamps every action within the recording time range plus the watchdog tail',
      cases(async () => {
        const out = join(dir, 'rate.out.mcap');
        await check({
          name: 'replay --rate 1',
          args: ['replay', '--bag', kit.recording, '--config', kit.config, '--out', out, '--rate', '1'],
          codes: [0],
          inputs: [kit.dir],
          outputs: [out],
          after: countsAddUp,
        });
        const rin = await McapRosReader.open(kit.recording);
        const range = rin.timeRange as { start: bigint; end: bigint };
        await rin.close();
        const r = await McapRosReader.open(out);
        let n = 0;
        for await (const m of r.messages({ topics: ['/s2_policy/joint_trajectory'] })) {
          n++;
          assert.ok(m.logTime >= range.start && m.logTime <= range.end + 1_000_000_000n, `action at ${m.logTime} outside [${range.start}, ${range.end}] + 1 s`);
        }
        await r.close();
        assert.ok(n >= 20, `${n} actions`);
      }),
    );
  });

  describe('chunk coverage at start-up', () => {
    it('warns, naming the numbers, when chunk length / rate_hz does not outlast the slowest camera period', async () => {
      const { chunkCoverage } = await import('../src/run/replay.js');
      const { loadConfig } = await import('../src/config/config.js');
      const config = loadConfig(kit.config);
      const topic = (t: string, n: number) => ({
        topic: t,
        type: '',
        messageCount: n,
        messageEncoding: 'cdr',
        schemaEncoding: 'ros2msg',
        definition: 'file' as const,
        metadata: {},
      });
      // 6 s at 20 Hz control; wrist at 30 Hz, front at 5 Hz (31 frames over 6 s: a 200 ms period).
      const topics = [topic('/wrist/image_raw', 181), topic('/front/image_raw/compressed', 31)];
      const range = { start: 0n, end: 6_000_000_000n };
      const w = chunkCoverage(config, 4, topics, range) ?? '';
      assert.match(w, /chunk of 4 actions at control\.rate_hz 20 covers 200 ms, not more than camera 'front''s period of 200 ms \(5\.0 Hz\)/);
      assert.match(w, /a chunk of at least 5 covers the gap/);
      assert.equal(chunkCoverage(config, 5, topics, range), undefined);
      assert.equal(chunkCoverage(config, 8, topics, range), undefined);
    });
  });

  describe('summary', () => {
    it(`ran at least 100 generated cases (${basename(import.meta.url)})`, () => {
      assert.ok(stats.cases >= 100, `${stats.cases} cases`);
    });
  });
});
