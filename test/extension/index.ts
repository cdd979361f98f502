// Entry point VS Code loads as `--extensionTestsPath`: runs this folder's *.test.ts files.
import { runMochaSuite } from '../harness/mocha-suite';

export function run(): Promise<void> {
  return runMochaSuite(__dirname);
}
