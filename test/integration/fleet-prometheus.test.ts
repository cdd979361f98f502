// A fleet in Prometheus, end to end: one `grass monitor` holds three testbed guests from a
// targets file (plus an entry that is wrong), Debian's own `prometheus` (installed by
// scripts/setup.sh, started here on 127.0.0.1 with a temporary config and data folder, finding the
// monitor by file-based discovery and evaluating docs/prometheus/grass-rules.yml) scrapes it.
// One guest is panicked (sysrq c), one hung with interrupts off on every CPU (F1), one left
// healthy; Prometheus's HTTP API must then show the panicked target's panic series at 1 while its
// heartbeat still answers, F1 active with class F1 on the hung one, and no detection at any time
// on the healthy one; `promtool check metrics` has nothing to say about a scrape. Then the monitor
// is killed and started again: it holds every target of the file again; an entry added to the
// file is held and one removed is dropped, with no restart.
// Truth from outside the monitor: the guests' serial consoles (the panic message; the healthy
// guest answering, the hung one not) and promtool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest } from '../../testbed';
import { relayTargets } from '../../src/relay/remote';
import { GuestAgent, root, startGuestAgent } from './agent-harness';

const ROLES = ['panicked', 'hung', 'healthy'] as const;
type Role = (typeof ROLES)[number];

let dir: string;
let socket: string;
let targetsFile: string;
const guests = {} as Record<Role, Guest>;
const agents = {} as Record<Role, GuestAgent>;
/** A second agent on the healthy guest's RAM: the entry added to the file while the monitor runs. */
let extraAgent: GuestAgent;
let monitor: Spawned;
let metricsAddress: string;
let prometheus: Spawned;
let prometheusUrl: string;

interface Spawned {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function start(command: string, args: string[]): Spawned {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not seen in ${timeoutMs / 1000} s${last ? ` (last error: ${(last as Error).message})` : ''}${context()}`);
}

/** A port free on 127.0.0.1 now (bound, read, closed). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function startMonitor(listen: string): Spawned {
  return start(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'monitor', '--socket', socket, '--targets-file', targetsFile,
    '--metrics-listen', listen, '--observe-ms', '1000']);
}

async function metricsAddressOf(m: Spawned): Promise<string> {
  return waitFor('the monitor serving metrics', async () => /serving metrics on http:\/\/(\S+)\/metrics/.exec(m.output())?.[1], 60_000, () => `; monitor: ${m.output()}`);
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query through Prometheus's HTTP API. */
async function query(promql: string): Promise<Sample[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: Sample[] } };
  if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error ?? res.status}`);
  return body.data.result;
}

/** The single value of a query, or undefined while it has none. */
async function value(promql: string): Promise<number | undefined> {
  const r = await query(promql);
  if (r.length > 1) throw new Error(`${promql}: ${r.length} series: ${JSON.stringify(r)}`);
  return r.length ? Number(r[0].value[1]) : undefined;
}

function writeTargets(entries: object[]): void {
  // Written to a temporary name and renamed over, as an editor saves.
  writeFileSync(`${targetsFile}.tmp`, JSON.stringify(entries, null, 2));
  spawnSync('mv', [`${targetsFile}.tmp`, targetsFile]);
}

const entry = (name: string, a: GuestAgent) => ({ name, address: a.target, keyFile: a.keyFile });
const BAD_ENTRY = { name: 'typo', address: 'rdma:/10.0.0.9' };

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'grass-fleet-prom-'));
  socket = path.join(dir, 'monitor.sock');
  targetsFile = path.join(dir, 'targets.json');
  // Three small guests at once (256 MiB, one CPU each): the hung one spins its vCPU, the others idle.
  for (const role of ROLES) {
    guests[role] = await bootGuest({ memMiB: 256, cpus: 1, append: ['no_timer_check'] });
    agents[role] = await startGuestAgent(guests[role]);
  }
  extraAgent = await startGuestAgent(guests.healthy);
  writeTargets([...ROLES.map((r) => entry(r, agents[r])), BAD_ENTRY]);
  monitor = startMonitor('127.0.0.1:0');
  metricsAddress = await metricsAddressOf(monitor);

  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  writeFileSync(path.join(dir, 'monitors.json'), JSON.stringify([{ targets: [metricsAddress], labels: { site: 'testbed' } }]));
  writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global: {scrape_interval: 1s, evaluation_interval: 1s}',
    `rule_files: [${JSON.stringify(path.join(root, 'docs/prometheus/grass-rules.yml'))}]`,
    'scrape_configs:',
    '  - job_name: grass',
    `    file_sd_configs: [{files: [${JSON.stringify(path.join(dir, 'monitors.json'))}], refresh_interval: 5s}]`,
    '',
  ].join('\n'));
  prometheus = start('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn']);
  await waitFor('prometheus ready', async () => ((await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined), 60_000, () => `; prometheus: ${prometheus.output()}`);
});

