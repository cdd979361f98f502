// The GRASS protocol client: requests and replies over a one-sided Transport, as
// gpu/include/grass/protocol.h defines them. Implements the kernel model's TargetMemory.
//
// Per request: write the data area and the signed request, then the request mark (one word);
// poll the reply mark until it holds our seq; read the reply and its data; check the CRC and
// re-read when torn; fetch further chunks with FETCH_RESULT. Polling yields to the event loop
// on every check (setImmediate, then 1 ms timers), so nothing blocks the caller's thread.
import { setImmediate as yieldImmediate, setTimeout as sleep } from 'node:timers/promises';
import { AddressSpace, ReadRequest, TargetMemory, TargetReadError } from '../types/target';
import type { TaskRecord } from '../types/task-record';
import * as codec from './protocol/codec';
import { BackgroundRecord, decodeBackground } from './protocol/decode-background';
import { decodeDetectionRecords, DetectionRecord } from './protocol/decode-detections';
import { decodeMetricsReply, MetricsSample } from './protocol/decode-metrics';
import { AgentDescription, parseDescription } from './protocol/description';
import * as L from './protocol/layout';
import { readVersioned, Transport, TransportError } from './transport';

export interface ClientOptions {
  /** How long a request may go unanswered before it fails (default 3000 ms). */
  timeoutMs?: number;
  /** Largest result the client accepts from a chunked reply (default 1 GiB). */
  maxResultBytes?: number;
}

/** The agent answered with a status other than OK. */
export class GrassStatusError extends Error {
  constructor(
    readonly opcode: L.Opcode,
    readonly status: number,
    readonly detail: bigint,
  ) {
    super(`${opName(opcode)} refused by the agent: ${statusText(status, detail)}`);
    this.name = 'GrassStatusError';
  }
}

/** No reply in time while the buffer stayed readable: the monitor, not the transport, failed. */
export class GrassTimeoutError extends Error {
  constructor(
    message: string,
    readonly monitorAlive: boolean,
  ) {
    super(message);
    this.name = 'GrassTimeoutError';
  }
}

/** The buffer's contents broke the protocol (bad magic, inconsistent reply, CRC never matching). */
export class GrassProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrassProtocolError';
  }
}

/**
 * Another remote wrote a request to the same slot (a transport without slot claims, such as two
 * monitors on one agent over RDMA): our reply mark was overtaken, or the reply answers the other
 * remote's request with the same seq (its request tag is not ours). Our request was not served;
 * the client moves past the slot's marks and asks again.
 */
export class SlotCollisionError extends GrassProtocolError {
  constructor(message: string) {
    super(`${message}: another client is using this slot`);
    this.name = 'SlotCollisionError';
  }
}

export function opName(opcode: L.Opcode): string {
  return (L.Opcode[opcode] ?? `opcode ${opcode}`).replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c).toUpperCase();
}

export function statusText(status: number, detail: bigint): string {
  const hex = `0x${detail.toString(16)}`;
  switch (status) {
    case L.Status.BadMac: return 'bad authenticator (wrong key?)';
    case L.Status.Replay: return 'sequence number not newer than the slot\'s last (replay)';
    case L.Status.Malformed: return 'malformed request';
    case L.Status.Unmapped: return `address ${hex} is not mapped`;
    // detail is the address in the request's space: physical, or a virtual one whose page-table entry or page is past RAM.
    case L.Status.OutOfRange: return `address ${hex} is outside the memory map, or its page tables lead there`;
    case L.Status.WritesDisabled: return 'writes are disabled (agent not started with --allow-writes)';
    case L.Status.NoSuchResult: return 'the agent no longer holds that result';
    case L.Status.Target: return `the target's data was inconsistent (detail ${hex})`;
    case L.Status.Unsupported: return 'not supported by this agent';
    // The agent serves a dump (makedumpfile's kdump format) whose dump level left this page out; its ready line names the level.
    case L.Status.Excluded: return `address ${hex} is not in this dump (excluded by its dump level)`;
    default: return `unknown status ${status} (detail ${hex})`;
  }
}

