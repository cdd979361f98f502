// The agent on the kernels' harder set-ups, one guest at a time, given only the RAM file and
// its map: KASLR with 5-level paging (`--cpu-model max`) also served from an ELF vmcore, and
// RAM above 4 GiB (q35 puts part of it at 4 GiB; file offsets differ from physical addresses).
import { describe, after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, Guest } from '../../testbed';
import { assertTasksMatchTruth, grass, grassJson, GuestAgent, PsTask, startGuestAgent } from './agent-harness';

interface Describe {
  release: string;
  kaslrOffset: string;
  pageOffsetBase: string;
  pagingLevels: number;
  memoryMap: { physStart: string; length: string }[];
}

/** The guest's KASLR slide from outside: its `_text` now minus the link address in vmlinux. */
async function guestKaslrOffset(guest: Guest): Promise<bigint> {
  const text = BigInt('0x' + (await guest.exec("grep ' _text$' /proc/kallsyms")).trim().split(' ')[0]);
  const load = /^\s*LOAD\s+\S+\s+(0x[0-9a-f]+)/m.exec(execFileSync('readelf', ['-lW', guest.kernelDir.vmlinux], { encoding: 'utf8' }));
  assert.ok(load, 'vmlinux has a LOAD segment');
  return text - BigInt(load[1]);
}

async function psMatchesTruth(guest: Guest, args: string[]): Promise<PsTask[]> {
  const before = await guest.truth();
  await guest.pause();
  let listed: PsTask[];
  try {
    listed = (await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...args])).tasks;
  } finally {
    await guest.resume();
  }
  assertTasksMatchTruth(listed, before, await guest.truth(), true);
  return listed;
}

async function bannerMatches(guest: Guest, args: string[]): Promise<void> {
  const banner = await grassJson<{ hex: string }>(['read', 'linux_banner', '256', ...args]);
  const text = Buffer.from(banner.hex, 'hex').toString('latin1');
  assert.equal(text.slice(0, text.indexOf('\n') + 1), await guest.exec('cat /proc/version'));
}

function ramFileBytes(guest: Guest, phys: bigint, length: number): Buffer {
  const range = guest.memoryMap().ranges.find((r) => phys >= BigInt(r.physStart) && phys + BigInt(length) <= BigInt(r.physStart) + BigInt(r.length));
  assert.ok(range, `0x${phys.toString(16)} is in the memory map`);
  const fd = openSync(guest.ramFile, 'r');
  try {
    const out = Buffer.alloc(length);
    readSync(fd, out, 0, length, Number(phys - BigInt(range.physStart) + BigInt(range.fileOffset)));
    return out;
  } finally {
    closeSync(fd);
  }
}

describe('KASLR on, 5-level paging (--cpu-model max), and the same from a vmcore', () => {
  let guest: Guest;
  let agent: GuestAgent;
  let args: string[];
  const scratch = mkdtempSync(path.join(tmpdir(), 'grass-variants-'));

  before(async () => {
    guest = await bootGuest({ kaslr: true, cpuModel: 'max', memMiB: 512, cpus: 2 });
    agent = await startGuestAgent(guest);
    args = ['--target', agent.target, '--key-file', agent.keyFile];
  });

  after(async () => {
    await agent?.stop();
    await guest?.down();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('describe says 5 levels and the guest\'s own KASLR slide', async () => {
    assert.match(await guest.exec('grep -o -w la57 /proc/cpuinfo | head -1'), /la57/);
    const d = await grassJson<Describe>(['describe', ...args]);
    assert.equal(d.pagingLevels, 5);
    const slide = await guestKaslrOffset(guest);
    assert.notEqual(slide, 0n, 'the guest booted with its image slid');
    assert.equal(BigInt(d.kaslrOffset), slide);
  });

  test('ps equals the guest\'s process list; kernel-virtual reads return the banner', async () => {
    await psMatchesTruth(guest, args);
    await bannerMatches(guest, args);
  });

  test('an ELF vmcore of the paused guest gives the same description, ps and banner', async () => {
    const vmcore = path.join(scratch, 'guest.vmcore');
    await guest.pause();
    try {
      const live = await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...args]);
      const liveDescribe = await grassJson<Describe>(['describe', ...args]);
      await guest.dump(vmcore);
      const target = ['--target', `vmcore:${vmcore}`];
      const offline = await grassJson<Describe>(['describe', ...target]);
      assert.equal(offline.pagingLevels, 5);
      assert.equal(offline.kaslrOffset, liveDescribe.kaslrOffset);
      assert.deepEqual(await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', ...target]), live);
      const banner = await grassJson<{ hex: string }>(['read', 'linux_banner', '64', ...target]);
      assert.match(Buffer.from(banner.hex, 'hex').toString('latin1'), /^Linux version /);
    } finally {
      await guest.resume();
      rmSync(vmcore, { force: true });
    }
  });
});

describe('RAM above 4 GiB (4608 MiB guest, KASLR on)', () => {
  let guest: Guest;
  let agent: GuestAgent;
  let args: string[];
  const scratch = mkdtempSync(path.join(tmpdir(), 'grass-variants-'));

  before(async () => {
    guest = await bootGuest({ kaslr: true, memMiB: 4608, cpus: 2 });
    agent = await startGuestAgent(guest);
    args = ['--target', agent.target, '--key-file', agent.keyFile];
  });

  after(async () => {
    await agent?.stop();
    await guest?.down();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('describe\'s memory map has the range at 4 GiB, as the testbed set it up', async () => {
    const d = await grassJson<Describe>(['describe', ...args]);
    const map = d.memoryMap.map((r) => [BigInt(r.physStart), BigInt(r.length)]);
    assert.deepEqual(map, guest.memoryMap().ranges.map((r) => [BigInt(r.physStart), BigInt(r.length)]));
    assert.ok(map.some(([start, length]) => start + length > 1n << 32n), 'RAM above 4 GiB');
    assert.equal(d.pagingLevels, 4);
    assert.equal(BigInt(d.kaslrOffset), await guestKaslrOffset(guest));
  });

  test('physical reads above 4 GiB equal the RAM file at the mapped offset (guest paused)', async () => {
    const high = guest.memoryMap().ranges.find((r) => BigInt(r.physStart) >= 1n << 32n);
    assert.ok(high);
    // Page cache fills high memory first (ZONE_NORMAL): give the guest something to cache, then
    // find a non-zero page there, so a wrong file offset cannot pass on zeros.
    await guest.exec('cat /lib/modules/*/kernel/drivers/net/*/*.ko* /bin/busybox > /dev/null 2>&1; true', { timeoutMs: 60_000 });
    await guest.pause();
    try {
      let phys: bigint | undefined;
      for (let at = 0n; at < BigInt(high.length) && phys === undefined; at += 1n << 20n) {
        if (ramFileBytes(guest, BigInt(high.physStart) + at, 4096).some((b) => b !== 0)) phys = BigInt(high.physStart) + at;
      }
      assert.ok(phys !== undefined, 'some page above 4 GiB holds data');
      const length = 64 << 10;
      const out = path.join(scratch, 'high.bin');
      const r = await grass(['read', `0x${phys.toString(16)}`, String(length), '--phys', '--out', out, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(out).equals(ramFileBytes(guest, phys, length)));
    } finally {
      await guest.resume();
    }
  });

  test('ps equals the guest\'s process list; kernel-virtual reads return the banner', async () => {
    await psMatchesTruth(guest, args);
    await bannerMatches(guest, args);
  });
});
