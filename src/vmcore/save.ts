// grass save-vmcore's engine: fetch the planned pages with BULK_READ on every free slot at once,
// write them at their place in the ELF file, and journal each finished chunk (index and CRC32)
// beside the output so an interrupted transfer resumes where it stopped. When done: the journal
// goes, a manifest of what was saved, skipped (and why) and each chunk's checksum stays.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, FileHandle } from 'node:fs/promises';
import type { GrassClient } from '../rdma/client';
import { dataCrc32 } from '../rdma/protocol/codec';
import { Btf } from '../kernel/btf/btf';
import type { AgentDescription } from '../rdma/protocol/description';
import { elfLayout, ElfLayout } from './elf';
import { codec, decodePages, dumpLevel, encodeChunk, headForDigest, KDUMP_DESCRIPTOR_BYTES, KdumpCompression, kdumpLayout, kernelUtsname, zeroPage } from './kdump';
import { classifyPages, PAGE_BYTES, PAGE_CLASS_NAMES, PageClass, RangeClasses, resolvePageLayout } from './page-filter';
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
  /** 'elf' (default) or makedumpfile's kdump-compressed format. */
  format?: 'elf' | 'kdump';
  /** kdump's page compression (default zstd). */
  compression?: KdumpCompression;
  /** Requests in flight (default: every slot but the one kept for heartbeats). */
  parallel?: number;
  onProgress?: (p: SaveProgress) => void;
  signal?: AbortSignal;
}