after(async () => {
  await prometheus?.stop();
  await monitor?.stop();
  await Promise.all([...Object.values(agents), extraAgent].filter(Boolean).map((a) => a.stop()));
  await Promise.all(Object.values(guests).map((g) => g.down()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the targets file: the bad entry is reported by index and name and left out, the three others are held under their names', async () => {
  const held = await waitFor('three targets held', async () => {
    const t = await relayTargets(socket);
    return t.length === 3 && t.every((x) => x.state === 'up') ? t : undefined;
  }, 60_000, () => `; monitor: ${monitor.output()}`);
  assert.deepEqual(held.map((t) => t.name).sort(), [...ROLES].sort());
  assert.match(monitor.output(), /entry 3 \('typo'\): .*rdma:\/10\.0\.0\.9.* \(left out\)/);
});

test('Prometheus scrapes the monitor: every target alive, no detection, no panic; promtool check metrics on a scrape finds nothing', async () => {
  for (const role of ROLES) {
    await waitFor(`${role} alive in Prometheus`, async () => ((await value(`grass_target_state{target="${role}",state="alive"}`)) === 1 ? true : undefined), 60_000);
    await waitFor(`${role}'s panic series`, async () => ((await value(`grass_target_kernel_panicked{target="${role}"}`)) === 0 ? true : undefined), 60_000);
  }
  assert.equal(await value('grass_monitor_targets_file_entries{result="held"}'), 3);
  assert.equal(await value('grass_monitor_targets_file_entries{result="invalid"}'), 1);
  // No series carries a key: every label value of a grass series is a name, an address or a state.
  const keys = ROLES.map((r) => spawnSync('cat', [agents[r].keyFile], { encoding: 'utf8' }).stdout.trim());
  const scrape = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  for (const k of keys) assert.ok(!scrape.includes(k) && !scrape.includes(k.slice(0, 16)), 'a key in the scrape');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
  assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
  assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '');
  assert.match(scrape, /^process_resident_memory_bytes \d+/m, "the monitor's own process metrics");
});

test('a panic in one guest, F1 in another: the panic series is 1 and its heartbeat answers; F1 active with class F1 on the other; nothing on the healthy one', async () => {
  const injectedAt = Date.now() / 1000;
  await guests.panicked.fault('panic');
  await guests.hung.fault('f1', { delayMs: 1000 });
  // The guests' own word: the panicked one printed the panic on its console; the hung one no longer answers it.
  await guests.panicked.waitForConsole(/Kernel panic - not syncing: sysrq triggered crash/, 30_000);
  await sleep(3000);
  await assert.rejects(guests.hung.exec('echo alive', { timeoutMs: 3000 }), 'the hung guest still answers its console');

  await waitFor('panicked: panic series 1', async () => ((await value('grass_target_kernel_panicked{target="panicked"}')) === 1 ? true : undefined), 90_000, () => `; monitor: ${monitor.output()}`);
  // Its heartbeat still answers: alive, and a heartbeat answered after the panic was seen.
  await waitFor('panicked: heartbeat answered after the panic', async () => {
    const alive = await value('grass_target_state{target="panicked",state="alive"}');
    const last = await value('grass_target_last_heartbeat_timestamp_seconds{target="panicked"}');
    return alive === 1 && last !== undefined && last > injectedAt + 5 ? true : undefined;
  }, 60_000);
  const age = await value('time() - grass_target_last_heartbeat_timestamp_seconds{target="panicked"}');
  assert.ok(age !== undefined && age < 10, `the panicked target's last heartbeat is ${age} s old`);
  await waitFor('hung: F1 active', async () => ((await value('grass_target_detection_active{target="hung",detector="hang",class="F1"}')) === 1 ? true : undefined), 90_000, () => `; monitor: ${monitor.output()}`);
  const hungClasses = await query('grass_target_detection_active{target="hung",detector="hang"} == 1');
  assert.deepEqual(hungClasses.map((s) => s.metric.class), ['F1']);
  assert.equal(await value('grass_target_kernel_panicked{target="hung"}'), 0);
  assert.equal(await value('grass_target_state{target="hung",state="alive"}'), 1, 'the hung target\'s agent answers from outside');
  // The alerts of docs/prometheus/grass-rules.yml fire on them.
  await waitFor('GrassKernelPanicked firing', async () => ((await query('ALERTS{alertname="GrassKernelPanicked",alertstate="firing",target="panicked"}')).length === 1 ? true : undefined), 30_000);
  await waitFor('GrassKernelHang F1 firing', async () => ((await query('ALERTS{alertname="GrassKernelHang",alertstate="firing",target="hung",class="F1"}')).length === 1 ? true : undefined), 30_000);
  // The panicked kernel is stopped too (paused by pvpanic), which the hang detector may read as a hang: the panic alert says it, no hang alert beside it.
  assert.deepEqual(await query('ALERTS{alertname="GrassKernelHang",target="panicked"}'), []);
  console.log(`panicked target's hang series: ${JSON.stringify((await query('grass_target_detection_active{target="panicked",detector="hang"} == 1')).map((x) => x.metric.class))}`);

  // The healthy one: answers its console, no detection at any time since the start, no panic, no alert.
  assert.equal((await guests.healthy.exec('echo alive', { timeoutMs: 20_000 })).trim(), 'alive');
  const since = `${Math.ceil(Date.now() / 1000 - injectedAt) + 60}s`;
  const healthy = await query(`max_over_time(grass_target_detection_active{target="healthy"}[${since}])`);
  assert.equal(healthy.length, 8, JSON.stringify(healthy)); // cpu-high-load, memory-leak, hang F1-F6
  assert.deepEqual(healthy.filter((s) => s.value[1] !== '0'), [], 'a detection on the healthy target');
  assert.equal(await value(`max_over_time(grass_target_kernel_panicked{target="healthy"}[${since}])`), 0);
  assert.deepEqual(await query('ALERTS{target="healthy"}'), []);
});

test('a monitor restart loses no target of the file; an entry added to the file is held and one removed dropped, with no restart', async () => {
  await monitor.stop('SIGKILL');
  await waitFor('the monitor gone from Prometheus', async () => ((await value('up{job="grass"}')) === 0 ? true : undefined), 30_000);
  monitor = startMonitor(metricsAddress);
  assert.equal(await metricsAddressOf(monitor), metricsAddress);
  const held = await waitFor('every target held again', async () => {
    const t = await relayTargets(socket);
    return t.length === 3 && t.every((x) => x.state === 'up') ? t : undefined;
  }, 60_000, () => `; monitor: ${monitor.output()}`);
  assert.deepEqual(held.map((t) => t.name).sort(), [...ROLES].sort());
  // The new monitor reads the panic from the kernel's memory again.
  await waitFor('panicked again after the restart', async () => ((await relayTargets(socket)).find((t) => t.name === 'panicked')?.last.kernelPanicked ? true : undefined), 60_000);
  await waitFor('scraped again', async () => ((await value('up{job="grass"}')) === 1 ? true : undefined), 30_000);

  writeTargets([...ROLES.map((r) => entry(r, agents[r])), entry('healthy-2', extraAgent)]);
  await waitFor('healthy-2 held', async () => ((await relayTargets(socket)).find((t) => t.name === 'healthy-2' && t.state === 'up' && t.last.at) ? true : undefined), 30_000, () => `; monitor: ${monitor.output()}`);
  await waitFor('healthy-2 alive in Prometheus', async () => ((await value('grass_target_state{target="healthy-2",state="alive"}')) === 1 ? true : undefined), 30_000);
  assert.equal(await value('grass_monitor_targets_file_entries{result="invalid"}'), 0);

  writeTargets(ROLES.map((r) => entry(r, agents[r])));
  await waitFor('healthy-2 dropped', async () => ((await relayTargets(socket)).some((t) => t.name === 'healthy-2') ? undefined : true), 30_000);
  assert.deepEqual((await relayTargets(socket)).map((t) => t.name).sort(), [...ROLES].sort());
  assert.match(monitor.output(), /healthy-2: dropped \(no longer in the targets file\)/);
});
