// Checks grass-agent end to end against a real testbed guest and prints what it found; exits
// non-zero on any mismatch. Ground truth comes from the guest itself (its /proc through the
// testbed, /proc/version) and from pahole on the kernel's own BTF, never from the agent.
//
//   node --import tsx gpu/verify/verify-guest.ts [--kernel PKG] [--kaslr] [--mem MiB] [--cpus N] [--cpu-model max] [--vmcore] [--panic]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, startAgent } from '../../testbed';
import type { Guest, GroundTruth } from '../../testbed';
import { GrassClient } from '../../src/rdma/client';
import { connectTarget } from '../../src/rdma/connect';
import { openShmTransport } from '../../src/rdma/shm';
import type { TaskRecord } from '../../src/rdma/protocol/codec';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
let failures = 0;
function check(ok: boolean, what: string, detail = ''): void {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
}

/** ps's fields per pid except comm. */
function byPid(tasks: { pid: number; ppid: number; state: string; threads: number; tgid: number }[]): Map<number, string> {
  return new Map(tasks.map((t) => [t.pid, `tgid=${t.tgid} ppid=${t.ppid} state=${t.state} threads=${t.threads}`]));
}

/**
 * comm as task_struct holds it (15 characters) against /proc's, which shows kernel threads' full
 * names and workqueue workers' current work after the comm ("kworker/0:1-events").
 */
function sameComm(agent: string, proc: string): boolean {
  return agent.length > 0 && (proc === agent || (agent.length <= 15 && proc.startsWith(agent)));
}

/** Differences from the guest's tasks; `created` are the truth command's own processes (gone by now). */
function differences(ours: TaskRecord[], truthTasks: GroundTruth['tasks'], created: (pid: number) => boolean): string[] {
  const a = byPid(ours);
  const comms = new Map(ours.map((t) => [t.pid, t.comm]));
  const tasks = truthTasks.filter((t) => a.has(t.pid) || !created(t.pid));
  const b = byPid(tasks);
  const diffs: string[] = [];
  for (const t of tasks) {
    if (a.get(t.pid) !== b.get(t.pid)) diffs.push(`pid ${t.pid}: guest ${b.get(t.pid)} / agent ${a.get(t.pid) ?? 'missing'}`);
    else if (!sameComm(comms.get(t.pid)!, t.comm)) diffs.push(`pid ${t.pid}: comm guest ${t.comm} / agent ${comms.get(t.pid)}`);
  }
  for (const [pid, t] of a) if (!b.has(pid)) diffs.push(`pid ${pid}: agent only ${t}`);
  return diffs;
}

async function groundTruthPaused(guest: Guest): Promise<GroundTruth> {
  // The truth helper's own processes run while it reads /proc; the guest is paused right after.
  const truth = await guest.truth();
  await guest.pause();
  return truth;
}

