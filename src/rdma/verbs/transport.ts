// The verbs transport: the agent's GRASS buffer reached with one-sided RDMA READ and WRITE over
// a reliable-connected QP (libibverbs + librdmacm through koffi; works on RNICs and on rxe).
//
// Set-up: rdma_cm resolves and connects (or accepts an agent that connects out, see
// ./listener); the agent's buffer address, rkey and size arrive as the connection's private
// data (./hello). A registered local staging buffer is the source and destination of every
// operation. Work requests go through ibv_context.ops.post_send and completions come from
// ops.poll_cq (both static inline in verbs.h, so called as function pointers); completions are
// event-driven: the CQ's completion channel fd is watched by libuv (koffi.node.poll), the CQ is
// re-armed through ops.req_notify_cq and drained with ops.poll_cq; a short spin of event-loop
// turns after each post catches the completions of fast hardware. Nothing blocks. Any error
// completion, a dropped connection or a removed device breaks the transport for good: every
// pending and later operation fails with a TransportError naming the cause, and the verbs
// resources are released.
import koffi, { type node as koffiNode } from 'koffi';
import { setImmediate as yieldImmediate } from 'node:timers/promises';
import { checkRange, checkWord, ConnectionRefusedError, Transport, TransportError } from '../transport';
import { constants, fields, RDMA_MAX_INIT_DEPTH, RDMA_MAX_RESP_RES, sizes } from './abi';
import { awaitCmEvent, CmChannel, CmEvent, cmEventName, RefusedByFarEnd } from './cm';
import { decodeHello, Hello } from './hello';
import { getField, lastError, NativeMemory, putField, readBytes, readField, setNonBlocking, verbs, writeBytes } from './native';
import { encodeSockaddr, formatSockaddr, resolveHost } from './sockaddr';

export interface VerbsOptions {
  /** How long one RDMA operation may take before the transport is declared dead (default 5000 ms). */
  opTimeoutMs?: number;
  /** rdma_cm address/route resolution and connection, each step (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Size of one staging block: the largest single RDMA transfer (default 1 MiB). */
  blockBytes?: number;
  /** Staging blocks, i.e. transfers in flight at once (default 8). */
  blocks?: number;
}

const SEND_QUEUE_DEPTH = 128;
const CQ_ENTRIES = 256;
const WORD_CELLS = 64;
const WORD_CELL_BYTES = 64;
const POLL_BATCH = 32;
/**
 * How long to keep polling (one poll per event-loop turn) right after a post before waiting for
 * the completion event: a wake-up through the completion channel costs more than this on a
 * loaded host, and RNICs complete well within it.
 */
const SPIN_MS = 0.5;

// Control area (unregistered native memory) for the structs handed to verbs calls.
const CTRL_WR = 0;
const CTRL_SGE = 256;
const CTRL_BAD_WR = 384;
const CTRL_ATTR = 512;
const CTRL_CONN = 640;
const CTRL_ADDR = 768;
const CTRL_CQ_EVENT = 896;
const CTRL_WC = 1024;
const CTRL_BYTES = CTRL_WC + POLL_BATCH * sizes.ibv_wc;

