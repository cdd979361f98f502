// Reader of the kernel's lockless printk ring buffer (Linux 5.10+), from target memory only.
//
// The ring (kernel/printk/printk_ringbuffer.{c,h}) is three arrays reached from `prb`:
//   descs[2^count_bits]  state_var (2 state bits over a 62-bit id) + text_blk_lpos {begin,next}
//   infos[2^count_bits]  seq, ts_nsec, text_len, facility, flags, level, caller_id, dev_info
//   data[2^size_bits]    blocks: an unsigned long id, then the text; a block that would cross the
//                        end of the array is stored at its start ("wrapping" block).
// A record's descriptor and info sit at index seq & (count-1) (the ring hands out ids and
// sequence numbers in step), so the records after a given seq are found without a scan.
// Like the kernel's own readers, a record counts only if its descriptor still carries the id we
// expect after its data was copied; on a live target we re-read the descriptors once at the end.

import { Btf, BtfError } from '../btf/btf';
import { TargetReadError, type ReadRequest, type TargetDescription, type TargetMemory } from '../../types/target';
import { resolvePrintkLayout, type FieldLocation, type PrintkLayout } from './layout';
import { parseVmcoreinfo } from '../vmcoreinfo';

export type LogCaller = { kind: 'thread'; pid: number } | { kind: 'cpu'; cpu: number };

export interface KernelLogRecord {
  /** The kernel's sequence number (what /dev/kmsg prints second). */
  seq: number;
  /** local_clock() at printk time, in nanoseconds since boot. */
  timestampNs: bigint;
  /** Syslog level 0 (emerg) .. 7 (debug); undefined when the target gives no layout for it (no BTF). */
  level: number | undefined;
  /** Syslog facility: 0 for the kernel, 1 (user) for writes to /dev/kmsg. */
  facility: number | undefined;
  /** LOG_CONT: a continuation of the previous record (pr_cont). */
  continuation: boolean;
  /** LOG_NEWLINE: the message ended with a newline. */
  newline: boolean;
  /** Who printed it: a task (in_task()) or a CPU in interrupt context. */
  caller: LogCaller;
  /** Message text without prefix or trailing newline; may hold embedded newlines. */
  text: string;
  /** dev_printk() metadata ('' when none). */
  subsystem: string;
  device: string;
  /**
   * False for a record still open for continuation (committed, not finalized): its text may
   * grow. Such a record is returned again by the next incremental read.
   */
  finalized: boolean;
}

export interface KernelLog {
  records: KernelLogRecord[];
  /** Oldest sequence number still in the ring. */
  firstSeq: number;
  /** Newest sequence number the ring has handed out (-1 when empty). */
  headSeq: number;
  /**
   * Pass as `sinceSeq` to the next call to get only what is new: the last seq up to which
   * every record is final (finalized or lost for good).
   */
  resumeAfterSeq: number;
  /** Records in the asked-for range whose text is gone: the ring wrapped over them (or a writer reused them while we read). */
  overwritten: number;
  /** What was skipped or could not be decoded, and why: lost text, a corrupt descriptor, unusable BTF. */
  notes: string[];
  /** Where the layout came from ('VMCOREINFO', 'BTF', 'symbols'). */
  layoutSources: string[];
}

export interface ReadKernelLogOptions {
  /** Return only records with a sequence number greater than this. Default: all. */
  sinceSeq?: number;
  /** An already parsed BTF of the target (else parsed from the description when needed). */
  btf?: Btf;
  /**
   * Re-read the descriptors after copying the text, dropping records overwritten meanwhile.
   * Default true; a paused or dead target does not need it.
   */
  verify?: boolean;
}

export class KernelLogError extends Error {
  constructor(message: string) {
    super(`kernel log: ${message}`);
    this.name = 'KernelLogError';
  }
}

