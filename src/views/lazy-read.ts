// A view's data read from the connected target on demand (the first time the view asks, and on
// refresh), under a progress in the view; a new session drops it, and a read a newer one
// superseded is not kept. Shared by the Modules and Blocked Tasks views.
import * as vscode from 'vscode';
import type { LiveSession } from '../session/live-session';
import type { Sessions } from '../session/sessions';

export class LazyRead<T> implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a read ended, or a new session dropped what was read. */
  readonly onDidChange = this.changed.event;
  private readonly subscription: vscode.Disposable;
  private data: T | undefined;
  /** Why the last read failed. */
  error: string | undefined;
  private reading: Promise<T | undefined> | undefined;
  private generation = 0;

  constructor(
    private readonly sessions: Sessions,
    private readonly viewId: string,
    /** What the progress says, e.g. "reading the module list". */
    private readonly title: string,
    private readonly read: (session: LiveSession) => Promise<T>,
  ) {
    this.subscription = sessions.onDidChange(() => {
      this.generation++;
      [this.data, this.reading, this.error] = [undefined, undefined, undefined];
      this.changed.fire();
    });
  }

  /** Reads again now; resolves to the data (undefined without a session, or when the read failed: see error). */
  refresh(): Promise<T | undefined> {
    const session = this.sessions.current;
    if (!session) return Promise.resolve(undefined);
    const generation = ++this.generation;
    const read = vscode.window.withProgress({ location: { viewId: this.viewId }, title: this.title }, async () => {
      try {
        const data = await this.read(session);
        if (generation === this.generation) [this.data, this.error] = [data, undefined];
        return data;
      } catch (err) {
        if (generation === this.generation) this.error = `cannot read from ${session.target.name}: ${(err as Error).message}`;
        return undefined;
      } finally {
        if (generation === this.generation) this.changed.fire();
      }
    });
    this.reading = Promise.resolve(read);
    return this.reading;
  }

  /** What was last read, reading it first if nothing was. */
  async current(): Promise<T | undefined> {
    return this.data ?? (await (this.reading ?? this.refresh()));
  }

  /** What was read, for a view's rows: undefined while a first read runs (started here when none did). */
  get shown(): T | undefined {
    if (this.data === undefined && this.error === undefined && !this.reading) void this.refresh();
    return this.data;
  }

  dispose(): void {
    this.generation++;
    this.subscription.dispose();
    this.changed.dispose();
  }
}
