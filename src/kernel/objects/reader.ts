// Reads of target memory for one request (one decode, one process list): cached in aligned
// lines and fetched in batches, so a walk asks the agent for everything it needs at each step
// in one round trip and never reads the same bytes twice. A new request starts a new reader,
// so nothing stale outlives it.

import { TargetReadError, type AddressSpace, type ReadRequest, type TargetMemory } from '../target';

export interface ReaderStats {
  /** readBatch calls made (round trips, at most, to the agent). */
  batches: number;
  ranges: number;
  bytes: number;
}

export interface Range {
  address: bigint;
  length: number;
}

const KERNEL: AddressSpace = { kind: 'kernel' };

export class MemoryReader {
  readonly stats: ReaderStats = { batches: 0, ranges: 0, bytes: 0 };
  private readonly lines = new Map<bigint, Uint8Array | TargetReadError>();
  private readonly lineSize: bigint;

  /**
   * @param lineSize cache granularity in bytes (a power of two ≤ 4096, so a line never spans
   * two pages and one unmapped page cannot spoil a neighbour's read).
   * @param maxRangesPerBatch split larger batches (a bound on one request's size).
   */
  constructor(
    readonly memory: TargetMemory,
    lineSize = 64,
    private readonly maxRangesPerBatch = 4096,
    readonly space: AddressSpace = KERNEL,
  ) {
    if (lineSize < 8 || lineSize > 4096 || (lineSize & (lineSize - 1)) !== 0) throw new Error(`line size ${lineSize} is not a power of two in 8..4096`);
    this.lineSize = BigInt(lineSize);
  }

  /** Makes sure every byte of these ranges is cached, in one batch of reads. */
  async prefetch(ranges: readonly Range[]): Promise<void> {
    const missing: bigint[] = [];
    const queued = new Set<bigint>();
    for (const r of ranges) {
      if (r.length <= 0) continue;
      const first = r.address & ~(this.lineSize - 1n);
      const end = r.address + BigInt(r.length);
      for (let line = first; line < end; line += this.lineSize) {
        if (!this.lines.has(line) && !queued.has(line)) {
          queued.add(line);
          missing.push(line);
        }
      }
    }
    if (missing.length === 0) return;
    missing.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Coalesce neighbouring lines into one request, never across a page boundary: a page that
    // fails must not take its mapped neighbour with it.
    const requests: ReadRequest[] = [];
    for (const line of missing) {
      const last = requests[requests.length - 1];
      const contiguous = last && last.address + BigInt(last.length) === line && (line & 4095n) !== 0n;
      if (contiguous) last.length += Number(this.lineSize);
      else requests.push({ space: this.space, address: line, length: Number(this.lineSize) });
    }
    for (let i = 0; i < requests.length; i += this.maxRangesPerBatch) {
      const chunk = requests.slice(i, i + this.maxRangesPerBatch);
      this.stats.batches++;
      this.stats.ranges += chunk.length;
      const results = await this.memory.readBatch(chunk);
      chunk.forEach((req, k) => {
        const res = results[k];
        for (let off = 0; off < req.length; off += Number(this.lineSize)) {
          const line = req.address + BigInt(off);
          if (res instanceof Uint8Array) {
            this.lines.set(line, res.subarray(off, off + Number(this.lineSize)));
          } else {
            this.lines.set(line, res ?? new TargetReadError(this.space, req.address, req.length, 'no result returned'));
          }
        }
        if (res instanceof Uint8Array) this.stats.bytes += res.length;
      });
    }
  }

  /** Bytes at an address; throws TargetReadError naming the first unreadable address. */
  async read(address: bigint, length: number): Promise<Uint8Array> {
    await this.prefetch([{ address, length }]);
    return this.cached(address, length);
  }

  /** Bytes already fetched by prefetch(); throws TargetReadError when any is unreadable. */
  cached(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const addr = address + BigInt(at);
      const line = addr & ~(this.lineSize - 1n);
      const data = this.lines.get(line);
      if (data === undefined) throw new Error(`internal: 0x${addr.toString(16)} read before it was prefetched`);
      if (data instanceof TargetReadError) {
        throw new TargetReadError(this.space, address, length, `byte 0x${addr.toString(16)} unreadable: ${data.reason}`);
      }
      const from = Number(addr - line);
      const n = Math.min(length - at, data.length - from);
      if (n <= 0) throw new TargetReadError(this.space, address, length, `short read at 0x${addr.toString(16)}`);
      out.set(data.subarray(from, from + n), at);
      at += n;
    }
    return out;
  }

  has(address: bigint, length: number): boolean {
    const first = address & ~(this.lineSize - 1n);
    for (let line = first; line < address + BigInt(length); line += this.lineSize) {
      const data = this.lines.get(line);
      if (data === undefined || data instanceof TargetReadError) return false;
    }
    return true;
  }

  async u64(address: bigint): Promise<bigint> {
    const b = await this.read(address, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  cachedU64(address: bigint): bigint {
    const b = this.cached(address, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
}
