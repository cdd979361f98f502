// Debian's own kernel-dump tools, crash 8.0.2 and drgn 0.0.22 (python3-drgn), run on an ELF vmcore
// with the kernel's DWARF (the -dbg package's vmlinux, fetched once by scripts/fetch-kernel-dbg.sh):
// their task lists and a decoded task_struct, each with its wall time and peak RSS
// (/usr/bin/time -v). Used by test/long/save-vmcore-peers.test.ts and bench/figures/peers.ts.
// crash's `ps` is wrong on this kernel (shared/notes/peers.md): tasks are listed by walking
// init_task.tasks with `list`.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
/** Debian's interpreter: python3-drgn installs into it, not into another python3 on PATH. */
const PYTHON = '/usr/bin/python3';

export interface PeerTask {
  pid: number;
  comm: string;
}

export interface PeerRun<T> {
  result: T;
  seconds: number;
  peakRssKiB: number;
}

/** Installs crash and python3-drgn when missing (Debian packages). */
export function ensurePeerTools(): void {
  execFileSync('bash', [path.join(root, 'scripts/lib/ensure-debs.sh'), 'crash', 'python3-drgn', 'time'], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** The DWARF vmlinux of kernel ABI (e.g. 6.1.0-56-amd64): cached, else an announced 858 MB fetch. */
export function kernelDebugVmlinux(abi: string): string {
  return execFileSync('bash', [path.join(root, 'scripts/fetch-kernel-dbg.sh'), abi], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000 }).trim();
}

/** Runs a command under /usr/bin/time -v; its stdout, wall time and peak RSS. */
export function timed(command: string, args: string[], timeoutMs: number): Promise<PeerRun<string>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-peer-'));
  const report = path.join(dir, 'time');
  return new Promise<PeerRun<string>>((resolve, reject) => {
    execFile('/usr/bin/time', ['-v', '-o', report, command, ...args], { timeout: timeoutMs, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      let text = '';
      try {
        text = execFileSync('cat', [report], { encoding: 'utf8' });
      } catch {
        // no report: the command never ran
      }
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`));
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
      if (!wall || !rss) return reject(new Error(`/usr/bin/time -v gave no figures for ${command}: ${text}`));
      const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
      resolve({ result: stdout, seconds, peakRssKiB: Number(rss[1]) });
    });
  });
}

const DRGN_TASKS = `
import sys, json, drgn
from drgn.helpers.linux.pid import for_each_task
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
print(json.dumps([[int(t.pid), t.comm.string_().decode('utf-8', 'replace')] for t in for_each_task(prog)]))
`;

const DRGN_DECODE = `
import sys, drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
print(prog.object('init_task'))
`;

function script(text: string): { file: string; done: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-drgn-'));
  const file = path.join(dir, 'script.py');
  writeFileSync(file, text);
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** drgn's for_each_task from launch: every task (idle task of CPU 0 included), pid and comm. */
export async function drgnTasks(vmcore: string, vmlinux: string): Promise<PeerRun<PeerTask[]>> {
  const s = script(DRGN_TASKS);
  try {
    const run = await timed(PYTHON, [s.file, vmcore, vmlinux], 300_000);
    const rows = JSON.parse(run.result) as [number, string][];
    return { ...run, result: rows.map(([pid, comm]) => ({ pid, comm })) };
  } finally {
    s.done();
  }
}

/** drgn printing init_task (a decoded task_struct) from launch; its text. */
export async function drgnDecodeInitTask(vmcore: string, vmlinux: string): Promise<PeerRun<string>> {
  const s = script(DRGN_DECODE);
  try {
    return await timed(PYTHON, [s.file, vmcore, vmlinux], 300_000);
  } finally {
    s.done();
  }
}

function crashCommands(commands: string[]): { file: string; done: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-crash-'));
  const file = path.join(dir, 'cmds');
  writeFileSync(file, [...commands, 'quit', ''].join('\n'));
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** crash walking init_task.tasks from launch (init_task itself, pid 0, first). */
export async function crashTasks(vmcore: string, vmlinux: string, initTask: bigint): Promise<PeerRun<PeerTask[]>> {
  const c = crashCommands([`list task_struct.tasks -S task_struct.pid,comm -h 0x${initTask.toString(16)}`]);
  try {
    const run = await timed('crash', ['-s', vmlinux, vmcore, '-i', c.file], 600_000);
    const tasks: PeerTask[] = [];
    const re = /^[0-9a-f]{16}\n\s+pid = (\d+)\n\s+comm = "((?:[^"\\]|\\.)*)"/gm;
    for (let m = re.exec(run.result); m; m = re.exec(run.result)) tasks.push({ pid: Number(m[1]), comm: m[2] });
    if (tasks.length === 0) throw new Error(`crash listed no task: ${run.result.slice(-2000)}`);
    return { ...run, result: tasks };
  } finally {
    c.done();
  }
}

/** crash decoding init_task (`struct task_struct ADDR`) from launch; its text. */
export async function crashDecodeInitTask(vmcore: string, vmlinux: string, initTask: bigint): Promise<PeerRun<string>> {
  const c = crashCommands([`struct task_struct 0x${initTask.toString(16)}`]);
  try {
    return await timed('crash', ['-s', vmlinux, vmcore, '-i', c.file], 600_000);
  } finally {
    c.done();
  }
}