interface Pending {
  what: string;
  timer: NodeJS.Timeout;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Counting semaphore for staging blocks, word cells and send-queue entries. */
class Pool {
  private readonly free: number[];
  private readonly waiters: ((index: number) => void)[] = [];
  constructor(count: number) {
    this.free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }
  take(): Promise<number> {
    const i = this.free.pop();
    if (i !== undefined) return Promise.resolve(i);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  give(index: number): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(index);
    else this.free.push(index);
  }
}

/** Verbs resources of one connection, in the order they are released. */
interface Resources {
  id: number;
  pd: number;
  compChannel: number;
  cq: number;
  mr: number;
  qp: number;
  staging?: NativeMemory;
  ctrl: NativeMemory;
  hasQp: boolean;
}

function releaseResources(r: Resources): void {
  const v = verbs();
  if (r.hasQp) v.rdma_destroy_qp(r.id);
  if (r.mr) v.ibv_dereg_mr(r.mr);
  if (r.cq) v.ibv_destroy_cq(r.cq);
  if (r.compChannel) v.ibv_destroy_comp_channel(r.compChannel);
  if (r.pd) v.ibv_dealloc_pd(r.pd);
  if (r.id) v.rdma_destroy_id(r.id);
  r.staging?.free();
  r.ctrl.free();
}

/**
 * PD, CQ, QP and the registered staging buffer on a cm_id whose device is known (after route
 * resolution, or a connect request). Releases what it made when a step fails.
 */
function createResources(id: number, stagingBytes: number): Resources {
  const v = verbs();
  const r: Resources = { id, pd: 0, compChannel: 0, cq: 0, mr: 0, qp: 0, ctrl: NativeMemory.allocate(CTRL_BYTES), hasQp: false };
  try {
    const context = readField(id, 'rdma_cm_id.verbs');
    if (!context) throw new Error('the cm_id has no device context');
    r.pd = v.ibv_alloc_pd(context) as number;
    if (!r.pd) throw new Error(`ibv_alloc_pd failed (${lastError()})`);
    r.compChannel = v.ibv_create_comp_channel(context) as number;
    if (!r.compChannel) throw new Error(`ibv_create_comp_channel failed (${lastError()})`);
    setNonBlocking(readField(r.compChannel, 'ibv_comp_channel.fd'));
    r.cq = v.ibv_create_cq(context, CQ_ENTRIES, 0, r.compChannel, 0) as number;
    if (!r.cq) throw new Error(`ibv_create_cq failed (${lastError()})`);
    const attr = Buffer.alloc(sizes.ibv_qp_init_attr);
    putField(attr, 'ibv_qp_init_attr.send_cq', r.cq);
    putField(attr, 'ibv_qp_init_attr.recv_cq', r.cq);
    putField(attr, 'ibv_qp_init_attr.cap.max_send_wr', SEND_QUEUE_DEPTH);
    putField(attr, 'ibv_qp_init_attr.cap.max_recv_wr', 1);
    putField(attr, 'ibv_qp_init_attr.cap.max_send_sge', 1);
    putField(attr, 'ibv_qp_init_attr.cap.max_recv_sge', 1);
    putField(attr, 'ibv_qp_init_attr.qp_type', constants.IBV_QPT_RC);
    putField(attr, 'ibv_qp_init_attr.sq_sig_all', 0);
    writeBytes(r.ctrl.address + CTRL_ATTR, attr);
    if ((v.rdma_create_qp(id, r.pd, r.ctrl.address + CTRL_ATTR) as number) !== 0) throw new Error(`rdma_create_qp failed (${lastError()})`);
    r.hasQp = true;
    r.qp = readField(id, 'rdma_cm_id.qp');
    r.staging = NativeMemory.allocate(stagingBytes);
    r.mr = v.ibv_reg_mr(r.pd, r.staging.address, stagingBytes, constants.IBV_ACCESS_LOCAL_WRITE) as number;
    if (!r.mr) throw new Error(`ibv_reg_mr of ${stagingBytes} bytes failed (${lastError()})`);
    return r;
  } catch (err) {
    r.id = 0; // the caller owns the id
    releaseResources(r);
    throw err;
  }
}

function connParam(r: Resources): number {
  const p = Buffer.alloc(sizes.rdma_conn_param);
  putField(p, 'rdma_conn_param.responder_resources', RDMA_MAX_RESP_RES);
  putField(p, 'rdma_conn_param.initiator_depth', RDMA_MAX_INIT_DEPTH);
  putField(p, 'rdma_conn_param.retry_count', 7);
  putField(p, 'rdma_conn_param.rnr_retry_count', 7);
  writeBytes(r.ctrl.address + CTRL_CONN, p);
  return r.ctrl.address + CTRL_CONN;
}

export class VerbsTransport implements Transport {
  readonly name: string;
  readonly size: number;
  private readonly remoteBase: bigint;
  private readonly rkey: number;
  private readonly lkey: number;
  private readonly postSendFn: number;
  private readonly pollCqFn: number;
  private readonly reqNotifyFn: number;
  private readonly cqWatch: koffiNode.PollHandle;
  private readonly opTimeoutMs: number;
  private readonly blockBytes: number;
  private readonly blocks: Pool;
  private readonly words = new Pool(WORD_CELLS);
  private readonly sendQueue = new Pool(SEND_QUEUE_DEPTH);
  private readonly pending = new Map<bigint, Pending>();
  private nextWrId = 1n;
  private broken: TransportError | undefined;
  private closed = false;
  private readonly brokenListeners: ((err: TransportError) => void)[] = [];

