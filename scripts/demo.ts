// npm run demo: the product on the built-in test target. Boots a testbed guest (Debian kernel in
// QEMU) with a GRASS agent on its RAM, connects with the real protocol client, shows what GRASS
// sees of the live kernel, panics the kernel and shows what GRASS still sees of the dead one.
// Default: interactive (guest, agent and code-server stay up until Ctrl-C). --check: the same
// with each step verified against the guest's own ground truth; exit 0 only if all passed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, startAgent, type AgentHandle, type Guest } from '../testbed';
import { stopRelay } from '../src/relay/remote';
import { parseTargetAddress } from '../src/rdma/address';
import { readKeyFile } from '../src/rdma/key';
import { openHeld, openTarget, type ProtocolSession } from '../src/session/open-target';
import { ensureRelayHolds } from '../src/session/relay-process';
import { KernelLogReader } from '../src/kernel/log/ringbuffer';
import { extractFaultReports } from '../src/kernel/log/faults';
import { formatRecord } from '../src/kernel/log/format';
import { KernelModel } from '../src/kernel/model';
import { fetchMetrics } from '../src/detect/metrics';
import { fetchDetections } from '../src/detect/detections';
import { assertTasksMatchTruth } from '../test/integration/agent-harness';

const root = path.resolve(__dirname, '..');
const check = process.argv.includes('--check');
const started = Date.now();
const results: { step: string; ok: boolean }[] = [];

const say = (text = ''): void => void process.stdout.write(text + '\n');
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;

/** One demo step: prints what it shows; in --check, a ✔/✖ line with the reason of a failure. */
async function step(name: string, body: () => Promise<string>): Promise<void> {
  try {
    const summary = await body();
    results.push({ step: name, ok: true });
    say(`${check ? '✔ ' : ''}${name}: ${summary}`);
  } catch (err) {
    results.push({ step: name, ok: false });
    say(`✖ ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function verify(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

let guest: Guest | undefined;
let agent: AgentHandle | undefined;
let session: ProtocolSession | undefined;
let codeServer: ChildProcess | undefined;
let scratch: string | undefined;

async function stopAll(): Promise<void> {
  await session?.close().catch(() => undefined);
  session = undefined;
  if (codeServer?.pid !== undefined && codeServer.exitCode === null && codeServer.signalCode === null) {
    const exited = new Promise((resolve) => codeServer!.once('exit', resolve));
    process.kill(-codeServer.pid, 'SIGTERM'); // its process group: code-server forks its server
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  }
  // The grass monitor the extension started for its session (it outlives VS Code by design).
  if (scratch && existsSync(path.join(scratch, 'monitor.sock'))) await stopRelay(path.join(scratch, 'monitor.sock')).catch(() => undefined);
  await agent?.stop().catch(() => undefined);
  agent = undefined;
  await guest?.down().catch(() => undefined);
  guest = undefined;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

async function liveKernel(s: ProtocolSession, g: Guest): Promise<void> {
  const { client } = s;
  const description = await client.describe();
  await step('describe', async () =>
    `${description.release}, KASLR offset ${hex(description.kaslrOffset)}, ${description.pagingLevels}-level paging, ${description.cpuCount} CPUs`);

  await step('heartbeat', async () => {
    const h = await client.heartbeat();
    return `${(Number(h.roundTripNs) / 1000).toFixed(1)} µs round trip, liveness counter ${h.liveness.counter} (${client.backend} backend)`;
  });

  await step('ps', async () => {
    // The guest's own /proc just before and just after, the list taken with the guest paused.
    const before = await g.truth();
    await g.pause();
    let tasks;
    try {
      tasks = await client.processList({ threads: false, idle: false });
    } finally {
      await g.resume();
    }
    const after = await g.truth();
    const json = tasks.map((t) => ({ pid: t.pid, tgid: t.tgid, ppid: t.ppid, comm: t.comm, state: t.state, cpu: t.cpu,
      utimeNs: Number(t.utimeNs), stimeNs: Number(t.stimeNs), rssBytes: Number(t.rssBytes), threads: t.threads }));
    assertTasksMatchTruth(json, before, after, false);
    const afterComm = new Map(after.tasks.map((t) => [t.pid, t.comm]));
    const stable = before.tasks.filter((t) => t.pid === t.tgid && afterComm.get(t.pid) === t.comm).length;
    const sample = json.filter((t) => t.pid <= 2 || t.rssBytes > 0).slice(0, 4).map((t) => JSON.stringify(t));
    return `${json.length} processes; all ${stable} in the guest's /proc before and after are listed alike (pid, ppid, comm, state), none unknown\n    ${sample.join('\n    ')}`;
  });

  await step('dmesg', async () => {
    const log = await new KernelLogReader(client, description).read();
    verify(log.records.length > 0, 'the kernel log has no records');
    return `${log.records.length} records; the last 3:\n    ${log.records.slice(-3).map(formatRecord).join('\n    ')}`;
  });

  await step('metrics', async () => {
    const m = await fetchMetrics(client);
    verify(m.cpus.length === description.cpuCount, `${m.cpus.length} CPUs in the metrics, the kernel has ${description.cpuCount}`);
    verify(m.memTotalBytes > 0 && m.memFreeBytes <= m.memTotalBytes, `memory free ${m.memFreeBytes} of ${m.memTotalBytes}`);
    const cpus = m.cpus.map((c) => `CPU${c.cpu} usr ${c.usr.toFixed(0)}% sys ${c.sys.toFixed(0)}% idle ${c.idle.toFixed(0)}%`).join(', ');
    return `${cpus}; run ${m.run} blk ${m.blk}; ${(m.memFreeBytes / 2 ** 20).toFixed(0)} of ${(m.memTotalBytes / 2 ** 20).toFixed(0)} MiB free`;
  });

  await step('detect', async () => {
    const detections = await fetchDetections(client);
    verify(detections.length > 0, 'no detector reported');
    const failed = detections.filter((d) => d.error !== null);
    verify(failed.length === 0, failed.map((d) => `${d.detector}: ${d.error}`).join('; '));
    const active = detections.filter((d) => d.active).map((d) => d.detector);
    return `${detections.map((d) => d.detector).join(', ')} evaluated; ${active.length ? `active: ${active.join(', ')}` : 'no detection (an idle guest)'}`;
  });
}

