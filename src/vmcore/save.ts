// grass save-vmcore's engine: fetch the planned pages with BULK_READ on every free slot at once,
// write them at their place in the ELF file, and journal each finished chunk (index and CRC32)
// beside the output so an interrupted transfer resumes where it stopped. When done: the journal
// goes, a manifest of what was saved, skipped (and why) and each chunk's checksum stays.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, FileHandle } from 'node:fs/promises';
import type { GrassClient } from '../rdma/client';
import { dataCrc32 } from '../rdma/protocol/codec';
import { Btf } from '../kernel/btf/btf';
import { elfLayout, ElfLayout } from './elf';
import { classifyPages, PAGE_BYTES, PAGE_CLASS_NAMES, PageClass, resolvePageLayout } from './page-filter';
import { Chunk, ExcludedRun, filteredSegments, fullSegments, makePlan, Plan, planDigest } from './plan';

export interface SaveProgress {
  phase: 'classify' | 'transfer';
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second over the last few seconds of this run (0 until measured). */
  rate: number;
  /** Seconds left at that rate (undefined until measured). */
  etaSeconds?: number;
}

export interface SaveOptions {
  kernelOnly?: boolean;
  /** Requests in flight (default: every slot but the one kept for heartbeats). */
  parallel?: number;
  onProgress?: (p: SaveProgress) => void;
  signal?: AbortSignal;
}

export interface SaveResult {
  out: string;
  manifest: string;
  fileBytes: number;
  /** Bytes fetched by this run (less than the plan's when resumed). */
  fetchedBytes: number;
  resumedChunks: number;
  chunks: number;
  seconds: number;
  pagesTotal: number;
  pagesSaved: number;
  excludedPages: Record<string, number>;
}

export class SaveInterruptedError extends Error {
  constructor(readonly out: string, readonly chunksDone: number, readonly chunks: number) {
    super(`save-vmcore: interrupted after ${chunksDone} of ${chunks} chunks; run the same command again to resume (journal ${journalPath(out)})`);
    this.name = 'SaveInterruptedError';
  }
}

export const journalPath = (out: string): string => `${out}.journal`;
export const manifestPath = (out: string): string => `${out}.manifest.json`;

interface JournalHead {
  format: 1;
  digest: string;
  fileBytes: number;
  chunks: number;
}

/** Chunks recorded as done by an earlier run of the same plan, with their CRC32s. */
function readJournal(out: string, head: JournalHead): Map<number, number> {
  const lines = readFileSync(journalPath(out), 'utf8').split('\n');
  let theirs: JournalHead;
  try {
    theirs = JSON.parse(lines[0]) as JournalHead;
  } catch {
    throw new Error(`save-vmcore: ${journalPath(out)} is not a save-vmcore journal; remove it and ${out} to start over`);
  }
  if (theirs.digest !== head.digest || theirs.fileBytes !== head.fileBytes) {
    throw new Error(`save-vmcore: ${journalPath(out)} belongs to another transfer (another target, mode, or a target whose memory changed since); remove it and ${out} to start over`);
  }
  const done = new Map<number, number>();
  for (const line of lines.slice(1)) {
    const m = /^(\d+) ([0-9a-f]{8})$/.exec(line);
    if (m && Number(m[1]) < head.chunks) done.set(Number(m[1]), parseInt(m[2], 16)); // a torn last line is ignored
  }
  return done;
}

/** File offsets of a chunk's wanted pages, as runs: [chunk data offset, file offset, bytes]. */
function chunkRuns(plan: Plan, elf: ElfLayout, c: Chunk): [number, number, number][] {
  const base = elf.segmentOffsets[c.segment] + c.segmentPage * PAGE_BYTES;
  const runs: [number, number, number][] = [];
  let data = 0;
  for (let k = 0; k < c.pages;) {
    const wanted = (i: number): boolean => (c.bitmap ? ((c.bitmap[i >> 3] >> (i & 7)) & 1) === 1 : true);
    if (!wanted(k)) { k++; continue; }
    let j = k;
    while (j < c.pages && wanted(j)) j++;
    runs.push([data, base + k * PAGE_BYTES, (j - k) * PAGE_BYTES]);
    data += (j - k) * PAGE_BYTES;
    k = j;
  }
  return runs;
}

async function readBack(fh: FileHandle, runs: [number, number, number][], bytes: number): Promise<Uint8Array> {
  const buf = new Uint8Array(bytes);
  for (const [data, file, n] of runs) await fh.read(buf, data, n, file);
  return buf;
}

