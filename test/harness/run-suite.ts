// Runs one extension-host test suite through @vscode/test-electron's runTests(), pointed at
// our code-server launcher instead of a VS Code download (none can be had here).
//   node --import tsx test/harness/run-suite.ts <suite index.js> [--development-path DIR]
//        [--extensions-dir DIR]
// The development extension defaults to the repository (the extension under test).
// Prints the suite's output (ending with its `grass-suite-result:` line) and exits with the
// launcher's code: 0 when every test passed.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTests } from '@vscode/test-electron';

const ROOT = path.resolve(__dirname, '../..');
export const LAUNCHER = path.join(ROOT, 'test/harness/code-server-launcher');

async function main(argv: string[]): Promise<number> {
  const option = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? path.resolve(argv[i + 1]) : undefined;
  };
  const testsPath = argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
  if (!testsPath) throw new Error('usage: run-suite.ts <suite index.js> [--development-path DIR] [--extensions-dir DIR]');
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'grass-suite-'));
  const extensionsDir = option('--extensions-dir') ?? path.join(scratch, 'extensions');
  const workspace = path.join(scratch, 'workspace');
  mkdirSync(workspace);
  try {
    return await runTests({
      vscodeExecutablePath: LAUNCHER,
      extensionDevelopmentPath: option('--development-path') ?? ROOT,
      extensionTestsPath: path.resolve(testsPath),
      launchArgs: [workspace, `--user-data-dir=${path.join(scratch, 'user-data')}`, `--extensions-dir=${extensionsDir}`],
    });
  } catch (err) {
    // runTests rejects with the exit code when a test failed; the output said which.
    const code = (err as { code?: number }).code;
    if (typeof code === 'number') return code;
    throw err;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`runSuite: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
