// The tensor type shared by every stage: dims plus a flat float32 buffer in C (row-major) order.

export interface Tensor {
  dims: number[];
  data: Float32Array;
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function tensor(dims: number[], data?: Float32Array): Tensor {
  const n = numel(dims);
  if (data && data.length !== n) throw new Error(`tensor data has ${data.length} values, dims [${dims.join(', ')}] need ${n}`);
  return { dims, data: data ?? new Float32Array(n) };
}

export function shapeString(dims: readonly (number | string)[]): string {
  return `[${dims.join('×')}]`;
}