export async function saveVmcore(client: GrassClient, out: string, options: SaveOptions = {}): Promise<SaveResult> {
  const started = Date.now();
  const description = await client.describe();
  const excluded: ExcludedRun[] = [];
  let segments = fullSegments(description.memoryMap);
  if (options.kernelOnly) {
    options.onProgress?.({ phase: 'classify', bytesDone: 0, bytesTotal: 0, rate: 0 });
    const btf = new Btf(description.btf, { source: 'target BTF' });
    const layout = await resolvePageLayout(btf, description, client);
    segments = filteredSegments(await classifyPages(client, layout, description.memoryMap), excluded);
  }
  const plan = makePlan(segments, excluded, client.header.slotDataBytes);
  const elf = elfLayout(plan.segments, description);
  const head: JournalHead = { format: 1, digest: planDigest(plan, elf.header), fileBytes: elf.fileBytes, chunks: plan.chunks.length };

  let done = new Map<number, number>();
  const resuming = existsSync(journalPath(out));
  if (resuming) {
    done = readJournal(out, head);
    if (!existsSync(out)) throw new Error(`save-vmcore: ${journalPath(out)} exists but ${out} does not; remove the journal to start over`);
  } else if (existsSync(out)) {
    throw new Error(`save-vmcore: ${out} exists (and no journal of an unfinished transfer beside it); remove it or choose another name`);
  }
  const fh = await open(out, resuming ? 'r+' : 'w+');
  const journal = await open(journalPath(out), 'a');
  try {
    if (!resuming) {
      await fh.truncate(elf.fileBytes); // pages never written (zero-filled exclusions) stay holes
      await fh.write(elf.header, 0, elf.header.length, 0);
      await journal.write(JSON.stringify(head) + '\n');
    } else {
      const { size } = await fh.stat();
      if (size !== elf.fileBytes) throw new Error(`save-vmcore: ${out} is ${size} bytes, the journal's transfer makes ${elf.fileBytes}; remove both to start over`);
      // What an earlier run wrote must still be what it fetched.
      for (const [index, crc] of done) {
        const c = plan.chunks[index];
        const got = dataCrc32(await readBack(fh, chunkRuns(plan, elf, c), c.wantedPages * PAGE_BYTES));
        if (got !== crc) done.delete(index);
      }
    }
    const crcs = new Map(done);
    const pending = plan.chunks.filter((c) => !done.has(c.index));
    const bytesTotal = plan.wantedPages * PAGE_BYTES;
    let bytesDone = [...done.keys()].reduce((n, i) => n + plan.chunks[i].wantedPages * PAGE_BYTES, 0);
    let fetched = 0;
    const samples: [number, number][] = [[Date.now(), 0]];
    const report = (): void => {
      const now = Date.now();
      samples.push([now, fetched]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [t0, b0] = samples[0];
      const rate = now > t0 ? ((fetched - b0) * 1000) / (now - t0) : 0;
      options.onProgress?.({ phase: 'transfer', bytesDone, bytesTotal, rate, etaSeconds: rate > 0 ? (bytesTotal - bytesDone) / rate : undefined });
    };
    report();
    const parallel = Math.max(1, options.parallel ?? client.header.slotCount - 1);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < pending.length && !options.signal?.aborted && !failed) {
        const c = pending[next++];
        const { data, crc32 } = await client.bulkRead(c.physStart, c.pages * PAGE_BYTES, c.bitmap);
        if (data.length !== c.wantedPages * PAGE_BYTES) {
          throw new Error(`save-vmcore: BULK_READ at physical 0x${c.physStart.toString(16)} returned ${data.length} bytes for ${c.wantedPages} pages`);
        }
        for (const [from, at, n] of chunkRuns(plan, elf, c)) await fh.write(data, from, n, at);
        await journal.write(`${c.index} ${crc32.toString(16).padStart(8, '0')}\n`);
        crcs.set(c.index, crc32);
        bytesDone += data.length;
        fetched += data.length;
        report();
      }
    };
    // On a failure the other requests in flight still land (and are journaled) before the files
    // close, so a resume loses nothing that arrived.
    const outcomes = await Promise.allSettled(Array.from({ length: Math.min(parallel, Math.max(1, pending.length)) }, () => worker().catch((err: unknown) => {
      failed = true;
      throw err;
    })));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
    if (options.signal?.aborted) throw new SaveInterruptedError(out, crcs.size, plan.chunks.length);
    await fh.sync();

    const excludedPages: Record<string, number> = {};
    for (const run of plan.excluded) {
      const name = PageClass[run.reason].toLowerCase();
      excludedPages[name] = (excludedPages[name] ?? 0) + run.pages;
    }
    const seconds = (Date.now() - started) / 1000;
    const result: SaveResult = {
      out,
      manifest: manifestPath(out),
      fileBytes: elf.fileBytes,
      fetchedBytes: fetched,
      resumedChunks: done.size,
      chunks: plan.chunks.length,
      seconds,
      pagesTotal: description.memoryMap.reduce((n, r) => n + Number(r.length / BigInt(PAGE_BYTES)), 0),
      pagesSaved: plan.wantedPages,
      excludedPages,
    };
    writeFileSync(manifestPath(out), JSON.stringify({
      format: 1,
      kernel: description.release,
      mode: options.kernelOnly ? 'kernel-only' : 'all',
      ...result,
      pageBytes: PAGE_BYTES,
      classes: Object.fromEntries(Object.entries(PAGE_CLASS_NAMES).map(([k, v]) => [PageClass[Number(k)].toLowerCase(), v])),
      segments: plan.segments.map((s, i) => ({ physStart: hex(s.physStart), pages: s.pages, fileOffset: elf.segmentOffsets[i], zeroFilledPages: s.wanted ? s.wanted.reduce((n, w) => n + (w ? 0 : 1), 0) : 0 })),
      excluded: plan.excluded.map((r) => ({ physStart: hex(r.physStart), pages: r.pages, reason: PageClass[r.reason].toLowerCase(), inFile: r.inFile })),
      chunks: plan.chunks.map((c) => ({ physStart: hex(c.physStart), pages: c.pages, wantedPages: c.wantedPages, crc32: crcs.get(c.index)!.toString(16).padStart(8, '0') })),
    }, null, 1) + '\n');
    await journal.close();
    rmSync(journalPath(out), { force: true });
    return result;
  } finally {
    await fh.close().catch(() => undefined);
    await journal.close().catch(() => undefined);
  }
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}
