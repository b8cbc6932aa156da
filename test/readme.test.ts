// The README as a new user reads it: every s2-policy command it shows names flags the CLI documents, and every
// shell block not marked `<!-- readme-check: not run (reason) -->` runs as written in a fresh folder and prints
// the lines the README shows under each command.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, cli, tempDir } from './helpers/util.js';
import { lineMatches, readmeBlocks, shellWords, withoutComment } from './helpers/readme.js';

/** `npx s2-policy …` segments of a command line: the words after `s2-policy`. */
function s2PolicyCalls(command: string): string[][] {
  return withoutComment(command)
    .split(/&&|\|\||;|\|/)
    .map((segment) => shellWords(segment.trim()))
    .filter((w) => w[0] === 'npx' && w[1] === 's2-policy')
    .map((w) => w.slice(2));
}

const SUBCOMMANDS: Record<string, string[]> = { sim: ['collect', 'models'] };

describe('README', function () {
  this.timeout(900_000);
  const blocks = readmeBlocks();

  it('has shell examples, and says why each one the test does not run is not run', () => {
    assert.ok(blocks.length >= 10, `only ${blocks.length} bash blocks found`);
    const run = blocks.filter((b) => b.notRun === undefined);
    assert.ok(run.length >= 5, `only ${run.length} blocks are run`);
    for (const b of blocks) assert.ok(b.notRun === undefined || b.notRun.length >= 8, `README.md:${b.line}: give the reason in full`);
  });

  it('every s2-policy command names a command and flags that its --help documents', () => {
    const helps = new Map<string, string>();
    let checked = 0;
    for (const b of blocks) {
      for (const c of b.commands) {
        for (const words of s2PolicyCalls(c.text)) {
          const name = SUBCOMMANDS[words[0]] ? words.slice(0, 2) : words.slice(0, 1);
          const key = name.join(' ');
          if (!helps.has(key)) {
            const r = cli([...name, '--help']);
            assert.equal(r.status, 0, `README.md:${c.line}: s2-policy ${key} --help exited ${r.status}: ${r.stderr.trim()}`);
            helps.set(key, r.stdout);
          }
          const help = helps.get(key) ?? '';
          for (const w of words.slice(name.length)) {
            const flag = /^--[a-z0-9-]+/.exec(w)?.[0];
            if (flag === undefined) continue;
            assert.ok(new RegExp(`${flag}(?![a-z0-9-])`).test(help), `README.md:${c.line}: ${flag} is not in 's2-policy ${key} --help'`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked >= 30, `only ${checked} flags checked`);
  });

  it('runs every block not marked as not run, in a fresh folder, and each prints what the README shows', () => {
    const home = tempDir('s2-readme-');
    const tmp = join(home, 'tmp');
    mkdirSync(tmp);
    let ran = 0;
    for (const b of blocks.filter((x) => x.notRun === undefined)) {
      for (const c of b.commands) {
        // What a user types, with two substitutions: the package's own launcher for `npx s2-policy` (the test's
        // folder is not the package), and a private folder for /tmp.
        // (/tmp first, so that a clone under /tmp keeps its own path.)
        const command = withoutComment(c.text)
          .replace(/(^|[\s='"])\/tmp\//g, `$1${tmp}/`)
          .replace(/\bnpx s2-policy\b/g, `node ${JSON.stringify(BIN)}`);
        const r = spawnSync('bash', ['-c', command], { cwd: home, encoding: 'utf8', env: { ...process.env, S2_REPO: ROOT }, timeout: 600_000 });
        // Printed paths are compared as the user would see them.
        const printed = `${r.stdout}\n${r.stderr}`.split(`${tmp}/`).join('/tmp/');
        assert.equal(r.status, 0, `README.md:${c.line} (${b.heading}): '${c.text}' exited ${r.status}:\n${printed.slice(-2000)}`);
        const lines = printed.split('\n');
        let at = 0;
        for (const want of c.expected) {
          const found = lines.findIndex((l, i) => i >= at && lineMatches(want, l));
          assert.ok(found >= 0, `README.md:${c.line}: '${c.text}' did not print\n  ${want}\nit printed:\n${printed.slice(-3000)}`);
          at = found + 1;
        }
        ran++;
      }
    }
    assert.ok(ran >= 10, `only ${ran} commands ran`);
  });
});