// Descriptor state in the top two bits of state_var (DESC_FLAGS_SHIFT = BITS_PER_LONG - 2).
const DESC_FLAGS_SHIFT = 62n;
const DESC_ID_MASK = (1n << DESC_FLAGS_SHIFT) - 1n;
const enum DescState {
  Reserved = 0,
  Committed = 1,
  Finalized = 2,
  Reusable = 3,
}
// Data-less block positions: bit 0 set means no data block; bit 1 says why.
const FAILED_LPOS = 0x1n;
const EMPTY_LINE_LPOS = 0x3n;
// printk_info.flags bits (enum printk_info_flags) and caller_id's CPU marker (printk_caller_id()).
const LOG_NEWLINE = 2;
const LOG_CONT = 8;
const CALLER_CPU_FLAG = 0x80000000;

/** More than this many descriptors (2^24, ~2.6 GB of metadata) is a corrupt count_bits. */
const MAX_COUNT_BITS = 24;
/** Text rings beyond 2^31 bytes exceed the kernel's own LOG_BUF_LEN_MAX. */
const MAX_SIZE_BITS = 31;
/** Reads of the data ring closer than this are merged into one. */
const MERGE_GAP = 4096;
/** Attempts when a live writer moves the head or tail under us. */
const MAX_ATTEMPTS = 3;

const textDecoder = new TextDecoder('utf-8', { fatal: false });

interface RingState {
  countBits: number;
  descsAddr: bigint;
  infosAddr: bigint;
  headId: bigint;
  tailId: bigint;
  sizeBits: number;
  dataAddr: bigint;
}

/** Reads the kernel log through `memory`; the layout comes from `description` (see layout.ts). */
export async function readKernelLog(
  memory: TargetMemory,
  description: TargetDescription,
  options: ReadKernelLogOptions = {},
): Promise<KernelLog> {
  return new KernelLogReader(memory, description, options.btf).read(options);
}

/**
 * A reader bound to one target: resolves the layout once, then each `read` costs a handful of
 * batched round trips (ring header; head and tail; the wanted descriptors and infos; their
 * text; the re-check), whatever the number of records.
 */
export class KernelLogReader {
  readonly layout: PrintkLayout;
  /** What the layout could not give (reported with every read's notes). */
  private readonly layoutNotes: string[] = [];
  /** Where `prb` pointed at the last read. */
  private lastRingAddress: bigint | undefined;

  constructor(
    private readonly memory: TargetMemory,
    description: TargetDescription,
    btf?: Btf,
  ) {
    const vmcoreinfo = description.vmcoreinfo ? parseVmcoreinfo(description.vmcoreinfo) : undefined;
    let typeInfo = btf;
    if (!typeInfo && description.btf.byteLength > 0) {
      try {
        typeInfo = new Btf(description.btf, { source: `BTF of ${description.release}` });
      } catch (err) {
        // A damaged BTF costs the levels, not the log: VMCOREINFO still lays out the rest.
        if (!(err instanceof BtfError)) throw err;
        this.layoutNotes.push(`BTF unusable (${err.message}): levels and facilities unknown`);
      }
    }
    this.layout = resolvePrintkLayout(vmcoreinfo, typeInfo, description.symbols);
    if (typeInfo && !this.layout.info.level) this.layoutNotes.push('the BTF has no printk_info.level: levels unknown');
  }

