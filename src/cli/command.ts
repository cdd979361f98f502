// A CLI subcommand: one file per verb under src/cli/commands/, listed in src/cli/commands/index.ts.

export interface CliCommand {
  /** First word on the command line, e.g. "ps" or "testbed". */
  name: string;
  summary: string;
  /** Full help text printed by `grass <name> --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}
