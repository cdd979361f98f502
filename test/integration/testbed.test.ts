// The testbed's basic path on the default Debian kernel (nokaslr, PVH boot of vmlinux): commands,
// ground truth checked against the guest's own files, the memory map checked against /proc/iomem
// and the RAM file, pause/resume, vmcore dump, the CLI, and cleanup.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootGuest, Guest, reapStaleGuests, RUN_ROOT, SerialTimeoutError } from '../../testbed';
import { elfSectionAddress, guestIomem, guestLeftovers, guestSymbols, kernelImagePhys, sleep } from './testbed-support';

const REPO = path.resolve(__dirname, '../..');

function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'testbed', ...args], { cwd: REPO }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? Number((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}

/** Runs a CLI verb that must succeed. */
async function cliOk(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `grass testbed ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('testbed: default kernel, KASLR off', () => {
  let guest: Guest;
  before(async () => {
    guest = await bootGuest({ memMiB: 512, cpus: 2 });
    process.stderr.write(`# testbed: booted ${guest.kernelDir.abi} (nokaslr, PVH) in ${guest.bootMs} ms\n`);
  });
  after(async () => {
    if (!guest) return;
    await guest.down();
    assert.deepEqual(guestLeftovers(guest), []);
  });

  it('runs commands: output, exit status, stderr, exit, and a timeout that leaves the shell usable', async () => {
    assert.deepEqual(await guest.run('echo hello; echo oops >&2'), { stdout: 'hello\noops\n', rc: 0 });
    assert.equal((await guest.run('exit 7')).rc, 7);
    assert.equal((await guest.run("echo 'it''s' \"$((6*7))\"")).stdout, 'its 42\n');
    await assert.rejects(guest.run('sleep 30', { timeoutMs: 1500 }), SerialTimeoutError);
    assert.equal((await guest.run('uname -r')).stdout.trim(), guest.kernelDir.release);
  });

  it('ground truth: tasks agree with /proc listings and /proc/<pid>/status; spawned processes and threads appear', async () => {
    const procs = await guest.spawn(20);
    const threads = await guest.spawn(15, { threads: true });
    assert.equal(procs.created, 20);
    const listBefore = (await guest.exec('ls /proc')).split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
    const truth = await guest.truth();
    const listAfter = new Set((await guest.exec('ls /proc')).split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number));
    const tgids = new Set(truth.tasks.map((t) => t.tgid));
    for (const pid of listBefore) if (listAfter.has(pid)) assert.ok(tgids.has(pid), `pid ${pid} listed in /proc before and after is missing from truth`);

    const children = truth.tasks.filter((t) => t.ppid === procs.holderPid && t.comm === 'grass-spawn');
    assert.equal(children.length, 20);
    for (const c of children) assert.equal(c.state, 'S');
    const threadGroup = truth.tasks.filter((t) => t.tgid === threads.holderPid);
    assert.equal(threadGroup.length, 16);
    for (const t of threadGroup) assert.equal(t.threads, 16);

    // /proc/<pid>/status is a second, independent reading of the same tasks.
    for (const pid of [1, 2, procs.holderPid, threads.holderPid, children[0].pid]) {
      const status = await guest.exec(`cat /proc/${pid}/status`);
      const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '';
      const task = truth.tasks.find((t) => t.pid === pid);
      assert.ok(task, `pid ${pid} missing from truth`);
      assert.equal(task.comm, field('Name'));
      assert.equal(task.ppid, Number(field('PPid')));
      assert.equal(task.tgid, Number(field('Tgid')));
      assert.equal(task.threads, Number(field('Threads')));
      assert.equal(task.state, field('State')[0]);
    }
    await guest.exec(`kill -9 -${procs.holderPid} -${threads.holderPid}`);
  });

  it('ground truth: /proc/stat, meminfo, vmstat, loadavg and the kernel log with sequence numbers', async () => {
    const marker = `grass-truth-marker-${process.pid}`;
    await guest.exec(`echo '<3>${marker}' > /dev/kmsg`);
    const truth = await guest.truth();
    assert.equal(truth.stat.cpus.length, 2);
    const sum = truth.stat.cpus.reduce((a, c) => a + c.user + c.system + c.idle, 0);
    const total = truth.stat.total.user + truth.stat.total.system + truth.stat.total.idle;
    assert.ok(Math.abs(sum - total) <= 4, `per-CPU times ${sum} vs total ${total}`);
    assert.ok(truth.meminfo.MemTotal > 400 * 1024 && truth.meminfo.MemTotal <= 512 * 1024, `MemTotal ${truth.meminfo.MemTotal} kB`);
    assert.ok(truth.vmstat.nr_free_pages > 0);
    assert.ok(Math.abs(truth.loadavg.total - truth.tasks.length) < 10, `loadavg total ${truth.loadavg.total} vs ${truth.tasks.length} tasks`);
    const rec = truth.kmsg.find((r) => r.text === marker);
    assert.ok(rec, 'the record written to /dev/kmsg is in the truth');
    assert.equal(rec.level, 3);
    const seqs = truth.kmsg.map((r) => r.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(truth.kmsg[0].seq, 0);
    assert.match(truth.kmsg[0].text, /^Linux version /);
    // The guest's own count of log lines (dmesg) against the records.
    const dmesgLines = (await guest.exec('dmesg | wc -l')).trim();
    assert.ok(Math.abs(Number(dmesgLines) - truth.kmsg.length) < 5, `dmesg ${dmesgLines} lines vs ${truth.kmsg.length} records`);
  });

  it('KASLR off: _text is where vmlinux puts it', async () => {
    const { _text } = await guestSymbols(guest, ['_text']);
    assert.equal(_text, elfSectionAddress(guest.kernelDir.vmlinux, '.text'));
  });

  it('memory map: covers /proc/iomem System RAM; the RAM file holds the kernel banner where the kernel says', async () => {
    const map = guest.memoryMap();
    assert.equal(map.ramFile, guest.ramFile);
    const total = map.ranges.reduce((a, r) => a + BigInt(r.length), 0n);
    assert.equal(total, 512n << 20n);
    assert.equal(fs.statSync(guest.ramFile).size, 512 * 1024 * 1024);
    for (const r of (await guestIomem(guest)).filter((x) => x.name === 'System RAM')) {
      assert.ok(
        map.ranges.some((m) => r.start >= BigInt(m.physStart) && r.end < BigInt(m.physStart) + BigInt(m.length)),
        `System RAM ${r.start.toString(16)}-${r.end.toString(16)} outside the map`,
      );
    }
    const version = (await guest.exec('cat /proc/version')).trim();
    const banner = guest.readPhysical(await kernelImagePhys(guest, 'linux_banner'), Buffer.byteLength(version)).toString('utf8');
    assert.equal(banner, version);
  });

  it('pause holds guest memory still; resume lets it move (jiffies read from the RAM file)', async () => {
    const jiffiesPhys = await kernelImagePhys(guest, 'jiffies_64');
    const read = () => guest.readPhysical(jiffiesPhys, 8).readBigUInt64LE();
    await guest.pause();
    assert.equal(await guest.status(), 'paused');
    const a = read();
    await sleep(300);
    assert.equal(read(), a);
    await guest.resume();
    assert.equal(await guest.status(), 'running');
    // Idle CPUs stop their tick (NOHZ) and catch jiffies up when woken: wake one.
    await guest.exec('cat /proc/uptime');
    for (let i = 0; i < 50 && read() === a; i++) await sleep(100);
    assert.ok(read() > a, 'jiffies advance after resume');
  });

  it('dump writes an ELF vmcore with PT_LOAD segments and a VMCOREINFO note', async () => {
    const file = path.join(os.tmpdir(), `grass-testbed-dump-${process.pid}.vmcore`);
    try {
      await guest.pause();
      await guest.dump(file);
      await guest.resume();
      const head = Buffer.alloc(64);
      const fd = fs.openSync(file, 'r');
      fs.readSync(fd, head, 0, 64, 0);
      fs.closeSync(fd);
      assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.equal(head.readUInt16LE(16), 4, 'ET_CORE');
      const notes = (await new Promise<string>((res, rej) =>
        execFile('readelf', ['-nW', file], { maxBuffer: 8 << 20 }, (e, out) => (e ? rej(e) : res(out))),
      ));
      assert.match(notes, /VMCOREINFO/);
      const segments = await new Promise<string>((res, rej) => execFile('readelf', ['-lW', file], (e, out) => (e ? rej(e) : res(out))));
      assert.ok((segments.match(/\bLOAD\b/g) ?? []).length >= 1);
      // The note's text names this kernel.
      const body = fs.readFileSync(file).subarray(0, 1 << 20).toString('latin1');
      assert.ok(body.includes(`OSRELEASE=${guest.kernelDir.release}`), 'VMCOREINFO OSRELEASE matches the guest');
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('the CLI drives the same guest by id: run, truth, pause; an unknown id is an error', async () => {
    const r = await cli(['run', guest.id, 'echo', 'from-cli;', 'exit', '4']);
    assert.equal(r.stdout, 'from-cli\n');
    assert.equal(r.code, 4);
    const truth = JSON.parse(await cliOk(['truth', guest.id, '--json'])) as { tasks: { pid: number; comm: string }[] };
    assert.equal(truth.tasks.find((t) => t.pid === 1)?.comm, 'init');
    await cliOk(['pause', guest.id]);
    assert.equal(await guest.status(), 'paused');
    await guest.resume();
    assert.equal((await cli(['run', 'no-such-guest', 'true'])).code, 1);
  });
});

describe('testbed: the CLI on its own guest', () => {
  it('up --json, spawn, fault, dump, list, down: the guest outlives the command that started it', async () => {
    const info = JSON.parse(await cliOk(['up', '--mem', '256', '--cpus', '1', '--json'])) as { id: string; ramFile: string; memoryMap: string; serial: string; qmp: string; kernel: { abi: string } };
    const dumpFile = path.join(os.tmpdir(), `grass-testbed-cli-dump-${process.pid}.vmcore`);
    try {
      assert.ok(fs.existsSync(info.ramFile) && fs.existsSync(info.memoryMap) && fs.existsSync(info.qmp));
      assert.equal((JSON.parse(fs.readFileSync(info.memoryMap, 'utf8')) as { ramFile: string }).ramFile, info.ramFile);
      const spawned = JSON.parse(await cliOk(['spawn', info.id, '7', '--json'])) as { holderPid: number; created: number };
      assert.equal(spawned.created, 7);
      const oops = JSON.parse(await cliOk(['fault', info.id, 'oops', '--json'])) as { output: string };
      assert.match(oops.output, /insmod rc=(?!0\b)\d+/);
      await cliOk(['dump', info.id, dumpFile]);
      assert.equal(fs.readFileSync(dumpFile).subarray(0, 4).toString('latin1'), '\x7fELF');
      const listed = JSON.parse(await cliOk(['list', '--json'])) as { guests: { id: string }[] };
      assert.ok(listed.guests.some((g) => g.id === info.id));
      const ps = await cliOk(['run', info.id, `cat /proc/${spawned.holderPid}/task/*/children | wc -w`]);
      assert.equal(ps.trim(), '7');
    } finally {
      fs.rmSync(dumpFile, { force: true });
      await cliOk(['down', info.id]);
    }
    assert.ok(!fs.existsSync(info.ramFile));
    assert.ok(!fs.existsSync(path.dirname(info.memoryMap)));
  });
});

describe('testbed: cleanup', () => {
  it('a guest dies with the process that booted it, even mid-boot, and the reaper removes its files', async () => {
    const before = new Set(fs.existsSync(RUN_ROOT) ? fs.readdirSync(RUN_ROOT) : []);
    const script = `require('tsx/cjs'); require(${JSON.stringify(path.join(REPO, 'testbed'))}).bootGuest({ memMiB: 256, cpus: 1 });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
    // Wait for its QEMU to start, then kill the owner outright (no exit hooks run).
    let runDir: string | undefined;
    let qemuPid: number | undefined;
    for (let i = 0; i < 600 && qemuPid === undefined; i++) {
      await sleep(100);
      const fresh = (fs.existsSync(RUN_ROOT) ? fs.readdirSync(RUN_ROOT) : []).filter((d) => !before.has(d));
      for (const d of fresh) {
        const dir = path.join(RUN_ROOT, d);
        for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          try {
            if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('qemu-system-x86_64') && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) {
              runDir = dir;
              qemuPid = Number(p);
            }
          } catch {
            // process gone
          }
        }
      }
    }
    assert.ok(runDir && qemuPid, 'the child started QEMU');
    const childExited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await childExited;
    const qemuAlive = () => {
      try {
        return fs.readFileSync(`/proc/${qemuPid}/cmdline`, 'utf8').includes(runDir!);
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && qemuAlive(); i++) await sleep(100);
    assert.ok(!qemuAlive(), 'QEMU died with its owner');
    const id = path.basename(runDir);
    // Another process's bootGuest may reap it first; either way the files must go.
    const reaped = reapStaleGuests();
    assert.ok(reaped.includes(id) || !fs.existsSync(runDir), `reaped ${reaped.join(', ')}`);
    assert.ok(!fs.existsSync(runDir));
    assert.ok(!fs.existsSync(`/dev/shm/grass-testbed-${id}.ram`));
  });
});
