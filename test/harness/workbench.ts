// From a test inside the extension host: look at the workbench as rendered in the browser,
// through the launcher (see launcher.ts). Only for suites run by the code-server launcher.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';

const REQUEST = 'grass-launcher: ';

interface Request {
  op: 'texts' | 'click' | 'fill' | 'hover' | 'screenshot';
  selector?: string;
  value?: string;
  frames?: string[];
  out: string;
}

async function ask(request: Request, timeoutMs: number): Promise<void> {
  console.log(REQUEST + JSON.stringify(request));
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(request.out)) {
    if (Date.now() > deadline) throw new Error(`the launcher did not answer ${JSON.stringify(request)} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function askJson<T>(request: Omit<Request, 'out'>, timeoutMs: number): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'grass-workbench-'));
  try {
    const out = path.join(dir, 'answer.json');
    await ask({ ...request, out }, timeoutMs);
    const answer = JSON.parse(readFileSync(out, 'utf8')) as T | { error: string };
    if (typeof answer === 'object' && answer !== null && 'error' in answer) throw new Error(`workbench ${request.op} '${request.selector}': ${answer.error}`);
    return answer as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Inner texts of the elements matching a CSS selector in the workbench page. */
export function workbenchTexts(selector: string, timeoutMs = 10_000): Promise<string[]> {
  return askJson<string[]>({ op: 'texts', selector }, timeoutMs);
}

/** Rests the mouse on the first element matching a selector; the texts of the hover VS Code shows. */
export function workbenchHover(selector: string, timeoutMs = 15_000): Promise<string[]> {
  return askJson<string[]>({ op: 'hover', selector }, timeoutMs);
}

/** Clicks the first element matching a selector in the workbench page. */
export function workbenchClick(selector: string, timeoutMs = 10_000): Promise<void> {
  return askJson<unknown>({ op: 'click', selector }, timeoutMs).then(() => undefined);
}

/** The page of the webview panel that has focus (VS Code nests it in two iframes). */
const ACTIVE_WEBVIEW = ['iframe.webview.ready', 'iframe#active-frame'];

/** In the active webview: inner texts, a click, typing into a field (Playwright's fill). */
export const webview = {
  texts: (selector: string, timeoutMs = 10_000) => askJson<string[]>({ op: 'texts', selector, frames: ACTIVE_WEBVIEW }, timeoutMs),
  click: (selector: string, timeoutMs = 10_000) => askJson<unknown>({ op: 'click', selector, frames: ACTIVE_WEBVIEW }, timeoutMs).then(() => undefined),
  fill: (selector: string, value: string, timeoutMs = 10_000) =>
    askJson<unknown>({ op: 'fill', selector, value, frames: ACTIVE_WEBVIEW }, timeoutMs).then(() => undefined),
};

/** Saves a PNG of the workbench now (for looking at a failing test). */
export async function workbenchScreenshot(file: string, timeoutMs = 10_000): Promise<void> {
  await ask({ op: 'screenshot', out: path.resolve(file) }, timeoutMs);
}

/** Rows a tree view shows, by the view's title (e.g. 'Targets'). */
export function viewRows(viewTitle: string): Promise<string[]> {
  return workbenchTexts(viewRowSelector(viewTitle));
}

/** Selector of a tree view's rows, by the view's title. */
export function viewRowSelector(viewTitle: string): string {
  return `.pane:has(.pane-header[aria-label^="${viewTitle}"]) .monaco-list-row`;
}

/** A Targets row shows its state first, then ` · ` and the target's name: the row of a target. */
export function targetRow(rows: string[], name: string): string | undefined {
  return rows.find((r) => r.endsWith(` · ${name}`));
}

/** The hover (tooltip) of a Targets row, as shown when the mouse rests on it. */
export async function targetTooltip(name: string): Promise<string> {
  return (await workbenchHover(`${viewRowSelector('Targets')}:has-text(" · ${name}")`)).join('\n');
}

/**
 * The notifications as the notification center shows them (each row: message, source, buttons;
 * toasts do not stay on screen in this headless workbench). `part`: only the messages, or only
 * the buttons. The center is closed again afterwards.
 */
export async function notificationTexts(part: 'item' | 'message' | 'buttons' = 'item'): Promise<string[]> {
  const selector = { item: '', message: ' .notification-list-item-message', buttons: ' .notification-list-item-buttons-container .monaco-button' }[part];
  await vscode.commands.executeCommand('notifications.showList');
  try {
    return await workbenchTexts(`.notifications-center .notification-list-item${selector}`);
  } finally {
    await vscode.commands.executeCommand('notifications.hideList');
  }
}

/** The description a view's title shows (its header, beside the title). */
export function viewDescription(viewTitle: string): Promise<string[]> {
  return workbenchTexts(`.pane-header[aria-label^="${viewTitle}"] .description`);
}

/** The welcome text a view shows when it has no rows. */
export function viewWelcome(viewTitle: string): Promise<string[]> {
  return workbenchTexts(`.pane:has(.pane-header[aria-label^="${viewTitle}"]) .welcome-view-content`);
}
