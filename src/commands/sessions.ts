// The session with the target the window is connected to, if any. Commands and views read it;
// the connect command opens it (src/session/liveSession.ts).
import * as vscode from 'vscode';
import type { LiveSession } from '../session/liveSession';

export type TargetSession = LiveSession;

export class Sessions implements vscode.Disposable {
  private session: TargetSession | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  get current(): TargetSession | undefined {
    return this.session;
  }

  /** Makes `session` the current one, closing the one before. */
  open(session: TargetSession): void {
    this.session?.dispose();
    this.session = session;
    this.changed.fire();
  }

  /** Closes the current session, if any. */
  close(): void {
    if (!this.session) return;
    this.session.dispose();
    this.session = undefined;
    this.changed.fire();
  }

  dispose(): void {
    this.close();
    this.changed.dispose();
  }
}

/** The session, or undefined after telling the user plainly that there is none. */
export function requireSession(sessions: Sessions, what: string): TargetSession | undefined {
  if (sessions.current) return sessions.current;
  void vscode.window.showWarningMessage(`GRASS: cannot ${what}: not connected to a target. Run "GRASS: Connect to Target…" first.`);
  return undefined;
}
