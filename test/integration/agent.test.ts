// The agent and the protocol client end to end on a real Debian kernel (testbed guest, KASLR
// off, 512 MiB): `grass agent` on the guest's RAM file, the CLI verbs and the client against
// the guest's own view of itself. One guest for the whole file; the panic comes last.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest, type GroundTruth } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import * as L from '../../src/rdma/protocol/layout';
import { TargetReadError } from '../../src/types/target';
import { assertTasksMatchTruth, grass, grassJson, GuestAgent, PsTask, root, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;
let scratch: string;
let args: string[];

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-agent-it-'));
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
  rmSync(scratch, { recursive: true, force: true });
});

interface Describe {
  release: string;
  kaslrOffset: string;
  pagingLevels: number;
  cpuCount: number;
  memoryMap: { physStart: string; length: string }[];
  symbolCount: number;
  btfBytes: number;
}

/** Physical → offset in the RAM file, from the testbed's memory map. */
function ramFileOffset(phys: bigint): number {
  for (const r of guest.memoryMap().ranges) {
    const start = BigInt(r.physStart);
    if (phys >= start && phys < start + BigInt(r.length)) return Number(phys - start + BigInt(r.fileOffset));
  }
  throw new Error(`physical 0x${phys.toString(16)} is not in the guest's memory map`);
}

function ramFileBytes(phys: bigint, length: number): Buffer {
  const fd = openSync(guest.ramFile, 'r');
  try {
    const out = Buffer.alloc(length);
    readSync(fd, out, 0, length, ramFileOffset(phys));
    return out;
  } finally {
    closeSync(fd);
  }
}

async function guestSymbol(name: string): Promise<bigint> {
  const line = (await guest.exec(`grep ' ${name}$' /proc/kallsyms`)).trim().split('\n')[0];
  return BigInt('0x' + line.split(' ')[0]);
}

test('describe matches the guest: release, levels, KASLR, CPUs, memory map, BTF, symbols', async () => {
  const d = await grassJson<Describe>(['describe', ...args]);
  assert.equal(d.release, (await guest.exec('uname -r')).trim());
  assert.equal(d.pagingLevels, 4);
  assert.equal(d.kaslrOffset, '0x0');
  assert.equal(d.cpuCount, Number((await guest.exec('nproc')).trim()));
  assert.deepEqual(
    d.memoryMap.map((r) => [BigInt(r.physStart), BigInt(r.length)]),
    guest.memoryMap().ranges.map((r) => [BigInt(r.physStart), BigInt(r.length)]),
  );
  assert.equal(d.btfBytes, Number((await guest.exec('wc -c < /sys/kernel/btf/vmlinux')).trim()));
  const description = await session.client.describe();
  const guestBtfHash = (await guest.exec('sha256sum /sys/kernel/btf/vmlinux')).trim().split(/\s+/)[0];
  assert.equal(createHash('sha256').update(description.btf).digest('hex'), guestBtfHash);
  for (const name of ['init_task', 'linux_banner', 'jiffies']) {
    assert.equal(description.symbols.find((s) => s.name === name)?.address, await guestSymbol(name), `address of ${name}`);
  }
  assert.equal(d.symbolCount, description.symbols.length);
});

test('ps --json with the guest paused equals the guest\'s own process list (leaders and threads)', async () => {
  // The truths are read while the guest runs, just before and after the paused listing; a task
  // that changed state in between and back (an RCU kthread woken by the reading itself; CI saw
  // rcu_preempt R where both truths said I) can still differ, so a mismatch gets two more tries.
  let leaders: PsTask[] = [];
  let threads: PsTask[] = [];
  let truthBefore: GroundTruth;
  for (let attempt = 1; ; attempt++) {
    truthBefore = await guest.truth();
    await guest.pause();
    try {
      leaders = (await grassJson<{ tasks: PsTask[] }>(['ps', ...args])).tasks;
      threads = (await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...args])).tasks;
    } finally {
      await guest.resume();
    }
    const after = await guest.truth();
    try {
      const compared = assertTasksMatchTruth(leaders, truthBefore, after, false);
      assertTasksMatchTruth(threads, truthBefore, after, true);
      assert.ok(compared >= truthBefore.tasks.filter((t) => t.pid === t.tgid).length / 2, `states compared for only ${compared} tasks`);
      break;
    } catch (err) {
      if (attempt === 3) throw err;
      console.log(`ps vs truth, attempt ${attempt}: ${(err as Error).message.split('\n')[0]}; again`);
    }
  }
  assert.deepEqual(Object.keys(leaders[0]).sort(), ['comm', 'cpu', 'pid', 'ppid', 'rssBytes', 'state', 'stimeNs', 'tgid', 'threads', 'utimeNs']);
  assert.ok(leaders.every((t) => t.pid === t.tgid && t.pid > 0), 'only thread-group leaders, no idle task by default');
  assert.ok(threads.length > leaders.length || truthBefore!.tasks.every((t) => t.threads === 1));
});