export interface SaveResult {
  out: string;
  manifest: string;
  fileFormat: 'elf' | 'kdump';
  compression?: KdumpCompression;
  fileBytes: number;
  /** Bytes fetched by this run (less than the plan's when resumed). */
  fetchedBytes: number;
  resumedChunks: number;
  chunks: number;
  seconds: number;
  pagesTotal: number;
  pagesSaved: number;
  excludedPages: Record<string, number>;
  /** Of those, the pages written as zero pages inside a segment (the ELF's runs too short to split it), by class. */
  excludedAsZeros: Record<string, number>;
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

interface JournalEntry {
  crc: number;
  /** kdump: the file offset where the chunk's data ends (the next chunk's starts). */
  dataEnd?: number;
}

/** Chunks recorded as done by an earlier run of the same plan, with their CRC32s. */
function readJournal(out: string, head: JournalHead): Map<number, JournalEntry> {
  const lines = readFileSync(journalPath(out), 'utf8').split('\n');
  let theirs: JournalHead;
  try {
    theirs = JSON.parse(lines[0]) as JournalHead;
  } catch {
    throw new Error(`save-vmcore: ${journalPath(out)} is not a save-vmcore journal; remove it and ${out} to start over`);
  }
  if (theirs.digest !== head.digest || theirs.fileBytes !== head.fileBytes) {
    throw new Error(`save-vmcore: ${journalPath(out)} belongs to another transfer (another target, mode, format, or a target whose memory changed since); remove it and ${out} to start over`);
  }
  const done = new Map<number, JournalEntry>();
  for (const line of lines.slice(1)) {
    const m = /^(\d+) ([0-9a-f]{8})(?: (\d+))?$/.exec(line);
    if (m && Number(m[1]) < head.chunks) done.set(Number(m[1]), { crc: parseInt(m[2], 16), ...(m[3] !== undefined ? { dataEnd: Number(m[3]) } : {}) }); // a torn last line is ignored
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

/**
 * The pages of each memory range that the source left out (a dump's dump level), from DUMP_MAP,
 * as page classes (NotInDump, else Kept); undefined when it holds every page. They are never
 * asked for (BULK_READ would fail on them) and the manifest lists them as excluded.
 */
async function sourceHoles(client: GrassClient, memoryMap: { physStart: bigint; length: bigint }[]): Promise<RangeClasses[] | undefined> {
  const step = 8 * client.header.slotDataBytes;
  let any = false;
  const ranges: RangeClasses[] = [];
  for (const r of memoryMap) {
    const pages = Number(r.length / BigInt(PAGE_BYTES));
    const classes = new Uint8Array(pages);
    for (let p = 0; p < pages; p += step) {
      const n = Math.min(step, pages - p);
      const bits = await client.dumpMap(r.physStart + BigInt(p) * BigInt(PAGE_BYTES), n);
      for (let k = 0; k < n; k++) {
        if (((bits[k >> 3] >> (k & 7)) & 1) === 0) {
          classes[p + k] = PageClass.NotInDump;
          any = true;
        }
      }
    }
    ranges.push({ physStart: r.physStart, pages, classes, unreadable: 0 });
  }
  return any ? ranges : undefined;
}

export async function saveVmcore(client: GrassClient, out: string, options: SaveOptions = {}): Promise<SaveResult> {
  const started = Date.now();
  const description = await client.describe();
  const excluded: ExcludedRun[] = [];
  let segments = fullSegments(description.memoryMap);
  const holes = await sourceHoles(client, description.memoryMap);
  if (options.kernelOnly) {
    options.onProgress?.({ phase: 'classify', bytesDone: 0, bytesTotal: 0, rate: 0 });
    const btf = new Btf(description.btf, { source: 'target BTF' });
    const layout = await resolvePageLayout(btf, description, client);
    const classes = await classifyPages(client, layout, description.memoryMap);
    // What the source does not hold is not there to keep, whatever its struct page says.
    holes?.forEach((h, i) => h.classes.forEach((c, k) => { if (c === PageClass.NotInDump) classes[i].classes[k] = c; }));
    segments = filteredSegments(classes, excluded);
  } else if (holes) {
    segments = filteredSegments(holes, excluded);
  }
  const plan = makePlan(segments, excluded, client.header.slotDataBytes);
  const format = options.format ?? 'elf';
  const sink = format === 'kdump'
    ? await kdumpSink(plan, description, options.compression ?? 'zstd', dumpLevel(options.kernelOnly === true, holes !== undefined), await kernelUtsname(client, description))
    : elfSink(plan, description);
  const head: JournalHead = { format: 1, digest: planDigest(plan, sink.digestHead), fileBytes: sink.fixedBytes, chunks: plan.chunks.length };

  let done = new Map<number, JournalEntry>();
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
      await sink.start(fh);
      await journal.write(JSON.stringify(head) + '\n');
    } else {
      // What an earlier run wrote must still be what it fetched.
      done = await sink.resume(fh, done, out);
    }
    const crcs = new Map([...done].map(([i, e]) => [i, e.crc]));
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
    // A sink that writes in chunk order (kdump) takes chunk k only after chunk k - 1: turn[k]
    // opens when the chunk before it in the pending list is written.
    const turns = pending.map(() => deferred());
    turns[0]?.open();
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < pending.length && !options.signal?.aborted && !failed) {
        const position = next++;
        const c = pending[position];
        const { data, crc32 } = await client.bulkRead(c.physStart, c.pages * PAGE_BYTES, c.bitmap);
        if (data.length !== c.wantedPages * PAGE_BYTES) {
          throw new Error(`save-vmcore: BULK_READ at physical 0x${c.physStart.toString(16)} returned ${data.length} bytes for ${c.wantedPages} pages`);
        }
        if (sink.ordered) await turns[position].opened;
        const extra = await sink.write(fh, c, data);
        await journal.write(`${c.index} ${crc32.toString(16).padStart(8, '0')}${extra !== undefined ? ` ${extra}` : ''}\n`);
        turns[position + 1]?.open();
        crcs.set(c.index, crc32);
        bytesDone += data.length;
        fetched += data.length;
        report();
      }
    };
    // On a failure the other requests in flight still land (and are journaled) before the files
    // close, so a resume loses nothing that arrived; chunks waiting for their turn give up.
    const outcomes = await Promise.allSettled(Array.from({ length: Math.min(parallel, Math.max(1, pending.length)) }, () => worker().catch((err: unknown) => {
      failed = true;
      for (const t of turns) t.cancel();
      throw err;
    })));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && !(o.reason instanceof TurnCancelled));
    if (failure) throw failure.reason;
    if (options.signal?.aborted) throw new SaveInterruptedError(out, crcs.size, plan.chunks.length);
    const fileBytes = await sink.finish(fh);
    await fh.sync();

    const excludedPages: Record<string, number> = {};
    const excludedAsZeros: Record<string, number> = {};
    for (const run of plan.excluded) {
      const name = PageClass[run.reason].toLowerCase();
      excludedPages[name] = (excludedPages[name] ?? 0) + run.pages;
      if (run.inFile === 'zeros' && format === 'elf') excludedAsZeros[name] = (excludedAsZeros[name] ?? 0) + run.pages;
    }
    const seconds = (Date.now() - started) / 1000;
    const result: SaveResult = {
      out,
      manifest: manifestPath(out),
      fileFormat: format,
      ...(sink.compression ? { compression: sink.compression } : {}),
      fileBytes,
      fetchedBytes: fetched,
      resumedChunks: done.size,
      chunks: plan.chunks.length,
      seconds,
      pagesTotal: description.memoryMap.reduce((n, r) => n + Number(r.length / BigInt(PAGE_BYTES)), 0),
      pagesSaved: plan.wantedPages,
      excludedPages,
      excludedAsZeros,
    };
    writeFileSync(manifestPath(out), JSON.stringify({
      format: 1,
      kernel: description.release,
      mode: options.kernelOnly ? 'kernel-only' : 'all',
      ...result,
      pageBytes: PAGE_BYTES,
      classes: Object.fromEntries(Object.entries(PAGE_CLASS_NAMES).map(([k, v]) => [PageClass[Number(k)].toLowerCase(), v])),
      segments: plan.segments.map((s, i) => ({ physStart: hex(s.physStart), pages: s.pages, ...sink.segmentPlacement(i), zeroFilledPages: format === 'elf' && s.wanted ? s.wanted.reduce((n, w) => n + (w ? 0 : 1), 0) : 0 })),
      // In a kdump file every excluded page is clear in its 2nd bitmap: none is written as zeros.
      excluded: plan.excluded.map((r) => ({ physStart: hex(r.physStart), pages: r.pages, reason: PageClass[r.reason].toLowerCase(), inFile: format === 'elf' ? r.inFile : 'excluded' })),
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

/** Where a format puts the chunks: ELF pages at fixed offsets, kdump's compressed pages in order. */
interface Sink {
  /** Header bytes that name the plan (with the chunks) in the journal. */
  digestHead: Uint8Array;
  /** The part of the file fixed by the plan, checked again on resume. */
  fixedBytes: number;
  ordered: boolean;
  compression?: KdumpCompression;
  start(fh: FileHandle): Promise<void>;
  /** The journal's chunks still intact in the file (the rest are fetched again). */
  resume(fh: FileHandle, done: Map<number, JournalEntry>, out: string): Promise<Map<number, JournalEntry>>;
  /** Writes a chunk's pages; what the journal line records beside its CRC (kdump: where its data ends). */
  write(fh: FileHandle, c: Chunk, data: Uint8Array): Promise<number | undefined>;
  /** The file's final size. */
  finish(fh: FileHandle): Promise<number>;
  segmentPlacement(segment: number): Record<string, number>;
}

function elfSink(plan: Plan, description: AgentDescription): Sink {
  const elf = elfLayout(plan.segments, description);
  return {
    digestHead: elf.header,
    fixedBytes: elf.fileBytes,
    ordered: false,
    async start(fh) {
      await fh.truncate(elf.fileBytes); // pages never written (zero-filled exclusions) stay holes
      await fh.write(elf.header, 0, elf.header.length, 0);
    },
    async resume(fh, done, out) {
      const { size } = await fh.stat();
      if (size !== elf.fileBytes) throw new Error(`save-vmcore: ${out} is ${size} bytes, the journal's transfer makes ${elf.fileBytes}; remove both to start over`);
      const kept = new Map(done);
      for (const [index, entry] of done) {
        const c = plan.chunks[index];
        if (dataCrc32(await readBack(fh, chunkRuns(plan, elf, c), c.wantedPages * PAGE_BYTES)) !== entry.crc) kept.delete(index);
      }
      return kept;
    },
    async write(fh, c, data) {
      for (const [from, at, n] of chunkRuns(plan, elf, c)) await fh.write(data, from, n, at);
      return undefined;
    },
    finish: async () => elf.fileBytes,
    segmentPlacement: (i) => ({ fileOffset: elf.segmentOffsets[i] }),
  };
}

async function kdumpSink(plan: Plan, description: AgentDescription, compression: KdumpCompression, level: number, utsname: Uint8Array | undefined): Promise<Sink> {
  const c = await codec(compression);
  const layout = kdumpLayout(plan, description, compression, level, Math.floor(Date.now() / 1000), utsname);
  const zero = zeroPage(c);
  const dataStart = layout.zeroAt + zero.length;
  let cursor = dataStart;
  const descriptorsOf = (chunk: Chunk): number => layout.descriptorsAt + layout.firstDescriptor[chunk.index] * KDUMP_DESCRIPTOR_BYTES;
  return {
    digestHead: headForDigest(layout),
    fixedBytes: dataStart,
    ordered: true,
    compression,
    async start(fh) {
      await fh.truncate(0);
      await fh.write(layout.head, 0, layout.head.length, 0);
      await fh.write(zero, 0, zero.length, layout.zeroAt);
    },
    async resume(fh, done, out) {
      // Chunks are written in order: the intact ones are a prefix of the plan, and the file is
      // cut after the last of them (a chunk written but not journaled is written again).
      const kept = new Map<number, JournalEntry>();
      const { size } = await fh.stat();
      if (size < dataStart) throw new Error(`save-vmcore: ${out} is ${size} bytes, shorter than the kdump header of the journal's transfer (${dataStart}); remove both to start over`);
      for (const chunk of plan.chunks) {
        const entry = done.get(chunk.index);
        if (entry?.dataEnd === undefined || entry.dataEnd > size) break;
        const descriptors = new Uint8Array(chunk.wantedPages * KDUMP_DESCRIPTOR_BYTES);
        await fh.read(descriptors, 0, descriptors.length, descriptorsOf(chunk));
        const file = fh;
        const pieces: [number, number][] = [];
        const dv = new DataView(descriptors.buffer);
        for (let k = 0; k < chunk.wantedPages; k++) pieces.push([Number(dv.getBigUint64(k * KDUMP_DESCRIPTOR_BYTES, true)), dv.getUint32(k * KDUMP_DESCRIPTOR_BYTES + 8, true)]);
        const lo = Math.min(...pieces.map(([o]) => o));
        const hi = Math.max(...pieces.map(([o, n]) => o + n));
        if (lo < layout.zeroAt || hi > entry.dataEnd) break;
        const span = new Uint8Array(hi - lo);
        await file.read(span, 0, span.length, lo);
        let pages: Uint8Array;
        try {
          pages = decodePages(c, descriptors, (offset, bytes) => span.subarray(offset - lo, offset - lo + bytes));
        } catch {
          break;
        }
        if (dataCrc32(pages) !== entry.crc) break;
        kept.set(chunk.index, entry);
        cursor = entry.dataEnd;
      }
      await fh.truncate(cursor);
      return kept;
    },
    async write(fh, chunk, data) {
      const { descriptors, blob } = encodeChunk(c, data, cursor, { at: layout.zeroAt, bytes: zero.length });
      await fh.write(blob, 0, blob.length, cursor);
      await fh.write(descriptors, 0, descriptors.length, descriptorsOf(chunk));
      cursor += blob.length;
      return cursor;
    },
    async finish(fh) {
      const { size } = await fh.stat();
      return size;
    },
    segmentPlacement: () => ({}),
  };
}

class TurnCancelled extends Error {}

/** A gate opened once: a chunk's turn to be written. */
function deferred(): { opened: Promise<void>; open(): void; cancel(): void } {
  let open!: () => void;
  let cancel!: (e: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    cancel = reject;
  });
  opened.catch(() => undefined); // a gate nobody waits for may be cancelled
  return { opened, open, cancel: () => cancel(new TurnCancelled('an earlier chunk failed')) };
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}
