// The views exist in the workbench and show what the settings and secret storage hold.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { GrassExtensionApi } from '../../src/extension';
import type { TargetItem } from '../../src/views/targets';
import { notificationTexts, targetTooltip, viewRows, viewWelcome } from '../harness/workbench';

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
      // As rendered in the workbench: the state first, then the name; the address and the rest in the tooltip.
      await vscode.commands.executeCommand('grass.targets.focus');
      let rows: string[] = [];
      await waitFor('the rendered rows', async () => (rows = await viewRows('Targets')).length === 2, 10_000).catch(() => undefined);
      assert.deepEqual(rows, ['no key · guest', 'no key · lab']);
      const tooltip = await targetTooltip('lab');
      assert.match(tooltip, /lab — no key/);
      assert.match(tooltip, /rdma:\/\/\[fe80::1\]:7000/);
      assert.match(tooltip, /No key stored/);

      await keys.set('lab', 'ab'.repeat(32));
      assert.deepEqual(await labels(), ['guest false', 'lab true']);
      // Storing a key re-renders the view (secret storage's change event reaches it).
      await waitFor('the rendered key state', async () => (await viewRows('Targets'))[1] === 'idle · lab', 10_000);
      assert.deepEqual([...(await keys.get('lab'))!], Array(32).fill(0xab));
      await keys.delete('lab');
      assert.equal(await keys.has('lab'), false);

      await config.update('targets', [{ name: 'bad', address: 'tcp://x' }], vscode.ConfigurationTarget.Global);
      await waitFor('the error item', async () => (await labels())[0]?.startsWith('error: grass.targets[0] (\'bad\')') ?? false);
    } finally {
      await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('connect to a target with no agent behind it fails cause first; its row says unreachable, its tooltip why', async () => {
    const { keys, sessions } = await api();
    const config = vscode.workspace.getConfiguration('grass');
    try {
      await config.update('targets', [{ name: 'guest', address: 'shm:/dev/shm/grass-test' }], vscode.ConfigurationTarget.Global);
      await keys.set('guest', '01'.repeat(32));
      await vscode.commands.executeCommand('notifications.clearAll');
      assert.equal(await vscode.commands.executeCommand('grass.connect', 'guest'), false);
      assert.equal(sessions.current, undefined);
      // The toast as shown: the cause first, the target and its address last.
      let message = '';
      await waitFor('the error toast', async () => {
        message = (await notificationTexts('message')).find((t) => t.includes("cannot connect to 'guest'")) ?? '';
        return message !== '';
      }, 10_000);
      assert.ok(!message.startsWith('GRASS: cannot connect'), message);
      assert.match(message, /^GRASS: \S.* — cannot connect to 'guest' \(shm:\/dev\/shm\/grass-test\)$/);
      await vscode.commands.executeCommand('grass.targets.focus');
      await waitFor('the unreachable row', async () => (await viewRows('Targets'))[0] === 'unreachable · guest', 10_000);
      const tooltip = await targetTooltip('guest');
      assert.match(tooltip, /guest — unreachable/);
      assert.match(tooltip, /Last connect failed at .+: \S/);
      // The cause the toast led with is the one the tooltip gives.
      const cause = /^GRASS: (.*?) — /.exec(message)![1];
      assert.ok(tooltip.includes(cause), `tooltip '${tooltip}' lacks '${cause}'`);
    } finally {
      await vscode.commands.executeCommand('notifications.clearAll');
      await keys.delete('guest');
      await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('connect without a stored key warns with the two ways to give one', async () => {
    const config = vscode.workspace.getConfiguration('grass');
    try {
      await config.update('targets', [{ name: 'keyless', address: 'shm:/dev/shm/grass-keyless' }], vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('notifications.clearAll');
      assert.equal(await vscode.commands.executeCommand('grass.connect', 'keyless'), false);
      let toast = '';
      await waitFor('the warning toast', async () => {
        toast = (await notificationTexts()).find((t) => t.includes("no key stored for 'keyless'")) ?? '';
        return toast !== '';
      }, 10_000);
      assert.match(toast, /Enter Key…/);
      assert.match(toast, /From Key File…/);
      const buttons = await notificationTexts('buttons');
      assert.deepEqual(buttons.filter((b) => /Key/.test(b)), ['Enter Key…', 'From Key File…']);
    } finally {
      await vscode.commands.executeCommand('notifications.clearAll');
      await config.update('targets', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
