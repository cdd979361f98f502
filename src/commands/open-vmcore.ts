// "GRASS: Open Vmcore…": a file picker, then the file as a vmcore: target (added to grass.targets
// under the file's name when no target has that address yet) and a session on it. A vmcore
// (ELF, or makedumpfile's kdump-compressed format, plain or flattened) is served by a private
// local agent with a fresh key of its own, so it needs no stored key.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import * as vscode from 'vscode';
import { LiveSession } from '../session/live-session';
import { classifyFailure } from '../session/failure';
import { causeFirst } from '../views/cause-first';
import type { CommandDeps } from './deps';

export function registerOpenVmcoreCommand(deps: CommandDeps): vscode.Disposable {
  /** Resolves to the target's name once its session is open (undefined: cancelled or failed). */
  return vscode.commands.registerCommand('grass.openVmcore', async (fileArg?: unknown): Promise<string | undefined> => {
    const file =
      typeof fileArg === 'string'
        ? fileArg
        : (await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFolders: false, openLabel: 'Open Vmcore', title: 'GRASS: open a vmcore (ELF or kdump-compressed, as kdump or save-vmcore wrote it)' }))?.[0]?.fsPath;
    if (!file) return undefined;
    const address = `vmcore:${path.resolve(file)}`;
    const known = (): ReturnType<typeof deps.configured.read>['targets'] => deps.configured.read().targets;
    if (!known().some((t) => t.address === address)) {
      const names = new Set(known().map((t) => t.name));
      const base = path.basename(file);
      let name = base;
      for (let n = 2; names.has(name); n++) name = `${base} (${n})`;
      if ((await vscode.commands.executeCommand<string | undefined>('grass.addTarget', name, address)) === undefined) return undefined;
    }
    const target = known().find((t) => t.address === address);
    if (!target) {
      void vscode.window.showErrorMessage(`GRASS: ${address} was added to grass.targets but is not in effect (a workspace setting overrides it?)`);
      return undefined;
    }
    try {
      // The offline agent makes and uses a key of its own; this one only fills the argument.
      const session = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `GRASS: opening ${path.basename(file)}…` }, () =>
        LiveSession.open(target, randomBytes(32), deps.relayLaunch()),
      );
      deps.views.targetsProvider.setConnectFailure(target.name, undefined);
      deps.sessions.open(session);
      deps.output.info(`opened ${file} as target ${target.name}${session.source ? ` (${session.source.format}${session.source.compression ? `, ${session.source.compression}` : ''})` : ''}`);
      return target.name;
    } catch (err) {
      const failure = classifyFailure(err);
      deps.output.error(`cannot open ${file}: ${failure.message}`);
      deps.views.targetsProvider.setConnectFailure(target.name, failure);
      void vscode.window.showErrorMessage(`GRASS: ${causeFirst(failure.message)} — cannot open ${file}`);
      return undefined;
    }
  });
}
