// Chooses the target a command acts on: the one passed (a tree item from the Targets view or
// a name), else the only one configured, else one the user picks.
import * as vscode from 'vscode';
import type { ConfiguredTargets } from '../settings/configured-targets';
import type { TargetConfig } from '../settings/targets';
import type { TargetItem } from '../views/targets';

export async function pickTarget(configured: ConfiguredTargets, arg: unknown, purpose: string): Promise<TargetConfig | undefined> {
  const { targets, error } = configured.read();
  if (error) {
    void vscode.window.showErrorMessage(`GRASS: ${error}`);
    return undefined;
  }
  if (targets.length === 0) {
    void vscode.window.showWarningMessage('GRASS: no targets configured. Add one to the "grass.targets" setting (a name and an address).');
    return undefined;
  }
  const name = typeof arg === 'string' ? arg : isTargetItem(arg) ? arg.target.name : undefined;
  if (name !== undefined) {
    const target = targets.find((t) => t.name === name);
    if (!target) void vscode.window.showErrorMessage(`GRASS: no target named '${name}' in the "grass.targets" setting.`);
    return target;
  }
  if (targets.length === 1) return targets[0];
  const picked = await vscode.window.showQuickPick(
    targets.map((t) => ({ label: t.name, description: t.address, target: t })),
    { placeHolder: `Target to ${purpose}` },
  );
  return picked?.target;
}

function isTargetItem(value: unknown): value is Extract<TargetItem, { kind: 'target' }> {
  return typeof value === 'object' && value !== null && (value as TargetItem).kind === 'target';
}
