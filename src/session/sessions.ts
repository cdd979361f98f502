// The session with the target the window is connected to, if any. Commands and views read it;
// the connect command opens it (./live-session.ts).
import * as vscode from 'vscode';
import type { LiveSession } from './live-session';

export class Sessions implements vscode.Disposable {
  private session: LiveSession | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  get current(): LiveSession | undefined {
    return this.session;
  }

  /** Makes `session` the current one, closing the one before. */
  open(session: LiveSession): void {
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
