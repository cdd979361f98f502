// The relay (`grass monitor`): the long-lived Node process that holds the RDMA sessions of many targets
// (DESIGN §3.4). Agents connect to it at start (--listen) or it connects to listening agents
// (--connect, or a client's `hold` request; shm: agents on this host are held the same way;
// both opened by the session layer's openLiveTransport, the one direct path);
// it polls each session with heartbeats, keeps the last good data, classifies
// failures (no reply while RDMA works: monitor dead; RDMA error or dropped connection: GPU/NIC
// or network dead) and serves the CLI and the extension over a local socket (./wire). Clients
// come and go; sessions stay.
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatTargetAddress, parseTargetAddress, type TargetAddress } from '../rdma/address';
import { GrassClient } from '../rdma/client';
import { readVersioned, Transport, TransportError } from '../rdma/transport';
import { VerbsListener } from '../rdma/verbs/listener';
import { VerbsOptions, VerbsTransport } from '../rdma/verbs/transport';
import { classifyFailure, relayStateOf } from '../session/failure';
import { openLiveTransport } from '../session/open-target';
import { RelayMemory, RelayReply, RelayRequest, TargetStatus } from './wire';

export interface RelayOptions {
  socketPath: string;
  key: Uint8Array;
  /** rdma://HOST[:PORT] to accept agents on. */
  listen?: string;
  /** Listening agents to connect to (rdma://), or agents' shared memory on this host (shm:). */
  connect?: string[];
  pollMs?: number;
  /** Request timeout of the relay's own heartbeats, and of each RDMA operation. */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Called on a client's stop request (`grass monitor stop`); without it, stop is refused. */
  onStopRequest?: () => void;
}

/** Slot claims among the relay's own poller and its clients, per session. */
class Claims {
  private readonly owners = new Map<number, object>();
  tryClaim(offset: number, owner: object): boolean {
    const held = this.owners.get(offset);
    if (held && held !== owner) return false;
    this.owners.set(offset, owner);
    return true;
  }
  /** True when the owner held it. */
  release(offset: number, owner: object): boolean {
    if (this.owners.get(offset) !== owner) return false;
    this.owners.delete(offset);
    return true;
  }
  /** The offsets the owner held. */
  releaseAll(owner: object): number[] {
    const released: number[] = [];
    for (const [offset, held] of this.owners) {
      if (held === owner) {
        this.owners.delete(offset);
        released.push(offset);
      }
    }
    return released;
  }
}

/** The session's transport as one claimant sees it (the poller, or one socket client). */
class ClaimingTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly claims: Claims,
    private readonly owner: object,
  ) {}
  get name(): string { return this.inner.name; }
  get size(): number { return this.inner.size; }
  read(offset: number, length: number) { return this.inner.read(offset, length); }
  write(offset: number, bytes: Uint8Array) { return this.inner.write(offset, bytes); }
  readWord(offset: number) { return this.inner.readWord(offset); }
  writeWord(offset: number, value: bigint) { return this.inner.writeWord(offset, value); }
  /**
   * Claimed among the relay's own users, then through the transport where it can claim
   * (shm: an OFD lock, so that other processes on the same buffer, such as the CLI, keep off
   * the slot; without it their requests collided with the relay's heartbeats).
   */
  async tryClaim(offset: number) {
    if (!this.claims.tryClaim(offset, this.owner)) return false;
    if (this.inner.tryClaim && !(await this.inner.tryClaim(offset))) {
      this.claims.release(offset, this.owner);
      return false;
    }
    return true;
  }
  async releaseClaim(offset: number) {
    if (this.claims.release(offset, this.owner)) await this.inner.releaseClaim?.(offset);
  }
  /** The session outlives its users: closing a view releases its claims only. */
  async close() {
    for (const offset of this.claims.releaseAll(this.owner)) await this.inner.releaseClaim?.(offset).catch(() => undefined);
  }
}

const PROCESS_COUNT_EVERY = 5;

/** Checks `key` against the agent with one authenticated request (a fresh client's describe). */
async function verifyKey(transport: Transport, claims: Claims, key: Uint8Array, timeoutMs: number): Promise<void> {
  const probe = await GrassClient.attach(new ClaimingTransport(transport, claims, {}), key, { timeoutMs });
  try {
    await probe.describe();
  } finally {
    await probe.close(); // releases the probe's claims only
  }
}

