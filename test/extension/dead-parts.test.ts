// Dead parts as the extension shows them, through its public behaviour only (status bar text,
// the Targets and Processes views' content): the agent's monitor loop stalled (SIGSTOP on the
// agent), the guest frozen (QMP stop), the grass monitor process the extension started killed.
// Each failure is named within the request timeout, the Processes tree keeps its last good rows,
// and everything answers again once the part is back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GrassExtensionApi } from '../../src/extension';
import type { HeartbeatState } from '../../src/session/live-session';
import { monitorNotAnswering } from '../../src/session/failure';
import { targetRow, viewRows } from '../harness/workbench';
import { GuestTarget, stopRelays } from './support/guest-target';

const TARGET = 'dead-parts';
const TIMEOUT_MS = 1500;

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The agent binary serving `shmTarget` (its command line names the buffer), found in /proc. */
function agentPid(shmTarget: string): number {
  const path = shmTarget.replace(/^shm:/, '');
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (path && args[0].endsWith('grass-agent') && args.includes(`shm:${path}`)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no grass-agent process serves ${shmTarget}`);
}

describe('dead parts, as the extension shows them', function () {
  this.timeout(90_000);
  let api: GrassExtensionApi;
  let guest: GuestTarget;
  let scratch: string | undefined;

  before(async function () {
    this.timeout(300_000);
    const ext = vscode.extensions.getExtension<GrassExtensionApi>('grass.grass-vscode')!;
    api = await ext.activate();
    guest = await GuestTarget.start(ext.extensionPath);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-dead-parts-'));
    const config = vscode.workspace.getConfiguration('grass');
    await config.update('monitor.socketPath', path.join(scratch, 'monitor.sock'), vscode.ConfigurationTarget.Global);
    await config.update('targets', [{ name: TARGET, address: guest.target, options: { heartbeatIntervalMs: 500, requestTimeoutMs: TIMEOUT_MS } }], vscode.ConfigurationTarget.Global);
    await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile));
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    await waitFor('the status bar heartbeat', () => /: \d+ µs$/.test(api.views.heartbeat.item.text));
  });

  after(async function () {
    this.timeout(120_000);
    api?.sessions.close();
    await api?.keys.delete(TARGET);
    const config = vscode.workspace.getConfiguration('grass');
    await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    await config.update('monitor.socketPath', undefined, vscode.ConfigurationTarget.Global);
    stopRelays(api);
    await guest?.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('agent stalled: the status bar and the Targets row say the monitor is not answering, the Processes tree keeps its rows; resumed: live again', async () => {
    const provider = api.views.processesProvider;
    await provider.refresh();
    assert.equal(provider.error, undefined);
    const rowsBefore = (await provider.getChildren()).map((p) => p.task.pid);
    assert.ok(rowsBefore.includes(1), 'init is listed');
    const pid = agentPid(guest.target);
    process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
      assert.ok(state?.kind === 'failed' && monitorNotAnswering(state.failure), JSON.stringify(state, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
      await waitFor('the status bar failure', () => /monitor not answering/.test(api.views.heartbeat.item.text));
      console.log(`dead parts (extension): agent stalled, named in ${Date.now() - started} ms: ${api.views.heartbeat.item.text}`);
      await vscode.commands.executeCommand('grass.targets.focus');
      await waitFor('the Targets row failure', async () => targetRow(await viewRows('Targets'), TARGET)?.startsWith('monitor not answering'));
      await provider.refresh();
      assert.match(provider.error ?? '', new RegExp(`cannot list the processes of ${TARGET}`), 'the view says why it could not refresh');
      assert.deepEqual((await provider.getChildren()).map((p) => p.task.pid), rowsBefore, 'the last good rows stay');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('the status bar heartbeat again', () => /: \d+ µs$/.test(api.views.heartbeat.item.text));
    await provider.refresh();
    assert.equal(provider.error, undefined);
  });

  it('guest frozen (QMP stop): the agent still answers, the status bar stays live and the tree refreshes', async () => {
    await guest.request({ op: 'pause' });
    try {
      const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
      assert.equal(state?.kind, 'alive');
      await api.views.processesProvider.refresh();
      assert.equal(api.views.processesProvider.error, undefined);
      assert.ok((await api.views.processesProvider.getChildren()).some((p) => p.task.pid === 1));
      assert.match(api.views.heartbeat.item.text, /: \d+ µs$/);
    } finally {
      await guest.request({ op: 'resume' });
    }
  });

  it('the grass monitor the extension started is killed: a failure is shown, and a reconnect brings the session back', async () => {
    const monitors = [...api.relaysStarted];
    assert.ok(monitors.length > 0, 'the extension started a grass monitor');
    for (const pid of monitors) process.kill(pid, 'SIGKILL');
    await waitFor('the status bar failure', () => !/: \d+ µs$/.test(api.views.heartbeat.item.text));
    // The status bar's tooltip carries the failure's message: it names the monitor (its socket).
    const tooltip = String(api.views.heartbeat.item.tooltip);
    console.log(`dead parts (extension): monitor killed: ${api.views.heartbeat.item.text}; ${tooltip}`);
    assert.match(tooltip, /the monitor at \S+ went away|no monitor at/);
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    await waitFor('the status bar heartbeat after reconnecting', () => /: \d+ µs$/.test(api.views.heartbeat.item.text));
  });
});
