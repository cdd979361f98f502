// Debian's crash 8.0.2, with the guest's DWARF vmlinux (the -dbg package, fetched once), against
// grass on the same kdump files the guest's own makedumpfile wrote from its capture kernel
// (zlib, lzo, snappy, ELF, flattened zlib at dump level 31): the same tasks (crash walking
// init_task.tasks: its `ps` is wrong on this kernel, shared/notes/peers.md), the same modules
// (`mod`), the same kernel log (`log`), the panic's "sysrq triggered crash" in it, and the
// panicking task's stack (`bt`, crash's context at start: frames by function name). Debian's
// makedumpfile 1.7.2 is built without snappy and zstd (`makedumpfile -v`: "snappy disabled",
// "zstd disabled"; -p and -z are ignored): its "snappy" job writes an uncompressed kdump file
// (header status 0), which is what that case covers. crash takes up to minutes per file on
// this machine, hence a long test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KdumpGuest, KdumpJob, KdumpRun } from '../../testbed/kdump-guest';
import { grass, grassJson, PsTask, sameComm } from '../integration/agent-harness';
import { crashTasks, drgnTasks, ensurePeerTools, kernelDebugVmlinux, timed } from './peer-tools';

const JOBS: KdumpJob[] = [{ format: 'zlib' }, { format: 'lzo' }, { format: 'snappy' }, { format: 'elf' }, { format: 'zlib', flattened: true }];

let kg: KdumpGuest;
let scratch: string;
let run: KdumpRun;
let vmlinux: string;

before(async () => {
  ensurePeerTools();
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-kdump-crash-'));
  kg = await KdumpGuest.boot();
  vmlinux = kernelDebugVmlinux((await kg.guest.exec('uname -r')).trim());
  await kg.arm(JOBS);
  run = await kg.panicAndDump(scratch);
});

after(async () => {
  await kg?.down();
  rmSync(scratch, { recursive: true, force: true });
});

interface CrashView {
  tasks: { pid: number; comm: string }[];
  modules: string[];
  log: string[];
  /** `bt` of the task crash starts in (the panicking one): its pid and frames' function names. */
  bt: { pid: number; functions: string[] };
  seconds: number;
}

