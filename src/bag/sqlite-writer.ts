// SqliteRosWriter: one .db3 file as rosbag2's sqlite3 storage plugin writes it — Humble's (db schema version 3) or
// Jazzy's (version 4, with type hashes, message definitions and the bag's metadata kept in the file) — through SQLite
// compiled to WebAssembly; written under a temporary name and renamed on close (src/io/atomic).
import type { Database, Statement } from 'node-sqlite3-wasm';
import { UserError } from '../errors.js';
import { AtomicFile } from '../io/atomic.js';
import type { MessageOf } from './messages.js';
import { defaultOfferedQos, humbleQosProblem, serializeOfferedQos } from './qos.js';
import { JAZZY_METADATA_VERSION, serializeStoredRosbag2Metadata, type Rosbag2Metadata } from './rosbag2.js';
import { loadSqlite } from './sqlite-lib.js';
import { channelCodec, encodeChecked, type ChannelCodec, type ChannelOptions, type RosChannel } from './writer.js';

/** Whose sqlite3 plugin a file is written as. */
export type SqliteLayout = 'humble' | 'jazzy';

/**
 * The tables rosbag2's sqlite3 plugin creates (SqliteStorage::initialize), statement for statement so that
 * sqlite_master reads the same: Humble's (rosbag2_storage_default_plugins, branch humble: schema version 3; the
 * metadata table exists but Humble never fills it) and Jazzy's (rosbag2_storage_sqlite3, branch jazzy: version 4).
 */
const SCHEMA: Record<SqliteLayout, { version: number; statements: string[] }> = {
  humble: {
    version: 3,
    statements: [
      'CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);',
      'CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,metadata TEXT NOT NULL);',
      'CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL);',
      'CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL, data BLOB NOT NULL);',
      'CREATE INDEX timestamp_idx ON messages (timestamp ASC);',
    ],
  },
  jazzy: {
    version: 4,
    statements: [
      'CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);',
      'CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,metadata TEXT NOT NULL);',
      'CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL,type_description_hash TEXT NOT NULL);',
      'CREATE TABLE message_definitions(id INTEGER PRIMARY KEY,topic_type TEXT NOT NULL,encoding TEXT NOT NULL,encoded_message_definition TEXT NOT NULL,type_description_hash TEXT NOT NULL);',
      'CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL, data BLOB NOT NULL);',
      'CREATE INDEX timestamp_idx ON messages (timestamp ASC);',
    ],
  },
};

/** Messages per transaction: rosbag2 commits a cache flush at a time; this bounds the journal kept in memory. */
const ROWS_PER_TRANSACTION = 1000;

export interface SqliteRosWriterOptions {
  /** Humble's or Jazzy's file layout; default jazzy. */
  layout?: SqliteLayout;
  /** ros_distro in the schema table; default $ROS_DISTRO, else ''. */
  rosDistro?: string;
  /** Turns each CDR payload into the stored bytes, e.g. rosbag2's per-message zstd compression. */
  encodePayload?: (cdr: Uint8Array) => Uint8Array;
  /**
   * The metadata version of the bag (Jazzy's layout): Jazzy reads the topics table's QoS text by the version in the
   * metadata table, so policy names go with 9 and integer enums with 8. Default 9.
   */
  metadataVersion?: number;
}

interface TopicState extends ChannelCodec {
  topic: string;
  type: string;
  id: number;
  count: number;
  qos: ChannelOptions['qos'];
  hash: string;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

export class SqliteRosWriter {
  private readonly topics = new Map<number, TopicState>();
  private readonly byName = new Set<string>();
  private readonly definitions = new Set<string>();
  private count = 0;
  private payloadBytes = 0;
  private pending = 0;
  private startNs: bigint | undefined;
  private endNs: bigint | undefined;
  private closed = false;
  private bagMetadata: Rosbag2Metadata | undefined;

  private constructor(
    readonly file: string,
    readonly layout: SqliteLayout,
    private readonly db: Database,
    private readonly insert: Statement,
    private readonly output: AtomicFile,
    private readonly rosDistro: string,
    private readonly encodePayload: ((cdr: Uint8Array) => Uint8Array) | undefined,
    private readonly metadataVersion: number,
  ) {}

