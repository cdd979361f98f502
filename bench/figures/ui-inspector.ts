// Memory inspector page latency on a paused testbed guest: going to an address not yet fetched
// until its bytes are on screen — the real webview bundle (dist/webview/memory-inspector.js) in
// headless Chromium, its requests answered by the extension host's own page reader
// (src/views/inspector-pages.ts) over the agent — next to the floor, the same 4 KiB page read
// and annotated in process with no page at all. The webview's postMessage to the extension host
// is Playwright's exposed function here (in VS Code it crosses to the extension host process),
// so that hop is not in these figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { bootGuest } from '../../testbed';
import { KernelModel } from '../../src/kernel/model';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { readInspectorPage } from '../../src/views/inspector-pages';
import { hexAddress, type MemoryInspectorHostMessage, type MemoryInspectorWebviewMessage } from '../../src/types/webview-protocol';

const root = path.resolve(__dirname, '../..');
const BUNDLE = path.join(root, 'dist/webview/memory-inspector.js');
/** Physical pages visited: from 16 MiB up, 64 KiB apart, so each run's screen is uncached. */
const FIRST = 0x1000000n;
const STRIDE = 0x10000n;
const RUNS = 21;

interface Page {
  exposeFunction(name: string, fn: (message: MemoryInspectorWebviewMessage) => unknown): Promise<void>;
  setContent(html: string): Promise<void>;
  addScriptTag(options: { path: string }): Promise<unknown>;
  // Expressions as strings: tsx compiles functions with helpers (__name) the page lacks.
  evaluate(expression: string): Promise<unknown>;
  waitForFunction(expression: string, arg: undefined, options: { polling: 'raf'; timeout: number }): Promise<unknown>;
}
interface Browser {
  newPage(options: { viewport: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}

export const group: FigureGroup = {
  name: 'ui-inspector',
  description: 'memory inspector: go to an unfetched address until its bytes are rendered (webview in Chromium), vs reading the page alone',
  async run(bench) {
    const toolsRequire = createRequire(path.join(root, '.cache/tools/vscode/package.json'));
    const playwright = toolsRequire('playwright-core') as { chromium: { launch(o: { executablePath: string; headless: boolean; args: string[] }): Promise<Browser> } };
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-ui-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-ui-inspector-${process.pid}`;
    writeNewKeyFile(keyFile);
    const guest = await bootGuest({ memMiB: 512, cpus: 2 });
    try {
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      const browser = await playwright.chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
      try {
        await guest.pause();
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        try {
          const model = KernelModel.fromDescription(await session.client.describe(), session.client);
          const modelNow = async (): Promise<KernelModel> => model;
          let floorPage = FIRST;
          await bench.time('page-read', 'one 4 KiB physical page read and its words annotated, in process (the floor)', async () => {
            const page = await readInspectorPage(modelNow, { kind: 'physical' }, hexAddress(floorPage));
            if (page.error) throw new Error(page.error);
            floorPage += STRIDE;
          }, { runs: RUNS });

          const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
          const post = (message: MemoryInspectorHostMessage): Promise<unknown> => page.evaluate(`window.postMessage(${JSON.stringify(message)}, '*')`);
          // The extension host's side, as src/views/memory-inspector.ts answers the page.
          await page.exposeFunction('grassBenchHost', (message: MemoryInspectorWebviewMessage) => {
            if (message.type === 'resolve') void post({ type: 'resolved', requestId: message.requestId, address: hexAddress(BigInt(message.text)) });
            if (message.type === 'readPage') {
              void readInspectorPage(modelNow, message.space, message.address).then((p) => post({ type: 'page', requestId: message.requestId, address: message.address, ...p }));
            }
          });
          await page.setContent('<!DOCTYPE html><html><head><title>bench</title></head><body></body></html>');
          // What VS Code gives a webview, pointed at the function above.
          await page.evaluate(`window.acquireVsCodeApi = () => ({ postMessage: (m) => window.grassBenchHost(m), getState: () => undefined, setState: () => undefined })`);
          await page.addScriptTag({ path: BUNDLE });
          let next = FIRST + STRIDE * BigInt(RUNS + 4);
          await bench.time('goto-rendered', 'go to an unfetched physical address until its first row shows its bytes (2 pages fetched: the screen spans the page before)', async () => {
            const address = hexAddress(next);
            next += STRIDE;
            await post({ type: 'goTo', addressText: address, space: { kind: 'physical' } });
            const cell = `document.querySelector('.row[data-address="${address}"] .byte')`;
            await page.waitForFunction(`/^[0-9a-f]{2}$/.test(${cell}?.textContent ?? '')`, undefined, { polling: 'raf', timeout: 30_000 });
          }, { runs: RUNS, versus: 'page-read' });
        } finally {
          await session.close();
        }
      } finally {
        await browser.close();
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(dir, { recursive: true, force: true });
      rmSync(shmPath, { force: true });
    }
  },
};
