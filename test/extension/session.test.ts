// Sessions held by `grass monitor`, the `grass` debug adapter and the Faults view, against a
// testbed guest with an agent (one for this file). Truth: the guest itself (/proc through its
// console), the `grass` CLI reading the same agent directly (not through the extension or the
// monitor), and /proc of the monitor process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GroundTruth } from '../../testbed';
import type { GrassExtensionApi } from '../../src/extension';
import type { TargetStatus } from '../../src/relay/wire';
import type { StackTrace } from '../../src/kernel/stacks/stacks';
import { frameText } from '../../src/kernel/stacks/stacks';
import type { HeartbeatState } from '../../src/session/live-session';
import type { TargetItem } from '../../src/views/targets';
import type { Detection } from '../../src/detect/detections';
import type { MetricsWindow } from '../../src/detect/metrics';
import { HEALTH_RING_WINDOWS, healthCells } from '../../src/types/health-protocol';
import { healthWindow, type HealthPanel, type HealthPanelHost } from '../../src/views/health-panel';
import { viewRows, viewRowSelector, webview, workbenchClick, workbenchHover, workbenchScreenshot } from '../harness/workbench';
import { GuestTarget, stopRelays } from './support/guest-target';

const EXTENSION_ID = 'grass.grass-vscode';
/** The extension-host soak: a minute in npm test, ten in npm run test:long (scripts/test.sh sets it). */
const SOAK_SECONDS = Number(process.env.GRASS_EXTENSION_SOAK_SECONDS ?? 60);
/** A folder for heap snapshots of the extension host during the soak, when set. */
const SOAK_SNAPSHOTS = process.env.GRASS_EXTENSION_SOAK_SNAPSHOTS;
const TARGET = 'held';
const run = promisify(execFile);

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** This process's (the extension host's) memory after a full collection. */
function extensionHostMemory(): NodeJS.MemoryUsage {
  collectGarbage();
  return process.memoryUsage();
}

/** Session id and process group of a process, from /proc/PID/stat (fields 5 and 6). */
function sessionAndGroup(pid: number): { pgid: number; sid: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgid: Number(fields[2]), sid: Number(fields[3]) };
}

