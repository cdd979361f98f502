// The VS Code workbench in headless Chromium, driven from outside as a person drives it: the
// extension under development loaded into code-server (a real Node extension host), a page
// driven with Playwright's keyboard and mouse, what it shows read back as text, screenshots.
// Facts behind this: /work/shared/notes/vscode-tests.md (code-server 4.139 = VS Code 1.139;
// Node 24 and playwright-core in .cache/tools, put there by scripts/setup-vscode.sh).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
const TOOLS = path.join(ROOT, '.cache/tools/vscode');
const NODE24 = path.join(ROOT, '.cache/tools/node/bin/node');
const CHROMIUM = '/usr/bin/chromium';

/** The parts of playwright-core used here (it lives in .cache/tools, outside the type-checked tree). */
export interface Locator {
  first(): Locator;
  last(): Locator;
  nth(index: number): Locator;
  count(): Promise<number>;
  allInnerTexts(): Promise<string[]>;
  innerText(options?: { timeout: number }): Promise<string>;
  getAttribute(name: string, options?: { timeout: number }): Promise<string | null>;
  click(options?: { timeout?: number; modifiers?: string[] }): Promise<void>;
  hover(options?: { timeout?: number }): Promise<void>;
  fill(value: string, options?: { timeout: number }): Promise<void>;
  waitFor(options: { state?: 'attached' | 'visible' | 'hidden'; timeout: number }): Promise<void>;
  screenshot(options: { path: string; timeout?: number }): Promise<unknown>;
  locator(selector: string): Locator;
  filter(options: { hasText: string | RegExp }): Locator;
  /** Runs `fn` on the element in the page (Playwright's locator.evaluate: the function's source travels, so it sees only the page). */
  evaluate<R>(fn: (element: PageElement) => R): Promise<R>;
}
/** The little of the DOM that tests evaluate in a page (this tsconfig has no DOM types). */
export interface PageElement {
  ownerDocument: {
    createElement(tag: string): PageElement;
    getElementById(id: string): PageElement | null;
    defaultView: { getComputedStyle(element: PageElement): { color: string } };
  };
  style: { color: string };
  title: string;
  scrollWidth: number;
  clientWidth: number;
  append(child: PageElement): void;
  remove(): void;
  querySelector(selector: string): PageElement | null;
  getBoundingClientRect(): { left: number; right: number };
}

