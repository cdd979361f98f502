// Connect, disconnect, heartbeat.
import * as vscode from 'vscode';
import { stopRelay } from '../relay/remote';
import { classifyFailure } from '../session/failure';
import { describeHeartbeat, LiveSession, type HeartbeatState } from '../session/live-session';
import { causeFirst } from '../views/cause-first';
import type { CommandDeps } from './deps';
import { pickTarget } from './pick-target';
import { requireSession } from './require-session';
import { KEY_ACTIONS, keyRefused, runKeyAction } from './targets';

export function registerConnectionCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    /** Resolves to whether a session is open afterwards. */
    vscode.commands.registerCommand('grass.connect', async (arg?: unknown): Promise<boolean> => {
      const target = await pickTarget(deps.configured, arg, 'connect to');
      if (!target) return false;
      const key = await deps.keys.get(target.name);
      if (!key) {
        // The fix is one click away: the same two ways Add Target offers.
        void vscode.window
          .showWarningMessage(`GRASS: no key stored for '${target.name}': connecting needs the key its agent was given.`, ...KEY_ACTIONS)
          .then((choice) => runKeyAction(choice, target.name));
        return false;
      }
      try {
        const session = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `GRASS: connecting to ${target.name}…` },
          () => LiveSession.open(target, key, deps.relayLaunch()),
        );
        deps.views.targetsProvider.setConnectFailure(target.name, undefined);
        deps.sessions.open(session);
        const held = session.heldBy;
        deps.output.info(
          `connected to ${target.name} (${target.address})${held ? `, held by the monitor at ${held.socketPath}${held.startedPid ? ` (started now, pid ${held.startedPid})` : ''}` : ''}`,
        );
        return true;
      } catch (err) {
        const failure = classifyFailure(err);
        deps.output.error(`cannot connect to '${target.name}' (${target.address}): ${failure.message}`);
        deps.views.targetsProvider.setConnectFailure(target.name, failure);
        // Cause first: the toast is cut at its edge, and the address is the least news in it. A
        // refused key gets the two ways to give another.
        const text = `GRASS: ${causeFirst(failure.message)} — cannot connect to '${target.name}' (${target.address})`;
        if (keyRefused(failure.message)) void vscode.window.showErrorMessage(text, ...KEY_ACTIONS).then((choice) => runKeyAction(choice, target.name));
        else void vscode.window.showErrorMessage(text);
        return false;
      }
    }),
    vscode.commands.registerCommand('grass.disconnect', () => {
      const session = requireSession(deps.sessions, 'disconnect');
      if (!session) return;
      deps.output.info(`disconnected from ${session.target.name}`);
      deps.sessions.close();
    }),
    /** Stops the grass monitor holding the sessions (asks first unless the argument is true);
     * resolves to whether it stopped. Its sessions to dead kernels cannot be opened again. */
    vscode.commands.registerCommand('grass.stopMonitor', async (confirmed?: unknown): Promise<boolean> => {
      const socketPath = deps.relayLaunch().socketPath;
      if (confirmed !== true) {
        const answer = await vscode.window.showWarningMessage(
          `Stop the grass monitor at ${socketPath}? Every session it holds is dropped; a target whose kernel is dead cannot be connected again.`,
          { modal: true },
          'Stop Monitor',
        );
        if (answer !== 'Stop Monitor') return false;
      }
      if (deps.sessions.current?.heldBy) deps.sessions.close();
      try {
        const pid = await stopRelay(socketPath);
        deps.output.info(`stopped the monitor at ${socketPath} (pid ${pid})`);
        deps.views.targetsProvider.refresh();
        return true;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot stop the monitor at ${socketPath}: ${(err as Error).message}`);
        return false;
      }
    }),
    /** Resolves to the heartbeat's state (round trip, or which part failed). */
    vscode.commands.registerCommand('grass.heartbeat', async (): Promise<HeartbeatState | undefined> => {
      const session = requireSession(deps.sessions, 'send a heartbeat');
      if (!session) return undefined;
      const state = await session.heartbeat();
      const text = describeHeartbeat(session.target.name, state);
      deps.output.info(text);
      if (state.kind === 'alive') void vscode.window.showInformationMessage(`GRASS: ${text}`);
      else void vscode.window.showErrorMessage(`GRASS: ${text}`);
      return state;
    }),
  ];
}
