// The extension-host side of guest-control.ts: starts it, and sends it requests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';

/** Stops the grass monitors the extension started (they outlive the extension host by design). */
export function stopRelays(api: { relaysStarted: number[] } | undefined): void {
  for (const pid of api?.relaysStarted.splice(0) ?? []) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

export class GuestTarget {
  private readonly waiting: ((line: string) => void)[] = [];

  private constructor(
    private readonly child: ChildProcess,
    lines: Interface,
    readonly target: string,
    readonly keyFile: string,
  ) {
    lines.on('line', (line) => this.waiting.shift()?.(line));
  }

  /** Boots the guest and its agent (about 10–40 s under TCG). `root`: the repository. */
  static async start(root: string, timeoutMs = 180_000): Promise<GuestTarget> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/extension/support/guest-control.ts')], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    const lines = createInterface({ input: child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`guest-control not ready in ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`guest-control exited (${code}) before ready`)));
      lines.once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
    const ready = JSON.parse(first) as { target?: string; keyFile?: string; error?: string };
    if (ready.error || !ready.target || !ready.keyFile) throw new Error(`guest-control: ${ready.error ?? first}`);
    return new GuestTarget(child, lines, ready.target, ready.keyFile);
  }

  async request<T>(request: { op: string; command?: string; kind?: string }, timeoutMs = 60_000): Promise<T> {
    const answer = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`guest-control: no answer to ${request.op} in ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      this.child.stdin!.write(JSON.stringify(request) + '\n');
    });
    const parsed = JSON.parse(answer) as T & { error?: string };
    if (parsed.error) throw new Error(`guest-control ${request.op}: ${parsed.error}`);
    return parsed;
  }

  /** Stops the agent and the guest; resolves when guest-control has exited. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    await exited;
  }
}
