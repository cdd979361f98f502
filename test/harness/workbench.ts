// From a test inside the extension host: look at the workbench as rendered in the browser,
// through the launcher (see launcher.ts). Only for suites run by the code-server launcher.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REQUEST = 'grass-launcher: ';

interface Request {
  op: 'texts' | 'click' | 'fill' | 'screenshot';
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
  return workbenchTexts(`.pane:has(.pane-header[aria-label^="${viewTitle}"]) .monaco-list-row`);
}

/** The welcome text a view shows when it has no rows. */
export function viewWelcome(viewTitle: string): Promise<string[]> {
  return workbenchTexts(`.pane:has(.pane-header[aria-label^="${viewTitle}"]) .welcome-view-content`);
}
