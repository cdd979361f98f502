// The testbed's integration suites once more for each kernel in $GRASS_TESTBED_KERNELS
// (space-separated Debian package names; default: the cloud flavour and the 6.12 kernel).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const REPO = path.resolve(__dirname, '../..');
const kernels = (process.env.GRASS_TESTBED_KERNELS ?? 'linux-image-cloud-amd64 linux-image-6.12-amd64').split(/\s+/).filter(Boolean);
const suites = fs
  .readdirSync(path.join(REPO, 'test/integration'))
  .filter((f) => /^testbed.*\.test\.ts$/.test(f))
  .map((f) => path.join('test/integration', f));

describe('testbed suites on other kernels', () => {
  for (const kernel of kernels) {
    it(`passes with GRASS_TESTBED_KERNEL=${kernel}`, () => {
      const started = Date.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...suites], {
        cwd: REPO,
        env: { ...process.env, GRASS_TESTBED_KERNEL: kernel },
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      const summary = (r.stdout.match(/^# (tests|pass|fail) \d+$/gm) ?? []).join(', ');
      process.stderr.write(`# ${kernel}: ${summary} in ${Math.round((Date.now() - started) / 1000)} s\n`);
      assert.equal(r.status, 0, `${kernel}:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`);
    });
  }
});
