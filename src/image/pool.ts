// Reusable pixel buffers keyed by size, so a stream of equal-sized frames stops allocating after the first few.

type PixelBuffer = Uint8Array | Uint16Array;

/**
 * Hands out buffers and takes them back. A buffer is reused only after give(), so frames processed concurrently
 * never share one; buffers not made here are ignored by give(). Holds at most `perSize` free buffers of each size and
 * forgets the oldest size beyond `sizes` sizes, so a resolution change does not keep the old frames' memory alive.
 */
export class BufferPool {
  private readonly free = new Map<string, PixelBuffer[]>();
  private readonly mine = new WeakSet<PixelBuffer>();

  constructor(
    private readonly perSize = 2,
    private readonly sizes = 6,
  ) {}

  /** A Uint8Array of exactly n elements with unspecified contents. */
  bytes(n: number): Uint8Array {
    return (this.takeFree(`u8:${n}`) as Uint8Array | undefined) ?? this.track(new Uint8Array(n));
  }

  /** A Uint16Array of exactly n elements with unspecified contents. */
  words(n: number): Uint16Array {
    return (this.takeFree(`u16:${n}`) as Uint16Array | undefined) ?? this.track(new Uint16Array(n));
  }

  give(buf: PixelBuffer): void {
    if (!this.mine.has(buf)) return;
    const key = `${buf instanceof Uint16Array ? 'u16' : 'u8'}:${buf.length}`;
    let list = this.free.get(key);
    if (!list) {
      if (this.free.size >= this.sizes) this.free.delete(this.free.keys().next().value as string);
      list = [];
      this.free.set(key, list);
    }
    if (list.length < this.perSize && !list.includes(buf)) list.push(buf);
  }

  private takeFree(key: string): PixelBuffer | undefined {
    return this.free.get(key)?.pop();
  }

  private track<T extends PixelBuffer>(buf: T): T {
    this.mine.add(buf);
    return buf;
  }
}
