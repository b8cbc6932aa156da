// rosbag2 recordings in sqlite3 storage: folders as each rosbag2 era writes them (metadata 4/5/8/9, split, zstd per
// file or per message) and lone .db3 files read in timestamp order; folders written as Humble's and Jazzy's sqlite3
// plugin writes them, Humble's metadata checked against the rules of Humble's own reader; and replay/extract giving
// the same counts, actions and features from a .db3 folder as from the same messages in MCAP.
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  McapRosReader,
  Rosbag2Writer,
  openRecordingPath,
  parseOfferedQos,
  parseRosbag2Metadata,
  defaultOfferedQos,
  type BagMessage,
  type Float64MultiArrayMsg,
  type RecordingReader,
} from '../src/bag/index.js';
import { Rosbag2Reader } from '../src/bag/rosbag2-reader.js';
import { SqliteRosReader } from '../src/bag/sqlite-reader.js';
import { loadSqlite } from '../src/bag/sqlite-lib.js';
import { channelCodec } from '../src/bag/writer.js';
import { rosbag2DefinitionText } from '../src/msgs/definitions.js';
import { UserError } from '../src/errors.js';
import { writeDemoKit, type DemoKit } from '../src/run/demo-kit.js';
import { cli, tempDir } from './helpers/util.js';
import { DB_SCHEMA, WRITTEN_QOS, writeSqliteFolder, type MetadataVersion, type SqliteMessage, type SqliteTopic } from './helpers/rosbag2-sqlite.js';
import { HUMBLE_KEYS, HUMBLE_TOPIC_KEYS, humbleMetadataProblems } from './helpers/humble-metadata.js';

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const TYPE = 'std_msgs/msg/Float64MultiArray';

async function readAll(reader: RecordingReader): Promise<BagMessage[]> {
  const out: BagMessage[] = [];
  try {
    for await (const m of reader.messages()) out.push(m);
  } finally {
    await reader.close();
  }
  return out;
}

const simple = (ms: BagMessage[]) => ms.map((m) => ({ topic: m.topic, t: m.logTime, v: (m.message as Float64MultiArrayMsg).data[0] }));

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

/** Two topics, /a at 100 Hz and /b at 30 Hz (0.5 ms later, so no two messages share a time), `ms` ms long. */
function synthetic(ms = 1000): { topics: SqliteTopic[]; messages: SqliteMessage[]; expected: { topic: string; t: bigint; v: number }[] } {
  const codec = channelCodec('synthetic', '/a', TYPE);
  const messages: SqliteMessage[] = [];
  for (let t = 0; t < ms; t++) {
    if (t % 10 === 0)
      messages.push({ topic: '/a', logTime: T0 + BigInt(t) * MS, cdr: codec.encoder.writeMessage({ layout: { dim: [], data_offset: 0 }, data: [t] }) });
    if (t % 33 === 5)
      messages.push({
        topic: '/b',
        logTime: T0 + BigInt(t) * MS + MS / 2n,
        cdr: codec.encoder.writeMessage({ layout: { dim: [], data_offset: 0 }, data: [-t] }),
      });
  }
  const expected = messages.map((m) => ({
    topic: m.topic,
    t: m.logTime,
    v: m.topic === '/a' ? Number((m.logTime - T0) / MS) : -Number((m.logTime - T0) / MS),
  }));
  const topics = [
    { name: '/a', type: TYPE, definition: rosbag2DefinitionText(TYPE) },
    { name: '/b', type: TYPE, definition: rosbag2DefinitionText(TYPE) },
  ];
  return { topics, messages, expected };
}

