// GRASS: Show Target Health: the SHFH metrics of the last minutes as plots (src/views/health-panel.ts).
import * as vscode from 'vscode';
import { HealthPanel, type HealthPanelHost } from '../views/health-panel';
import type { CommandDeps } from './deps';

export function registerHealthCommands(extensionUri: vscode.Uri, deps: CommandDeps): vscode.Disposable[] {
  const panel = new HealthPanel(extensionUri, deps.sessions, deps.output);
  return [
    panel,
    /** Resolves to the panel's host (tests talk to it) and its ring. */
    vscode.commands.registerCommand('grass.showTargetHealth', async (): Promise<{ host: HealthPanelHost; panel: HealthPanel }> => ({ host: await panel.show(), panel })),
  ];
}
