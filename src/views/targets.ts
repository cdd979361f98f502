// Targets view: the targets configured in `grass.targets`, whether a key is stored for each,
// which one is connected and what its heartbeat says (alive, monitor not answering, transport
// or agent dead), and what the relay (`grass monitor`) holding the sessions says of each (up,
// monitor dead, GPU/NIC dead), whether or not this window is attached to it: from the relay
// model (src/session/relay-model.ts), which the view keeps polling only while it is visible.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import type { ConfiguredTargets } from '../settings/configured-targets';
import type { TargetKeys } from '../settings/keys';
import type { TargetConfig } from '../settings/targets';
import type { TargetStatus } from '../relay/wire';
import type { Failure, FailureState } from '../session/failure';
import { causeFirst } from './cause-first';
import type { HeartbeatState } from '../session/live-session';
import type { RelayModel } from '../session/relay-model';
import type { PanicShown } from './faults';
import type { MemorySourceInfo } from '../rdma/local-agent';

/** What the connected target's heartbeat shows: pending, alive, or the failure's state. */
type HeartbeatShown = 'pending' | 'alive' | FailureState;

function heartbeatShown(state: HeartbeatState): HeartbeatShown {
  return state.kind === 'failed' ? state.failure : state.kind;
}

/** The connected target's state while its heartbeat shows this (first in the row). */
const HEARTBEAT_STATE: Record<HeartbeatShown, string> = {
  pending: 'connected',
  alive: 'connected',
  'monitor-busy': 'monitor not answering',
  'monitor-dead': 'monitor not answering',
  'gpu-nic-dead': 'transport or agent dead',
  refused: 'heartbeat failing',
  error: 'heartbeat failing',
};

const RELAY_STATE: Record<TargetStatus['state'], string> = {
  up: 'held by monitor',
  'monitor-dead': 'monitor dead',
  'gpu-nic-dead': 'GPU/NIC dead',
};

/** The state a failed connect leaves: a refused key says so, anything else is unreachable. */
function connectFailureState(failure: Failure): string {
  return /bad authenticator/.test(failure.message) ? 'key refused' : failure.state === 'refused' ? 'connection refused' : 'unreachable';
}

/** What an offline image is, in a row's description: format, compression, dump level, size, kernel. */
export function imageSummary(source: MemorySourceInfo, release: string): string {
  const format = source.format === 'kdump' ? `${source.flattened ? 'flattened ' : ''}kdump` : source.format === 'elf' ? 'ELF vmcore' : source.kind;
  const size = source.fileBytes >= 2 ** 30 ? `${(source.fileBytes / 2 ** 30).toFixed(1)} GiB` : `${(source.fileBytes / 2 ** 20).toFixed(1)} MiB`;
  return [format, source.compression, source.dumpLevel !== null ? `dump level ${source.dumpLevel}` : undefined, size, release].filter(Boolean).join(' · ');
}

export type TargetItem =
  | { kind: 'target'; target: TargetConfig; hasKey: boolean; connected: boolean; heartbeat?: HeartbeatShown; held?: TargetStatus; connectFailure?: Failure & { at: Date } }
  | { kind: 'error'; message: string };

