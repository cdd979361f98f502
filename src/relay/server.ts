// The relay (`grass monitor`): the long-lived Node process that holds the RDMA sessions of many targets
// (DESIGN §3.4). Agents connect to it at start (--listen) or it connects to listening agents
// (--connect, a targets file's entries, or a client's `hold` request; shm: agents on this host are
// held the same way; all opened by the session layer's openLiveTransport, the one direct path).
// It sweeps a heartbeat to every held target at once each poll period, and now and then reads
// each one's detections and metrics window (the agent's background area, no request) and its
// kernel log (a panic); it keeps the last good data, classifies failures (no reply while RDMA
// works: monitor dead; RDMA error or dropped connection: GPU/NIC or network dead), serves the CLI
// and the extension over a local socket (./wire) and, with --metrics-listen, Prometheus
// (./metrics). Clients come and go; sessions stay.
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatTargetAddress, parseTargetAddress, type TargetAddress } from '../rdma/address';
import { GrassClient } from '../rdma/client';
import { readVersioned, Transport, TransportError } from '../rdma/transport';
import { VerbsListener } from '../rdma/verbs/listener';
import { VerbsOptions, VerbsTransport } from '../rdma/verbs/transport';
import { readBackground, type Detection, type HistoryPoint } from '../detect/detections';
import { extractFaultReports } from '../kernel/log/faults';
import { KernelLogFollower } from '../kernel/log/follow';
import { KernelLogReader } from '../kernel/log/ringbuffer';
import { classifyFailure, relayStateOf } from '../session/failure';
import { openLiveTransport } from '../session/open-target';
import { parseListenAddress, RelayMetrics } from './metrics';
import { readTargetsFile, type FileTarget } from './targets-file';
import { HeldDetection, HeldWindow, RelayMemory, RelayReply, RelayRequest, SweepStats, TargetStatus } from './wire';

