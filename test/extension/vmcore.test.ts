// "GRASS: Open Vmcore…" on a real kdump-compressed file: a testbed guest dumped by QEMU in its
// kdump-zlib format (flattened, as makedumpfile -F writes it), opened as a vmcore: target. The
// Targets view's row says what the file is; the truth is the file's own header (read here, apart
// from the agent's reader), its size, and the guest's release as the testbed booted it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GrassExtensionApi } from '../../src/extension';
import { viewRowSelector, workbenchTexts } from '../harness/workbench';

const EXTENSION_ID = 'grass.grass-vscode';

/** The first bytes of a flattened dump as its plain form lays them out (makedumpfile's records: big-endian offset and size, then the data). */
function flattenedHead(file: string, bytes: number): Buffer {
  const raw = fs.readFileSync(file);
  assert.equal(raw.subarray(0, 12).toString('latin1'), 'makedumpfile', 'a flattened dump');
  const out = Buffer.alloc(bytes);
  for (let at = 4096; at + 16 <= raw.length;) {
    const offset = Number(raw.readBigInt64BE(at));
    const size = Number(raw.readBigInt64BE(at + 8));
    if (offset < 0) break; // the end record
    if (offset < bytes) raw.copy(out, offset, at + 16, at + 16 + Math.min(size, bytes - offset));
    at += 16 + size;
  }
  return out;
}

describe('Open Vmcore', function () {
  this.timeout(60_000);
  let api: GrassExtensionApi;
  let scratch: string;
  let file: string;
  let release: string;

  before(async function () {
    this.timeout(300_000);
    const ext = vscode.extensions.getExtension<GrassExtensionApi>(EXTENSION_ID)!;
    api = await ext.activate();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-open-vmcore-'));
    file = path.join(scratch, 'guest.kdump');
    // The testbed's CLI from source, as a user would run it (its own process: it finds its files beside its sources).
    const grass = (args: string[]): string =>
      execFileSync(process.execPath, ['--import', 'tsx', path.join(ext.extensionPath, 'src/cli/main.ts'), ...args], { cwd: ext.extensionPath, encoding: 'utf8', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 240_000 });
    const up = JSON.parse(grass(['testbed', 'up', '--mem', '256', '--json'])) as { id: string; kernel: { release: string } };
    try {
      release = up.kernel.release;
      grass(['testbed', 'dump', up.id, file, '--format', 'kdump-zlib']);
    } finally {
      grass(['testbed', 'down', up.id]);
    }
  });

  after(async function () {
    this.timeout(60_000);
    api?.sessions.close();
    await vscode.workspace.getConfiguration('grass').update('targets', undefined, vscode.ConfigurationTarget.Global);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('opens a picked kdump file as a vmcore: target; its Targets row says format, compression, dump level, size and kernel', async () => {
    const name = await vscode.commands.executeCommand<string>('grass.openVmcore', file);
    assert.equal(name, 'guest.kdump');
    const targets = vscode.workspace.getConfiguration('grass').get<{ name: string; address: string }[]>('targets') ?? [];
    assert.equal(targets.find((t) => t.name === name)?.address, `vmcore:${file}`, 'added to grass.targets');
    assert.equal(api.sessions.current?.target.name, name, 'a session on the file');

    // makedumpfile's diskdump header (status: the compression) and sub-header (dump level).
    const head = flattenedHead(file, 8192);
    assert.equal(head.subarray(0, 8).toString('latin1'), 'KDUMP   ');
    const status = head.readUInt32LE(424);
    assert.equal(status & 0x25, 0x1, 'QEMU\'s kdump-zlib pages are zlib');
    const level = head.readInt32LE(head.readInt32LE(428) + 8);
    const mib = (fs.statSync(file).size / 2 ** 20).toFixed(1);
    const expected = `flattened kdump · zlib · dump level ${level} · ${mib} MiB · ${release}`;

    await vscode.commands.executeCommand('grass.targets.focus');
    const deadline = Date.now() + 15_000;
    let shown: string[] = [];
    while (!shown.includes(expected) && Date.now() < deadline) {
      shown = await workbenchTexts(`${viewRowSelector('Targets')} .label-description`).catch(() => []);
      if (!shown.includes(expected)) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(shown, [expected], 'the rendered row\'s description');
    // The session reads the dump: the kernel release it describes is the guest's.
    assert.equal((await api.sessions.current!.client.describe()).release, release);
  });
});