export class TargetsProvider implements vscode.TreeDataProvider<TargetItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  private heartbeatWatch: vscode.Disposable | undefined;
  private heartbeatShown: HeartbeatShown | undefined;
  private visibilityWatch: vscode.Disposable | undefined;
  private treeView: vscode.TreeView<TargetItem> | undefined;
  /** The last connect that failed, per target name, until one succeeds. */
  private readonly connectFailures = new Map<string, Failure & { at: Date }>();
  /** The connected target's kernel panicked (the Faults view's reading of its memory). */
  private panic: PanicShown | undefined;

  constructor(
    private readonly configured: ConfiguredTargets,
    private readonly keys: TargetKeys,
    private readonly sessions: Sessions,
    /** What the relay holding the sessions says of its targets. */
    private readonly relay: RelayModel,
  ) {
    this.subscriptions = [
      configured.onDidChange(() => this.refresh()),
      sessions.onDidChange(() => this.watchHeartbeat()),
      keys.onDidChange(() => this.refresh()),
      relay.onDidChange(() => this.changed.fire()),
    ];
  }

  get view(): vscode.TreeView<TargetItem> | undefined {
    return this.treeView;
  }

  // The relay's view of its targets changes on its own (a target's monitor dies while this
  // window is not attached to it): the model re-reads it while the view is visible.
  set view(view: vscode.TreeView<TargetItem> | undefined) {
    this.visibilityWatch?.dispose();
    this.treeView = view;
    this.visibilityWatch = view?.onDidChangeVisibility((e) => this.relay.setLive(e.visible));
    this.relay.setLive(view?.visible ?? false);
  }

  // Re-rendered when what the heartbeat shows changes, not on every beat.
  private watchHeartbeat(): void {
    this.heartbeatWatch?.dispose();
    const session = this.sessions.current;
    this.heartbeatShown = session && heartbeatShown(session.heartbeatState);
    this.heartbeatWatch = session?.onDidHeartbeat((state) => {
      if (heartbeatShown(state) === this.heartbeatShown) return;
      this.heartbeatShown = heartbeatShown(state);
      this.refresh();
    });
    this.refresh();
  }

  /** Records how the last connect to a target failed (undefined: it succeeded). */
  setConnectFailure(name: string, failure: Failure | undefined): void {
    if (failure) this.connectFailures.set(name, { ...failure, at: new Date() });
    else this.connectFailures.delete(name);
    this.changed.fire();
  }

  /** Records that the connected target's kernel panicked (undefined: it did not, or a new session). */
  setPanic(panic: PanicShown | undefined): void {
    this.panic = panic;
    this.changed.fire();
  }

  /** Re-renders now, and again when the relay's answer to a fresh read differs. */
  refresh(): void {
    this.changed.fire();
    void this.relay.refresh();
  }

  async getChildren(element?: TargetItem): Promise<TargetItem[]> {
    if (element) return [];
    const { targets, error } = this.configured.read();
    if (error) return [{ kind: 'error', message: error }];
    const session = this.sessions.current;
    const connected = session?.target.name;
    return Promise.all(
      targets.map(async (target) => ({
        kind: 'target' as const,
        target,
        hasKey: await this.keys.has(target.name),
        connected: target.name === connected,
        heartbeat: session && target.name === connected ? heartbeatShown(session.heartbeatState) : undefined,
        held: this.relay.statusOf(target),
        connectFailure: this.connectFailures.get(target.name),
      })),
    );
  }

  getTreeItem(item: TargetItem): vscode.TreeItem {
    if (item.kind === 'error') {
      const tree = new vscode.TreeItem('Setting grass.targets is not valid', vscode.TreeItemCollapsibleState.None);
      tree.description = item.message;
      tree.tooltip = item.message;
      tree.iconPath = new vscode.ThemeIcon('error');
      return tree;
    }
    const { target, hasKey, connected, heartbeat, held, connectFailure } = item;
    const panic = connected && this.panic?.target === target.name ? this.panic : undefined;
    const heartbeatFailing = connected && heartbeat !== undefined && heartbeat !== 'pending' && heartbeat !== 'alive';
    const relayFailing = held !== undefined && held.state !== 'up';
    const connectFailing = !connected && connectFailure !== undefined;
    const failing = heartbeatFailing || relayFailing || connectFailing || panic !== undefined;
    // One state, the most telling, before the name (a narrow side bar cuts the row's end); the rest in the tooltip.
    const state = heartbeatFailing
      ? HEARTBEAT_STATE[heartbeat]
      : relayFailing
        ? RELAY_STATE[held.state]
        : connectFailing
          ? connectFailureState(connectFailure)
          : panic
            ? 'panicked'
            : connected
              ? HEARTBEAT_STATE[heartbeat ?? 'pending']
              : held
                ? RELAY_STATE[held.state]
                : hasKey
                  ? 'idle'
                  : 'no key';
    const tree = new vscode.TreeItem(`${state} · ${target.name}`, vscode.TreeItemCollapsibleState.None);
    tree.id = `grass.target/${target.name}`;
    const session = connected ? this.sessions.current : undefined;
    const image = session?.source ? imageSummary(session.source, session.release) : undefined;
    if (image) tree.description = image;
    const lines = [
      `**${target.name}** — ${state}`,
      `\`${target.address}\``,
      connected ? `Connected${heartbeat ? `; heartbeat: ${HEARTBEAT_STATE[heartbeat]}` : ''}.` : 'Not connected.',
      image ? `Image: ${image}${session?.source?.excludedPages ? `; ${session.source.excludedPages} pages of RAM not in it (its dump level)` : ''}.` : '',
      panic ? `Kernel panicked${panic.cpu !== undefined ? ` on CPU ${panic.cpu}` : ''}${panic.pid !== undefined ? `, task ${panic.comm ?? '?'} (pid ${panic.pid})` : ''}: ${panic.headline}.` : '',
      connectFailing ? `Last connect failed at ${connectFailure.at.toLocaleTimeString()}: ${causeFirst(connectFailure.message)}.` : '',
      held
        ? `Held by the monitor since ${held.since}: ${RELAY_STATE[held.state]}${held.failure ? ` — ${held.failure}` : ''}${held.last.at ? `; last good data ${held.last.at} (${held.last.processes ?? '?'} processes, ${held.last.release ?? '?'})` : ''}.`
        : 'Not held by a monitor.',
      hasKey ? 'Key stored in secret storage.' : 'No key stored: run "GRASS: Set Target Key…".',
    ];
    const tooltip = new vscode.MarkdownString(lines.filter(Boolean).join('\n\n'));
    tooltip.supportHtml = false;
    tree.tooltip = tooltip;
    tree.iconPath = new vscode.ThemeIcon(failing ? 'vm-active' : connected ? 'vm-running' : 'vm-outline', failing ? new vscode.ThemeColor('errorForeground') : undefined);
    tree.contextValue = 'grass.target';
    return tree;
  }

  dispose(): void {
    this.visibilityWatch?.dispose();
    this.heartbeatWatch?.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