  private constructor(
    private readonly res: Resources,
    readonly hello: Hello,
    /** The agent's address as rdma_cm saw it. */
    readonly peer: string,
    options: VerbsOptions,
    private readonly channel: CmChannel,
  ) {
    this.name = `rdma://${peer} (verbs, target '${hello.name}')`;
    this.size = hello.bufferBytes;
    this.remoteBase = hello.bufferAddress;
    this.rkey = hello.rkey;
    this.lkey = readField(res.mr, 'ibv_mr.lkey');
    const context = readField(res.id, 'rdma_cm_id.verbs');
    this.postSendFn = readField(context, 'ibv_context.ops.post_send');
    this.pollCqFn = readField(context, 'ibv_context.ops.poll_cq');
    this.reqNotifyFn = readField(context, 'ibv_context.ops.req_notify_cq');
    if (!this.postSendFn || !this.pollCqFn || !this.reqNotifyFn) throw new Error('the verbs provider left ops.post_send/poll_cq/req_notify_cq empty');
    this.opTimeoutMs = options.opTimeoutMs ?? 5000;
    this.blockBytes = options.blockBytes ?? 1 << 20;
    this.blocks = new Pool(options.blocks ?? 8);
    channel.register(res.id, (event) => this.onCmEvent(event));
    this.armCq();
    this.cqWatch = koffi.node.poll(readField(res.compChannel, 'ibv_comp_channel.fd'), { readable: true }, () => this.onCqEvent());
    this.cqWatch.unref();
  }