interface Slot {
  index: number;
  base: number;
  nextSeq: bigint;
  busy: boolean;
  /** Seq of a request that timed out and whose reply may still come. */
  unanswered?: bigint;
  /** Held against other clients (transport claim); kept a moment after use, for bursts. */
  claimed: boolean;
  lingering?: NodeJS.Timeout;
}

interface Result {
  reply: codec.Reply;
  data: Uint8Array;
}

const TORN_READ_RETRIES = 16;
const IMMEDIATE_POLL_MS = 5;
/** How often a waiting request asks the transport whether the agent process is gone. */
const AGENT_CHECK_MS = 100;
const CLAIM_LINGER_MS = 2;
/** Times a request is asked again after a replay refusal or a result lost mid-fetch. */
const RESTARTS = 2;
/** Times a request is asked again after colliding with another remote's on its slot. */
const COLLISION_RESTARTS = 8;

export interface HeartbeatResult {
  roundTripNs: bigint;
  liveness: codec.Liveness;
}

export class GrassClient implements TargetMemory {
  private readonly slots: Slot[];
  private readonly waiters: { urgent: boolean; wake: () => void }[] = [];
  private description?: Promise<AgentDescription>;
  private readonly timeoutMs: number;
  private readonly maxResultBytes: number;
  private closed = false;

  private constructor(
    readonly transport: Transport,
    private readonly key: Uint8Array,
    readonly header: codec.BufferHeader,
    slotSeqs: bigint[],
    options: ClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.maxResultBytes = options.maxResultBytes ?? 1 << 30;
    this.slots = slotSeqs.map((seq, index) => ({ index, base: header.headerBytes + index * header.slotBytes, nextSeq: seq + 1n, busy: false, claimed: false }));
  }

  /** Validates the buffer header and takes each slot's sequence from its current marks. */
  static async attach(transport: Transport, key: Uint8Array, options: ClientOptions = {}): Promise<GrassClient> {
    if (key.length !== 32) throw new Error(`the HMAC key must be 32 bytes, got ${key.length}`);
    if (transport.size < L.bufferHeader.size) {
      throw new GrassProtocolError(`${transport.name}: ${transport.size} bytes is too small for a GRASS buffer`);
    }
    const header = codec.decodeBufferHeader(await transport.read(0, L.bufferHeader.size));
    const where = transport.name;
    if (header.magic !== L.GRASS_MAGIC) {
      throw new GrassProtocolError(`${where}: not a GRASS buffer (magic 0x${header.magic.toString(16)}; agent not started or still starting?)`);
    }
    if (header.version !== L.GRASS_PROTOCOL_VERSION) {
      throw new GrassProtocolError(`${where}: protocol version ${header.version}, this client speaks ${L.GRASS_PROTOCOL_VERSION}`);
    }
    const geometryProblem =
      header.headerBytes !== L.GRASS_HEADER_BYTES ? `header_bytes ${header.headerBytes} is not ${L.GRASS_HEADER_BYTES}`
      : header.slotCount < 1 ? 'no slots'
      : header.slotBytes % 4096 !== 0 ? `slot_bytes ${header.slotBytes} is not a multiple of 4096`
      : header.slotDataBytes < 8 || L.GRASS_SLOT_DATA_OFFSET + header.slotDataBytes > header.slotBytes ? `slot_data_bytes ${header.slotDataBytes} does not fit a ${header.slotBytes}-byte slot`
      : header.headerBytes + header.slotCount * header.slotBytes > transport.size ? `${header.slotCount} slots of ${header.slotBytes} bytes do not fit the ${transport.size}-byte buffer`
      : undefined;
    if (geometryProblem) throw new GrassProtocolError(`${where}: bad slot geometry: ${geometryProblem}`);

    const seqs: bigint[] = [];
    for (let i = 0; i < header.slotCount; i++) {
      const base = header.headerBytes + i * header.slotBytes;
      const requestMark = await transport.readWord(base + L.slotOffsets.requestMark);
      const replyMark = await transport.readWord(base + L.slotOffsets.replyMark);
      seqs.push(requestMark > replyMark ? requestMark : replyMark);
    }
    return new GrassClient(transport, key, header, seqs, options);
  }

