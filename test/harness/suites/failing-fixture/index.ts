// A suite that must fail: the harness self-test (../../selftest.test.ts) runs it to prove a
// failing extension test is reported as a failure, not lost.
import { runMochaSuite } from '../../mocha-suite';

export function run(): Promise<void> {
  return runMochaSuite(__dirname);
}
