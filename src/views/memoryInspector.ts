// The memory inspector panel (one per window). Reads go through the target session; with no
// session the page is told so plainly.
import * as vscode from 'vscode';
import {
  isMemoryInspectorWebviewMessage,
  type MemoryInspectorHostMessage,
  type MemoryInspectorWebviewMessage,
} from '../../webview/protocol';
import type { Sessions } from '../commands/sessions';
import { resolveKernelAddress } from '../session/addresses';
import { WebviewHost } from './webviewHost';

/** Largest range one read of the panel fetches. */
export const MAX_INSPECTOR_READ = 64 * 1024;

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
          void this.read(message.address, message.length).then((answer) => panel.post({ type: 'readMemoryResult', address: message.address, length: message.length, ...answer }));
          break;
      }
    });
    this.panel = panel;
    return panel;
  }

  /** Opens the panel and reads `length` bytes at `address` (a number, symbol or expression). */
  async openAt(address: string, length: number): Promise<MemoryInspectorPanel> {
    const panel = this.open();
    await panel.whenReady(15_000);
    await panel.post({ type: 'goTo', address, length });
    return panel;
  }

  /** Kernel-virtual bytes at what `text` designates, as hex; or why there are none. */
  private async read(text: string, length: number): Promise<{ resolved?: string; hex?: string; error?: string }> {
    const session = this.sessions.current;
    if (!session) return { error: 'not connected to a target' };
    if (!Number.isInteger(length) || length <= 0 || length > MAX_INSPECTOR_READ) return { error: `length must be between 1 and ${MAX_INSPECTOR_READ} bytes` };
    try {
      const model = await session.model();
      const { address } = await resolveKernelAddress(model, text);
      const bytes = await session.client.read({ kind: 'kernel' }, address, length);
      return { resolved: `0x${address.toString(16)}`, hex: Buffer.from(bytes).toString('hex') };
    } catch (err) {
      this.output.warn(`memory inspector: reading ${length} bytes at ${text}: ${(err as Error).message}`);
      return { error: (err as Error).message };
    }
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
