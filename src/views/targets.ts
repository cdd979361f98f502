// Targets view: the targets configured in `grass.targets`, whether a key is stored for each,
// and which one is connected.
import * as vscode from 'vscode';
import type { Sessions } from '../commands/sessions';
import type { ConfiguredTargets } from '../settings/configuredTargets';
import type { TargetKeys } from '../settings/keys';
import type { TargetConfig } from '../settings/targets';

export type TargetItem = { kind: 'target'; target: TargetConfig; hasKey: boolean; connected: boolean } | { kind: 'error'; message: string };

export class TargetsProvider implements vscode.TreeDataProvider<TargetItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly configured: ConfiguredTargets,
    private readonly keys: TargetKeys,
    private readonly sessions: Sessions,
  ) {
    this.subscriptions = [configured.onDidChange(() => this.refresh()), sessions.onDidChange(() => this.refresh()), keys.onDidChange(() => this.refresh())];
  }

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(element?: TargetItem): Promise<TargetItem[]> {
    if (element) return [];
    const { targets, error } = this.configured.read();
    if (error) return [{ kind: 'error', message: error }];
    const connected = this.sessions.current?.target.name;
    return Promise.all(
      targets.map(async (target) => ({ kind: 'target' as const, target, hasKey: await this.keys.has(target.name), connected: target.name === connected })),
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
    const { target, hasKey, connected } = item;
    const tree = new vscode.TreeItem(target.name, vscode.TreeItemCollapsibleState.None);
    tree.id = `grass.target/${target.name}`;
    tree.description = `${target.address}${connected ? ' · connected' : ''}${hasKey ? '' : ' · no key'}`;
    tree.tooltip = new vscode.MarkdownString(
      `**${target.name}**\n\n\`${target.address}\`\n\n${connected ? 'Connected.' : 'Not connected.'} ${hasKey ? 'Key stored in secret storage.' : 'No key stored: run "GRASS: Set Target Key…".'}`,
    );
    tree.iconPath = new vscode.ThemeIcon(connected ? 'vm-running' : 'vm-outline');
    tree.contextValue = 'grass.target';
    return tree;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
