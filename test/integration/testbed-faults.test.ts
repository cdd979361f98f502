// Every fault of the testbed, each with its effect shown from outside: the guest stops answering
// and QEMU shows where its CPUs are (RIP inside the fault's loop, interrupt flag), or the guest's
// own counters and kernel log say so while it still answers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { bootGuest, CpuRegisters, CpuTimes, Guest, GuestOptions, ModuleFunction, SerialTimeoutError } from '../../testbed';
import { guestLeftovers, sleep } from './testbed-support';

// A hung guest burns a host core per vCPU: each is taken down as soon as its test ends.
async function withGuest(options: GuestOptions, body: (guest: Guest) => Promise<void>): Promise<void> {
  const guest = await bootGuest({ memMiB: 512, cpus: 2, ...options });
  try {
    await body(guest);
  } finally {
    await guest.down();
    assert.deepEqual(guestLeftovers(guest), []);
  }
}

/** Asserts that the guest's shell no longer answers. */
async function assertHung(guest: Guest): Promise<void> {
  await assert.rejects(guest.run('echo alive', { timeoutMs: 4000 }), SerialTimeoutError);
  assert.equal(await guest.status(), 'running', 'QEMU still runs the vCPUs');
}

/** The fault module's function containing `rip`. */
function functionAt(functions: ModuleFunction[], rip: bigint): string | undefined {
  return functions.find((f) => rip >= f.address && rip < f.address + BigInt(f.size))?.name;
}

/**
 * Samples the vCPUs 5 times; each CPU must satisfy `check` in most samples (a sample may land in
 * an interrupt handler that the fault's loop does not stop, e.g. the timer tick with IRQs on).
 */
async function everyCpu(guest: Guest, check: (cpu: CpuRegisters) => string | null): Promise<void> {
  const failures = new Map<number, string[]>();
  const samples = 5;
  for (let i = 0; i < samples; i++) {
    for (const cpu of await guest.cpuRegisters()) {
      const problem = check(cpu);
      if (problem) failures.set(cpu.cpu, [...(failures.get(cpu.cpu) ?? []), `RIP ${cpu.rip.toString(16)} RFLAGS ${cpu.rflags.toString(16)}: ${problem}`]);
    }
    await sleep(200);
  }
  for (const [cpu, problems] of failures) assert.ok(problems.length <= samples / 2 - 0.5, `CPU ${cpu}: ${problems.join('; ')}`);
}

/** Share of CPU time in the given fields between two /proc/stat readings. */
function share(a: CpuTimes, b: CpuTimes, fields: (keyof CpuTimes)[]): number {
  const all: (keyof CpuTimes)[] = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
  const d = (k: keyof CpuTimes) => b[k] - a[k];
  const total = all.reduce((s, k) => s + d(k), 0);
  return total === 0 ? 0 : fields.reduce((s, k) => s + d(k), 0) / total;
}

describe('testbed faults: preemptible kernel (preempt=full): F2 leaves it usable, F3 hangs it', () => {
  it('F2 under preempt=full: the loops run, the guest still answers; then F3 (preemption off): no answer, every CPU in the F3 loop', async () => {
    await withGuest({ preempt: 'full' }, async (guest) => {
      const f2 = await guest.fault('f2');
      assert.ok(f2.functions.some((x) => x.name === 'grass_f2_thread'), 'module placed before the loop started');
      await sleep(2500);
      const before = await guest.truth({ timeoutMs: 60_000 });
      await sleep(3000);
      const after = await guest.truth({ timeoutMs: 60_000 });
      const loops = after.tasks.filter((t) => t.comm.startsWith('grass_f2/'));
      assert.equal(loops.length, 2);
      for (const t of loops) assert.equal(t.state, 'R');
      const system = share(before.stat.total, after.stat.total, ['system']);
      assert.ok(system > 0.5, `system time dominates (${system})`);

      const f3 = await guest.fault('f3');
      await sleep(2500);
      await assertHung(guest);
      await everyCpu(guest, (c) => (functionAt(f3.functions, c.rip) === 'grass_f3_thread' ? null : 'not in grass_f3_thread'));
    });
  });
});

describe('testbed faults: hangs', () => {
  it('F2 under preempt=none: no answer, every CPU inside the F2 loop with interrupts on', async () => {
    await withGuest({ preempt: 'none' }, async (guest) => {
      const f = await guest.fault('f2');
      await sleep(2500);
      if (/^CONFIG_PREEMPT_RT=y$/m.test(fs.readFileSync(guest.kernelDir.config, 'utf8'))) {
        // PREEMPT_RT ignores preempt=none: it always preempts, so F2 cannot hang it.
        assert.equal((await guest.run('echo alive', { timeoutMs: 60_000 })).stdout, 'alive\n');
        return;
      }
      await assertHung(guest);
      await everyCpu(guest, (c) =>
        functionAt(f.functions, c.rip) !== 'grass_f2_thread' ? 'not in grass_f2_thread' : c.interruptsOn ? null : 'interrupts off',
      );
    });
  });

  it('F1: no answer, every CPU spinning in the kernel with interrupts off', async () => {
    await withGuest({}, async (guest) => {
      await guest.fault('f1');
      await sleep(2500);
      await assertHung(guest);
      await everyCpu(guest, (c) => (c.interruptsOn ? 'interrupts on' : c.halted ? 'halted' : c.cpl !== 0 ? 'not in the kernel' : null));
    });
  });

  it('F5: the sleeper is reported sleeping in atomic context, then no answer, every CPU spinning with interrupts on', async () => {
    await withGuest({}, async (guest) => {
      await guest.fault('f5');
      await guest.waitForConsole(/BUG: scheduling while atomic: grass_f5_sleep/, 20_000);
      await sleep(1000);
      await assertHung(guest);
      await everyCpu(guest, (c) => (!c.interruptsOn ? 'interrupts off' : c.halted ? 'halted' : c.cpl !== 0 ? 'not in the kernel' : null));
    });
  });
});

