// The extension connected to a real target: a testbed guest with an agent (one for this file).
// Every result the views and commands show is checked against the guest's own view of itself
// (/proc through the serial console, /dev/kmsg, /proc/version), never against the code under test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GroundTruth } from '../../testbed';
import type { GrassExtensionApi } from '../../src/extension';
import type { TaskRecord } from '../../src/types/task-record';
import type { ValueNode } from '../../src/types/decoded-value';
import type { HeartbeatState } from '../../src/session/live-session';
import type { StackTrace } from '../../src/kernel/stacks/stacks';
import type { ProcessItem } from '../../src/views/processes';
import type { DecodedItem } from '../../src/views/struct-decoder';
import { assertTasksMatchTruth, type PsTask } from '../integration/agent-harness';
import { notificationTexts, targetRow, targetTooltip, viewDescription, viewRows, viewRowSelector, webview, workbenchClick, workbenchTexts } from '../harness/workbench';
import { GuestTarget, stopRelays } from './support/guest-target';

const EXTENSION_ID = 'grass.grass-vscode';
const TARGET = 'testbed';

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function psTask(t: TaskRecord): PsTask {
  return { pid: t.pid, tgid: t.tgid, ppid: t.ppid, comm: t.comm, state: t.state, cpu: t.cpu, utimeNs: Number(t.utimeNs), stimeNs: Number(t.stimeNs), rssBytes: Number(t.rssBytes), threads: t.threads };
}

