// Status bar: the connected target's heartbeat (round trip in µs, or which part failed).
// The session polls; this only renders what each poll reported. Click: a heartbeat now.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import type { FailureState } from '../session/failure';
import { describeHeartbeat, type HeartbeatState } from '../session/live-session';

// A monitor that does not answer is a warning (it may come back); a dead path is an error.
const FAILURE_ICON: Record<FailureState, string> = {
  'monitor-busy': '$(warning)',
  'monitor-dead': '$(warning)',
  'gpu-nic-dead': '$(error)',
  refused: '$(error)',
  error: '$(error)',
};

const FAILURE_SHORT: Record<FailureState, string> = {
  'monitor-busy': 'monitor not answering',
  'monitor-dead': 'monitor not answering',
  'gpu-nic-dead': 'transport/agent dead',
  refused: 'heartbeat failed',
  error: 'heartbeat failed',
};

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
    const icon = state.kind === 'failed' ? FAILURE_ICON[state.failure] : { pending: '$(sync~spin)', alive: '$(pulse)' }[state.kind];
    const short = state.kind === 'alive' ? `${state.roundTripUs.toFixed(0)} µs` : state.kind === 'pending' ? '…' : FAILURE_SHORT[state.failure];
    this.item.text = `${icon} ${target}: ${short}`;
    this.item.tooltip = describeHeartbeat(target, state) + ('at' in state ? ` (at ${state.at.toISOString()})` : '');
    this.item.backgroundColor = state.kind === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.sessionWatch?.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
