// The `grass.targets` setting, read and checked, with a change event for views and commands.
import * as vscode from 'vscode';
import { parseTargetsSetting, TargetConfigError, type TargetConfig } from './targets';

export interface TargetList {
  targets: TargetConfig[];
  /** Why the setting could not be used, naming the entry; targets is empty then. */
  error?: string;
}

export class ConfiguredTargets implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly watcher: vscode.Disposable;

  constructor() {
    this.watcher = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('grass.targets')) this.changed.fire();
    });
  }

  read(): TargetList {
    try {
      return { targets: parseTargetsSetting(vscode.workspace.getConfiguration('grass').get<unknown>('targets')) };
    } catch (err) {
      if (err instanceof TargetConfigError) return { targets: [], error: err.message };
      throw err;
    }
  }

  dispose(): void {
    this.watcher.dispose();
    this.changed.dispose();
  }
}