/** A heartbeat state for an assertion message (its liveness counter is a bigint). */
function show(state: HeartbeatState | undefined): string {
  return JSON.stringify(state, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function member(node: ValueNode, name: string): ValueNode {
  const m = node.children?.find((c) => c.name === name);
  assert.ok(m, `${node.name} has no member ${name}`);
  return m;
}

/** The lines the active editor shows, as rendered (spaces as typed, not as non-breaking ones). */
async function editorLines(): Promise<string[]> {
  return (await workbenchTexts('.editor-instance .monaco-editor .view-lines .view-line')).map((l) => l.replace(/\u00a0/g, ' ').trimEnd());
}

/** Describe Target's rendered summary, label → value. */
async function describedSummary(): Promise<Map<string, string>> {
  assert.ok(await vscode.commands.executeCommand<string>('grass.describeTarget'));
  const lines = await waitFor('the summary document', async () => {
    const shown = await editorLines();
    return shown.some((l) => l.startsWith('monitor ')) ? shown : undefined;
  });
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  return new Map(lines.map((l) => /^(\S+(?: \S+)?)\s{2,}(.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => [m[1], m[2]]));
}

describe('connected to a testbed guest', function () {
  this.timeout(60_000);
  let api: GrassExtensionApi;
  let guest: GuestTarget;
  let scratch: string | undefined;

  before(async function () {
    this.timeout(300_000);
    const ext = vscode.extensions.getExtension<GrassExtensionApi>(EXTENSION_ID)!;
    api = await ext.activate();
    guest = await GuestTarget.start(ext.extensionPath);
    // The session is held by a grass monitor the extension starts: one of this file's own.
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-target-test-'));
    await vscode.workspace.getConfiguration('grass').update('monitor.socketPath', path.join(scratch, 'monitor.sock'), vscode.ConfigurationTarget.Global);
    await vscode.workspace
      .getConfiguration('grass')
      .update('targets', [{ name: TARGET, address: guest.target, options: { heartbeatIntervalMs: 500, requestTimeoutMs: 1500 } }], vscode.ConfigurationTarget.Global);
    // The key as a user sets it: from the agent's key file, into secret storage.
    await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile));
    assert.equal(await api.keys.has(TARGET), true, 'the key file was not stored');
  });

  after(async function () {
    this.timeout(120_000);
    api?.sessions.close();
    await api?.keys.delete(TARGET);
    await vscode.workspace.getConfiguration('grass').update('targets', undefined, vscode.ConfigurationTarget.Global);
    await vscode.workspace.getConfiguration('grass').update('monitor.socketPath', undefined, vscode.ConfigurationTarget.Global);
    stopRelays(api);
    await guest?.stop();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('a key is checked against the agent when it is set: a wrong one is refused by name and not stored, with the two ways to give another', async () => {
    const wrongKeyFile = path.join(scratch!, 'wrong.key');
    fs.writeFileSync(wrongKeyFile, `${'5a'.repeat(32)}\n`, { mode: 0o600 });
    const agentKey = fs.readFileSync(guest.keyFile, 'utf8').trim();
    await vscode.commands.executeCommand('notifications.clearAll');
    assert.equal(await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(wrongKeyFile)), false);
    // The warning as shown: the agent's cause first, the target by name, and its two buttons.
    const message = await waitFor('the refused-key warning', async () => (await notificationTexts('message')).find((t) => t.includes('refused this key')));
    assert.equal(message, `GRASS: bad authenticator — the agent of '${TARGET}' refused this key; it was not stored.`);
    const buttons = await notificationTexts('buttons');
    assert.ok(buttons.includes('Enter Key…') && buttons.includes('From Key File…'), buttons.join(' | '));
    assert.equal(Buffer.from((await api.keys.get(TARGET))!).toString('hex'), agentKey, 'the refused key replaced the stored one');
    // The agent's own key: checked (a heartbeat signed with it answered) and said so.
    await vscode.commands.executeCommand('notifications.clearAll');
    assert.equal(await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile)), true);
    await waitFor('the key-checked message', async () => (await notificationTexts('message')).find((t) => t === `GRASS: key for '${TARGET}' checked: its agent answered.`));
    await vscode.commands.executeCommand('notifications.clearAll');
  });

  it('connecting with a key the agent does not share fails plainly and opens no session', async () => {
    await api.keys.set(TARGET, '5a'.repeat(32));
    try {
      await vscode.commands.executeCommand('notifications.clearAll');
      assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), false);
      assert.equal(api.sessions.current, undefined);
      // The toast as a person sees it: the cause first (a toast is cut at its edge), the address last.
      const message = await waitFor('the error toast', async () =>
        (await notificationTexts('message')).find((t) => t.includes(`cannot connect to '${TARGET}'`)),
      );
      assert.match(message, /^GRASS: bad authenticator/);
      assert.ok(message.indexOf('bad authenticator') < message.indexOf(guest.target), message);
      // The fix one click away: the same buttons as a missing key's warning.
      const buttons = await notificationTexts('buttons');
      assert.ok(buttons.includes('Enter Key…') && buttons.includes('From Key File…'), buttons.join(' | '));
      // The Targets row says the key was refused; its tooltip says why.
      await vscode.commands.executeCommand('grass.targets.focus');
      await waitFor('the key-refused row', async () => targetRow(await viewRows('Targets'), TARGET)?.startsWith('key refused'));
      assert.match(await targetTooltip(TARGET), /Last connect failed at .+: bad authenticator/);
      await vscode.commands.executeCommand('notifications.clearAll');
    } finally {
      await vscode.commands.executeCommand('grass.setTargetKeyFromFile', TARGET, vscode.Uri.file(guest.keyFile));
    }
  });

  it('connects; the Targets view, the status bar and the heartbeat command show the live session', async () => {
    assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
    assert.equal(api.sessions.current?.target.name, TARGET);
    const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
    assert.equal(state?.kind, 'alive', show(state));
    if (state?.kind !== 'alive') return;
    assert.ok(state.roundTripUs > 0 && state.roundTripUs < 1_500_000, `round trip ${state.roundTripUs} µs`);
    // The polled heartbeat reaches the status bar, and the liveness counter moves (the agent is alive).
    const text = await waitFor('the status bar heartbeat', () => (/^\$\(pulse\) testbed: \d+ µs$/.test(api.views.heartbeat.item.text) ? api.views.heartbeat.item.text : undefined));
    assert.match(text, /µs/);
    const later = await waitFor('a later liveness counter', async () => {
      const s = await api.sessions.current!.heartbeat();
      return s.kind === 'alive' && s.livenessCounter > state.livenessCounter ? s : undefined;
    });
    assert.equal(later.kind, 'alive');
    await vscode.commands.executeCommand('grass.targets.focus');
    await waitFor('the connected row', async () => targetRow(await viewRows('Targets'), TARGET)?.startsWith('connected'));
  });

  it('Describe Target shows a summary as the guest knows itself: release, KASLR offset, uptime, taint, not panicked, CPUs, memory', async function () {
    this.timeout(60_000);
    const exec = async (command: string): Promise<string> => (await guest.request<{ output: string }>({ op: 'exec', command })).output.trim();
    const release = await exec('uname -r');
    const before = Number((await exec('cat /proc/uptime')).split(' ')[0]);
    const summary = await describedSummary();
    const after = Number((await exec('cat /proc/uptime')).split(' ')[0]);
    assert.equal(summary.get('release'), release);
    // KASLR: where the guest's kallsyms put _text, less where vmlinux's ELF links it (its first LOAD segment).
    const text = BigInt(`0x${(await exec('grep " _text$" /proc/kallsyms')).split(/\s+/)[0]}`);
    const elf = execFileSync('readelf', ['-lW', path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, '.cache/testbed/kernels', release, 'vmlinux')], { encoding: 'utf8' });
    const linked = BigInt(/^\s*LOAD\s+\S+\s+(0x[0-9a-f]+)/m.exec(elf)![1]);
    assert.equal(summary.get('KASLR offset')?.split(' ')[0], `0x${(text - linked).toString(16)}`);
    const uptime = Number(/^(\d+) s \(/.exec(summary.get('uptime') ?? '')?.[1]);
    assert.ok(uptime >= Math.floor(before) - 1 && uptime <= after + 1, `uptime shown ${summary.get('uptime')}; the guest's /proc/uptime read ${before} and ${after}`);
    const tainted = BigInt(await exec('cat /proc/sys/kernel/tainted'));
    assert.equal(/\((\d+)\)$/.exec(summary.get('tainted') ?? '')?.[1], String(tainted), summary.get('tainted'));
    assert.equal(summary.get('panicked'), 'no');
    const possible = (await exec('cat /sys/devices/system/cpu/possible')).split(',').reduce((n, r) => n + (r.includes('-') ? Number(r.split('-')[1]) - Number(r.split('-')[0]) + 1 : 1), 0);
    assert.equal(summary.get('CPUs'), String(possible));
    // totalram_pages is what /proc/meminfo's MemTotal counts.
    const memTotalKiB = Number(/MemTotal:\s+(\d+) kB/.exec(await exec('cat /proc/meminfo'))![1]);
    assert.match(summary.get('memory') ?? '', new RegExp(`, ${(memTotalKiB / 1024).toFixed(0)} MiB managed by the kernel$`));
    assert.match(summary.get('monitor') ?? '', /^up since /);
  });

  it('the Processes view re-reads a live target by itself (the default interval): its "as of" moves on', async function () {
    this.timeout(60_000);
    assert.equal(vscode.workspace.getConfiguration('grass').inspect<number>('processes.refreshIntervalSeconds')?.defaultValue, 5);
    await vscode.commands.executeCommand('grass.processes.focus');
    const asOf = async (): Promise<string | undefined> => (await viewDescription('Processes')).map((d) => /as of (\d\d:\d\d:\d\d)$/.exec(d)?.[1]).find(Boolean);
    const first = await waitFor('"as of" in the title', asOf, 20_000);
    // Nothing here asks for a refresh.
    await waitFor('a later "as of"', async () => {
      const now = await asOf();
      return now !== undefined && now !== first ? now : undefined;
    }, 30_000);
  });

  it('a grass debug session for another target asks before switching the window\'s session, and a no leaves it', async function () {
    this.timeout(60_000);
    const config = vscode.workspace.getConfiguration('grass');
    const targets = config.get<unknown[]>('targets')!;
    await config.update('targets', [...targets, { name: 'elsewhere', address: 'shm:/dev/shm/grass-no-such-agent' }], vscode.ConfigurationTarget.Global);
    try {
      await vscode.commands.executeCommand('notifications.clearAll');
      const started = vscode.debug.startDebugging(undefined, { type: 'grass', request: 'attach', name: 'elsewhere', target: 'elsewhere' });
      // The question, as the notification shows it, with its two answers.
      const question = await waitFor('the switch question', async () => (await notificationTexts('message')).find((t) => t.includes("'elsewhere'")));
      assert.equal(question, `GRASS: this debug session is for 'elsewhere', but the window is connected to '${TARGET}'. Switch the window's session (every GRASS view) to 'elsewhere'?`);
      const keep = `.notifications-center .notification-list-item:has-text("'elsewhere'") .monaco-button:has-text("Keep ${TARGET}")`;
      await vscode.commands.executeCommand('notifications.showList');
      try {
        // (Each attach request asks once; answer every question shown.)
        while ((await workbenchTexts(keep)).length > 0) await workbenchClick(`${keep} >> nth=0`);
      } finally {
        await vscode.commands.executeCommand('notifications.hideList');
      }
      // The attach fails saying why: VS Code shows the adapter's error (the test driver refuses
      // dialogs, so startDebugging rejects with its text instead).
      const outcome = await Promise.resolve(started).then((ok) => (ok ? 'started' : 'not started'), (err: Error) => err.message);
      assert.match(outcome, new RegExp(`the window stays connected to '${TARGET}' \\(switching to 'elsewhere' was declined\\)|^not started$`));
      assert.equal(api.sessions.current?.target.name, TARGET);
    } finally {
      await vscode.debug.stopDebugging();
      await config.update('targets', targets, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('notifications.clearAll');
    }
  });

  it("the Processes tree equals the paused guest's own ps (leaders, threads as children), with stable ids", async function () {
    this.timeout(180_000);
    const provider = api.views.processesProvider;
    // The guest's truth is read while it runs, just before and after the paused listing; a
    // task that changed state in between and back (an RCU kthread woken by the reading itself)
    // can still differ, so a mismatch gets two more tries at a fresh snapshot.
    let processes: ProcessItem[] = [];
    let before: GroundTruth | undefined;
    for (let attempt = 1; ; attempt++) {
      before = await guest.request<GroundTruth>({ op: 'truth' });
      await guest.request({ op: 'pause' });
      try {
        await provider.refresh();
        assert.equal(provider.error, undefined);
        processes = await provider.getChildren();
        // Paused, the list cannot change: reading it again re-renders nothing and keeps the items.
        let rerendered = 0;
        const watch = provider.onDidChangeTreeData(() => rerendered++);
        try {
          await provider.refresh();
        } finally {
          watch.dispose();
        }
        assert.equal(rerendered, 0, 'a re-read of an unchanged process list re-rendered the view');
        assert.equal((await provider.getChildren())[0], processes[0]);
      } finally {
        await guest.request({ op: 'resume' });
      }
      const after: GroundTruth = await guest.request({ op: 'truth' });
      const leaders = processes.map((p) => p.task);
      const threads = processes.flatMap((p) => [p.task, ...(p.kind === 'process' ? p.threads.map((t) => t.task) : [])]);
      try {
        const compared = assertTasksMatchTruth(leaders.map(psTask), before, after, false);
        assertTasksMatchTruth(threads.map(psTask), before, after, true);
        assert.ok(compared >= before.tasks.filter((t) => t.pid === t.tgid).length / 2, `states compared for only ${compared} processes`);
        break;
      } catch (err) {
        if (attempt === 3) throw err;
        console.log(`processes vs truth, attempt ${attempt}: ${(err as Error).message.split('\n')[0]}; again`);
      }
    }
    // Threads are children of their leader, and know it (getParent).
    for (const p of processes) {
      if (p.kind !== 'process') continue;
      for (const t of p.threads) {
        assert.equal(t.task.tgid, p.task.pid);
        assert.equal(provider.getParent(t)?.id, p.id);
      }
    }
    // Labels `pid comm`, state described by name.
    const init = processes.find((p) => p.task.pid === 1)!;
    const item = provider.getTreeItem(init);
    assert.equal(item.label, `1 ${before.tasks.find((t) => t.pid === 1)!.comm}`);
    assert.match(String(item.description), /^(sleeping|running|idle|uninterruptible) · CPU \d+ · /);
    // A refresh keeps ids (so expansion survives); reveal finds a process in the rendered tree.
    const ids = new Set(processes.map((p) => p.id));
    await provider.refresh();
    const again = await provider.getChildren();
    assert.ok(again.filter((p) => ids.has(p.id)).length >= processes.length - 3, 'ids changed across a refresh');
    await vscode.commands.executeCommand('grass.processes.focus');
    const kthreadd = (await provider.findPid(2))!;
    await api.views.processes.reveal(kthreadd, { select: true });
    await waitFor('the revealed row', async () => (await viewRows('Processes')).find((r) => r.startsWith(`2 ${before.tasks.find((t) => t.pid === 2)!.comm}`)));
    // Filter by name and by pid.
    await vscode.commands.executeCommand('grass.filterProcesses', 'kthreadd');
    assert.deepEqual((await provider.getChildren()).map((p) => p.task.pid), [2]);
    await vscode.commands.executeCommand('grass.filterProcesses', '1');
    assert.ok((await provider.getChildren()).some((p) => p.task.pid === 1));
    await vscode.commands.executeCommand('grass.filterProcesses', '');
    assert.equal((await provider.getChildren()).length, again.length);
  });

  it('the Processes view nests a child under its parent, sorts by RSS, says as of when, and drops its filter for another session', async function () {
    this.timeout(120_000);
    const provider = api.views.processesProvider;
    const rowsAt = (level: number): Promise<string[]> => workbenchTexts(`${viewRowSelector('Processes')}[aria-level="${level}"]`);
    await vscode.commands.executeCommand('grass.processes.focus');
    const before = Date.now();
    await provider.refresh();
    // The title says when the rows were read.
    const asOf = await waitFor('"as of" in the title', async () => (await viewDescription('Processes')).find((d) => /(^| · )as of \d\d:\d\d:\d\d$/.test(d)));
    assert.ok(Date.now() - before < 60_000, asOf);
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    const kthreadd = truth.tasks.find((t) => t.pid === 2)!;
    const child = truth.tasks.filter((t) => t.ppid === 2 && t.pid === t.tgid).sort((a, b) => a.pid - b.pid)[0];
    try {
      // As a tree: kthreadd at the top level, its first child kernel thread one level under it.
      await vscode.commands.executeCommand('grass.toggleProcessTree', true);
      // (The flat rows stay on screen until the view re-renders: wait for the top level to lose the child.)
      let top: string[] = [];
      await waitFor(`kthreadd at the top level without pid ${child.pid}`, async () => {
        top = await rowsAt(1);
        return top.some((r) => r.startsWith(`2 ${kthreadd.comm}`)) && !top.some((r) => r.startsWith(`${child.pid} ${child.comm}`)) ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}: ${top.join(' | ')}`);
      });
      assert.match((await viewDescription('Processes')).join(), /(^| · )tree( · |$)/);
      await workbenchClick(`${viewRowSelector('Processes')}[aria-level="1"]:has-text("2 ${kthreadd.comm}") .monaco-tl-twistie`);
      await waitFor(`pid ${child.pid} under kthreadd`, async () => (await rowsAt(2)).find((r) => r.startsWith(`${child.pid} ${child.comm}`)));

      // Flat, by RSS: the rows' resident sizes as shown never grow down the list, and the top row is
      // one of the guest's own three largest.
      await vscode.commands.executeCommand('grass.toggleProcessTree', false);
      await vscode.commands.executeCommand('grass.sortProcesses', 'rss');
      await waitFor('"by resident memory" in the title', async () => (await viewDescription('Processes')).find((d) => d.includes('by resident memory')));
      const shownRss = (row: string): number => {
        const m = /· ([\d.]+) (KiB|MiB)(?: ·|$)/.exec(row);
        return m ? Number(m[1]) * (m[2] === 'MiB' ? 1024 : 1) : row.includes('no mm') ? 0 : NaN;
      };
      // (Again the old order stays on screen until the re-render: wait for the rows to be in RSS order.)
      let rows: string[] = [];
      await waitFor('the rows in RSS order', async () => {
        // (Task rows only: kthreadd, expanded above, shows its "kernel stack" child.)
        rows = (await viewRows('Processes')).filter((r) => /^\d+ /.test(r));
        const sizes = rows.map(shownRss);
        return rows.length >= 5 && sizes[0] > 0 && sizes.every((v, i) => !Number.isNaN(v) && (i === 0 || v <= sizes[i - 1])) ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}: ${rows.join(' | ')}`);
      });
      const largest = truth.tasks.filter((t) => t.pid === t.tgid).sort((a, b) => b.rssPages - a.rssPages).slice(0, 3).map((t) => t.pid);
      const topPid = Number(/^(\d+) /.exec(rows[0])![1]);
      assert.ok(largest.includes(topPid), `top row ${rows[0]}; the guest's largest: ${largest.join(', ')}`);

      // A filter holds for its session only: after disconnecting and connecting again the rows are unfiltered.
      await vscode.commands.executeCommand('grass.filterProcesses', 'kthreadd');
      await waitFor('the filter in the title', async () => (await viewDescription('Processes')).find((d) => d.includes('filter: kthreadd')));
      await vscode.commands.executeCommand('grass.disconnect');
      assert.equal(await vscode.commands.executeCommand('grass.connect', TARGET), true);
      await waitFor('the unfiltered rows', async () => ((await viewRows('Processes')).length > 3 ? true : undefined), 20_000);
      assert.ok(!(await viewDescription('Processes')).join().includes('filter:'));
      assert.equal(provider.filter, '');
    } finally {
      await vscode.commands.executeCommand('grass.toggleProcessTree', false);
      await vscode.commands.executeCommand('grass.sortProcesses', 'pid');
    }
  });

  it("Show Process List returns the guest's tasks", async function () {
    this.timeout(120_000);
    for (let attempt = 1; ; attempt++) {
      const before: GroundTruth = await guest.request({ op: 'truth' });
      await guest.request({ op: 'pause' });
      let tasks: TaskRecord[] | undefined;
      try {
        tasks = await vscode.commands.executeCommand<TaskRecord[]>('grass.showProcessList');
      } finally {
        await guest.request({ op: 'resume' });
      }
      const after: GroundTruth = await guest.request({ op: 'truth' });
      assert.ok(tasks);
      try {
        assertTasksMatchTruth(tasks.map(psTask), before, after, true);
        break;
      } catch (err) {
        // As above: a state can flip and back while the truth is read.
        if (attempt === 3) throw err;
        console.log(`process list vs truth, attempt ${attempt}: ${(err as Error).message.split('\n')[0]}; again`);
      }
    }
  });

  it('a query result is a read-only document of its own: its pids lead to Processes, its symbols to the memory inspector', async function () {
    this.timeout(60_000);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand<TaskRecord[]>('grass.showProcessList');
    const processes = vscode.window.activeTextEditor!;
    assert.equal(processes.document.uri.scheme, 'grass-query');
    // As shown: a header, then one row per task with its pid linked; pid 1's row is the guest's.
    const init = (await guest.request<GroundTruth>({ op: 'truth' })).tasks.find((t) => t.pid === 1)!;
    const lines = await waitFor('the process rows', async () => {
      const shown = await editorLines();
      return shown.some((l) => /^\s+1\s+1\s+0 /.test(l)) ? shown : undefined;
    });
    assert.ok(lines.find((l) => /^\s+1\s+1\s+0 /.test(l))!.endsWith(` ${init.comm}`), lines.join('\n'));
    await waitFor('the pids drawn as links', async () => ((await workbenchTexts('.editor-instance .view-line .detected-link')).includes('1') ? true : undefined));
    // Open Link on pid 1 (the keyboard's way to follow it): its row selected in Processes.
    const row = processes.document.getText().split('\n').findIndex((l) => /^\s+1\s+1\s+0 /.test(l));
    const column = processes.document.lineAt(row).text.indexOf('1');
    processes.selection = new vscode.Selection(row, column, row, column);
    await vscode.commands.executeCommand('editor.action.openLink');
    await waitFor('pid 1 selected in Processes', async () => (await workbenchTexts(`${viewRowSelector('Processes')}[aria-selected="true"]`)).find((r) => r.startsWith(`1 ${init.comm}`)));
    // A second query, a second document: pid 1's stack, its frames' symbols linked to the inspector.
    await vscode.commands.executeCommand<StackTrace>('grass.showStackTrace', 1);
    const stack = vscode.window.activeTextEditor!;
    assert.notEqual(stack.document.uri.toString(), processes.document.uri.toString());
    const frameRow = stack.document.getText().split('\n').findIndex((l) => /^  [A-Za-z_]\w*\+0x/.test(l));
    assert.ok(frameRow > 0, stack.document.getText());
    const symbol = /^  ([A-Za-z_]\w*)/.exec(stack.document.lineAt(frameRow).text)![1];
    await waitFor(`${symbol} drawn as a link`, async () => ((await workbenchTexts('.editor-instance .view-line .detected-link')).includes(symbol) ? true : undefined));
    stack.selection = new vscode.Selection(frameRow, 3, frameRow, 3);
    await vscode.commands.executeCommand('editor.action.openLink');
    await waitFor(`${symbol} in the inspector`, async () => ((await webview.texts('#selection')).join().startsWith(`${symbol} = 0x`) ? true : undefined), 20_000);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('Read Memory shows linux_banner in the memory inspector as the guest prints /proc/version', async () => {
    const version = (await guest.request<{ output: string }>({ op: 'exec', command: 'cat /proc/version' })).output;
    const panel = await vscode.commands.executeCommand<{ dispose(): void }>('grass.readMemory', 'linux_banner');
    try {
      // The page says where the symbol is; its rows are 16-byte aligned.
      const at = BigInt(
        await waitFor('linux_banner resolved', async () => /^linux_banner = (0x[0-9a-f]+)/.exec((await webview.texts('#selection')).join())?.[1]),
      );
      const rowAddress = (n: number): string => `0x${((at & ~15n) + BigInt(16 * n)).toString(16)}`;
      const ascii = await waitFor('the banner\'s rows', async () => {
        const rows = await Promise.all([0, 1, 2, 3, 4].map(async (n) => (await webview.texts(`.row[data-address="${rowAddress(n)}"] .ascii`)).join('')));
        return rows.every((r) => r.length === 16 && r.trim() !== '') ? rows.join('').slice(Number(at & 15n), Number(at & 15n) + 64) : undefined;
      });
      assert.equal(ascii, version.slice(0, 64).replace(/[^\x20-\x7e]/g, '.'));
      // 8-byte groups: little-endian numbers. The second row lies wholly in the banner: its first
      // group is the banner's bytes from (16 - offset of the banner in its row), reversed.
      await webview.click('#group-8');
      const from = 16 - Number(at & 15n);
      const expected = Buffer.from(version.slice(from, from + 8), 'latin1').reverse().toString('hex');
      const groups = await waitFor('8-byte groups', async () => {
        const text = (await webview.texts(`.row[data-address="${rowAddress(1)}"] .hex`)).join('').trim().split(/\s+/);
        return text.length === 2 && text.every((g) => /^[0-9a-f]{16}$/.test(g)) ? text : undefined;
      });
      assert.equal(groups[0], expected);
      // A bad symbol is named in the answer.
      await webview.fill('#address input', 'no_such_symbol_here');
      await webview.click('#go');
      await waitFor('the error', async () => (/^Cannot go to no_such_symbol_here: /.test((await webview.texts('#status')).join()) ? true : undefined));
      // The banner's bytes are gone with it: nothing left to read as the symbol's.
      await waitFor('the rows cleared', async () => ((await webview.texts('.row')).length === 0 ? true : undefined));
      assert.deepEqual(await webview.texts('#selection'), ['']);
    } finally {
      panel?.dispose();
    }
    // Read Memory of a bad symbol: a panel that names it and what failed, not an empty one.
    const bad = await vscode.commands.executeCommand<{ dispose(): void }>('grass.readMemory', 'no_such_symbol_h26');
    try {
      const status = await waitFor('the named error', async () => (await webview.texts('#status')).find((t) => t.startsWith('Cannot go to no_such_symbol_h26: ')));
      assert.match(status, /^Cannot go to no_such_symbol_h26: .*no_such_symbol_h26/);
    } finally {
      bad?.dispose();
    }
  });

  it("Decode task_struct shows a task as the guest knows it, and follows real_parent to its parent", async () => {
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    // A kernel thread: its parent is kthreadd (pid 2), so following real_parent lands there.
    const child = truth.tasks.find((t) => t.ppid === 2 && t.pid === t.tgid)!;
    const item = (await api.views.processesProvider.findPid(child.pid))!;
    assert.ok(item, `pid ${child.pid} not in the tree`);
    const node = await vscode.commands.executeCommand<ValueNode>('grass.process.decodeTask', item);
    assert.ok(node);
    assert.equal(member(node, 'pid').value, child.pid);
    assert.equal(member(node, 'tgid').value, child.tgid);
    assert.equal(member(node, 'comm').value, child.comm.slice(0, 15));
    // The same task as an address plus a struct type (what the command asks for by hand).
    const byType = await vscode.commands.executeCommand<ValueNode>('grass.decodeStruct', `0x${item.task.taskAddress.toString(16)}`, 'task_struct');
    assert.equal(member(byType!, 'pid').value, child.pid);
    // In the Struct Decoder view (showing the last decode): root → real_parent (a pointer) → the parent task.
    const provider = api.views.structDecoderProvider;
    const [root] = await provider.getChildren();
    const realParent = (await provider.getChildren(root)).find((c) => c.node.name === 'real_parent') as DecodedItem;
    assert.ok(realParent?.follow, 'real_parent cannot be followed');
    const [parent] = await provider.getChildren(realParent);
    assert.equal(member(parent.node, 'pid').value, 2);
    assert.equal(member(parent.node, 'comm').value, truth.tasks.find((t) => t.pid === 2)!.comm);
    assert.match(String(provider.getTreeItem(realParent).description), /^struct task_struct \* = 0xffff[0-9a-f]+/);
    // Copy Value of the followed parent's comm, as the context menu does.
    const parentComm = (await provider.getChildren(parent)).find((c) => c.node.name === 'comm')!;
    await vscode.commands.executeCommand('grass.decoded.copyValue', parentComm);
    assert.equal(await vscode.env.clipboard.readText(), truth.tasks.find((t) => t.pid === 2)!.comm);
  });

  it("Show Kernel Log opens the guest's log and follows new records", async function () {
    this.timeout(90_000);
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    const doc = await vscode.commands.executeCommand<vscode.TextDocument>('grass.showKernelLog');
    assert.ok(doc);
    const text = doc.getText();
    for (const record of truth.kmsg.slice(-5)) assert.ok(text.includes(record.text), `the log lacks ${JSON.stringify(record.text)}`);
    const marker = `grass-ext-follow-${Date.now()}`;
    await guest.request({ op: 'exec', command: `echo ${marker} > /dev/kmsg` });
    await waitFor('the new record in the document', () => (doc.getText().includes(marker) ? true : undefined), 20_000);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('after the guest kernel panics, the heartbeat, the tree, the decoder and the log still answer', async function () {
    this.timeout(120_000);
    const truth: GroundTruth = await guest.request({ op: 'truth' });
    const { console } = await guest.request<{ console: string }>({ op: 'panic' }, 90_000);
    assert.match(console, /Kernel panic - not syncing: sysrq triggered crash/);
    // Describe Target says so, with the CPU the console's oops names.
    const cpu = /CPU: (\d+) PID: \d+ Comm: /.exec(console)?.[1];
    assert.ok(cpu, 'the console names no CPU');
    assert.equal((await describedSummary()).get('panicked'), `yes, on CPU ${cpu}`);
    const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
    assert.equal(state?.kind, 'alive', show(state));
    const provider = api.views.processesProvider;
    await provider.refresh();
    assert.equal(provider.error, undefined);
    for (const pid of [1, 2]) {
      const listed = await provider.findPid(pid);
      assert.equal(listed?.task.comm, truth.tasks.find((t) => t.pid === pid)!.comm, `pid ${pid} after the panic`);
    }
    const init = await vscode.commands.executeCommand<ValueNode>('grass.decodeStruct', 'init_task');
    assert.equal(member(init!, 'pid').value, 0);
    // The log's last words: what the guest's console printed (the document is opened afresh).
    const doc = await vscode.commands.executeCommand<vscode.TextDocument>('grass.showKernelLog');
    await waitFor('the panic in the log document', () => (doc?.getText().includes('Kernel panic - not syncing: sysrq triggered crash') ? true : undefined), 20_000);
    assert.match(console, /sysrq: Trigger a crash/);
    assert.match(doc!.getText(), /sysrq: Trigger a crash/);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('with the agent gone, the heartbeat says the monitor is not answering', async function () {
    this.timeout(60_000);
    await guest.request({ op: 'stopAgent' });
    const state = await vscode.commands.executeCommand<HeartbeatState>('grass.heartbeat');
    assert.ok(state?.kind === 'failed' && ['monitor-busy', 'monitor-dead', 'gpu-nic-dead'].includes(state.failure), show(state));
    await waitFor('the status bar failure', () => (/not answering|dead/.test(api.views.heartbeat.item.text) ? true : undefined));
    await waitFor('the Targets view failure', async () => /^(monitor not answering|transport or agent dead) · /.test(targetRow(await viewRows('Targets'), TARGET) ?? '') || undefined);
    await vscode.commands.executeCommand('grass.disconnect');
    assert.equal(api.sessions.current, undefined);
  });
});
