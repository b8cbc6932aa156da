// Rosbag2Writer: writes a rosbag2 folder as `ros2 bag record -s mcap` does — `<name>_0.mcap`, `<name>_1.mcap`, … (split
// by size or duration on request, optionally zstd-compressed per file or per message) and a metadata.yaml with the
// topics, QoS profiles, counts and times, so that `ros2 bag info` and `ros2 bag play` take the folder unchanged.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { AtomicDir } from '../io/atomic.js';
import { canonicalType } from '../msgs/definitions.js';
import type { MessageOf } from './messages.js';
import { defaultOfferedQos, type QosProfile } from './qos.js';
import {
  JAZZY_METADATA_VERSION,
  METADATA_FILE,
  serializeRosbag2Metadata,
  type Rosbag2CompressionMode,
  type Rosbag2File,
  type Rosbag2Metadata,
} from './rosbag2.js';
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
  /** metadata.yaml version: 9 (Jazzy and later, the default) or 8 (also read by Humble and Iron). */
  metadataVersion?: 8 | 9;
}

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
    private current: McapRosWriter,
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
      const first = await McapRosWriter.create(join(output.tmp, `${name}_0.mcap`), Rosbag2Writer.fileOptions(options));
      return new Rosbag2Writer(dir, output, name, options, first);
    } catch (e) {
      output.abort();
      throw e;
    }
  }

  private static fileOptions(o: Rosbag2WriterOptions): McapRosWriterOptions {
    const level = o.compressionLevel ?? 1;
    return {
      chunkSize: o.chunkSize,
      compressChunk: o.compressChunk,
      rosDistro: o.rosDistro,
      encodePayload: o.compression === 'message' ? (cdr) => new Uint8Array(wasmZstd.compress(cdr, level)) : undefined,
    };
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

  private metadata(): Rosbag2Metadata {
    const o = this.options;
    let start: bigint | undefined;
    let end: bigint | undefined;
    for (const f of this.done) {
      if (f.messageCount === 0) continue;
      if (start === undefined || f.startingTimeNs < start) start = f.startingTimeNs;
      const e = f.startingTimeNs + f.durationNs;
      if (end === undefined || e > end) end = e;
    }
    const compression = o.compression ?? 'none';
    return {
      version: o.metadataVersion ?? JAZZY_METADATA_VERSION,
      storageIdentifier: 'mcap',
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
      relativeFilePaths: this.relativePaths,
      files: this.done,
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
    this.current = await McapRosWriter.create(join(this.output.tmp, `${this.name}_${this.done.length}.mcap`), Rosbag2Writer.fileOptions(this.options));
    // Every file declares every topic, as rosbag2 does after a split.
    for (const t of this.order) t.current = await this.current.addChannel(t.topic, t.type, t.options);
  }

  private async closeCurrent(): Promise<void> {
    const c = this.current;
    await c.close();
    const range = c.timeRange;
    const path = basename(c.file);
    this.done.push({ path, startingTimeNs: range?.start ?? 0n, durationNs: range ? range.end - range.start : 0n, messageCount: c.messageCount });
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

/** How an output recording is laid out; the size and duration limits apply to rosbag2 folders only. */
export interface OutputOptions {
  /** The name a folder's files are named after; default the folder's own name. */
  name?: string;
  maxFileSize?: number;
  maxDurationNs?: bigint;
  compression?: Rosbag2CompressionMode;
}

/** Splitting and compression are for folders: refused for a .mcap output, naming the flags. */
export function checkOutputLayout(path: string, o: OutputOptions): void {
  if (!isMcapFileName(path)) return;
  const folderOnly = [
    o.maxFileSize !== undefined && '--max-file-size',
    o.maxDurationNs !== undefined && '--max-duration',
    o.compression && o.compression !== 'none' && '--compression-mode',
  ].filter(Boolean);
  if (folderOnly.length > 0)
    throw new UserError(`${path}: ${folderOnly.join(', ')} split or compress a rosbag2 folder; give --out a folder name (without .mcap)`);
}

/**
 * A writer for `path`: one MCAP file when the name ends in .mcap, else a rosbag2 folder. Both are written under a
 * temporary name and put in place (replacing an existing one) on close.
 */
export async function createRecordingWriter(path: string, o: OutputOptions = {}): Promise<RecordingWriter> {
  checkOutputLayout(path, o);
  if (isMcapFileName(path)) return McapRosWriter.create(path);
  return Rosbag2Writer.create(path, { name: o.name, maxFileSize: o.maxFileSize, maxDurationNs: o.maxDurationNs, compression: o.compression });
}
