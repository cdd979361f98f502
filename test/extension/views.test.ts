// The views exist in the workbench and show what the settings and secret storage hold.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GrassExtensionApi } from '../../src/extension';
import type { TargetItem } from '../../src/views/targets';
import { viewRows, viewWelcome } from '../harness/workbench';

async function api(): Promise<GrassExtensionApi> {
  return vscode.extensions.getExtension<GrassExtensionApi>('grass.grass-vscode')!.activate();
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('views', () => {
  for (const id of ['grass.targets', 'grass.processes', 'grass.faults']) {
    it(`${id} opens in the GRASS container`, async () => {
      const { views } = await api();
      const view = { 'grass.targets': views.targets, 'grass.processes': views.processes, 'grass.faults': views.faults }[id]!;
      // `<view>.focus` exists only for a view the workbench knows; it reveals the container.
      await vscode.commands.executeCommand(`${id}.focus`);
      await waitFor(`${id} to become visible`, () => view.visible);
    });
  }

  it('the Processes and Faults views say in the workbench that no target is connected', async () => {
    await vscode.commands.executeCommand('grass.processes.focus');
    assert.deepEqual(await viewRows('Processes'), []);
    assert.match((await viewWelcome('Processes')).join(), /Not connected to a target\.\s+Connect to Target/);
    assert.match((await viewWelcome('Faults')).join(), /Not connected to a target: no detection results\./);
  });

  it('the Targets view lists grass.targets and whether each has a key in secret storage', async () => {
    const { views, keys } = await api();
    const config = vscode.workspace.getConfiguration('grass');
    const labels = async () =>
      ((await views.targetsProvider.getChildren()) as TargetItem[]).map((i) => (i.kind === 'target' ? `${i.target.name} ${i.hasKey}` : `error: ${i.message}`));
    try {
      await config.update('targets', [{ name: 'guest', address: 'shm:/dev/shm/grass-test' }, { name: 'lab', address: 'rdma://[fe80::1]:7000' }], vscode.ConfigurationTarget.Global);
      await waitFor('both targets', async () => (await labels()).join() === 'guest false,lab false');
      // As rendered in the workbench: name, address and key state.
      await vscode.commands.executeCommand('grass.targets.focus');
      let rows: string[] = [];
      await waitFor('the rendered rows', async () => (rows = await viewRows('Targets')).length === 2, 10_000).catch(() => undefined);
      // (a row's text is its label followed directly by its description)
      assert.deepEqual(rows, ['guest' + 'shm:/dev/shm/grass-test · no key', 'lab' + 'rdma://[fe80::1]:7000 · no key']);

      await keys.set('lab', 'ab'.repeat(32));
      assert.deepEqual(await labels(), ['guest false', 'lab true']);
      // Storing a key re-renders the view (secret storage's change event reaches it).
      await waitFor('the rendered key state', async () => (await viewRows('Targets'))[1] === 'lab' + 'rdma://[fe80::1]:7000', 10_000);
      assert.deepEqual([...(await keys.get('lab'))!], Array(32).fill(0xab));
      await keys.delete('lab');
      assert.equal(await keys.has('lab'), false);

      await config.update('targets', [{ name: 'bad', address: 'tcp://x' }], vscode.ConfigurationTarget.Global);
      await waitFor('the error item', async () => (await labels())[0]?.startsWith('error: grass.targets[0] (\'bad\')') ?? false);
    } finally {
      await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('connect to a target with no agent behind it fails plainly and opens no session', async () => {
    const { keys, sessions } = await api();
    const config = vscode.workspace.getConfiguration('grass');
    try {
      await config.update('targets', [{ name: 'guest', address: 'shm:/dev/shm/grass-test' }], vscode.ConfigurationTarget.Global);
      await keys.set('guest', '01'.repeat(32));
      assert.equal(await vscode.commands.executeCommand('grass.connect', 'guest'), false);
      assert.equal(sessions.current, undefined);
    } finally {
      await keys.delete('guest');
      await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