/** How a held session is named: by the agent (RDMA hello) or by its address (shm). */
interface SessionIdentity {
  name: string;
  address: string;
  /** What `attach` also accepts: the RDMA peer's host, or the shm path. */
  host: string;
}

function verbsIdentity(transport: VerbsTransport): SessionIdentity {
  return { name: transport.hello.name || transport.peer, address: `rdma://${transport.peer}`, host: transport.peer.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') };
}

class Session {
  readonly claims = new Claims();
  readonly status: TargetStatus;
  readonly host: string;
  private client?: GrassClient;
  private stopped = false;
  private polls = 0;

  constructor(
    readonly transport: Transport,
    identity: SessionIdentity,
    direction: TargetStatus['direction'],
    private readonly relay: RelayServer,
    /** What the relay's own heartbeats are signed with: the target's key from a hold, else --key-file's. */
    private key: Uint8Array,
  ) {
    this.host = identity.host;
    this.status = {
      name: identity.name,
      address: identity.address,
      direction,
      state: 'up',
      since: new Date().toISOString(),
      bufferBytes: transport.size,
      last: {},
    };
    if (transport instanceof VerbsTransport) transport.onBroken((err) => this.linkDead(err.message));
  }

  /** Signs the heartbeats with `key` from now on, once the agent accepted it. */
  async useKey(key: Uint8Array): Promise<void> {
    if (Buffer.from(key).equals(Buffer.from(this.key))) return;
    await verifyKey(this.transport, this.claims, key, this.relay.settings.timeoutMs);
    this.key = key;
    this.client = undefined; // the next poll attaches with it
  }

  /** Heartbeats every pollMs until the link dies (a dead monitor loop may come back). */
  async poll(): Promise<void> {
    const { timeoutMs } = this.relay.settings;
    while (!this.stopped && this.status.state !== 'gpu-nic-dead') {
      try {
        this.client ??= await GrassClient.attach(new ClaimingTransport(this.transport, this.claims, this), this.key, { timeoutMs });
        const hb = await this.client.heartbeat();
        if (this.status.state !== 'up') this.relay.log(`${this.status.name}: monitor answering again`);
        this.status.state = 'up';
        this.status.failure = undefined;
        this.status.failedAt = undefined;
        const last = this.status.last;
        last.heartbeatUs = Number(hb.roundTripNs) / 1000;
        last.livenessCounter = hb.liveness.counter.toString();
        if (last.release === undefined) {
          const d = await this.client.describe();
          last.release = d.release;
          last.cpus = d.cpuCount;
        }
        if (this.polls++ % PROCESS_COUNT_EVERY === 0) last.processes = await this.client.processCount();
        last.at = new Date().toISOString();
      } catch (err) {
        this.classify(err);
      }
      await sleep(this.relay.settings.pollMs);
    }
  }

  private classify(err: unknown): void {
    const failure = classifyFailure(err);
    const state = relayStateOf(failure.state);
    if (state === 'gpu-nic-dead') {
      this.linkDead(failure.message);
    } else if (state === 'monitor-dead') {
      if (this.status.state === 'up') {
        this.status.state = 'monitor-dead';
        this.status.failure = `monitor dead: no reply while RDMA works (${failure.message})`;
        this.status.failedAt = new Date().toISOString();
        this.relay.log(`${this.status.name}: ${this.status.failure}`);
      }
    } else {
      this.relay.log(`${this.status.name}: poll failed: ${failure.message}`);
    }
  }

  linkDead(reason: string): void {
    if (this.status.state === 'gpu-nic-dead') return;
    this.status.state = 'gpu-nic-dead';
    this.status.failure =
      `GPU/NIC or network dead: ${reason}. The session cannot be re-established while the target's kernel is dead ` +
      '(connection set-up needs it); the last good data is kept.';
    this.status.failedAt = new Date().toISOString();
    this.relay.log(`${this.status.name}: ${this.status.failure}`);
    void this.transport.close();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.transport.close();
  }
}

export class RelayServer {
  private readonly sessions: Session[] = [];
  /** rdma:// targets the relay keeps connecting to. */
  private readonly connecting = new Set<string>();
  private listener?: VerbsListener;
  private server?: net.Server;
  private closed = false;
  readonly settings: { key: Uint8Array; pollMs: number; timeoutMs: number; verbs: VerbsOptions };

  private constructor(private readonly options: RelayOptions) {
    const timeoutMs = options.timeoutMs ?? 2000;
    this.settings = { key: options.key, pollMs: options.pollMs ?? 1000, timeoutMs, verbs: { opTimeoutMs: timeoutMs } };
  }

  log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`grass monitor: ${l}\n`)))(line);
  }

  static async start(options: RelayOptions): Promise<RelayServer> {
    const m = new RelayServer(options);
    await m.serveSocket();
    try {
      if (options.listen) {
        const a = parseTargetAddress(options.listen);
        if (a.kind !== 'rdma') throw new Error(`--listen ${options.listen}: expected rdma://HOST[:PORT]`);
        await m.listen(a.host, a.port);
      }
      for (const target of options.connect ?? []) await m.hold(target, { wait: false });
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  /** Accepts agents on host:port; after the device goes away, listens again when it is back. */
  private async listen(host: string, port: number): Promise<void> {
    const relisten = async (why: string) => {
      this.listener = undefined;
      this.log(`${why}; listening again when the device is back`);
      while (!this.closed && !this.listener) {
        await sleep(2000);
        await this.listen(host, port).catch(() => undefined); // the device is not back yet
      }
    };
    this.listener = await VerbsListener.listen(host, port, this.settings.verbs, (t) => this.adopt(t, verbsIdentity(t), 'agent-connected'),
      (err) => this.log(`refused a connection: ${err.message}`), (err) => void relisten(err.message));
    this.log(`accepting agents on ${this.listener.address}`);
  }

  targets(): TargetStatus[] {
    return this.sessions.map((s) => s.status);
  }

  /**
   * Starts holding a target (`--connect`, or a client's `hold`): rdma:// connects to a listening
   * agent and keeps reconnecting after a loss (waitMs: how long to wait for the first session);
   * shm: opens an agent's shared memory on this host. With `key` (a client's hold), the agent
   * must accept it (one authenticated request) before the session is held or its key changed;
   * a wrong key is refused, so it never takes over a session's heartbeats.
   */
  async hold(target: string, options: { wait?: boolean; waitMs?: number; key?: Uint8Array } = {}): Promise<TargetStatus | undefined> {
    const { wait = true, waitMs = 10_000, key } = options;
    const a = parseTargetAddress(target);
    if (a.kind === 'shm') {
      const held = this.sessions.find((s) => s.status.address === target);
      if (held) {
        if (key) await held.useKey(key);
        return held.status;
      }
      const transport = await openLiveTransport(a);
      try {
        if (key) await verifyKey(transport, new Claims(), key, this.settings.timeoutMs);
      } catch (err) {
        await transport.close();
        throw err;
      }
      return this.adopt(transport, { name: target, address: target, host: a.path }, 'monitor-connected', key).status;
    }
    if (a.kind !== 'rdma') throw new Error(`cannot hold ${target}: expected rdma://HOST[:PORT] or shm:PATH`);
    const find = () => this.sessions.find((s) => s.host === a.host && s.status.state !== 'gpu-nic-dead');
    // An agent that connected to --listen is held already: nothing to connect to.
    if (!find() && !this.connecting.has(target)) {
      this.connecting.add(target);
      void this.keepConnected(a);
    }
    const deadline = Date.now() + waitMs;
    while (wait && !find() && Date.now() < deadline) await sleep(100);
    const held = find();
    if (held && key) await held.useKey(key);
    return held?.status;
  }

  private adopt(transport: Transport, identity: SessionIdentity, direction: TargetStatus['direction'], key = this.settings.key): Session {
    const session = new Session(transport, identity, direction, this, key);
    // An agent that restarted replaces its old session (same name).
    const old = this.sessions.findIndex((s) => s.status.name === session.status.name);
    if (old >= 0) void this.sessions.splice(old, 1)[0].stop();
    this.sessions.push(session);
    this.log(`${session.status.name}: session up (${transport.name}, ${transport.size}-byte buffer)`);
    void session.poll();
    return session;
  }

  /** Connects to a listening agent, and again whenever the session is lost. */
  private async keepConnected(address: Extract<TargetAddress, { kind: 'rdma' }>): Promise<void> {
    const target = formatTargetAddress(address);
    let reported = false;
    let current: Session | undefined;
    while (!this.closed) {
      if (!current || current.status.state === 'gpu-nic-dead' || !this.sessions.includes(current)) {
        try {
          const transport = await openLiveTransport(address, this.settings.verbs);
          current = this.adopt(transport, verbsIdentity(transport), 'monitor-connected');
          reported = false;
        } catch (err) {
          if (!reported) this.log(`cannot connect to ${target}: ${(err as Error).message} (retrying)`);
          reported = true;
        }
      }
      await sleep(Math.max(this.settings.pollMs, 1000));
    }
  }

  private find(target: string): Session {
    const name = target.startsWith('rdma://') ? parseTargetAddressHost(target) : target;
    const matches = this.sessions.filter((s) => s.status.name === name || s.host === name);
    if (matches.length === 1) return matches[0];
    const held = this.sessions.map((s) => `${s.status.name} (${s.status.address})`).join(', ') || 'none';
    throw new Error(matches.length ? `'${target}' names ${matches.length} targets; use the name` : `the monitor holds no target '${target}' (held: ${held})`);
  }

  private async serveSocket(): Promise<void> {
    const path = this.options.socketPath;
    if (fs.existsSync(path)) {
      // A socket nobody answers on is left over from a relay that died: take its place.
      const live = await new Promise<boolean>((resolve) => {
        const probe = net.connect(path, () => { probe.destroy(); resolve(true); });
        probe.on('error', () => resolve(false));
      });
      if (live) throw new Error(`a monitor already serves ${path}`);
      fs.rmSync(path, { force: true });
    }
    this.server = net.createServer((socket) => this.serveClient(socket));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(path, () => resolve());
    });
    fs.chmodSync(path, 0o600);
  }

  private serveClient(socket: net.Socket): void {
    const owner = {};
    let session: Session | undefined;
    let pending = '';
    const send = (reply: RelayReply) => socket.write(JSON.stringify(reply) + '\n');
    const handle = async (req: RelayRequest): Promise<unknown> => {
      if (req.op === 'targets') return this.targets();
      if (req.op === 'memory') return relayMemory();
      if (req.op === 'stop') {
        const stop = this.options.onStopRequest;
        if (!stop) throw new Error('this monitor does not take stop requests');
        this.log('stop requested by a client');
        setImmediate(stop);
        return { pid: process.pid };
      }
      if (req.op === 'hold') {
        const status = await this.hold(req.target, { key: req.key === undefined ? undefined : Buffer.from(req.key, 'hex') });
        if (!status) throw new Error(`no session to ${req.target} yet (the monitor keeps trying)`);
        return status;
      }
      if (req.op === 'attach') {
        session = this.find(req.target);
        if (session.status.state === 'gpu-nic-dead') throw new TransportError(session.transport.name, session.status.failure ?? 'session lost');
        return { name: session.status.name, size: session.transport.size, transport: session.transport.name };
      }
      if (!session) throw new Error(`${req.op} before attach`);
      const t = session.transport;
      switch (req.op) {
        case 'read': return Buffer.from(await t.read(req.offset, req.length)).toString('base64');
        case 'write': return t.write(req.offset, Buffer.from(req.data, 'base64'));
        case 'readWord': return (await t.readWord(req.offset)).toString();
        case 'readVersioned': {
          const read = await readVersioned(t, req.versionOffset, req.offset, req.length);
          return { before: read.before.toString(), bytes: Buffer.from(read.bytes).toString('base64'), after: read.after.toString() };
        }
        case 'writeWord': return t.writeWord(req.offset, BigInt(req.value));
        case 'claim': return session.claims.tryClaim(req.offset, owner);
        case 'release': return session.claims.release(req.offset, owner);
      }
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let req: RelayRequest;
        try {
          req = JSON.parse(line) as RelayRequest;
        } catch {
          send({ id: -1, ok: false, error: { kind: 'usage', message: 'not JSON' } });
          continue;
        }
        handle(req).then(
          (result) => send({ id: req.id, ok: true, result }),
          (err: Error) => send({ id: req.id, ok: false, error: { kind: err instanceof TransportError ? 'transport' : 'usage', message: err.message } }),
        );
      }
    });
    const cleanup = () => session?.claims.releaseAll(owner);
    socket.on('close', cleanup);
    socket.on('error', cleanup);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listener?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    fs.rmSync(this.options.socketPath, { force: true });
    await Promise.all(this.sessions.map((s) => s.stop()));
  }
}

function parseTargetAddressHost(target: string): string {
  const a = parseTargetAddress(target);
  return a.kind === 'rdma' ? a.host : target;
}

/** The relay's own memory, so a soak can tell a leak from V8's heap growing (gc: node --expose-gc). */
function relayMemory(): RelayMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  return { pid: process.pid, collected: gc !== undefined, ...process.memoryUsage() };
}
