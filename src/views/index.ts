// Registers the GRASS views (package.json `contributes.views`): one file per view, plus the
// heartbeat status bar item and the kernel log documents.
import * as vscode from 'vscode';
import type { RelayModel } from '../session/relay-model';
import type { Sessions } from '../session/sessions';
import type { ConfiguredTargets } from '../settings/configured-targets';
import type { TargetKeys } from '../settings/keys';
import { FaultsProvider, type FaultItem } from './faults';
import { BlockedTasksProvider, type BlockedItem } from './blocked-tasks';
import { KernelLogDocuments } from './kernel-log';
import { ModulesProvider, type ModuleItem } from './modules';
import { ProcessesProvider, type ProcessNode } from './processes';
import { QueryDocuments } from './query-documents';
import { HeartbeatStatusBar } from './status-bar';
import { StructDecoderProvider, type DecodedItem } from './struct-decoder';
import { TargetsProvider, type TargetItem } from './targets';

export interface GrassViews {
  targets: vscode.TreeView<TargetItem>;
  targetsProvider: TargetsProvider;
  processes: vscode.TreeView<ProcessNode>;
  processesProvider: ProcessesProvider;
  structDecoder: vscode.TreeView<DecodedItem>;
  structDecoderProvider: StructDecoderProvider;
  faults: vscode.TreeView<FaultItem>;
  faultsProvider: FaultsProvider;
  modules: vscode.TreeView<ModuleItem>;
  modulesProvider: ModulesProvider;
  blockedTasks: vscode.TreeView<BlockedItem>;
  blockedTasksProvider: BlockedTasksProvider;
  heartbeat: HeartbeatStatusBar;
  kernelLog: KernelLogDocuments;
  queryDocuments: QueryDocuments;
}

export function registerViews(
  context: vscode.ExtensionContext,
  deps: { configured: ConfiguredTargets; keys: TargetKeys; sessions: Sessions; output: vscode.LogOutputChannel; relay: RelayModel },
): GrassViews {
  const targetsProvider = new TargetsProvider(deps.configured, deps.keys, deps.sessions, deps.relay);
  const processesProvider = new ProcessesProvider(deps.sessions);
  const structDecoderProvider = new StructDecoderProvider(deps.sessions);
  const faultsProvider = new FaultsProvider(deps.sessions, deps.output);
  const modulesProvider = new ModulesProvider(deps.sessions);
  const blockedTasksProvider = new BlockedTasksProvider(deps.sessions);
  const views: GrassViews = {
    targets: vscode.window.createTreeView('grass.targets', { treeDataProvider: targetsProvider, showCollapseAll: false }),
    targetsProvider,
    processes: vscode.window.createTreeView('grass.processes', { treeDataProvider: processesProvider, showCollapseAll: true }),
    processesProvider,
    structDecoder: vscode.window.createTreeView('grass.structDecoder', { treeDataProvider: structDecoderProvider, showCollapseAll: true }),
    structDecoderProvider,
    faults: vscode.window.createTreeView('grass.faults', { treeDataProvider: faultsProvider }),
    faultsProvider,
    modules: vscode.window.createTreeView('grass.modules', { treeDataProvider: modulesProvider }),
    modulesProvider,
    blockedTasks: vscode.window.createTreeView('grass.blockedTasks', { treeDataProvider: blockedTasksProvider, showCollapseAll: true }),
    blockedTasksProvider,
    heartbeat: new HeartbeatStatusBar(deps.sessions),
    kernelLog: new KernelLogDocuments(deps.sessions),
    queryDocuments: new QueryDocuments(),
  };
  processesProvider.view = views.processes;
  targetsProvider.view = views.targets;
  faultsProvider.view = views.faults;
  const culpritWatch = faultsProvider.onDidChangeCulprits((marks) => processesProvider.setCulprits(marks));
  const panicWatch = faultsProvider.onDidChangePanic((panic) => targetsProvider.setPanic(panic));
  context.subscriptions.push(
    targetsProvider,
    views.targets,
    processesProvider,
    views.processes,
    structDecoderProvider,
    views.structDecoder,
    faultsProvider,
    views.faults,
    modulesProvider,
    views.modules,
    blockedTasksProvider,
    views.blockedTasks,
    culpritWatch,
    panicWatch,
    views.heartbeat,
    views.kernelLog,
    views.queryDocuments,
  );
  return views;
}
