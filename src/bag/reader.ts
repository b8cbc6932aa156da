// McapRosReader: lists the topics of a ROS 2 MCAP recording and yields its messages in log-time order, decoded from
// CDR into plain objects; indexed files are read through their index, others by streaming the file.
import { open, type FileHandle } from 'node:fs/promises';
import { McapIndexedReader, McapStreamReader, type DecompressHandlers, type McapTypes } from '@mcap/core';
import { UserError } from '../errors.js';
import { canonicalType } from '../msgs/definitions.js';
import { decodeCdr, topicDecoder, type TopicDecoder } from './decode.js';
import { FileReadable } from './file-io.js';
import type { KnownRosType, RosMessageTypes } from './messages.js';

type Schema = McapTypes.Schema;
type Channel = McapTypes.Channel;
type Message = McapTypes.Message;

const MCAP_MAGIC = [0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]; // \x89MCAP0\r\n
const STREAM_READ_BYTES = 4 * 1024 * 1024;

export interface McapRosReaderOptions {
  /** Chunk decompressors by compression name ('zstd', 'lz4'), e.g. loadDecompressHandlers() of @mcap/support. */
  decompressHandlers?: DecompressHandlers;
  /** Called for each message that cannot be decoded; the message is skipped and counted either way. */
  onDecodeError?: (failure: DecodeFailure) => void;
  /** Read the complete messages of a file cut short (a crashed recording) instead of refusing it. */
  allowTruncated?: boolean;
  /** Check chunk CRCs (default true). */
  validateCrcs?: boolean;
  /** The name errors give the file (e.g. the compressed original of a file decompressed elsewhere); default its path. */
  displayName?: string;
  /**
   * Turns each stored payload into CDR before decoding, e.g. rosbag2's per-message zstd; a payload it throws on is
   * counted and reported like an undecodable message.
   */
  decodePayload?: (data: Uint8Array) => Uint8Array;
}

export interface TopicInfo {
  topic: string;
  /** Schema name, 'pkg/msg/Type'. */
  type: string;
  messageCount: number;
  messageEncoding: string;
  schemaEncoding: string;
  /** Where the decoder's definition comes from: the file's schema, our registry (file had none usable), or nowhere. */
  definition: 'file' | 'registry' | 'none';
  /** Channel metadata, e.g. offered_qos_profiles (parse with parseOfferedQos) and topic_type_hash. */
  metadata: Readonly<Record<string, string>>;
}

export interface BagMessage<T = unknown> {
  topic: string;
  type: string;
  /** Nanoseconds; rosbag2 stores the receive time here. */
  logTime: bigint;
  publishTime: bigint;
  sequence: number;
  /** The CDR payload. Decoded byte arrays (uint8[]) are views into it, not copies. */
  data: Uint8Array;
  /** The decoded message; undefined when reading with decode: false. */
  message: T;
}

export interface DecodeFailure {
  file: string;
  topic: string;
  type: string;
  logTime: bigint;
  reason: string;
}

export interface MessageQuery {
  /** Only these topics (default all). */
  topics?: readonly string[];
  /** Log-time range in nanoseconds, both ends inclusive. */
  startTime?: bigint;
  endTime?: bigint;
  /** Decode CDR (default true); false yields payloads only. */
  decode?: boolean;
}

/** Narrows a message read from a bag by its type name. */
export function isMessageOf<K extends KnownRosType>(m: BagMessage, type: K): m is BagMessage<RosMessageTypes[K]> {
  return canonicalType(m.type) === type && m.message !== undefined;
}

