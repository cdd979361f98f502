// Targets view: the targets configured in `grass.targets`, whether a key is stored for each,
// which one is connected and what its heartbeat says (alive, monitor not answering, transport
// or agent dead), and what the `grass monitor` holding the sessions says of each (up, monitor
// dead, GPU/NIC dead), whether or not this window is attached to it.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import type { ConfiguredTargets } from '../settings/configuredTargets';
import type { TargetKeys } from '../settings/keys';
import type { TargetConfig } from '../settings/targets';
import { relayTargets } from '../relay/remote';
import type { TargetStatus } from '../relay/wire';
import type { HeartbeatState } from '../session/liveSession';

const HEARTBEAT_TEXT: Record<HeartbeatState['kind'], string> = {
  pending: 'connected',
  alive: 'connected',
  monitorNotAnswering: 'connected · monitor not answering',
  transportDead: 'connected · transport or agent dead',
  error: 'connected · heartbeat failing',
};

const MONITOR_POLL_MS = 3000;

const MONITOR_TEXT: Record<TargetStatus['state'], string> = {
  up: 'held by monitor',
  'monitor-dead': 'monitor dead',
  'gpu-nic-dead': 'GPU/NIC dead',
};

export type TargetItem =
  | { kind: 'target'; target: TargetConfig; hasKey: boolean; connected: boolean; heartbeat?: HeartbeatState['kind']; held?: TargetStatus }
  | { kind: 'error'; message: string };

export class TargetsProvider implements vscode.TreeDataProvider<TargetItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];
  private heartbeatWatch: vscode.Disposable | undefined;
  private heartbeatKind: HeartbeatState['kind'] | undefined;
  // The monitor's view of its targets changes on its own (a target's monitor dies while this
  // window is not attached to it): re-read while the view is visible.
  private readonly relayPoll = setInterval(() => {
    if (this.view?.visible) this.refresh();
  }, MONITOR_POLL_MS);
  view: vscode.TreeView<TargetItem> | undefined;

  constructor(
    private readonly configured: ConfiguredTargets,
    private readonly keys: TargetKeys,
    private readonly sessions: Sessions,
    /** The socket of the monitor holding the sessions (setting grass.monitor.socketPath). */
    private readonly relaySocket: () => string,
  ) {
    this.subscriptions = [configured.onDidChange(() => this.refresh()), sessions.onDidChange(() => this.watchHeartbeat()), keys.onDidChange(() => this.refresh())];
  }

  // Re-rendered when the heartbeat's kind changes, not on every beat.
  private watchHeartbeat(): void {
    this.heartbeatWatch?.dispose();
    this.heartbeatKind = this.sessions.current?.heartbeatState.kind;
    this.heartbeatWatch = this.sessions.current?.onDidHeartbeat((state) => {
      if (state.kind === this.heartbeatKind) return;
      this.heartbeatKind = state.kind;
      this.refresh();
    });
    this.refresh();
  }

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(element?: TargetItem): Promise<TargetItem[]> {
    if (element) return [];
    const { targets, error } = this.configured.read();
    if (error) return [{ kind: 'error', message: error }];
    const connected = this.sessions.current?.target.name;
    // No monitor running (or one not answering) just means no target is held.
    const held = await relayTargets(this.relaySocket()).catch((): TargetStatus[] => []);
    const heldFor = (t: TargetConfig) => held.find((h) => h.address === t.address || h.name === t.address || `rdma://${h.name}` === t.address);
    return Promise.all(
      targets.map(async (target) => ({
        kind: 'target' as const,
        target,
        hasKey: await this.keys.has(target.name),
        connected: target.name === connected,
        heartbeat: target.name === connected ? this.sessions.current?.heartbeatState.kind : undefined,
        held: heldFor(target),
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
    const failing = heartbeat === 'monitorNotAnswering' || heartbeat === 'transportDead' || heartbeat === 'error' || (held !== undefined && held.state !== 'up');
    const tree = new vscode.TreeItem(target.name, vscode.TreeItemCollapsibleState.None);
    tree.id = `grass.target/${target.name}`;
    tree.description = [target.address, connected ? HEARTBEAT_TEXT[heartbeat ?? 'pending'] : '', held ? MONITOR_TEXT[held.state] : '', hasKey ? '' : 'no key'].filter(Boolean).join(' · ');
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
    clearInterval(this.relayPoll);
    this.heartbeatWatch?.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
