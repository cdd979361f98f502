// Reads of target memory for one request (one decode, one process list): cached in aligned
// lines and fetched in batches, so a walk asks the agent for everything it needs at each step
// in one round trip and never reads the same bytes twice. A new request starts a new reader,
// so nothing stale outlives it.
//
// Storage is per 4 KiB page, keyed by the page number as a plain number (a 64-bit address
// shifted right by 12 fits in 52 bits) less the first one the reader saw (so the keys of one
// walk's slab objects stay small integers, which a Map hashes without allocating), holding the
// runs of lines each request brought (a view of the batch reply, no copies) or the error it got:
// lookups in a walk of thousands of tasks stay off BigInt arithmetic, and a fetched range costs
// one small object, not one per line.

import { TargetReadError, type AddressSpace, type ReadRequest, type TargetMemory } from '../../types/target';

export interface ReaderStats {
  /** Dependent steps: prefetches that had to ask the target (each waits for the one before). */
  rounds: number;
  /** readBatch calls made; those of one round are issued together. */
  batches: number;
  ranges: number;
  bytes: number;
}

export interface Range {
  address: bigint;
  length: number;
}

const KERNEL: AddressSpace = { kind: 'kernel' };
const PAGE = 4096;

/** Reads collected for one round (MemoryReader.plan). */
export interface ReadPlan {
  /** The bytes [offset, offset + length) from the start of page `page` (address >> 12); offset may be any size. */
  add(page: number, offset: number, length: number): void;
  fetch(): Promise<void>;
}

/** Lines first..last of a page as one request got them: the reply (its byte 0 is line `first`'s) or the error. */
interface Run {
  first: number;
  last: number;
  data: Uint8Array | TargetReadError;
}

/** The run holding a line: the first one fetched wins (a line bridged again later keeps what the walk saw first). */
function runOf(runs: Run[] | undefined, line: number): Run | undefined {
  if (!runs) return undefined;
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i];
    if (line >= r.first && line <= r.last) return r;
  }
  return undefined;
}

export class MemoryReader {
  readonly stats: ReaderStats = { rounds: 0, batches: 0, ranges: 0, bytes: 0 };
  /** Per page, the runs of lines fetched in it (a few: a walk asks for neighbouring lines together). */
  private readonly pages = new Map<number, Run[]>();
  private readonly lineShift: number;
  private readonly linesPerPage: number;
  private keyBase: number | undefined;

  /**
   * @param lineSize cache granularity in bytes (a power of two from 8 to 4096, so a line never
   * spans two pages and one unmapped page cannot spoil a neighbour's read).
   * @param maxRangesPerBatch larger batches are split into readBatch calls of this many ranges,
   * issued together (the protocol client splits further to fit its slots).
   * @param gapLines missing lines of one page this close together are asked for as one range,
   * the lines between included: a range costs the agent a translation and the wire an entry
   * each way, about what a line or two of bytes costs.
   */
  constructor(
    readonly memory: TargetMemory,
    readonly lineSize = 64,
    private readonly maxRangesPerBatch = 1 << 16,
    readonly space: AddressSpace = KERNEL,
    private readonly gapLines = 2,
  ) {
    if (lineSize < 8 || lineSize > PAGE || (lineSize & (lineSize - 1)) !== 0) throw new Error(`line size ${lineSize} is not a power of two in 8..4096`);
    this.lineShift = Math.log2(lineSize);
    this.linesPerPage = PAGE >> this.lineShift;
  }

  private key(pageNo: number): number {
    this.keyBase ??= pageNo;
    return pageNo - this.keyBase;
  }

  /** Makes sure every byte of these ranges is cached, in one batch of reads. */
  async prefetch(ranges: readonly Range[]): Promise<void> {
    const plan = this.plan();
    for (const r of ranges) plan.add(Number(r.address >> 12n), Number(r.address & 4095n), r.length);
    await plan.fetch();
  }

