// The local socket between `grass monitor` and its clients (the CLI, the extension): one JSON
// object per line each way. A client either asks about the targets the relay holds, or
// attaches to one and does transport operations on its buffer through the relay's RDMA
// session (so the protocol client runs unchanged in the client, and nothing polls verbs on the
// client's thread). Bytes travel as base64, 64-bit words as decimal strings.
import os from 'node:os';
import path from 'node:path';
import type { RelayFailureState } from '../session/failure';

export type RelayRequest =
  | { id: number; op: 'targets' }
  | { id: number; op: 'attach'; target: string }
  /** Start holding a target (rdma:// or shm:); answers its TargetStatus. `key` (hex): the
   * target's own key, checked against the agent first; the relay's heartbeats use it. */
  | { id: number; op: 'hold'; target: string; key?: string }
  /** The relay's own memory (RelayMemory), after a full collection when node runs it with --expose-gc. */
  | { id: number; op: 'memory' }
  /** The relay's recent heartbeat sweeps (SweepStats). */
  | { id: number; op: 'sweeps' }
  /** Stop the relay: every held session is dropped (connections to dead kernels are lost for good). */
  | { id: number; op: 'stop' }
  | { id: number; op: 'read'; offset: number; length: number }
  | { id: number; op: 'write'; offset: number; data: string }
  | { id: number; op: 'readWord'; offset: number }
  /** version word, block, version word, read by the relay back to back (Transport.readVersioned). */
  | { id: number; op: 'readVersioned'; versionOffset: number; offset: number; length: number }
  | { id: number; op: 'writeWord'; offset: number; value: string }
  | { id: number; op: 'claim'; offset: number }
  | { id: number; op: 'release'; offset: number };


export type RelayReply =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: { kind: 'transport' | 'usage'; message: string } };

/** A held target's state: up, or the part that failed (src/session/failure.ts's states the relay records). */
export type TargetState = 'up' | RelayFailureState;

/** What the relay knows about one target; the last good data stays after a failure. */
export interface TargetStatus {
  name: string;
  /** Where the agent is (rdma://peer) and how the session was made. */
  address: string;
  direction: 'agent-connected' | 'monitor-connected';
  state: TargetState;
  /** Why it is not up, naming the part that failed. */
  failure?: string;
  /** Session up since (ISO time); failure seen at. */
  since: string;
  failedAt?: string;
  bufferBytes: number;
  last: {
    at?: string;
    heartbeatUs?: number;
    livenessCounter?: string;
    release?: string;
    cpus?: number;
    processes?: number;
    /** When the detections, the metrics window and the kernel log were last read (ISO time). */
    observedAt?: string;
    /** The agent's detectors as its background area last showed them (read with no request). */
    detections?: HeldDetection[];
    /** The latest metrics window of the agent's history (the SHFH metrics). */
    window?: HeldWindow;
    /** Whether the kernel's log holds a panic report (absent: the log could not be read yet). */
    kernelPanicked?: boolean;
    /** The panic's header line, as the kernel printed it. */
    panicMessage?: string;
  };
}

/** One detector's state (src/detect/detections.ts's Detection, cut to what the fleet needs). */
export interface HeldDetection {
  detector: string;
  active: boolean;
  /** F1-F6, the hang detector's class once it detected. */
  hangClass?: string;
  /** The first culprit. */
  culprit?: { pid: number; comm: string; role: string };
}

/** One metrics window (src/detect/detections.ts's HistoryPoint): shares in percent, averaged over CPUs. */
export interface HeldWindow {
  windowSeconds: number;
  usr: number;
  sys: number;
  iowait: number;
  idle: number;
  contextSwitchesPerSecond: number;
  pswpinPerSecond: number;
  pswpoutPerSecond: number;
  memFreeBytes: number;
  run: number;
  blk: number;
  /** The busiest disk's util, percent. */
  util: number;
}

/** Heartbeat sweeps: each sends one heartbeat to every due target at once; its time runs until all settled. */
export interface SweepStats {
  pollMs: number;
  /** Oldest first, at most 256. */
  recent: { at: string; seconds: number; targets: number }[];
}

/** A long-lived relay's memory, bytes (process.memoryUsage()); collected: a full GC ran first. */
export interface RelayMemory extends NodeJS.MemoryUsage {
  pid: number;
  collected: boolean;
}

/** The default socket: $GRASS_MONITOR_SOCKET, else per user under $XDG_RUNTIME_DIR or the temp dir. */
export function defaultRelaySocket(): string {
  if (process.env.GRASS_MONITOR_SOCKET) return process.env.GRASS_MONITOR_SOCKET;
  const dir = process.env.XDG_RUNTIME_DIR ?? os.tmpdir();
  return path.join(dir, `grass-monitor-${os.userInfo().uid}.sock`);
}
