// The commands' guard for "needs a connected target".
import * as vscode from 'vscode';
import type { LiveSession } from '../session/live-session';
import type { Sessions } from '../session/sessions';

/** The session, or undefined after telling the user plainly that there is none. */
export function requireSession(sessions: Sessions, what: string): LiveSession | undefined {
  if (sessions.current) return sessions.current;
  void vscode.window.showWarningMessage(`GRASS: cannot ${what}: not connected to a target. Run "GRASS: Connect to Target…" first.`);
  return undefined;
}