  /** Connects to an agent listening at host:port and takes its buffer description. */
  static async connect(host: string, port: number, options: VerbsOptions = {}): Promise<VerbsTransport> {
    const where = `rdma://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const timeout = options.connectTimeoutMs ?? 5000;
    const { address, family } = await resolveHost(host);
    const channel = CmChannel.shared();
    const v = verbs();
    const id = channel.createId();
    let res: Resources | undefined;
    try {
      const scratch = NativeMemory.allocate(4096);
      try {
        writeBytes(scratch.address, encodeSockaddr(address, family, port));
        const resolved = awaitCmEvent(channel, id, [constants.RDMA_CM_EVENT_ADDR_RESOLVED], `${where}: address resolution`, timeout);
        if ((v.rdma_resolve_addr(id, 0, scratch.address, timeout) as number) !== 0) throw new Error(`${where}: rdma_resolve_addr failed (${lastError()})`);
        await resolved;
      } finally {
        scratch.free();
      }
      const routed = awaitCmEvent(channel, id, [constants.RDMA_CM_EVENT_ROUTE_RESOLVED], `${where}: route resolution`, timeout);
      if ((v.rdma_resolve_route(id, timeout) as number) !== 0) throw new Error(`${where}: rdma_resolve_route failed (${lastError()})`);
      await routed;
      res = createResources(id, stagingBytes(options));
      const established = awaitCmEvent(channel, id, [constants.RDMA_CM_EVENT_ESTABLISHED], `${where}: connection`, timeout);
      if ((v.rdma_connect(id, connParam(res)) as number) !== 0) throw new Error(`${where}: rdma_connect failed (${lastError()})`);
      const event = await established;
      const hello = decodeHello(event.privateData, where);
      return new VerbsTransport(res, hello, peerOf(id), options, channel);
    } catch (err) {
      if (res) releaseResources(res);
      else v.rdma_destroy_id(id);
      // The steps' messages start with where; the errors name it once.
      const message = (err as Error).message.replace(`${where}: `, '');
      if (err instanceof RefusedByFarEnd) throw new ConnectionRefusedError(where, message);
      throw new TransportError(where, message, { cause: err });
    }
  }

  /**
   * Accepts a connect request from an agent that connects out (the listener hands it here):
   * reads its description, sets up the QP and accepts. On failure the request is rejected.
   */
  static async accept(channel: CmChannel, request: CmEvent, options: VerbsOptions = {}): Promise<VerbsTransport> {
    const v = verbs();
    const id = request.id;
    const where = `rdma://${peerOf(id)}`;
    let hello: Hello;
    try {
      hello = decodeHello(request.privateData, `${where} (incoming)`);
    } catch (err) {
      v.rdma_reject(id, 0, 0);
      v.rdma_destroy_id(id);
      throw new TransportError(where, (err as Error).message, { cause: err });
    }
    let res: Resources | undefined;
    try {
      res = createResources(id, stagingBytes(options));
      const established = awaitCmEvent(channel, id, [constants.RDMA_CM_EVENT_ESTABLISHED], `${where}: accepting`, options.connectTimeoutMs ?? 5000);
      if ((v.rdma_accept(id, connParam(res)) as number) !== 0) throw new Error(`rdma_accept failed (${lastError()})`);
      await established;
      return new VerbsTransport(res, hello, peerOf(id), options, channel);
    } catch (err) {
      if (res) releaseResources(res);
      else {
        v.rdma_reject(id, 0, 0);
        v.rdma_destroy_id(id);
      }
      throw new TransportError(where, (err as Error).message, { cause: err });
    }
  }

  /** Called once when the transport breaks (error completion, disconnect, device removal). */
  onBroken(listener: (err: TransportError) => void): void {
    if (this.broken) listener(this.broken);
    else this.brokenListeners.push(listener);
  }

