// The memory inspector webview loads under its CSP, registers the toolkit components and
// answers messages from the host.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { MemoryInspectorPanel } from '../../src/views/memoryInspector';

describe('memory inspector webview', () => {
  it('round-trips a message with the page', async () => {
    const panel = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    try {
      const pong = await panel.ping(15_000);
      assert.equal(pong.heading, 'Memory Inspector');
      assert.deepEqual(pong.components, ['vscode-button', 'vscode-text-field']);
      // A second round trip gets its own answer.
      const again = await panel.ping(5000);
      assert.equal(again.id, pong.id + 1);
    } finally {
      panel.dispose();
    }
  });

  it('opening it twice reveals the same panel', async () => {
    const first = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    const second = await vscode.commands.executeCommand<MemoryInspectorPanel>('grass.openMemoryInspector');
    try {
      assert.equal(first, second);
    } finally {
      first.dispose();
    }
  });
});