  async read(options: Omit<ReadKernelLogOptions, 'btf'> = {}): Promise<KernelLog> {
    const sinceSeq = options.sinceSeq ?? -1;
    if (!Number.isSafeInteger(sinceSeq) || sinceSeq < -1) throw new KernelLogError(`sinceSeq ${sinceSeq} is not a sequence number`);
    let lastError: KernelLogError | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const ring = await this.readRingState();
      const ends = await this.readEnds(ring);
      if (ends === 'moved') {
        lastError = new KernelLogError(`the head descriptor (id 0x${ring.headId.toString(16)}) no longer carries the head id: a writer is racing us or the ring is corrupt`);
        continue;
      }
      if (ends === 'empty') {
        return { records: [], firstSeq: 0, headSeq: -1, resumeAfterSeq: sinceSeq, overwritten: 0, notes: [...this.layoutNotes], layoutSources: this.layout.sources };
      }
      return this.readRange(ring, ends, sinceSeq, options.verify ?? true);
    }
    throw lastError!;
  }

  private async readRingState(): Promise<RingState> {
    const l = this.layout;
    const prbWhat = "'prb' (pointer to the printk ring buffer)";
    const rbWhat = 'struct printk_ringbuffer';
    // `prb` changes at most once, early in boot (log_buf_len= or many CPUs): after the first
    // read, the ring struct is read at the address seen last, in the same round trip as `prb`.
    let rbAddr: bigint;
    let rb: Uint8Array | undefined;
    if (this.lastRingAddress === undefined) {
      rbAddr = u64(await this.readExact(l.prbAddress, 8, prbWhat), 0);
    } else {
      const [prbPtr, guessed] = await this.readBatchExact([
        { address: l.prbAddress, length: 8, what: prbWhat },
        { address: this.lastRingAddress, length: l.ringbuffer.size, what: rbWhat },
      ]);
      rbAddr = u64(prbPtr, 0);
      if (rbAddr === this.lastRingAddress) rb = guessed;
    }
    if (rbAddr === 0n) throw new KernelLogError(`'prb' at 0x${l.prbAddress.toString(16)} is NULL`);
    rb ??= await this.readExact(rbAddr, l.ringbuffer.size, rbWhat);
    this.lastRingAddress = rbAddr;
    const dr = l.ringbuffer.descRing;
    const tr = l.ringbuffer.textDataRing;
    const ring: RingState = {
      countBits: u32(rb, dr + l.descRing.countBits),
      descsAddr: u64(rb, dr + l.descRing.descs),
      infosAddr: u64(rb, dr + l.descRing.infos),
      headId: u64(rb, dr + l.descRing.headId) & DESC_ID_MASK,
      tailId: u64(rb, dr + l.descRing.tailId) & DESC_ID_MASK,
      sizeBits: u32(rb, tr + l.dataRing.sizeBits),
      dataAddr: u64(rb, tr + l.dataRing.data),
    };
    const where = `printk_ringbuffer at 0x${rbAddr.toString(16)}`;
    if (ring.countBits < 1 || ring.countBits > MAX_COUNT_BITS) {
      throw new KernelLogError(`${where}: desc_ring.count_bits ${ring.countBits} outside 1..${MAX_COUNT_BITS} (corrupt?)`);
    }
    if (ring.sizeBits < 3 || ring.sizeBits > MAX_SIZE_BITS) {
      throw new KernelLogError(`${where}: text_data_ring.size_bits ${ring.sizeBits} outside 3..${MAX_SIZE_BITS} (corrupt?)`);
    }
    for (const [name, addr] of [['descs', ring.descsAddr], ['infos', ring.infosAddr], ['text data', ring.dataAddr]] as const) {
      if (addr === 0n) throw new KernelLogError(`${where}: ${name} pointer is NULL`);
    }
    return ring;
  }

  /** Sequence numbers at the head and tail descriptors. */
  private async readEnds(ring: RingState): Promise<{ headSeq: bigint; tailSeq: bigint | undefined } | 'moved' | 'empty'> {
    const l = this.layout;
    const mask = (1n << BigInt(ring.countBits)) - 1n;
    const headIndex = ring.headId & mask;
    const tailIndex = ring.tailId & mask;
    const [headDesc, headInfo, tailDesc, tailInfo] = await this.readBatchExact([
      { address: ring.descsAddr + headIndex * BigInt(l.desc.size), length: l.desc.size, what: `head descriptor [${headIndex}]` },
      { address: ring.infosAddr + headIndex * BigInt(l.info.size), length: l.info.size, what: `head printk_info [${headIndex}]` },
      { address: ring.descsAddr + tailIndex * BigInt(l.desc.size), length: l.desc.size, what: `tail descriptor [${tailIndex}]` },
      { address: ring.infosAddr + tailIndex * BigInt(l.info.size), length: l.info.size, what: `tail printk_info [${tailIndex}]` },
    ]);
    const headSv = u64(headDesc, l.desc.stateVar);
    if ((headSv & DESC_ID_MASK) !== ring.headId) return 'moved';
    // Only the bootstrap descriptor of a ring nobody has written to is reusable at the head.
    if (Number(headSv >> DESC_FLAGS_SHIFT) === DescState.Reusable) return 'empty';
    let headSeq = u64(headInfo, l.info.seq);
    if ((headSeq & mask) !== headIndex) {
      if (Number(headSv >> DESC_FLAGS_SHIFT) !== DescState.Reserved) {
        const infoAddr = ring.infosAddr + headIndex * BigInt(l.info.size);
        throw new KernelLogError(`head descriptor [${headIndex}]: its printk_info at 0x${infoAddr.toString(16)} holds seq ${headSeq}, which belongs in slot ${headSeq & mask} (corrupt ring)`);
      }
      // Reserved before its writer set the seq (a writer mid-printk, or one that died there):
      // the seq follows the previous record's.
      const prevId = BigInt.asUintN(62, ring.headId - 1n);
      const prevIndex = prevId & mask;
      const [prevDesc, prevInfo] = await this.readBatchExact([
        { address: ring.descsAddr + prevIndex * BigInt(l.desc.size), length: l.desc.size, what: `descriptor [${prevIndex}] before the head` },
        { address: ring.infosAddr + prevIndex * BigInt(l.info.size), length: l.info.size, what: `printk_info [${prevIndex}] before the head` },
      ]);
      const prevSeq = u64(prevInfo, l.info.seq);
      if ((u64(prevDesc, l.desc.stateVar) & DESC_ID_MASK) !== prevId || (prevSeq & mask) !== prevIndex) return 'moved';
      headSeq = prevSeq + 1n;
    }
    // The tail may have moved on; then the range starts from the head's seq minus the ring size.
    const tailSeq = (u64(tailDesc, l.desc.stateVar) & DESC_ID_MASK) === ring.tailId ? u64(tailInfo, l.info.seq) : undefined;
    return { headSeq, tailSeq };
  }

  private async readRange(
    ring: RingState,
    ends: { headSeq: bigint; tailSeq: bigint | undefined },
    sinceSeq: number,
    verify: boolean,
  ): Promise<KernelLog> {
    const l = this.layout;
    const count = 1n << BigInt(ring.countBits);
    const mask = count - 1n;
    const notes: string[] = [...this.layoutNotes];
    const headSeq = ends.headSeq;
    if (headSeq >= BigInt(Number.MAX_SAFE_INTEGER)) {
      const infoAddr = ring.infosAddr + (ring.headId & mask) * BigInt(l.info.size);
      throw new KernelLogError(`head sequence number ${headSeq} (printk_info at 0x${infoAddr.toString(16)}) is implausible (corrupt ring?)`);
    }
    const oldestPossible = headSeq + 1n >= count ? headSeq + 1n - count : 0n;
    let firstSeq = ends.tailSeq !== undefined && ends.tailSeq >= oldestPossible && ends.tailSeq <= headSeq ? ends.tailSeq : oldestPossible;
    const result: KernelLog = {
      records: [],
      firstSeq: Number(firstSeq),
      headSeq: Number(headSeq),
      resumeAfterSeq: Math.max(sinceSeq, -1),
      overwritten: 0,
      notes,
      layoutSources: l.sources,
    };
    const wantFrom = BigInt(sinceSeq + 1);
    // Records before the first one still readable are counted as overwritten, from sinceSeq on.
    const fromTail = wantFrom <= firstSeq;
    if (!fromTail) firstSeq = wantFrom;
    else if (sinceSeq >= 0) result.overwritten = Number(firstSeq - wantFrom);
    if (firstSeq > headSeq) return result;

    const n = Number(headSeq - firstSeq + 1n);
    const firstIndex = Number(firstSeq & mask);
    const segments = indexSegments(firstIndex, n, Number(count));
    const descReads = segments.map((s) => ({
      address: ring.descsAddr + BigInt(s.index) * BigInt(l.desc.size),
      length: s.count * l.desc.size,
      what: `descriptors [${s.index}..${s.index + s.count - 1}]`,
    }));
    const infoReads = segments.map((s) => ({
      address: ring.infosAddr + BigInt(s.index) * BigInt(l.info.size),
      length: s.count * l.info.size,
      what: `printk_info [${s.index}..${s.index + s.count - 1}]`,
    }));
    const chunks = await this.readBatchExact([...descReads, ...infoReads]);
    const descs = concat(chunks.slice(0, segments.length));
    const infos = concat(chunks.slice(segments.length));

    // Pass 1: descriptors and infos → candidate records and the data blocks they need.
    // Ids and sequence numbers advance in step, so each seq's descriptor id is known from the head's.
    const dataSize = 1n << BigInt(ring.sizeBits);
    const candidates: Candidate[] = [];
    // Once a record may still change (reserved, or open for continuation), later ones are not final.
    let open = false;
    let readable = 0;
    const settled = (seq: bigint): void => {
      if (!open) result.resumeAfterSeq = Number(seq);
    };
    for (let i = 0; i < n; i++) {
      const seq = firstSeq + BigInt(i);
      const expectedId = BigInt.asUintN(62, ring.headId - (headSeq - seq));
      const sv = u64(descs, i * l.desc.size + l.desc.stateVar);
      const id = sv & DESC_ID_MASK;
      const state = Number(sv >> DESC_FLAGS_SHIFT) as DescState;
      const infoSeq = u64(infos, i * l.info.size + l.info.seq);
      if (id === expectedId && state === DescState.Reserved) {
        // Being written (its seq may not even be set yet). At the head this is normal.
        if (seq !== headSeq) notes.push(`record ${seq}: still reserved by its writer, never committed; skipped`);
        open = true;
        continue;
      }
      if (id !== expectedId || infoSeq !== seq) {
        if (infoSeq > seq && infoSeq <= headSeq + count) {
          // Reused by a newer record since we read the head (live target wrapping).
          result.overwritten++;
        } else {
          notes.push(`record ${seq}: descriptor [${Number(seq & mask)}] holds id 0x${id.toString(16)} (want 0x${expectedId.toString(16)}) and seq ${infoSeq}; skipped as corrupt`);
        }
        settled(seq);
        continue;
      }
      if (state === DescState.Reusable) {
        // The text ring's tail passed it: its text is being or has been overwritten.
        if (readable === 0 && fromTail) result.firstSeq = Number(seq) + 1;
        result.overwritten++;
        settled(seq);
        continue;
      }
      const begin = u64(descs, i * l.desc.size + l.desc.textBlkLpos + l.blkLpos.begin);
      const next = u64(descs, i * l.desc.size + l.desc.textBlkLpos + l.blkLpos.next);
      const block = locateBlock(begin, next, dataSize, ring.sizeBits);
      if (typeof block === 'string') {
        notes.push(`record ${seq}: ${block}; skipped`);
        settled(seq);
        continue;
      }
      readable++;
      const finalized = state === DescState.Finalized;
      if (finalized) settled(seq);
      else open = true;
      candidates.push({ seq, id, infoOffset: i * l.info.size, descOffset: i * l.desc.size, block, finalized });
    }

    // Pass 2: the text, in as few reads as the blocks' spread allows.
    const blocks = candidates.flatMap((c) => (c.block === 'empty' ? [] : [c.block]));
    const text = await this.readDataRing(ring, blocks);
    const recheck = verify && candidates.length > 0 ? concat(await this.readBatchExact(descReads)) : undefined;

    for (const c of candidates) {
      if (recheck) {
        // As the kernel's readers do after copying: the descriptor must still be this record.
        const sv = u64(recheck, c.descOffset + l.desc.stateVar);
        if ((sv & DESC_ID_MASK) !== c.id || Number(sv >> DESC_FLAGS_SHIFT) === DescState.Reusable) {
          result.overwritten++;
          continue;
        }
      }
      const record = this.decodeRecord(c, infos, text);
      if (typeof record === 'string') notes.push(`record ${c.seq}: ${record}; skipped`);
      else result.records.push(record);
    }
    return result;
  }

  private decodeRecord(c: Candidate, infos: Uint8Array, text: DataRingView): KernelLogRecord | string {
    const l = this.layout;
    const o = c.infoOffset;
    const textLen = u16(infos, o + l.info.textLen);
    let bytes: Uint8Array = new Uint8Array(0);
    if (c.block !== 'empty') {
      const blockId = text.u64(c.block.offset);
      if (blockId !== c.id) return `data block at ring offset ${c.block.offset} carries id 0x${blockId.toString(16)}, descriptor says 0x${c.id.toString(16)}`;
      const available = c.block.length - 8;
      if (textLen > available) return `text_len ${textLen} exceeds its ${available}-byte data block`;
      bytes = text.bytes(c.block.offset + 8, textLen);
    } else if (textLen !== 0) {
      // An empty-line record has no block; a non-zero length would be garbage.
      return `text_len ${textLen} on a record without a data block`;
    }
    const callerId = u32(infos, o + l.info.callerId);
    const flags = readField(infos, o, l.info.flags);
    const dev = o + l.info.devInfo;
    return {
      seq: Number(c.seq),
      timestampNs: u64(infos, o + l.info.tsNsec),
      level: readField(infos, o, l.info.level),
      facility: readField(infos, o, l.info.facility),
      continuation: flags !== undefined && (flags & LOG_CONT) !== 0,
      newline: flags !== undefined && (flags & LOG_NEWLINE) !== 0,
      caller: callerId & CALLER_CPU_FLAG ? { kind: 'cpu', cpu: callerId & ~CALLER_CPU_FLAG } : { kind: 'thread', pid: callerId },
      text: textDecoder.decode(bytes),
      subsystem: cString(infos, dev + l.devInfo.subsystem, l.devInfo.subsystemLength),
      device: cString(infos, dev + l.devInfo.device, l.devInfo.deviceLength),
      finalized: c.finalized,
    };
  }

  /** Reads the parts of the text ring that hold `blocks`, merging nearby ranges. */
  private async readDataRing(ring: RingState, blocks: { offset: number; length: number }[]): Promise<DataRingView> {
    const size = 2 ** ring.sizeBits;
    const ranges = mergeRanges(blocks, MERGE_GAP);
    const covered = ranges.reduce((sum, r) => sum + r.length, 0);
    // Most of the ring wanted anyway: one read of all of it.
    const reads = covered > size / 2 ? [{ offset: 0, length: size }] : ranges;
    const chunks = await this.readBatchExact(
      reads.map((r) => ({ address: ring.dataAddr + BigInt(r.offset), length: r.length, what: `text data ring [${r.offset}..${r.offset + r.length - 1}]` })),
    );
    return new DataRingView(reads.map((r, i) => ({ offset: r.offset, data: chunks[i] })));
  }

  private async readExact(address: bigint, length: number, what: string): Promise<Uint8Array> {
    return (await this.readBatchExact([{ address, length, what }]))[0];
  }

  private async readBatchExact(reads: (Omit<ReadRequest, 'space'> & { what: string })[]): Promise<Uint8Array[]> {
    const answers = await this.memory.readBatch(reads.map((r) => ({ space: { kind: 'kernel' }, address: r.address, length: r.length })));
    return answers.map((a, i) => {
      const r = reads[i];
      if (a instanceof TargetReadError) throw new KernelLogError(`reading ${r.what} (${r.length} bytes at 0x${r.address.toString(16)}) failed: ${a.reason}`);
      if (a.byteLength !== r.length) throw new KernelLogError(`reading ${r.what} at 0x${r.address.toString(16)}: got ${a.byteLength} of ${r.length} bytes`);
      return a;
    });
  }
}

