// Reads of target memory for one request (one decode, one process list): cached in aligned
// lines and fetched in batches, so a walk asks the agent for everything it needs at each step
// in one round trip and never reads the same bytes twice. A new request starts a new reader,
// so nothing stale outlives it.
//
// Storage is per 4 KiB page, keyed by the page number as a plain number (a 64-bit address
// shifted right by 12 fits in 52 bits), holding per line a view of the batch reply it came in
// (no copies) or the error that line got: lookups in a walk of thousands of tasks stay off
// BigInt arithmetic and allocate little.

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

/** Per line: undefined (not fetched), its bytes, or the error its read got. */
type Page = (Uint8Array | TargetReadError | undefined)[];

export class MemoryReader {
  readonly stats: ReaderStats = { rounds: 0, batches: 0, ranges: 0, bytes: 0 };
  private readonly pages = new Map<number, Page>();
  private readonly lineShift: number;

  /**
   * @param lineSize cache granularity in bytes (a power of two from 8 to 4096, so a line never
   * spans two pages and one unmapped page cannot spoil a neighbour's read).
   * @param maxRangesPerBatch larger batches are split into readBatch calls of this many ranges,
   * issued together (the protocol client splits further to fit its slots).
   */
  constructor(
    readonly memory: TargetMemory,
    readonly lineSize = 64,
    private readonly maxRangesPerBatch = 1 << 16,
    readonly space: AddressSpace = KERNEL,
  ) {
    if (lineSize < 8 || lineSize > PAGE || (lineSize & (lineSize - 1)) !== 0) throw new Error(`line size ${lineSize} is not a power of two in 8..4096`);
    this.lineShift = Math.log2(lineSize);
  }

  private page(pageNo: number): Page {
    let p = this.pages.get(pageNo);
    if (!p) {
      p = new Array<Uint8Array | TargetReadError | undefined>(PAGE / this.lineSize);
      this.pages.set(pageNo, p);
    }
    return p;
  }

  /** Makes sure every byte of these ranges is cached, in one batch of reads. */
  async prefetch(ranges: readonly Range[]): Promise<void> {
    // Missing lines per page, then runs of neighbouring lines as one request each (never across
    // a page boundary: a page that fails must not take its mapped neighbour with it).
    const wanted = new Map<number, Set<number>>();
    for (const r of ranges) {
      if (r.length <= 0) continue;
      let pageNo = Number(r.address >> 12n);
      let offset = Number(r.address & 4095n);
      let left = r.length;
      while (left > 0) {
        const inPage = Math.min(left, PAGE - offset);
        const p = this.pages.get(pageNo);
        const first = offset >> this.lineShift;
        const last = (offset + inPage - 1) >> this.lineShift;
        for (let line = first; line <= last; line++) {
          if (p && p[line] !== undefined) continue;
          let set = wanted.get(pageNo);
          if (!set) wanted.set(pageNo, (set = new Set()));
          set.add(line);
        }
        left -= inPage;
        offset = 0;
        pageNo++;
      }
    }
    if (wanted.size === 0) return;
    const requests: { req: ReadRequest; pageNo: number; firstLine: number }[] = [];
    for (const [pageNo, lines] of wanted) {
      const sorted = [...lines].sort((a, b) => a - b);
      let start = sorted[0];
      let prev = start;
      const flush = (): void => {
        const address = (BigInt(pageNo) << 12n) + BigInt(start << this.lineShift);
        requests.push({ req: { space: this.space, address, length: (prev - start + 1) << this.lineShift }, pageNo, firstLine: start });
      };
      for (const line of sorted.slice(1)) {
        if (line === prev + 1) {
          prev = line;
          continue;
        }
        flush();
        start = prev = line;
      }
      flush();
    }
    this.stats.rounds++;
    const chunks: (typeof requests)[] = [];
    for (let i = 0; i < requests.length; i += this.maxRangesPerBatch) chunks.push(requests.slice(i, i + this.maxRangesPerBatch));
    this.stats.batches += chunks.length;
    this.stats.ranges += requests.length;
    const replies = await Promise.all(chunks.map((chunk) => this.memory.readBatch(chunk.map((c) => c.req))));
    chunks.forEach((chunk, c) => {
      const results = replies[c];
      chunk.forEach(({ req, pageNo, firstLine }, k) => {
        const res = results[k];
        const p = this.page(pageNo);
        const lines = req.length >> this.lineShift;
        if (res instanceof Uint8Array && res.length === req.length) {
          for (let l = 0; l < lines; l++) p[firstLine + l] = res.subarray(l << this.lineShift, (l + 1) << this.lineShift);
          this.stats.bytes += res.length;
        } else {
          const err =
            res instanceof TargetReadError ? res : new TargetReadError(this.space, req.address, req.length, res ? `short read of ${res.length} bytes` : 'no result returned');
          for (let l = 0; l < lines; l++) p[firstLine + l] = err;
        }
      });
    });
  }

  /** Bytes at an address; throws TargetReadError naming the first unreadable address. */
  async read(address: bigint, length: number): Promise<Uint8Array> {
    await this.prefetch([{ address, length }]);
    return this.cached(address, length);
  }

  /**
   * Bytes already fetched by prefetch(); throws TargetReadError when any is unreadable. Reads
   * within one line return a view of the cache (do not modify it).
   */
  cached(address: bigint, length: number): Uint8Array {
    if (length <= 0) return new Uint8Array(0);
    let pageNo = Number(address >> 12n);
    let offset = Number(address & 4095n);
    if (offset + length <= PAGE) return this.fromPage(pageNo, offset, length, address, length);
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const n = Math.min(length - at, PAGE - offset);
      out.set(this.fromPage(pageNo, offset, n, address, length), at);
      at += n;
      offset = 0;
      pageNo++;
    }
    return out;
  }

  private fromPage(pageNo: number, offset: number, n: number, address: bigint, length: number): Uint8Array {
    const p = this.pages.get(pageNo);
    const first = offset >> this.lineShift;
    const last = (offset + n - 1) >> this.lineShift;
    const lineOf = (line: number): Uint8Array => {
      const data = p?.[line];
      if (data instanceof Uint8Array) return data;
      const at = (BigInt(pageNo) << 12n) + BigInt(Math.max(offset, line << this.lineShift));
      if (data === undefined) throw new Error(`internal: 0x${at.toString(16)} read before it was prefetched`);
      throw new TargetReadError(this.space, address, length, `byte 0x${at.toString(16)} unreadable: ${data.reason}`);
    };
    const within = offset & (this.lineSize - 1);
    if (first === last) return lineOf(first).subarray(within, within + n);
    const out = new Uint8Array(n);
    let at = 0;
    for (let line = first; line <= last; line++) {
      const data = lineOf(line);
      const from = line === first ? within : 0;
      const take = Math.min(n - at, this.lineSize - from);
      out.set(data.subarray(from, from + take), at);
      at += take;
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
