// Target housekeeping: keys in secret storage, refreshing the Targets view.
import * as vscode from 'vscode';
import { KEY_BYTES, parseKeyHex } from '../settings/keys';
import type { CommandDeps } from './deps';
import { pickTarget } from './pickTarget';

export function registerTargetCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('grass.setTargetKey', async (arg?: unknown) => {
      const target = await pickTarget(deps.configured, arg, 'set the key of');
      if (!target) return;
      const hex = await vscode.window.showInputBox({
        title: `GRASS: key for ${target.name}`,
        prompt: `The ${KEY_BYTES}-byte HMAC key shared with the target's agent, as ${KEY_BYTES * 2} hex digits (the content of its --key-file). Kept in VS Code's secret storage.`,
        password: true,
        ignoreFocusOut: true,
        validateInput: (text) => {
          try {
            parseKeyHex(text);
            return undefined;
          } catch (err) {
            return (err as Error).message;
          }
        },
      });
      if (hex === undefined) return;
      await deps.keys.set(target.name, hex);
      deps.output.info(`stored a key for ${target.name}`);
    }),
    vscode.commands.registerCommand('grass.clearTargetKey', async (arg?: unknown) => {
      const target = await pickTarget(deps.configured, arg, 'forget the key of');
      if (!target) return;
      await deps.keys.delete(target.name);
      deps.output.info(`deleted the key of ${target.name}`);
    }),
    vscode.commands.registerCommand('grass.refreshTargets', () => deps.views.targetsProvider.refresh()),
  ];
}
