// What every command module exports: its name, one-line summary, usage text, what it writes, and its entry point.

export interface Command {
  /** As typed after s2-policy ('features'; 'sim collect' for a subcommand). */
  name: string;
  /** The line in the command list of s2-policy --help. */
  summary: string;
  help: string;
  /**
   * The flag naming what the command writes (claimOutputs enforces the one rule on it: an existing output is refused
   * without --force), or 'run-folder' for a folder the command owns and reuses on every run (model cache and latest
   * results), which is not refused.
   */
  writes?: '--out' | 'run-folder';
  run: (argv: string[]) => Promise<number> | number;
}