interface Candidate {
  seq: bigint;
  id: bigint;
  infoOffset: number;
  descOffset: number;
  block: { offset: number; length: number } | 'empty';
  finalized: boolean;
}

/**
 * Where a block described by [begin, next) lies in the data array, following get_data() in
 * printk_ringbuffer.c: same wrap → at begin; next one wrap ahead → at the array's start.
 * Returns why when the positions are not a valid block.
 */
export function locateBlock(begin: bigint, next: bigint, dataSize: bigint, sizeBits: number): { offset: number; length: number } | 'empty' | string {
  if ((begin & 1n) && (next & 1n)) {
    if (begin === EMPTY_LINE_LPOS && next === EMPTY_LINE_LPOS) return 'empty';
    if (begin === FAILED_LPOS && next === FAILED_LPOS) return 'text lost (no room in the ring when it was written)';
    return `data-less block with unknown positions 0x${begin.toString(16)}/0x${next.toString(16)}`;
  }
  const wrapOf = (lpos: bigint): bigint => BigInt.asUintN(64, lpos) >> BigInt(sizeBits);
  let offset: bigint;
  let length: bigint;
  if (wrapOf(begin) === wrapOf(next) && begin < next) {
    offset = begin & (dataSize - 1n);
    length = next - begin;
  } else if (wrapOf(BigInt.asUintN(64, begin + dataSize)) === wrapOf(next)) {
    offset = 0n;
    length = next & (dataSize - 1n);
  } else {
    return `invalid block positions begin 0x${begin.toString(16)} next 0x${next.toString(16)}`;
  }
  if (begin % 8n !== 0n || next % 8n !== 0n) return `block positions 0x${begin.toString(16)}/0x${next.toString(16)} not aligned to the block id`;
  if (length < 8n) return `block of ${length} bytes is shorter than its id`;
  if (length > dataSize) return `block of ${length} bytes exceeds the ${dataSize}-byte ring`;
  return { offset: Number(offset), length: Number(length) };
}

