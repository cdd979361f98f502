// The memory inspector webview loads under its CSP, registers the design system's components and
// answers messages from the host.
import assert from 'node:assert/strict';
import { before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { MemoryInspectorPanel } from '../../src/views/memory-inspector';
import { webview } from '../harness/workbench';

async function waitForText(selector: string, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await webview.texts(selector)).join('\n');
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`${selector} shows '${text}', not ${pattern}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('memory inspector webview', () => {
  // Activated here, not by the first command: a command that activates its extension is run
  // through the workbench, which hands back a serialized copy of the panel, not the panel.
  before(async () => {
    await vscode.extensions.getExtension('grass.grass-vscode')!.activate();
  });

  it('round-trips a message with the page', async () => {
    const panel = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    try {
      const pong = await panel.ping(15_000);
      assert.equal(pong.heading, 'Memory Inspector');
      assert.deepEqual(pong.components, ['vscode-button', 'vscode-textfield', 'vscode-single-select', 'vscode-option', 'vscode-checkbox']);
      // A second round trip gets its own answer.
      const again = await panel.ping(5000);
      assert.equal(again.id, pong.id + 1);
    } finally {
      panel.dispose();
    }
  });

  it('a read asked for on the page reaches the host, whose answer the page shows', async () => {
    const panel = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    try {
      await panel.whenReady(15_000);
      await waitForText('#status', /^Not connected to a target\./);
      await webview.fill('#address input', 'init_task');
      await webview.click('#go');
      await waitForText('#status', /^Cannot go to init_task: not connected to a target$/);
    } finally {
      panel.dispose();
    }
  });

  it('opening it twice gives two panels, each its own page', async () => {
    const first = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    try {
      assert.equal((await first.ping(15_000)).heading, 'Memory Inspector');
      const second = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
      try {
        assert.notEqual(first, second);
        assert.equal((await second.ping(15_000)).heading, 'Memory Inspector');
        // The first, hidden behind the second, kept its page (retainContextWhenHidden).
        first.panel.reveal();
        assert.equal((await first.ping(15_000)).heading, 'Memory Inspector');
      } finally {
        second.dispose();
      }
    } finally {
      first.dispose();
    }
  });
});
