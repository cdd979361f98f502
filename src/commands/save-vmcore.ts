// GRASS: Save Kernel Memory… — grass save-vmcore from the editor: the attached target's memory
// (all, or the kernel's pages only) into an ELF vmcore, with rate and time left in a progress
// notification; Cancel stops it resumably (running the command again on the same file resumes).
import * as vscode from 'vscode';
import { SaveInterruptedError, saveVmcore } from '../vmcore/save';
import type { CommandDeps } from './deps';
import { requireSession } from './require-session';

const MiB = 2 ** 20;

export function registerSaveVmcoreCommand(deps: CommandDeps): vscode.Disposable {
  /** Resolves to the vmcore's path when saved, undefined when not. */
  return vscode.commands.registerCommand('grass.saveVmcore', async (): Promise<string | undefined> => {
    const session = requireSession(deps.sessions, 'save kernel memory');
    if (!session) return undefined;
    const mode = await vscode.window.showQuickPick(
      [
        { label: 'All memory', kernelOnly: false },
        { label: 'Kernel pages only', description: 'leave out free, user and file-cache pages (as makedumpfile does)', kernelOnly: true },
      ],
      { title: 'GRASS: Save Kernel Memory' },
    );
    if (!mode) return undefined;
    const uri = await vscode.window.showSaveDialog({ title: 'Save the target\'s memory as an ELF vmcore', defaultUri: vscode.Uri.file('vmcore'), saveLabel: 'Save vmcore' });
    if (!uri) return undefined;
    const out = uri.fsPath;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `GRASS: saving ${session.target.name}'s memory`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let shown = 0;
        try {
          const r = await saveVmcore(session.client, out, {
            kernelOnly: mode.kernelOnly,
            signal: abort.signal,
            onProgress: (p) => {
              if (p.phase === 'classify') return progress.report({ message: 'finding free, user and cache pages' });
              const percent = p.bytesTotal ? (100 * p.bytesDone) / p.bytesTotal : 100;
              const rate = p.rate > 0 ? `, ${(p.rate / MiB).toFixed(1)} MiB/s` : '';
              const eta = p.etaSeconds !== undefined ? `, ${Math.ceil(p.etaSeconds)} s left` : '';
              progress.report({ increment: percent - shown, message: `${(p.bytesDone / MiB).toFixed(0)} of ${(p.bytesTotal / MiB).toFixed(0)} MiB${rate}${eta}` });
              shown = percent;
            },
          });
          void vscode.window.showInformationMessage(`GRASS: saved ${(r.fileBytes / MiB).toFixed(0)} MiB to ${out} in ${r.seconds.toFixed(1)} s (manifest: ${r.manifest})`);
          return out;
        } catch (err) {
          const text = err instanceof SaveInterruptedError ? `${err.message.replace(/^save-vmcore: /, '')} (run Save Kernel Memory again on ${out})` : (err as Error).message;
          void vscode.window.showErrorMessage(`GRASS: ${text}`);
          return undefined;
        }
      },
    );
  });
}
