// grass save-vmcore against a panicked testbed guest (KASLR on): the vmcore it writes is opened
// by grass itself and lists the guest's tasks (the guest's own /proc, read before the panic, is
// the truth); --kernel-only is smaller and lists the same tasks; a transfer killed half-way and
// run again gives a byte-identical file. crash and drgn on the same files: test/long/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, GroundTruth, Guest } from '../../testbed';
import { assertTasksMatchTruth, grass, grassJson, GuestAgent, PsTask, root, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let args: string[];
let scratch: string;
let before1: GroundTruth;
let before2: GroundTruth;

interface Saved {
  fileBytes: number;
  fetchedBytes: number;
  resumedChunks: number;
  chunks: number;
  pagesTotal: number;
  pagesSaved: number;
  excludedPages: Record<string, number>;
}

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-save-vmcore-'));
  guest = await bootGuest({ memMiB: 256, cpus: 2, kaslr: true });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
  before1 = await guest.truth();
  before2 = await guest.truth();
  const f = await guest.fault('panic');
  assert.equal(f.answered, false, 'the shell never answers after the panic');
  const deadline = Date.now() + 60_000;
  while ((await guest.status()) !== 'guest-panicked') {
    assert.ok(Date.now() < deadline, `the guest did not panic: ${guest.console().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  await agent?.stop();
  await guest?.down();
  rmSync(scratch, { recursive: true, force: true });
});

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

async function tasksFrom(vmcore: string): Promise<PsTask[]> {
  return (await grassJson<{ tasks: PsTask[] }>(['ps', '--target', `vmcore:${vmcore}`])).tasks;
}

/**
 * The listed tasks against the two truths taken before the panic. What the panic itself started
 * (the testbed's shell that runs `echo c`) is in neither truth: such tasks must be newer than
 * every pid the truths saw, and few.
 */
function assertTasksMatchGuest(listed: PsTask[]): void {
  const known = new Set([...before1.tasks, ...before2.tasks].map((t) => t.pid));
  const newest = Math.max(...known);
  const later = listed.filter((t) => !known.has(t.pid));
  assert.ok(later.every((t) => t.pid > newest) && later.length <= 3, `listed but in neither truth: ${JSON.stringify(later)}`);
  assertTasksMatchTruth(listed.filter((t) => known.has(t.pid)), before1, before2, false);
}

let full: string;
let fullSaved: Saved;
let fullTasks: PsTask[];

test('save-vmcore of the panicked guest: an ELF vmcore from which grass lists the guest\'s tasks', async () => {
  full = path.join(scratch, 'full.vmcore');
  const r = await grass(['save-vmcore', full, ...args, '--json'], {}, 300_000);
  assert.equal(r.code, 0, r.stderr);
  fullSaved = JSON.parse(r.stdout) as Saved;
  assert.match(r.stderr, /save-vmcore: [\d.]+ MiB of 256\.0 MiB \(\d+%\), [\d.]+ MiB\/s, \d+ s left/, 'progress with rate and time left on stderr');
  assert.equal(fullSaved.pagesSaved, fullSaved.pagesTotal);
  assert.equal(fullSaved.pagesTotal, (256 << 20) / 4096);
  assert.equal(statSync(full).size, fullSaved.fileBytes);
  assert.ok(!existsSync(`${full}.journal`), 'the journal goes when the transfer is complete');
  const manifest = JSON.parse(readFileSync(`${full}.manifest.json`, 'utf8')) as { chunks: { crc32: string }[]; excluded: unknown[] };
  assert.equal(manifest.chunks.length, fullSaved.chunks);
  assert.ok(manifest.chunks.every((c) => /^[0-9a-f]{8}$/.test(c.crc32)));
  assert.deepEqual(manifest.excluded, []);
  // The physical memory in the file is the guest's RAM byte for byte (the RAM file's offset is the
  // physical address below 2 GiB on q35).
  const ram = readFileSync(guest.ramFile);
  const core = readFileSync(full);
  const dataStart = core.length - ram.length;
  assert.ok(dataStart > 0 && dataStart % 4096 === 0);
  assert.ok(Buffer.compare(core.subarray(dataStart), ram) === 0, 'the saved memory equals the guest\'s RAM');
  fullTasks = await tasksFrom(full);
  assertTasksMatchGuest(fullTasks);
});

test('--kernel-only leaves out free, user and cache pages (from the kernel\'s struct page array), is smaller, and lists every task', async () => {
  assert.ok(fullTasks, 'the full save ran first');
  const kernelOnly = path.join(scratch, 'kernel.vmcore');
  const saved = await grassJson<Saved>(['save-vmcore', kernelOnly, ...args, '--kernel-only']);
  const ratio = fullSaved.fileBytes / saved.fileBytes;
  process.stderr.write(`# kernel-only: ${saved.fileBytes} bytes vs ${fullSaved.fileBytes} (${ratio.toFixed(2)}x smaller), pages ${saved.pagesSaved}/${saved.pagesTotal}, excluded ${JSON.stringify(saved.excludedPages)}\n`);
  assert.ok(ratio >= 2, `kernel-only is only ${ratio.toFixed(2)}x smaller`);
  // The truth's own MemFree: a fresh guest's free pages are most of what is left out.
  const memFreePages = Number(before2.meminfo.MemFree) / 4;
  assert.ok(saved.excludedPages.free > 0.8 * memFreePages, `free pages excluded ${saved.excludedPages.free}, MemFree ${memFreePages} pages`);
  const tasks = await tasksFrom(kernelOnly);
  assert.deepEqual(tasks.map((t) => [t.pid, t.comm, t.ppid]), fullTasks.map((t) => [t.pid, t.comm, t.ppid]));
});

test('a transfer killed half-way resumes from its journal into a byte-identical file', async () => {
  assert.ok(fullSaved, 'the full save ran first');
  const out = path.join(scratch, 'resumed.vmcore');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'save-vmcore', out, ...args, '--parallel', '2'], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const journal = `${out}.journal`;
  const deadline = Date.now() + 120_000;
  const lines = (): number => (existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').length - 2 : 0);
  while (lines() < fullSaved.chunks / 3) {
    assert.ok(Date.now() < deadline && child.exitCode === null, 'the transfer got a third of the way');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  const done = lines();
  assert.ok(done < fullSaved.chunks, 'killed before the end');
  const resumed = await grassJson<Saved>(['save-vmcore', out, ...args]);
  assert.ok(resumed.resumedChunks >= done - 1 && resumed.resumedChunks < resumed.chunks, `resumed ${resumed.resumedChunks} chunks, the journal held ${done}`);
  assert.equal(resumed.fetchedBytes, (resumed.chunks - resumed.resumedChunks) * (fullSaved.fetchedBytes / fullSaved.chunks));
  assert.equal(sha256(out), sha256(full));
});

test('a journal of another transfer is refused, naming it', async () => {
  const out = path.join(scratch, 'other.vmcore');
  writeFileSync(out, 'x');
  writeFileSync(`${out}.journal`, `${JSON.stringify({ format: 1, digest: 'not this plan', fileBytes: 1, chunks: 1 })}\n0 00000000\n`);
  const r = await grass(['save-vmcore', out, ...args]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /other\.vmcore\.journal belongs to another transfer/);
  const exists = await grass(['save-vmcore', full, ...args]);
  assert.notEqual(exists.code, 0);
  assert.match(exists.stderr, /full\.vmcore exists/);
});
