import { commands } from './verbs';

function printHelp(): void {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  process.stderr.write(
    ['usage: grass <command> [options]', '', 'commands:', ...lines, '', 'grass <command> --help for its options; --json for machine-readable output.', ''].join('\n'),
  );
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    printHelp();
    return verb ? 0 : 2;
  }
  const command = commands.find((c) => c.name === verb);
  if (!command) {
    process.stderr.write(`grass: unknown command '${verb}'\n`);
    printHelp();
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.endsWith('\n') ? command.usage : command.usage + '\n');
    return 0;
  }
  return command.run(rest);
}

// `grass bt | head`: a reader that stops early is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`grass: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