/** What a streaming pass over an unindexed file learned. */
interface ScanResult {
  schemas: Map<number, Schema>;
  channels: Map<number, Channel>;
  counts: Map<number, number>;
  startTime?: bigint;
  endTime?: bigint;
  outOfOrder: number;
  truncatedAt?: number;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

export class McapRosReader {
  private readonly decoders = new Map<number, TopicDecoder>();
  private readonly failuresByTopic = new Map<string, number>();
  private readonly unknownSeen = new Map<number, number>();
  private failures = 0;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly size: number,
    private readonly options: McapRosReaderOptions,
    private readonly indexed: McapIndexedReader | undefined,
    private readonly scan: ScanResult | undefined,
    readonly profile: string,
    readonly library: string,
    /** Why the file is streamed rather than read through its index (undefined when indexed). */
    readonly indexProblem: string | undefined,
  ) {}

  /**
   * Opens a recording. Indexed files are read through their summary; unindexed ones (no summary, or unchunked as the
   * 'fastwrite' preset writes them) are scanned once. Unreadable files are a UserError naming the file.
   */
  static async open(path: string, options: McapRosReaderOptions = {}): Promise<McapRosReader> {
    const file = options.displayName ?? path;
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw new UserError(`${file}: cannot open: ${firstLine(e)}`);
    }
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new UserError(`${file}: is a directory; pass the .mcap file inside it`);
      const size = stat.size;
      const head = new Uint8Array(Math.min(size, MCAP_MAGIC.length));
      await handle.read(head, 0, head.length, 0);
      if (head.length < MCAP_MAGIC.length || MCAP_MAGIC.some((b, i) => head[i] !== b)) {
        throw new UserError(`${file}: not an MCAP file (no MCAP magic at byte 0)`);
      }
      let indexed: McapIndexedReader | undefined;
      let indexError = '';
      try {
        indexed = await McapIndexedReader.Initialize({ readable: new FileReadable(handle, BigInt(size)), decompressHandlers: options.decompressHandlers });
      } catch (e) {
        indexError = firstLine(e);
      }
      if (indexed) {
        if (usableIndex(indexed)) {
          return new McapRosReader(file, handle, size, options, indexed, undefined, indexed.header.profile, indexed.header.library, undefined);
        }
        indexError = 'the summary has no chunk and message indexes to read messages by (e.g. the fastwrite preset)';
      }
      const { scan, header } = await scanFile(file, handle, size, options);
      if (scan.truncatedAt !== undefined && options.allowTruncated !== true) {
        const complete = [...scan.counts.values()].reduce((a, b) => a + b, 0);
        throw new UserError(
          `${file}: truncated MCAP (cut off inside its data section; the last complete record ends at byte ${scan.truncatedAt} of ${size}, ` +
            `after ${complete} complete messages): repair it with 'mcap recover ${file} -o repaired.mcap'`,
        );
      }
      return new McapRosReader(file, handle, size, options, undefined, scan, header?.profile ?? '', header?.library ?? '', indexError || 'no usable index');
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** True when messages are read through the file's index; false when the file is streamed. */
  get isIndexed(): boolean {
    return this.indexed !== undefined;
  }

  /** Set for a truncated file opened with allowTruncated: the byte where its last complete record ends. */
  get truncatedAt(): number | undefined {
    return this.scan?.truncatedAt;
  }

  /**
   * Messages whose channel id has no Channel record, by channel id: they cannot be attributed to a topic and are
   * never yielded. Known from the statistics (indexed) or the scan (streamed).
   */
  get unknownChannelsInIndex(): ReadonlyMap<number, number> {
    const { channels } = this.records();
    const counts = this.scan
      ? this.scan.counts
      : new Map([...(this.indexed?.statistics?.channelMessageCounts ?? new Map<number, bigint>())].map(([k, v]) => [k, Number(v)]));
    return new Map([...counts].filter(([id, n]) => !channels.has(id) && n > 0));
  }

  /**
   * Messages without a Channel record, by channel id: those the index or scan lists, or more if reading met them
   * (a message index can point at a record whose channel id was damaged).
   */
  get unknownChannelMessages(): ReadonlyMap<number, number> {
    const out = new Map(this.unknownChannelsInIndex);
    for (const [id, n] of this.unknownSeen) out.set(id, Math.max(n, out.get(id) ?? 0));
    return out;
  }

