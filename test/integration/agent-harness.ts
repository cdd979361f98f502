// Shared by test/integration/agent*.test.ts: the grass CLI run from source, an agent started
// through `grass agent` on a testbed guest's RAM, and comparisons with the guest's ground truth.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import type { Guest, GroundTruth, TruthTask } from '../../testbed';
import { writeNewKeyFile } from '../../src/rdma/key';

export const root = path.resolve(__dirname, '../..');
const cliArgs = ['--import', 'tsx', path.join(root, 'src/cli/main.ts')];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `grass ARGS` (from source) and returns its exit status and output. */
export function grass(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...cliArgs, ...args], { cwd: root, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `grass ARGS --json` that must succeed; its parsed stdout. */
export async function grassJson<T>(args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  const r = await grass([...args, '--json'], env);
  assert.equal(r.code, 0, `grass ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface GuestAgent {
  target: string;
  keyFile: string;
  shmPath: string;
  ready: Record<string, unknown>;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `grass agent` on the guest's RAM file and memory map; resolves on its ready line. */
export async function startGuestAgent(guest: Guest, memory = `qemu-ram:${guest.ramFile}`, extra: string[] = []): Promise<GuestAgent> {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-it-'));
  const keyFile = path.join(dir, 'key');
  writeNewKeyFile(keyFile);
  const shmPath = `/dev/shm/grass-it-${process.pid}-${path.basename(dir)}`;
  const mapArgs = memory.startsWith('qemu-ram:') ? ['--memory-map', guest.memoryMapFile] : [];
  const child = spawn(process.execPath, [...cliArgs, 'agent', '--memory', memory, ...mapArgs, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent', ...extra], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    rmSync(shmPath, { force: true });
  };
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`grass agent not ready in 120 s: ${stderr}`)), 120_000);
    child.once('exit', (code) => reject(new Error(`grass agent exited (${code}) before ready: ${stderr}`)));
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { target: `shm:${shmPath}`, keyFile, shmPath, ready: JSON.parse(line) as Record<string, unknown>, process: child, stop };
}

/**
 * A task of `grass ps --json` (DESIGN §6): the fields the guest's /proc tells the truth of, as
 * the truth names them, and the CPU times and resident size in ns and bytes.
 */
export type PsTask = Pick<TruthTask, 'pid' | 'tgid' | 'ppid' | 'comm' | 'state' | 'cpu' | 'threads'> & { utimeNs: number; stimeNs: number; rssBytes: number };

/**
 * The kernel's task comm (16 bytes with the NUL) against what /proc shows: the same, or for a
 * workqueue worker the comm followed by "-desc" or "+desc" (the kernel's wq_worker_comm).
 */
export function sameComm(listed: string, proc: string): boolean {
  if (listed === proc.slice(0, 15)) return true;
  return listed.startsWith('kworker') && proc.startsWith(listed) && /^[-+]/.test(proc.slice(listed.length));
}

/**
 * Compares a process list taken with the guest paused against two ground truths taken just
 * before and just after (guest running): every task present in both truths must be listed with
 * the same pid, tgid, ppid, comm and threads, and with the same state when both truths agree on
 * it; nothing may be listed that neither truth knows. Returns how many states were compared.
 */
export function assertTasksMatchTruth(listed: PsTask[], before: GroundTruth, after: GroundTruth, threads: boolean): number {
  const pick = (t: GroundTruth): Map<number, TruthTask> => new Map(t.tasks.filter((x) => threads || x.pid === x.tgid).map((x) => [x.pid, x]));
  const a = pick(before);
  const b = pick(after);
  const byPid = new Map(listed.map((t) => [t.pid, t]));
  assert.equal(byPid.size, listed.length, 'a pid is listed twice');
  let statesCompared = 0;
  for (const [pid, t] of a) {
    const t2 = b.get(pid);
    if (!t2 || t2.comm !== t.comm) continue; // exited (or replaced) between the two truths
    const got = byPid.get(pid);
    assert.ok(got, `pid ${pid} (${t.comm}) is in the guest's truth but not listed`);
    assert.equal(got.tgid, t.tgid, `tgid of pid ${pid}`);
    assert.equal(got.ppid, t.ppid, `ppid of pid ${pid}`);
    assert.ok(sameComm(got.comm, t.comm), `comm of pid ${pid}: listed ${JSON.stringify(got.comm)}, guest says ${JSON.stringify(t.comm)}`);
    if (t.threads === t2.threads) assert.equal(got.threads, t.threads, `threads of pid ${pid}`);
    if (t.state === t2.state) {
      assert.equal(got.state, t.state, `state of pid ${pid} (${t.comm})`);
      statesCompared++;
    }
  }
  for (const got of listed) {
    assert.ok(a.has(got.pid) || b.has(got.pid), `pid ${got.pid} (${got.comm}) is listed but in neither truth`);
  }
  return statesCompared;
}