test('ps --idle adds one idle task (pid 0) per CPU', async () => {
  const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', '--idle', ...args]);
  const idle = tasks.filter((t) => t.pid === 0);
  const cpus = Number((await guest.exec('nproc')).trim());
  assert.deepEqual(idle.map((t) => t.comm).sort(), Array.from({ length: cpus }, (_, i) => `swapper/${i}`).sort());
});

test('kernel-virtual reads: linux_banner, init_task.comm (offset from pahole), jiffies moving', async () => {
  const banner = await grassJson<{ hex: string }>(['read', 'linux_banner', '256', ...args]);
  const text = Buffer.from(banner.hex, 'hex').toString('latin1');
  assert.equal(text.slice(0, text.indexOf('\n') + 1), await guest.exec('cat /proc/version'));

  const btfFile = path.join(scratch, 'vmlinux.btf');
  writeFileSync(btfFile, (await session.client.describe()).btf);
  const pahole = execFileSync('pahole', ['-F', 'btf', '-C', 'task_struct', btfFile], { encoding: 'utf8' });
  const commOffset = Number(/\bcomm\[16\];\s*\/\*\s*(\d+)/.exec(pahole)?.[1]);
  assert.ok(commOffset > 0, 'pahole names task_struct.comm');
  const comm = await grassJson<{ hex: string }>(['read', `init_task+${commOffset}`, '16', ...args]);
  assert.equal(Buffer.from(comm.hex, 'hex').toString('latin1').replace(/\0.*$/s, ''), 'swapper/0');

  const unknown = await grass(['read', 'no_such_symbol_here', '8', ...args]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no symbol 'no_such_symbol_here' in the target's kallsyms/);

  const jiffies = async (): Promise<bigint> => Buffer.from((await grassJson<{ hex: string }>(['read', 'jiffies', '8', ...args])).hex, 'hex').readBigUInt64LE();
  const first = await jiffies();
  await sleep(300);
  assert.ok((await jiffies()) > first, 'jiffies moves while the guest runs');
});

test('physical reads (one slot and several) equal the RAM file with the guest paused', async () => {
  const start = BigInt(guest.memoryMap().ranges[0].physStart) + 0x100000n;
  const length = 3 * (1 << 20) + 123; // more than one slot's data area
  const out = path.join(scratch, 'phys.bin');
  await guest.pause();
  try {
    const r = await grass(['read', `0x${start.toString(16)}`, String(length), '--phys', '--out', out, ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(out).equals(ramFileBytes(start, length)));
    const small = await grassJson<{ hex: string }>(['read', `0x${(start + 4096n).toString(16)}`, '64', '--phys', ...args]);
    assert.equal(small.hex, ramFileBytes(start + 4096n, 64).toString('hex'));
  } finally {
    await guest.resume();
  }
});

test('user reads through a process\'s page table: the ELF header of init\'s executable mapping', async () => {
  const maps = await guest.exec('cat /proc/1/maps');
  const line = maps.split('\n').find((l) => / 00000000 [0-9a-f]+:[0-9a-f]+ \d+ +\//.test(l));
  assert.ok(line, `init maps a file at offset 0:\n${maps}`);
  const address = '0x' + line.split('-')[0];
  const r = await grassJson<{ hex: string; space: string; pid: number }>(['read', address, '4', '--pid', '1', ...args]);
  assert.equal(r.space, 'user');
  assert.equal(r.hex, '7f454c46');
  const noProcess = await grass(['read', address, '4', '--pid', '999999', ...args]);
  assert.equal(noProcess.code, 1);
  assert.match(noProcess.stderr, /read of 4 bytes at user\(pid 999999\) 0x[0-9a-f]+ failed: /);
});

test('readBatch: good entries equal single reads, a bad one fails alone naming its address', async () => {
  const client = session.client;
  const banner = (await client.describe()).symbols.find((s) => s.name === 'linux_banner')!.address;
  const kernel = { kind: 'kernel' } as const;
  const results = await client.readBatch([
    { space: kernel, address: banner, length: 32 },
    { space: kernel, address: 0x10n, length: 8 },
    { space: kernel, address: banner + 8n, length: 5000 },
  ]);
  const single = await client.read(kernel, banner, 5008);
  assert.deepEqual(Buffer.from(results[0] as Uint8Array), Buffer.from(single.subarray(0, 32)));
  assert.ok(results[1] instanceof TargetReadError && /0x10\b/.test(results[1].message), String(results[1]));
  assert.deepEqual(Buffer.from(results[2] as Uint8Array), Buffer.from(single.subarray(8, 5008)));
  await assert.rejects(client.read(kernel, 0x10n, 8), (e: Error) => e instanceof TargetReadError && /not mapped/.test(e.message));
});

async function refusedCount(): Promise<number> {
  return (await grassJson<{ requestsRefused: number }>(['heartbeat', ...args])).requestsRefused;
}

test('a forged request (wrong key) is refused and counted', async () => {
  const refusedBefore = await refusedCount();
  const wrongKey = path.join(scratch, 'wrong-key');
  writeNewKeyFile(wrongKey);
  const r = await grass(['heartbeat', '--target', agent.target, '--key-file', wrongKey]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bad authenticator/);
  assert.ok((await refusedCount()) > refusedBefore);
});

test('a replayed request (valid MAC, old seq) is refused and counted, and not answered as new', async () => {
  const client = session.client;
  const t = client.transport;
  const slotBase = client.header.headerBytes; // slot 0, where heartbeats go
  await client.heartbeat();
  const captured = await t.read(slotBase + L.slotOffsets.request, L.request.size);
  const capturedSeq = Buffer.from(captured).readBigUInt64LE(0);
  await client.heartbeat(); // the slot moves on
  const refusedBefore = (await client.liveness()).requestsRefused;

  await t.write(slotBase + L.slotOffsets.request, captured);
  await t.writeWord(slotBase + L.slotOffsets.requestMark, capturedSeq);
  const deadline = Date.now() + 5000;
  while ((await t.readWord(slotBase + L.slotOffsets.replyMark)) !== capturedSeq) {
    assert.ok(Date.now() < deadline, 'the agent answers the replay');
    await sleep(5);
  }
  const reply = Buffer.from(await t.read(slotBase + L.slotOffsets.reply, L.reply.size));
  assert.equal(reply.readUInt32LE(L.reply.fields.status.offset), L.Status.Replay);
  assert.ok((await client.liveness()).requestsRefused > refusedBefore);
  // A client attached now starts past every mark and is served.
  const fresh = await connectTarget(agent.target, { keyFile: agent.keyFile });
  try {
    await fresh.client.heartbeat();
  } finally {
    await fresh.close();
  }
});

test('a stopped monitor is reported as not answering (exit 3); a missing buffer as transport dead (exit 4)', async () => {
  const agentPid = Number(agent.ready.pid);
  process.kill(agentPid, 'SIGSTOP');
  let r;
  try {
    r = await grass(['heartbeat', '--timeout-ms', '500', ...args]);
  } finally {
    process.kill(agentPid, 'SIGCONT');
  }
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /monitor not answering/);
  const gone = await grass(['heartbeat', '--target', `shm:${agent.shmPath}-missing`, '--key-file', agent.keyFile]);
  assert.equal(gone.code, 4, gone.stderr);
  assert.match(gone.stderr, /cannot open the agent's buffer/);
  assert.equal((await grass(['heartbeat', ...args])).code, 0);
});

test('offline images: qemu-ram: and an ELF vmcore give the same ps and banner as the live agent', async () => {
  const vmcore = path.join(scratch, 'guest.vmcore');
  await guest.pause();
  try {
    const live = await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...args]);
    await guest.dump(vmcore);
    const ramTarget = `qemu-ram:${guest.ramFile}?map=${guest.memoryMapFile}`;
    assert.deepEqual(await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', '--target', ramTarget]), live);
    assert.deepEqual(await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', '--target', `vmcore:${vmcore}`]), live);
    const banner = await grassJson<{ hex: string }>(['read', 'linux_banner', '64', '--target', `vmcore:${vmcore}`]);
    assert.match(Buffer.from(banner.hex, 'hex').toString('latin1'), /^Linux version /);
  } finally {
    await guest.resume();
    rmSync(vmcore, { force: true });
  }
});

test('small slots (2 × 4 KiB data): chunked replies and split reads give the same answers', async () => {
  const small = await startGuestAgent(guest, `qemu-ram:${guest.ramFile}`, ['--slots', '2', '--slot-data-bytes', '4096']);
  const smallArgs = ['--target', small.target, '--key-file', small.keyFile];
  const start = BigInt(guest.memoryMap().ranges[0].physStart) + 0x100000n;
  await guest.pause();
  try {
    assert.equal(small.ready.slotDataBytes, 4096);
    assert.deepEqual(await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...smallArgs]), await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...args]));
    assert.deepEqual(await grassJson<Describe>(['describe', ...smallArgs]), await grassJson<Describe>(['describe', ...args]));
    const length = 100_000;
    const r = await grassJson<{ hex: string }>(['read', `0x${start.toString(16)}`, String(length), '--phys', ...smallArgs]);
    assert.equal(r.hex, ramFileBytes(start, length).toString('hex'));
  } finally {
    await guest.resume();
    await small.stop();
  }
});

