import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';

describe('installed .vsix', () => {
  it('is the installed copy, and activates', async () => {
    const ext = vscode.extensions.getExtension('grass.grass-vscode');
    assert.ok(ext, 'grass.grass-vscode is not installed');
    const extensionsDir = process.env.GRASS_EXPECT_EXTENSIONS_DIR;
    assert.ok(extensionsDir, 'GRASS_EXPECT_EXTENSIONS_DIR is not set');
    assert.equal(path.dirname(ext.extensionPath), extensionsDir, 'the extension did not load from the extensions folder the .vsix went to');
    await ext.activate();
    assert.equal(ext.isActive, true);
    const registered = await vscode.commands.getCommands(true);
    assert.ok(registered.includes('grass.openMemoryInspector'));
  });

  it('loads koffi with its linux-x64 binary from the installed extension', () => {
    const ext = vscode.extensions.getExtension('grass.grass-vscode')!;
    // A computed path: esbuild leaves the require to run here.
    const koffi = require(path.join(ext.extensionPath, 'node_modules', 'koffi')) as { load: unknown };
    assert.equal(typeof koffi.load, 'function');
  });
});