  /** A batch of reads to collect with add(page, offset, length) (see cachedAt) and issue with fetch(): prefetch() without BigInt arithmetic per range. */
  plan(): ReadPlan {
    // Missing lines as a bitmap per page (the bitmaps in one pool: no allocation per page), then
    // runs of them (gaps of up to gapLines bridged) as one request each, never across a page
    // boundary: a page that fails must not take its mapped neighbour with it.
    const words = Math.max(1, this.linesPerPage >> 5);
    const slots = new Map<number, number>();
    let bits = new Uint32Array(words * 256);
    const slotOf = (key: number): number => {
      let slot = slots.get(key);
      if (slot === undefined) {
        slot = slots.size * words;
        slots.set(key, slot);
        if (slot + words > bits.length) {
          const grown = new Uint32Array(bits.length * 2);
          grown.set(bits);
          bits = grown;
        }
      }
      return slot;
    };
    const add = (pageNo: number, offset: number, length: number): void => {
      if (length <= 0) return;
      if (offset < 0 || offset >= PAGE) {
        pageNo += Math.floor(offset / PAGE);
        offset -= Math.floor(offset / PAGE) * PAGE;
      }
      let left = length;
      while (left > 0) {
        const inPage = Math.min(left, PAGE - offset);
        const key = this.key(pageNo);
        const runs = this.pages.get(key);
        const last = (offset + inPage - 1) >> this.lineShift;
        let slot = -1;
        for (let line = offset >> this.lineShift; line <= last; line++) {
          const run = runOf(runs, line);
          if (run) {
            line = run.last;
            continue;
          }
          if (slot < 0) slot = slotOf(key);
          bits[slot + (line >> 5)] |= 1 << (line & 31);
        }
        left -= inPage;
        offset = 0;
        pageNo++;
      }
    };
    return { add, fetch: () => this.fetch(slots, bits) };
  }

