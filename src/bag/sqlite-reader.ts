// SqliteRosReader: one .db3 file of a rosbag2 recording in sqlite3 storage (Humble's default, `-s sqlite3` on Jazzy):
// its topics, and its messages in timestamp order decoded from CDR, as rosbag2's sqlite3 plugin reads them. SQLite
// itself, compiled to WebAssembly (node-sqlite3-wasm), reads the file page by page and read-only.
import { mkdtemp, open, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Database, SQLiteValue, Statement } from 'node-sqlite3-wasm';
import { UserError } from '../errors.js';
import { loadSqlite } from './sqlite-lib.js';
import { decodeCdr, topicDecoder, type StoredDefinition, type TopicDecoder } from './decode.js';
import type { BagMessage, DecodeFailure, MessageQuery, TopicInfo } from './reader.js';
import { parseStoredRosbag2Metadata, type Rosbag2Metadata } from './rosbag2.js';
import { zstdDecompressLoaded, zstdReady } from './zstd.js';

/** The 16 bytes every SQLite 3 database starts with. */
export const SQLITE_MAGIC = new TextEncoder().encode('SQLite format 3\0');

export function isSqlite(head: Uint8Array): boolean {
  return head.byteLength >= SQLITE_MAGIC.length && SQLITE_MAGIC.every((b, i) => head[i] === b);
}

export interface SqliteRosReaderOptions {
  /** Called for each message that cannot be decoded; the message is skipped and counted either way. */
  onDecodeError?: (failure: DecodeFailure) => void;
  /** The name errors give the file (e.g. the compressed original of a file decompressed elsewhere); default its path. */
  displayName?: string;
  /** Turns each stored payload into CDR (rosbag2's per-message zstd); one it throws on is counted as undecodable. */
  decodePayload?: (data: Uint8Array) => Uint8Array;
  /**
   * Whether payloads are zstd-compressed one by one. A folder's metadata.yaml says so; for a lone .db3 (undefined
   * here) the metadata the file keeps in its own `metadata` table does (Iron and later write one).
   */
  messageCompression?: 'zstd' | 'none';
  /** Where the private link to the file is made while it is open; default the OS temp folder. */
  tmpDir?: string;
}

interface TopicRow {
  id: number;
  name: string;
  type: string;
  serializationFormat: string;
  /** The offered_qos_profiles text (schema version ≥ 2), as stored. */
  qos: string | undefined;
  /** type_description_hash (schema version 4), '' when not known. */
  hash: string;
}

