// From a test inside the extension host: look at the workbench as rendered in the browser,
// through the launcher (see launcher.ts). Only for suites run by the code-server launcher.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REQUEST = 'grass-launcher: ';

async function ask(request: { op: string; selector?: string; out: string }, timeoutMs: number): Promise<void> {
  console.log(REQUEST + JSON.stringify(request));
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(request.out)) {
    if (Date.now() > deadline) throw new Error(`the launcher did not answer ${JSON.stringify(request)} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Inner texts of the elements matching a CSS selector in the workbench page. */
export async function workbenchTexts(selector: string, timeoutMs = 10_000): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'grass-workbench-'));
  try {
    const out = path.join(dir, 'texts.json');
    await ask({ op: 'texts', selector, out }, timeoutMs);
    const answer = JSON.parse(readFileSync(out, 'utf8')) as string[] | { error: string };
    if (!Array.isArray(answer)) throw new Error(`workbench texts of '${selector}': ${answer.error}`);
    return answer;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