function runClientProcess(small: GuestAgent, iterations: number): Promise<{ requests: number; readsChecked: number; heartbeats: number }> {
  const workerArgs = ['--import', 'tsx', path.join(__dirname, 'agent-client-worker.ts'), small.target, small.keyFile, guest.ramFile, JSON.stringify(guest.memoryMap().ranges), String(iterations)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, workerArgs, { cwd: root, timeout: 180_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`client process failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as { requests: number; readsChecked: number; heartbeats: number });
    });
  });
}

test('several clients on a 3-slot agent: processes sharing slots, and 40 reads in flight on one client', async () => {
  // Few slots, so that the clients must share them: claims decide who uses which.
  const small = await startGuestAgent(guest, `qemu-ram:${guest.ramFile}`, ['--slots', '3', '--slot-data-bytes', '8192']);
  const observer = await connectTarget(small.target, { keyFile: small.keyFile });
  await guest.pause();
  try {
    const before = await observer.client.liveness();
    const iterations = 60;
    const results = await Promise.all([runClientProcess(small, iterations), runClientProcess(small, iterations), runClientProcess(small, iterations)]);
    for (const r of results) {
      assert.equal(r.readsChecked, iterations);
      assert.equal(r.heartbeats, iterations);
    }
    const after = await observer.client.liveness();
    assert.equal(after.requestsRefused, before.requestsRefused, 'no request was refused (no two clients collided on a slot)');
    const lowerBound = results.reduce((sum, r) => sum + r.requests, 0);
    assert.ok(after.requestsServed - before.requestsServed >= BigInt(lowerBound), `served ${after.requestsServed - before.requestsServed} < ${lowerBound}`);

    const range = guest.memoryMap().ranges[0];
    const reads = Array.from({ length: 40 }, (_, i) => ({ phys: BigInt(range.physStart) + 0x100000n + BigInt(i) * 12_345n, length: 1000 + i * 700 }));
    const got = await Promise.all(reads.map((r) => observer.client.read({ kind: 'physical' }, r.phys, r.length)));
    reads.forEach((r, i) => assert.ok(ramFileBytes(r.phys, r.length).equals(Buffer.from(got[i])), `read ${i} at 0x${r.phys.toString(16)}`));
  } finally {
    await guest.resume();
    await observer.close();
    await small.stop();
  }
});

test('after echo c > /proc/sysrq-trigger, heartbeat and ps keep answering', async () => {
  await guest.fault('panic');
  await guest.waitForConsole(/Kernel panic/, 30_000);
  const hb = await grassJson<{ livenessCounter: number }>(['heartbeat', ...args]);
  assert.ok(hb.livenessCounter > 0);
  const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', ...args]);
  assert.ok(tasks.some((t) => t.pid === 1), 'init is still listed');
  const jiffies = await grassJson<{ hex: string }>(['read', 'jiffies', '8', ...args]);
  assert.equal(jiffies.hex.length, 16);
});
