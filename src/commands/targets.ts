// Target housekeeping: adding and removing targets (the grass.targets setting), keys in secret
// storage, refreshing the Targets view.
import * as vscode from 'vscode';
import { parseTargetAddress } from '../rdma/address';
import { KEY_BYTES, parseKeyHex } from '../settings/keys';
import type { CommandDeps } from './deps';
import { pickTarget } from './pick-target';

/** The grass.targets setting where it is in effect (workspace, else user), entries as written. */
function writtenTargets(): { entries: unknown[]; scope: vscode.ConfigurationTarget } {
  const inspected = vscode.workspace.getConfiguration('grass').inspect<unknown>('targets');
  const inWorkspace = Array.isArray(inspected?.workspaceValue);
  const value = inWorkspace ? inspected?.workspaceValue : inspected?.globalValue;
  return { entries: Array.isArray(value) ? [...(value as unknown[])] : [], scope: inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global };
}

function entryName(entry: unknown): unknown {
  return typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
}

export function registerTargetCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    /** Adds a target to the user's grass.targets setting: name and address as arguments or asked
     * for, then (when asked for) its key. Resolves to the name added. */
    vscode.commands.registerCommand('grass.addTarget', async (nameArg?: unknown, addressArg?: unknown): Promise<string | undefined> => {
      const { entries: existing, scope } = writtenTargets();
      const nameProblem = (text: string): string | undefined =>
        text.trim() === '' ? 'A name is needed' : existing.some((e) => entryName(e) === text.trim()) ? `A target named '${text.trim()}' exists already` : undefined;
      const addressProblem = (text: string): string | undefined => {
        try {
          parseTargetAddress(text.trim());
          return undefined;
        } catch (err) {
          return (err as Error).message;
        }
      };
      const interactive = typeof nameArg !== 'string' || typeof addressArg !== 'string';
      const name =
        typeof nameArg === 'string' ? nameArg : await vscode.window.showInputBox({ title: 'GRASS: add target (1/2)', prompt: 'Name shown in the Targets view', ignoreFocusOut: true, validateInput: nameProblem });
      if (name === undefined) return undefined;
      const address =
        typeof addressArg === 'string'
          ? addressArg
          : await vscode.window.showInputBox({
              title: `GRASS: add target ${name} (2/2)`,
              prompt: 'Address: rdma://host[:port], shm:/dev/shm/…, vmcore:/path or qemu-ram:/path[?map=…]',
              placeHolder: 'rdma://10.0.0.2:7471',
              ignoreFocusOut: true,
              validateInput: addressProblem,
            });
      if (address === undefined) return undefined;
      const problem = nameProblem(name) ?? addressProblem(address);
      if (problem) {
        void vscode.window.showErrorMessage(`GRASS: cannot add target '${name}': ${problem}`);
        return undefined;
      }
      await vscode.workspace.getConfiguration('grass').update('targets', [...existing, { name: name.trim(), address: address.trim() }], scope);
      deps.output.info(`added target ${name.trim()} (${address.trim()})`);
      if (interactive) {
        const next = await vscode.window.showInformationMessage(`GRASS: added '${name.trim()}'. Its key?`, 'Enter Key…', 'From Key File…');
        if (next === 'Enter Key…') await vscode.commands.executeCommand('grass.setTargetKey', name.trim());
        if (next === 'From Key File…') await vscode.commands.executeCommand('grass.setTargetKeyFromFile', name.trim());
      }
      return name.trim();
    }),
    /** Removes a target from the user's grass.targets setting and forgets its key. */
    vscode.commands.registerCommand('grass.removeTarget', async (arg?: unknown): Promise<boolean> => {
      const target = await pickTarget(deps.configured, arg, 'remove');
      if (!target) return false;
      if (deps.sessions.current?.target.name === target.name) deps.sessions.close();
      const { entries, scope } = writtenTargets();
      await vscode.workspace.getConfiguration('grass').update('targets', entries.filter((e) => entryName(e) !== target.name), scope);
      await deps.keys.delete(target.name);
      deps.output.info(`removed target ${target.name}`);
      return true;
    }),
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