  /** Starts writing `file` (under a temporary name beside it, renamed on close; abort() removes it). */
  static async create(file: string, options: SqliteRosWriterOptions = {}): Promise<SqliteRosWriter> {
    const layout = options.layout ?? 'jazzy';
    const { Database } = await loadSqlite();
    const output = AtomicFile.begin(file);
    let db: Database | undefined;
    try {
      db = new Database(output.tmp);
      // rosbag2's default ('none' preset) pragmas for writing (sqlite_pragmas.hpp): the file is renamed into place only
      // when complete, so a crash-safe journal would buy nothing here either.
      db.exec('PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;');
      const schema = SCHEMA[layout];
      for (const s of schema.statements) db.exec(s);
      const rosDistro = options.rosDistro ?? process.env.ROS_DISTRO ?? '';
      db.run('INSERT INTO schema (schema_version, ros_distro) VALUES (?, ?)', [schema.version, rosDistro]);
      const insert = db.prepare('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?);');
      db.exec('BEGIN TRANSACTION;');
      return new SqliteRosWriter(file, layout, db, insert, output, rosDistro, options.encodePayload, options.metadataVersion ?? JAZZY_METADATA_VERSION);
    } catch (e) {
      if (db?.isOpen) db.close();
      output.abort();
      throw new UserError(`${file}: cannot create: ${firstLine(e)}`);
    }
  }

  get messageCount(): number {
    return this.count;
  }

  /** About how large the file is so far: payloads plus timestamp, topic id and row id per message, as rosbag2 estimates. */
  get sizeEstimate(): number {
    return this.payloadBytes + 24 * this.count;
  }

  get timeRange(): { start: bigint; end: bigint } | undefined {
    return this.startNs === undefined || this.endNs === undefined ? undefined : { start: this.startNs, end: this.endNs };
  }

  /** The ids and types of the topics added, in order. */
  get channels(): RosChannel[] {
    return [...this.topics.values()].map((t) => ({ topic: t.topic, type: t.type, id: t.id }));
  }

  /**
   * Adds a topic. Humble's layout stores QoS with integer enums and no type hash or definition; Jazzy's stores QoS
   * with policy names, the type hash, and each type's ros2msg definition once in message_definitions.
   */
  addChannel<K extends string>(topic: string, type: K, options: ChannelOptions = {}): Promise<RosChannel<K>> {
    return Promise.resolve(this.addTopic(topic, type, options));
  }

  private addTopic<K extends string>(topic: string, type: K, options: ChannelOptions): RosChannel<K> {
    this.assertOpen();
    if (this.byName.has(topic)) throw new UserError(`${this.file}: topic ${topic} was already added`);
    const codec = channelCodec(this.file, topic, type, options.definition);
    const qos = options.qos ?? [defaultOfferedQos()];
    if (this.layout === 'humble') {
      for (const p of qos) {
        const problem = humbleQosProblem(p);
        if (problem) throw new UserError(`${this.file}: topic ${topic}: offered QoS ${problem}, so it cannot be written for Humble`);
      }
    }
    const hash = options.typeHash ?? '';
    let id: number;
    try {
      if (this.layout === 'humble') {
        id = Number(
          this.db.run('INSERT INTO topics (name, type, serialization_format, offered_qos_profiles) VALUES (?, ?, ?, ?)', [
            topic,
            codec.name,
            'cdr',
            serializeOfferedQos(qos, 'integers'),
          ]).lastInsertRowid,
        );
      } else {
        id = Number(
          this.db.run('INSERT INTO topics(name, type, serialization_format, offered_qos_profiles, type_description_hash) VALUES (?, ?, ?, ?, ?)', [
            topic,
            codec.name,
            'cdr',
            serializeOfferedQos(qos, this.metadataVersion >= 9 ? 'names' : 'integers'),
            hash,
          ]).lastInsertRowid,
        );
        if (!this.definitions.has(codec.name)) {
          this.db.run('INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, type_description_hash) VALUES (?, ?, ?, ?)', [
            codec.name,
            'ros2msg',
            codec.text,
            hash,
          ]);
          this.definitions.add(codec.name);
        }
      }
    } catch (e) {
      throw new UserError(`${this.file}: cannot write topic ${topic}: ${firstLine(e)}`);
    }
    this.byName.add(topic);
    this.topics.set(id, { ...codec, topic, type: codec.name, id, count: 0, qos, hash });
    return { topic, type, id };
  }

