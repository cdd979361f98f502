// The harness proves it can fail: a suite with a deliberately failing test, run in the real
// extension host through runTests() and the launcher, must come back as a failure with the
// failing test named and counted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '../..');

test('a failing extension-host test is reported as a failure', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'test/harness/run-suite.ts', 'out/test/harness/suites/failing-fixture/index.js'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, GRASS_LAUNCHER_TIMEOUT_S: '180' },
  });
  const output = `${run.stdout}\n${run.stderr}`;
  assert.notEqual(run.status, 0, `the failing fixture exited 0:\n${output}`);
  assert.match(run.stdout, /^\[info\] grass-suite-result: 1 passed, 1 failed$/m, output);
  assert.match(run.stdout, /fails on purpose/, output);
  assert.match(run.stdout, /deliberately wrong: this fixture must fail/, output);
});
