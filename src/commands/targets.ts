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
    /** Stores the key from a key file (what `grass agent --key-file` was given). */
    vscode.commands.registerCommand('grass.setTargetKeyFromFile', async (arg?: unknown, file?: unknown) => {
      const target = await pickTarget(deps.configured, arg, 'set the key of');
      if (!target) return;
      const uri =
        file instanceof vscode.Uri
          ? file
          : (await vscode.window.showOpenDialog({ title: `GRASS: key file for ${target.name}`, canSelectMany: false, openLabel: 'Use Key' }))?.[0];
      if (!uri) return;
      try {
        await deps.keys.set(target.name, Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8'));
        deps.output.info(`stored a key for ${target.name} from ${uri.fsPath}`);
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: the key file ${uri.fsPath} cannot be used: ${(err as Error).message}`);
      }
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