  /** CDR-encodes `message` (checked against its definition first) and appends it; the time is the receive time, ns. */
  async write<K extends string>(channel: RosChannel<K>, message: MessageOf<K>, logTime: bigint): Promise<void> {
    const state = this.state(channel);
    this.append(state, encodeChecked(this.file, state, message), logTime);
    return Promise.resolve();
  }

  /** Appends an already CDR-encoded payload (copied before this returns). sqlite3 storage keeps no publish time. */
  async writeRaw(channel: RosChannel, cdr: Uint8Array, logTime: bigint): Promise<void> {
    this.append(this.state(channel), cdr, logTime);
    return Promise.resolve();
  }

  /**
   * The bag's metadata as a whole (all files so far) for a file of a split folder, stored in the metadata table at
   * close as Jazzy does; a lone file stores its own. Humble's layout keeps no metadata in the file.
   */
  setBagMetadata(m: Rosbag2Metadata): void {
    this.bagMetadata = m;
  }

  /** Commits, closes and renames the file into place; on failure it is removed and the error rethrown. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.layout === 'jazzy') {
        const m = this.bagMetadata ?? this.ownMetadata();
        this.db.run('INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)', [m.version, serializeStoredRosbag2Metadata(m)]);
      }
      this.db.exec('COMMIT;');
      this.insert.finalize();
      this.db.close();
    } catch (e) {
      if (!this.insert.isFinalized) this.insert.finalize();
      if (this.db.isOpen) this.db.close();
      this.output.abort();
      throw new UserError(`${this.file}: cannot finish writing: ${firstLine(e)}`);
    }
    this.output.commit();
    return Promise.resolve();
  }

  /** Stops writing and removes the unfinished file; an existing file at the target stays as it was. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.insert.isFinalized) this.insert.finalize();
    if (this.db.isOpen) this.db.close();
    this.output.abort();
    return Promise.resolve();
  }

  private ownMetadata(): Rosbag2Metadata {
    const range = this.timeRange;
    const path = this.file.split('/').pop() as string;
    return {
      version: this.metadataVersion,
      storageIdentifier: 'sqlite3',
      durationNs: range ? range.end - range.start : 0n,
      startingTimeNs: range?.start ?? 0n,
      messageCount: this.count,
      topics: [...this.topics.values()].map((t) => ({
        name: t.topic,
        type: t.type,
        serializationFormat: 'cdr',
        offeredQos: [...(t.qos ?? [])],
        typeDescriptionHash: t.hash,
        messageCount: t.count,
      })),
      compressionFormat: this.encodePayload ? 'zstd' : '',
      compressionMode: this.encodePayload ? 'message' : 'none',
      relativeFilePaths: [path],
      files: [{ path, startingTimeNs: range?.start ?? 0n, durationNs: range ? range.end - range.start : 0n, messageCount: this.count }],
      customData: {},
      rosDistro: this.rosDistro,
    };
  }

  private state(channel: RosChannel): TopicState {
    this.assertOpen();
    const s = this.topics.get(channel.id);
    if (!s || s.topic !== channel.topic) throw new Error(`channel ${channel.topic} (id ${channel.id}) does not belong to ${this.file}`);
    return s;
  }

  private append(state: TopicState, cdr: Uint8Array, logTime: bigint): void {
    if (logTime < 0n) throw new UserError(`${this.file}: topic ${state.topic}: negative time ${logTime} ns`);
    const data = this.encodePayload ? this.encodePayload(cdr) : cdr;
    try {
      this.insert.run([logTime, state.id, data]);
      if (++this.pending >= ROWS_PER_TRANSACTION) {
        this.db.exec('COMMIT; BEGIN TRANSACTION;');
        this.pending = 0;
      }
    } catch (e) {
      throw new UserError(`${this.file}: cannot write a message of topic ${state.topic}: ${firstLine(e)}`);
    }
    state.count++;
    this.count++;
    this.payloadBytes += data.byteLength;
    if (this.startNs === undefined || logTime < this.startNs) this.startNs = logTime;
    if (this.endNs === undefined || logTime > this.endNs) this.endNs = logTime;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.file}: writer is closed`);
  }
}
