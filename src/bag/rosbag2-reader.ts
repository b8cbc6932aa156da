// Reading a recording the way ROS tools take it: a rosbag2 folder (or its metadata.yaml) in mcap or sqlite3 storage,
// whose files, split and possibly zstd-compressed per file or per message, read as one stream in log-time order; or a
// single .mcap or .db3 file.
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { UserError } from '../errors.js';
import { McapRosReader, type BagMessage, type McapRosReaderOptions, type MessageQuery, type TopicInfo } from './reader.js';
import { METADATA_FILE, parseRosbag2Metadata, type Rosbag2Metadata } from './rosbag2.js';
import { isSqlite, SqliteRosReader } from './sqlite-reader.js';
import { isZstd, zstdDecompress, zstdDecompressLoaded, zstdReady } from './zstd.js';

/** What replay, extract and inspect need of a recording, whether one file or a folder of them. */
export interface RecordingReader {
  /** The path the recording was opened by (file or folder). */
  readonly file: string;
  readonly timeRange: { start: bigint; end: bigint } | undefined;
  readonly decodeFailures: { total: number; byTopic: ReadonlyMap<string, number> };
  /** Messages without a Channel record, by channel id, as the index or scan lists them / as reading met them. */
  readonly unknownChannelsInIndex: ReadonlyMap<number, number>;
  readonly unknownChannelMessages: ReadonlyMap<number, number>;
  topics(): Promise<TopicInfo[]>;
  messages(query?: MessageQuery): AsyncGenerator<BagMessage>;
  close(): Promise<void>;
}

export interface OpenRecordingOptions extends McapRosReaderOptions {
  /** Disagreements between metadata.yaml and the files (each one line naming both numbers); default: ignored. */
  onWarning?: (message: string) => void;
  /** Where file-compressed members are decompressed to while the recording is open; default the OS temp folder. */
  tmpDir?: string;
}

/** The storage plugins whose files are read (rosbag2's storage_identifier). */
export type StorageId = 'mcap' | 'sqlite3';

/** A folder, its metadata.yaml, or the folder holding a given metadata.yaml; undefined for a plain file. */
async function folderOf(path: string): Promise<string | undefined> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    throw new UserError(`${path}: cannot open: ${(e as Error).message.split('\n')[0]}`);
  }
  if (s.isDirectory()) return path;
  if (basename(path) === METADATA_FILE) return dirname(path);
  return undefined;
}

async function head(path: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(16);
  const h = await open(path, 'r');
  try {
    await h.read(bytes, 0, bytes.length, 0);
  } finally {
    await h.close();
  }
  return bytes;
}

/**
 * Opens a recording: a rosbag2 folder or its metadata.yaml (every file in relative_file_paths), a single .mcap or
 * .db3, or a single zstd-compressed one (.mcap.zstd, .db3.zstd). Problems are UserErrors naming the file and key.
 */
