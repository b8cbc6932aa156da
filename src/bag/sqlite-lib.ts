// SQLite compiled to WebAssembly (node-sqlite3-wasm), loaded once on first use: compiling it costs about 0.1 s that
// commands reading no .db3 need not pay. It reads and writes files page by page through Node's fs, never whole.
type Library = typeof import('node-sqlite3-wasm');

let library: Promise<Library> | undefined;

export async function loadSqlite(): Promise<Library> {
  // A CommonJS package: its exports arrive as the default export of the ES module namespace.
  library ??= import('node-sqlite3-wasm').then((m) => (m as unknown as { default?: Library }).default ?? m);
  return library;
}
