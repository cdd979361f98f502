// The memory inspector panel (one per window). Reads go through the target session; with no
// session the page is told so plainly.
import * as vscode from 'vscode';
import {
  isMemoryInspectorWebviewMessage,
  type MemoryInspectorHostMessage,
  type MemoryInspectorWebviewMessage,
} from '../../webview/protocol';
import type { Sessions } from '../commands/sessions';
import { WebviewHost } from './webviewHost';

export type MemoryInspectorPanel = WebviewHost<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage>;

export class MemoryInspector implements vscode.Disposable {
  private panel: MemoryInspectorPanel | undefined;
  private readonly sessionWatch: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sessions: Sessions,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.sessionWatch = sessions.onDidChange(() => this.sendStatus());
  }

  /** Opens the panel, or reveals it when it is open already. */
  open(): MemoryInspectorPanel {
    if (this.panel && !this.panel.isDisposed) {
      this.panel.panel.reveal();
      return this.panel;
    }
    const panel: MemoryInspectorPanel = new WebviewHost(
      this.extensionUri,
      { viewType: 'grass.memoryInspector', title: 'GRASS Memory Inspector', bundle: 'memory-inspector', isMessage: isMemoryInspectorWebviewMessage },
      this.output,
    );
    panel.onMessage((message) => {
      switch (message.type) {
        case 'ready':
          this.sendStatus();
          break;
        case 'readMemory':
          // Remote-analysis reads arrive with the protocol client; until a session exists
          // the answer is that there is none.
          void panel.post({ type: 'readMemoryResult', address: message.address, length: message.length, error: 'not connected to a target' });
          break;
      }
    });
    this.panel = panel;
    return panel;
  }

  private sendStatus(): void {
    if (!this.panel || this.panel.isDisposed) return;
    const session = this.sessions.current;
    void this.panel.post(
      session
        ? { type: 'status', connected: true, text: `Connected to ${session.target.name} (${session.target.address}).` }
        : { type: 'status', connected: false, text: 'Not connected to a target. Run "GRASS: Connect to Target…" first.' },
    );
  }

  dispose(): void {
    this.sessionWatch.dispose();
    this.panel?.dispose();
  }
}