export interface Frame {
  title(): Promise<string>;
  url(): string;
  locator(selector: string): Locator;
  evaluate<T>(fn: string): Promise<T>;
}
interface Keyboard {
  press(key: string): Promise<void>;
  type(text: string, options?: { delay: number }): Promise<void>;
}
export interface Page {
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  screenshot(options: { path: string }): Promise<unknown>;
  locator(selector: string): Locator;
  frames(): Frame[];
  keyboard: Keyboard;
  waitForTimeout(ms: number): Promise<void>;
  evaluate<T>(expression: string): Promise<T>;
  on(event: 'console', fn: (msg: { type(): string; text(): string }) => void): void;
}
interface Browser {
  newPage(options: { viewport: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
interface Playwright {
  chromium: { launch(options: { executablePath: string; headless: boolean; args: string[]; env: NodeJS.ProcessEnv }): Promise<Browser> };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message.split('\n')[0]})` : ''}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export class Workbench {
  private constructor(
    readonly page: Page,
    private readonly readySelector: string,
    private readonly browser: Browser,
    private readonly codeServer: ChildProcess,
    readonly scratch: string,
    readonly userSettingsFile: string,
  ) {}

  /**
   * Starts code-server with `settings` as the user's settings and the repository as the
   * extension under development, and opens the workbench on an empty folder; resolves once
   * `readySelector` (something the extension contributes) shows.
   */
  static async start(settings: Record<string, unknown>, readySelector: string): Promise<Workbench> {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'grass-ui-'));
    const env = { ...process.env, TMPDIR: scratch, XDG_CONFIG_HOME: path.join(scratch, 'config'), XDG_CACHE_HOME: path.join(scratch, 'cache'), XDG_DATA_HOME: path.join(scratch, 'data') };
    const userData = path.join(scratch, 'user-data');
    const userSettingsFile = path.join(userData, 'User', 'settings.json');
    const workspace = path.join(scratch, 'workspace');
    mkdirSync(path.dirname(userSettingsFile), { recursive: true });
    mkdirSync(workspace);
    writeFileSync(
      userSettingsFile,
      JSON.stringify({
        'chat.disableAIFeatures': true,
        'workbench.startupEditor': 'none',
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'telemetry.telemetryLevel': 'off',
        'workbench.enableExperiments': false,
        'workbench.tips.enabled': false,
        // The editor area as wide as the window allows (screenshots of the panels).
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        ...settings,
      }),
    );
    const toolsRequire = createRequire(path.join(TOOLS, 'package.json'));
    const entry = path.join(path.dirname(toolsRequire.resolve('code-server/package.json')), 'out/node/entry.js');
    const playwright = toolsRequire('playwright-core') as Playwright;
    const port = await freePort();
    const output: string[] = [];
    const codeServer = spawn(
      NODE24,
      [entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--ignore-last-opened',
        '--user-data-dir', userData, '--extensions-dir', path.join(scratch, 'extensions'),
        // Without it the workbench ignores the URL's payload (the extension under development).
        '--vscode-option', 'enable-smoke-test-driver'],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, PATH: `${path.dirname(NODE24)}:${process.env.PATH ?? ''}` } },
    );
    for (const s of [codeServer.stdout!, codeServer.stderr!]) s.setEncoding('utf8').on('data', (c: string) => output.push(c));
    let browser: Browser | undefined;
    try {
      await waitUntil(`code-server on port ${port}`, async () => {
        if (codeServer.exitCode !== null) throw new Error(`code-server exited (${codeServer.exitCode}): ${output.join('')}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok;
      }, 60_000);
      browser = await playwright.chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-breakpad'],
        env,
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      // GRASS_UI_VERBOSE=1: the workbench's console (the extension host's log is in it).
      if (process.env.GRASS_UI_VERBOSE === '1') page.on('console', (m) => process.stderr.write(`[workbench ${m.type()}] ${m.text()}\n`));
      const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${ROOT}`]]);
      await page.goto(`http://127.0.0.1:${port}/?${new URLSearchParams({ folder: workspace, payload }).toString()}`);
      const workbench = new Workbench(page, readySelector, browser, codeServer, scratch, userSettingsFile);
      await workbench.loaded();
      return workbench;
    } catch (err) {
      await browser?.close().catch(() => undefined);
      stopGroup(codeServer);
      rmSync(scratch, { recursive: true, force: true });
      throw err;
    }
  }

  /** Resolves once the extension's contributions show and the extensions have activated. */
  private async loaded(): Promise<void> {
    await this.page.locator(this.readySelector).waitFor({ state: 'visible', timeout: 90_000 });
    await this.page.locator('.statusbar').filter({ hasText: 'Activating Extensions' }).waitFor({ state: 'hidden', timeout: 90_000 });
  }

  /**
   * Reloads the window (a fresh extension host; VS Code restores the editors it had). In the
   * browser VS Code writes its UI state (open editors, their titles, webview state) to
   * IndexedDB now and then, and a reload cannot wait for the last write: what it restores can
   * be older than what was shown (CI restored a Struct Decoder panel from before its first
   * decode). With `saved`, the reload waits until a stored state item contains every string.
   */
  async reload(saved: string[] = []): Promise<void> {
    if (saved.length > 0) {
      await waitUntil(`VS Code's stored UI state to name ${saved.map((s) => JSON.stringify(s)).join(', ')}`, async () => {
        const items = await this.page.evaluate<string[]>(STORED_UI_STATE);
        return items.some((item) => saved.every((s) => item.includes(s))) || undefined;
      }, 120_000);
    }
    await this.page.reload();
    await this.loaded();
  }

  /** Runs a command from the palette (F1), picking the entry whose label is `label`. */
  async command(label: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    // F1 pressed while a webview has focus reaches the workbench through the webview's key
    // forwarding, and the palette is sometimes not ready for input at once: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.page.keyboard.press('Escape');
        await this.page.keyboard.press('F1');
        await input.waitFor({ state: 'visible', timeout: 5000 });
        await input.fill(`>${label}`, { timeout: 5000 });
        break;
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
    await this.pick(label);
  }

  /**
   * Clicks the quick-pick entry whose label is exactly `label` (after it appears); `filter`:
   * typed first to narrow a long list, as a person would.
   */
  async pick(label: string, filter?: string, timeoutMs = 20_000): Promise<void> {
    if (filter !== undefined) {
      const input = this.page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor({ state: 'visible', timeout: timeoutMs });
      await input.fill(filter);
    }
    const rows = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    const labelOf = (text: string): string => text.replace(/\s+/g, ' ').trim();
    await waitUntil(`'${label}' in the quick pick`, async () => (await rows.locator('.label-name').allInnerTexts()).some((l) => labelOf(l) === label), timeoutMs);
    // With the keyboard, as people who live in the palette do: the mouse races the list's
    // re-rendering (filtering, and previews of the focused entry such as color themes).
    const focused = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused .label-name');
    for (let step = 0; ; step++) {
      const current = labelOf(await focused.first().innerText({ timeout: 2000 }).catch(() => ''));
      if (current === label) break;
      if (step === 50) throw new Error(`could not move the quick pick's focus to '${label}' (it is on '${current}')`);
      await this.page.keyboard.press('ArrowDown');
    }
    await this.page.keyboard.press('Enter');
  }

  /** Texts of the notifications so far (opens the notification center: toasts may be hidden). */
  async notifications(): Promise<string[]> {
    await this.command('Notifications: Show Notifications');
    const items = this.page.locator('.notifications-center .notification-list-item');
    await items.first().waitFor({ state: 'visible', timeout: 3000 }).catch(() => undefined);
    const texts = await items.allInnerTexts();
    await this.page.keyboard.press('Escape');
    return texts;
  }

  /**
   * Types into the input box or quick pick a command opened and presses Enter; `title`: text
   * of its title (or placeholder), so that the palette that ran the command is not taken for it.
   */
  async answer(title: string, text: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await waitUntil(`an input titled '${title}'`, async () => {
      const shown = [...(await this.page.locator('.quick-input-widget .quick-input-title').allInnerTexts()), (await input.getAttribute('placeholder', { timeout: 1000 })) ?? ''];
      return shown.some((t) => t.includes(title));
    });
    await input.fill(text);
    await this.page.keyboard.press('Enter');
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
  }

  /** The page of the webview panel whose document title is `title` (the last opened one). */
  async webview(title: string, timeoutMs = 20_000): Promise<Frame> {
    return waitUntil(`a webview titled '${title}'`, async () => {
      const matches: Frame[] = [];
      for (const frame of this.page.frames()) if ((await frame.title().catch(() => '')) === title) matches.push(frame);
      return matches.at(-1);
    }, timeoutMs);
  }

  /** Rows of a tree view by its title ('Processes'). */
  viewRows(viewTitle: string): Locator {
    return this.page.locator(`.pane:has(.pane-header[aria-label^="${viewTitle}"]) .monaco-list-row`);
  }

  /** Saves a PNG of the workbench, or of one element of it. */
  async screenshot(file: string, element?: Locator): Promise<void> {
    mkdirSync(path.dirname(file), { recursive: true });
    await (element ? element.screenshot({ path: file, timeout: 10_000 }) : this.page.screenshot({ path: file }));
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    stopGroup(this.codeServer);
    // What the extension started on its own (a `grass monitor`, detached so that it outlives
    // editors) has its socket in this run's scratch folder: stop those processes too.
    for (const pid of processesMentioning(this.scratch)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** code-server's whole process group: its file watcher and extension host outlive the parent. */
function stopGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      return;
    }
  }
}

/**
 * Every value in the workbench's UI-state databases (vscode-web-state-db-*), as an expression
 * the page evaluates (a string: a compiled function could call helpers the page does not have).
 */
const STORED_UI_STATE = `(async () => {
  const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const values = [];
  for (const { name } of await indexedDB.databases()) {
    if (!name || !name.startsWith('vscode-web-state-db')) continue;
    const db = await request(indexedDB.open(name));
    try {
      for (const store of Array.from(db.objectStoreNames)) {
        for (const value of await request(db.transaction(store, 'readonly').objectStore(store).getAll())) {
          values.push(typeof value === 'string' ? value : JSON.stringify(value));
        }
      }
    } finally {
      db.close();
    }
  }
  return values;
})()`;
