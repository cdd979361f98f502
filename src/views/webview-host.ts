// The extension host's side of a webview panel: loads one webview bundle
// (dist/webview/<name>.js, through asWebviewUri) under a strict Content-Security-Policy with a
// per-page nonce and carries typed messages both ways. Every webview answers `ping` with
// `pong`. A panel VS Code restored after a reload (WebviewPanelSerializer) is adopted as is.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { CommonHostMessage, CommonWebviewMessage } from '../types/webview-protocol';

export interface WebviewHostOptions<FromWebview> {
  viewType: string;
  title: string;
  /** Bundle name: dist/webview/<bundle>.js, built from webview/<bundle>/index.ts. */
  bundle: string;
  /** Rejects malformed messages before any handler sees them. */
  isMessage(value: unknown): value is FromWebview;
}

type Pong = Extract<CommonWebviewMessage, { type: 'pong' }>;

export class WebviewHost<ToWebview extends { type: string }, FromWebview extends { type: string }> implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private readonly handlers: ((message: FromWebview) => void)[] = [];
  private readonly pending = new Map<number, (pong: Pong) => void>();
  private nextPingId = 1;
  private readonly ready: Promise<void>;
  private disposed = false;

  private readonly subscriptions: vscode.Disposable[] = [];

  /** `restored`: a panel VS Code recreated after a reload; else a new one is opened. */
  constructor(
    extensionUri: vscode.Uri,
    private readonly options: WebviewHostOptions<FromWebview>,
    output: vscode.LogOutputChannel,
    restored?: vscode.WebviewPanel,
  ) {
    const bundleRoot = vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
    const webviewOptions = { enableScripts: true, localResourceRoots: [bundleRoot] };
    this.panel =
      restored ??
      vscode.window.createWebviewPanel(options.viewType, options.title, vscode.ViewColumn.Active, { ...webviewOptions, retainContextWhenHidden: true });
    this.panel.webview.options = webviewOptions;
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.subscriptions.push(this.panel.webview.onDidReceiveMessage((raw: unknown) => {
      if (!options.isMessage(raw)) {
        output.warn(`${options.title}: ignored a malformed message from the webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
        return;
      }
      const message = raw as FromWebview & CommonWebviewMessage;
      if (message.type === 'ready') markReady();
      if (message.type === 'pong') {
        this.pending.get(message.id)?.(message);
        this.pending.delete(message.id);
      }
      for (const handler of this.handlers) handler(message);
    }));
    this.panel.onDidDispose(() => {
      this.disposed = true;
      for (const s of this.subscriptions) s.dispose();
    });
    this.panel.webview.html = this.html(vscode.Uri.joinPath(bundleRoot, `${options.bundle}.js`));
  }

  onMessage(handler: (message: FromWebview) => void): void {
    this.handlers.push(handler);
  }

  post(message: ToWebview | CommonHostMessage): Thenable<boolean> {
    return this.panel.webview.postMessage(message);
  }

  /** Resolves once the page's script has run and said `ready`. */
  whenReady(timeoutMs: number): Promise<void> {
    return withTimeout(this.ready, timeoutMs, `${this.options.title}: the webview did not load within ${timeoutMs} ms`);
  }

  /** Round trip to the page: proves it runs and answers; returns what it reported. */
  async ping(timeoutMs: number): Promise<Pong> {
    await this.whenReady(timeoutMs);
    const id = this.nextPingId++;
    const answered = new Promise<Pong>((resolve) => this.pending.set(id, resolve));
    await this.post({ type: 'ping', id });
    try {
      return await withTimeout(answered, timeoutMs, `${this.options.title}: the webview did not answer ping ${id} within ${timeoutMs} ms`);
    } finally {
      this.pending.delete(id);
    }
  }

  /** Runs when the panel closes (by the user or dispose()). */
  onDidDispose(listener: () => void): void {
    this.panel.onDidDispose(listener);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    this.panel.dispose();
  }

  private html(script: vscode.Uri): string {
    const webview = this.panel.webview;
    const nonce = randomBytes(18).toString('base64');
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
      `img-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(this.options.title)}</title>
</head>
<body>
<script nonce="${nonce}" src="${webview.asWebviewUri(script).toString()}"></script>
</body>
</html>`;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
