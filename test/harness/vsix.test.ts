// `npm run package` makes a .vsix that code-server installs (--install-extension) and whose
// extension activates from the installed copy, koffi's native binary included.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '../..');
const NODE24 = path.join(ROOT, '.cache/tools/node/bin/node');
const CODE_SERVER = path.join(ROOT, '.cache/tools/vscode/node_modules/code-server/out/node/entry.js');

test('the packaged .vsix installs into code-server and activates there', (t) => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'grass-vsix-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const packed = spawnSync('bash', ['scripts/package.sh'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(packed.status, 0, `npm run package failed:\n${packed.stderr}`);
  const vsix = packed.stdout.trim();
  assert.ok(existsSync(vsix), `package.sh named ${vsix}, which does not exist`);

  const extensionsDir = path.join(scratch, 'extensions');
  const env = { ...process.env, PATH: `${path.dirname(NODE24)}:${process.env.PATH}`, TMPDIR: scratch, XDG_CONFIG_HOME: path.join(scratch, 'config'), XDG_DATA_HOME: path.join(scratch, 'data') };
  execFileSync(NODE24, [CODE_SERVER, '--extensions-dir', extensionsDir, '--user-data-dir', path.join(scratch, 'user-data'), '--install-extension', vsix], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const installed = readdirSync(extensionsDir).filter((d) => d.startsWith('grass.grass-vscode-'));
  assert.equal(installed.length, 1, `installed: ${readdirSync(extensionsDir).join(', ')}`);
  assert.ok(existsSync(path.join(extensionsDir, installed[0], 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node')));

  const run = spawnSync(process.execPath, ['--import', 'tsx', 'test/harness/run-suite.ts', 'out/test/harness/suites/installed-vsix/index.js', '--development-path', 'test/harness/empty-extension', '--extensions-dir', extensionsDir], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, GRASS_EXPECT_EXTENSIONS_DIR: extensionsDir, GRASS_LAUNCHER_TIMEOUT_S: '180' },
  });
  const output = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.status, 0, output);
  assert.match(run.stdout, /^\[info\] grass-suite-result: 2 passed, 0 failed$/m, output);
});
