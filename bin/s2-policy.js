#!/usr/bin/env node
// Launcher for the compiled CLI in dist/ (built by `npm run build`, which `npm test` and `npm start` also run).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('s2-policy: not built yet; run `npm run build` in the s2_policy folder first');
  process.exit(1);
}
const { run } = await import(main);
process.exitCode = await run(process.argv.slice(2));
