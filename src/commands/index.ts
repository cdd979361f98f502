// Registers every GRASS command (package.json `contributes.commands`): one file per group.
import type * as vscode from 'vscode';
import { registerConnectionCommands } from './connection';
import type { CommandDeps } from './deps';
import { registerHealthCommands } from './health';
import { registerKernelQueryCommands } from './kernel-queries';
import { registerMemoryCommands } from './memory';
import { registerOpenVmcoreCommand } from './open-vmcore';
import { registerProcessCommands } from './processes';
import { registerQueryCommands } from './queries';
import { registerSaveVmcoreCommand } from './save-vmcore';
import { registerTargetCommands } from './targets';

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  context.subscriptions.push(
    ...registerConnectionCommands(deps),
    ...registerQueryCommands(deps),
    ...registerKernelQueryCommands(deps),
    ...registerMemoryCommands(deps),
    ...registerTargetCommands(deps),
    ...registerProcessCommands(deps),
    registerSaveVmcoreCommand(deps),
    registerOpenVmcoreCommand(deps),
    ...registerHealthCommands(context.extensionUri, deps),
  );
}
