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
import type { FailureState } from '../session/failure';
import type { HeartbeatState } from '../session/live-session';
import type { RelayModel } from '../session/relay-model';

/** What the connected target's heartbeat shows: pending, alive, or the failure's state. */
type HeartbeatShown = 'pending' | 'alive' | FailureState;

function heartbeatShown(state: HeartbeatState): HeartbeatShown {
  return state.kind === 'failed' ? state.failure : state.kind;
}

const HEARTBEAT_TEXT: Record<HeartbeatShown, string> = {
  pending: 'connected',
  alive: 'connected',
  'monitor-busy': 'connected · monitor not answering',
  'monitor-dead': 'connected · monitor not answering',
  'gpu-nic-dead': 'connected · transport or agent dead',
  refused: 'connected · heartbeat failing',
  error: 'connected · heartbeat failing',
};

const RELAY_TEXT: Record<TargetStatus['state'], string> = {
  up: 'held by monitor',
  'monitor-dead': 'monitor dead',
  'gpu-nic-dead': 'GPU/NIC dead',
};

export type TargetItem =
  | { kind: 'target'; target: TargetConfig; hasKey: boolean; connected: boolean; heartbeat?: HeartbeatShown; held?: TargetStatus }
  | { kind: 'error'; message: string };

export class TargetsProvider implements vscode.TreeDataProvider<TargetItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  private heartbeatWatch: vscode.Disposable | undefined;
  private heartbeatShown: HeartbeatShown | undefined;
  private visibilityWatch: vscode.Disposable | undefined;
  private treeView: vscode.TreeView<TargetItem> | undefined;

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
    const { target, hasKey, connected, heartbeat, held } = item;
    const failing = (heartbeat !== undefined && heartbeat !== 'pending' && heartbeat !== 'alive') || (held !== undefined && held.state !== 'up');
    const tree = new vscode.TreeItem(target.name, vscode.TreeItemCollapsibleState.None);
    tree.id = `grass.target/${target.name}`;
    tree.description = [target.address, connected ? HEARTBEAT_TEXT[heartbeat ?? 'pending'] : '', held ? RELAY_TEXT[held.state] : '', hasKey ? '' : 'no key'].filter(Boolean).join(' · ');
    const relayLine = held
      ? `Held by the monitor since ${held.since}: ${held.state}${held.failure ? ` — ${held.failure}` : ''}${held.last.at ? `; last good data ${held.last.at} (${held.last.processes ?? '?'} processes, ${held.last.release ?? '?'})` : ''}.`
      : 'Not held by a monitor.';
    tree.tooltip = new vscode.MarkdownString(
      `**${target.name}**\n\n\`${target.address}\`\n\n${connected ? 'Connected.' : 'Not connected.'} ${hasKey ? 'Key stored in secret storage.' : 'No key stored: run "GRASS: Set Target Key…".'}\n\n${relayLine}`,
    );
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
