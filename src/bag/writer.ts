// McapRosWriter: writes a ROS 2 MCAP recording as `ros2 bag record -s mcap` does — profile 'ros2', one 'ros2msg' schema
// per type with the rosbag2 concatenated definition, 'cdr' channels with offered_qos_profiles, chunked and indexed.
import { open, type FileHandle } from 'node:fs/promises';
import { LIBRARY_IDENTIFIER, McapWriter, type McapWriterOptions } from '@mcap/core';
import { MessageWriter } from '@foxglove/rosmsg2-serialization';
import './cdr-utf8.js';
import type { MessageDefinitionField } from '@foxglove/message-definition';
import { UserError } from '../errors.js';
import { AtomicFile } from '../io/atomic.js';
import { canonicalType, parseRos2Msg, REGISTERED_TYPES, rosbag2DefinitionText } from '../msgs/definitions.js';
import { FileWritable } from './file-io.js';
import type { MessageOf } from './messages.js';
import { defaultOfferedQos, serializeOfferedQos, type QosProfile } from './qos.js';
import { checkMessage, definitionMap, MessageShapeError } from './validate.js';

export interface McapRosWriterOptions {
  /** Message bytes per chunk before the chunk is written; default 768 KiB, libmcap's and so ros2 bag's default. */
  chunkSize?: number;
  /** Chunk compressor (e.g. zstd from @mcap/support). None by default, as ros2 bag records MCAP. */
  compressChunk?: McapWriterOptions['compressChunk'];
  /** ROS_DISTRO in the 'rosbag2' metadata record; default $ROS_DISTRO, else the key is left out. */
  rosDistro?: string;
  /** Turns each CDR payload into the stored bytes, e.g. rosbag2's per-message zstd compression. */
  encodePayload?: (cdr: Uint8Array) => Uint8Array;
}

export interface ChannelOptions {
  /** offered_qos_profiles; default one reliable, volatile profile, as ros2 bag records a plain publisher. */
  qos?: readonly QosProfile[];
  /** topic_type_hash metadata (RIHS01_…), written only when given (Iron and later record it). */
  typeHash?: string;
  /** The rosbag2-style ros2msg text for a type that is not registered in src/bag/definitions.ts. */
  definition?: string;
}

/** A channel of an open writer: what write() takes. */
export interface RosChannel<K extends string = string> {
  readonly topic: string;
  readonly type: K;
  readonly id: number;
}

interface ChannelState {
  topic: string;
  type: string;
  encoder: MessageWriter;
  fields: Map<string, MessageDefinitionField[]>;
  sequence: number;
}

/** How a topic's messages are checked and encoded, and the ros2msg text recordings store for its type. */
export interface ChannelCodec {
  /** The canonical type name, 'pkg/msg/Type'. */
  name: string;
  /** The rosbag2-style concatenated ros2msg definition. */
  text: string;
  encoder: MessageWriter;
  fields: Map<string, MessageDefinitionField[]>;
}

/** The codec of a registered type, or of an unregistered one given its ros2msg text; errors name `file` and topic. */
export function channelCodec(file: string, topic: string, type: string, definition?: string): ChannelCodec {
  const name = canonicalType(type);
  let text = definition;
  if (text === undefined) {
    if (!REGISTERED_TYPES.includes(name))
      throw new UserError(`${file}: topic ${topic}: type '${type}' is not registered; pass its ros2msg text as 'definition'`);
    text = rosbag2DefinitionText(name);
  }
  const defs = parseRos2Msg(text, `${file}: topic ${topic} (${name})`);
  return { name, text, encoder: new MessageWriter(defs), fields: definitionMap(defs) };
}

/** Checks `message` against the topic's definition and CDR-encodes it; a field that does not fit is a UserError. */
export function encodeChecked(
  file: string,
  c: { topic: string; type: string; encoder: MessageWriter; fields: ChannelCodec['fields'] },
  message: unknown,
): Uint8Array {
  let checked: unknown;
  try {
    checked = checkMessage(c.fields, message);
  } catch (e) {
    if (e instanceof MessageShapeError) throw new UserError(`${file}: topic ${c.topic} (${c.type}): ${e.message}`);
    throw e;
  }
  return c.encoder.writeMessage(checked);
}

