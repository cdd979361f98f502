// Target housekeeping: adding and removing targets (the grass.targets setting), keys in secret
// storage, refreshing the Targets view.
import * as vscode from 'vscode';
import { parseTargetAddress } from '../rdma/address';
import { holdThroughRelay, relayRunning } from '../relay/remote';
import { openTarget } from '../session/open-target';
import { KEY_BYTES, parseKeyHex } from '../settings/keys';
import type { TargetConfig } from '../settings/targets';
import { causeFirst } from '../views/cause-first';
import type { CommandDeps } from './deps';
import { pickTarget } from './pick-target';

/** The two ways to give a target its key, offered wherever a key is missing or refused. */
export const KEY_ACTIONS = ['Enter Key…', 'From Key File…'] as const;

/** Runs the key command a notification's button names, for `target`. */
export function runKeyAction(choice: string | undefined, target: string): void {
  if (choice === KEY_ACTIONS[0]) void vscode.commands.executeCommand('grass.setTargetKey', target);
  if (choice === KEY_ACTIONS[1]) void vscode.commands.executeCommand('grass.setTargetKeyFromFile', target);
}

/** Whether a failure is the agent refusing the key (GRASS_STATUS_BAD_MAC, as the client and the monitor word it). */
export function keyRefused(message: string): boolean {
  return /bad authenticator/.test(message);
}

/**
 * Checks a key against the target's agent now, with one authenticated request: the monitor's
 * hold when a monitor runs (it checks the key before it holds the target or signs with it),
 * else a heartbeat of a direct connection, closed again. Resolves to the error, or undefined
 * when the agent took the key.
 */
async function checkKey(deps: CommandDeps, target: TargetConfig, key: Uint8Array): Promise<Error | undefined> {
  const { socketPath } = deps.relayLaunch();
  try {
    if (await relayRunning(socketPath)) {
      await holdThroughRelay(socketPath, target.address, key);
      return undefined;
    }
    const protocol = await openTarget(target.address, { key, timeoutMs: target.options.requestTimeoutMs, relaySocket: socketPath });
    try {
      await protocol.client.heartbeatRoundTrip();
    } finally {
      await protocol.close();
    }
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Stores a key once its target's agent has taken it (offline images have no agent: stored as
 * is). A refused key is not stored and the warning says so, with the two ways to give another;
 * a key that could not be checked (target unreachable) is stored, and the warning says why.
 * Resolves to whether the key is stored.
 */
async function storeCheckedKey(deps: CommandDeps, target: TargetConfig, hex: string, from: string): Promise<boolean> {
  const key = parseKeyHex(hex);
  const live = target.parsed.kind === 'shm' || target.parsed.kind === 'rdma';
  const failure = live
    ? await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `GRASS: checking the key of ${target.name}` }, () => checkKey(deps, target, key))
    : undefined;
  if (failure && keyRefused(failure.message)) {
    deps.output.warn(`the agent of ${target.name} refused the key ${from}: ${failure.message}`);
    void vscode.window
      .showWarningMessage(`GRASS: bad authenticator — the agent of '${target.name}' refused this key; it was not stored.`, ...KEY_ACTIONS)
      .then((choice) => runKeyAction(choice, target.name));
    return false;
  }
  await deps.keys.set(target.name, hex);
  if (failure) {
    deps.output.warn(`stored a key for ${target.name} ${from}, unchecked: ${failure.message}`);
    void vscode.window.showWarningMessage(`GRASS: ${causeFirst(failure.message)} — the key for '${target.name}' is stored but could not be checked against its agent.`);
  } else {
    deps.output.info(`stored a key for ${target.name} ${from}${live ? ', checked against its agent' : ''}`);
    void vscode.window.showInformationMessage(live ? `GRASS: key for '${target.name}' checked: its agent answered.` : `GRASS: key for '${target.name}' stored (an offline image has no agent to check it).`);
  }
  return true;
}

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
      if (interactive) runKeyAction(await vscode.window.showInformationMessage(`GRASS: added '${name.trim()}'. Its key?`, ...KEY_ACTIONS), name.trim());
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
    /** Asks for the key (a password input), checks it against the agent and stores it; resolves to whether it is stored. */
    vscode.commands.registerCommand('grass.setTargetKey', async (arg?: unknown): Promise<boolean> => {
      const target = await pickTarget(deps.configured, arg, 'set the key of');
      if (!target) return false;
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
      if (hex === undefined) return false;
      return storeCheckedKey(deps, target, hex, 'typed in');
    }),
    /** The key from a key file (what `grass agent --key-file` was given), checked against the agent and stored; resolves to whether it is stored. */
    vscode.commands.registerCommand('grass.setTargetKeyFromFile', async (arg?: unknown, file?: unknown): Promise<boolean> => {
      const target = await pickTarget(deps.configured, arg, 'set the key of');
      if (!target) return false;
      const uri =
        file instanceof vscode.Uri
          ? file
          : (await vscode.window.showOpenDialog({ title: `GRASS: key file for ${target.name}`, canSelectMany: false, openLabel: 'Use Key' }))?.[0];
      if (!uri) return false;
      try {
        return await storeCheckedKey(deps, target, Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8'), `from ${uri.fsPath}`);
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: the key file ${uri.fsPath} cannot be used: ${(err as Error).message}`);
        return false;
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
