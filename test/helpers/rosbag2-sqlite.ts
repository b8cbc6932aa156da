// Builds rosbag2 folders in sqlite3 storage the way each rosbag2 release writes them, independently of the project's
// writer: the tables of rosbag2's sqlite3 plugin (SqliteStorage::initialize) per era, written with the same SQLite
// (node-sqlite3-wasm), and metadata.yaml laid out by hand per version. What each era writes, from ros2/rosbag2:
//   metadata 4 (Foxy, Galactic, Humble before 0.15.4): db schema 2 — topics with offered_qos_profiles, no schema table
//   metadata 5 (Humble): db schema 3 — schema and (empty) metadata tables added
//   metadata 8 (Iron):   db schema 4 — type_description_hash, message_definitions, metadata rows; QoS as integers
//   metadata 9 (Jazzy):  db schema 4 — QoS with policy names in metadata.yaml, the topics table and metadata rows
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as wasmZstd from '@foxglove/wasm-zstd';
import { zstdCompress, zstdReady } from '../../src/bag/zstd.js';
import { loadSqlite } from '../../src/bag/sqlite-lib.js';

export type MetadataVersion = 4 | 5 | 8 | 9;

export interface SqliteTopic {
  name: string;
  type: string;
  /** The ros2msg text stored in message_definitions (schema 4); none when undefined. */
  definition?: string;
}

export interface SqliteMessage {
  topic: string;
  logTime: bigint;
  cdr: Uint8Array;
}

export interface SqliteFolderOptions {
  version: MetadataVersion;
  /** Messages per file (split as --max-bag-size would); default all in one. */
  perFile?: number;
  compression?: 'none' | 'file' | 'message';
  /** Rows inserted in this order instead of by time (a reader must still yield them by timestamp). */
  insertOrder?: (messages: SqliteMessage[]) => SqliteMessage[];
}

const TABLES = {
  schema: 'CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);',
  metadata: 'CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,metadata TEXT NOT NULL);',
  topics2:
    'CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL);',
  topics4:
    'CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL,type_description_hash TEXT NOT NULL);',
  definitions:
    'CREATE TABLE message_definitions(id INTEGER PRIMARY KEY,topic_type TEXT NOT NULL,encoding TEXT NOT NULL,encoded_message_definition TEXT NOT NULL,type_description_hash TEXT NOT NULL);',
  messages: 'CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL, data BLOB NOT NULL);',
  index: 'CREATE INDEX timestamp_idx ON messages (timestamp ASC);',
};

/** The statements of each db schema version, in rosbag2's order (as sqlite_master lists them). */
export const DB_SCHEMA: Record<2 | 3 | 4, string[]> = {
  2: [TABLES.topics2, TABLES.messages, TABLES.index],
  3: [TABLES.schema, TABLES.metadata, TABLES.topics2, TABLES.messages, TABLES.index],
  4: [TABLES.schema, TABLES.metadata, TABLES.topics4, TABLES.definitions, TABLES.messages, TABLES.index],
};

export const DB_SCHEMA_OF: Record<MetadataVersion, 2 | 3 | 4> = { 4: 2, 5: 3, 8: 4, 9: 4 };

/** A profile as `ros2 bag record` stores it for a sensor publisher: keep_last 5, best effort, volatile, infinite times. */
const QOS_INT =
  '- history: 1\n  depth: 5\n  reliability: 2\n  durability: 2\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false';
const QOS_NAMES =
  '- history: keep_last\n  depth: 5\n  reliability: best_effort\n  durability: volatile\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: automatic\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false';
export const WRITTEN_QOS = { history: 'keep_last', depth: 5, reliability: 'best_effort', durability: 'volatile' } as const;

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

interface FileInfo {
  path: string;
  start: bigint;
  end: bigint;
  count: number;
}

/** metadata.yaml's body (without rosbag2_bagfile_information) as yaml-cpp lays it out for `version`. */
function metadataBody(version: MetadataVersion, topics: SqliteTopic[], counts: Map<string, number>, files: FileInfo[], paths: string[], mode: string): string {
  const all = files.filter((f) => f.count > 0);
  const start = all.length ? all.reduce((a, f) => (f.start < a ? f.start : a), all[0].start) : 0n;
  const end = all.length ? all.reduce((a, f) => (f.end > a ? f.end : a), all[0].end) : 0n;
  const lines = [
    `version: ${version}`,
    'storage_identifier: sqlite3',
    'duration:',
    `  nanoseconds: ${end - start}`,
    'starting_time:',
    `  nanoseconds_since_epoch: ${start}`,
    `message_count: ${files.reduce((n, f) => n + f.count, 0)}`,
    'topics_with_message_count:',
  ];
  for (const t of topics) {
    lines.push('  - topic_metadata:', `      name: ${t.name}`, `      type: ${t.type}`, '      serialization_format: cdr');
    if (version >= 9) lines.push('      offered_qos_profiles:', indent(QOS_NAMES, '        '));
    else lines.push(`      offered_qos_profiles: ${JSON.stringify(QOS_INT)}`);
    if (version >= 7) lines.push('      type_description_hash: ""');
    lines.push(`    message_count: ${counts.get(t.name) ?? 0}`);
  }
  lines.push(`compression_format: ${mode === 'none' ? '""' : 'zstd'}`, `compression_mode: ${mode === 'none' ? '""' : mode.toUpperCase()}`);
  lines.push('relative_file_paths:', ...paths.map((p) => `  - ${p}`));
  if (version >= 5) {
    lines.push('files:');
    for (const f of files)
      lines.push(
        `  - path: ${f.path}`,
        '    starting_time:',
        `      nanoseconds_since_epoch: ${f.start}`,
        '    duration:',
        `      nanoseconds: ${f.end - f.start}`,
        `    message_count: ${f.count}`,
      );
  }
  if (version >= 6) lines.push('custom_data: ~');
  if (version >= 8) lines.push(`ros_distro: ${version >= 9 ? 'jazzy' : 'iron'}`);
  return lines.join('\n') + '\n';
}

