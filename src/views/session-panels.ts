// What the memory inspector's and the struct decoder's panels share: any number of panels of
// one webview, each adopted the same way (opened now or restored by VS Code after a reload),
// told which target they read whenever the session changes, and disposed together.
import * as vscode from 'vscode';
import type { KernelModel } from '../kernel/model';
import type { PanelStatusMessage } from '../types/webview-protocol';
import type { Sessions } from '../session/sessions';
import { WebviewHost, type WebviewHostOptions } from './webview-host';

export abstract class SessionPanels<ToWebview extends { type: string }, FromWebview extends { type: string }> implements vscode.Disposable {
  private readonly panels = new Set<WebviewHost<ToWebview, FromWebview>>();
  protected readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly extensionUri: vscode.Uri,
    protected readonly sessions: Sessions,
    protected readonly output: vscode.LogOutputChannel,
    private readonly options: WebviewHostOptions<FromWebview> & {
      /** The page's status message (a PanelStatusMessage is one of ToWebview's). */
      status(message: PanelStatusMessage): ToWebview;
    },
  ) {
    this.subscriptions = [
      sessions.onDidChange(() => {
        for (const panel of this.panels) this.sendStatus(panel);
      }),
      vscode.window.registerWebviewPanelSerializer(options.viewType, {
        // The page restores what it showed from its own saved state; the host only rewires it.
        deserializeWebviewPanel: async (panel) => void this.adopt(panel),
      }),
    ];
  }

  /** Open panels (tests and the bench talk to them). */
  get openPanels(): WebviewHost<ToWebview, FromWebview>[] {
    return [...this.panels].filter((p) => !p.isDisposed);
  }

  /** A new panel, or one VS Code restored; its messages go to `handle`, after `ready` its status. */
  protected adopt(restored: vscode.WebviewPanel | undefined): WebviewHost<ToWebview, FromWebview> {
    const panel = new WebviewHost<ToWebview, FromWebview>(this.extensionUri, this.options, this.output, restored);
    this.panels.add(panel);
    panel.onDidDispose(() => this.panels.delete(panel));
    panel.onMessage((message) => {
      if (message.type === 'ready') this.sendStatus(panel);
      void this.handle(panel, message);
    });
    return panel;
  }

  /** The connected target's kernel model (what every panel reads through). */
  protected async model(): Promise<KernelModel> {
    const session = this.sessions.current;
    if (!session) throw new Error('not connected to a target');
    return session.model();
  }

  protected abstract handle(panel: WebviewHost<ToWebview, FromWebview>, message: FromWebview): Promise<void>;

  /** Tells the page which target it reads (name and address), or that none is connected. */
  private sendStatus(panel: WebviewHost<ToWebview, FromWebview>): void {
    const session = this.sessions.current;
    void panel.post(
      this.options.status(
        session
          ? { type: 'status', connected: true, text: `Reading ${session.target.name} (${session.target.address}).` }
          : { type: 'status', connected: false, text: 'Not connected to a target. Run "GRASS: Connect to Target…" first.' },
      ),
    );
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    for (const panel of this.panels) panel.dispose();
  }
}