  get failure(): TransportError | undefined {
    return this.broken;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.usable();
    checkRange(this, offset, length);
    const out = Buffer.allocUnsafe(length);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < length; at += this.blockBytes) {
      const n = Math.min(this.blockBytes, length - at);
      pieces.push(this.withBlock(async (local) => {
        await this.post(constants.IBV_WR_RDMA_READ, local, n, offset + at);
        out.set(readBytes(local, n), at);
      }));
    }
    await settleAll(pieces);
    return out;
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    this.usable();
    checkRange(this, offset, bytes.length);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < bytes.length; at += this.blockBytes) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + this.blockBytes));
      pieces.push(this.withBlock(async (local) => {
        writeBytes(local, piece);
        await this.post(constants.IBV_WR_RDMA_WRITE, local, piece.length, offset + at);
      }));
    }
    await settleAll(pieces);
  }

  async readWord(offset: number): Promise<bigint> {
    this.usable();
    checkWord(this, offset);
    return this.withWordCell(async (local) => {
      await this.post(constants.IBV_WR_RDMA_READ, local, 8, offset);
      return readBytes(local, 8).readBigUInt64LE(0);
    });
  }

  async writeWord(offset: number, value: bigint): Promise<void> {
    this.usable();
    checkWord(this, offset);
    const word = Buffer.alloc(8);
    word.writeBigUInt64LE(value);
    await this.withWordCell(async (local) => {
      writeBytes(local, word);
      await this.post(constants.IBV_WR_RDMA_WRITE, local, 8, offset);
    });
  }

  /** Disconnects and releases every verbs resource; pending operations fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.broken) {
      verbs().rdma_disconnect(this.res.id);
      this.fail('closed', false);
    }
  }

  private usable(): void {
    if (this.broken) throw new TransportError(this.name, this.broken.message.replace(/^transport \S+ \([^)]*\): /, ''), { cause: this.broken });
  }

  private async withBlock<T>(work: (local: number) => Promise<T>): Promise<T> {
    const block = await this.blocks.take();
    try {
      this.usable();
      return await work(this.stagingAddress() + block * this.blockBytes);
    } finally {
      this.blocks.give(block);
    }
  }

  private async withWordCell<T>(work: (local: number) => Promise<T>): Promise<T> {
    const cell = await this.words.take();
    try {
      this.usable();
      return await work(this.stagingAddress() + this.wordArea() + cell * WORD_CELL_BYTES);
    } finally {
      this.words.give(cell);
    }
  }

  private stagingAddress(): number {
    if (!this.res.staging) throw new TransportError(this.name, 'used after its resources were released');
    return this.res.staging.address;
  }

  private wordArea(): number {
    return this.res.staging!.size - WORD_CELLS * WORD_CELL_BYTES;
  }

  /** Posts one signaled RDMA READ/WRITE and waits for its completion. */
  private async post(opcode: number, local: number, length: number, remoteOffset: number): Promise<void> {
    const entry = await this.sendQueue.take();
    try {
      this.usable();
      const what = `RDMA ${opcode === constants.IBV_WR_RDMA_READ ? 'READ' : 'WRITE'} of ${length} bytes at offset ${remoteOffset}`;
      const ctrl = this.res.ctrl.address;
      const wrId = this.nextWrId++;
      const wr = Buffer.alloc(sizes.ibv_send_wr);
      putField(wr, 'ibv_send_wr.wr_id', wrId);
      putField(wr, 'ibv_send_wr.sg_list', ctrl + CTRL_SGE);
      putField(wr, 'ibv_send_wr.num_sge', 1);
      putField(wr, 'ibv_send_wr.opcode', opcode);
      putField(wr, 'ibv_send_wr.send_flags', constants.IBV_SEND_SIGNALED);
      putField(wr, 'ibv_send_wr.wr.rdma.remote_addr', this.remoteBase + BigInt(remoteOffset));
      putField(wr, 'ibv_send_wr.wr.rdma.rkey', this.rkey);
      const sge = Buffer.alloc(sizes.ibv_sge);
      putField(sge, 'ibv_sge.addr', local);
      putField(sge, 'ibv_sge.length', length);
      putField(sge, 'ibv_sge.lkey', this.lkey);
      writeBytes(ctrl + CTRL_WR, wr);
      writeBytes(ctrl + CTRL_SGE, sge);
      // post_send copies the work request into the send queue before it returns.
      const rc = koffi.call(this.postSendFn, verbs().postSendProto, this.res.qp, ctrl + CTRL_WR, ctrl + CTRL_BAD_WR) as number;
      if (rc !== 0) {
        this.fail(`ibv_post_send of ${what} failed (${verbs().strerror(rc) as string})`);
        this.usable();
      }
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (this.pending.has(wrId)) this.fail(`${what} not completed in ${this.opTimeoutMs} ms (the agent's NIC or the network does not answer)`);
        }, this.opTimeoutMs);
        this.pending.set(wrId, { what, timer, resolve, reject });
      });
      this.cqWatch.ref();
      void this.spin();
      await done;
    } finally {
      this.sendQueue.give(entry);
    }
  }

  /** A few event-loop turns of polling right after a post: fast hardware completes in µs. */
  private async spin(): Promise<void> {
    const until = performance.now() + SPIN_MS;
    while (this.pending.size > 0 && !this.broken && performance.now() < until) {
      if (this.drain() > 0) return;
      await yieldImmediate();
    }
  }

  /** Requests an event for the next completion (ops.req_notify_cq, static inline in verbs.h). */
  private armCq(): void {
    const rc = koffi.call(this.reqNotifyFn, verbs().reqNotifyCqProto, this.res.cq, 0) as number;
    if (rc !== 0) this.fail(`ibv_req_notify_cq failed (${verbs().strerror(rc) as string})`);
  }

  /** The completion channel is readable: take and acknowledge its events, re-arm, drain. */
  private onCqEvent(): void {
    if (this.broken) return;
    const v = verbs();
    const out = this.res.ctrl.address + CTRL_CQ_EVENT;
    let events = 0;
    while ((v.ibv_get_cq_event(this.res.compChannel, out, out + 8) as number) === 0) events++;
    if (events > 0) v.ibv_ack_cq_events(this.res.cq, events);
    this.armCq();
    // Completions that arrived before re-arming raise no event: drain after arming.
    this.drain();
  }

  /** Takes every completion from the CQ (ops.poll_cq); returns how many. */
  private drain(): number {
    if (this.broken) return 0;
    const proto = verbs().pollCqProto;
    const wcAddress = this.res.ctrl.address + CTRL_WC;
    let total = 0;
    for (;;) {
      const n = koffi.call(this.pollCqFn, proto, this.res.cq, POLL_BATCH, wcAddress) as number;
      if (n < 0) {
        this.fail(`ibv_poll_cq failed (${n})`);
        return total;
      }
      if (n === 0) break;
      total += n;
      const wcs = readBytes(wcAddress, n * sizes.ibv_wc);
      for (let i = 0; i < n; i++) {
        const base = i * sizes.ibv_wc;
        const wrId = wcs.readBigUInt64LE(base);
        const status = getField(wcs, 'ibv_wc.status', base);
        const entry = this.pending.get(wrId);
        if (!entry) continue;
        this.pending.delete(wrId);
        clearTimeout(entry.timer);
        if (status === constants.IBV_WC_SUCCESS) {
          entry.resolve();
        } else {
          const text = verbs().ibv_wc_status_str(status) as string;
          this.fail(`${entry.what} completed with '${text}' (status ${status}, vendor error 0x${getField(wcs, 'ibv_wc.vendor_err', base).toString(16)})`);
          // Already out of `pending`, so fail() did not settle this operation: it fails with the cause.
          entry.reject(this.broken!);
          return total;
        }
      }
    }
    if (this.pending.size === 0) this.cqWatch.unref();
    return total;
  }

  private onCmEvent(event: CmEvent): void {
    if (event.type === constants.RDMA_CM_EVENT_DISCONNECTED) {
      this.fail('connection dropped (rdma_cm DISCONNECTED: the agent, its NIC or the network is gone)');
    } else if (event.type === constants.RDMA_CM_EVENT_DEVICE_REMOVAL) {
      this.fail('the RDMA device was removed (rdma_cm DEVICE_REMOVAL)');
    } else if (event.type !== constants.RDMA_CM_EVENT_TIMEWAIT_EXIT) {
      process.emitWarning(`${this.name}: unexpected rdma_cm event ${cmEventName(event.type)}`);
    }
  }

  /** Breaks the transport for good: pending operations fail, resources are released. */
  private fail(reason: string, notify = true): void {
    if (this.broken) return;
    this.broken = new TransportError(this.name, reason);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new TransportError(this.name, `${entry.what}: ${reason}`, { cause: this.broken }));
    }
    this.pending.clear();
    this.channel.unregister(this.res.id);
    this.cqWatch?.close();
    // Blocks and word cells are still referenced by operations unwinding now: release the
    // native memory once they have seen the error.
    const res = this.res;
    setImmediate(() => releaseResources(res));
    if (notify) for (const listener of this.brokenListeners.splice(0)) listener(this.broken);
  }
}

function stagingBytes(options: VerbsOptions): number {
  return (options.blockBytes ?? 1 << 20) * (options.blocks ?? 8) + WORD_CELLS * WORD_CELL_BYTES;
}

function peerOf(id: number): string {
  return formatSockaddr(readBytes(id + fields['rdma_cm_id.route.addr.dst_storage'].offset, fields['rdma_cm_id.route.addr.dst_storage'].size));
}

async function settleAll(pieces: Promise<void>[]): Promise<void> {
  const settled = await Promise.allSettled(pieces);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}
