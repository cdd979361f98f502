// What command handlers get from the extension's wiring.
import type * as vscode from 'vscode';
import type { ConfiguredTargets } from '../settings/configured-targets';
import type { TargetKeys } from '../settings/keys';
import type { GrassViews } from '../views';
import type { MemoryInspector } from '../views/memory-inspector';
import type { RelayLaunch } from '../session/relay-process';
import type { Sessions } from '../session/sessions';

export interface CommandDeps {
  output: vscode.LogOutputChannel;
  configured: ConfiguredTargets;
  keys: TargetKeys;
  sessions: Sessions;
  views: GrassViews;
  memoryInspector: MemoryInspector;
  /** Where the sessions' monitor is (setting grass.monitor.socketPath) and how to start one. */
  relayLaunch(): Omit<RelayLaunch, 'key'>;
}
