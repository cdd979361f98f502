// Queries answered by the target's monitor: process list, detection, SHFH metrics, kernel log.
// Each needs a session; the kernel model and detections that answer them come later.
import * as vscode from 'vscode';
import type { CommandDeps } from './deps';
import { requireSession } from './sessions';

const queries: [command: string, what: string][] = [
  ['grass.showProcessList', 'show the process list'],
  ['grass.runDetection', 'run detection'],
  ['grass.showShfhMetrics', 'show SHFH metrics'],
  ['grass.showKernelLog', 'show the kernel log'],
];

export function registerQueryCommands(deps: CommandDeps): vscode.Disposable[] {
  return queries.map(([command, what]) => vscode.commands.registerCommand(command, () => void requireSession(deps.sessions, what)));
}