export class McapRosWriter {
  private readonly channels = new Map<number, ChannelState>();
  private readonly topics = new Set<string>();
  private readonly schemaIds = new Map<string, number>();
  private tail: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;
  private count = 0;
  private payloadBytes = 0;
  private startNs: bigint | undefined;
  private endNs: bigint | undefined;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly writable: FileWritable,
    private readonly mcap: McapWriter,
    private readonly rosDistro: string | undefined,
    private readonly output: AtomicFile,
    private readonly encodePayload: ((cdr: Uint8Array) => Uint8Array) | undefined,
  ) {}

  /**
   * Starts writing `file` and writes the MCAP header. The recording is written under a temporary name beside `file`
   * and takes its place on close(); abort() (or a failed close) removes it, leaving an existing `file` untouched.
   */
  static async create(file: string, options: McapRosWriterOptions = {}): Promise<McapRosWriter> {
    const output = AtomicFile.begin(file);
    let handle: FileHandle;
    try {
      handle = await open(output.tmp, 'wx');
    } catch (e) {
      output.abort();
      throw new UserError(`${file}: cannot create: ${(e as Error).message.split('\n')[0]}`);
    }
    const writable = new FileWritable(handle);
    const mcap = new McapWriter({
      writable,
      chunkSize: options.chunkSize ?? 768 * 1024,
      compressChunk: options.compressChunk,
      // libmcap numbers channels from 1; 0 reads as "no channel" in some tools.
      startChannelId: 1,
    });
    const writer = new McapRosWriter(file, handle, writable, mcap, options.rosDistro ?? process.env.ROS_DISTRO, output, options.encodePayload);
    try {
      await writer.serial(() => mcap.start({ profile: 'ros2', library: `s2_policy; ${LIBRARY_IDENTIFIER}` }));
    } catch (e) {
      await writer.abort();
      throw e;
    }
    return writer;
  }

  /** Messages written so far. */
  get messageCount(): number {
    return this.count;
  }

  /**
   * About how large the file is so far: the bytes on disk, or, while chunks are still buffered, those plus the
   * message records waiting in them (what a size limit is checked against).
   */
  get sizeEstimate(): number {
    // A message record is its payload plus 31 bytes (opcode, length, channel, sequence, two times).
    return Math.max(Number(this.writable.position()), this.payloadBytes + 31 * this.count);
  }

  /** Log-time range of the messages written so far (ns), undefined before the first. */
  get timeRange(): { start: bigint; end: bigint } | undefined {
    return this.startNs === undefined || this.endNs === undefined ? undefined : { start: this.startNs, end: this.endNs };
  }

  /** Adds a topic of a ROS 2 type ('sensor_msgs/msg/Image'; 'sensor_msgs/Image' is accepted too). */
  async addChannel<K extends string>(topic: string, type: K, options: ChannelOptions = {}): Promise<RosChannel<K>> {
    this.assertOpen();
    if (this.topics.has(topic)) throw new UserError(`${this.file}: topic ${topic} was already added`);
    const codec = channelCodec(this.file, topic, type, options.definition);
    const { name } = codec;
    this.topics.add(topic);
    const metadata = new Map([['offered_qos_profiles', serializeOfferedQos(options.qos ?? [defaultOfferedQos()])]]);
    if (options.typeHash !== undefined) metadata.set('topic_type_hash', options.typeHash);
    const id = await this.serial(async () => {
      let schemaId = this.schemaIds.get(name);
      if (schemaId === undefined) {
        schemaId = await this.mcap.registerSchema({ name, encoding: 'ros2msg', data: new TextEncoder().encode(codec.text) });
        this.schemaIds.set(name, schemaId);
      }
      return this.mcap.registerChannel({ topic, messageEncoding: 'cdr', schemaId, metadata });
    });
    this.channels.set(id, { topic, type: name, encoder: codec.encoder, fields: codec.fields, sequence: 0 });
    return { topic, type, id };
  }

  /**
   * CDR-encodes `message` and appends it; times are nanoseconds (log time = receive time in rosbag2). The message is
   * checked against the definition first, and a field that does not fit is a UserError naming it.
   */
  async write<K extends string>(channel: RosChannel<K>, message: MessageOf<K>, logTime: bigint, publishTime: bigint = logTime): Promise<void> {
    const state = this.channelState(channel);
    await this.append(state, channel.id, encodeChecked(this.file, state, message), logTime, publishTime);
  }

  /**
   * Appends an already CDR-encoded payload, as received from the middleware or read from another recording. The bytes
   * are copied when this call's turn comes: await it before reusing the buffer.
   */
  async writeRaw(channel: RosChannel, cdr: Uint8Array, logTime: bigint, publishTime: bigint = logTime): Promise<void> {
    await this.append(this.channelState(channel), channel.id, cdr, logTime, publishTime);
  }

  /**
   * Writes the metadata record, the summary (schemas, channels, statistics, chunk index) and footer, closes the file
   * and renames it into place. When any write failed, the file is removed instead and the failure rethrown.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let ok = false;
    try {
      await this.serial(async () => {
        // A 'rosbag2' record without serialized_metadata makes Jazzy+ read offered_qos_profiles as the integer form
        // (metadata version 8) that Humble and Iron also read; without any record Jazzy would assume version 9.
        const metadata = new Map<string, string>();
        if (this.rosDistro !== undefined && this.rosDistro !== '') metadata.set('ROS_DISTRO', this.rosDistro);
        await this.mcap.addMetadata({ name: 'rosbag2', metadata });
        await this.mcap.end();
      });
      ok = true;
    } finally {
      await this.handle.close();
      if (ok) this.output.commit();
      else this.output.abort();
    }
  }

  /** Stops writing and removes the unfinished file; an existing file at the target is left as it was. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.handle.close();
    this.output.abort();
  }

  private channelState(channel: RosChannel): ChannelState {
    this.assertOpen();
    const state = this.channels.get(channel.id);
    if (!state || state.topic !== channel.topic) throw new Error(`channel ${channel.topic} (id ${channel.id}) does not belong to ${this.file}`);
    return state;
  }

  private async append(state: ChannelState, channelId: number, data: Uint8Array, logTime: bigint, publishTime: bigint): Promise<void> {
    if (logTime < 0n || publishTime < 0n) throw new UserError(`${this.file}: topic ${state.topic}: negative time ${logTime < 0n ? logTime : publishTime} ns`);
    const sequence = state.sequence++;
    this.count++;
    if (this.startNs === undefined || logTime < this.startNs) this.startNs = logTime;
    if (this.endNs === undefined || logTime > this.endNs) this.endNs = logTime;
    const stored = this.encodePayload ? this.encodePayload(data) : data;
    this.payloadBytes += stored.byteLength;
    await this.serial(() => this.mcap.addMessage({ channelId, sequence, logTime, publishTime, data: stored }));
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.file}: writer is closed`);
  }

  /**
   * McapWriter calls must not overlap, so they run one after another even when callers fire writes without awaiting
   * each. After one fails the file is inconsistent, and every later call fails with the same error.
   */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.tail.then(() => {
      if (this.failure) throw this.failure;
      return op();
    });
    this.tail = next.catch((e: unknown) => {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
    });
    return next;
  }
}
