// Stands in for the VS Code executable that @vscode/test-electron's runTests() launches:
// it accepts the same arguments, runs the extension tests in code-server's real Node
// extension host and exits with their result (0: all passed).
//
// How: start code-server (VS Code server) on a free loopback port in its own process group,
// with the smoke-test driver enabled; open the workbench in headless Chromium with the test
// paths in the URL's `payload`; the workbench then reports the extension host's console
// through window.codeAutomationLog and the tests' exit code through window.codeAutomationExit
// (both exposed here with Playwright). Facts behind this: /work/shared/notes/vscode-tests.md.
//
// Runs on Node 24 (.cache/tools/node), started by ./code-server-launcher.
// Environment: GRASS_LAUNCHER_TIMEOUT_S (default 300) bounds the whole run;
// GRASS_LAUNCHER_VERBOSE=1 echoes code-server's and the browser's own output;
// GRASS_LAUNCHER_SCREENSHOT=<file.png> saves the workbench as it is when the tests end.
//
// Tests can look at the rendered workbench (what a person would see) through the console:
// a line `grass-launcher: {"op":"texts","selector":CSS,"out":FILE}` makes the launcher write
// the inner texts of the matching elements to FILE as JSON; "click" and "fill" (with
// "value") act on the element as a person would; "hover" rests the mouse on the (first)
// matching element and answers the inner texts of the hover VS Code shows for it; "frames": [CSS...] first enters those
// nested iframes (a webview's page); {"op":"screenshot","out":FILE} saves a PNG. The answer
// file holds the result or {"error"}. test/harness/workbench.ts wraps this for tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';

const ROOT = path.resolve(__dirname, '../..');
const TOOLS = path.join(ROOT, '.cache/tools/vscode');
const CHROMIUM = '/usr/bin/chromium';

