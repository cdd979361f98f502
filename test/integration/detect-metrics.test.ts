// The metrics plugin against the guest's own /proc (testbed guest, 2 CPUs, 1 GiB, 64 MiB swap, a
// 64 MiB virtio disk): absolute counters with the guest paused (they must lie between the guest's
// readings just before and just after), a 1 s window's shares and rates during a steady load
// against /proc/stat deltas around it, util against /proc/diskstats, and a plugin part whose
// fields are missing (reported, the rest running).
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest, GroundTruth } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { fetchMetricsSamples, MetricsSample, MetricsWindow } from '../../src/detect/metrics';
import { fetchDetections, readBackground, setDetectorModes } from '../../src/detect/detections';
import { grassJson, GuestAgent, startGuestAgent } from './agent-harness';

const USER_HZ_NS = 10_000_000n; // /proc/stat prints clock ticks of USER_HZ = 100 (x86 ABI)
const KIB = 1024n;

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;
let args: string[];

before(async () => {
  guest = await bootGuest({ memMiB: 1024, cpus: 2, swapMiB: 64, diskMiB: 64 });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

function between(name: string, value: bigint, low: bigint, high: bigint, slack = 0n): void {
  assert.ok(value + slack >= low && value <= high + slack, `${name} = ${value} not within [${low}, ${high}] (slack ${slack})`);
}

test('paused guest: cumulative counters lie between the guest\'s own readings before and after', async () => {
  const beforeTruth = await guest.truth();
  await guest.pause();
  let samples;
  try {
    await sleep(2300); // both samples of the monitor's window are taken while the guest is stopped
    samples = await fetchMetricsSamples(session.client);
  } finally {
    await guest.resume();
  }
  const afterTruth = await guest.truth();
  const [start, end] = samples;
  assert.equal(end.cpus.length, beforeTruth.stat.cpus.length);
  // Nothing moves in a stopped guest: both samples are identical, except that each CPU's current
  // task has now been current, with no switch, for one more sample.
  const still = (c: (typeof end.cpus)[number]) => ({ ...c, curr: { ...c.curr, samples: 0 } });
  assert.deepEqual(start.cpus.map(still), end.cpus.map(still));
  for (const [cpu, c] of end.cpus.entries()) assert.equal(c.curr.samples, start.cpus[cpu].curr.samples + 1);
  assert.equal(start.pswpout, end.pswpout);
  const ticks = (ns: bigint): bigint => ns / USER_HZ_NS;
  for (const [cpu, c] of end.cpus.entries()) {
    const b = beforeTruth.stat.cpus[cpu], a = afterTruth.stat.cpus[cpu];
    between(`cpu${cpu} user`, ticks(c.userNs), BigInt(b.user), BigInt(a.user));
    between(`cpu${cpu} system`, ticks(c.systemNs), BigInt(b.system), BigInt(a.system));
    between(`cpu${cpu} softirq`, ticks(c.softirqNs), BigInt(b.softirq), BigInt(a.softirq));
    between(`cpu${cpu} irq`, ticks(c.irqNs), BigInt(b.irq), BigInt(a.irq));
    between(`cpu${cpu} nice`, ticks(c.niceNs), BigInt(b.nice), BigInt(a.nice));
  }
  const ctxt = end.cpus.reduce((s, c) => s + c.nrSwitches, 0n);
  between('ctxt', ctxt, BigInt(beforeTruth.stat.contextSwitches), BigInt(afterTruth.stat.contextSwitches));
  between('pswpout', end.pswpout, BigInt(beforeTruth.vmstat.pswpout), BigInt(afterTruth.vmstat.pswpout));
  const page = end.pageSize;
  const kib = (pages: bigint): bigint => (pages * page) / KIB;
  assert.equal(kib(end.totalRamPages), BigInt(beforeTruth.meminfo.MemTotal));
  assert.ok(end.totalSwapPages > 0n, 'the guest has swap');
  assert.equal(kib(end.totalSwapPages), BigInt(beforeTruth.meminfo.SwapTotal));
  const memLow = BigInt(Math.min(beforeTruth.meminfo.MemFree, afterTruth.meminfo.MemFree));
  const memHigh = BigInt(Math.max(beforeTruth.meminfo.MemFree, afterTruth.meminfo.MemFree));
  between('MemFree kB', kib(end.freePages), memLow, memHigh, 4096n); // the reading itself allocates (4 MiB slack)
  const swapLow = BigInt(Math.min(beforeTruth.meminfo.SwapFree, afterTruth.meminfo.SwapFree));
  const swapHigh = BigInt(Math.max(beforeTruth.meminfo.SwapFree, afterTruth.meminfo.SwapFree));
  between('SwapFree kB', kib(end.freeSwapPages), swapLow, swapHigh);
  // procs_running counts the reader itself; the paused guest was between two commands.
  assert.ok(end.cpus.reduce((s, c) => s + c.nrRunning, 0) <= beforeTruth.stat.procsRunning + afterTruth.stat.procsRunning);
});

/** Shares of one CPU between two /proc/stat readings, in percent. */
function procShares(b: GroundTruth, a: GroundTruth, cpu: number): { usr: number; sys: number; idle: number } {
  const x = b.stat.cpus[cpu], y = a.stat.cpus[cpu];
  const usr = y.user - x.user + y.nice - x.nice;
  const sys = y.system - x.system + y.irq - x.irq + y.softirq - x.softirq;
  const idle = y.idle - x.idle + y.iowait - x.iowait;
  const total = usr + sys + idle + (y.steal - x.steal);
  return { usr: (100 * usr) / total, sys: (100 * sys) / total, idle: (100 * idle) / total };
}

test('steady load: a 1 s window agrees with /proc/stat deltas (shares within 15 points, ctxt rate within 50 % + 100/s)', async () => {
  // CPU 0 spins in user space, CPU 1 in a syscall-heavy loop; both steady for the whole run.
  const pids = (await guest.exec('taskset -c 0 sh -c "while :; do :; done" >/dev/null 2>&1 & echo $!; taskset -c 1 dd if=/dev/zero of=/dev/null bs=1M >/dev/null 2>&1 & echo $!')).trim().split(/\s+/);
  try {
    await sleep(2500);
    const t0 = await guest.truth();
    // The monitor's window is the last whole second: let it pass beyond truth()'s own burst of
    // processes in the guest, so every window lies inside [t0, t1] and sees only the steady load.
    await sleep(1500);
    const windows: MetricsWindow[] = [];
    for (let i = 0; i < 3; i++) {
      windows.push(await grassJson<MetricsWindow>(['metrics', ...args, '--json']));
      await sleep(1000);
    }
    const t1 = await guest.truth();
    const seconds = t1.uptimeSeconds - t0.uptimeSeconds;
    for (const cpu of [0, 1]) {
      const truth = procShares(t0, t1, cpu);
      for (const w of windows) {
        const m = w.cpus[cpu];
        const detail = `cpu${cpu}: metrics ${JSON.stringify(m)} vs /proc/stat ${JSON.stringify(truth)}`;
        assert.ok(Math.abs(m.usr - truth.usr) <= 15, detail);
        assert.ok(Math.abs(m.sys - truth.sys) <= 15, detail);
        assert.ok(Math.abs(m.idle + m.iowait - truth.idle) <= 15, detail);
        assert.ok(Math.abs(m.usr + m.sys + m.idle + m.iowait + m.steal - 100) < 0.01, detail);
      }
    }
    assert.ok(windows.every((w) => w.cpus[0].usr > 80 && w.cpus[1].sys > 50), JSON.stringify(windows.map((w) => w.cpus)));
    const ctxtRate = (t1.stat.contextSwitches - t0.stat.contextSwitches) / seconds;
    for (const w of windows) {
      assert.ok(Math.abs(w.contextSwitchesPerSecond - ctxtRate) <= 0.5 * ctxtRate + 100, `ctxt ${w.contextSwitchesPerSecond}/s vs /proc/stat ${ctxtRate}/s`);
      assert.ok(w.windowSeconds >= 1 && w.windowSeconds < 1.5, `window ${w.windowSeconds} s`);
      assert.ok(w.run >= 2, `run ${w.run} with two spinning tasks`);
      assert.equal(w.memTotalBytes, t1.meminfo.MemTotal * 1024);
    }
  } finally {
    await guest.exec(`kill ${pids.join(' ')}; true`);
  }
});

/** /proc/diskstats of one disk: field 10 (ms doing I/O) and completed reads + writes + discards + flushes. */
async function diskstats(name: string): Promise<{ ioMs: number; ios: number; uptime: number }> {
  const out = await guest.exec(`cat /proc/uptime; grep " ${name} " /proc/diskstats`);
  const [uptimeLine, line] = out.trim().split('\n');
  const f = line.trim().split(/\s+/).map(Number);
  // major minor name | reads merged sectors ms | writes merged sectors ms | in-flight io_ms weighted | discards ... | flushes ms
  return { ioMs: f[12], ios: f[3] + f[7] + (f[14] ?? 0) + (f[18] ?? 0), uptime: Number(uptimeLine.split(' ')[0]) };
}

/** CONFIG_HZ of the guest's kernel, from its config file (diskstats prints io_ticks in ms). */
function kernelHz(): number {
  const m = /^CONFIG_HZ=(\d+)$/m.exec(readFileSync(path.join(guest.kernelDir.dir, 'config'), 'utf8'));
  assert.ok(m, 'CONFIG_HZ in the kernel config');
  return Number(m[1]);
}

test('util: the whole disks and their io_ticks agree with /proc/diskstats (paused: exact bracket; reading the disk: the windows\' util within 30 points of the diskstats rate)', async () => {
  const hz = kernelHz();
  await guest.exec('dd if=/dev/zero of=/mnt/disk/grass-util bs=1M count=8 conv=fsync 2>/dev/null; true');
  const diskNames = (await guest.exec('ls /sys/block')).trim().split(/\s+/).filter((n) => /^vd/.test(n)).sort();
  const before = await diskstats('vdb');
  await guest.pause();
  let start: MetricsSample, end: MetricsSample;
  try {
    await sleep(2200);
    [start, end] = await fetchMetricsSamples(session.client);
  } finally {
    await guest.resume();
  }
  const after = await diskstats('vdb');
  assert.deepEqual(end.disks.map((d) => d.name).filter((n) => n.startsWith('vd')).sort(), diskNames);
  const vdb = end.disks.find((d) => d.name === 'vdb')!;
  assert.deepEqual(start.disks.find((d) => d.name === 'vdb'), vdb, 'paused: the two samples are equal');
  const ms = (Number(vdb.ioTicks) * 1000) / hz;
  assert.ok(ms >= before.ioMs && ms <= after.ioMs, `io_ticks ${vdb.ioTicks} = ${ms} ms vs diskstats ${before.ioMs}..${after.ioMs} ms`);
  assert.ok(Number(vdb.ios) >= before.ios && Number(vdb.ios) <= after.ios, `ios ${vdb.ios} vs diskstats ${before.ios}..${after.ios}`);
  assert.ok(before.ios > 0, 'the disk did I/O');

  // Reads of the whole disk with the page cache dropped before each pass: the disk stays busy at
  // little CPU cost (TCG makes writing through the page cache CPU-bound).
  const pid = (await guest.exec('(while :; do echo 1 > /proc/sys/vm/drop_caches; cat /dev/vdb > /dev/null; done) >/dev/null 2>&1 & echo $!')).trim();
  try {
    await sleep(2000);
    const d0 = await diskstats('vdb');
    await sleep(1500);
    const utils: number[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await grassJson<MetricsWindow>(['metrics', ...args, '--json']);
      utils.push(w.disks.find((d) => d.name === 'vdb')!.util);
      await sleep(1000);
    }
    const d1 = await diskstats('vdb');
    const truth = (100 * (d1.ioMs - d0.ioMs)) / ((d1.uptime - d0.uptime) * 1000);
    const mean = utils.reduce((a, b) => a + b, 0) / utils.length;
    console.log(`util windows ${utils.map((u) => u.toFixed(0)).join(' ')} % vs /proc/diskstats ${truth.toFixed(0)} %`);
    assert.ok(Math.abs(mean - truth) <= 30, `util ${utils.map((u) => u.toFixed(0)).join(' ')} % vs /proc/diskstats ${truth.toFixed(0)} %`);
    assert.ok(truth > 20, `the load keeps the disk busy (${truth.toFixed(0)} %)`);
  } finally {
    await guest.exec(`kill ${pid}; true`);
  }
});

test('a plugin part whose fields are missing is reported by name and left out; the other parts and the detectors run', async () => {
  // GRASS_PLUGIN_HIDE makes names absent from the BTF and symbols the agent resolves against.
  const hidden = 'disk_stats.io_ticks,__preempt_count,pcpu_hot';
  const shm = `/dev/shm/grass-it-hide-${process.pid}`;
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '../../src/cli/main.ts'), 'agent', '--memory', `qemu-ram:${guest.ramFile}`,
    '--memory-map', guest.memoryMapFile, '--listen', `shm:${shm}`, '--key-file', agent.keyFile, '--exit-with-parent'], { env: { ...process.env, GRASS_PLUGIN_HIDE: hidden }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${stderr}`)));
    });
    assert.match(stderr, /metrics part preempt off: no symbol __preempt_count or pcpu_hot/);
    assert.match(stderr, /metrics part disks off: BTF: struct disk_stats has no field io_ticks/);
    const hiddenArgs = ['--target', `shm:${shm}`, '--key-file', agent.keyFile];
    await sleep(2500);
    const w = await grassJson<MetricsWindow>(['metrics', ...hiddenArgs, '--json']);
    assert.deepEqual(w.parts, ['core', 'progress', 'timer', 'lockq']);
    assert.deepEqual(w.disks, []);
    assert.ok(w.memTotalBytes > 0 && w.cpus.length === 2 && w.jiffies > 0, JSON.stringify(w));
    const d = await grassJson<{ detections: { detector: string; error: string | null }[] }>(['detect', ...hiddenArgs, '--json']);
    assert.deepEqual(d.detections.map((x) => [x.detector, x.error]), [['cpu-high-load', null], ['memory-leak', null], ['hang', null]]);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(shm, { force: true });
  }
});

test('background area: the metric history follows the windows; modes: an inline detector is evaluated only when asked; grass detect --watch prints new windows', async () => {
  const hz = kernelHz();
  const client = session.client;
  await sleep(4500); // the last windows lie after the earlier tests' pauses (a paused guest's jiffies stand still)
  const area = await readBackground(client);
  assert.ok(area.history.length >= 3, `history of ${area.history.length} points`);
  for (const [i, p] of area.history.entries()) {
    // The newest three windows lie after the earlier tests' pauses (during a pause a window has
    // stretched to 3.5 s with jiffies 0); older points only have to be in order.
    if (i >= area.history.length - 3) {
      assert.ok(p.windowSeconds >= 0.9 && p.windowSeconds < 2, JSON.stringify(p));
      assert.ok(p.jiffies > 0, `the target's clock stood still in a window: ${JSON.stringify(p)}`);
    }
    assert.ok(Math.abs(p.usr + p.sys + p.iowait + p.idle - 100) <= 1 || p.usr + p.sys + p.iowait + p.idle === 0, JSON.stringify(p));
    if (i > 0) assert.ok(p.at > area.history[i - 1].at, 'oldest first');
  }
  // The target's own clock advanced HZ jiffies per second of the monitor's over the last three
  // windows (within 50 %: a TCG guest on a loaded host takes its timer ticks late and then in a
  // burst, so one window saw 128 and the next 345 at HZ 250 in a CI run; their sum holds).
  const recent = area.history.slice(-3);
  const jiffies = recent.reduce((sum, p) => sum + p.jiffies, 0);
  const seconds = recent.reduce((sum, p) => sum + p.windowSeconds, 0);
  assert.ok(Math.abs(jiffies / seconds - hz) <= 0.5 * hz, `jiffies ${recent.map((p) => p.jiffies).join(' + ')} in ${seconds.toFixed(3)} s, HZ ${hz}`);
  const meminfo = (await guest.truth()).meminfo;
  const last = area.history[area.history.length - 1];
  assert.ok(Math.abs(last.memFreeMiB - meminfo.MemFree / 1024) <= 16, `free ${last.memFreeMiB} MiB vs MemFree ${meminfo.MemFree} kB`);

  try {
    const set = await setDetectorModes(client, ['cpu-high-load', 'memory-leak']);
    assert.deepEqual(set.map((d) => [d.detector, d.mode]), [['cpu-high-load', 'background'], ['memory-leak', 'background'], ['hang', 'inline']]);
    await sleep(3500);
    const bg = (await readBackground(client)).detections;
    const hang = bg.find((d) => d.detector === 'hang')!;
    const cpu = bg.find((d) => d.detector === 'cpu-high-load')!;
    assert.equal(hang.mode, 'inline');
    assert.ok(cpu.evaluatedAt - hang.evaluatedAt >= 2, `inline hang not evaluated in the background: ${hang.evaluatedAt} vs ${cpu.evaluatedAt}`);
    const asked = await fetchDetections(client);
    assert.ok(asked.find((d) => d.detector === 'hang')!.evaluatedAt >= cpu.evaluatedAt, 'a request evaluates the inline detector on the latest window');
  } finally {
    await setDetectorModes(client, ['cpu-high-load', 'memory-leak', 'hang']);
  }

  const newest = (await readBackground(client)).history.at(-1)!.at;
  const watch = spawn(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '../../src/cli/main.ts'), 'detect', ...args, '--watch', '--json', '--interval-ms', '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  watch.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  await sleep(6000);
  watch.kill('SIGINT');
  await new Promise((r) => watch.once('exit', r));
  const windows = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { window?: { at: number } }).filter((x) => x.window && x.window.at > newest);
  assert.ok(windows.length >= 3, `--watch printed ${windows.length} windows newer than its start: ${out.slice(0, 500)}`);
});
