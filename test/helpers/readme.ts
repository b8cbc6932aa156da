// Reads the README's shell examples: which blocks a new user can run as written, their commands, and the output
// lines the README shows under each command, so a test can run them and compare.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './util.js';

/** A marker on the line before a fence: `<!-- readme-check: not run (reason) -->`. */
const NOT_RUN = /^<!--\s*readme-check:\s*not run\s*\((.+)\)\s*-->$/;

export interface ReadmeCommand {
  /** The command as written (continuation lines joined). */
  text: string;
  /** `# ` lines directly under the command: what it prints; `…` stands for any text. */
  expected: string[];
  /** 1-based line in README.md. */
  line: number;
}

export interface ReadmeBlock {
  heading: string;
  line: number;
  /** Why the block is not run by the test, or undefined when it is. */
  notRun?: string;
  commands: ReadmeCommand[];
}

export function readmeText(): string {
  return readFileSync(join(ROOT, 'README.md'), 'utf8');
}

/** Every ```bash block of the README, in order. */
export function readmeBlocks(text = readmeText()): ReadmeBlock[] {
  const lines = text.split('\n');
  const blocks: ReadmeBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, '');
    if (l.trim() !== '```bash') continue;
    let j = i - 1;
    while (j >= 0 && lines[j].trim() === '') j--;
    const marker = j >= 0 ? NOT_RUN.exec(lines[j].trim()) : null;
    const body: { text: string; line: number }[] = [];
    let k = i + 1;
    for (; k < lines.length && lines[k].trim() !== '```'; k++) body.push({ text: lines[k], line: k + 1 });
    blocks.push({ heading, line: i + 1, notRun: marker?.[1], commands: commandsOf(body) });
    i = k;
  }
  return blocks;
}

function commandsOf(body: { text: string; line: number }[]): ReadmeCommand[] {
  const out: ReadmeCommand[] = [];
  let current: ReadmeCommand | undefined;
  let continued = false;
  for (const { text, line } of body) {
    if (continued && current) {
      current.text += ' ' + text.trim().replace(/\\$/, '').trim();
      continued = text.trimEnd().endsWith('\\');
      continue;
    }
    if (text.startsWith('#')) {
      // Output lines belong to the command just above them; a comment before any command is prose.
      if (current) current.expected.push(text.replace(/^# ?/, ''));
      continue;
    }
    if (text.trim() === '') {
      current = undefined;
      continue;
    }
    continued = text.trimEnd().endsWith('\\');
    current = { text: text.trimEnd().replace(/\\$/, '').trim(), expected: [], line };
    out.push(current);
  }
  return out;
}

/** The command without its trailing `# comment` (outside quotes). */
export function withoutComment(command: string): string {
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(command[i - 1]))) return command.slice(0, i).trimEnd();
  }
  return command;
}

/** Shell words of a simple command (quotes removed; no expansion). */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(command)) !== null) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

/** Does `actual` (a printed line) match `expected` (a README line, `…` standing for any text)? */
export function lineMatches(expected: string, actual: string): boolean {
  const parts = expected.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`).test(actual.trim());
}
