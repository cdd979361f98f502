// Memory: read a range, decode a struct at an address, open the memory inspector panel.
import * as vscode from 'vscode';
import type { MemoryInspectorPanel } from '../views/memoryInspector';
import type { CommandDeps } from './deps';
import { requireSession } from './sessions';

export function registerMemoryCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('grass.readMemory', () => void requireSession(deps.sessions, 'read memory')),
    vscode.commands.registerCommand('grass.decodeStruct', () => void requireSession(deps.sessions, 'decode a struct')),
    /** Resolves to the panel, so that callers (and tests) can talk to it. */
    vscode.commands.registerCommand('grass.openMemoryInspector', (): MemoryInspectorPanel => deps.memoryInspector.open()),
  ];
}