/** One crash session on a dump: the task list, `mod`, `log` and `bt`, separated by echo markers. */
async function crashView(file: string, initTask: string): Promise<CrashView> {
  const cmds = path.join(scratch, 'crash-cmds');
  writeFileSync(cmds, [`list task_struct.tasks -S task_struct.pid,comm -h ${initTask}`, '!echo __MOD__', 'mod', '!echo __LOG__', 'log', '!echo __BT__', 'bt', 'quit', ''].join('\n'));
  const r = await timed('crash', ['-s', vmlinux, file, '-i', cmds], 900_000);
  const [list, rest] = r.result.split('__MOD__\n');
  const [mod, logAndBt] = rest.split('__LOG__\n');
  const [log, bt] = logAndBt.split('__BT__\n');
  const tasks = [...list.matchAll(/^[0-9a-f]{16}\n\s+pid = (\d+)\n\s+comm = "((?:[^"\\]|\\.)*)"/gm)].map((m) => ({ pid: Number(m[1]), comm: m[2] }));
  const modules = [...mod.matchAll(/^[0-9a-f]{16}\s+(\S+)\s+[0-9a-f]{16}\s/gm)].map((m) => m[1]).sort();
  // A record's further lines are indented under its first; the text of every line, in order.
  const lines = log.split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/^\[\s*\d+\.\d+\] /, '').replace(/^\s+/, ''));
  // `PID: 523  TASK: ...  CPU: 1  COMMAND: "sh"`, then ` #0 [ffffc9000...] machine_kexec at ffffffff...`.
  const btPid = /^PID: (\d+)\s/m.exec(bt);
  assert.ok(btPid, `crash's bt has no PID line: ${bt.slice(0, 500)}`);
  const functions = [...bt.matchAll(/^\s*#\d+ \[[0-9a-f]+\] (\S+) at [0-9a-f]+/gm)].map((m) => m[1]);
  return { tasks, modules, log: lines, bt: { pid: Number(btPid[1]), functions }, seconds: r.seconds };
}

test('crash and grass agree on each dump: tasks, modules, kernel log, the panicking task\'s stack', async () => {
  for (const result of run.results) {
    const name = `${result.job.format}${result.job.flattened ? ' flattened' : ''}`;
    const target = `vmcore:${result.file}`;
    const initTask = (await grassJson<{ address: string }>(['read', 'init_task', '1', '--target', target])).address;
    const crash = await crashView(result.file, initTask);
    assert.ok(crash.tasks.length > 40, `${name}: crash listed ${crash.tasks.length} tasks`);

    const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', '--target', target]);
    const ours = [{ pid: 0, comm: 'swapper/0' }, ...tasks];
    assert.equal(ours.length, crash.tasks.length, `${name}: grass lists ${ours.length - 1} tasks + init_task, crash ${crash.tasks.length}`);
    const crashByPid = new Map(crash.tasks.map((t) => [t.pid, t.comm]));
    for (const t of tasks) assert.ok(sameComm(t.comm, crashByPid.get(t.pid) ?? '?'), `${name}: pid ${t.pid} is ${t.comm}, crash says ${crashByPid.get(t.pid)}`);

    const mods = await grass(['modules', '--target', target]);
    assert.equal(mods.code, 0, mods.stderr);
    assert.deepEqual(mods.stdout.trim().split('\n').map((l) => l.split(' ')[0]).sort(), crash.modules, `${name}: modules`);

    const dmesg = await grass(['dmesg', '--target', target]);
    assert.equal(dmesg.code, 0, dmesg.stderr);
    const ourLog = dmesg.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/^<\d+>\[\s*\d+\.\d+\] \[\s*[TC]\d+\] /, '').replace(/^\s+/, ''));
    assert.deepEqual(ourLog, crash.log, `${name}: kernel log`);
    assert.ok(crash.log.includes('Kernel panic - not syncing: sysrq triggered crash'), `${name}: the panic is in the log`);

    // The panicking task (crash's context at start), unwound from the registers saved for kdump.
    // crash's bt also shows machine_kexec (the frame below those registers, where the CPU left
    // the kernel) and return addresses its stack search finds that the unwind does not reach
    // (stale ones): ours must be crash's frames in order, less those, from __crash_kexec to the
    // system call's entry.
    const bt = (await grassJson<{ traces: { pid: number; registers?: string; frames: { symbol: string }[]; note?: string }[] }>(['bt', String(crash.bt.pid), '--target', target])).traces[0];
    const ourFrames = bt.frames.map((f) => f.symbol.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+$/, ''));
    assert.equal(bt.registers, 'crash_notes', `${name}: bt ${crash.bt.pid} starts from the saved registers`);
    assert.equal(bt.note, undefined, `${name}: bt ${crash.bt.pid} is complete: ${bt.note}`);
    const extra: string[] = [];
    let k = 0;
    for (const fn of crash.bt.functions) {
      if (fn === ourFrames[k]) k++;
      else extra.push(fn);
    }
    assert.equal(k, ourFrames.length, `${name}: grass bt ${ourFrames.join(' < ')} is not crash's ${crash.bt.functions.join(' < ')} in order`);
    assert.deepEqual(ourFrames.slice(0, 3), ['__crash_kexec', 'panic', 'sysrq_handle_crash'], `${name}: the panic's frames`);
    assert.equal(crash.bt.functions[0], 'machine_kexec', `${name}: crash's first frame`);
    assert.equal(ourFrames.at(-1), crash.bt.functions.at(-1), `${name}: both end at the system call's entry`);
    process.stderr.write(`kdump-crash: ${name}: ${crash.tasks.length} tasks, ${crash.modules.length} modules, ${crash.log.length} log lines equal; bt of pid ${crash.bt.pid}: ${ourFrames.length} frames in crash's order (crash's ${crash.bt.functions.length} add ${extra.join(', ')}); crash ${crash.seconds.toFixed(1)} s\n`);
  }
});

test('crash and drgn open what grass save-vmcore --format kdump wrote (zstd pages) and list the same tasks', async () => {
  const zlib = run.results.find((r) => r.job.format === 'zlib' && !r.job.flattened)!.file;
  const out = path.join(scratch, 'saved.kdump');
  const saved = await grassJson<{ fileBytes: number; compression: string }>(['save-vmcore', out, '--format', 'kdump', '--target', `vmcore:${zlib}`]);
  assert.equal(saved.compression, 'zstd');
  const initTask = (await grassJson<{ address: string }>(['read', 'init_task', '1', '--target', `vmcore:${out}`])).address;
  const crash = await crashTasks(out, vmlinux, BigInt(initTask));
  const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', '--target', `vmcore:${zlib}`]);
  const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);
  assert.deepEqual(sorted(crash.result.map((t) => t.pid)), sorted([0, ...tasks.map((t) => t.pid)]), 'crash lists the tasks grass lists on the source dump');
  const byPid = new Map(crash.result.map((t) => [t.pid, t.comm]));
  for (const t of tasks) assert.ok(sameComm(t.comm, byPid.get(t.pid) ?? '?'), `pid ${t.pid} is ${t.comm}, crash says ${byPid.get(t.pid)}`);
  // drgn reads it through libkdumpfile (VMCOREINFO from the file's notes, the architecture from its utsname).
  const drgn = await drgnTasks(out, vmlinux);
  // (for_each_task walks init_task.tasks without init_task itself, pid 0, which crash's list shows.)
  assert.deepEqual(sorted(drgn.result.map((t) => t.pid)), sorted(tasks.map((t) => t.pid)), 'drgn lists the tasks grass lists');
  process.stderr.write(`kdump-crash: save-vmcore --format kdump (${saved.fileBytes} bytes, zstd): crash lists ${crash.result.length} tasks in ${crash.seconds.toFixed(1)} s, drgn ${drgn.result.length} in ${drgn.seconds.toFixed(1)} s\n`);
});