  /** Messages that could not be decoded so far, in total and per topic. */
  get decodeFailures(): { total: number; byTopic: ReadonlyMap<string, number> } {
    return { total: this.failures, byTopic: this.failuresByTopic };
  }

  /** Log-time range of all messages (ns), undefined for an empty file. */
  get timeRange(): { start: bigint; end: bigint } | undefined {
    if (this.indexed) {
      const s = this.indexed.statistics;
      if (s && s.messageCount > 0n) return { start: s.messageStartTime, end: s.messageEndTime };
      const chunks = this.indexed.chunkIndexes;
      if (chunks.length === 0) return undefined;
      let start = chunks[0].messageStartTime;
      let end = chunks[0].messageEndTime;
      for (const c of chunks) {
        if (c.messageStartTime < start) start = c.messageStartTime;
        if (c.messageEndTime > end) end = c.messageEndTime;
      }
      return { start, end };
    }
    const scan = this.scan as ScanResult;
    return scan.startTime === undefined || scan.endTime === undefined ? undefined : { start: scan.startTime, end: scan.endTime };
  }

  /** Topics with their types and message counts, sorted by topic. */
  async topics(): Promise<TopicInfo[]> {
    const { schemas, channels } = this.records();
    const counts = await this.channelCounts();
    const byKey = new Map<string, TopicInfo>();
    for (const channel of channels.values()) {
      const schema = schemas.get(channel.schemaId);
      const type = schema?.name ?? '';
      const key = `${channel.topic}\u0000${type}`;
      const seen = byKey.get(key);
      if (seen) {
        seen.messageCount += counts.get(channel.id) ?? 0;
        continue;
      }
      const decoder = this.decoder(channel.id);
      byKey.set(key, {
        topic: channel.topic,
        type,
        messageCount: counts.get(channel.id) ?? 0,
        messageEncoding: channel.messageEncoding,
        schemaEncoding: schema?.encoding ?? '',
        definition: decoder.definition,
        metadata: Object.fromEntries(channel.metadata),
      });
    }
    return [...byKey.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  /**
   * Messages in log-time order, optionally only some topics and a time range. A message that cannot be decoded is
   * counted (decodeFailures), reported to onDecodeError, and skipped. File-level problems (a bad chunk CRC, a
   * compression without decompressor) end the iteration with a UserError naming the file.
   */
  async *messages(query: MessageQuery = {}): AsyncGenerator<BagMessage> {
    const { topics, startTime, endTime, decode = true } = query;
    const source = this.indexed ? this.indexedMessages(this.indexed, query) : this.streamedMessages(this.scan as ScanResult, query);
    const { channels, schemas } = this.records();
    for await (const raw of source) {
      const channel = channels.get(raw.channelId);
      if (!channel) {
        this.unknownSeen.set(raw.channelId, (this.unknownSeen.get(raw.channelId) ?? 0) + 1);
        continue;
      }
      // The indexed reader filters by itself; streaming applies the same filter here.
      if (topics && !topics.includes(channel.topic)) continue;
      if ((startTime !== undefined && raw.logTime < startTime) || (endTime !== undefined && raw.logTime > endTime)) continue;
      const type = schemas.get(channel.schemaId)?.name ?? '';
      let data = raw.data;
      if (this.options.decodePayload) {
        try {
          data = this.options.decodePayload(raw.data);
        } catch (e) {
          this.countFailure(channel.topic, type, raw.logTime, `stored payload: ${firstLine(e)}`);
          continue;
        }
      }
      const base = { topic: channel.topic, type, logTime: raw.logTime, publishTime: raw.publishTime, sequence: raw.sequence, data };
      if (!decode) {
        yield { ...base, message: undefined };
        continue;
      }
      const decoded = this.decode(data === raw.data ? raw : { ...raw, data }, channel.topic, type);
      if (decoded !== undefined) yield { ...base, message: decoded };
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private records(): { schemas: ReadonlyMap<number, Schema>; channels: ReadonlyMap<number, Channel> } {
    if (this.indexed) return { schemas: this.indexed.schemasById, channels: this.indexed.channelsById };
    const scan = this.scan as ScanResult;
    return { schemas: scan.schemas, channels: scan.channels };
  }

  private async channelCounts(): Promise<Map<number, number>> {
    if (this.scan) return this.scan.counts;
    const indexed = this.indexed as McapIndexedReader;
    const counts = new Map<number, number>();
    if (indexed.statistics) {
      for (const [id, n] of indexed.statistics.channelMessageCounts) counts.set(id, Number(n));
      return counts;
    }
    // No statistics record: count through the index without decoding.
    for await (const m of this.indexedMessages(indexed, {})) counts.set(m.channelId, (counts.get(m.channelId) ?? 0) + 1);
    return counts;
  }

  private async *indexedMessages(indexed: McapIndexedReader, query: MessageQuery): AsyncGenerator<Message> {
    const { topics, startTime, endTime } = query;
    const wanted = topics ? new Set([...indexed.channelsById.values()].filter((c) => topics.includes(c.topic)).map((c) => c.id)) : undefined;
    // Name a missing decompressor before reading anything rather than partway through.
    for (const c of indexed.chunkIndexes) {
      if (c.compression === '' || this.options.decompressHandlers?.[c.compression]) continue;
      if (wanted && ![...c.messageIndexOffsets.keys()].some((id) => wanted.has(id))) continue;
      throw compressionError(this.file, c.compression, c.chunkStartOffset);
    }
    let last: bigint | undefined;
    try {
      for await (const m of indexed.readMessages({ topics, startTime, endTime, validateCrcs: this.options.validateCrcs ?? true })) {
        last = m.logTime;
        yield m;
      }
    } catch (e) {
      throw new UserError(`${this.file}: ${firstLine(e)}${last === undefined ? ' (before the first message)' : ` (after the message at log time ${last} ns)`}`);
    }
  }

  private async *streamedMessages(scan: ScanResult, query: MessageQuery): AsyncGenerator<Message> {
    if (scan.outOfOrder > 0) {
      throw new UserError(
        `${this.file}: unindexed and ${scan.outOfOrder} messages are out of log-time order; rebuild the index with 'mcap recover' (or 'ros2 bag reindex') first`,
      );
    }
    for await (const record of streamRecords(this.file, this.handle, scan.truncatedAt ?? this.size, this.options)) {
      if (record.type !== 'Message') continue;
      // In log-time order, nothing after the end of the range can fall inside it.
      if (query.endTime !== undefined && record.logTime > query.endTime) return;
      yield record;
    }
  }

  private decode(raw: Message, topic: string, type: string): unknown {
    const result = decodeCdr(this.decoder(raw.channelId), raw.data);
    if (result.ok) return result.value;
    this.countFailure(topic, type, raw.logTime, result.problem);
    return undefined;
  }

  private countFailure(topic: string, type: string, logTime: bigint, reason: string): void {
    this.failures++;
    this.failuresByTopic.set(topic, (this.failuresByTopic.get(topic) ?? 0) + 1);
    this.options.onDecodeError?.({ file: this.file, topic, type, logTime, reason });
  }

  private decoder(channelId: number): TopicDecoder {
    let d = this.decoders.get(channelId);
    if (d) return d;
    const { schemas, channels } = this.records();
    const channel = channels.get(channelId) as Channel;
    const schema = schemas.get(channel.schemaId);
    d = topicDecoder(
      `${this.file}: topic ${channel.topic}`,
      channel.messageEncoding,
      schema?.name ?? '',
      schema && { name: schema.name, encoding: schema.encoding, text: new TextDecoder().decode(schema.data) },
    );
    this.decoders.set(channelId, d);
    return d;
  }
}

function compressionError(file: string, compression: string, offset: bigint | number): UserError {
  return new UserError(
    `${file}: chunks are ${compression}-compressed (first at byte ${offset}) and no ${compression} decompressor is available; ` +
      `pass decompressHandlers (e.g. from @mcap/support) or rewrite the file with 'mcap convert --compression none'`,
  );
}

/** Whether the index can serve messages: McapIndexedReader reads only chunked messages that have message indexes. */
function usableIndex(r: McapIndexedReader): boolean {
  const messages = r.statistics?.messageCount;
  if (r.chunkIndexes.length === 0) return messages === 0n;
  return r.chunkIndexes.every((c) => c.messageIndexLength > 0n);
}

/** Where a streaming pass stopped: whether the footer was reached, and the end of the last complete record. */
interface StreamState {
  done: boolean;
  lastComplete: number;
}

/**
 * Streams the top-level records of a file and the records inside its chunks, reading no further than `end`. Any parse
 * error becomes a UserError naming the file and the byte reached.
 */
async function* streamRecords(
  file: string,
  handle: FileHandle,
  end: number,
  options: McapRosReaderOptions,
  state: StreamState = { done: false, lastComplete: 0 },
): AsyncGenerator<McapTypes.TypedMcapRecord> {
  const reader = new McapStreamReader({ decompressHandlers: options.decompressHandlers, validateCrcs: options.validateCrcs ?? true });
  // append() copies, so one read buffer serves the whole pass.
  const buffer = new Uint8Array(Math.max(1, Math.min(STREAM_READ_BYTES, end)));
  let position = 0;
  while (position < end && !state.done) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
    if (bytesRead === 0) break;
    position += bytesRead;
    reader.append(buffer.subarray(0, bytesRead));
    for (;;) {
      let record: McapTypes.TypedMcapRecord | undefined;
      try {
        record = reader.nextRecord();
      } catch (e) {
        const at = position - reader.bytesRemaining();
        const message = firstLine(e);
        const compression = /Unsupported compression (\S+)/.exec(message);
        if (compression) throw compressionError(file, compression[1], at);
        throw new UserError(`${file}: corrupt MCAP near byte ${at}: ${message}`);
      }
      if (record === undefined) {
        state.done = reader.done();
        break;
      }
      // A chunk is consumed whole before its records come out, so this is always a top-level record boundary.
      state.lastComplete = position - reader.bytesRemaining();
      yield record;
      // The data section ends here: every message has been seen, and a damaged summary, footer or trailing magic
      // after it does not matter to a streaming read (the one rule: intact chunks are readable).
      if (record.type === 'DataEnd') {
        state.done = true;
        return;
      }
    }
  }
}

/** One streaming pass over an unindexed file: schemas, channels, counts, time range, ordering, and where it ends. */
async function scanFile(
  file: string,
  handle: FileHandle,
  size: number,
  options: McapRosReaderOptions,
): Promise<{ scan: ScanResult; header?: McapTypes.Header }> {
  const scan: ScanResult = { schemas: new Map(), channels: new Map(), counts: new Map(), outOfOrder: 0 };
  const state: StreamState = { done: false, lastComplete: 0 };
  let header: McapTypes.Header | undefined;
  let lastTime: bigint | undefined;
  for await (const record of streamRecords(file, handle, size, options, state)) {
    switch (record.type) {
      case 'Header':
        header = record;
        break;
      case 'Schema':
        scan.schemas.set(record.id, record);
        break;
      case 'Channel':
        scan.channels.set(record.id, record);
        break;
      case 'Message':
        scan.counts.set(record.channelId, (scan.counts.get(record.channelId) ?? 0) + 1);
        if (lastTime !== undefined && record.logTime < lastTime) scan.outOfOrder++;
        else lastTime = record.logTime;
        if (scan.startTime === undefined || record.logTime < scan.startTime) scan.startTime = record.logTime;
        if (scan.endTime === undefined || record.logTime > scan.endTime) scan.endTime = record.logTime;
        break;
      default:
        break;
    }
  }
  if (!state.done) scan.truncatedAt = state.lastComplete;
  return { scan, header };
}
