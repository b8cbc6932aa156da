// Rosbag2Writer: writes a rosbag2 folder as `ros2 bag record` does — `<name>_0.mcap`, `<name>_1.mcap`, … or `.db3`
// files in sqlite3 storage (split by size or duration on request, optionally zstd-compressed per file or per message)
// and a metadata.yaml with the topics, QoS profiles, counts and times, so that `ros2 bag info` and `ros2 bag play` of
// the target distribution (Jazzy, or Humble with its metadata version 5) take the folder unchanged.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import type { StorageId } from './rosbag2-reader.js';
import { AtomicDir } from '../io/atomic.js';
import { canonicalType } from '../msgs/definitions.js';
import type { MessageOf } from './messages.js';
import { defaultOfferedQos, humbleQosProblem, type QosProfile } from './qos.js';
import {
  HUMBLE_METADATA_VERSION,
  JAZZY_METADATA_VERSION,
  METADATA_FILE,
  serializeRosbag2Metadata,
  type Rosbag2CompressionMode,
  type Rosbag2File,
  type Rosbag2Metadata,
} from './rosbag2.js';
import { SqliteRosWriter } from './sqlite-writer.js';
import { McapRosWriter, type ChannelOptions, type McapRosWriterOptions, type RosChannel } from './writer.js';
import { zstdCompress, zstdReady } from './zstd.js';
import * as wasmZstd from '@foxglove/wasm-zstd';

/** What replay and the other commands write through: one .mcap file or a rosbag2 folder. */
export interface RecordingWriter {
  readonly file: string;
  readonly messageCount: number;
  addChannel<K extends string>(topic: string, type: K, options?: ChannelOptions): Promise<RosChannel<K>>;
  write<K extends string>(channel: RosChannel<K>, message: MessageOf<K>, logTime: bigint, publishTime?: bigint): Promise<void>;
  writeRaw(channel: RosChannel, cdr: Uint8Array, logTime: bigint, publishTime?: bigint): Promise<void>;
  /** Finishes the recording and puts it in place. */
  close(): Promise<void>;
  /** Stops and removes the unfinished recording; an existing one at the target stays as it was. */
  abort(): Promise<void>;
}

export interface Rosbag2WriterOptions extends Omit<McapRosWriterOptions, 'encodePayload'> {
  /** The recording's name, which its files are named after; default the folder's name. */
  name?: string;
  /** Start a new file once the current one holds about this many bytes (ros2 bag record --max-bag-size). */
  maxFileSize?: number;
  /** Start a new file once a message is this much later than the current file's first (--max-bag-duration), ns. */
  maxDurationNs?: bigint;
  /** zstd per file (each finished file replaced by `<file>.zstd`) or per message payload; default none. */
  compression?: Rosbag2CompressionMode;
  /** zstd level for compression; default 1. */
  compressionLevel?: number;
  /** The storage plugin the files are written for: 'mcap' (Jazzy's default, the default here) or 'sqlite3'. */
  storage?: StorageId;
  /**
   * The distribution whose rosbag2 must read the folder: 'jazzy' (the default) writes metadata version 9 and Jazzy's
   * sqlite3 layout, 'humble' metadata version 5 and Humble's sqlite3 layout (see src/bag/README.md for the rules).
   */
  distro?: RosDistro;
  /** metadata.yaml version, overriding the distribution's: 9 (Jazzy), 8 (Iron) or 5 (Humble). */
  metadataVersion?: 5 | 8 | 9;
}

/** The distributions an output is written for. */
export const ROS_DISTROS = ['humble', 'jazzy'] as const;
export type RosDistro = (typeof ROS_DISTROS)[number];
export const STORAGE_IDS = ['mcap', 'sqlite3'] as const;

/** --ros-distro's value; undefined stays undefined. */
export function parseRosDistro(text: string | undefined): RosDistro | undefined {
  if (text === undefined) return undefined;
  if (!(ROS_DISTROS as readonly string[]).includes(text)) throw new UserError(`--ros-distro must be ${ROS_DISTROS.join(' or ')}, got '${text}'`);
  return text as RosDistro;
}

/** --storage's value; undefined stays undefined. */
export function parseStorageId(text: string | undefined): StorageId | undefined {
  if (text === undefined) return undefined;
  if (!(STORAGE_IDS as readonly string[]).includes(text)) throw new UserError(`--storage must be ${STORAGE_IDS.join(' or ')}, got '${text}'`);
  return text as StorageId;
}

