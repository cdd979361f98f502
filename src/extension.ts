// Activation: creates the shared pieces and wires views and commands to them. Nothing else.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { registerDebugAdapter } from './debug/adapter';
import { Sessions } from './session/sessions';
import { defaultRelaySocket } from './relay/wire';
import { RelayModel } from './session/relay-model';
import { ConfiguredTargets } from './settings/configured-targets';
import { TargetKeys } from './settings/keys';
import { registerViews, type GrassViews } from './views';
import { MemoryInspector } from './views/memory-inspector';
import { reattachHeldSession } from './session/reattach';

/** What activate() returns: the live pieces, for extensions and tests that drive GRASS. */
export interface GrassExtensionApi {
  views: GrassViews;
  keys: TargetKeys;
  sessions: Sessions;
  /** Pids of the `grass monitor`s this extension host started; they outlive it by design. */
  relaysStarted: number[];
}

export function activate(context: vscode.ExtensionContext): GrassExtensionApi {
  const output = vscode.window.createOutputChannel('GRASS', { log: true });
  const configured = new ConfiguredTargets();
  const keys = new TargetKeys(context.secrets);
  const sessions = new Sessions();
  const memoryInspector = new MemoryInspector(context.extensionUri, sessions, output);
  context.subscriptions.push(output, configured, sessions, memoryInspector);

  const relaysStarted: number[] = [];
  const relaySocket = () => vscode.workspace.getConfiguration('grass').get<string>('monitor.socketPath') || defaultRelaySocket();
  const relayLaunch = () => ({ socketPath: relaySocket(), cliPath: context.asAbsolutePath('dist/cli.js'), onStarted: (pid: number) => relaysStarted.push(pid) });
  const relay = new RelayModel(relaySocket);
  context.subscriptions.push(relay);
  const views = registerViews(context, { configured, keys, sessions, output, relay });
  registerCommands(context, { output, configured, keys, sessions, views, memoryInspector, relayLaunch });
  context.subscriptions.push(
    registerDebugAdapter(async (target, connect) => {
      const current = sessions.current;
      if (current && (target === undefined || current.target.name === target)) return current;
      if (!connect) return undefined;
      // Connecting replaces the window's one session (every view, the status bar and the memory
      // panels follow it): never silently. The attach waits for the answer.
      if (current) {
        const [change, keep] = [`Switch to ${target}`, `Keep ${current.target.name}`];
        const answer = await vscode.window.showWarningMessage(
          `GRASS: this debug session is for '${target}', but the window is connected to '${current.target.name}'. Switch the window's session (every GRASS view) to '${target}'?`,
          change,
          keep,
        );
        if (answer !== change) throw new Error(`the window stays connected to '${current.target.name}' (switching to '${target}' was declined)`);
      }
      return (await vscode.commands.executeCommand<boolean>('grass.connect', target)) ? sessions.current : undefined;
    }),
  );
  // The session the relay still holds from before a reload or restart, re-attached off this path.
  void reattachHeldSession({ socketPath: relaySocket(), targets: () => configured.read().targets, key: (name) => keys.get(name), sessions, output });
  output.info(`GRASS ${context.extension.packageJSON.version} activated (${vscode.env.remoteName ? `remote: ${vscode.env.remoteName}` : 'local'})`);
  return { views, keys, sessions, relaysStarted };
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