export async function openRecordingPath(path: string, options: OpenRecordingOptions = {}): Promise<RecordingReader> {
  const folder = await folderOf(path);
  if (folder !== undefined) return Rosbag2Reader.open(folder, options);
  const bytes = await head(path);
  if (isZstd(bytes)) return Rosbag2Reader.openFiles(path, [path], 'file', options);
  if (isSqlite(bytes)) return SqliteRosReader.open(path, options);
  return McapRosReader.open(path, options);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

interface Member {
  /** The file as listed (for messages). */
  file: string;
  reader: RecordingReader;
}

export class Rosbag2Reader implements RecordingReader {
  private constructor(
    readonly file: string,
    /** undefined when opened from a lone compressed file. */
    readonly metadata: Rosbag2Metadata | undefined,
    private readonly members: Member[],
    private readonly scratch: string | undefined,
    readonly timeRange: { start: bigint; end: bigint } | undefined,
    /** What the cross-check of metadata.yaml against the files found. */
    readonly warnings: readonly string[],
  ) {}

  /** Opens a rosbag2 folder: reads metadata.yaml, opens every file, and checks the metadata against them. */
  static async open(folder: string, options: OpenRecordingOptions = {}): Promise<Rosbag2Reader> {
    const metaFile = join(folder, METADATA_FILE);
    let text: string;
    try {
      text = await readFile(metaFile, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new UserError(
          `${folder}: no ${METADATA_FILE} in this folder, so it is not a rosbag2 recording; 'ros2 bag reindex ${folder}' writes one, or pass one .mcap file`,
        );
      }
      throw new UserError(`${metaFile}: cannot read: ${firstLine(e)}`);
    }
    const meta = parseRosbag2Metadata(text, metaFile);
    if (meta.storageIdentifier !== 'mcap' && meta.storageIdentifier !== 'sqlite3') {
      throw new UserError(
        `${metaFile}: storage_identifier is '${meta.storageIdentifier}'; mcap and sqlite3 recordings are read (convert with 'ros2 bag convert' to storage_id mcap)`,
      );
    }
    if (meta.compressionMode !== 'none' && meta.compressionFormat !== 'zstd') {
      throw new UserError(
        `${metaFile}: compression_format is '${meta.compressionFormat}' with compression_mode ${meta.compressionMode.toUpperCase()}; only zstd is read`,
      );
    }
    if (meta.relativeFilePaths.length === 0) throw new UserError(`${metaFile}: relative_file_paths is empty: the recording has no files`);
    // Before version 4 the listed paths start with the folder's own name.
    const base = meta.version < 4 ? dirname(folder) : folder;
    const paths = meta.relativeFilePaths.map((p) => (isAbsolute(p) ? p : join(base, p)));
    return Rosbag2Reader.openFiles(folder, paths, meta.compressionMode, options, meta, metaFile);
  }

  /**
   * The member files in order; `mode` says how they are compressed, the metadata (when given) in which storage they
   * are. Without metadata each file's storage is told by its first bytes.
   */
  static async openFiles(
    label: string,
    paths: readonly string[],
    mode: Rosbag2Metadata['compressionMode'],
    options: OpenRecordingOptions,
    meta?: Rosbag2Metadata,
    metaFile?: string,
  ): Promise<Rosbag2Reader> {
    const members: Member[] = [];
    let scratch: string | undefined;
    const memberOptions: McapRosReaderOptions = { ...options };
    if (mode === 'message') {
      await zstdReady();
      memberOptions.decodePayload = zstdDecompressLoaded;
    }
    try {
      for (const path of paths) {
        let s;
        try {
          s = await stat(path);
        } catch {
          throw new UserError(`${path}: listed in ${metaFile ?? label} but missing`);
        }
        if (!s.isFile()) throw new UserError(`${path}: listed in ${metaFile ?? label} but not a file`);
        let readFrom = path;
        if (mode === 'file') {
          const packed = await readFile(path);
          if (!isZstd(packed)) throw new UserError(`${path}: compression_mode FILE but the file is not zstd-compressed (no zstd frame magic)`);
          let plain: Uint8Array;
          try {
            plain = await zstdDecompress(packed);
          } catch (e) {
            throw new UserError(`${path}: cannot decompress: ${firstLine(e)}`);
          }
          scratch ??= await mkdtemp(join(options.tmpDir ?? tmpdir(), 's2-policy-bag-'));
          readFrom = join(scratch, `${members.length}_${basename(path).replace(/\.zstd$/, '')}`);
          await writeFile(readFrom, plain);
        }
        const storage = (meta?.storageIdentifier as StorageId | undefined) ?? (isSqlite(await head(readFrom)) ? 'sqlite3' : 'mcap');
        const reader =
          storage === 'sqlite3'
            ? await SqliteRosReader.open(readFrom, {
                ...memberOptions,
                displayName: path,
                // metadata.yaml says how payloads are stored; a lone file's own metadata table does otherwise.
                messageCompression: meta ? (mode === 'message' ? 'zstd' : 'none') : undefined,
              })
            : await McapRosReader.open(readFrom, { ...memberOptions, displayName: path });
        members.push({ file: path, reader });
      }
      let start: bigint | undefined;
      let end: bigint | undefined;
      for (const m of members) {
        const r = m.reader.timeRange;
        if (!r) continue;
        if (start === undefined || r.start < start) start = r.start;
        if (end === undefined || r.end > end) end = r.end;
      }
      const range = start === undefined || end === undefined ? undefined : { start, end };
      const warnings = meta ? await crossCheck(meta, metaFile as string, members, range) : [];
      for (const w of warnings) options.onWarning?.(w);
      return new Rosbag2Reader(label, meta, members, scratch, range, warnings);
    } catch (e) {
      for (const m of members) await m.reader.close();
      if (scratch) await rm(scratch, { recursive: true, force: true });
      throw e;
    }
  }

  /** The files read, in order. */
  get files(): string[] {
    return this.members.map((m) => m.file);
  }

  get decodeFailures(): { total: number; byTopic: ReadonlyMap<string, number> } {
    let total = 0;
    const byTopic = new Map<string, number>();
    for (const m of this.members) {
      const f = m.reader.decodeFailures;
      total += f.total;
      for (const [t, n] of f.byTopic) byTopic.set(t, (byTopic.get(t) ?? 0) + n);
    }
    return { total, byTopic };
  }

  get unknownChannelsInIndex(): ReadonlyMap<number, number> {
    return sumById(this.members.map((m) => m.reader.unknownChannelsInIndex));
  }

  get unknownChannelMessages(): ReadonlyMap<number, number> {
    return sumById(this.members.map((m) => m.reader.unknownChannelMessages));
  }

  /** Topics over all files: counts summed, types and metadata from the first file that has the topic. */
  async topics(): Promise<TopicInfo[]> {
    return mergeTopics(await Promise.all(this.members.map((m) => m.reader.topics())));
  }

  /** Messages of all files in log-time order (ties: the earlier file first), as McapRosReader.messages. */
  async *messages(query: MessageQuery = {}): AsyncGenerator<BagMessage> {
    const sources = this.members.map((m) => m.reader.messages(query));
    const heads: (BagMessage | undefined)[] = await Promise.all(
      sources.map(async (s): Promise<BagMessage | undefined> => {
        const first = await s.next();
        return first.done ? undefined : first.value;
      }),
    );
    try {
      for (;;) {
        let pick = -1;
        for (let i = 0; i < heads.length; i++) {
          const h = heads[i];
          if (h !== undefined && (pick < 0 || h.logTime < (heads[pick] as BagMessage).logTime)) pick = i;
        }
        if (pick < 0) return;
        const out = heads[pick] as BagMessage;
        const next = await sources[pick].next();
        heads[pick] = next.done ? undefined : next.value;
        yield out;
      }
    } finally {
      await Promise.all(sources.map((s) => s.return(undefined)));
    }
  }

  async close(): Promise<void> {
    for (const m of this.members) await m.reader.close();
    if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
  }
}

function mergeTopics(perFile: TopicInfo[][]): TopicInfo[] {
  const byName = new Map<string, TopicInfo>();
  for (const topics of perFile) {
    for (const t of topics) {
      const key = `${t.topic}\u0000${t.type}`;
      const seen = byName.get(key);
      if (seen) seen.messageCount += t.messageCount;
      else byName.set(key, { ...t });
    }
  }
  return [...byName.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.type < b.type ? -1 : 1));
}