  private async fetch(slots: Map<number, number>, bits: Uint32Array): Promise<void> {
    if (slots.size === 0) return;
    const words = Math.max(1, this.linesPerPage >> 5);
    const requests: ReadRequest[] = [];
    const keys: number[] = [];
    const firstLines: number[] = [];
    for (const [key, slot] of slots) {
      const base = BigInt(key + this.keyBase!) << 12n;
      let start = -1;
      let end = -1;
      for (let w = 0; w < words; w++) {
        let word = bits[slot + w];
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          word &= word - 1;
          const line = (w << 5) + bit;
          if (start >= 0 && line - end - 1 > this.gapLines) {
            requests.push({ space: this.space, address: base + BigInt(start << this.lineShift), length: (end - start + 1) << this.lineShift });
            keys.push(key);
            firstLines.push(start);
            start = -1;
          }
          if (start < 0) start = line;
          end = line;
        }
      }
      if (start < 0) continue;
      requests.push({ space: this.space, address: base + BigInt(start << this.lineShift), length: (end - start + 1) << this.lineShift });
      keys.push(key);
      firstLines.push(start);
    }
    if (requests.length === 0) return;
    this.stats.rounds++;
    const chunks: ReadRequest[][] = [];
    for (let i = 0; i < requests.length; i += this.maxRangesPerBatch) chunks.push(requests.slice(i, i + this.maxRangesPerBatch));
    this.stats.batches += chunks.length;
    this.stats.ranges += requests.length;
    const replies = (await Promise.all(chunks.map((chunk) => this.memory.readBatch(chunk)))).flat();
    for (let k = 0; k < requests.length; k++) {
      const req = requests[k];
      const res = replies[k];
      let data: Uint8Array | TargetReadError;
      if (res instanceof Uint8Array && res.length === req.length) {
        data = res;
        this.stats.bytes += res.length;
      } else {
        data = res instanceof TargetReadError ? res : new TargetReadError(this.space, req.address, req.length, res ? `short read of ${res.length} bytes` : 'no result returned');
      }
      const run: Run = { first: firstLines[k], last: firstLines[k] + (req.length >> this.lineShift) - 1, data };
      const runs = this.pages.get(keys[k]);
      if (runs) runs.push(run);
      else this.pages.set(keys[k], [run]);
    }
  }

  /** Bytes at an address; throws TargetReadError naming the first unreadable address. */
  async read(address: bigint, length: number): Promise<Uint8Array> {
    await this.prefetch([{ address, length }]);
    return this.cached(address, length);
  }

  /**
   * Bytes already fetched by prefetch(); throws TargetReadError when any is unreadable. Reads
   * within one page fetched in one piece return a view of the cache (do not modify it).
   */
  cached(address: bigint, length: number): Uint8Array {
    return this.cachedAt(Number(address >> 12n), Number(address & 4095n), length);
  }

  /**
   * cached() at page `pageNo` (address >> 12) plus `offset` bytes (any size): a walk that reads
   * many fields of one object splits its address once and stays off BigInt arithmetic.
   */
  cachedAt(pageNo: number, offset: number, length: number): Uint8Array {
    if (length <= 0) return new Uint8Array(0);
    if (offset >= PAGE) {
      pageNo += Math.floor(offset / PAGE);
      offset %= PAGE;
    }
    if (offset + length <= PAGE) return this.fromPage(pageNo, offset, length, pageNo, offset, length);
    const out = new Uint8Array(length);
    let at = 0;
    let page = pageNo;
    let from = offset;
    while (at < length) {
      const n = Math.min(length - at, PAGE - from);
      out.set(this.fromPage(page, from, n, pageNo, offset, length), at);
      at += n;
      from = 0;
      page++;
    }
    return out;
  }

  /**
   * An unsigned little-endian integer of 1, 2 or 4 bytes at (page, offset) as cachedAt() finds
   * it, read straight from the cached reply (no view allocated); same errors as cachedAt().
   */
  uintAt(pageNo: number, offset: number, size: 1 | 2 | 4): number {
    if (offset >= PAGE && offset < 2 ** 31) {
      pageNo += offset >> 12;
      offset &= 4095;
    }
    if (offset >= 0 && offset + size <= PAGE) {
      const run = runOf(this.pages.get(this.key(pageNo)), offset >> this.lineShift);
      if (run && run.data instanceof Uint8Array && (offset + size - 1) >> this.lineShift <= run.last) {
        const b = run.data;
        const i = offset - (run.first << this.lineShift);
        return size === 4 ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0 : size === 2 ? b[i] | (b[i + 1] << 8) : b[i];
      }
    }
    const b = this.cachedAt(pageNo, offset, size);
    return size === 4 ? (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0 : size === 2 ? b[0] | (b[1] << 8) : b[0];
  }

  /** Bytes of one page; the read asked for (start page, offset, length) is named in errors. */
  private fromPage(pageNo: number, offset: number, n: number, askedPage: number, askedOffset: number, length: number): Uint8Array {
    const runs = this.pages.get(this.key(pageNo));
    const first = offset >> this.lineShift;
    const last = (offset + n - 1) >> this.lineShift;
    const run = runOf(runs, first);
    if (run && run.data instanceof Uint8Array && last <= run.last) {
      // One reply holding every line asked for: a view of it.
      const start = offset - (run.first << this.lineShift);
      return run.data.subarray(start, start + n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    for (let line = first; line <= last; line++) {
      const r = runOf(runs, line);
      if (!r || !(r.data instanceof Uint8Array)) {
        const byte = (BigInt(pageNo) << 12n) + BigInt(Math.max(offset, line << this.lineShift));
        if (!r) throw new Error(`internal: 0x${byte.toString(16)} read before it was prefetched`);
        throw new TargetReadError(this.space, (BigInt(askedPage) << 12n) + BigInt(askedOffset), length, `byte 0x${byte.toString(16)} unreadable: ${(r.data as TargetReadError).reason}`);
      }
      const from = Math.max(offset, line << this.lineShift);
      const to = Math.min(offset + n, (line + 1) << this.lineShift);
      const inRun = from - (r.first << this.lineShift);
      out.set(r.data.subarray(inRun, inRun + (to - from)), at);
      at += to - from;
    }
    return out;
  }

  has(address: bigint, length: number): boolean {
    try {
      this.cached(address, length);
      return true;
    } catch {
      return false;
    }
  }

  async u64(address: bigint): Promise<bigint> {
    const b = await this.read(address, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
}
