// Status bar: the connected target's heartbeat (round trip in µs, or which part failed).
// The session polls; this only renders what each poll reported. Click: a heartbeat now.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { describeHeartbeat, type HeartbeatState } from '../session/liveSession';

export class HeartbeatStatusBar implements vscode.Disposable {
  readonly item = vscode.window.createStatusBarItem('grass.heartbeat', vscode.StatusBarAlignment.Left, 50);
  private sessionWatch: vscode.Disposable | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly sessions: Sessions) {
    this.item.name = 'GRASS heartbeat';
    this.item.command = 'grass.heartbeat';
    this.subscriptions = [sessions.onDidChange(() => this.attach())];
    this.attach();
  }

  private attach(): void {
    this.sessionWatch?.dispose();
    const session = this.sessions.current;
    if (!session) {
      this.item.hide();
      return;
    }
    this.sessionWatch = session.onDidHeartbeat((state) => this.render(session.target.name, state));
    this.render(session.target.name, session.heartbeatState);
    this.item.show();
  }

  private render(target: string, state: HeartbeatState): void {
    const icon = { pending: '$(sync~spin)', alive: '$(pulse)', monitorNotAnswering: '$(warning)', transportDead: '$(error)', error: '$(error)' }[state.kind];
    const short =
      state.kind === 'alive'
        ? `${state.roundTripUs.toFixed(0)} µs`
        : { pending: '…', monitorNotAnswering: 'monitor not answering', transportDead: 'transport/agent dead', error: 'heartbeat failed' }[state.kind];
    this.item.text = `${icon} ${target}: ${short}`;
    this.item.tooltip = describeHeartbeat(target, state) + ('at' in state ? ` (at ${state.at.toISOString()})` : '');
    this.item.backgroundColor = state.kind === 'alive' || state.kind === 'pending' ? undefined : new vscode.ThemeColor('statusBarItem.errorBackground');
  }

  dispose(): void {
    this.sessionWatch?.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