/**
 * Writes the rosbag2 folder `dir` (named after itself) holding `messages`, as the rosbag2 of metadata `version` records
 * it; returns the files as listed in relative_file_paths.
 */
export async function writeSqliteFolder(dir: string, topics: SqliteTopic[], messages: SqliteMessage[], o: SqliteFolderOptions): Promise<string[]> {
  const { Database } = await loadSqlite();
  const name = dir.split('/').pop() as string;
  const mode = o.compression ?? 'none';
  if (mode !== 'none') await zstdReady();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const sorted = [...messages].sort((a, b) => (a.logTime < b.logTime ? -1 : a.logTime > b.logTime ? 1 : 0));
  const per = o.perFile ?? Math.max(1, sorted.length);
  const schema = DB_SCHEMA_OF[o.version];
  const files: FileInfo[] = [];
  const paths: string[] = [];
  const counts = new Map<string, number>();
  const parts = Math.max(1, Math.ceil(sorted.length / per));
  for (let i = 0; i < parts; i++) {
    const part = sorted.slice(i * per, (i + 1) * per);
    const file = `${name}_${i}.db3`;
    const db = new Database(join(dir, file));
    db.exec('PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;');
    for (const s of DB_SCHEMA[schema]) db.exec(s);
    if (schema >= 3)
      db.run('INSERT INTO schema (schema_version, ros_distro) VALUES (?, ?)', [schema, o.version >= 9 ? 'jazzy' : o.version >= 8 ? 'iron' : 'humble']);
    const ids = new Map<string, number>();
    for (const t of topics) {
      // Every file declares every topic, as rosbag2 does after a split.
      const qos = o.version >= 9 ? QOS_NAMES : QOS_INT;
      const r =
        schema >= 4
          ? db.run('INSERT INTO topics(name, type, serialization_format, offered_qos_profiles, type_description_hash) VALUES (?, ?, ?, ?, ?)', [
              t.name,
              t.type,
              'cdr',
              qos,
              '',
            ])
          : db.run('INSERT INTO topics (name, type, serialization_format, offered_qos_profiles) VALUES (?, ?, ?, ?)', [t.name, t.type, 'cdr', qos]);
      ids.set(t.name, Number(r.lastInsertRowid));
      if (schema >= 4 && t.definition !== undefined)
        db.run('INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, type_description_hash) VALUES (?, ?, ?, ?)', [
          t.type,
          'ros2msg',
          t.definition,
          '',
        ]);
    }
    db.exec('BEGIN TRANSACTION;');
    const insert = db.prepare('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?);');
    for (const m of o.insertOrder ? o.insertOrder(part) : part) {
      const data = mode === 'message' ? new Uint8Array(wasmZstd.compress(m.cdr, 1)) : m.cdr;
      insert.run([m.logTime, ids.get(m.topic) as number, data]);
      counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    }
    insert.finalize();
    db.exec('COMMIT;');
    files.push({ path: file, start: part[0]?.logTime ?? 0n, end: part.at(-1)?.logTime ?? 0n, count: part.length });
    paths.push(mode === 'file' ? `${file}.zstd` : file);
    if (schema >= 4) {
      // Iron and Jazzy keep the bag's metadata, as it stood at the file's close, in the file itself.
      const body = metadataBody(o.version, topics, counts, files, paths.slice(0, -1).concat(file), mode);
      db.run('INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)', [o.version, body]);
    }
    db.close();
    if (mode === 'file') {
      writeFileSync(join(dir, `${file}.zstd`), await zstdCompress(readFileSync(join(dir, file))));
      rmSync(join(dir, file));
    }
  }
  // Before version 5 there is no files list; before 4 paths started with the folder's name (not written here).
  writeFileSync(
    join(dir, 'metadata.yaml'),
    `rosbag2_bagfile_information:\n${indent(metadataBody(o.version, topics, counts, files, paths, mode).trimEnd(), '  ')}\n`,
  );
  return paths;
}
