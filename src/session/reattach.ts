// After a window reload or an extension-host restart: the session the `grass monitor` still
// holds is attached to again, without the user connecting by hand. Only a relay that already
// answers is asked (none is started), only configured targets whose key is in secret storage
// are attached, and nothing is held anew. Runs off activation's path; failures are logged only.
import type * as vscode from 'vscode';
import { relayRunning, relayTargets } from '../relay/remote';
import type { TargetConfig } from '../settings/targets';
import { LiveSession } from './live-session';
import { heldAs } from './relay-model';

export interface ReattachDeps {
  socketPath: string;
  /** The configured targets (grass.targets). */
  targets: () => TargetConfig[];
  /** The target's key from secret storage, if stored. */
  key: (targetName: string) => Promise<Uint8Array | undefined>;
  /** The window's session slot: re-attaching never replaces a session opened meanwhile. */
  sessions: { readonly current: LiveSession | undefined; open(session: LiveSession): void };
  output: vscode.LogOutputChannel;
}

/** Re-attaches to the first configured target the relay holds; resolves to the session opened, if any. */
export async function reattachHeldSession(deps: ReattachDeps): Promise<LiveSession | undefined> {
  const { socketPath, output } = deps;
  try {
    if (!(await relayRunning(socketPath))) return undefined;
    const held = await relayTargets(socketPath);
    for (const target of deps.targets()) {
      if (target.parsed.kind !== 'shm' && target.parsed.kind !== 'rdma') continue;
      const status = held.find((h) => heldAs(target, h));
      if (!status) continue;
      const key = await deps.key(target.name);
      if (!key) {
        output.info(`the monitor at ${socketPath} holds ${target.name}, but no key is stored for it: not re-attached`);
        continue;
      }
      const session = await LiveSession.attachHeld(target, key, { socketPath }, status.name);
      if (deps.sessions.current) {
        // The user connected while this ran: theirs stays.
        session.dispose();
        return undefined;
      }
      deps.sessions.open(session);
      output.info(`re-attached to ${target.name} (${target.address}), held by the monitor at ${socketPath} since ${status.since}`);
      return session;
    }
  } catch (err) {
    output.error(`cannot re-attach to the session held by the monitor at ${socketPath}: ${(err as Error).message}`);
  }
  return undefined;
}
