// A guest that really kdumps: crashkernel= reserved, the capture kernel loaded with Debian's
// kexec-tools, `echo c > /proc/sysrq-trigger`, and the capture kernel's Debian makedumpfile
// writing /proc/vmcore at dump level 31 once per format (zlib, lzo, snappy, ELF, flattened
// zlib; Debian's makedumpfile has no zstd). One guest, one panic, every format. The truth is the
// guest's own /proc taken just before the panic, its console, and makedumpfile's own ELF dump
// (the pages it left out of its PT_LOADs, which the ELF dump itself must report as excluded too)
// and the dumps' own bitmaps. save-vmcore of a dump (ELF and --format kdump) leaves out what the
// dump left out. crash on the same files is test/long/kdump-crash.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GroundTruth } from '../../testbed';
import { KdumpGuest, KdumpJob, KdumpRun } from '../../testbed/kdump-guest';
import { grass, grassJson, PsTask, root, sameComm } from './agent-harness';

const JOBS: KdumpJob[] = [{ format: 'zlib' }, { format: 'lzo' }, { format: 'snappy' }, { format: 'elf' }, { format: 'zlib', flattened: true }];

let kg: KdumpGuest;
let scratch: string;
let run: KdumpRun;
let truth: GroundTruth;
let truthAgain: GroundTruth;
let procModules: string;

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-kdump-it-'));
  kg = await KdumpGuest.boot();
  await kg.arm(JOBS);
  procModules = (await kg.guest.exec('cat /proc/modules')).trim();
  truth = await kg.guest.truth();
  truthAgain = await kg.guest.truth();
  run = await kg.panicAndDump(scratch);
});

after(async () => {
  await kg?.down();
  rmSync(scratch, { recursive: true, force: true });
});

const dumps = () => run.results.map((r) => ({ name: `${r.job.format}${r.job.flattened ? ' flattened' : ''}`, target: `vmcore:${r.file}`, job: r.job }));

test('the capture kernel ran makedumpfile for every format, and every dump is smaller than the guest', () => {
  assert.equal(run.results.length, JOBS.length);
  for (const r of run.results) assert.ok(r.bytes > 1 << 20 && r.bytes < 640 << 20, `${r.file}: ${r.bytes} bytes`);
  const zlib = run.results.find((r) => r.job.format === 'zlib' && !r.job.flattened)!;
  const elf = run.results.find((r) => r.job.format === 'elf')!;
  assert.ok(zlib.bytes * 3 < elf.bytes, `zlib ${zlib.bytes} vs ELF ${elf.bytes} at the same dump level`);
  assert.match(run.console, /grass kdump: done/);
  assert.match(kg.guest.console(), /Comm: sh Kdump: loaded/, 'the panic report says the crash kernel was loaded');
  process.stderr.write(`kdump: capture kernel up ${run.captureBootSeconds.toFixed(1)} s after the panic; ${run.results.map((r) => `${path.basename(r.file)} ${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(1)} s`).join(', ')}\n`);
});

test('grass ps on each dump lists the tasks the guest listed before its panic', async () => {
  // Processes alive in both truths with the same name: the truth collection's own processes
  // come and go, these do not. States are not compared: the shell that panicked was running.
  const processes = (t: GroundTruth) => t.tasks.filter((x) => x.pid === x.tgid);
  const later = new Map(processes(truthAgain).map((t) => [t.pid, t]));
  const stable = processes(truth).filter((t) => later.get(t.pid)?.comm === t.comm);
  assert.ok(stable.length > 40, `${stable.length} stable processes`);
  let first: PsTask[] | undefined;
  for (const d of dumps()) {
    const { tasks } = await grassJson<{ tasks: PsTask[] }>(['ps', '--target', d.target]);
    const byPid = new Map(tasks.map((t) => [t.pid, t]));
    for (const t of stable) {
      const got = byPid.get(t.pid);
      assert.ok(got && sameComm(got.comm, t.comm) && got.ppid === t.ppid, `${d.name}: pid ${t.pid} (${t.comm}, ppid ${t.ppid}) listed as ${JSON.stringify(got)}`);
    }
    const known = new Set([...truth.tasks, ...truthAgain.tasks].map((t) => t.pid));
    const unknown = tasks.filter((t) => !known.has(t.pid));
    assert.ok(unknown.length <= 2, `${d.name}: processes the guest never listed: ${JSON.stringify(unknown.map((t) => [t.pid, t.comm]))}`);
    if (first) assert.deepEqual(tasks, first, `${d.name} lists the same as the zlib dump`);
    else first = tasks;
  }
});