async function sqliteMaster(file: string): Promise<string[]> {
  const { Database } = await loadSqlite();
  const db = new Database(file, { readOnly: true });
  try {
    return db.all(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid`).map((r) => `${r.sql as string};`);
  } finally {
    db.close();
  }
}

async function rows(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const { Database } = await loadSqlite();
  const db = new Database(file, { readOnly: true });
  try {
    return db.all(sql);
  } finally {
    db.close();
  }
}

describe('rosbag2 sqlite3 recordings: reading', function () {
  this.timeout(60000);
  const { topics, messages, expected } = synthetic();

  for (const version of [4, 5, 8, 9] as MetadataVersion[]) {
    for (const compression of ['none', 'file', 'message'] as const) {
      it(`metadata version ${version}, compression ${compression}: split files in timestamp order, counts, QoS, no warnings`, async () => {
        const dir = join(tempDir('s2-db3-'), `v${version}`);
        // Rows inserted newest first: the order must come from the timestamps, not the rows.
        const paths = await writeSqliteFolder(dir, topics, messages, { version, perFile: 37, compression, insertOrder: (p) => [...p].reverse() });
        assert.equal(paths.length, Math.ceil(messages.length / 37));
        const warnings: string[] = [];
        const reader = await openRecordingPath(dir, { onWarning: (w) => warnings.push(w) });
        assert.ok(reader instanceof Rosbag2Reader);
        assert.deepEqual(
          reader.files,
          paths.map((p) => join(dir, p)),
        );
        const info = await reader.topics();
        assert.deepEqual(
          info.map((t) => [t.topic, t.type, t.messageCount, t.definition]),
          [
            ['/a', TYPE, 100, version >= 8 ? 'file' : 'registry'],
            ['/b', TYPE, messages.length - 100, version >= 8 ? 'file' : 'registry'],
          ],
        );
        // Integer enums before version 9, policy names from 9 on: the same profile either way.
        const qos = parseOfferedQos(info[0].metadata.offered_qos_profiles, 'test')[0];
        assert.deepEqual({ history: qos.history, depth: qos.depth, reliability: qos.reliability, durability: qos.durability }, WRITTEN_QOS);
        assert.deepEqual(reader.timeRange, { start: T0, end: expected[expected.length - 1].t });
        assert.deepEqual(simple(await readAll(reader)), expected);
        assert.equal(reader.decodeFailures.total, 0);
        assert.deepEqual(warnings, []);
        // A topic and time query, as replay's reads are.
        const some = await openRecordingPath(dir);
        const got: BagMessage[] = [];
        for await (const m of some.messages({ topics: ['/b'], startTime: T0 + 300n * MS, endTime: T0 + 600n * MS })) got.push(m);
        await some.close();
        assert.deepEqual(
          simple(got),
          expected.filter((e) => e.topic === '/b' && e.t >= T0 + 300n * MS && e.t <= T0 + 600n * MS),
        );
      });
    }
  }

  it('reads a lone .db3 (message compression told by its own metadata table) and a lone .db3.zstd', async () => {
    const root = tempDir('s2-db3-');
    const msg = join(root, 'msg');
    const [file] = await writeSqliteFolder(msg, topics, messages, { version: 9, compression: 'message' });
    const lone = await openRecordingPath(join(msg, file));
    assert.ok(lone instanceof SqliteRosReader);
    assert.equal(lone.schemaVersion, 4);
    assert.equal(lone.rosDistro, 'jazzy');
    assert.equal(lone.storedMetadata?.compressionMode, 'message');
    assert.deepEqual(simple(await readAll(lone)), expected);
    // Humble's files keep no metadata: a lone file is read as stored.
    const humble = join(root, 'humble');
    const [hf] = await writeSqliteFolder(humble, topics, messages, { version: 5 });
    const h = (await openRecordingPath(join(humble, hf))) as SqliteRosReader;
    assert.equal(h.schemaVersion, 3);
    assert.equal(h.storedMetadata, undefined);
    assert.deepEqual(simple(await readAll(h)), expected);
    const packed = join(root, 'packed');
    const [pf] = await writeSqliteFolder(packed, topics, messages, { version: 5, compression: 'file' });
    assert.match(pf, /\.db3\.zstd$/);
    assert.deepEqual(simple(await readAll(await openRecordingPath(join(packed, pf)))), expected);
  });

  it('reads in timestamp order without timestamp_idx; counts payloads that do not decode and rows of an unknown topic', async () => {
    const dir = join(tempDir('s2-db3-'), 'odd');
    const [file] = await writeSqliteFolder(dir, topics, messages, { version: 8, insertOrder: (p) => [...p].reverse() });
    const { Database } = await loadSqlite();
    const db = new Database(join(dir, file));
    db.exec('DROP INDEX timestamp_idx;');
    // The third /a message's payload cut to its encapsulation header; two rows on topic id 9, which no topic has.
    db.run(`UPDATE messages SET data = x'00010000' WHERE timestamp = ?`, [T0 + 20n * MS]);
    db.run('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, 9, ?), (?, 9, ?)', [T0, new Uint8Array(8), T0 + 1n, new Uint8Array(8)]);
    db.close();
    const failures: string[] = [];
    const warnings: string[] = [];
    const reader = await openRecordingPath(dir, {
      onDecodeError: (f) => failures.push(`${f.topic} ${f.logTime - T0}: ${f.reason}`),
      onWarning: (w) => warnings.push(w),
    });
    assert.deepEqual([...reader.unknownChannelsInIndex], [[9, 2]]);
    assert.deepEqual(
      simple(await readAll(reader)),
      expected.filter((e) => e.t !== T0 + 20n * MS),
    );
    assert.equal(failures.length, 1);
    assert.match(failures[0], /^\/a 20000000: /);
    assert.deepEqual(Object.fromEntries(reader.decodeFailures.byTopic), { '/a': 1 });
    // The two rows on topic 9 are in the file but under no topic of the metadata.
    assert.deepEqual(warnings, []);
  });

  it('reports metadata.yaml disagreeing with the files as the MCAP path does, naming both numbers', async () => {
    const dir = join(tempDir('s2-db3-'), 'meta');
    await writeSqliteFolder(dir, topics, messages, { version: 5, perFile: 50 });
    const metaFile = join(dir, 'metadata.yaml');
    const text = readFileSync(metaFile, 'utf8');
    const nb = messages.length - 100;
    writeFileSync(
      metaFile,
      text.replace(`message_count: ${messages.length}\n`, `message_count: ${messages.length + 3}\n`).replace(`message_count: ${nb}\n`, 'message_count: 1\n'),
    );
    const warnings: string[] = [];
    await (await openRecordingPath(dir, { onWarning: (w) => warnings.push(w) })).close();
    assert.deepEqual(warnings, [
      `${metaFile}: topic /b: message_count 1 in the metadata, the files hold ${nb}`,
      `${metaFile}: message_count ${messages.length + 3} in the metadata, the files hold ${messages.length}`,
    ]);
  });

  it('refuses an empty, non-SQLite, truncated or table-less .db3 and a missing file in one line naming it', async () => {
    const root = tempDir('s2-db3-');
    const dir = join(root, 'bad');
    const [file] = await writeSqliteFolder(dir, topics, messages, { version: 5 });
    const path = join(dir, file);
    const good = readFileSync(path);
    const put = (b: Uint8Array) => writeFileSync(path, b);
    put(new Uint8Array(0));
    await rejectsWith(openRecordingPath(dir), /bad_0\.db3: empty file, not an SQLite database$/);
    put(Buffer.from('not a database at all, just text\n'.repeat(10)));
    await rejectsWith(openRecordingPath(dir), /bad_0\.db3: not an SQLite database \(no 'SQLite format 3' header at byte 0\)$/);
    put(good.subarray(0, good.length - 4096));
    await rejectsWith(openRecordingPath(dir), /bad_0\.db3: truncated SQLite database: its header counts \d+ pages of 4096 bytes/);
    put(good.subarray(0, 60));
    await rejectsWith(openRecordingPath(dir), /bad_0\.db3: truncated SQLite database \(60 bytes/);
    const { Database } = await loadSqlite();
    const other = join(root, 'other.db3');
    const db = new Database(other);
    db.exec('CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT);');
    db.close();
    await rejectsWith(openRecordingPath(other), /other\.db3: not a rosbag2 sqlite3 recording \(no 'topics' table; its tables: notes\)$/);
    put(good);
    writeFileSync(join(dir, 'metadata.yaml'), readFileSync(join(dir, 'metadata.yaml'), 'utf8').replace('bad_0.db3', 'bad_7.db3'));
    await rejectsWith(openRecordingPath(dir), /bad_7\.db3: listed in .*metadata\.yaml but missing$/);
  });

  it('reads a recording left in WAL mode with an uncommitted-to-file log (rosbag2 resilient preset, crashed) without touching it', async () => {
    const root = tempDir('s2-db3-');
    const dir = join(root, 'wal');
    const [file] = await writeSqliteFolder(dir, topics, messages.slice(0, 40), { version: 5 });
    const { Database } = await loadSqlite();
    const work = join(root, 'work.db3');
    copyFileSync(join(dir, file), work);
    const db = new Database(work);
    db.exec('PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;');
    const insert = db.prepare('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)');
    for (const m of messages.slice(40)) insert.run([m.logTime, m.topic === '/a' ? 1 : 2, m.cdr]);
    insert.finalize();
    // The recorder dies here: the file and its log as they are on disk.
    copyFileSync(work, join(dir, file));
    copyFileSync(`${work}-wal`, join(dir, `${file}-wal`));
    db.close();
    assert.ok(readFileSync(join(dir, `${file}-wal`)).length > 4096);
    const before = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]);
    const warnings: string[] = [];
    const reader = await openRecordingPath(dir, { onWarning: (w) => warnings.push(w) });
    const got = simple(await readAll(reader));
    assert.deepEqual(got, expected);
    // metadata.yaml lists the 40 messages the recorder had counted; the log holds the rest.
    const metaFile = join(dir, 'metadata.yaml');
    assert.ok(warnings.includes(`${metaFile}: message_count 40 in the metadata, the files hold ${messages.length}`), warnings.join('\n'));
    assert.deepEqual(
      readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]),
      before,
    );
  });
});

describe('rosbag2 sqlite3 recordings: writing for Humble and Jazzy', function () {
  this.timeout(60000);

  async function fill(w: Rosbag2Writer, n: number): Promise<void> {
    const a = await w.addChannel('/a', TYPE, { qos: [defaultOfferedQos({ reliability: 'best_effort', history: 'keep_last', depth: 5 })] });
    const b = await w.addChannel('/b', TYPE);
    for (let i = 0; i < n; i++) await w.write(i % 3 === 0 ? b : a, { layout: { dim: [], data_offset: 0 }, data: [i] }, T0 + BigInt(i) * MS);
  }

  it("writes Humble's sqlite3 layout and a metadata version 5 that Humble's reader rules accept", async () => {
    const dir = join(tempDir('s2-db3-'), 'for_humble');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { storage: 'sqlite3', distro: 'humble', rosDistro: 'humble', maxFileSize: 3000 });
    await fill(w, 200);
    const meta = await w.finish();
    assert.ok(meta.relativeFilePaths.length >= 3, `${meta.relativeFilePaths.length} files`);
    assert.deepEqual(
      meta.relativeFilePaths,
      meta.relativeFilePaths.map((_, i) => `for_humble_${i}.db3`),
    );
    const text = readFileSync(join(dir, 'metadata.yaml'), 'utf8');
    assert.deepEqual(humbleMetadataProblems(text), []);
    const info = (parse(text) as { rosbag2_bagfile_information: Record<string, unknown> }).rosbag2_bagfile_information;
    assert.deepEqual(Object.keys(info), HUMBLE_KEYS);
    assert.equal(info.version, 5);
    assert.equal(info.storage_identifier, 'sqlite3');
    for (const t of info.topics_with_message_count as { topic_metadata: Record<string, unknown> }[])
      assert.deepEqual(Object.keys(t.topic_metadata), HUMBLE_TOPIC_KEYS);
    for (const p of meta.relativeFilePaths) {
      const file = join(dir, p);
      // Statement for statement what Humble's SqliteStorage::initialize creates (db schema version 3).
      assert.deepEqual(await sqliteMaster(file), DB_SCHEMA[3]);
      assert.deepEqual(await rows(file, 'SELECT * FROM schema'), [{ schema_version: 3, ros_distro: 'humble' }]);
      assert.deepEqual(await rows(file, 'SELECT * FROM metadata'), []);
      const qos = (await rows(file, 'SELECT offered_qos_profiles AS q FROM topics ORDER BY id'))[0].q as string;
      assert.match(qos, /^- history: 1\n {2}depth: 5\n {2}reliability: 2\n/);
    }
    const back = await readAll(await openRecordingPath(dir));
    assert.deepEqual(
      back.map((m) => (m.message as Float64MultiArrayMsg).data[0]),
      Array.from({ length: 200 }, (_, i) => i),
    );
  });

  it("writes Jazzy's sqlite3 layout (schema 4, QoS names, definitions, the bag's metadata in each file); Humble's rules refuse version 9", async () => {
    const dir = join(tempDir('s2-db3-'), 'for_jazzy');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { storage: 'sqlite3', rosDistro: 'jazzy', maxFileSize: 3000 });
    await fill(w, 200);
    const meta = await w.finish();
    assert.equal(meta.version, 9);
    const first = join(dir, meta.relativeFilePaths[0]);
    assert.deepEqual(await sqliteMaster(first), DB_SCHEMA[4]);
    assert.deepEqual(await rows(first, 'SELECT * FROM schema'), [{ schema_version: 4, ros_distro: 'jazzy' }]);
    assert.deepEqual(
      (await rows(first, 'SELECT topic_type, encoding FROM message_definitions')).map((r) => [r.topic_type, r.encoding]),
      [[TYPE, 'ros2msg']],
    );
    assert.match(
      (await rows(first, 'SELECT offered_qos_profiles AS q FROM topics ORDER BY id'))[0].q as string,
      /^- history: keep_last\n {2}depth: 5\n {2}reliability: best_effort\n/,
    );
    const stored = await rows(first, 'SELECT metadata_version AS v, metadata AS m FROM metadata');
    assert.equal(stored.length, 1);
    assert.equal(stored[0].v, 9);
    assert.deepEqual((parse(stored[0].m as string) as { relative_file_paths: string[] }).relative_file_paths, [meta.relativeFilePaths[0]]);
    // The last file's row describes the whole bag, as Jazzy's last update_metadata does.
    const last = await rows(join(dir, meta.relativeFilePaths.at(-1) as string), 'SELECT metadata AS m FROM metadata');
    assert.equal((parse(last[0].m as string) as { message_count: number }).message_count, 200);
    // Jazzy reads the topics table's QoS by the metadata row's version: with version 8 they are integers.
    const dir8 = join(tempDir('s2-db3-'), 'v8');
    mkdirSync(dir8);
    const w8 = await Rosbag2Writer.create(dir8, { storage: 'sqlite3', metadataVersion: 8 });
    await fill(w8, 10);
    await w8.finish();
    const f8 = join(dir8, 'v8_0.db3');
    assert.match(
      (await rows(f8, 'SELECT offered_qos_profiles AS q FROM topics ORDER BY id'))[0].q as string,
      /^- history: 1\n {2}depth: 5\n {2}reliability: 2\n/,
    );
    assert.deepEqual(
      (await rows(f8, 'SELECT metadata_version AS v FROM metadata')).map((r) => r.v),
      [8],
    );
    assert.equal((await readAll(await openRecordingPath(dir8))).length, 10);
    const problems = humbleMetadataProblems(readFileSync(join(dir, 'metadata.yaml'), 'utf8'));
    assert.ok(problems.length > 0 && problems.every((p) => /offered_qos_profiles: bad conversion/.test(p)), problems.join('; '));
    // An MCAP folder for Humble (its separate rosbag2_storage_mcap plugin) gets version 5 too.
    const mcapDir = join(tempDir('s2-db3-'), 'mcap_humble');
    mkdirSync(mcapDir);
    const m = await Rosbag2Writer.create(mcapDir, { storage: 'mcap', distro: 'humble' });
    await fill(m, 20);
    assert.equal((await m.finish()).version, 5);
    assert.deepEqual(humbleMetadataProblems(readFileSync(join(mcapDir, 'metadata.yaml'), 'utf8')), []);
    assert.deepEqual(readdirSync(mcapDir).sort(), ['mcap_humble_0.mcap', 'metadata.yaml']);
  });

  it('refuses for Humble a QoS policy value Humble has not got', async () => {
    const dir = join(tempDir('s2-db3-'), 'qos');
    mkdirSync(dir);
    const w = await Rosbag2Writer.create(dir, { storage: 'sqlite3', distro: 'humble' });
    await rejectsWith(
      w.addChannel('/a', TYPE, { qos: [defaultOfferedQos({ reliability: 'best_available' })] }),
      /topic \/a: offered QoS reliability best_available does not exist in Humble, so it cannot be written for Humble$/,
    );
    await w.abort();
    assert.equal(existsSync(dir), true);
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('replay and extract with sqlite3 recordings', function () {
  this.timeout(300000);
  let kit: DemoKit;
  let demo: { topics: SqliteTopic[]; messages: SqliteMessage[] };
  const line = (s: string, key: string) => s.split('\n').filter((l) => l.startsWith(key));
  const actions = (ms: BagMessage[]) => ms.filter((m) => m.topic === '/s2_policy/joint_trajectory').map((m) => [m.logTime, Array.from(m.data)]);

  before(async () => {
    kit = await writeDemoKit(tempDir('s2-db3-demo-'), { durationS: 2, width: 64, height: 48 });
    const r = await McapRosReader.open(kit.recording);
    const topics = (await r.topics()).map((t) => ({ name: t.topic, type: t.type, definition: rosbag2DefinitionText(t.type) }));
    const messages: SqliteMessage[] = [];
    for await (const m of r.messages({ decode: false })) messages.push({ topic: m.topic, logTime: m.logTime, cdr: m.data });
    await r.close();
    demo = { topics, messages };
  });

  it('replay gives the counts and actions of the MCAP from db3 folders of metadata 4, 5, 8 and 9 (split, compressed) and a lone .db3', async () => {
    const fromFile = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'a.mcap')]);
    assert.equal(fromFile.status, 0, fromFile.stderr);
    const a = actions(await readAll(await openRecordingPath(join(kit.dir, 'a.mcap'))));
    assert.ok(a.length > 10, `${a.length} actions`);
    const cases: [string, MetadataVersion, 'none' | 'file' | 'message'][] = [
      ['v4', 4, 'none'],
      ['v5', 5, 'file'],
      ['v8', 8, 'message'],
      ['v9', 9, 'none'],
    ];
    const bags: string[] = [];
    for (const [name, version, compression] of cases) {
      const dir = join(kit.dir, `db3_${name}`);
      const paths = await writeSqliteFolder(dir, demo.topics, demo.messages, { version, perFile: 90, compression });
      assert.ok(paths.length >= 3, `${paths.length} files`);
      bags.push(dir);
    }
    const lone = join(kit.dir, 'lone');
    const [loneFile] = await writeSqliteFolder(lone, demo.topics, demo.messages, { version: 5 });
    bags.push(join(lone, loneFile));
    for (const bag of bags) {
      const out = join(kit.dir, `${bag.split('/').pop() as string}.out.mcap`);
      const r = cli(['replay', '--bag', bag, '--config', kit.config, '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', bag);
      for (const key of ['messages', 'camera', 'joints', 'frames', 'dropped', 'actions', 'features'])
        assert.deepEqual(line(r.stdout, key), line(fromFile.stdout, key), `${bag}: ${key}`);
      assert.deepEqual(actions(await readAll(await openRecordingPath(out))), a, bag);
    }
  });

  it('replay --ros-distro humble writes a sqlite3 folder (metadata 5) with the same actions; --out x.db3 one file', async () => {
    const ref = actions(await readAll(await openRecordingPath(join(kit.dir, 'a.mcap'))));
    const out = join(kit.dir, 'for_humble');
    const r = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', out, '--ros-distro', 'humble', '--max-file-size', '20000']);
    assert.equal(r.status, 0, r.stderr);
    const meta = parseRosbag2Metadata(readFileSync(join(out, 'metadata.yaml'), 'utf8'), 'metadata.yaml');
    assert.equal(meta.version, 5);
    assert.equal(meta.storageIdentifier, 'sqlite3');
    assert.ok(meta.relativeFilePaths.length >= 2 && meta.relativeFilePaths.every((p, i) => p === `for_humble_${i}.db3`), meta.relativeFilePaths.join(', '));
    assert.deepEqual(humbleMetadataProblems(readFileSync(join(out, 'metadata.yaml'), 'utf8')), []);
    assert.deepEqual(actions(await readAll(await openRecordingPath(out))), ref);
    const one = join(kit.dir, 'one.db3');
    const s = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', one]);
    assert.equal(s.status, 0, s.stderr);
    assert.deepEqual(actions(await readAll(await openRecordingPath(one))), ref);
    assert.deepEqual(
      readdirSync(kit.dir).filter((f) => /\.(tmp|lock)$/.test(f)),
      [],
    );
    const bad = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'x.mcap'), '--storage', 'sqlite3']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /x\.mcap: --storage sqlite3 does not write a \.mcap file; give --out a folder name or a \.db3 name\n$/);
    const distro = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'y'), '--ros-distro', 'iron']);
    assert.equal(distro.status, 2);
    assert.match(distro.stderr, /--ros-distro must be humble or jazzy, got 'iron'\n$/);
  });

  it('extract gives the features of the MCAP from a db3 folder', async () => {
    const folder = join(kit.dir, 'db3_x');
    await writeSqliteFolder(folder, demo.topics, demo.messages, { version: 5, perFile: 120 });
    const a = cli(['extract', '--bag', kit.recording, '--config', kit.config, '--out', join(kit.dir, 'xa')]);
    assert.equal(a.status, 0, a.stderr);
    const b = cli(['extract', '--bag', folder, '--config', kit.config, '--out', join(kit.dir, 'xb')]);
    assert.equal(b.status, 0, b.stderr);
    for (const f of ['features.npy', 'stamps_ns.npy', 'log_times_ns.npy', 'state.npy'])
      assert.deepEqual(readFileSync(join(kit.dir, 'xb', f)), readFileSync(join(kit.dir, 'xa', f)), f);
    const ia = JSON.parse(readFileSync(join(kit.dir, 'xa', 'index.json'), 'utf8')) as { accounting: unknown; frames: number };
    const ib = JSON.parse(readFileSync(join(kit.dir, 'xb', 'index.json'), 'utf8')) as { accounting: unknown; frames: number };
    assert.deepEqual(ib.accounting, ia.accounting);
    assert.ok(ia.frames > 10);
  });
});
