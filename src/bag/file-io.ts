// File-handle adapters for @mcap/core: random-access reads for the indexed reader, appending writes for the writer.
import type { FileHandle } from 'node:fs/promises';
import type { IReadable, IWritable } from '@mcap/core';

export class FileReadable implements IReadable {
  constructor(
    private readonly handle: FileHandle,
    private readonly byteSize: bigint,
  ) {}

  size(): Promise<bigint> {
    return Promise.resolve(this.byteSize);
  }

  /** A fresh buffer per read: McapIndexedReader keeps views into chunk data while it yields messages. */
  async read(offset: bigint, size: bigint): Promise<Uint8Array> {
    if (offset + size > this.byteSize) {
      throw new Error(`read of ${size} bytes at byte ${offset} goes past the end of the file (${this.byteSize} bytes)`);
    }
    const length = Number(size);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, Number(offset) + done);
      if (bytesRead === 0) throw new Error(`file ended at byte ${Number(offset) + done} while reading ${size} bytes at byte ${offset}`);
      done += bytesRead;
    }
    return out;
  }
}

export class FileWritable implements IWritable {
  private written = 0n;

  constructor(private readonly handle: FileHandle) {}

  position(): bigint {
    return this.written;
  }

  async write(buffer: Uint8Array): Promise<void> {
    let done = 0;
    while (done < buffer.byteLength) {
      const { bytesWritten } = await this.handle.write(buffer, done, buffer.byteLength - done);
      done += bytesWritten;
    }
    this.written += BigInt(buffer.byteLength);
  }
}
