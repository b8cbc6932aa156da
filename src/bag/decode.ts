// CDR decoding of recorded messages, shared by the MCAP and sqlite3 readers: one rule for which definition decodes a
// topic (the recording's own ros2msg text, else the project's registered one) and for what counts as undecodable.
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import type { MessageDefinition } from '@foxglove/message-definition';
import { canonicalType, parseRos2Msg, REGISTERED_TYPES, registeredDefinitions } from '../msgs/definitions.js';
import { locateCdrFault } from './cdr-locate.js';

export interface TopicDecoder {
  reader?: MessageReader;
  defs?: MessageDefinition[];
  /** Why this topic's messages cannot be decoded. */
  problem?: string;
  /** Where the definition comes from: the recording, our registry (the recording had none usable), or nowhere. */
  definition: 'file' | 'registry' | 'none';
}

/** A type's definition as a recording stores it: an MCAP schema or a row of rosbag2's message_definitions table. */
export interface StoredDefinition {
  /** 'pkg/msg/Type'. */
  name: string;
  /** 'ros2msg', 'ros2idl', '' … */
  encoding: string;
  text: string;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/**
 * The decoder of one topic. `what` names the file and topic in definition errors; `type` is the topic's type name,
 * used when the recording has no usable definition of its own.
 */
export function topicDecoder(what: string, messageEncoding: string, type: string, stored: StoredDefinition | undefined): TopicDecoder {
  if (messageEncoding !== 'cdr') return { problem: `message encoding '${messageEncoding}' is not cdr`, definition: 'none' };
  try {
    if (stored && stored.encoding === 'ros2msg' && stored.text.length > 0) {
      const defs = parseRos2Msg(stored.text, `${what} (${stored.name})`);
      return { reader: new MessageReader(defs), defs, definition: 'file' };
    }
    if (type !== '' && REGISTERED_TYPES.includes(canonicalType(type))) {
      // rosbag2 leaves the definition empty (or writes IDL, or none at all before Jazzy's sqlite3 files) when it
      // cannot find a .msg; the type name still says which definition the payload follows.
      const defs = registeredDefinitions(type);
      return { reader: new MessageReader(defs), defs, definition: 'registry' };
    }
    return { problem: `no usable message definition (schema '${stored?.name ?? type}', encoding '${stored?.encoding ?? ''}')`, definition: 'none' };
  } catch (e) {
    return { problem: firstLine(e), definition: 'none' };
  }
}

/** Decodes one payload: the message, or why it does not decode (naming the field at fault where it can). */
export function decodeCdr(decoder: TopicDecoder, data: Uint8Array): { ok: true; value: unknown } | { ok: false; problem: string } {
  if (!decoder.reader) return { ok: false, problem: decoder.problem ?? 'no decoder' };
  try {
    const value = decoder.reader.readMessage(data);
    const left = data.byteLength - decoder.reader.lastReadByteLength();
    // ROS 2 middlewares pad payloads to 4 bytes; more left over means the definition does not match the payload.
    if (left > 3) return { ok: false, problem: `${left} bytes left over after the last field: the definition does not match the payload` };
    return { ok: true, value };
  } catch (e) {
    const where = decoder.defs ? locateCdrFault(decoder.defs, data) : undefined;
    return { ok: false, problem: where ?? firstLine(e) };
  }
}
