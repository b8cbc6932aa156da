// ROS 2 strings are UTF-8 on the wire: @foxglove/cdr 3.5's CdrWriter.string sizes a string by its UTF-16 length and
// truncates the UTF-8 bytes of any non-ASCII text ('×' in a reason would corrupt the message). This module replaces
// that one method, once, with a byte-exact one; importing it is enough (the MCAP writer does). The size MessageWriter precomputes from string lengths only sizes the first buffer;
// CdrWriter grows it as needed.
import { CdrWriter } from '@foxglove/cdr';

const encoder = new TextEncoder();

CdrWriter.prototype.string = function utf8String(this: CdrWriter, value: string, writeLength = true): CdrWriter {
  const bytes = encoder.encode(value);
  if (writeLength) this.uint32(bytes.byteLength + 1); // with the NUL terminator, as rmw writes it
  this.uint8Array(bytes, false);
  this.uint8(0);
  return this;
};