/** Compares metadata.yaml with what the files hold: topics and types, message counts, start and duration. */
async function crossCheck(meta: Rosbag2Metadata, metaFile: string, members: Member[], range: { start: bigint; end: bigint } | undefined): Promise<string[]> {
  const warnings: string[] = [];
  const perFile = await Promise.all(members.map((m) => m.reader.topics()));
  const actual = new Map<string, { type: string; count: number }>();
  for (const t of mergeTopics(perFile)) {
    const a = actual.get(t.topic);
    if (a) a.count += t.messageCount;
    else actual.set(t.topic, { type: t.type, count: t.messageCount });
  }
  for (const t of meta.topics) {
    const a = actual.get(t.name);
    if (!a) {
      if (t.messageCount > 0)
        warnings.push(`${metaFile}: topic ${t.name}: message_count ${t.messageCount} in the metadata, the files hold 0 (no such topic in them)`);
      continue;
    }
    if (a.type !== t.type) warnings.push(`${metaFile}: topic ${t.name}: type ${t.type} in the metadata, ${a.type} in the files`);
    if (a.count !== t.messageCount) warnings.push(`${metaFile}: topic ${t.name}: message_count ${t.messageCount} in the metadata, the files hold ${a.count}`);
  }
  const listed = new Set(meta.topics.map((t) => t.name));
  for (const [name, a] of actual)
    if (!listed.has(name)) warnings.push(`${metaFile}: topic ${name} (${a.count} messages in the files) is not in the metadata's topics_with_message_count`);
  const total = [...actual.values()].reduce((n, a) => n + a.count, 0);
  if (total !== meta.messageCount) warnings.push(`${metaFile}: message_count ${meta.messageCount} in the metadata, the files hold ${total}`);
  if (range) {
    const span = range.end - range.start;
    if (span !== meta.durationNs) warnings.push(`${metaFile}: duration ${meta.durationNs} ns in the metadata, the files' messages span ${span} ns`);
    if (range.start !== meta.startingTimeNs)
      warnings.push(`${metaFile}: starting_time ${meta.startingTimeNs} ns in the metadata, the first message is at ${range.start} ns`);
  }
  if (meta.files.length > 0) {
    if (meta.files.length !== members.length) warnings.push(`${metaFile}: files lists ${meta.files.length} entries, relative_file_paths ${members.length}`);
    else {
      meta.files.forEach((f, i) => {
        const held = perFile[i].reduce((n, t) => n + t.messageCount, 0);
        if (held !== f.messageCount)
          warnings.push(`${metaFile}: files[${i}] (${f.path}): message_count ${f.messageCount} in the metadata, the file holds ${held}`);
      });
    }
  }
  return warnings;
}

function sumById(maps: readonly ReadonlyMap<number, number>[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of maps) for (const [id, n] of m) out.set(id, (out.get(id) ?? 0) + n);
  return out;
}