/** The parts of playwright-core used here (it lives in .cache/tools, outside the type-checked tree). */
interface Page {
  exposeFunction(name: string, fn: (...args: never[]) => unknown): Promise<void>;
  goto(url: string): Promise<unknown>;
  screenshot(options: { path: string }): Promise<unknown>;
  locator(selector: string): Locator;
  frameLocator(selector: string): FrameLocator;
  mouse: { move(x: number, y: number): Promise<void> };
  on(event: 'console', fn: (msg: { type(): string; text(): string }) => void): void;
  on(event: 'crash' | 'close', fn: () => void): void;
}
interface Locator {
  allInnerTexts(): Promise<string[]>;
  click(options: { timeout: number }): Promise<void>;
  fill(value: string, options: { timeout: number }): Promise<void>;
  hover(options: { timeout: number }): Promise<void>;
  first(): Locator;
  waitFor(options: { state: 'visible'; timeout: number }): Promise<void>;
}
interface FrameLocator {
  locator(selector: string): Locator;
  frameLocator(selector: string): FrameLocator;
}
interface Browser {
  newPage(options: { viewport: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
interface Playwright {
  chromium: { launch(options: { executablePath: string; headless: boolean; args: string[]; env: NodeJS.ProcessEnv }): Promise<Browser> };
}

interface LaunchArgs {
  developmentPaths: string[];
  testsPath: string;
  userDataDir?: string;
  extensionsDir?: string;
  folder?: string;
}

function log(message: string): void {
  process.stderr.write(`code-server-launcher: ${message}\n`);
}

/** Reads the arguments runTests() gives a VS Code executable; ignores Electron-only flags. */
function parseArgs(argv: string[]): LaunchArgs {
  const developmentPaths: string[] = [];
  let testsPath: string | undefined;
  let userDataDir: string | undefined;
  let extensionsDir: string | undefined;
  let folder: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return path.resolve(v);
    };
    switch (flag) {
      case '--extensionDevelopmentPath':
        developmentPaths.push(value());
        break;
      case '--extensionTestsPath':
        testsPath = value();
        break;
      case '--user-data-dir':
        userDataDir = value();
        break;
      case '--extensions-dir':
        extensionsDir = value();
        break;
      default:
        if (!arg.startsWith('-')) folder = path.resolve(arg);
      // Other flags (--no-sandbox, --disable-updates, --skip-welcome, ...) mean nothing here.
    }
  }
  if (!testsPath) throw new Error('--extensionTestsPath=<tests index.js> is required');
  return { developmentPaths, testsPath, userDataDir, extensionsDir, folder };
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

async function waitForHealthy(port: number, codeServer: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (codeServer.exitCode !== null) throw new Error(`code-server exited with code ${codeServer.exitCode} before it answered`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`code-server did not answer /healthz on port ${port} within ${timeoutMs} ms`);
}

/** The workbench passes console arguments as given (format string first): format them as Node would. */
export const WORKBENCH_REQUEST = 'grass-launcher: ';

/** Answers a test's request to look at the rendered workbench (see the header). */
async function answerWorkbenchRequest(page: Page, json: string): Promise<void> {
  let request: { op?: string; selector?: string; value?: string; frames?: string[]; out?: string };
  try {
    request = JSON.parse(json) as typeof request;
  } catch {
    log(`malformed workbench request: ${json}`);
    return;
  }
  const out = request.out;
  if (!out) return log(`workbench request without "out": ${json}`);
  // Written whole, then renamed: the test waits for `out` to exist. A screenshot's ends in .png
  // (Playwright takes the image type from the path and refuses one it does not know).
  const partial = request.op === 'screenshot' ? `${out}.partial.png` : `${out}.partial`;
  try {
    const { op, selector, value, frames = [] } = request;
    let scope: Page | FrameLocator = page;
    for (const frame of frames) scope = scope.frameLocator(frame);
    if (op === 'screenshot') {
      await page.screenshot({ path: partial });
    } else if (op === 'texts' && selector) {
      writeFileSync(partial, JSON.stringify(await scope.locator(selector).allInnerTexts()));
    } else if (op === 'hover' && selector) {
      // The hover VS Code shows for the element (a tree row's tooltip), as a person pausing on it sees it.
      // (A hover can be dismissed before it shows, by a re-render under the mouse: rest again.)
      const shown = page.locator('.workbench-hover:visible, .monaco-hover:visible');
      for (let attempt = 1; ; attempt++) {
        await page.mouse.move(0, 0);
        await scope.locator(selector).first().hover({ timeout: 5000 });
        try {
          await shown.first().waitFor({ state: 'visible', timeout: 4000 });
          break;
        } catch (err) {
          if (attempt === 3) throw err;
        }
      }
      writeFileSync(partial, JSON.stringify(await shown.allInnerTexts()));
      await page.mouse.move(0, 0);
    } else if (op === 'click' && selector) {
      await scope.locator(selector).click({ timeout: 5000 });
      writeFileSync(partial, JSON.stringify({ ok: true }));
    } else if (op === 'fill' && selector && value !== undefined) {
      await scope.locator(selector).fill(value, { timeout: 5000 });
      writeFileSync(partial, JSON.stringify({ ok: true }));
    } else {
      writeFileSync(partial, JSON.stringify({ error: `unknown request ${json}` }));
    }
  } catch (err) {
    writeFileSync(partial, JSON.stringify({ error: (err as Error).message }));
  }
  renameSync(partial, out);
}

function formatLog(args: unknown): string {
  return Array.isArray(args) ? format(...(args as unknown[])) : String(args);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const verbose = process.env.GRASS_LAUNCHER_VERBOSE === '1';
  const timeoutMs = Number(process.env.GRASS_LAUNCHER_TIMEOUT_S ?? 300) * 1000;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'grass-code-server-'));
  // Everything temporary (Playwright's browser profile too) goes into the scratch folder.
  const scratchEnv = { TMPDIR: scratch, XDG_CONFIG_HOME: path.join(scratch, 'config'), XDG_CACHE_HOME: path.join(scratch, 'cache'), XDG_DATA_HOME: path.join(scratch, 'data') };
  process.env.TMPDIR = scratch;
  const userDataDir = args.userDataDir ?? path.join(scratch, 'user-data');
  const extensionsDir = args.extensionsDir ?? path.join(scratch, 'extensions');
  mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(
    path.join(userDataDir, 'User', 'settings.json'),
    JSON.stringify({
      'chat.disableAIFeatures': true,
      'workbench.startupEditor': 'none',
      'extensions.autoUpdate': false,
      'extensions.autoCheckUpdates': false,
      'telemetry.telemetryLevel': 'off',
      'workbench.enableExperiments': false,
    }),
  );

