// Progress of a long test as it happens: node's test runner shows a test's output only at its
// end, so each line also goes to stderr and, with GRASS_LONG_LOG=FILE, to FILE with a timestamp.
import { appendFileSync } from 'node:fs';

export function longLog(line: string): void {
  process.stderr.write(`${line}\n`);
  if (process.env.GRASS_LONG_LOG) appendFileSync(process.env.GRASS_LONG_LOG, `${new Date().toISOString()} ${line}\n`);
}
