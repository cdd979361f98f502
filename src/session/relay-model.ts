// What the relay (`grass monitor`) holds, as a model with a change event: read from its socket
// when asked (refresh) and every pollMs while someone needs it live (a target's monitor can die
// while no window is attached to it); listeners hear only of a change. Views subscribe to it
// instead of reading the socket themselves. No VS Code dependency.
import { formatTargetAddress, parseTargetAddress } from '../rdma/address';
import { relayTargets } from '../relay/remote';
import type { TargetStatus } from '../relay/wire';
import type { TargetConfig } from '../settings/targets';

/** Whether the relay's `status` is of the configured `target` (same address, written either way, or its name). */
export function heldAs(target: TargetConfig, status: TargetStatus): boolean {
  const normal = (address: string) => {
    try {
      return formatTargetAddress(parseTargetAddress(address));
    } catch {
      return undefined;
    }
  };
  const configured = formatTargetAddress(target.parsed);
  return status.name === target.address || normal(status.address) === configured || normal(`rdma://${status.name}`) === configured;
}

export interface Listener {
  dispose(): void;
}

export class RelayModel {
  private held: readonly TargetStatus[] = [];
  private shown = '[]';
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private disposed = false;

  constructor(
    /** The relay's socket (setting grass.monitor.socketPath), read on every refresh. */
    private readonly socketPath: () => string,
    private readonly pollMs = 3000,
  ) {}

  /** The targets the relay held at the last read; none when no relay answers. */
  get targets(): readonly TargetStatus[] {
    return this.held;
  }

  /** The relay's status of a configured target, if it holds it. */
  statusOf(target: TargetConfig): TargetStatus | undefined {
    return this.held.find((h) => heldAs(target, h));
  }

  onDidChange(listener: () => void): Listener {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  /** Reads the relay now (one read at a time; a refresh asked meanwhile reads once more after). */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = this.read().finally(() => {
      this.reading = undefined;
      if (this.again && !this.disposed) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.reading;
  }

  /** Reads now and every pollMs while `live` (e.g. while the view showing it is visible). */
  setLive(live: boolean): void {
    if (live && !this.timer && !this.disposed) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), this.pollMs);
    }
    if (!live && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async read(): Promise<void> {
    // No relay running (or one not answering) just means no target is held.
    const held = await relayTargets(this.socketPath()).catch((): TargetStatus[] => []);
    const text = JSON.stringify(held);
    if (this.disposed || text === this.shown) return;
    this.held = held;
    this.shown = text;
    for (const l of [...this.listeners]) l();
  }

  dispose(): void {
    this.disposed = true;
    this.setLive(false);
    this.listeners.clear();
  }
}
