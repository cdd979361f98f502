// Run by ../../vsix.test.ts against the .vsix installed into code-server (no development
// path): the packaged extension activates and its koffi loads its native binary.
import { runMochaSuite } from '../../mocha-suite';

export function run(): Promise<void> {
  return runMochaSuite(__dirname);
}