  get writesAllowed(): boolean {
    return (this.header.flags & L.AGENT_WRITES_ALLOWED) !== 0;
  }

  get backend(): 'cpu' | 'cuda' {
    return this.header.flags & L.AGENT_BACKEND_CUDA ? 'cuda' : 'cpu';
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots) clearTimeout(slot.lingering);
    // Closing the transport drops its claims.
    await this.transport.close();
  }

  /**
   * The liveness block, read seqlock-style: version, block, version; retried while torn, for
   * up to the request timeout (the monitor may be descheduled mid-update on a busy host).
   */
  async liveness(): Promise<codec.Liveness> {
    const versionOffset = L.bufferHeader.fields.liveness_version.offset;
    const start = Date.now();
    let version = 0n;
    for (let attempt = 0; ; attempt++) {
      const read = await readVersioned(this.transport, versionOffset, L.livenessBlock.start, L.livenessBlock.end - L.livenessBlock.start);
      version = read.before;
      if (read.before % 2n === 0n && read.before === read.after) return codec.decodeLiveness(read.bytes);
      if (Date.now() - start > this.timeoutMs) break;
      if (attempt < 100) await yieldImmediate();
      else await sleep(1);
    }
    if (version % 2n === 1n) {
      throw new GrassTimeoutError(`${this.transport.name}: monitor not answering (liveness block stuck mid-update at version ${version} for ${this.timeoutMs} ms)`, false);
    }
    throw new GrassProtocolError(`${this.transport.name}: the liveness block changed during every read for ${this.timeoutMs} ms`);
  }

  /**
   * The background area the monitor republishes in the buffer header after every evaluation
   * (the detectors' latest records, metric history), read with no request (seqlock: version,
   * area, version; CRC checked), so it can be read while the monitor's request handling is stuck
   * or slow.
   */
  async background(timeoutMs = this.timeoutMs): Promise<BackgroundRecord> {
    const h = L.bufferHeader.fields;
    const t = this.transport;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const version = await t.readWord(h.background_version.offset);
      if (version === 0n) throw new Error(`${t.name}: no background results yet (the detectors run after the monitor's first two metrics samples)`);
      if (version % 2n === 0n) {
        const fields = await t.read(h.background_offset.offset, h.reserved0.offset - h.background_offset.offset);
        const v = new DataView(fields.buffer, fields.byteOffset, fields.byteLength);
        const offset = Number(v.getBigUint64(0, true));
        const bytes = v.getUint32(h.background_bytes.offset - h.background_offset.offset, true);
        const crc = v.getUint32(h.background_crc32.offset - h.background_offset.offset, true);
        const area = await t.read(offset, bytes);
        if ((await t.readWord(h.background_version.offset)) === version && codec.dataCrc32(area) === crc) return decodeBackground(area);
      }
      if (Date.now() > deadline) throw new Error(`${t.name}: the background area changed during every read for ${timeoutMs} ms`);
      await sleep(1);
    }
  }

  /** A HEARTBEAT round trip and then the liveness block. */
  async heartbeat(): Promise<HeartbeatResult> {
    const roundTripNs = await this.heartbeatRoundTrip();
    return { roundTripNs, liveness: await this.liveness() };
  }

  /** The HEARTBEAT request alone (the agent answers it at once): its round trip in ns. */
  async heartbeatRoundTrip(): Promise<bigint> {
    const start = process.hrtime.bigint();
    await this.call(L.Opcode.Heartbeat, [], undefined, true);
    return process.hrtime.bigint() - start;
  }

  /** The target description, fetched once per client. */
  describe(): Promise<AgentDescription> {
    this.description ??= this.call(L.Opcode.Describe, []).then((r) => parseDescription(r.data));
    // A failed fetch is not cached: the next call asks again.
    this.description.catch(() => (this.description = undefined));
    return this.description;
  }

  async processCount(options: { threads?: boolean; idle?: boolean } = {}): Promise<number> {
    const { data } = await this.call(L.Opcode.ProcessCount, [BigInt(psFlags(options))], undefined, true);
    if (data.length !== 8) throw new GrassProtocolError(`PROCESS_COUNT reply is ${data.length} bytes, expected 8`);
    return Number(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
  }

  async processList(options: { threads?: boolean; idle?: boolean } = {}): Promise<TaskRecord[]> {
    const { data } = await this.call(L.Opcode.ProcessList, [BigInt(psFlags(options))]);
    return codec.decodeTaskRecords(data);
  }

  /** The metrics plugin's last window: its start and end samples (the monitor's clock). */
  async metrics(): Promise<[MetricsSample, MetricsSample]> {
    const { data } = await this.call(L.Opcode.Metrics, []);
    return decodeMetricsReply(data);
  }

  /** Every detector's latest record; the inline ones are evaluated for this request. */
  async detections(): Promise<DetectionRecord[]> {
    const { data } = await this.call(L.Opcode.Detect, [0n]);
    return decodeDetectionRecords(data);
  }

  /**
   * Sets which detectors run in background mode (bit kind-1 of `backgroundMask`; the others run
   * when asked); returns their records.
   */
  async setBackgroundDetectors(backgroundMask: number): Promise<DetectionRecord[]> {
    const { data } = await this.call(L.Opcode.Detect, [BigInt(L.DETECT_SET_MODES), BigInt(backgroundMask)]);
    return decodeDetectionRecords(data);
  }

  /**
   * BULK_READ of the physical pages [physStart, physStart + length) that `pageBitmap` selects
   * (bit k, LSB first, for page k; every page without one): the selected pages back to back and
   * the CRC32C the agent computed over them.
   */
  async bulkRead(physStart: bigint, length: number, pageBitmap?: Uint8Array): Promise<{ data: Uint8Array; crc32: number }> {
    const { data, reply } = await this.call(L.Opcode.BulkRead, [physStart, BigInt(length)], pageBitmap);
    return { data, crc32: reply.dataCrc32 };
  }

  /**
   * DUMP_MAP of `pages` pages from `physStart`: bit k (LSB first) set when page k is in memory
   * and in the source (clear where a dump left it out, or outside memory).
   */
  async dumpMap(physStart: bigint, pages: number): Promise<Uint8Array> {
    const { data } = await this.call(L.Opcode.DumpMap, [physStart, BigInt(pages)]);
    if (data.length !== Math.ceil(pages / 8)) throw new GrassProtocolError(`DUMP_MAP of ${pages} pages returned ${data.length} bytes`);
    return data;
  }

  /**
   * WRITE of `bytes` at `address`, in pieces that fit a slot's data area, one after another in
   * order; refused (GrassStatusError) unless the agent was started with --allow-writes.
   */
  async write(space: AddressSpace, address: bigint, bytes: Uint8Array): Promise<void> {
    const piece = this.header.slotDataBytes;
    for (let done = 0; done < bytes.length; done += piece) {
      const chunk = bytes.subarray(done, done + piece);
      await this.call(L.Opcode.Write, [BigInt(spaceCode(space)), address + BigInt(done), BigInt(chunk.length), BigInt(spacePid(space))], chunk);
    }
  }

  /**
   * Reads split into pieces that fit a slot's data area, issued on as many slots as requests
   * other than urgent ones may use. The first failure stops the pieces not yet sent, so a dead
   * agent fails a large read within one timeout, not one per round of pieces.
   */
  async read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(length) || length < 0) throw new TargetReadError(space, address, length, 'bad length');
    if (length === 0) return new Uint8Array(0);
    const piece = this.header.slotDataBytes;
    if (length <= piece) {
      try {
        return await this.readPiece(space, address, length);
      } catch (err) {
        throw this.asReadError(err, space, address, length);
      }
    }
    const out = new Uint8Array(length);
    let next = 0;
    let failure: { reason: unknown } | undefined;
    const worker = async (): Promise<void> => {
      while (!failure && next < length) {
        const at = next;
        const n = Math.min(piece, length - at);
        next += n;
        try {
          out.set(await this.readPiece(space, address + BigInt(at), n), at);
        } catch (reason) {
          failure ??= { reason };
        }
      }
    };
    const workers = Math.min(Math.max(1, this.slots.length - 1), Math.ceil(length / piece));
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure) throw this.asReadError(failure.reason, space, address, length);
    return out;
  }

  private async readPiece(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    const { data } = await this.call(L.Opcode.Read, [BigInt(spaceCode(space)), address, BigInt(length), BigInt(spacePid(space))]);
    if (data.length !== length) throw new GrassProtocolError(`READ of ${length} bytes returned ${data.length}`);
    return data;
  }

  private asReadError(reason: unknown, space: AddressSpace, address: bigint, length: number): Error {
    if (reason instanceof TargetReadError) return reason;
    if (reason instanceof GrassStatusError) return new TargetReadError(space, address, length, statusText(reason.status, reason.detail));
    return reason instanceof Error ? reason : new Error(String(reason));
  }

  /**
   * Many reads in READ_BATCH requests, each filling at most one slot's data area both ways;
   * reads too large for a batch go through read(). A failed entry fails alone; a timeout or a
   * transport failure rejects the whole call.
   */
  async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    const results: (Uint8Array | TargetReadError)[] = new Array(requests.length);
    const capacity = this.header.slotDataBytes;
    const maxEntries = Math.floor(capacity / L.readBatchEntry.size);
    const work: Promise<void>[] = [];
    let batch: number[] = [];
    let batchReplyBytes = 0;
    const flush = (): void => {
      if (batch.length) work.push(this.runBatch(requests, batch, results));
      batch = [];
      batchReplyBytes = 0;
    };
    requests.forEach((r, i) => {
      const replyBytes = codec.readBatchReplyBytes(r.length);
      if (replyBytes > capacity) {
        work.push(
          this.read(r.space, r.address, r.length).then(
            (bytes) => void (results[i] = bytes),
            (err: unknown) => void (results[i] = this.entryError(err, r)),
          ),
        );
        return;
      }
      if (batch.length === maxEntries || batchReplyBytes + replyBytes > capacity) flush();
      batch.push(i);
      batchReplyBytes += replyBytes;
    });
    flush();
    await Promise.all(work);
    return results;
  }

  /**
   * An entry's own failure (unreadable memory, a refused request) as its result; anything else
   * (timeout, transport) is the target's failure, not the entry's, and is thrown.
   */
  private entryError(err: unknown, r: ReadRequest): TargetReadError {
    const e = this.asReadError(err, r.space, r.address, r.length);
    if (e instanceof TargetReadError) return e;
    throw e;
  }

  private async runBatch(requests: ReadRequest[], indices: number[], results: (Uint8Array | TargetReadError)[]): Promise<void> {
    const entries = indices.map((i) => ({ space: spaceCode(requests[i].space), pid: spacePid(requests[i].space), address: requests[i].address, length: requests[i].length }));
    let data: Uint8Array;
    try {
      ({ data } = await this.call(L.Opcode.ReadBatch, [BigInt(entries.length)], codec.encodeReadBatchEntries(entries)));
    } catch (err) {
      // The agent refused the batch as a whole: every entry carries that refusal.
      for (const i of indices) results[i] = this.entryError(err, requests[i]);
      return;
    }
    const replies = codec.decodeReadBatchReply(data, indices.map((i) => requests[i].length));
    indices.forEach((i, k) => {
      const r = requests[i];
      const entry = replies[k];
      results[i] = !entry ? new TargetReadError(r.space, r.address, r.length, `READ_BATCH reply of ${data.length} bytes ends before this entry`)
        : entry.status === L.Status.Ok ? entry.bytes
        : new TargetReadError(r.space, r.address, r.length, statusText(entry.status, r.address));
    });
  }

  /** One request and its whole result (all chunks). Urgent requests prefer slot 0. The typed methods above are its only callers. */
  private async call(opcode: L.Opcode, args: bigint[], data?: Uint8Array, urgent = false): Promise<Result> {
    if (this.closed) throw new Error('GRASS client used after close');
    const slot = await this.acquire(urgent);
    try {
      for (let restarts = 0, collisions = 0; ; ) {
        try {
          return await this.collect(slot, opcode, args, data ?? new Uint8Array(0));
        } catch (err) {
          if (err instanceof SlotCollisionError && collisions < COLLISION_RESTARTS) {
            collisions++;
            // Both remotes resync to the same marks: a random gap keeps them from colliding again.
            await this.resync(slot);
            slot.nextSeq += BigInt(1 + Math.floor(Math.random() * 64));
            continue;
          }
          if (!(err instanceof GrassStatusError) || restarts >= RESTARTS) throw err;
          restarts++;
          if (err.status === L.Status.Replay) {
            // Another client used this slot (a transport without claims): the agent's detail is
            // the slot's last accepted seq; go past it and ask again.
            await this.resync(slot, err.detail);
          } else if (!(err.opcode === L.Opcode.FetchResult && err.status === L.Status.NoSuchResult)) {
            throw err;
          }
        }
      }
    } finally {
      this.release(slot);
    }
  }

  private async collect(slot: Slot, opcode: L.Opcode, args: bigint[], data: Uint8Array): Promise<Result> {
    const first = await this.exchange(slot, opcode, args, data);
    const total = first.reply.totalBytes;
    if (total === BigInt(first.data.length)) return first;
    if (first.reply.offset !== 0n || total < BigInt(first.data.length) || first.reply.resultId === 0n) {
      throw new GrassProtocolError(`${opName(opcode)} reply: chunk at ${first.reply.offset} of ${first.data.length} bytes, total ${total}, result id ${first.reply.resultId}`);
    }
    if (total > BigInt(this.maxResultBytes)) {
      throw new GrassProtocolError(`${opName(opcode)} result of ${total} bytes exceeds the client's limit of ${this.maxResultBytes}`);
    }
    const whole = new Uint8Array(Number(total));
    whole.set(first.data, 0);
    let got = first.data.length;
    while (got < whole.length) {
      const chunk = await this.exchange(slot, L.Opcode.FetchResult, [first.reply.resultId, BigInt(got)], new Uint8Array(0));
      if (chunk.reply.offset !== BigInt(got) || chunk.data.length === 0 || got + chunk.data.length > whole.length) {
        throw new GrassProtocolError(`FETCH_RESULT at ${got} of ${total}: got chunk at ${chunk.reply.offset} of ${chunk.data.length} bytes`);
      }
      whole.set(chunk.data, got);
      got += chunk.data.length;
    }
    return { reply: first.reply, data: whole };
  }

  /** One request, one reply chunk. */
  private async exchange(slot: Slot, opcode: L.Opcode, args: bigint[], data: Uint8Array): Promise<Result> {
    const t = this.transport;
    if (data.length > this.header.slotDataBytes) {
      throw new Error(`${opName(opcode)} request data of ${data.length} bytes exceeds the slot's ${this.header.slotDataBytes}`);
    }
    const seq = slot.nextSeq++;
    const request = codec.signedRequest(this.key, this.header.instance, slot.index, { seq, opcode, dataBytes: data.length, args }, data);
    if (data.length) await t.write(slot.base + L.slotOffsets.data, data);
    await t.write(slot.base + L.slotOffsets.request, request);
    await t.writeWord(slot.base + L.slotOffsets.requestMark, seq);

    await this.awaitReplyMark(slot, seq, opcode);
    slot.unanswered = undefined;
    return this.readReply(slot, seq, codec.requestTag(request), opcode);
  }

  private async awaitReplyMark(slot: Slot, seq: bigint, opcode: L.Opcode): Promise<void> {
    const markOffset = slot.base + L.slotOffsets.replyMark;
    const start = Date.now();
    const deadline = start + this.timeoutMs;
    let agentCheckedAt = start;
    for (;;) {
      const mark = await this.transport.readWord(markOffset);
      if (mark === seq) return;
      if (mark > seq) throw new SlotCollisionError(`slot ${slot.index}: reply mark ${mark} is past our request ${seq}`);
      const now = Date.now();
      if (now - start >= IMMEDIATE_POLL_MS) {
        // Past the first few ms: check that no other remote overwrote our request's mark (an
        // older seq written after ours would leave ours unanswered until the timeout).
        const requestMark = await this.transport.readWord(slot.base + L.slotOffsets.requestMark);
        if (requestMark !== seq && (await this.transport.readWord(markOffset)) !== seq) {
          throw new SlotCollisionError(`slot ${slot.index}: our request mark ${seq} was overwritten with ${requestMark}`);
        }
        // A dead agent is known at once where the transport can tell (shm: its lock is gone).
        if (now - agentCheckedAt >= AGENT_CHECK_MS) {
          agentCheckedAt = now;
          if (await this.transport.agentGone?.()) {
            slot.unanswered = seq;
            throw await this.diagnoseTimeout(slot, opcode, now - start);
          }
        }
      }
      if (now >= deadline) {
        slot.unanswered = seq;
        throw await this.diagnoseTimeout(slot, opcode, now - start);
      }
      if (now - start < IMMEDIATE_POLL_MS) await yieldImmediate();
      else await sleep(1);
    }
  }

  /** Names the part that failed: a stuck liveness counter means the monitor loop is dead. */
  private async diagnoseTimeout(slot: Slot, opcode: L.Opcode, waitedMs: number): Promise<Error> {
    const what = `${opName(opcode)} on slot ${slot.index} of ${this.transport.name}: no reply in ${waitedMs} ms`;
    try {
      if (await this.transport.replaced?.()) {
        return new TransportError(this.transport.name, `${what}: the buffer was replaced or removed (agent restarted or stopped?); attach again`);
      }
      if (await this.transport.agentGone?.()) {
        return new TransportError(this.transport.name, `${what}: the agent process is gone (it no longer holds its lock on the buffer)`);
      }
      const first = await this.liveness();
      await sleep(Math.min(200, this.timeoutMs));
      const second = await this.liveness();
      return second.counter !== first.counter
        ? new GrassTimeoutError(`${what}; the monitor loop is alive (liveness ${second.counter}) but did not answer (busy or stuck in a request)`, true)
        : new GrassTimeoutError(`${what}: monitor not answering (its liveness counter is stuck at ${second.counter}; buffer still readable)`, false);
    } catch (err) {
      if (err instanceof TransportError) return new TransportError(err.transport, `${what}, and the buffer is no longer readable: ${err.message}`, { cause: err });
      if (err instanceof GrassTimeoutError) return new GrassTimeoutError(`${what}: ${err.message}`, false);
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * Reads the reply and its data; a torn read (seq or CRC mismatch) is read again. A reply to
   * another remote's request (a later seq, or our seq with another request tag) is a collision.
   */
  private async readReply(slot: Slot, seq: bigint, tag: number, opcode: L.Opcode): Promise<Result> {
    const replyOffset = slot.base + L.slotOffsets.reply;
    // Reply header through the first page of data in one read: small replies need no second read.
    const inline = Math.min(this.header.slotDataBytes, 4096 - L.GRASS_SLOT_DATA_OFFSET);
    const headSpan = L.slotOffsets.data - L.slotOffsets.reply;
    let problem = '';
    for (let attempt = 0; attempt < TORN_READ_RETRIES; attempt++) {
      const head = await this.transport.read(replyOffset, headSpan + inline);
      const reply = codec.decodeReply(head);
      if (reply.seq > seq) throw new SlotCollisionError(`slot ${slot.index}: reply to seq ${reply.seq} where ours (${seq}) was expected`);
      if (reply.seq !== seq) {
        problem = `reply header holds seq ${reply.seq}, its mark ${seq}`;
        continue;
      }
      if (reply.requestTag !== tag) {
        throw new SlotCollisionError(`slot ${slot.index}: the reply to seq ${seq} answers a request tagged 0x${reply.requestTag.toString(16)}, ours is 0x${tag.toString(16)}`);
      }
      if (reply.status !== L.Status.Ok) throw new GrassStatusError(opcode, reply.status, reply.detail);
      if (reply.dataBytes > this.header.slotDataBytes) {
        problem = `reply data_bytes ${reply.dataBytes} exceeds the data area of ${this.header.slotDataBytes}`;
        continue;
      }
      const data = reply.dataBytes <= inline
        ? head.slice(headSpan, headSpan + reply.dataBytes)
        : await this.transport.read(slot.base + L.slotOffsets.data, reply.dataBytes);
      const crc = codec.dataCrc32(data);
      if (crc === reply.dataCrc32) return { reply, data };
      problem = `data CRC32C 0x${crc.toString(16)} does not match the reply's 0x${reply.dataCrc32.toString(16)}`;
    }
    throw new GrassProtocolError(`${opName(opcode)} on slot ${slot.index}: ${problem} on each of ${TORN_READ_RETRIES} reads`);
  }

  /**
   * Slot 0 is kept for urgent requests (heartbeat, counts) so they never queue behind a long
   * transfer; urgent requests may also take any other free slot. With one slot, all share it.
   * A slot is taken in this process (busy) and, where the transport can, claimed against other
   * clients of the same buffer; a claimed slot's sequence is re-read, since another client may
   * have used it since.
   */
  private async acquire(urgent: boolean): Promise<Slot> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const free = this.slots.filter((s) => !s.busy && (urgent || s.index !== 0 || this.slots.length === 1));
      // Urgent: slot 0 first. Then slots with no unanswered request, then the rest.
      free.sort((a, b) => rank(a) - rank(b));
      for (const slot of free) {
        // Another acquire may have taken it while this one awaited a claim on an earlier slot.
        if (slot.busy) continue;
        slot.busy = true;
        if (await this.claim(slot)) return slot;
        slot.busy = false;
      }
      if (free.length === 0) {
        await new Promise<void>((wake) => this.waiters.push({ urgent, wake }));
        continue;
      }
      if (Date.now() >= deadline) {
        throw new GrassTimeoutError(`${this.transport.name}: every slot usable for this request is held by other clients (waited ${this.timeoutMs} ms)`, true);
      }
      await sleep(1);
    }
    function rank(s: Slot): number {
      return (urgent && s.index === 0 ? 0 : 2) + (s.unanswered === undefined ? 0 : 1);
    }
  }

  private async claim(slot: Slot): Promise<boolean> {
    const t = this.transport;
    if (!t.tryClaim) return true;
    clearTimeout(slot.lingering);
    // Still held since the last request: nobody else can have used the slot.
    if (slot.claimed) return true;
    if (!(await t.tryClaim(slot.base + L.slotOffsets.requestMark))) return false;
    slot.claimed = true;
    await this.resync(slot);
    return true;
  }

  /** Moves the slot's next seq past both marks (another client may have used the slot). */
  private async resync(slot: Slot, atLeast = 0n): Promise<void> {
    const requestMark = await this.transport.readWord(slot.base + L.slotOffsets.requestMark);
    const replyMark = await this.transport.readWord(slot.base + L.slotOffsets.replyMark);
    for (const seen of [requestMark, replyMark, atLeast]) if (seen >= slot.nextSeq) slot.nextSeq = seen + 1n;
  }

  private release(slot: Slot): void {
    slot.busy = false;
    if (slot.claimed) {
      // Keep the claim a moment: a burst of requests then pays for it once (two fcntl calls,
      // a quarter of a heartbeat on shm); other clients wait at most this long for the slot.
      slot.lingering = setTimeout(() => {
        if (slot.busy || this.closed) return;
        slot.claimed = false;
        void this.transport.releaseClaim?.(slot.base + L.slotOffsets.requestMark).catch(() => undefined);
      }, CLAIM_LINGER_MS).unref();
    }
    const i = this.waiters.findIndex((w) => w.urgent || slot.index !== 0 || this.slots.length === 1);
    if (i >= 0) this.waiters.splice(i, 1)[0].wake();
  }
}

function psFlags(options: { threads?: boolean; idle?: boolean }): number {
  return (options.threads ? L.PS_THREADS : 0) | (options.idle ? L.PS_IDLE : 0);
}

function spaceCode(space: AddressSpace): L.Space {
  return space.kind === 'physical' ? L.Space.Physical : space.kind === 'kernel' ? L.Space.Kernel : L.Space.User;
}

function spacePid(space: AddressSpace): number {
  return space.kind === 'user' ? space.pid : 0;
}
