// `npm run package` makes a .vsix that code-server installs (--install-extension) and whose
// extension activates from the installed copy, koffi's native binary included; the .vsix stays
// small and carries nothing of .devimg/ (gpu/device/prepare.sh's guest images, 10 MB each).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '../..');
const NODE24 = path.join(ROOT, '.cache/tools/node/bin/node');
const CODE_SERVER = path.join(ROOT, '.cache/tools/vscode/node_modules/code-server/out/node/entry.js');

test('the packaged .vsix installs into code-server and activates there', (t) => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'grass-vsix-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  // As after gpu/device/prepare.sh: .devimg/ holds a guest image (a stand-in when it has none).
  const devimg = path.join(ROOT, '.devimg');
  const hadDevimg = existsSync(devimg);
  const standIn = path.join(devimg, `vsix-test-${process.pid}.ram`);
  mkdirSync(devimg, { recursive: true });
  writeFileSync(standIn, randomBytes(6 << 20)); // incompressible: packed, it alone would pass 5 MiB
  let packed;
  try {
    packed = spawnSync('bash', ['scripts/package.sh'], { cwd: ROOT, encoding: 'utf8' });
  } finally {
    rmSync(hadDevimg ? standIn : devimg, { recursive: true, force: true });
  }
  assert.equal(packed.status, 0, `npm run package failed:\n${packed.stderr}`);
  const vsix = packed.stdout.trim();
  assert.ok(existsSync(vsix), `package.sh named ${vsix}, which does not exist`);
  const bytes = statSync(vsix).size;
  assert.ok(bytes < 5 * 1024 * 1024, `the .vsix is ${(bytes / 1048576).toFixed(1)} MiB (at most 5 MiB)`);
  const entries = execFileSync('python3', ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', vsix], { encoding: 'utf8' }).split('\n');
  assert.ok(entries.includes('extension/package.json'), `not a .vsix of the extension: ${entries.slice(0, 5).join(', ')}`);
  assert.deepEqual(entries.filter((e) => e.includes('.devimg')), [], 'the .vsix carries .devimg entries');

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