export interface RelayOptions {
  socketPath: string;
  /** What targets are signed with unless they name their own key (a targets file's keyFile, a client's hold). */
  key?: Uint8Array;
  /** rdma://HOST[:PORT] to accept agents on. */
  listen?: string;
  /** Listening agents to connect to (rdma://), or agents' shared memory on this host (shm:). */
  connect?: string[];
  /** The heartbeat sweep's period. */
  pollMs?: number;
  /** Request timeout of the relay's own heartbeats, and of each RDMA operation. */
  timeoutMs?: number;
  /** How often each target's background area, process count and kernel log are read. */
  observeMs?: number;
  /** HOST:PORT to serve Prometheus's /metrics on. */
  metricsListen?: string;
  /** A file of targets to hold (./targets-file), read again when it changes. */
  targetsFile?: string;
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

/**
 * Checks `key` against the agent with one authenticated request: a heartbeat (the agent checks
 * every request's HMAC, heartbeats included), through a client of its own.
 */
async function verifyKey(transport: Transport, claims: Claims, key: Uint8Array, timeoutMs: number): Promise<void> {
  const probe = await GrassClient.attach(new ClaimingTransport(transport, claims, {}), key, { timeoutMs });
  try {
    await probe.heartbeatRoundTrip();
  } finally {
    await probe.close(); // releases the probe's claims only
  }
}

/** Sweeps the `sweeps` request reports. */
const SWEEPS_KEPT = 256;
/** How often the targets file's stat is polled, and how often an entry not held yet is tried again. */
const TARGETS_FILE_POLL_MS = 1000;
const TARGETS_FILE_RETRY_MS = 2000;

/** Whether a file entry is the one held (same address, key and options). */
function sameFileTarget(a: FileTarget, b: FileTarget): boolean {
  return a.address === b.address && a.keyFile === b.keyFile && Buffer.from(a.key!).equals(Buffer.from(b.key!)) && JSON.stringify(a.options) === JSON.stringify(b.options);
}

/** At most this many target descriptions fetched at once: each holds a target's BTF and symbols (megabytes) while parsed. */
const DESCRIBE_CONCURRENCY = 2;

/** A counting gate: at most `free` callers inside at once, the others wait in order. */
class Gate {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    while (this.free === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.free--;
    try {
      return await f();
    } finally {
      this.free++;
      this.waiting.shift()?.();
    }
  }
}

/** How often a session is beaten, and how long a request may take. */
interface Pacing {
  heartbeatIntervalMs: number;
  timeoutMs: number;
}

function heldDetection(d: Detection): HeldDetection {
  const c = d.culprits[0];
  return { detector: d.detector, active: d.active, ...(d.hangClass ? { hangClass: d.hangClass } : {}), ...(c ? { culprit: { pid: c.pid, comm: c.comm, role: c.role } } : {}) };
}

function heldWindow(p: HistoryPoint): HeldWindow {
  return {
    windowSeconds: p.windowSeconds, usr: p.usr, sys: p.sys, iowait: p.iowait, idle: p.idle, contextSwitchesPerSecond: p.contextSwitchesPerSecond,
    pswpinPerSecond: p.pswpinPerSecond, pswpoutPerSecond: p.pswpoutPerSecond, memFreeBytes: p.memFreeMiB * 2 ** 20, run: p.run, blk: p.blk, util: p.util,
  };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

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
  /** A heartbeat of this session is in flight: a sweep sends no second one. */
  private beating = false;
  private lastBeatAt = -Infinity;
  private observing = false;
  private lastObservedAt = -Infinity;
  private log?: KernelLogFollower;
  /** What the last observation could not read (logged when it changes, not at every observation). */
  private observeProblem?: string;

  constructor(
    readonly transport: Transport,
    identity: SessionIdentity,
    direction: TargetStatus['direction'],
    private readonly relay: RelayServer,
    /** What the relay's own requests are signed with: the target's key from a hold or a targets file, else --key-file's. */
    private key: Uint8Array,
    private readonly pacing: Pacing,
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

  /** Signs the requests with `key` from now on, once the agent accepted it. */
  async useKey(key: Uint8Array): Promise<void> {
    if (Buffer.from(key).equals(Buffer.from(this.key))) return;
    await verifyKey(this.transport, this.claims, key, this.pacing.timeoutMs);
    this.key = key;
    this.client = undefined; // the next heartbeat attaches with it
    this.log = undefined; // it read through the old client
  }

  /** Whether a sweep starting at `now` (ms) sends this session a heartbeat. */
  due(now: number, sweepMs: number): boolean {
    if (this.stopped || this.beating || this.status.state === 'gpu-nic-dead') return false;
    // Half a sweep's slack: a target beaten every sweep is not skipped for a sweep that starts a little early.
    return now - this.lastBeatAt >= this.pacing.heartbeatIntervalMs - sweepMs / 2;
  }

  /** One heartbeat (part of a sweep); then, when one is due, an observation, not awaited. */
  async beat(sweepStartedAt: number): Promise<void> {
    this.beating = true;
    this.lastBeatAt = sweepStartedAt;
    const metrics = this.relay.metrics;
    let answered = false;
    try {
      this.client ??= await GrassClient.attach(new ClaimingTransport(this.transport, this.claims, this), this.key, { timeoutMs: this.pacing.timeoutMs });
      const hb = await this.client.heartbeat();
      if (this.stopped) return;
      if (this.status.state !== 'up') this.relay.log(`${this.status.name}: monitor answering again`);
      this.status.state = 'up';
      this.status.failure = undefined;
      this.status.failedAt = undefined;
      const last = this.status.last;
      last.heartbeatUs = Number(hb.roundTripNs) / 1000;
      last.livenessCounter = hb.liveness.counter.toString();
      last.at = new Date().toISOString();
      metrics?.heartbeat(this.status.name, Number(hb.roundTripNs) / 1e9);
      answered = true;
    } catch (err) {
      if (this.stopped) return;
      metrics?.heartbeatFailed(this.status.name);
      this.classify(err);
    } finally {
      this.beating = false;
    }
    if (answered && this.client && !this.observing && Date.now() - this.lastObservedAt >= this.relay.settings.observeMs) void this.observe(this.client);
  }

  /**
   * Reads what the fleet's metrics show beyond the heartbeat: the background area (detections
   * and the latest metrics window, with no request), the process count, and the kernel log's new
   * records (a panic report). Each part on its own: what fails keeps its last good value.
   */
  private async observe(client: GrassClient): Promise<void> {
    this.observing = true;
    const problems: string[] = [];
    const last = this.status.last;
    try {
      try {
        const area = await readBackground(client, this.pacing.timeoutMs);
        last.detections = area.detections.map(heldDetection);
        const latest = area.history[area.history.length - 1];
        if (latest) last.window = heldWindow(latest);
      } catch (err) {
        problems.push(`background area: ${message(err)}`);
      }
      try {
        last.processes = await client.processCount();
      } catch (err) {
        problems.push(`process count: ${message(err)}`);
      }
      try {
        this.log ??= await this.openLog(client);
        const update = await this.log.poll();
        // A panic stays: the kernel that printed it does not come back (a rebooted target's agent is a new session).
        const panic = extractFaultReports(update.records).find((r) => r.kind === 'panic');
        if (panic) {
          if (!last.kernelPanicked) this.relay.log(`${this.status.name}: the kernel's log reports a panic: ${panic.message.split('\n')[0]}`);
          last.kernelPanicked = true;
          last.panicMessage = panic.message.split('\n')[0];
        } else {
          last.kernelPanicked ??= false;
        }
      } catch (err) {
        problems.push(`kernel log: ${message(err)}`);
      }
      if (problems.length < 3) last.observedAt = new Date().toISOString();
      const problem = problems.join('; ') || undefined;
      if (problem !== this.observeProblem) this.relay.log(`${this.status.name}: ${problem ?? 'detections, process count and kernel log read again'}`);
      this.observeProblem = problem;
    } finally {
      this.lastObservedAt = Date.now();
      this.observing = false;
    }
  }

  /**
   * The kernel log's follower. The description (BTF, symbols, VMCOREINFO) is fetched by a client
   * of its own and dropped once the log's layout is resolved: kept by the heartbeat's client it
   * would cost megabytes per target, for ever.
   */
  private async openLog(client: GrassClient): Promise<KernelLogFollower> {
    const description = await this.relay.describeGate.run(async () => {
      const probe = await GrassClient.attach(new ClaimingTransport(this.transport, this.claims, {}), this.key, { timeoutMs: this.pacing.timeoutMs });
      try {
        return await probe.describe();
      } finally {
        await probe.close();
      }
    });
    this.status.last.release = description.release;
    this.status.last.cpus = description.cpuCount;
    let reader: KernelLogReader;
    try {
      // VMCOREINFO lays the ring out; the BTF adds only the records' levels, which the panic check
      // does not read, and parsing it for each of a fleet's targets costs more than it gives.
      reader = new KernelLogReader(client, { ...description, btf: new Uint8Array(0) });
    } catch {
      reader = new KernelLogReader(client, description);
    }
    return new KernelLogFollower(reader);
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
      this.relay.log(`${this.status.name}: heartbeat failed: ${failure.message}`);
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
  /** The targets file's entries held, by name; `stop` ends the loop that keeps one held. */
  private readonly fileTargets = new Map<string, { target: FileTarget; keeper: { stopped: boolean } }>();
  private fileInvalid = 0;
  private fileWatched = false;
  private listener?: VerbsListener;
  private server?: net.Server;
  private closed = false;
  /** Recent sweeps, newest last (the `sweeps` request; the bench reads it). */
  private readonly sweeps: SweepStats['recent'] = [];
  readonly metrics?: RelayMetrics;
  /** Where /metrics is served (host:port as bound), with --metrics-listen. */
  metricsAddress?: string;
  readonly describeGate = new Gate(DESCRIBE_CONCURRENCY);
  readonly settings: { key?: Uint8Array; pollMs: number; timeoutMs: number; observeMs: number; verbs: VerbsOptions };

  private constructor(private readonly options: RelayOptions) {
    const timeoutMs = options.timeoutMs ?? 2000;
    const pollMs = options.pollMs ?? 1000;
    this.settings = { key: options.key, pollMs, timeoutMs, observeMs: options.observeMs ?? 5000, verbs: { opTimeoutMs: timeoutMs } };
    if (options.metricsListen) {
      this.metrics = new RelayMetrics({
        targets: () => this.targets(),
        targetsFile: () => (options.targetsFile ? { held: this.fileTargets.size, invalid: this.fileInvalid } : undefined),
      });
    }
  }

  log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`grass monitor: ${l}\n`)))(line);
  }

  static async start(options: RelayOptions): Promise<RelayServer> {
    const m = new RelayServer(options);
    await m.serveSocket();
    try {
      if (options.metricsListen) {
        const { host, port } = parseListenAddress(options.metricsListen);
        m.metricsAddress = await m.metrics!.listen(host, port);
      }
      if (options.listen) {
        const a = parseTargetAddress(options.listen);
        if (a.kind !== 'rdma') throw new Error(`--listen ${options.listen}: expected rdma://HOST[:PORT]`);
        await m.listen(a.host, a.port);
      }
      for (const target of options.connect ?? []) await m.hold(target, { wait: false });
      if (options.targetsFile) m.watchTargetsFile(options.targetsFile);
    } catch (err) {
      await m.close();
      throw err;
    }
    void m.sweepLoop();
    return m;
  }

  /**
   * Every pollMs, a heartbeat to every due target at once (a target whose last one is still in
   * flight is left to it). A sweep's time runs until each of its heartbeats settled: answered,
   * failed, or timed out (a target that stopped answering makes its sweeps as long as the
   * timeout; the next sweep starts on time all the same).
   */
  private async sweepLoop(): Promise<void> {
    while (!this.closed) {
      const started = Date.now();
      const due = this.sessions.filter((s) => s.due(started, this.settings.pollMs));
      if (due.length > 0) {
        const t0 = process.hrtime.bigint();
        void Promise.all(due.map((s) => s.beat(started))).then(() => {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          this.sweeps.push({ at: new Date(started).toISOString(), seconds, targets: due.length });
          if (this.sweeps.length > SWEEPS_KEPT) this.sweeps.shift();
          this.metrics?.sweep(seconds, due.length);
        });
      }
      await sleep(Math.max(1, this.settings.pollMs - (Date.now() - started)));
    }
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

  /** The key a target is signed with when it names none. */
  private defaultKey(target: string): Uint8Array {
    if (!this.settings.key) throw new Error(`no key for ${target}: the monitor was started without --key-file (give the target's own key)`);
    return this.settings.key;
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
      const sessionKey = key ?? this.defaultKey(target);
      const transport = await openLiveTransport(a);
      try {
        if (key) await verifyKey(transport, new Claims(), key, this.settings.timeoutMs);
      } catch (err) {
        await transport.close();
        throw err;
      }
      return this.adopt(transport, { name: target, address: target, host: a.path }, 'monitor-connected', sessionKey).status;
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

  private adopt(transport: Transport, identity: SessionIdentity, direction: TargetStatus['direction'], key?: Uint8Array, pacing?: Pacing): Session {
    const session = new Session(transport, identity, direction, this, key ?? this.defaultKey(identity.address), pacing ?? { heartbeatIntervalMs: this.settings.pollMs, timeoutMs: this.settings.timeoutMs });
    // An agent that restarted replaces its old session (same name).
    const old = this.sessions.findIndex((s) => s.status.name === session.status.name);
    if (old >= 0) void this.sessions.splice(old, 1)[0].stop();
    this.sessions.push(session);
    this.log(`${session.status.name}: session up (${transport.name}, ${transport.size}-byte buffer)`);
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

  /** Reads the targets file now and whenever it changes (its stat polled once a second, so an editor's rename-over is seen too). */
  private watchTargetsFile(file: string): void {
    this.loadTargetsFile(file);
    this.fileWatched = true;
    fs.watchFile(file, { interval: TARGETS_FILE_POLL_MS }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) this.loadTargetsFile(file);
    });
  }

  /**
   * Holds what the file names: new entries are held, entries gone are dropped, changed ones
   * (address, key, options) are held anew. A file that cannot be read or parsed changes nothing;
   * a bad entry is reported and left out, except that a target already held under its name stays
   * held as it was (a slip while editing does not drop a target).
   */
  private loadTargetsFile(file: string): void {
    let contents: ReturnType<typeof readTargetsFile>;
    try {
      contents = readTargetsFile(file, this.settings.key);
    } catch (err) {
      this.metrics?.targetsFileRead(false);
      this.log(`${message(err)}; the ${this.fileTargets.size} targets held from it are kept`);
      return;
    }
    this.metrics?.targetsFileRead(true);
    const keptByName = new Set<string>();
    for (const e of contents.errors) {
      const kept = e.name !== undefined && this.fileTargets.has(e.name);
      if (kept) keptByName.add(e.name!);
      this.log(`targets file ${file}: ${e.message}${kept ? ` (still holding '${e.name}' as it was)` : ' (left out)'}`);
    }
    for (const name of [...this.fileTargets.keys()]) {
      if (!keptByName.has(name) && !contents.targets.some((t) => t.name === name)) this.dropFileTarget(name, 'no longer in the targets file');
    }
    for (const t of contents.targets) {
      const held = this.fileTargets.get(t.name);
      if (held && sameFileTarget(held.target, t)) continue;
      if (held) this.dropFileTarget(t.name, 'changed in the targets file');
      this.holdFileTarget(t);
    }
    this.fileInvalid = contents.errors.length;
    this.log(`targets file ${file}: ${this.fileTargets.size} targets held${contents.errors.length ? `, ${contents.errors.length} entries invalid` : ''}`);
  }

  private holdFileTarget(target: FileTarget): void {
    const keeper = { stopped: false };
    this.fileTargets.set(target.name, { target, keeper });
    void this.keepHeld(target, keeper);
  }

  private dropFileTarget(name: string, why: string): void {
    const held = this.fileTargets.get(name);
    if (!held) return;
    held.keeper.stopped = true;
    this.fileTargets.delete(name);
    const i = this.sessions.findIndex((s) => s.status.name === name);
    if (i >= 0) void this.sessions.splice(i, 1)[0].stop();
    this.metrics?.forget(name);
    this.log(`${name}: dropped (${why})`);
  }

  /**
   * Keeps a targets file's entry held under its name: opens its transport, checks its key with
   * one heartbeat, and does so again whenever the session is lost (an agent restarted on the same
   * shm path, an RDMA agent back), until the entry goes.
   */
  private async keepHeld(target: FileTarget, keeper: { stopped: boolean }): Promise<void> {
    const address = target.parsed;
    if (address.kind !== 'shm' && address.kind !== 'rdma') return; // readTargetsFile refuses the others
    const pacing: Pacing = { heartbeatIntervalMs: target.options.heartbeatIntervalMs, timeoutMs: target.options.requestTimeoutMs };
    let reported: string | undefined;
    let current: Session | undefined;
    while (!this.closed && !keeper.stopped) {
      if (!current || current.status.state === 'gpu-nic-dead' || !this.sessions.includes(current)) {
        try {
          const transport = await openLiveTransport(address, { opTimeoutMs: pacing.timeoutMs });
          try {
            await verifyKey(transport, new Claims(), target.key!, pacing.timeoutMs);
            if (keeper.stopped || this.closed) throw new Error('dropped while connecting');
          } catch (err) {
            await transport.close();
            throw err;
          }
          const host = address.kind === 'shm' ? address.path : address.host;
          current = this.adopt(transport, { name: target.name, address: target.address, host }, 'monitor-connected', target.key, pacing);
          reported = undefined;
        } catch (err) {
          if (message(err) !== reported && !keeper.stopped) this.log(`${target.name}: cannot hold ${target.address}: ${message(err)} (retrying every ${TARGETS_FILE_RETRY_MS / 1000} s)`);
          reported = message(err);
        }
      }
      await sleep(TARGETS_FILE_RETRY_MS);
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
      if (req.op === 'sweeps') return { recent: [...this.sweeps], pollMs: this.settings.pollMs } satisfies SweepStats;
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
    if (this.fileWatched && this.options.targetsFile) fs.unwatchFile(this.options.targetsFile);
    for (const { keeper } of this.fileTargets.values()) keeper.stopped = true;
    await this.metrics?.close();
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
