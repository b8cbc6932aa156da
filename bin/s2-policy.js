#!/usr/bin/env node
// Launcher for the compiled CLI in dist/: after `npm ci` alone, the first call builds it (tsc, a few seconds), so
// every documented command runs on a fresh clone without a separate build step.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  if (!existsSync(tsc)) {
    console.error('s2-policy: not built, and TypeScript is not installed: run `npm ci` (with dev dependencies) in the s2_policy folder');
    process.exit(1);
  }
  console.error('s2-policy: first run: building (npm run build) …');
  const built = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0 || !existsSync(main)) {
    console.error('s2-policy: the build failed; run `npm run build` in the s2_policy folder to see why');
    process.exit(1);
  }
}
const { run } = await import(main);
process.exitCode = await run(process.argv.slice(2));