/** The metadata version a folder is written with: the one asked for, else the distribution's. */
function metadataVersionOf(o: Rosbag2WriterOptions): number {
  return o.metadataVersion ?? (o.distro === 'humble' ? HUMBLE_METADATA_VERSION : JAZZY_METADATA_VERSION);
}

/** One file of a folder being written, whichever storage. */
type StorageWriter = McapRosWriter | SqliteRosWriter;

interface TopicState {
  topic: string;
  type: string;
  options: ChannelOptions;
  count: number;
  /** The channel in the file being written. */
  current: RosChannel;
}

export class Rosbag2Writer implements RecordingWriter {
  private readonly topics = new Map<string, TopicState>();
  private readonly order: TopicState[] = [];
  private readonly done: Rosbag2File[] = [];
  private readonly relativePaths: string[] = [];
  private count = 0;
  private closed = false;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The recording folder (its final name). */
    readonly dir: string,
    private readonly output: AtomicDir,
    private readonly name: string,
    private readonly options: Rosbag2WriterOptions,
    private current: StorageWriter,
  ) {}

  /**
   * Starts a recording folder `dir`. It is written under a temporary name beside `dir` and takes its place (replacing
   * an existing folder whole) on close(); abort() or a failed close removes it. Files are named after `dir`.
   */
  static async create(dir: string, options: Rosbag2WriterOptions = {}): Promise<Rosbag2Writer> {
    const name = options.name ?? basename(dir);
    if (name === '' || name.includes('/')) throw new UserError(`${dir}: cannot name a recording '${name}'`);
    if (options.maxFileSize !== undefined && !(options.maxFileSize > 0)) throw new UserError(`max file size must be positive, got ${options.maxFileSize}`);
    if (options.maxDurationNs !== undefined && options.maxDurationNs <= 0n)
      throw new UserError(`max file duration must be positive, got ${options.maxDurationNs} ns`);
    if (options.compression && options.compression !== 'none') await zstdReady();
    const output = AtomicDir.begin(dir);
    try {
      const first = await Rosbag2Writer.createFile(join(output.tmp, name), 0, options);
      return new Rosbag2Writer(dir, output, name, options, first);
    } catch (e) {
      output.abort();
      throw e;
    }
  }

  /** The `index`th file, named `<stem>_<index>.mcap` or `.db3` as rosbag2 names them. */
  private static async createFile(stem: string, index: number, o: Rosbag2WriterOptions): Promise<StorageWriter> {
    const level = o.compressionLevel ?? 1;
    const encodePayload = o.compression === 'message' ? (cdr: Uint8Array) => new Uint8Array(wasmZstd.compress(cdr, level)) : undefined;
    const metadataVersion = metadataVersionOf(o);
    if (o.storage === 'sqlite3')
      return SqliteRosWriter.create(`${stem}_${index}.db3`, { layout: o.distro ?? 'jazzy', rosDistro: o.rosDistro, encodePayload, metadataVersion });
    const mcap: McapRosWriterOptions = { chunkSize: o.chunkSize, compressChunk: o.compressChunk, rosDistro: o.rosDistro, encodePayload };
    return McapRosWriter.create(`${stem}_${index}.mcap`, mcap);
  }

  get file(): string {
    return this.dir;
  }

  get messageCount(): number {
    return this.count;
  }

  /** The files finished so far plus the one being written, as listed in metadata.yaml. */
  get files(): readonly string[] {
    return [...this.relativePaths, basename(this.current.file)];
  }

  async addChannel<K extends string>(topic: string, type: K, options: ChannelOptions = {}): Promise<RosChannel<K>> {
    if (this.topics.has(topic)) throw new UserError(`${this.dir}: topic ${topic} was already added`);
    if (this.options.distro === 'humble') {
      // Humble's rmw has no value for Iron's 'best_available'; its integer would mean nothing there.
      for (const p of options.qos ?? []) {
        const problem = humbleQosProblem(p);
        if (problem) throw new UserError(`${this.dir}: topic ${topic}: offered QoS ${problem}, so it cannot be written for Humble`);
      }
    }
    const current = await this.serial(() => this.current.addChannel(topic, type, options));
    const state: TopicState = { topic, type: canonicalType(type), options, count: 0, current };
    this.topics.set(topic, state);
    this.order.push(state);
    return { topic, type, id: this.order.length };
  }

  async write<K extends string>(channel: RosChannel<K>, message: MessageOf<K>, logTime: bigint, publishTime: bigint = logTime): Promise<void> {
    const state = this.state(channel);
    await this.serial(async () => {
      await this.splitIfDue(logTime);
      await this.current.write(state.current as RosChannel<K>, message, logTime, publishTime);
      state.count++;
      this.count++;
    });
  }

  async writeRaw(channel: RosChannel, cdr: Uint8Array, logTime: bigint, publishTime: bigint = logTime): Promise<void> {
    const state = this.state(channel);
    await this.serial(async () => {
      await this.splitIfDue(logTime);
      await this.current.writeRaw(state.current, cdr, logTime, publishTime);
      state.count++;
      this.count++;
    });
  }

  async close(): Promise<void> {
    await this.finish();
  }

  /** The metadata version written: the distribution's unless set. */
  get metadataVersion(): number {
    return metadataVersionOf(this.options);
  }

  /** Finishes the last file, writes metadata.yaml and puts the folder in place; returns the metadata written. */
  async finish(): Promise<Rosbag2Metadata> {
    if (this.closed) throw new Error(`${this.dir}: writer is closed`);
    this.closed = true;
    try {
      await this.tail;
      await this.closeCurrent();
      const meta = this.metadata();
      await writeFile(join(this.output.tmp, METADATA_FILE), serializeRosbag2Metadata(meta));
      this.output.commit();
      return meta;
    } catch (e) {
      await this.current.abort();
      this.output.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.current.abort();
    this.output.abort();
  }

  /** The folder's metadata: the files finished so far, and the one being written when `current` is given. */
  private metadata(current?: Rosbag2File): Rosbag2Metadata {
    const o = this.options;
    const files = current ? [...this.done, current] : this.done;
    let start: bigint | undefined;
    let end: bigint | undefined;
    for (const f of files) {
      if (f.messageCount === 0) continue;
      if (start === undefined || f.startingTimeNs < start) start = f.startingTimeNs;
      const e = f.startingTimeNs + f.durationNs;
      if (end === undefined || e > end) end = e;
    }
    const compression = o.compression ?? 'none';
    return {
      version: this.metadataVersion,
      storageIdentifier: o.storage ?? 'mcap',
      durationNs: start === undefined || end === undefined ? 0n : end - start,
      startingTimeNs: start ?? 0n,
      messageCount: this.count,
      topics: this.order.map((t) => ({
        name: t.topic,
        type: t.type,
        serializationFormat: 'cdr',
        offeredQos: [...(t.options.qos ?? [defaultOfferedQos()])] as QosProfile[],
        typeDescriptionHash: t.options.typeHash ?? '',
        messageCount: t.count,
      })),
      compressionFormat: compression === 'none' ? '' : 'zstd',
      compressionMode: compression,
      relativeFilePaths: current ? [...this.relativePaths, current.path] : this.relativePaths,
      files,
      customData: {},
      rosDistro: o.rosDistro ?? process.env.ROS_DISTRO ?? '',
    };
  }

  private state(channel: RosChannel): TopicState {
    if (this.closed) throw new Error(`${this.dir}: writer is closed`);
    const s = this.topics.get(channel.topic);
    if (!s || this.order[channel.id - 1] !== s) throw new Error(`channel ${channel.topic} (id ${channel.id}) does not belong to ${this.dir}`);
    return s;
  }

  private async splitIfDue(logTime: bigint): Promise<void> {
    const c = this.current;
    if (c.messageCount === 0) return;
    const range = c.timeRange;
    const bySize = this.options.maxFileSize !== undefined && c.sizeEstimate >= this.options.maxFileSize;
    const byTime = this.options.maxDurationNs !== undefined && range !== undefined && logTime - range.start >= this.options.maxDurationNs;
    if (!bySize && !byTime) return;
    await this.closeCurrent();
    this.current = await Rosbag2Writer.createFile(join(this.output.tmp, this.name), this.done.length, this.options);
    // Every file declares every topic, as rosbag2 does after a split.
    for (const t of this.order) t.current = await this.current.addChannel(t.topic, t.type, t.options);
  }

  private async closeCurrent(): Promise<void> {
    const c = this.current;
    const range = c.timeRange;
    const path = basename(c.file);
    const entry: Rosbag2File = { path, startingTimeNs: range?.start ?? 0n, durationNs: range ? range.end - range.start : 0n, messageCount: c.messageCount };
    // Jazzy's sqlite3 files keep the bag's metadata as it stood when each was closed.
    if (c instanceof SqliteRosWriter) c.setBagMetadata(this.metadata(entry));
    await c.close();
    this.done.push(entry);
    if (this.options.compression === 'file') {
      // rosbag2 compresses a file once it is closed, lists the compressed name and removes the original; files[]
      // keeps the name the file was written under.
      const packed = await zstdCompress(await readFile(c.file), this.options.compressionLevel ?? 1);
      await writeFile(`${c.file}.zstd`, packed);
      await rm(c.file);
      this.relativePaths.push(`${path}.zstd`);
    } else {
      this.relativePaths.push(path);
    }
  }

  /** Writes run one after another, so that a split cannot interleave with a message. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.tail.then(op);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** True when an output path names a single MCAP file rather than a rosbag2 folder. */
export function isMcapFileName(path: string): boolean {
  return /\.mcap$/i.test(path);
}

/** True when an output path names a single sqlite3 (.db3) file rather than a rosbag2 folder. */
export function isDb3FileName(path: string): boolean {
  return /\.db3$/i.test(path);
}

/** How an output recording is laid out; the size and duration limits apply to rosbag2 folders only. */
export interface OutputOptions {
  /** The name a folder's files are named after; default the folder's own name. */
  name?: string;
  maxFileSize?: number;
  maxDurationNs?: bigint;
  compression?: Rosbag2CompressionMode;
  /** The distribution whose rosbag2 reads the output (--ros-distro); default jazzy. */
  distro?: RosDistro;
  /** The storage of a folder's files (--storage); default mcap for Jazzy, sqlite3 for Humble (its only default plugin). */
  storage?: StorageId;
}

/** The storage a folder output is written in: as given, else the target distribution's default plugin. */
export function outputStorage(o: OutputOptions): StorageId {
  return o.storage ?? (o.distro === 'humble' ? 'sqlite3' : 'mcap');
}

/**
 * Splitting and compression are for folders: refused for a single-file output, naming the flags; and a file name's
 * extension must agree with --storage.
 */
export function checkOutputLayout(path: string, o: OutputOptions): void {
  const single = isMcapFileName(path) ? 'mcap' : isDb3FileName(path) ? 'sqlite3' : undefined;
  if (single === undefined) return;
  if (o.storage !== undefined && o.storage !== single)
    throw new UserError(
      `${path}: --storage ${o.storage} does not write a .${single === 'mcap' ? 'mcap' : 'db3'} file; give --out a folder name or a .${o.storage === 'mcap' ? 'mcap' : 'db3'} name`,
    );
  const folderOnly = [
    o.maxFileSize !== undefined && '--max-file-size',
    o.maxDurationNs !== undefined && '--max-duration',
    o.compression && o.compression !== 'none' && '--compression-mode',
  ].filter(Boolean);
  if (folderOnly.length > 0)
    throw new UserError(
      `${path}: ${folderOnly.join(', ')} split or compress a rosbag2 folder; give --out a folder name (without .${single === 'mcap' ? 'mcap' : 'db3'})`,
    );
}

/**
 * A writer for `path`: one MCAP file when the name ends in .mcap, one sqlite3 file for .db3, else a rosbag2 folder.
 * All are written under a temporary name and put in place (replacing an existing one) on close.
 */
export async function createRecordingWriter(path: string, o: OutputOptions = {}): Promise<RecordingWriter> {
  checkOutputLayout(path, o);
  // Naming the distribution names what the recording says it was made on, as ROS_DISTRO would.
  const rosDistro = o.distro;
  if (isMcapFileName(path)) return McapRosWriter.create(path, { rosDistro });
  if (isDb3FileName(path)) return SqliteRosWriter.create(path, { layout: o.distro ?? 'jazzy', rosDistro });
  return Rosbag2Writer.create(path, {
    name: o.name,
    maxFileSize: o.maxFileSize,
    maxDurationNs: o.maxDurationNs,
    compression: o.compression,
    distro: o.distro,
    storage: outputStorage(o),
    rosDistro,
  });
}
