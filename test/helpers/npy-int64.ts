// Reads an int64 .npy (the extract command's timestamps) for tests.
export function decodeNpyInt64(buf: Uint8Array): bigint[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = view.getUint16(8, true);
  const header = new TextDecoder().decode(buf.subarray(10, 10 + headerLen));
  if (!header.includes("'<i8'")) throw new Error(`not int64: ${header}`);
  const start = 10 + headerLen;
  const out: bigint[] = [];
  for (let o = start; o + 8 <= buf.length; o += 8) out.push(view.getBigInt64(o, true));
  return out;
}