test('dmesg of each dump ends in the panic the console shows; modules equal /proc/modules', async () => {
  let firstLog: string | undefined;
  for (const d of dumps()) {
    const log = await grass(['dmesg', '--target', d.target]);
    assert.equal(log.code, 0, `${d.name}: ${log.stderr}`);
    assert.match(log.stdout, /Kernel panic - not syncing: sysrq triggered crash/, d.name);
    if (firstLog !== undefined) assert.equal(log.stdout, firstLog, `${d.name}: the same log as the zlib dump`);
    else firstLog = log.stdout;
    const mods = await grass(['modules', '--target', d.target]);
    assert.equal(mods.code, 0, `${d.name}: ${mods.stderr}`);
    assert.equal(mods.stdout.trim(), procModules, d.name);
    const report = await grassJson<{ reports: { kind: string; message: string; comm: string | null }[] }>(['report', '--target', d.target]);
    const panic = report.reports.find((r) => r.kind === 'panic');
    assert.equal(panic?.message, 'Kernel panic - not syncing: sysrq triggered crash', d.name);
  }
});

test('a page makedumpfile left out reads as excluded by the dump level, never as zeros', async () => {
  // makedumpfile's ELF dump: the tail of a PT_LOAD past its file size is what it left out.
  const elf = run.results.find((r) => r.job.format === 'elf')!.file;
  const loads = execFileSync('readelf', ['-lW', elf], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s+LOAD\s+0x[0-9a-f]+ 0x[0-9a-f]+ (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ phys: BigInt(m[1]), filesz: BigInt(m[2]), memsz: BigInt(m[3]) }));
  const gaps = loads.filter((l) => l.memsz - l.filesz >= 0x10000n).sort((a, b) => Number(b.memsz - b.filesz - (a.memsz - a.filesz)));
  assert.ok(gaps.length > 0, 'makedumpfile left pages out at dump level 31');
  const excluded = gaps[0].phys + gaps[0].filesz + ((gaps[0].memsz - gaps[0].filesz) / 2n & ~0xfffn);
  const kept = gaps[0].phys;
  const addr = `0x${excluded.toString(16)}`;
  for (const d of dumps()) {
    const r = await grass(['read', addr, '64', '--phys', '--target', d.target]);
    assert.notEqual(r.code, 0, `${d.name}: read of ${addr} gave ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`address ${addr} is not in this dump \\(excluded by its dump level\\)`), d.name);
    const ok = await grass(['read', `0x${kept.toString(16)}`, '64', '--phys', '--target', d.target]);
    assert.equal(ok.code, 0, `${d.name}: a page in the dump reads: ${ok.stderr}`);
  }
});

test('corrupted copies of a real dump (header, bitmaps, descriptors, pages) give a named error or a listing, never a crash or hang', async () => {
  const plain = run.results.find((r) => r.job.format === 'zlib' && !r.job.flattened)!.file;
  const original = readFileSync(plain);
  // The file's parts, from its own header (makedumpfile's diskdump_mod.h layout).
  const blockSize = original.readUInt32LE(428);
  const bitmapsAt = (1 + original.readUInt32LE(432)) * blockSize;
  const descriptorsAt = bitmapsAt + original.readUInt32LE(436) * blockSize;
  const parts: [string, number, number][] = [
    ['header', 0, 2 * blockSize],
    ['bitmaps', bitmapsAt, descriptorsAt],
    ['descriptors', descriptorsAt, descriptorsAt + 64 * 1024],
    ['pages', descriptorsAt + 64 * 1024, original.length],
  ];
  let seed = 23;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const outcomes: Record<string, number> = {};
  const mutant = path.join(scratch, 'mutant');
  // Two of each part (each run starts an agent and, when VMCOREINFO is gone, scans the whole dump).
  for (let i = 0; i < 8; i++) {
    const [part, from, to] = parts[i % parts.length];
    const bytes = Buffer.from(original);
    const flips: string[] = [];
    for (let k = 0; k < 16; k++) {
      const at = from + (next() % (to - from));
      bytes[at] ^= 1 + (next() % 255);
      flips.push(at.toString(16));
    }
    // Every fourth one (a pages mutant) is also cut short.
    writeFileSync(mutant, i % 4 === 3 ? bytes.subarray(0, Math.floor(bytes.length * 0.6)) : bytes);
    const r = await grass(['ps', '--target', `vmcore:${mutant}`], {}, 120_000);
    const what = `${part} mutant ${i} (flips at ${flips.slice(0, 4).join(',')}…)`;
    assert.ok(r.code === 0 || r.code === 1, `${what}: exit ${r.code}, ${r.stderr.slice(-500)}`);
    // The error names the file, or the kernel object whose read failed.
    if (r.code === 1) assert.match(r.stderr, /mutant|VMCOREINFO|\.BTF|page_offset_base|not in this dump|outside/, `${what}: an unnamed error: ${r.stderr.slice(-500)}`);
    outcomes[`${part} ${r.code === 0 ? 'listed' : 'refused'}`] = (outcomes[`${part} ${r.code === 0 ? 'listed' : 'refused'}`] ?? 0) + 1;
  }
  process.stderr.write(`kdump mutants: ${JSON.stringify(outcomes)}\n`);
});

/** Pages of RAM (1st bitmap) that a kdump file does not hold (clear in its 2nd), read from the file itself. */
function pagesLeftOut(file: string): number {
  const b = readFileSync(file);
  const blockSize = b.readUInt32LE(428);
  const bitmapsAt = (1 + b.readUInt32LE(432)) * blockSize;
  const half = (b.readUInt32LE(436) * blockSize) / 2;
  let n = 0;
  for (let i = 0; i < half; i++) {
    let bits = b[bitmapsAt + i] & ~b[bitmapsAt + half + i] & 0xff;
    for (; bits; bits &= bits - 1) n++;
  }
  return n;
}

interface Saved {
  fileFormat: string;
  compression?: string;
  fileBytes: number;
  chunks: number;
  resumedChunks: number;
  excludedPages: Record<string, number>;
  excludedAsZeros: Record<string, number>;
}

let savedElf: { file: string; saved: Saved } | undefined;

test('save-vmcore of a dump never asks for what the dump left out: those pages are named as excluded, not copied as zeros unsaid', async () => {
  const zlib = run.results.find((r) => r.job.format === 'zlib' && !r.job.flattened)!.file;
  const out = path.join(scratch, 'saved.elf');
  const r = await grass(['save-vmcore', out, '--target', `vmcore:${zlib}`, '--json'], {}, 300_000);
  assert.equal(r.code, 0, r.stderr);
  const saved = JSON.parse(r.stdout) as Saved;
  const leftOut = pagesLeftOut(zlib);
  assert.ok(leftOut > 1000, `makedumpfile left ${leftOut} pages out at dump level 31`);
  assert.equal(saved.excludedPages.notindump, leftOut, 'every page the dump lacks, and only those, is excluded');
  assert.match(r.stderr, new RegExp(`${leftOut} pages are not in the source dump \\(excluded by its dump level\\)`));
  // An ELF cannot leave out short runs inside a segment: those are zero pages, and said so.
  const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { excluded: { pages: number; reason: string; inFile: string }[] };
  const zeros = manifest.excluded.filter((x) => x.reason === 'notindump' && x.inFile === 'zeros').reduce((n, x) => n + x.pages, 0);
  assert.equal(zeros, saved.excludedAsZeros.notindump ?? 0);
  if (zeros) assert.match(r.stderr, new RegExp(`${zeros} written as zero pages inside its segments`));
  const ps = async (target: string): Promise<string> => (await grass(['ps', '--target', target])).stdout;
  assert.equal(await ps(`vmcore:${out}`), await ps(`vmcore:${zlib}`), 'the saved ELF lists what the dump lists');
  savedElf = { file: out, saved };
});

test('save-vmcore --format kdump: zstd pages, 3x smaller than the ELF of the same pages, the same tasks, excluded pages still excluded, resumable', async () => {
  assert.ok(savedElf, 'the ELF save ran first');
  const zlib = run.results.find((r) => r.job.format === 'zlib' && !r.job.flattened)!.file;
  const out = path.join(scratch, 'saved.kdump');
  const r = await grass(['save-vmcore', out, '--format', 'kdump', '--target', `vmcore:${zlib}`, '--json'], {}, 300_000);
  assert.equal(r.code, 0, r.stderr);
  const saved = JSON.parse(r.stdout) as Saved;
  assert.equal(saved.fileFormat, 'kdump');
  assert.equal(saved.compression, 'zstd');
  const head = readFileSync(out).subarray(0, 4096);
  assert.equal(head.subarray(0, 8).toString('latin1'), 'KDUMP   ');
  assert.equal(head.readUInt32LE(424), 0x20, 'header status: DUMP_DH_COMPRESSED_ZSTD');
  assert.ok(saved.fileBytes * 3 <= savedElf.saved.fileBytes, `kdump ${saved.fileBytes} bytes vs ELF ${savedElf.saved.fileBytes}`);
  assert.deepEqual(saved.excludedAsZeros, {}, 'a kdump file writes no excluded page as zeros');
  assert.equal(pagesLeftOut(out), pagesLeftOut(zlib), 'its bitmaps leave out what the source left out');
  const ps = async (target: string): Promise<string> => (await grass(['ps', '--target', target])).stdout;
  assert.equal(await ps(`vmcore:${out}`), await ps(`vmcore:${zlib}`));
  const dmesg = await grass(['dmesg', '--target', `vmcore:${out}`]);
  assert.match(dmesg.stdout, /Kernel panic - not syncing: sysrq triggered crash/);

  // A page the source left out, found from the source's own bitmaps: excluded in the copy too.
  const src = readFileSync(zlib);
  const bitmapsAt = (1 + src.readUInt32LE(432)) * src.readUInt32LE(428);
  const half = (src.readUInt32LE(436) * src.readUInt32LE(428)) / 2;
  let pfn = -1;
  for (let i = 0; i < half && pfn < 0; i++) {
    const bits = src[bitmapsAt + i] & ~src[bitmapsAt + half + i] & 0xff;
    if (bits) pfn = i * 8 + Math.log2(bits & -bits);
  }
  const addr = `0x${(pfn * 4096).toString(16)}`;
  const read = await grass(['read', addr, '64', '--phys', '--target', `vmcore:${out}`]);
  assert.notEqual(read.code, 0);
  assert.match(read.stderr, new RegExp(`address ${addr} is not in this dump \\(excluded by its dump level\\)`));

  // Killed part-way (one request in flight at a time), then run again: the same file but for
  // the header's time stamp (struct timeval at 408).
  const again = path.join(scratch, 'resumed.kdump');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'save-vmcore', again, '--format', 'kdump', '--parallel', '1', '--target', `vmcore:${zlib}`], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const journal = `${again}.journal`;
  const lines = (): number => (existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').length - 2 : 0);
  const deadline = Date.now() + 120_000;
  while (lines() < saved.chunks / 3) {
    assert.ok(Date.now() < deadline && child.exitCode === null, 'the transfer got a third of the way');
    await new Promise((res) => setTimeout(res, 10));
  }
  child.kill('SIGKILL');
  await exited;
  const done = lines();
  assert.ok(done < saved.chunks, 'killed before the end');
  const resumed = await grassJson<Saved>(['save-vmcore', again, '--format', 'kdump', '--target', `vmcore:${zlib}`]);
  assert.ok(resumed.resumedChunks >= done - 1 && resumed.resumedChunks < resumed.chunks, `resumed ${resumed.resumedChunks} chunks, the journal held ${done}`);
  const a = readFileSync(out);
  const b = readFileSync(again);
  a.fill(0, 408, 424);
  b.fill(0, 408, 424);
  assert.ok(a.equals(b), `the resumed file (${b.length} bytes) equals the uninterrupted one (${a.length})`);
  process.stderr.write(`kdump save: ELF ${savedElf.saved.fileBytes} bytes, kdump zstd ${saved.fileBytes} (${(savedElf.saved.fileBytes / saved.fileBytes).toFixed(1)}x smaller); resumed after ${done} of ${saved.chunks} chunks\n`);
});