describe('testbed faults: the guest keeps answering (oops, soft lockup, CPU-high-load, memory-leak, F4, F6)', () => {
  let guest: Guest;
  before(async () => {
    guest = await bootGuest({ memMiB: 512, cpus: 2, swapMiB: 512 });
  });
  after(async () => {
    await guest?.down();
    if (guest) assert.deepEqual(guestLeftovers(guest), []);
  });

  it('oops: insmod is killed, the log has the NULL dereference and the oops', async () => {
    const f = await guest.fault('oops');
    assert.match(f.output, /insmod rc=(?!0\b)\d+/);
    const truth = await guest.truth();
    assert.ok(truth.kmsg.some((r) => /BUG: kernel NULL pointer dereference/.test(r.text)));
    assert.ok(truth.kmsg.some((r) => /^Oops: /.test(r.text)));
  });

  it('soft lockup: the watchdog reports CPU 0 stuck, and the CPU comes back', async () => {
    await guest.fault('softlockup');
    await guest.waitForConsole(/watchdog: BUG: soft lockup - CPU#0 stuck for \d+s!/, 30_000);
    await guest.waitForConsole(/grass fault softlockup: CPU released/, 30_000);
    const truth = await guest.truth();
    assert.ok(truth.kmsg.some((r) => /soft lockup - CPU#0 stuck/.test(r.text)), 'in the guest log too');
  });

  it('CPU-high-load: four yes per CPU, the CPUs busy over 90 % of the time', async () => {
    try {
      await guest.fault('cpu-high-load');
      await sleep(1000);
      const a = await guest.truth();
      await sleep(2000);
      const b = await guest.truth();
      const yes = b.tasks.filter((t) => t.comm === 'yes');
      assert.equal(yes.length, 4 * Number((await guest.exec('nproc')).trim()));
      // yes spends about half its time in write(2) under TCG: the load is user plus system time.
      const busy = share(a.stat.total, b.stat.total, ['user', 'system', 'nice', 'irq', 'softirq']);
      assert.ok(busy > 0.9, `busy share ${busy}`);
      assert.ok(share(a.stat.total, b.stat.total, ['user']) > 0.25);
    } finally {
      // The next faults measure idle and I/O-wait time: no hog may outlive this test.
      await guest.exec('killall yes || true');
    }
  });

  it('memory-leak: the hog grows and free memory shrinks', async () => {
    try {
      await guest.fault('memory-leak');
      await sleep(1500);
      const a = await guest.truth();
      await sleep(4000);
      const b = await guest.truth();
      const rss = (t: typeof a) => t.tasks.find((x) => x.comm === 'grass-hog')?.rssPages ?? 0;
      assert.ok(rss(b) - rss(a) >= (16 << 20) / 4096, `hog RSS ${rss(a)} -> ${rss(b)} pages`);
      assert.ok(b.meminfo.MemFree < a.meminfo.MemFree);
    } finally {
      await guest.exec('killall -9 grass-hog || true');
    }
  });

  it('F4: 32 readers wait in D state and the idle CPUs count I/O wait', async () => {
    await guest.fault('f4');
    await sleep(1000);
    const a = await guest.truth();
    await sleep(3000);
    const b = await guest.truth();
    const blocked = b.tasks.filter((t) => t.comm === 'cat' && t.state === 'D');
    assert.equal(blocked.length, 32);
    assert.ok(b.stat.procsBlocked >= 32);
    assert.ok(share(a.stat.total, b.stat.total, ['iowait']) > 0.5, `iowait share ${share(a.stat.total, b.stat.total, ['iowait'])}`);
  });

  it('F6: a working set beyond RAM: the guest swaps out and free memory runs low', async () => {
    const a = await guest.truth();
    await guest.fault('f6');
    let b = a;
    for (let i = 0; i < 12 && b.vmstat.pswpout - a.vmstat.pswpout < 20_000; i++) {
      await sleep(5000);
      b = await guest.truth({ timeoutMs: 120_000 });
    }
    assert.ok(b.vmstat.pswpout - a.vmstat.pswpout >= 20_000, `pswpout ${a.vmstat.pswpout} -> ${b.vmstat.pswpout}`);
    // For the detector's thresholds (the paper's "pswpout <= 3000/s" reads oddly): what F6 does here.
    const rate = (b.vmstat.pswpout - a.vmstat.pswpout) / (b.uptimeSeconds - a.uptimeSeconds);
    process.stderr.write(`# F6: pswpout ${Math.round(rate)} pages/s, MemFree ${b.meminfo.MemFree} kB of ${b.meminfo.MemTotal} kB\n`);
    assert.ok(b.meminfo.MemFree < b.meminfo.MemTotal * 0.1, `MemFree ${b.meminfo.MemFree} of ${b.meminfo.MemTotal} kB`);
  });
});
