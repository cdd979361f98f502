// Connect, disconnect, heartbeat.
import * as vscode from 'vscode';
import type { CommandDeps } from './deps';
import { pickTarget } from './pickTarget';
import { requireSession } from './sessions';

export function registerConnectionCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    /** Resolves to whether a session is open afterwards. */
    vscode.commands.registerCommand('grass.connect', async (arg?: unknown): Promise<boolean> => {
      const target = await pickTarget(deps.configured, arg, 'connect to');
      if (!target) return false;
      if (!(await deps.keys.has(target.name))) {
        void vscode.window.showWarningMessage(`GRASS: no key stored for '${target.name}'. Run "GRASS: Set Target Key…" first.`);
        return false;
      }
      const message = `cannot connect to '${target.name}' (${target.address}) from VS Code yet: the extension does not open sessions yet (the CLI does: grass heartbeat --target ADDRESS --key-file FILE).`;
      deps.output.warn(message);
      void vscode.window.showErrorMessage(`GRASS: ${message}`);
      return false;
    }),
    vscode.commands.registerCommand('grass.disconnect', () => {
      const session = requireSession(deps.sessions, 'disconnect');
      if (!session) return;
      deps.output.info(`disconnected from ${session.target.name}`);
      deps.sessions.close();
    }),
    vscode.commands.registerCommand('grass.heartbeat', () => {
      requireSession(deps.sessions, 'send a heartbeat');
    }),
  ];
}
