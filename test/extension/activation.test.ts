// The extension activates in a real extension host, contributes what its manifest says, and
// its commands are registered.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GrassExtensionApi } from '../../src/extension';

const EXTENSION_ID = 'grass.grass-vscode';

interface Manifest {
  extensionKind: string[];
  contributes: { commands: { command: string; category: string }[]; views: Record<string, { id: string }[]> };
}

describe('activation', () => {
  it('activates as a workspace extension and returns its API', async () => {
    const ext = vscode.extensions.getExtension<GrassExtensionApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this extension host`);
    const api = await ext.activate();
    assert.equal(ext.isActive, true);
    assert.equal(ext.extensionKind, vscode.ExtensionKind.Workspace);
    assert.ok(api.views.targets, 'activate() returned no targets view');
  });

  it('registers every command the manifest contributes, all under the GRASS category', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    await ext.activate();
    const manifest = ext.packageJSON as Manifest;
    const contributed = manifest.contributes.commands;
    assert.ok(contributed.length >= 10, `only ${contributed.length} commands contributed`);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c.command)).map((c) => c.command);
    assert.deepEqual(missing, [], 'contributed but not registered');
    for (const c of contributed) assert.equal(c.category, 'GRASS', `${c.command} category`);
    // And the reverse: no grass.* command registered without being contributed (views'
    // own *.focus / *.resetViewLocation commands excepted).
    const views = manifest.contributes.views.grass.map((v) => v.id);
    const extra = [...registered].filter(
      (id) => id.startsWith('grass.') && !contributed.some((c) => c.command === id) && !views.some((v) => id.startsWith(`${v}.`)),
    );
    assert.deepEqual(extra, [], 'registered but not contributed');
  });

  it('answers a query plainly while not connected, with no result', async () => {
    for (const command of ['grass.heartbeat', 'grass.showProcessList', 'grass.runDetection', 'grass.showShfhMetrics', 'grass.showKernelLog', 'grass.readMemory', 'grass.decodeStruct']) {
      assert.equal(await vscode.commands.executeCommand(command), undefined, command);
    }
  });
});
