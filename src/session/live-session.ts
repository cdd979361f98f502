// An open session to one target: the protocol client (src/rdma), the kernel model built over it
// on first use, and a heartbeat polled off the UI path whose state the status bar shows. Live
// targets (rdma://, shm:) are held by the relay, `grass monitor` (./relay-process), which the
// session attaches to (./open-target); closing the session, the window or the extension host
// leaves the relay's session to the target in place.
import * as vscode from 'vscode';
import { KernelModel } from '../kernel/model';
import { relayTargets } from '../relay/remote';
import type { TargetStatus } from '../relay/wire';
import type { GrassClient } from '../rdma/client';
import type { MemorySourceInfo } from '../rdma/local-agent';
import type { TargetConfig } from '../settings/targets';
import { classifyFailure, type FailureState } from './failure';
import { openHeld, openTarget, type ProtocolSession } from './open-target';
import { heldAs } from './relay-model';
import { ensureRelayHolds, type RelayLaunch } from './relay-process';

/** The relay a session is held by. */
export interface HeldBy {
  socketPath: string;
  /** The relay's pid when this session started it. */
  startedPid?: number;
}

/** What the last heartbeat said: a round trip, or which part of the system failed (./failure). */
export type HeartbeatState =
  | { kind: 'pending' }
  | { kind: 'alive'; roundTripUs: number; livenessCounter: bigint; at: Date }
  | { kind: 'failed'; failure: FailureState; message: string; at: Date };

/** A failed heartbeat's few words, by failure state (the status bar, the Targets view, tooltips). */
export const HEARTBEAT_FAILURE_TEXT: Record<FailureState, string> = {
  'monitor-busy': 'monitor not answering',
  'monitor-dead': 'monitor not answering',
  'gpu-nic-dead': 'transport or agent dead',
  refused: 'heartbeat failed',
  error: 'heartbeat failed',
};

/** One line for the output channel and tooltips: the round trip, or which part failed. */
export function describeHeartbeat(target: string, state: HeartbeatState): string {
  switch (state.kind) {
    case 'pending':
      return `${target}: waiting for the first heartbeat`;
    case 'alive':
      return `${target}: ${state.roundTripUs.toFixed(1)} µs round trip, liveness ${state.livenessCounter}`;
    case 'failed':
      return `${target}: ${HEARTBEAT_FAILURE_TEXT[state.failure]} (${state.message})`;
  }
}

export class LiveSession implements vscode.Disposable {
  private modelPromise: Promise<KernelModel> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly heartbeatChanged = new vscode.EventEmitter<HeartbeatState>();
  readonly onDidHeartbeat = this.heartbeatChanged.event;
  heartbeatState: HeartbeatState = { kind: 'pending' };

  private constructor(
    readonly target: TargetConfig,
    private readonly protocol: ProtocolSession,
    readonly heldBy: HeldBy | undefined,
    /** The target kernel's release, from its description. */
    readonly release: string,
  ) {}

  /**
   * Attaches to the target with the key from secret storage; starts the heartbeat polling. With
   * `relay`, a live target is reached through the relay at its socket (started when none runs,
   * told to hold the target when it does not yet); offline images are opened directly.
   */
  static async open(target: TargetConfig, key: Uint8Array, relay?: Omit<RelayLaunch, 'key'>): Promise<LiveSession> {
    const live = target.parsed.kind === 'shm' || target.parsed.kind === 'rdma';
    if (relay && live) {
      const held = await ensureRelayHolds({ ...relay, key }, target.address);
      return LiveSession.attachHeld(target, key, { socketPath: relay.socketPath, startedPid: held.startedPid }, held.status.name);
    }
    return LiveSession.start(target, await openTarget(target.address, { key, timeoutMs: target.options.requestTimeoutMs, relaySocket: relay?.socketPath }), undefined);
  }

  /**
   * Attaches to a target the relay at heldBy.socketPath already holds (by its relay-side
   * name), without a new hold: what a window reload or extension-host restart re-attaches to.
   */
  static async attachHeld(target: TargetConfig, key: Uint8Array, heldBy: HeldBy, heldName: string): Promise<LiveSession> {
    return LiveSession.start(target, await openHeld(heldBy.socketPath, heldName, target.parsed, key, { timeoutMs: target.options.requestTimeoutMs }), heldBy);
  }

  private static async start(target: TargetConfig, protocol: ProtocolSession, heldBy: HeldBy | undefined): Promise<LiveSession> {
    let release: string;
    try {
      // Attaching checks no key; the first authenticated request does (a wrong key is refused
      // with "bad authenticator"). Its answer is needed for the kernel model anyway.
      release = (await protocol.client.describe()).release;
    } catch (err) {
      await protocol.close();
      throw err;
    }
    const session = new LiveSession(target, protocol, heldBy, release);
    session.scheduleHeartbeat(0);
    return session;
  }

  /** What the relay holding this session knows of it (state, failure, since); undefined when not held. */
  async relayStatus(): Promise<TargetStatus | undefined> {
    if (!this.heldBy) return undefined;
    return (await relayTargets(this.heldBy.socketPath)).find((t) => heldAs(this.target, t));
  }

  get client(): GrassClient {
    return this.protocol.client;
  }

  /** An offline image's format, compression, dump level and size (its local agent's report). */
  get source(): MemorySourceInfo | undefined {
    return this.protocol.source;
  }

  /** The kernel model (BTF, symbols, reads), built once from the target's description. */
  model(): Promise<KernelModel> {
    this.modelPromise ??= this.client.describe().then((d) => KernelModel.fromDescription(d, this.client));
    this.modelPromise.catch(() => (this.modelPromise = undefined));
    return this.modelPromise;
  }

  /** One heartbeat now; its state is also published to the status bar. */
  async heartbeat(): Promise<HeartbeatState> {
    let state: HeartbeatState;
    try {
      const r = await this.client.heartbeat();
      state = { kind: 'alive', roundTripUs: Number(r.roundTripNs) / 1000, livenessCounter: r.liveness.counter, at: new Date() };
    } catch (err) {
      const { state: failure, message } = classifyFailure(err);
      state = { kind: 'failed', failure, message, at: new Date() };
    }
    if (!this.disposed) {
      this.heartbeatState = state;
      this.heartbeatChanged.fire(state);
    }
    return state;
  }

  // setTimeout after each answer (never setInterval): a slow or dead target never piles up
  // heartbeats, and the extension host's event loop stays free between them.
  private scheduleHeartbeat(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.heartbeat().finally(() => {
        if (!this.disposed) this.scheduleHeartbeat(this.target.options.heartbeatIntervalMs);
      });
    }, delayMs);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.timer);
    this.heartbeatChanged.dispose();
    void this.protocol.close();
  }
}
