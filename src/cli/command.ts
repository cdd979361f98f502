// A CLI subcommand: one file per verb under src/cli/verbs/, listed in src/cli/verbs/index.ts.

export interface CliCommand {
  /** First word on the command line, e.g. "ps" or "testbed". */
  name: string;
  summary: string;
  /** Full help text printed by `grass <name> --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}
