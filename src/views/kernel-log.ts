// The kernel log as a read-only document (`grass-log:/<target>.log`), read from the target's
// ring buffer (src/kernel/log) and followed: new records are appended every poll while the
// document is open. Each record's first line is remembered (lineOf), so that a fault report
// (its first record) can be gone to; a CodeLens at the top offers "Go to last panic/oops".
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { KernelLogFollower } from '../kernel/log/follow';
import { formatRecord } from '../kernel/log/format';
import { KernelLogReader } from '../kernel/log/ringbuffer';

export const KERNEL_LOG_SCHEME = 'grass-log';
const FOLLOW_INTERVAL_MS = 1000;

interface FollowedLog {
  follower: KernelLogFollower;
  text: string;
  /** Lines of text so far. */
  lines: number;
  /** Record sequence number → the document line its text starts on. */
  seqLine: Map<number, number>;
  timer?: NodeJS.Timeout;
}

export class KernelLogDocuments implements vscode.TextDocumentContentProvider, vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly logs = new Map<string, FollowedLog>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly sessions: Sessions) {
    this.subscriptions = [
      vscode.workspace.registerTextDocumentContentProvider(KERNEL_LOG_SCHEME, this),
      vscode.languages.registerCodeLensProvider({ scheme: KERNEL_LOG_SCHEME }, this),
      vscode.workspace.onDidCloseTextDocument((doc) => {
        if (doc.uri.scheme === KERNEL_LOG_SCHEME) this.stop(doc.uri.toString());
      }),
      sessions.onDidChange(() => {
        for (const key of [...this.logs.keys()]) this.stop(key);
      }),
    ];
  }

  uriFor(targetName: string): vscode.Uri {
    return vscode.Uri.from({ scheme: KERNEL_LOG_SCHEME, path: `/${targetName}.log` });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const key = uri.toString();
    const existing = this.logs.get(key);
    if (existing) return existing.text;
    const session = this.sessions.current;
    if (!session || uri.path !== `/${session.target.name}.log`) return `Not connected to the target of ${uri.path.slice(1)}.\n`;
    const model = await session.model();
    const reader = new KernelLogReader(session.client, model.description!, model.btf);
    const log: FollowedLog = { follower: new KernelLogFollower(reader), text: '', lines: 0, seqLine: new Map() };
    this.logs.set(key, log);
    await this.poll(log);
    this.schedule(key, log);
    return log.text;
  }

  /** Appends what is new; true when something was. */
  private async poll(log: FollowedLog): Promise<boolean> {
    const { records, notes, overwritten } = await log.follower.poll();
    const lines = [...(overwritten > 0 ? [`[grass: ${overwritten} records overwritten before they could be read]`] : []), ...notes.map((n) => `[grass: ${n}]`)];
    for (const r of records) {
      log.seqLine.set(r.seq, log.lines + lines.length);
      lines.push(...formatRecord(r).split('\n'));
    }
    if (lines.length === 0) return false;
    log.text += lines.join('\n') + '\n';
    log.lines += lines.length;
    return true;
  }

  /** The line a record's text starts on in an open log document (undefined: not read into it yet). */
  lineOf(uri: vscode.Uri, seq: number): number | undefined {
    return this.logs.get(uri.toString())?.seqLine.get(seq);
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (doc.uri.scheme !== KERNEL_LOG_SCHEME) return [];
    return [new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { command: 'grass.kernelLog.goToLastPanic', title: 'Go to last panic/oops' })];
  }

  // One poll at a time, the next scheduled after the last answered.
  private schedule(key: string, log: FollowedLog): void {
    log.timer = setTimeout(() => {
      this.poll(log)
        .then((grew) => grew && this.changed.fire(vscode.Uri.parse(key)))
        .catch((err: unknown) => {
          log.text += `[grass: reading the log failed: ${(err as Error).message}]\n`;
          this.changed.fire(vscode.Uri.parse(key));
        })
        .finally(() => {
          if (this.logs.get(key) === log) this.schedule(key, log);
        });
    }, FOLLOW_INTERVAL_MS);
  }

  private stop(key: string): void {
    clearTimeout(this.logs.get(key)?.timer);
    this.logs.delete(key);
  }

  dispose(): void {
    for (const key of [...this.logs.keys()]) this.stop(key);
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
