// Action chunks on the control clock: ACT-style temporal ensembling over overlapping chunks, or the latest chunk.

export type ChunkMode = 'ensemble' | 'latest';

interface Chunk {
  /** Control tick of the chunk's first action. */
  start: number;
  steps: number;
  actions: Float32Array; // steps × dim
}

export class ActionChunks {
  private chunks: Chunk[] = [];
  private final: Float32Array | undefined;

  constructor(
    readonly dim: number,
    public mode: ChunkMode,
    /** Ensembling weight decay k: the i-th oldest prediction for a tick weighs exp(−k·i). */
    public k = 0.01,
  ) {}

  /** Changes the mode and decay while running; switching to 'latest' keeps only the newest chunk. */
  setMode(mode: ChunkMode, k: number): void {
    this.mode = mode;
    this.k = k;
    if (mode === 'latest' && this.chunks.length > 1) this.chunks = [this.chunks[this.chunks.length - 1]];
  }

  /** Adds a chunk whose first action is for control tick `start`. */
  add(start: number, actions: Float32Array, steps: number): void {
    if (actions.length !== steps * this.dim) throw new Error(`chunk of ${actions.length} values is not ${steps}×${this.dim}`);
    this.chunks.push({ start, steps, actions });
    this.final = actions.slice((steps - 1) * this.dim, steps * this.dim);
    if (this.mode === 'latest') this.chunks = [this.chunks[this.chunks.length - 1]];
  }

  /** The action for control tick `tick`, or undefined when no chunk covers it. Drops chunks that ended. */
  at(tick: number): Float32Array | undefined {
    this.chunks = this.chunks.filter((c) => c.start + c.steps > tick);
    const live = this.chunks.filter((c) => c.start <= tick);
    if (live.length === 0) return undefined;
    if (this.mode === 'latest') {
      const c = live[live.length - 1];
      const i = tick - c.start;
      return c.actions.slice(i * this.dim, (i + 1) * this.dim);
    }
    // Oldest first, as ACT orders them: weights exp(−k·i), i = 0 for the oldest prediction.
    const out = new Float64Array(this.dim);
    let total = 0;
    live.forEach((c, i) => {
      const w = Math.exp(-this.k * i);
      const row = (tick - c.start) * this.dim;
      for (let d = 0; d < this.dim; d++) out[d] += w * c.actions[row + d];
      total += w;
    });
    return Float32Array.from(out, (v) => v / total);
  }

  /** Ensembling weights that tick `tick` would use, oldest chunk first (for inspection and tests). */
  weightsAt(tick: number): number[] {
    const live = this.chunks.filter((c) => c.start <= tick && c.start + c.steps > tick);
    if (this.mode === 'latest') return live.length ? [1] : [];
    const w = live.map((_, i) => Math.exp(-this.k * i));
    const total = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / total);
  }

  /** The last action of the newest chunk (what the controller holds when every chunk has run out). */
  get newestFinal(): Float32Array | undefined {
    return this.final?.slice();
  }

  get size(): number {
    return this.chunks.length;
  }

  reset(): void {
    this.chunks = [];
    this.final = undefined;
  }
}