async function main(): Promise<void> {
  const guest = await bootGuest({
    kaslr: flag('--kaslr'),
    memMiB: option('--mem') ? Number(option('--mem')) : undefined,
    cpus: option('--cpus') ? Number(option('--cpus')) : undefined,
    cpuModel: option('--cpu-model'),
    kernel: option('--kernel'),
  });
  try {
    const started = Date.now();
    const agent = await startAgent(guest);
    console.log(`agent ready in ${Date.now() - started} ms: ${fs.readFileSync(path.join(guest.record.runDir, 'agent.out'), 'utf8').trim()}`);
    const session = await connectTarget(agent.target, { keyFile: agent.keyFile });
    const client = session.client;
    const d = await client.describe();
    console.log(`release ${d.release}, ${d.pagingLevels}-level, kaslr 0x${d.kaslrOffset.toString(16)}, phys_base 0x${d.physBase.toString(16)}, ${d.symbols.length} symbols, BTF ${d.btf.length} bytes, ${d.memoryMap.length} ranges`);
    const release = (await guest.exec('uname -r')).trim();
    check(d.release === release, 'release equals the guest\'s uname -r', `${d.release} / ${release}`);
    const la57 = (await guest.exec('grep -c la57 /proc/cpuinfo || true')).trim() !== '0';
    check(d.pagingLevels === (la57 ? 5 : 4), `paging levels ${d.pagingLevels} (guest CPU ${la57 ? 'has' : 'lacks'} la57)`);
    const sym = (name: string): bigint => {
      const s = d.symbols.find((x) => x.name === name);
      if (!s) throw new Error(`no symbol ${name}`);
      return s.address;
    };
    const kallsyms = await guest.exec('grep -E " (_text|init_task|jiffies)$" /proc/kallsyms');
    for (const line of kallsyms.trim().split('\n')) {
      const [addr, , name] = line.trim().split(/\s+/);
      check(sym(name) === BigInt(`0x${addr}`), `symbol ${name} decoded from memory equals the guest's /proc/kallsyms`, `0x${sym(name).toString(16)} / 0x${addr}`);
    }

    // Kernel-virtual reads: the banner, init_task.comm (offset from pahole), jiffies moving.
    const version = (await guest.exec('cat /proc/version')).trim();
    const banner = Buffer.from(await client.read({ kind: 'kernel' }, sym('linux_banner'), version.length)).toString('latin1');
    check(banner === version, 'linux_banner read through the agent equals /proc/version');
    const btfFile = guest.record.kernel.btf;
    const pahole = execFileSync('pahole', ['-C', 'task_struct', btfFile], { encoding: 'utf8' });
    const commOffset = Number(/\bcomm\[16\];\s*\/\*\s*(\d+)/.exec(pahole)![1]);
    const comm = Buffer.from(await client.read({ kind: 'kernel' }, sym('init_task') + BigInt(commOffset), 16)).toString('latin1').replace(/\0.*$/s, '');
    check(comm === 'swapper/0', `init_task.comm (offset ${commOffset} by pahole) reads '${comm}'`);
    // vmalloc (VMAP_STACK): init's stack ends in STACK_END_MAGIC. User space: init's argv through
    // its own page tables equals /proc/1/cmdline.
    const offsetIn = (struct: string, field: string): number => {
      const text = execFileSync('pahole', ['-C', struct, btfFile], { encoding: 'utf8' });
      const m = new RegExp(`[\\s*]${field}(\\[\\d+\\])?;\\s*/\\*\\s*(\\d+)`).exec(text);
      if (!m) throw new Error(`pahole: no ${struct}.${field}`);
      return Number(m[2]);
    };
    const u64 = async (va: bigint): Promise<bigint> => Buffer.from(await client.read({ kind: 'kernel' }, va, 8)).readBigUInt64LE();
    const initTask = (await client.processList()).find((t) => t.pid === 1)!.taskAddress;
    const stack = await u64(initTask + BigInt(offsetIn('task_struct', 'stack')));
    const magic = Buffer.from(await client.read({ kind: 'kernel' }, stack, 4)).readUInt32LE();
    check(magic === 0x57ac6e9d, `init's stack at 0x${stack.toString(16)} (vmalloc, page tables) starts with STACK_END_MAGIC`, `0x${magic.toString(16)}`);
    const mm = await u64(initTask + BigInt(offsetIn('task_struct', 'mm')));
    const argStart = await u64(mm + BigInt(offsetIn('mm_struct', 'arg_start')));
    const argEnd = await u64(mm + BigInt(offsetIn('mm_struct', 'arg_end')));
    const argv = Buffer.from(await client.read({ kind: 'user', pid: 1 }, argStart, Number(argEnd - argStart))).toString('latin1');
    const cmdline = await guest.exec('cat /proc/1/cmdline | od -An -c | tr -d " \\n"');
    check(argv.replace(/\0/g, '\\0') === cmdline.trim(), `init's argv read in its user space equals /proc/1/cmdline`, JSON.stringify(argv));
    const jiffies = async (): Promise<bigint> => Buffer.from(await client.read({ kind: 'kernel' }, sym('jiffies'), 8)).readBigUInt64LE();
    const j1 = await jiffies();
    await sleep(1000);
    const j2 = await jiffies();
    check(j2 > j1, `jiffies moves on a running guest`, `${j1} -> ${j2}`);

    // The process list, with a multi-threaded process and a few children, against the paused guest.
    const threaded = await guest.spawn(3, { threads: true });
    await guest.spawn(2);
    // PIDs grow: what the truth command starts gets pids above every task that exists now.
    // The truth is read while the guest runs and the guest is paused right after, so a task may
    // change state in between: up to 3 rounds, the first exact one counts.
    const lastPidBefore = Math.max(...(await client.processList({ threads: true })).map((t) => t.pid));
    const created = (pid: number): boolean => pid > lastPidBefore;
    let truth!: GroundTruth;
    let leaderDiffs: string[] = [], threadDiffs: string[] = [], rounds = 0;
    for (; rounds < 3; rounds++) {
      if (rounds) await guest.resume();
      truth = await groundTruthPaused(guest);
      leaderDiffs = differences(await client.processList(), truth.tasks.filter((t) => t.pid === t.tgid), created);
      threadDiffs = differences(await client.processList({ threads: true }), truth.tasks, created);
      if (!leaderDiffs.length && !threadDiffs.length) break;
      console.log(`     round ${rounds + 1}: ${[...leaderDiffs, ...threadDiffs].slice(0, 6).join('; ')}`);
    }
    const leaders = truth.tasks.filter((t) => t.pid === t.tgid && !created(t.pid)).length;
    check(!leaderDiffs.length, `ps equals the paused guest's ${leaders} processes (pid, tgid, ppid, comm, state, threads)`, leaderDiffs.slice(0, 8).join('; '));
    check(!threadDiffs.length, `ps --threads equals the guest's ${truth.tasks.filter((t) => !created(t.pid)).length} threads`, threadDiffs.slice(0, 8).join('; '));
    const withThreads = await client.processList({ threads: true });
    check(withThreads.filter((t) => t.tgid === threaded.holderPid).length === 4, `ps --threads lists the spawned process's 4 threads`);
    const count = await client.processCount();
    check(count === (await client.processList()).length, `PROCESS_COUNT ${count} equals the list's length`);
    const idle = await client.processList({ idle: true });
    check(idle.filter((t) => t.pid === 0).length === d.cpuCount, `--idle adds one idle task per CPU (${d.cpuCount})`);
    const init = (await client.processList()).find((t) => t.pid === 1)!;
    const truthInit = truth.tasks.find((t) => t.pid === 1)!;
    check(init.rssBytes === BigInt(truthInit.rssPages * 4096), `init's RSS ${init.rssBytes} equals the guest's ${truthInit.rssPages} pages`);

    // vmcore of the paused guest: the same process list from the ELF file.
    if (flag('--vmcore')) {
      const core = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'grass-verify-')), 'vmcore');
      await guest.dump(core);
      const live = await client.processList({ threads: true });
      const offline = await connectTarget(`vmcore:${core}`);
      const fromCore = await offline.client.processList({ threads: true });
      const od = await offline.client.describe();
      check(JSON.stringify(fromCore, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) === JSON.stringify(live, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
        `vmcore (${fs.statSync(core).size} bytes, ${od.memoryMap.length} ranges): every record equals the live agent's (${fromCore.length} tasks)`);
      const coreBanner = Buffer.from(await offline.client.read({ kind: 'kernel' }, sym('linux_banner'), version.length)).toString('latin1');
      check(coreBanner === version, 'vmcore: linux_banner equals /proc/version');
      await offline.close();
      fs.rmSync(path.dirname(core), { recursive: true, force: true });
    }
    await guest.resume();

    // Forged and replayed requests are refused and counted.
    const before = await client.liveness();
    const forger = await GrassClient.attach(await openShmTransport(agent.target.slice(4)), new Uint8Array(32).fill(7), { timeoutMs: 2000 });
    let forgedStatus = 'accepted';
    try {
      await forger.heartbeat();
    } catch (e) {
      forgedStatus = (e as Error).message;
    }
    await forger.close();
    check(/bad authenticator/.test(forgedStatus), 'a heartbeat under the wrong key is refused', forgedStatus);
    const transport = await openShmTransport(agent.target.slice(4));
    const base = client.header.headerBytes; // slot 0
    await client.heartbeat();
    const captured = await transport.read(base, 96);
    const capturedSeq = Buffer.from(captured).readBigUInt64LE(0);
    await client.heartbeat();
    await client.heartbeat();
    await transport.write(base, captured);
    await transport.writeWord(base + 96, capturedSeq);
    let replayStatus = -1;
    for (let i = 0; i < 2000 && replayStatus < 0; i++) {
      if ((await transport.readWord(base + 184)) === capturedSeq) replayStatus = Buffer.from(await transport.read(base + 128, 16)).readUInt32LE(8);
      else await sleep(1);
    }
    await transport.close();
    check(replayStatus === 2, `a replayed (captured, genuine) request is refused with GRASS_E_REPLAY`, `status ${replayStatus}`);
    const after = await client.liveness();
    check(after.requestsRefused - before.requestsRefused === 2n, `requests_refused counted both`, `${before.requestsRefused} -> ${after.requestsRefused}`);

    if (flag('--panic')) {
      const r = await guest.fault('panic');
      console.log(`panic: ${JSON.stringify(r).slice(0, 200)}`);
      await sleep(2000);
      const hb = await client.heartbeat();
      check(true, `heartbeat after the panic: ${Number(hb.roundTripNs) / 1000} us`);
      const ps = await client.processList();
      check(ps.length > 10, `ps after the panic: ${ps.length} processes`);
      const log = Buffer.from(await client.read({ kind: 'kernel' }, sym('jiffies'), 8)).readBigUInt64LE();
      check(log > 0n, `kernel reads after the panic (jiffies ${log})`);
    }
    await session.close();
    await agent.stop();
  } finally {
    await guest.down();
  }
  console.log(failures ? `${failures} check(s) FAILED` : 'all checks passed');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