describe('sessions held by grass monitor; the grass debug adapter', function () {
  this.timeout(60_000);
  let api: GrassExtensionApi;
  let guest: GuestTarget;
  let extensionPath: string;
  let scratch: string;
  let socketPath: string;
  let debugSession: vscode.DebugSession;
  /** The serial console after the panic, and the guest's /proc/kallsyms lines of the functions it names, read before. */
  let panicConsole: string | undefined;
  let kallsymsBeforePanic = '';
  let procModulesBeforePanic = '';
  /** Before the panic, with F4 injected: the pids of the readers in D, and one's /proc/PID/stack. */
  let blockedBeforePanic: { pids: number[]; stack: string[] } | undefined;

  /** The `grass` CLI of this checkout, straight to the agent (no extension, no monitor). */
  async function grass<T>(...args: string[]): Promise<T> {
    const r = await run(process.execPath, [path.join(extensionPath, 'dist/cli.js'), ...args, '--target', guest.target, '--key-file', guest.keyFile, '--json'], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', GRASS_MONITOR_SOCKET: path.join(scratch, 'none.sock') },
      maxBuffer: 1 << 24,
    });
    return JSON.parse(r.stdout) as T;
  }

  async function relayTargets(): Promise<TargetStatus[]> {
    const r = await run(process.execPath, [path.join(extensionPath, 'dist/cli.js'), 'monitor', 'status', '--socket', socketPath, '--json'], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    return (JSON.parse(r.stdout) as { targets: TargetStatus[] }).targets;
  }

  async function dapRead(session: vscode.DebugSession, memoryReference: string, count: number, offset = 0): Promise<{ address: string; data: Buffer; unreadableBytes: number }> {
    const r = (await session.customRequest('readMemory', { memoryReference, count, offset })) as { address: string; data?: string; unreadableBytes?: number };
    return { address: r.address, data: Buffer.from(r.data ?? '', 'base64'), unreadableBytes: r.unreadableBytes ?? 0 };
  }

  async function startDebugging(): Promise<vscode.DebugSession> {
    const started = new Promise<vscode.DebugSession>((resolve) => {
      const sub = vscode.debug.onDidStartDebugSession((s) => {
        if (s.type !== 'grass') return;
        sub.dispose();
        resolve(s);
      });
    });
    assert.equal(await vscode.debug.startDebugging(undefined, { type: 'grass', request: 'attach', name: 'target memory', target: TARGET }), true);
    return started;
  }

  before(async function () {
    this.timeout(300_000);
    const ext = vscode.extensions.getExtension<GrassExtensionApi>(EXTENSION_ID)!;
    api = await ext.activate();
    extensionPath = ext.extensionPath;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-held-'));
    socketPath = path.join(scratch, 'monitor.sock');
    guest = await GuestTarget.start(extensionPath);
    const config = vscode.workspace.getConfiguration('grass');
    await config.update('monitor.socketPath', socketPath, vscode.ConfigurationTarget.Global);
    await config.update('targets', [{ name: TARGET, address: guest.target, options: { heartbeatIntervalMs: 500, requestTimeoutMs: 1500 } }], vscode.ConfigurationTarget.Global);
    await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile));
  });

  after(async function () {
    this.timeout(120_000);
    await vscode.debug.stopDebugging();
    api?.sessions.close();
    stopRelays(api);
    await api?.keys.delete(TARGET);
    const config = vscode.workspace.getConfiguration('grass');
    await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    await config.update('monitor.socketPath', undefined, vscode.ConfigurationTarget.Global);
    await guest?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('connecting starts a detached grass monitor that holds the session; a new extension-side session finds it held', async () => {
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    const first = api.sessions.current!;
    const pid = first.heldBy?.startedPid;
    assert.ok(pid, 'no monitor was started');
    assert.deepEqual(api.relaysStarted, [pid]);
    // Its own session and process group: the extension host's end does not take it along.
    const monitor = sessionAndGroup(pid);
    const host = sessionAndGroup(process.pid);
    assert.equal(monitor.sid, pid, 'the monitor does not lead its own session');
    assert.notEqual(monitor.pgid, host.pgid);
    const [held] = await waitFor('the monitor polling the target', async () => {
      const t = await relayTargets();
      return t.length === 1 && t[0].last.livenessCounter !== undefined ? t : undefined;
    });
    assert.equal(held.address, guest.target);
    assert.equal(held.state, 'up');
    // What the extension host keeps is dropped (as a restart or reload drops it); connecting
    // again attaches to the same monitor and the same held session.
    api.sessions.close();
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    assert.equal(api.sessions.current!.heldBy?.startedPid, undefined, 'a second monitor was started');
    assert.equal((await relayTargets())[0].since, held.since, 'the held session was replaced');
    const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
    assert.equal(state?.kind, 'alive');
  });

  it("a wrong key is refused by the monitor's hold and does not touch the held session", async () => {
    api.sessions.close();
    await api.keys.set(TARGET, '5a'.repeat(32));
    try {
      assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), false);
      assert.equal(api.sessions.current, undefined);
    } finally {
      await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile));
    }
    // The monitor's own heartbeats still pass: its liveness reading moves on.
    const [before] = await relayTargets();
    await waitFor('a newer liveness reading', async () => {
      const [now] = await relayTargets();
      return now.state === 'up' && BigInt(now.last.livenessCounter ?? 0) > BigInt(before.last.livenessCounter ?? 0) ? now : undefined;
    });
    assert.equal(api.relaysStarted.length, 1, 'a second monitor was started');
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
  });

  it('the Targets view shows the monitor holding the target; a target is added and removed by command', async () => {
    const rows = async (): Promise<TargetItem[]> => api.views.targetsProvider.getChildren();
    const held = (await rows()).find((t) => t.kind === 'target' && t.target.name === TARGET);
    assert.ok(held?.kind === 'target' && held.held?.state === 'up', JSON.stringify(held));
    const heldItem = api.views.targetsProvider.getTreeItem(held);
    assert.equal(heldItem.label, `connected · ${TARGET}`);
    assert.match((heldItem.tooltip as vscode.MarkdownString).value, /`shm:\S+`[\s\S]*Held by the monitor since \S+: held by monitor/);
    assert.equal(await vscode.commands.executeCommand('grass.addTarget', 'spare', 'rdma://10.0.0.9:7471'), 'spare');
    const spare = (await rows()).find((t) => t.kind === 'target' && t.target.name === 'spare');
    assert.ok(spare?.kind === 'target' && spare.held === undefined && !spare.connected && !spare.hasKey);
    const spareItem = api.views.targetsProvider.getTreeItem(spare);
    assert.equal(spareItem.label, 'no key · spare');
    assert.match((spareItem.tooltip as vscode.MarkdownString).value, /`rdma:\/\/10\.0\.0\.9:7471`[\s\S]*Not held by a monitor\.[\s\S]*No key stored/);
    // A second target of the same name, or a bad address, is refused and nothing is written.
    assert.equal(await vscode.commands.executeCommand('grass.addTarget', 'spare', 'shm:/x'), undefined);
    assert.equal(await vscode.commands.executeCommand('grass.addTarget', 'other', 'tcp://nowhere'), undefined);
    assert.equal(await vscode.commands.executeCommand('grass.removeTarget', 'spare'), true);
    assert.deepEqual((await rows()).map((t) => t.kind === 'target' && t.target.name), [TARGET]);
  });

  it("Show Stack Trace of init equals the guest's /proc/1/stack", async () => {
    const want = (await guest.request<{ output: string }>({ op: 'exec', command: 'cat /proc/1/stack' })).output
      .split('\n')
      .map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '').trim())
      .filter(Boolean);
    const trace = await vscode.commands.executeCommand<StackTrace>('grass.showStackTrace', 1);
    assert.ok(trace);
    assert.equal(trace.comm, (await guest.request<GroundTruth>({ op: 'truth' })).tasks.find((t) => t.pid === 1)!.comm);
    assert.deepEqual(trace.frames.map(frameText), want);
  });

  it("DAP readMemory through the grass debug adapter equals grass read of the same range (paused guest)", async function () {
    this.timeout(120_000);
    const session = (debugSession = await startDebugging());
    await guest.request({ op: 'pause' });
    try {
      const cli = await grass<{ address: string; hex: string }>('read', 'init_task', '8192');
      const dap = await dapRead(session, 'init_task', 8192);
      assert.equal(dap.address, cli.address);
      assert.equal(dap.unreadableBytes, 0);
      assert.equal(dap.data.toString('hex'), cli.hex);
      // An offset into the same range, and an expression's address from evaluate.
      const part = await dapRead(session, cli.address, 64, 100);
      assert.equal(part.data.toString('hex'), cli.hex.slice(200, 328));
    } finally {
      await guest.request({ op: 'resume' });
    }
    const comm = (await session.customRequest('evaluate', { expression: 'init_task.comm', context: 'repl' })) as { memoryReference: string };
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    const idle = truth.tasks.find((t) => t.pid === 0)?.comm ?? 'swapper/0';
    assert.equal((await dapRead(session, comm.memoryReference, 16)).data.toString('latin1').replace(/\0.*$/s, ''), idle.replace(/\/\d+$/, '/0'));
    // Unreadable memory is reported as such (kernel address 0 maps nothing), not as zeros.
    const none = await dapRead(session, '0x0', 16);
    assert.equal(none.data.length, 0);
    assert.equal(none.unreadableBytes, 16);
    // The agent runs without --allow-writes: writeMemory is refused with the reason.
    await assert.rejects(Promise.resolve(session.customRequest('writeMemory', { memoryReference: comm.memoryReference, data: 'AA==' })), /writes are refused/);
  });

  it('a CPU-high-load fault in the guest appears in the Faults view with a notification; its culprits are marked in the Processes tree', async function () {
    this.timeout(150_000);
    const config = vscode.workspace.getConfiguration('grass');
    await config.update('faults.pollIntervalSeconds', 0.5, vscode.ConfigurationTarget.Global);
    const faults = api.views.faultsProvider;
    const notifiedBefore = faults.notified.length;
    const yesPids = async (): Promise<number[]> => {
      const { output } = await guest.request<{ output: string }>({
        op: 'exec',
        command: 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = yes ] && echo ${p#/proc/}; done; true',
      });
      return output.trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
    };
    // The hang detector's row says what its classes mean, in the words of the header that
    // defines them (hovered while no detection changes the rows under the mouse each poll).
    await vscode.commands.executeCommand('grass.faults.focus');
    await waitFor('the hang row', async () => (await viewRows('Faults')).find((r) => r.startsWith('hang')), 30_000);
    const header = fs.readFileSync(path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'gpu/include/grass/protocol.h'), 'utf8');
    const classes = [...header.matchAll(/^#define GRASS_HANG_(F\d) \d+u\s*\/\*\s*(.*?)\s*\*\//gm)].map((m) => `${m[1]}: ${m[2]}`);
    assert.equal(classes.length, 6, 'protocol.h defines F1-F6');
    const tooltip = (await workbenchHover(`${viewRowSelector('Faults')}:has-text("hang") .label-name`)).join('\n');
    for (const c of classes) assert.ok(tooltip.includes(c), `the hang row's tooltip lacks '${c}': ${tooltip}`);
    // Four per CPU: cpu-high-load asks for twice as many runnable tasks as CPUs (docs/detections.md).
    await guest.request({ op: 'exec', command: 'for i in $(seq $(( $(nproc) * 4 ))); do yes >/dev/null & done' });
    try {
      const detection = await waitFor('cpu-high-load in the Faults view', () => faults.current.find((d) => d.detector === 'cpu-high-load' && d.active), 90_000);
      const pids = await yesPids();
      assert.equal(pids.length, 8, 'the guest has 2 CPUs: 8 yes');
      assert.deepEqual(detection.culprits.map((c) => c.pid).sort((a, b) => a - b), pids, JSON.stringify(detection.culprits));
      // The view: the detection first (after the kernel's own reports, none on this guest), described as detected, its culprits and evidence as children.
      const top = faults.getChildren().find((i) => i.kind === 'detection')!;
      assert.equal(top.kind === 'detection' && top.detection.detector, 'cpu-high-load');
      assert.match(String(faults.getTreeItem(top).description), /^detected · \d+ culprits?$/);
      const details = faults.getChildren(top).map((i) => faults.getTreeItem(i));
      for (const pid of pids) assert.ok(details.some((d) => d.label === `culprit ${pid} yes`), `culprit ${pid} not listed`);
      assert.ok(details.some((d) => d.label === 'since' && /^holds for \d+ s/.test(String(d.description))));
      assert.ok(details.some((d) => d.label === 'least busy CPU %' && Number(d.description) >= 90));
      // As rendered: the evidence in words (no camelCase keys), the culprits' memory in the unit
      // the Processes tree uses (KiB under 1 MiB: a `yes` holds far less than a MiB).
      // (The side bar's other views are collapsed meanwhile: the Faults view then has the room to show every row.)
      await vscode.commands.executeCommand('grass.faults.focus');
      const others = ['Targets', 'Processes', 'Struct Decoder'];
      for (const view of others) await workbenchClick(`.pane-header[aria-label^="${view}"]`);
      let rendered: string[] = [];
      try {
        await workbenchClick(`${viewRowSelector('Faults')}:has-text("cpu-high-load") .monaco-tl-twistie`);
        rendered = await waitFor('the evidence and culprit rows', async () => {
          const rows = await viewRows('Faults');
          return rows.some((r) => r.startsWith('least busy CPU %')) && rows.some((r) => r.startsWith('culprit ')) ? rows : undefined;
        });
      } finally {
        for (const view of others) await workbenchClick(`.pane-header[aria-label^="${view}"]`);
      }
      assert.deepEqual(rendered.filter((r) => /\b[a-z]+[A-Z][a-z]/.test(r)), [], 'camelCase in the rendered rows');
      const culpritRows = rendered.filter((r) => /^culprit \d+ yes/.test(r));
      assert.ok(culpritRows.length > 0, rendered.join(' | '));
      for (const row of culpritRows) assert.match(row, /· \d+ KiB resident$/, row);
      // One notification for it, naming the culprits.
      const notes = faults.notified.slice(notifiedBefore).filter((t) => t.includes('cpu-high-load detected'));
      assert.equal(notes.length, 1, JSON.stringify(faults.notified));
      assert.ok(detection.culprits.slice(0, 3).every((c) => pids.includes(c.pid) && notes[0].includes(`${c.pid} yes`)), notes[0]);
      // The Processes tree marks the culprits, and only them.
      const processes = api.views.processesProvider;
      await processes.refresh();
      for (const pid of pids) {
        const item = await processes.findPid(pid);
        assert.ok(item, `yes ${pid} not in the tree`);
        assert.match(String(processes.getTreeItem(item).description), /^culprit: cpu-high-load · /);
      }
      assert.doesNotMatch(String(processes.getTreeItem((await processes.findPid(1))!).description), /culprit/);
    } finally {
      await guest.request({ op: 'exec', command: `kill ${(await yesPids()).join(' ')} 2>/dev/null; true` });
      await config.update('faults.pollIntervalSeconds', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('the Target Health panel plots the last windows with the detectors\' thresholds; its last values equal grass metrics --json of the same window; a cpu-high-load detection is marked at its time', async function () {
    this.timeout(150_000);
    const { host, panel } = await vscode.commands.executeCommand<{ host: HealthPanelHost; panel: HealthPanel }>('grass.showTargetHealth');
    const pageText = async (selector: string): Promise<string> => (await webview.texts(selector)).join('\n');
    const yesPids = async (): Promise<number[]> => {
      const { output } = await guest.request<{ output: string }>({ op: 'exec', command: 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = yes ] && echo ${p#/proc/}; done; true' });
      return output.trim().split(/\s+/).filter(Boolean).map(Number);
    };
    try {
      assert.equal((await host.ping(15_000)).heading, 'Target Health');
      await waitFor('three windows on the page', async () => /: ([3-9]|\d{2,}) windows, the last ending at/.test(await pageText('#status')), 30_000);
      // The detectors' thresholds for this guest (2 CPUs, its MemTotal from grass metrics).
      const first = await grass<MetricsWindow>('metrics');
      const cpus = first.cpus.length;
      assert.match(await pageText('#plot-cpu0 .health-lines'), /cpu-high-load: every CPU busy ≥ 90 % \(90\.0 %\)/);
      assert.equal(await pageText('#plot-runBlk .health-lines'), `dashed: cpu-high-load: run ≥ 2 × ${cpus} CPUs (${2 * cpus}); F4: blk ≥ max(4, CPUs) (${Math.max(4, cpus)})`);
      const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
      assert.equal(await pageText('#plot-memFree .health-lines'), `dashed: memory-leak: free < 30 % of MemTotal (${mib(first.memTotalBytes * 0.3)}); F6: free < 10 % of MemTotal (${mib(first.memTotalBytes * 0.1)})`);
      assert.equal(await pageText('#plot-pswpout .health-lines'), `dashed: F6: pswpout ≥ MemTotal/512 pages/s (${Math.floor(first.memTotalBytes / first.pageBytes / 512).toFixed(1)})`);
      // The same window, read by the CLI straight from the agent: a row of the page's table, and,
      // while it is the newest, every plot's readout.
      for (let attempt = 0; ; attempt++) {
        const m = await grass<MetricsWindow>('metrics');
        const expected = healthCells(healthWindow(m));
        const row = await waitFor(`the window ending at ${expected[0]} in the table`, async () => {
          const rows = await webview.texts('#recent tr');
          return rows.map((r) => r.split('\t').map((c) => c.trim())).find((cells) => cells[0] === expected[0]);
        }, 10_000);
        assert.deepEqual(row, expected, `the page's row of window ${expected[0]} vs grass metrics --json`);
        const [status, readouts] = await Promise.all([pageText('#status'), webview.texts('.health-readout')]);
        if (!status.includes(`the last ending at ${expected[0]} s`)) {
          assert.ok(attempt < 20, `never caught the page showing the CLI's window as its last: ${status}`);
          continue;
        }
        const hw = healthWindow(m);
        const pct = (x: number): string => `${x.toFixed(1)} %`;
        assert.deepEqual(readouts.map((r) => r.trim()), [
          ...hw.cpus.map((c) => `usr ${pct(c.usr)} · sys ${pct(c.sys)} · iowait ${pct(c.iowait)} · busy ${pct(c.busy)}`),
          `run ${m.run} · blk ${m.blk}`,
          `cs/s ${m.contextSwitchesPerSecond.toFixed(0)}`,
          `pswpout/s ${m.pswpoutPerSecond.toFixed(1)}`,
          `memfree ${mib(m.memFreeBytes)}`,
          `util ${hw.util === null ? 'none' : pct(hw.util)}`,
        ]);
        break;
      }
      assert.ok(panel.ring.length >= 3 && panel.ring.length <= HEALTH_RING_WINDOWS);
      // uPlot drew under the strict CSP: nothing refused (the page says what would be).
      assert.equal(await pageText('#csp'), '');
      // A detection fires while the panel is open: it is marked at the time grass detect gives.
      const openedAt = panel.ring[0].end;
      await guest.request({ op: 'exec', command: 'for i in $(seq $(( $(nproc) * 4 ))); do yes >/dev/null & done' });
      const detected = await waitFor('cpu-high-load detected (grass detect --json)', async () => {
        const { detections } = await grass<{ detections: Detection[] }>('detect');
        const d = detections.find((x) => x.detector === 'cpu-high-load');
        return d?.detectedAt != null && d.detectedAt > openedAt ? d.detectedAt : undefined;
      }, 90_000);
      await waitFor('the mark on the page', async () => (await pageText('#marks')).includes(`cpu-high-load detected at ${detected.toFixed(3)} s`), 10_000);
      // Screenshots of the panel in the three kinds of theme (test-results/, git-ignored).
      const shots = path.join(extensionPath, 'test-results/extension');
      fs.mkdirSync(shots, { recursive: true });
      const config = vscode.workspace.getConfiguration('workbench');
      try {
        for (const [kind, theme] of [['dark', 'Default Dark Modern'], ['light', 'Default Light Modern'], ['high-contrast', 'Default High Contrast']]) {
          await config.update('colorTheme', theme, vscode.ConfigurationTarget.Global);
          await new Promise((r) => setTimeout(r, 1500));
          const file = path.join(shots, `health-${kind}.png`);
          await workbenchScreenshot(file);
          assert.equal(fs.readFileSync(file).subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file}: ${fs.readFileSync(file, 'utf8').slice(0, 200)}`);
          console.log(`health panel screenshot: ${file}`);
        }
      } finally {
        await config.update('colorTheme', undefined, vscode.ConfigurationTarget.Global);
      }
    } finally {
      await guest.request({ op: 'exec', command: `kill ${(await yesPids()).join(' ')} 2>/dev/null; true` });
      host.dispose();
    }
  });

  it(`soak in the extension host: ${SOAK_SECONDS} s of heartbeats, process lists and kernel reads through the held session; nothing lost, no memory growth`, async function () {
    this.timeout((SOAK_SECONDS + 180) * 1000);
    const session = api.sessions.current!;
    assert.ok(session.heldBy, 'the session is held by the monitor');
    const model = await session.model();
    // linux_banner does not change while the kernel runs: every read of it has one right answer.
    const banner = model.symbols.address('linux_banner');
    const expected = Buffer.from(await session.client.read({ kind: 'kernel' }, banner, 4096));
    const processes = api.views.processesProvider;
    const lost: string[] = [];
    const wrong: string[] = [];
    const counts = { heartbeats: 0, lists: 0, reads: 0 };
    const load = async (seconds: number): Promise<void> => {
      const end = Date.now() + seconds * 1000;
      await Promise.all([
        (async () => {
          while (Date.now() < end) {
            const state = await session.heartbeat();
            if (state.kind !== 'alive') lost.push(`heartbeat: ${JSON.stringify(state)}`);
            counts.heartbeats++;
          }
        })(),
        (async () => {
          while (Date.now() < end) {
            await processes.refresh();
            if (processes.error) lost.push(`process list: ${processes.error}`);
            else if (!(await processes.findPid(1))) wrong.push('a process list without pid 1');
            counts.lists++;
          }
        })(),
        (async () => {
          while (Date.now() < end) {
            const length = 1 + ((counts.reads * 977) % 4096);
            try {
              const got = Buffer.from(await session.client.read({ kind: 'kernel' }, banner, length));
              if (!got.equals(expected.subarray(0, length))) wrong.push(`read of ${length} bytes at linux_banner`);
            } catch (err) {
              lost.push(`read: ${(err as Error).message}`);
            }
            counts.reads++;
          }
        })(),
      ]);
    };
    await load(5); // warm-up: caches and pools in place before memory is measured
    const before = extensionHostMemory();
    const started = { ...counts };
    // RSS and V8's heap at every tenth of the soak: growth that keeps on is a leak, a rise that levels off is not.
    const rssSeries: number[] = [];
    const heapSeries: number[] = [];
    for (let k = 0; k < 10; k++) {
      await load(SOAK_SECONDS / 10);
      rssSeries.push(process.memoryUsage().rss);
      heapSeries.push(extensionHostMemory().heapUsed);
      // For finding what grows: snapshots after the first and the last tenth (test/long/heap-diff.ts compares them).
      if (SOAK_SNAPSHOTS && (k === 0 || k === 9)) v8.writeHeapSnapshot(path.join(SOAK_SNAPSHOTS, `soak-${k + 1}.heapsnapshot`));
    }
    const after = extensionHostMemory();
    const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
    console.log(`extension-host soak: ${counts.heartbeats - started.heartbeats} heartbeats, ${counts.lists - started.lists} process lists, ` +
      `${counts.reads - started.reads} reads in ${SOAK_SECONDS} s; lost ${lost.length}, wrong ${wrong.length}; ` +
      `heap ${kib(before.heapUsed)} -> ${kib(after.heapUsed)}, array buffers ${kib(before.arrayBuffers)} -> ${kib(after.arrayBuffers)}, ` +
      `V8 heap total ${kib(before.heapTotal)} -> ${kib(after.heapTotal)}, external ${kib(before.external)} -> ${kib(after.external)}, ` +
      `RSS ${kib(before.rss)} -> ${kib(after.rss)} (every tenth: ${rssSeries.map((r) => Math.round(r / 1048576)).join(', ')} MiB; heap after a collection at every tenth: ${heapSeries.map((h) => Math.round(h / 1024)).join(', ')} KiB; pid ${process.pid})`);
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} lost`);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} wrong`);
    assert.ok(counts.heartbeats - started.heartbeats > SOAK_SECONDS && counts.lists > started.lists && counts.reads > started.reads, JSON.stringify(counts));
    // The extension host is shared with VS Code's own work, so the bounds are on what a leak of
    // ours grows: the JS heap after a full collection and the ArrayBuffers alive.
    assert.ok(after.heapUsed - before.heapUsed <= 8 << 20, `extension host heap grew ${kib(after.heapUsed - before.heapUsed)}`);
    assert.ok(after.arrayBuffers - before.arrayBuffers <= 8 << 20, `extension host array buffers grew ${kib(after.arrayBuffers - before.arrayBuffers)}`);
  });

  it('after the guest panics, the held session, the debug adapter and a fresh extension-side session still answer', async function () {
    this.timeout(150_000);
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    // F4 first: 32 readers of /dev/grass_f4 wait in D for ever (the Blocked Tasks test reads them after the panic).
    await guest.request({ op: 'fault', kind: 'f4' });
    const exec = async (command: string): Promise<string> => (await guest.request<{ output: string }>({ op: 'exec', command })).output;
    const readersInD = "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = cat ] && grep -q '^State:.D' $p/status 2>/dev/null && echo ${p#/proc/}; done; true";
    const pids = await waitFor('32 readers in D', async () => {
      const found = (await exec(readersInD)).trim().split(/\s+/).filter(Boolean).map(Number);
      return found.length >= 32 ? found.sort((a, b) => a - b) : undefined;
    }, 60_000);
    blockedBeforePanic = { pids, stack: (await exec(`cat /proc/${pids[0]}/stack`)).trim().split('\n').map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '')) };
    // The Faults view sees the F4 before the panic stops the CPUs (the agent then says F1).
    const faults = api.views.faultsProvider;
    await waitFor('F4 in the Faults view', async () => {
      await faults.poll();
      return faults.current.find((d) => d.active && d.hangClass === 'F4');
    }, 60_000);
    kallsymsBeforePanic = await exec("grep -E ' (sysrq_handle_crash|write_sysrq_trigger)$' /proc/kallsyms");
    procModulesBeforePanic = (await guest.request<{ output: string }>({ op: 'exec', command: 'cat /proc/modules' })).output;
    const { console } = await guest.request<{ console: string }>({ op: 'panic' }, 90_000);
    assert.match(console, /Kernel panic - not syncing/);
    panicConsole = console;
    const session = debugSession;
    const cli = await grass<{ hex: string }>('read', 'init_task', '4096');
    assert.equal((await dapRead(session, 'init_task', 4096)).data.toString('hex'), cli.hex);
    // The extension host's side starts over (as after a restart); the monitor still holds the target.
    api.sessions.close();
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    assert.equal(api.sessions.current!.heldBy?.startedPid, undefined);
    assert.equal((await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat'))?.kind, 'alive');
    const provider = api.views.processesProvider;
    await provider.refresh();
    assert.equal(provider.error, undefined);
    for (const pid of [1, 2]) assert.equal((await provider.findPid(pid))?.task.comm, truth.tasks.find((t) => t.pid === pid)!.comm);
    const [held] = await relayTargets();
    assert.equal(held.state, 'up');
  });

  it('after the panic, the Faults view leads with the panic report and its call trace and says panicked, not F1, with the F4 that held before it; Targets says panicked; the task reveals in Processes; a frame opens the memory inspector at its return address', async function () {
    this.timeout(120_000);
    assert.ok(panicConsole, 'the guest panicked in the test before');
    // The kernel's own words on its console: the panic, who, its call trace (frames as printed).
    const lines = panicConsole.replace(/\r/g, '').split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ''));
    const start = lines.findIndex((l) => l.startsWith('Kernel panic - not syncing: sysrq triggered crash'));
    const end = lines.findIndex((l, i) => i > start && l === ' </TASK>');
    assert.ok(start >= 0 && end > start, 'the panic and its call trace are on the console');
    const who = /^CPU: (\d+) PID: (\d+) Comm: (\S+)/.exec(lines.slice(start, end).find((l) => l.startsWith('CPU: ')) ?? '')!;
    const [cpu, pid, comm] = [Number(who[1]), Number(who[2]), who[3]];
    const frames = lines.slice(start, end).map((l) => l.trim()).filter((l) => /^(\?\s+)?\S+\+0x[0-9a-f]+\/0x[0-9a-f]+( \[\S+\])?$/.test(l));
    const faults = api.views.faultsProvider;
    await vscode.commands.executeCommand('grass.faults.focus');
    // The agent calls the paused guest's CPUs F1 within a few windows; the view must not.
    const hang = await waitFor('the hang detection explained by the panic', async () => {
      await faults.poll();
      return faults.current.find((d) => d.detector === 'hang' && d.superseded);
    }, 60_000);
    assert.equal(hang.superseded?.hangClass, 'F1');
    assert.equal(hang.active, false);
    assert.deepEqual(faults.current.filter((d) => d.active), []);
    const top = faults.getChildren();
    assert.equal(top[0].kind, 'report');
    const report = faults.getTreeItem(top[0]);
    assert.equal(report.label, 'panicked: Kernel panic - not syncing: sysrq triggered crash');
    assert.match(String(report.description), new RegExp(`^CPU ${cpu} · ${comm} \\(${pid}\\) · \\[\\s*\\d+\\.\\d{6}\\]$`));
    const hangItem = top.find((i) => i.kind === 'detection' && !i.beforePanic && i.detection.detector === 'hang')!;
    assert.equal(faults.getTreeItem(hangItem).description, 'not F1: the kernel panicked');
    const children = faults.getChildren(top[0]);
    assert.deepEqual(children.flatMap((c) => (c.kind === 'frame' ? [c.text] : [])), frames);
    // What held before the panic (kept across the reconnect of the test before): F4, its culprits the guest's D-state readers.
    const before = top.find((i) => i.kind === 'detection' && i.beforePanic);
    assert.ok(before?.kind === 'detection', top.map((i) => i.id).join(' '));
    assert.equal(faults.getTreeItem(before).label, 'hang F4');
    assert.match(String(faults.getTreeItem(before).description), /^before the panic · \d+ culprits?$/);
    assert.ok(before.detection.culprits.length > 0);
    for (const c of before.detection.culprits) assert.ok(c.comm === 'cat' && blockedBeforePanic!.pids.includes(c.pid), `${c.pid} ${c.comm}`);
    const culpritRow = faults.getChildren(before).find((c) => c.kind === 'detail' && c.culprit)!;
    const culpritClick = faults.getTreeItem(culpritRow).command!;
    const culpritItem = await vscode.commands.executeCommand<{ task: { pid: number } }>(culpritClick.command, ...(culpritClick.arguments ?? []));
    assert.equal(culpritItem.task.pid, culpritRow.kind === 'detail' ? culpritRow.culprit?.pid : -1);
    // As rendered: the report first, the hang row not called F1.
    const rows = await waitFor('the report row', async () => {
      const r = await viewRows('Faults');
      return r[0]?.startsWith('panicked: Kernel panic - not syncing: sysrq triggered crash') ? r : undefined;
    });
    assert.ok(!rows.some((r) => /^hang F1/.test(r)), rows.join(' | '));
    // Targets: the connected target's row says so.
    const target = (await api.views.targetsProvider.getChildren()).find((t) => t.kind === 'target' && t.target.name === TARGET)!;
    assert.match(String(api.views.targetsProvider.getTreeItem(target).label), new RegExp(`^panicked · ${TARGET}$`));
    // The task row is a link to Processes.
    const taskRow = children.find((c) => c.kind === 'detail' && c.pid === pid)!;
    const reveal = faults.getTreeItem(taskRow).command!;
    const revealed = await vscode.commands.executeCommand<{ task: { pid: number; comm: string } }>(reveal.command, ...(reveal.arguments ?? []));
    assert.deepEqual({ pid: revealed.task.pid, comm: revealed.task.comm }, { pid, comm });
    // A frame opens the inspector at its return address: the function's address in the guest's
    // own /proc/kallsyms plus the printed offset.
    const frameRow = children.find((c) => c.kind === 'frame' && c.text.startsWith('sysrq_handle_crash+'))!;
    const offset = BigInt(/\+(0x[0-9a-f]+)\//.exec(frameRow.kind === 'frame' ? frameRow.text : '')![1]);
    const base = BigInt(`0x${/^([0-9a-f]+) \S+ sysrq_handle_crash$/m.exec(kallsymsBeforePanic)![1]}`);
    const open = faults.getTreeItem(frameRow).command!;
    const panel = await vscode.commands.executeCommand<{ dispose(): void }>(open.command, ...(open.arguments ?? []));
    try {
      const want = `0x${(base + offset).toString(16)}`;
      await waitFor(`the inspector at ${want}`, async () => ((await webview.texts('#selection')).join().startsWith(`${want} = `) ? true : undefined), 20_000);
    } finally {
      panel?.dispose();
    }
  });

  it('Go to Last Panic/Oops opens the kernel log document on the panic line, as the console printed it', async () => {
    assert.ok(panicConsole, 'the guest panicked in a test before');
    const printed = /^\[\s*(\d+\.\d{6})\] Kernel panic - not syncing: sysrq triggered crash\r?$/m.exec(panicConsole)!;
    const pid = Number(/^\[[\s\d.]+\] CPU: \d+ PID: (\d+) /m.exec(panicConsole)![1]);
    const line = await vscode.commands.executeCommand<number | undefined>('grass.kernelLog.goToLastPanic');
    assert.equal(typeof line, 'number');
    const editor = vscode.window.activeTextEditor!;
    assert.equal(editor.document.uri.scheme, 'grass-log');
    assert.equal(editor.selection.start.line, line);
    // The record as dmesg -r prints it: level 0 (emerg), the console's timestamp, the panicking task as its caller.
    const text = editor.document.lineAt(line!).text;
    assert.match(text, new RegExp(`^<0>\\[\\s*${printed[1].replace('.', '\\.')}\\] \\[\\s*T${pid}\\] Kernel panic - not syncing: sysrq triggered crash$`), text);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', editor.document.uri);
    assert.ok(lenses.some((l) => l.command?.command === 'grass.kernelLog.goToLastPanic' && l.command.title === 'Go to last panic/oops'), JSON.stringify(lenses.map((l) => l.command?.title)));
  });

  it("the Modules view lists the guest's /proc/modules (read before the panic); a row decodes its struct module", async function () {
    this.timeout(60_000);
    const truth = procModulesBeforePanic.trim().split('\n').map((line) => {
      const [name, size, refcount, usedBy, state, address] = line.trim().split(/\s+/);
      return { name, size: Number(size), refcount: Number(refcount), usedBy: usedBy === '-' ? [] : usedBy.split(',').filter(Boolean), state, address: BigInt(address) };
    });
    assert.ok(truth.length > 0, 'the guest has modules');
    const provider = api.views.modulesProvider;
    await vscode.commands.executeCommand('grass.modules.focus');
    const modules = (await provider.list.current()) ?? [];
    assert.deepEqual(modules.map((m) => ({ name: m.name, size: m.size, refcount: m.refcount, usedBy: m.usedBy, state: m.state, address: m.address })), truth);
    // As rendered: the rows the side bar has room for, in the kernel's order (/proc/modules').
    const rows = await waitFor('the module rows', async () => {
      const r = await viewRows('Modules');
      return r.length > 0 ? r : undefined;
    }, 20_000);
    // (A row's text is its label, then its description: the size first.)
    assert.deepEqual(rows.map((r, i) => r.startsWith(truth[i]?.name ?? '\0') && /^\d/.test(r.slice(truth[i].name.length))), rows.map(() => true), rows.join(' | '));
    const [first] = provider.getChildren();
    assert.ok(first.kind === 'module');
    assert.match(String(provider.getTreeItem(first).description), new RegExp(`· ${truth[0].state} · .*0x${truth[0].address.toString(16)}$`));
    const decoded = await vscode.commands.executeCommand<{ type: string; children?: { name: string; value?: unknown }[] }>('grass.module.decodeStruct', first);
    assert.equal(decoded?.type, 'struct module');
    assert.equal(decoded?.children?.find((c) => c.name === 'name')?.value, truth[0].name);
  });

  it('the Blocked Tasks view groups the F4 readers (in D before the panic) by their stack, which equals /proc/PID/stack; a frame opens the inspector, a task reveals in Processes', async function () {
    this.timeout(90_000);
    assert.ok(blockedBeforePanic, 'the readers were in D before the panic');
    const provider = api.views.blockedTasksProvider;
    await vscode.commands.executeCommand('grass.blockedTasks.focus');
    const groups = (await provider.groups.current()) ?? [];
    assert.equal(provider.groups.error, undefined);
    const [top] = provider.getChildren();
    assert.ok(top.kind === 'group', top.kind);
    assert.deepEqual(top.group.tasks.map((t) => t.pid).sort((a, b) => a - b), blockedBeforePanic.pids);
    assert.ok(top.group.tasks.every((t) => t.comm === 'cat'));
    assert.equal(groups[0], top.group);
    assert.equal(provider.getTreeItem(top).label, `${blockedBeforePanic.pids.length} × cat`);
    const children = provider.getChildren(top);
    const frames = children.flatMap((c) => (c.kind === 'frame' ? [String(provider.getTreeItem(c).label)] : []));
    assert.deepEqual(frames, blockedBeforePanic.stack);
    assert.ok(frames.some((f) => /^grass_f4_read\+0x[0-9a-f]+\/0x[0-9a-f]+ \[grass_f4\]$/.test(f)), frames.join(' | '));
    // As rendered: the group's row, with its count.
    await waitFor('the group row', async () => ((await viewRows('Blocked Tasks')).some((r) => r.startsWith(`${blockedBeforePanic!.pids.length} × cat`)) ? true : undefined), 20_000);
    const task = children.find((c) => c.kind === 'task')!;
    const reveal = provider.getTreeItem(task).command!;
    const revealed = await vscode.commands.executeCommand<{ task: { pid: number } }>(reveal.command, ...(reveal.arguments ?? []));
    assert.equal(revealed.task.pid, task.kind === 'task' ? task.pid : -1);
    const frame = children.find((c) => c.kind === 'frame' && c.frame.module === 'grass_f4')!;
    const open = provider.getTreeItem(frame).command!;
    const panel = await vscode.commands.executeCommand<{ dispose(): void }>(open.command, ...(open.arguments ?? []));
    try {
      const want = frame.kind === 'frame' ? `0x${frame.frame.address.toString(16)}` : '';
      await waitFor(`the inspector at ${want}`, async () => ((await webview.texts('#selection')).join().startsWith(`${want} = `) ? true : undefined), 20_000);
    } finally {
      panel?.dispose();
    }
  });

  it("expanding a task in Processes shows its kernel stack: a blocked reader's equals its /proc/PID/stack, the panicking task's the functions of the console's panic call trace", async function () {
    this.timeout(90_000);
    assert.ok(blockedBeforePanic && panicConsole, 'F4 and the panic came before');
    const provider = api.views.processesProvider;
    await provider.refresh();
    const stackOf = async (pid: number): Promise<string[]> => {
      const item = (await provider.findPid(pid))!;
      const [stack] = await provider.getChildren(item);
      assert.equal(stack.kind, 'stack');
      return (await provider.getChildren(stack)).flatMap((c) => (c.kind === 'frame' ? [String(provider.getTreeItem(c).label)] : []));
    };
    assert.deepEqual(await stackOf(blockedBeforePanic.pids[0]), blockedBeforePanic.stack);
    // The panicking task, on its CPU: its inferred frames from panic() down are the functions of
    // the call trace the kernel printed (dump_stack_lvl, which printed it, has returned; ? frames are not live).
    const pid = Number(/^\[[\s\d.]+\] CPU: \d+ PID: (\d+) /m.exec(panicConsole)![1]);
    const fn = (frame: string): string => frame.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/, '');
    const lines = panicConsole.replace(/\r/g, '').split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ''));
    const start = lines.findIndex((l) => l.startsWith('Kernel panic - not syncing: sysrq triggered crash'));
    const end = lines.findIndex((l, i) => i > start && l === ' </TASK>');
    const printed = lines.slice(start, end).map((l) => l.trim()).filter((l) => /^\S+\+0x[0-9a-f]+\/0x[0-9a-f]+( \[\S+\])?$/.test(l)).map(fn);
    const names = (await stackOf(pid)).map(fn);
    assert.ok(names.includes('panic'), names.join(' < '));
    assert.deepEqual(names.slice(names.indexOf('panic')), printed.slice(printed.indexOf('panic')), `${names.join(' < ')} vs ${printed.join(' < ')}`);
  });

  it('Stop Monitor ends the monitor process and its sessions', async () => {
    const [pid] = api.relaysStarted;
    assert.equal(await vscode.commands.executeCommand('grass.stopMonitor', true), true);
    assert.equal(api.sessions.current, undefined);
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(`monitor ${pid} to exit`, () => !alive() || undefined);
    const row = (await api.views.targetsProvider.getChildren()).find((t) => t.kind === 'target' && t.target.name === TARGET);
    assert.ok(row?.kind === 'target' && row.held === undefined);
  });
});