interface Counts {
  count: number;
  start: bigint;
  end: bigint;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

function integer(v: SQLiteValue): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

function text(v: SQLiteValue): string {
  if (v === null) return '';
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return String(v);
}

/**
 * SQLite answers synchronously; the event loop gets a turn every few hundred rows, as it does between the file reads
 * of the MCAP reader. Ending this generator ends `rows` (and so finalizes its statements).
 */
async function* asAsync<T>(rows: Generator<T>): AsyncGenerator<T> {
  let n = 0;
  for (const row of rows) {
    if (++n % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield row;
  }
}

export class SqliteRosReader {
  private readonly decoders = new Map<number, TopicDecoder>();
  private readonly failuresByTopic = new Map<string, number>();
  private readonly statements = new Set<Statement>();
  private failures = 0;
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly db: Database,
    private readonly scratch: string,
    private readonly options: SqliteRosReaderOptions,
    private readonly topicRows: readonly TopicRow[],
    private readonly definitions: ReadonlyMap<string, StoredDefinition>,
    private readonly counts: ReadonlyMap<number, Counts>,
    private readonly decodePayload: ((data: Uint8Array) => Uint8Array) | undefined,
    /** rosbag2's db schema version: 1 (before Foxy), 2 (QoS column), 3 (schema and metadata tables), 4 (type hashes, definitions). */
    readonly schemaVersion: number,
    /** ROS_DISTRO of the recording machine (schema version ≥ 3), '' when not known. */
    readonly rosDistro: string,
    /** The newest row of the file's own `metadata` table, undefined when it has none. */
    readonly storedMetadata: Rosbag2Metadata | undefined,
  ) {}

  /**
   * Opens a .db3 read-only. A file that is not SQLite, is cut short, or lacks rosbag2's tables is a UserError naming
   * it. The file is never written: SQLite opens it read-only through a link in a private temporary folder, because
   * this SQLite build marks its locks with a `<file>.lock` folder beside the file it opened, which must not appear in
   * (or be refused by) the folder of a recording.
   */
  static async open(path: string, options: SqliteRosReaderOptions = {}): Promise<SqliteRosReader> {
    const file = options.displayName ?? path;
    let size: number;
    const head = new Uint8Array(100);
    try {
      const s = await stat(path);
      if (s.isDirectory()) throw new UserError(`${file}: is a directory; pass the .db3 file or its rosbag2 folder`);
      size = s.size;
      const h = await open(path, 'r');
      try {
        await h.read(head, 0, head.length, 0);
      } finally {
        await h.close();
      }
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${file}: cannot open: ${firstLine(e)}`);
    }
    if (size === 0) throw new UserError(`${file}: empty file, not an SQLite database`);
    if (!isSqlite(head)) throw new UserError(`${file}: not an SQLite database (no 'SQLite format 3' header at byte 0)`);
    if (size < 100) throw new UserError(`${file}: truncated SQLite database (${size} bytes, shorter than its 100-byte header)`);
    // The header states the database's size in pages when its change counter (byte 24) matches the version-valid-for
    // number (byte 92); a file shorter than that was cut. Pages in a write-ahead log may lie beyond the file.
    const view = new DataView(head.buffer);
    const pageSize = view.getUint16(16) === 1 ? 65536 : view.getUint16(16);
    const pages = view.getUint32(28);
    const stated = view.getUint32(24) === view.getUint32(92) ? pageSize * pages : 0;
    const walSize = (await stat(`${path}-wal`).catch(() => undefined))?.size ?? 0;
    if (walSize === 0 && stated > size)
      throw new UserError(`${file}: truncated SQLite database: its header counts ${pages} pages of ${pageSize} bytes (${stated} bytes), the file has ${size}`);
    const scratch = await mkdtemp(join(options.tmpDir ?? tmpdir(), 's2-policy-db3-'));
    let db: Database | undefined;
    try {
      const link = join(scratch, 'recording.db3');
      await symlink(resolve(path), link);
      // A write-ahead log or rollback journal belongs to the file: SQLite finds it by the name it opened.
      for (const suffix of ['-wal', '-journal']) {
        const companion = await stat(`${path}${suffix}`).catch(() => undefined);
        if (companion?.isFile()) await symlink(resolve(`${path}${suffix}`), `${link}${suffix}`);
      }
      const { Database } = await loadSqlite();
      try {
        db = new Database(link, { readOnly: true });
      } catch (e) {
        throw new UserError(`${file}: SQLite cannot open it: ${firstLine(e)}`);
      }
      return await SqliteRosReader.load(file, db, scratch, options);
    } catch (e) {
      if (db?.isOpen) db.close();
      await rm(scratch, { recursive: true, force: true });
      if (e instanceof UserError) throw e;
      throw new UserError(`${file}: ${firstLine(e)}`);
    }
  }

  private static async load(file: string, db: Database, scratch: string, options: SqliteRosReaderOptions): Promise<SqliteRosReader> {
    const query = (sql: string, values?: SQLiteValue[]) => {
      try {
        return db.all(sql, values) as Record<string, SQLiteValue>[];
      } catch (e) {
        throw new UserError(`${file}: SQLite: ${firstLine(e)}`);
      }
    };
    // Exclusive locking keeps SQLite's WAL index in memory: a recording made with rosbag2's 'resilient' preset is in
    // WAL mode, and this build has no shared memory to put that index in.
    query('PRAGMA locking_mode=EXCLUSIVE');
    const tables = new Set(query(`SELECT name FROM sqlite_master WHERE type = 'table'`).map((r) => text(r.name)));
    for (const t of ['topics', 'messages'])
      if (!tables.has(t)) throw new UserError(`${file}: not a rosbag2 sqlite3 recording (no '${t}' table; its tables: ${[...tables].join(', ') || 'none'})`);
    const columns = (table: string) => new Set(query(`SELECT name FROM pragma_table_info('${table}')`).map((r) => text(r.name)));
    const topicColumns = columns('topics');
    for (const c of ['id', 'name', 'type', 'serialization_format'])
      if (!topicColumns.has(c)) throw new UserError(`${file}: table topics has no column '${c}': not a rosbag2 sqlite3 recording`);
    const messageColumns = columns('messages');
    for (const c of ['id', 'topic_id', 'timestamp', 'data'])
      if (!messageColumns.has(c)) throw new UserError(`${file}: table messages has no column '${c}': not a rosbag2 sqlite3 recording`);
    const hasQos = topicColumns.has('offered_qos_profiles');
    const hasHash = topicColumns.has('type_description_hash');

    let schemaVersion = hasQos ? 2 : 1;
    let rosDistro = '';
    if (tables.has('schema')) {
      const row = query('SELECT * FROM schema')[0];
      const v = row ? integer(row.schema_version) : undefined;
      if (v === undefined) throw new UserError(`${file}: table schema holds no schema_version`);
      schemaVersion = Number(v);
      rosDistro = row && 'ros_distro' in row ? text(row.ros_distro) : '';
    }
    let storedMetadata: Rosbag2Metadata | undefined;
    if (tables.has('metadata')) {
      // rosbag2 adds a row whenever it updates the metadata (at open, split and close); the newest one holds.
      const row = query('SELECT id, metadata FROM metadata ORDER BY id DESC LIMIT 1')[0];
      if (row) storedMetadata = parseStoredRosbag2Metadata(text(row.metadata), `${file}: table metadata, row ${String(row.id)}`);
    }
    const topicRows: TopicRow[] = query(
      `SELECT id, name, type, serialization_format${hasQos ? ', offered_qos_profiles' : ''}${hasHash ? ', type_description_hash' : ''} FROM topics ORDER BY id`,
    ).map((r) => ({
      id: Number(integer(r.id) ?? -1),
      name: text(r.name),
      type: text(r.type),
      serializationFormat: text(r.serialization_format),
      qos: hasQos ? text(r.offered_qos_profiles) : undefined,
      hash: hasHash ? text(r.type_description_hash) : '',
    }));
    const definitions = new Map<string, StoredDefinition>();
    if (tables.has('message_definitions')) {
      for (const r of query('SELECT topic_type, encoding, encoded_message_definition FROM message_definitions ORDER BY id')) {
        const name = text(r.topic_type);
        if (!definitions.has(name)) definitions.set(name, { name, encoding: text(r.encoding), text: text(r.encoded_message_definition) });
      }
    }
    const counts = new Map<number, Counts>();
    for (const r of query('SELECT topic_id, COUNT(*) AS n, MIN(timestamp) AS lo, MAX(timestamp) AS hi FROM messages GROUP BY topic_id')) {
      const lo = integer(r.lo);
      const hi = integer(r.hi);
      if (lo === undefined || hi === undefined)
        throw new UserError(`${file}: table messages holds timestamps that are not integers (topic id ${String(r.topic_id)})`);
      counts.set(Number(integer(r.topic_id) ?? -1), { count: Number(r.n), start: lo, end: hi });
    }
    let compression = options.messageCompression;
    if (compression === undefined) {
      const m = storedMetadata;
      if (m?.compressionMode === 'message' && m.compressionFormat !== 'zstd')
        throw new UserError(`${file}: its metadata table says compression_format '${m.compressionFormat}' per message; only zstd is read`);
      compression = m?.compressionMode === 'message' ? 'zstd' : 'none';
    }
    let decodePayload = options.decodePayload;
    if (compression === 'zstd' && !decodePayload) {
      await zstdReady();
      decodePayload = zstdDecompressLoaded;
    }
    return new SqliteRosReader(file, db, scratch, options, topicRows, definitions, counts, decodePayload, schemaVersion, rosDistro, storedMetadata);
  }

  /** Messages that could not be decoded so far, in total and per topic. */
  get decodeFailures(): { total: number; byTopic: ReadonlyMap<string, number> } {
    return { total: this.failures, byTopic: this.failuresByTopic };
  }

  /** Timestamp range of all messages (ns), undefined for an empty file. */
  get timeRange(): { start: bigint; end: bigint } | undefined {
    let range: { start: bigint; end: bigint } | undefined;
    for (const c of this.counts.values()) {
      if (!range) range = { start: c.start, end: c.end };
      else {
        if (c.start < range.start) range.start = c.start;
        if (c.end > range.end) range.end = c.end;
      }
    }
    return range;
  }

  /**
   * Messages whose topic_id has no row in the topics table, by topic id: rosbag2's reader joins them away unseen;
   * here they are counted, and never yielded.
   */
  get unknownChannelsInIndex(): ReadonlyMap<number, number> {
    const known = new Set(this.topicRows.map((t) => t.id));
    return new Map([...this.counts].filter(([id]) => !known.has(id)).map(([id, c]) => [id, c.count]));
  }

  get unknownChannelMessages(): ReadonlyMap<number, number> {
    return this.unknownChannelsInIndex;
  }

  /** Topics with their types and message counts, sorted by topic. */
  topics(): Promise<TopicInfo[]> {
    const byKey = new Map<string, TopicInfo>();
    for (const t of this.topicRows) {
      const key = `${t.name}\u0000${t.type}`;
      const n = this.counts.get(t.id)?.count ?? 0;
      const seen = byKey.get(key);
      if (seen) {
        seen.messageCount += n;
        continue;
      }
      const metadata: Record<string, string> = {};
      if (t.qos !== undefined) metadata.offered_qos_profiles = t.qos;
      if (t.hash !== '') metadata.topic_type_hash = t.hash;
      byKey.set(key, {
        topic: t.name,
        type: t.type,
        messageCount: n,
        messageEncoding: t.serializationFormat,
        schemaEncoding: this.definitions.get(t.type)?.encoding ?? '',
        definition: this.decoder(t).definition,
        metadata,
      });
    }
    return Promise.resolve([...byKey.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0)));
  }

  /**
   * Messages in timestamp order (ties by row id, as rosbag2 reads them), optionally only some topics and a time range.
   * A message that cannot be decoded is counted (decodeFailures), reported to onDecodeError and skipped. A damaged
   * file ends the iteration with a UserError naming it.
   */
  messages(query: MessageQuery = {}): AsyncGenerator<BagMessage> {
    return asAsync(this.rows(query));
  }

  private *rows(query: MessageQuery): Generator<BagMessage> {
    const { topics, startTime, endTime, decode = true } = query;
    const rows = new Map(this.topicRows.filter((t) => !topics || topics.includes(t.name)).map((t) => [t.id, t]));
    if (rows.size === 0) return;
    const where = [`topic_id IN (${[...rows.keys()].map(() => '?').join(', ')})`];
    const values: SQLiteValue[] = [...rows.keys()];
    if (startTime !== undefined) {
      where.push('timestamp >= ?');
      values.push(startTime);
    }
    if (endTime !== undefined) {
      where.push('timestamp <= ?');
      values.push(endTime);
    }
    // Keys first, payloads by row id: the order comes from timestamp_idx when the file has it, and a file without it
    // is sorted on keys alone, never on payloads.
    const keys = this.prepare(`SELECT id, topic_id, timestamp FROM messages WHERE ${where.join(' AND ')} ORDER BY timestamp, id`);
    const payload = this.prepare('SELECT data FROM messages WHERE id = ?');
    let last: bigint | undefined;
    try {
      const it = this.guard(() => keys.iterate(values), last);
      for (;;) {
        const next = this.guard(() => it.next(), last);
        if (next.done) return;
        const row = next.value as Record<string, SQLiteValue>;
        const topic = rows.get(Number(row.topic_id)) as TopicRow;
        const logTime = integer(row.timestamp);
        if (logTime === undefined) {
          this.countFailure(topic, last ?? 0n, `timestamp ${JSON.stringify(String(row.timestamp))} is not an integer`);
          continue;
        }
        last = logTime;
        const stored = this.guard(() => payload.get([row.id]), last)?.data;
        if (!(stored instanceof Uint8Array)) {
          this.countFailure(topic, logTime, `stored data is ${stored === null ? 'NULL' : typeof stored}, not a blob`);
          continue;
        }
        let data = stored;
        if (this.decodePayload) {
          try {
            data = this.decodePayload(stored);
          } catch (e) {
            this.countFailure(topic, logTime, `stored payload: ${firstLine(e)}`);
            continue;
          }
        }
        const base = { topic: topic.name, type: topic.type, logTime, publishTime: logTime, sequence: Number(row.id), data };
        if (!decode) {
          yield { ...base, message: undefined };
          continue;
        }
        const result = decodeCdr(this.decoder(topic), data);
        if (!result.ok) {
          this.countFailure(topic, logTime, result.problem);
          continue;
        }
        yield { ...base, message: result.value };
      }
    } finally {
      this.finalize(keys);
      this.finalize(payload);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.statements) this.finalize(s);
    this.db.close();
    await rm(this.scratch, { recursive: true, force: true });
  }

  private prepare(sql: string): Statement {
    if (this.closed) throw new Error(`${this.file}: reader is closed`);
    const s = this.guard(() => this.db.prepare(sql), undefined);
    this.statements.add(s);
    return s;
  }

  private finalize(s: Statement): void {
    if (!this.statements.delete(s)) return;
    if (!s.isFinalized) s.finalize();
  }

  /** Runs one SQLite call; its failure (a damaged page) becomes a UserError naming the file and how far reading got. */
  private guard<T>(op: () => T, last: bigint | undefined): T {
    try {
      return op();
    } catch (e) {
      throw new UserError(
        `${this.file}: SQLite: ${firstLine(e)}${last === undefined ? ' (before the first message)' : ` (after the message at timestamp ${last} ns)`}`,
      );
    }
  }

  private decoder(t: TopicRow): TopicDecoder {
    let d = this.decoders.get(t.id);
    if (!d) {
      d = topicDecoder(`${this.file}: topic ${t.name}`, t.serializationFormat, t.type, this.definitions.get(t.type));
      this.decoders.set(t.id, d);
    }
    return d;
  }

  private countFailure(t: TopicRow, logTime: bigint, reason: string): void {
    this.failures++;
    this.failuresByTopic.set(t.name, (this.failuresByTopic.get(t.name) ?? 0) + 1);
    this.options.onDecodeError?.({ file: this.file, topic: t.name, type: t.type, logTime, reason });
  }
}