async function deadKernel(s: ProtocolSession, g: Guest): Promise<void> {
  const { client } = s;
  say('\n--- the guest kernel panics: echo c > /proc/sysrq-trigger ---');
  await step('panic', async () => {
    const fault = await g.fault('panic');
    verify(!fault.answered, 'the guest still answered after the sysrq crash');
    return `the guest no longer answers; QEMU says ${await g.status()}`;
  });

  await step('heartbeat (dead kernel)', async () => {
    const h = await client.heartbeat();
    return `${(Number(h.roundTripNs) / 1000).toFixed(1)} µs round trip`;
  });

  await step('ps (dead kernel)', async () => {
    const tasks = await client.processList({ threads: false, idle: false });
    verify(tasks.some((t) => t.pid === 1), 'pid 1 is not listed');
    return `${tasks.length} processes still listed`;
  });

  await step('report', async () => {
    const description = await client.describe();
    const model = KernelModel.fromDescription(description, client);
    const log = await new KernelLogReader(client, description, model.btf).read();
    const reports = extractFaultReports(log.records);
    const panic = reports.find((r) => r.kind === 'panic');
    verify(panic !== undefined, `no panic report in the kernel log (${reports.map((r) => r.kind).join(', ') || 'no reports'})`);
    verify(panic!.message.includes('sysrq triggered crash'), `panic message: ${panic!.message}`);
    const trace = panic!.callTrace.slice(0, 5).map((l) => `      ${l}`).join('\n');
    return `${reports.map((r) => r.kind).join(', ')}; ${panic!.kind}: "${panic!.message}" on CPU ${panic!.cpu ?? '?'}, task ${panic!.comm ?? '?'} (pid ${panic!.pid ?? '?'})${trace ? `\n    call trace:\n${trace}` : ''}`;
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The demo's private folder: code-server's profile and workspace, the monitor's socket. */
function scratchDir(): string {
  scratch ??= mkdtempSync(path.join(tmpdir(), 'grass-demo-'));
  return scratch;
}

/** The grass monitor the demo starts and VS Code's extension attaches to (the workspace names it). */
const relaySocket = (): string => path.join(scratchDir(), 'monitor.sock');

/**
 * A heartbeat through the grass monitor's session to the target, as the extension makes it:
 * the monitor holds the session (DESIGN §3.4), the client reaches the buffer through its socket.
 */
async function heartbeatThroughMonitor(target: string, heldName: string, keyFile: string): Promise<string> {
  const held = await openHeld(relaySocket(), heldName, parseTargetAddress(target), readKeyFile(keyFile));
  try {
    const hb = await held.client.heartbeat();
    verify(hb.liveness.counter > 0n, `the liveness counter read through the monitor is ${hb.liveness.counter}`);
    return `${(Number(hb.roundTripNs) / 1000).toFixed(1)} µs round trip through ${relaySocket()}`;
  } finally {
    await held.close();
  }
}

/** code-server on 127.0.0.1 with the packaged extension and a workspace naming the target. */
async function startCodeServer(target: string): Promise<string> {
  const node = path.join(root, '.cache/tools/node/bin/node');
  const entry = path.join(root, '.cache/tools/vscode/node_modules/code-server/out/node/entry.js');
  if (!existsSync(node) || !existsSync(entry)) throw new Error(`code-server is not installed (${entry}); run scripts/setup.sh`);
  const vsix = path.join(root, '.cache/package/grass-vscode-0.1.0.vsix');
  if (!existsSync(vsix)) throw new Error(`${vsix} is missing; run npm run package`);
  const workspace = path.join(scratchDir(), 'workspace');
  mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  writeFileSync(path.join(workspace, '.vscode/settings.json'), JSON.stringify({ 'grass.targets': [{ name: 'demo', address: target }], 'grass.monitor.socketPath': relaySocket() }, null, 2) + '\n');
  const env = { ...process.env, PATH: `${path.dirname(node)}:${process.env.PATH ?? ''}`, XDG_CONFIG_HOME: path.join(scratchDir(), 'config'),
    XDG_DATA_HOME: path.join(scratchDir(), 'data'), XDG_CACHE_HOME: path.join(scratchDir(), 'cache') };
  const dirs = ['--user-data-dir', path.join(scratchDir(), 'user-data'), '--extensions-dir', path.join(scratchDir(), 'extensions')];
  await new Promise<void>((resolve, reject) => {
    const install = spawn(node, [entry, ...dirs, '--install-extension', vsix], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    install.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    install.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`code-server --install-extension failed (${code}): ${stderr.trim()}`))));
  });
  const port = await freePort();
  codeServer = spawn(node, [entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', ...dirs, workspace], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const s of [codeServer.stdout!, codeServer.stderr!]) s.setEncoding('utf8').on('data', (c: string) => (output += c));
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (codeServer.exitCode !== null) throw new Error(`code-server exited (${codeServer.exitCode}): ${output.trim()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) return url;
    if (Date.now() > deadline) throw new Error(`code-server did not answer on port ${port} in 60 s: ${output.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function interactive(target: string, keyFile: string): Promise<void> {
  const g = `bin/grass`;
  const t = `--target ${target} --key-file ${keyFile}`;
  say(`\n--- your turn: the guest (panicked) and its agent stay up until Ctrl-C ---
target   ${target}
key file ${keyFile}

  ${g} heartbeat ${t}
  ${g} ps ${t}
  ${g} dmesg ${t}
  ${g} report ${t}
  ${g} decode init_task ${t}
  ${g} bt --blocked ${t}
`);
  try {
    const url = await startCodeServer(target);
    say(`VS Code (code-server, GRASS extension installed, target "demo" in the workspace's grass.targets):
  ${url}
  Run "GRASS: Set Target Key from Key File…" for "demo" with ${keyFile}
  (or "GRASS: Set Target Key…" with its contents), then "GRASS: Connect to Target…".`);
  } catch (err) {
    say(`VS Code could not be started here (${err instanceof Error ? err.message : String(err)}). By hand:
  npm run package; then in VS Code: Extensions → Install from VSIX (.cache/package/*.vsix);
  add {"name": "demo", "address": "${target}"} to the grass.targets setting; run
  "GRASS: Set Target Key from Key File…" with ${keyFile}; "GRASS: Connect to Target…".`);
  }
  say('\nCtrl-C stops the guest, the agent and code-server.');
  process.off('SIGINT', onInterrupt);
  process.off('SIGTERM', onInterrupt);
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const done = (): void => {
      clearInterval(keepAlive);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  say('stopping…');
}

async function main(): Promise<number> {
  say(`GRASS demo${check ? ' (--check)' : ''}: booting the testbed guest (2 CPUs, 1 GiB) with an agent on its RAM…`);
  await step('boot', async () => {
    guest = await bootGuest({ cpus: 2, memMiB: 1024 });
    agent = await startAgent(guest);
    return `guest ${guest.id} up, agent ready at ${agent.target} (${elapsed()})`;
  });
  if (!guest || !agent) return 1;
  await step('connect', async () => {
    session = await openTarget(agent!.target, { keyFile: agent!.keyFile, relaySocket: relaySocket() });
    return `attached to ${agent!.target} with the key in ${agent!.keyFile}`;
  });
  if (!session) return 1;
  let heldName: string | undefined;
  await step('monitor', async () => {
    const held = await ensureRelayHolds({ socketPath: relaySocket(), cliPath: path.join(root, 'dist/cli.js'), key: readKeyFile(agent!.keyFile) }, agent!.target);
    verify(held.status.state === 'up', `the monitor's session is ${held.status.state}: ${held.status.failure ?? ''}`);
    heldName = held.status.name;
    return `grass monitor (pid ${held.startedPid ?? 'already running'}) holds ${agent!.target}; heartbeat ${await heartbeatThroughMonitor(agent!.target, heldName, agent!.keyFile)}`;
  });
  await liveKernel(session, guest);
  await deadKernel(session, guest);
  if (heldName) {
    const name = heldName;
    await step('monitor (dead kernel)', async () => `the session survived the panic; heartbeat ${await heartbeatThroughMonitor(agent!.target, name, agent!.keyFile)}`);
  }
  if (!check) {
    await session.close();
    session = undefined;
    await interactive(agent.target, agent.keyFile);
    return 0;
  }
  await step('vscode', async () => `code-server with the packaged extension answers at ${await startCodeServer(agent!.target)}`);
  const failed = results.filter((r) => !r.ok).length;
  say(`\n${results.length - failed} of ${results.length} steps passed in ${elapsed()}`);
  return failed === 0 ? 0 : 1;
}

function onInterrupt(): void {
  void stopAll().finally(() => process.exit(130));
}
process.once('SIGINT', onInterrupt);
process.once('SIGTERM', onInterrupt);
main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    say(`✖ demo: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    await stopAll();
    process.exit(1);
  });
