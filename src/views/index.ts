// Registers the GRASS views (package.json `contributes.views`): one file per view.
import * as vscode from 'vscode';
import type { Sessions } from '../commands/sessions';
import type { ConfiguredTargets } from '../settings/configuredTargets';
import type { TargetKeys } from '../settings/keys';
import { EmptyView } from './emptyView';
import { TargetsProvider, type TargetItem } from './targets';

export interface GrassViews {
  targets: vscode.TreeView<TargetItem>;
  targetsProvider: TargetsProvider;
  processes: vscode.TreeView<never>;
  faults: vscode.TreeView<never>;
}

export function registerViews(
  context: vscode.ExtensionContext,
  deps: { configured: ConfiguredTargets; keys: TargetKeys; sessions: Sessions },
): GrassViews {
  const targetsProvider = new TargetsProvider(deps.configured, deps.keys, deps.sessions);
  const views: GrassViews = {
    targets: vscode.window.createTreeView('grass.targets', { treeDataProvider: targetsProvider, showCollapseAll: false }),
    targetsProvider,
    processes: vscode.window.createTreeView('grass.processes', { treeDataProvider: new EmptyView() }),
    faults: vscode.window.createTreeView('grass.faults', { treeDataProvider: new EmptyView() }),
  };
  context.subscriptions.push(targetsProvider, views.targets, views.processes, views.faults);
  return views;
}