  let codeServer: ChildProcess | undefined;
  let browser: Browser | undefined;
  const cleanUp = async (): Promise<void> => {
    await browser?.close().catch(() => undefined);
    if (codeServer?.pid !== undefined && codeServer.exitCode === null) {
      // Its whole process group: the file watcher and extension host outlive the parent.
      try {
        process.kill(-codeServer.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const exited = new Promise((r) => codeServer!.once('exit', r));
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    }
    if (codeServer?.pid !== undefined) {
      try {
        process.kill(-codeServer.pid, 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
    rmSync(scratch, { recursive: true, force: true });
  };
  // Killed parents (a test's timeout) do not pass signals on: notice being orphaned and
  // take code-server and Chromium down too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid === parent) return;
    log('the process that started the launcher is gone: stopping code-server');
    void cleanUp().finally(() => process.exit(1));
  }, 1000).unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping code-server`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    const toolsRequire = createRequire(path.join(TOOLS, 'package.json'));
    const codeServerEntry = path.join(path.dirname(toolsRequire.resolve('code-server/package.json')), 'out/node/entry.js');
    const playwright = toolsRequire('playwright-core') as Playwright;
    const port = await freePort();
    const serverOutput: string[] = [];
    codeServer = spawn(
      process.execPath,
      [
        codeServerEntry,
        '--auth', 'none',
        '--bind-addr', `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--ignore-last-opened',
        '--user-data-dir', userDataDir,
        '--extensions-dir', extensionsDir,
        '--vscode-option', 'enable-smoke-test-driver',
      ],
      {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
          // Its IPC sockets and config go to the scratch folder, not /tmp and ~/.config.
          ...scratchEnv,
        },
      },
    );
    for (const stream of [codeServer.stdout!, codeServer.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        serverOutput.push(chunk);
        if (verbose) process.stderr.write(chunk);
      });
    }
    try {
      await waitForHealthy(port, codeServer, 60_000);
    } catch (err) {
      process.stderr.write(serverOutput.join(''));
      throw err;
    }

    browser = await playwright.chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-breakpad'],
      env: { ...process.env, ...scratchEnv },
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    let finish: (code: number) => void = () => undefined;
    const finished = new Promise<number>((resolve) => (finish = resolve));
    await page.exposeFunction('codeAutomationLog', (level: string, logArgs: unknown) => {
      // The workbench's own errors (offline gallery, ...) come with long browser stacks:
      // their first line is enough unless asked. Test output comes at level info, whole.
      const text = formatLog(logArgs);
      if (text.startsWith(WORKBENCH_REQUEST)) return answerWorkbenchRequest(page, text.slice(WORKBENCH_REQUEST.length));
      process.stdout.write(`[${level}] ${level === 'info' || verbose ? text : text.split('\n')[0]}\n`);
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => finish(code));
    if (verbose) page.on('console', (msg) => process.stderr.write(`[browser ${msg.type()}] ${msg.text()}\n`));
    page.on('crash', () => {
      log('the workbench page crashed');
      finish(1);
    });
    let done = false;
    void finished.then(() => (done = true));
    codeServer.once('exit', (code) => {
      if (done) return;
      log(`code-server exited (code ${code}) before the tests finished`);
      finish(1);
    });

    const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = [...args.developmentPaths.map((p) => ['extensionDevelopmentPath', remote(p)]), ['extensionTestsPath', remote(args.testsPath)]];
    const query = new URLSearchParams();
    if (args.folder) query.set('folder', args.folder);
    query.set('payload', JSON.stringify(payload));
    await page.goto(`http://127.0.0.1:${port}/?${query.toString()}`);

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        log(`the tests did not finish within ${timeoutMs / 1000} s (GRASS_LAUNCHER_TIMEOUT_S)`);
        resolve(124);
      }, timeoutMs);
    });
    const code = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    const screenshot = process.env.GRASS_LAUNCHER_SCREENSHOT;
    if (screenshot) await page.screenshot({ path: path.resolve(screenshot) }).catch((err: Error) => log(`no screenshot: ${err.message}`));
    return code;
  } finally {
    await cleanUp();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