/** Splits `n` consecutive ring slots starting at `index` into at most two array segments. */
function indexSegments(index: number, n: number, count: number): { index: number; count: number }[] {
  const first = Math.min(n, count - index);
  return first === n ? [{ index, count: n }] : [{ index, count: first }, { index: 0, count: n - first }];
}

function mergeRanges(blocks: { offset: number; length: number }[], gap: number): { offset: number; length: number }[] {
  const sorted = [...blocks].sort((a, b) => a.offset - b.offset);
  const merged: { offset: number; length: number }[] = [];
  for (const b of sorted) {
    const last = merged[merged.length - 1];
    if (last && b.offset <= last.offset + last.length + gap) {
      last.length = Math.max(last.length, b.offset + b.length - last.offset);
    } else {
      merged.push({ offset: b.offset, length: b.length });
    }
  }
  return merged;
}

/** The pieces of the text data ring that were read, addressed by ring offset. */
class DataRingView {
  constructor(private readonly pieces: { offset: number; data: Uint8Array }[]) {}

  bytes(offset: number, length: number): Uint8Array {
    for (const p of this.pieces) {
      if (offset >= p.offset && offset + length <= p.offset + p.data.byteLength) {
        return p.data.subarray(offset - p.offset, offset - p.offset + length);
      }
    }
    // Every block was requested; reaching here is a bug in the range planning.
    throw new KernelLogError(`internal: ring bytes ${offset}..${offset + length} were not read`);
  }

  u64(offset: number): bigint {
    return u64(this.bytes(offset, 8), 0);
  }
}

function readField(buf: Uint8Array, base: number, f: FieldLocation | undefined): number | undefined {
  if (!f) return undefined;
  const byte = buf[base + f.offset];
  return f.bit ? (byte >> f.bit.shift) & ((1 << f.bit.width) - 1) : byte;
}

function cString(buf: Uint8Array, offset: number, max: number): string {
  let end = offset;
  while (end < offset + max && buf[end] !== 0) end++;
  return textDecoder.decode(buf.subarray(offset, end));
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
function u64(buf: Uint8Array, offset: number): bigint {
  return view(buf).getBigUint64(offset, true);
}
function u32(buf: Uint8Array, offset: number): number {
  return view(buf).getUint32(offset, true);
}
function u16(buf: Uint8Array, offset: number): number {
  return view(buf).getUint16(offset, true);
}
