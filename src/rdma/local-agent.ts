// The agent binary (gpu/build/grass-agent) run as a child process: by `grass agent`, and on
// demand to serve an offline image (vmcore:, qemu-ram:) on a private shm buffer.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { writeNewKeyFile } from './key';

/** The folder holding the package's package.json, found upwards from this file (src or dist). */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'grass-vscode') return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the grass package root above ${__dirname}`);
  }
}

/** GRASS_AGENT_BIN, else gpu/build/grass-agent of this package. */
export function agentBinary(): string {
  const binary = process.env.GRASS_AGENT_BIN || path.join(packageRoot(), 'gpu', 'build', 'grass-agent');
  if (!existsSync(binary)) throw new Error(`agent binary ${binary} not found (build it with \`npm run build\`, or set GRASS_AGENT_BIN)`);
  return binary;
}

export interface RunningAgent {
  /** The agent's one-line JSON "ready" message. */
  ready: Record<string, unknown>;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts the agent with `args` and resolves once it printed its ready line on stdout; rejects
 * with its stderr if it exits first or stays silent past `readyTimeoutMs`. `binary`: another
 * build of the agent (the bench's parent-revision agent) instead of agentBinary().
 */
export function startAgent(args: string[], readyTimeoutMs: number, binary = agentBinary()): Promise<RunningAgent> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
  };
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const fail = (why: string): void => {
      clearTimeout(timer);
      lines.close();
      void stop().then(() => reject(new Error(`agent ${why}${stderr ? `:\n${stderr.trimEnd()}` : ''}`)));
    };
    const timer = setTimeout(() => fail(`printed no ready line within ${readyTimeoutMs} ms`), readyTimeoutMs);
    const onError = (err: Error): void => fail(`could not start: ${err.message}`);
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited (${signal ?? `status ${code}`}) before it was ready`);
    child.once('error', onError);
    child.once('exit', onEarlyExit);
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.off('error', onError);
      lines.close();
      let ready: Record<string, unknown>;
      try {
        ready = JSON.parse(line) as Record<string, unknown>;
      } catch {
        fail(`printed ${JSON.stringify(line.slice(0, 200))} instead of its JSON ready line`);
        return;
      }
      // Keep draining stdout so the agent never blocks on a full pipe.
      child.stdout!.resume();
      resolve({ ready, process: child, stop });
    });
  });
}

/** What an offline image is, from the agent's ready line (its `source`): the Targets view shows it. */
export interface MemorySourceInfo {
  kind: string;
  /** ram, elf or kdump. */
  format: string;
  /** kdump's page compression (zlib, lzo, snappy, zstd, uncompressed); null for other formats. */
  compression: string | null;
  flattened: boolean;
  /** kdump's dump level; null where the format records none. */
  dumpLevel: number | null;
  fileBytes: number;
  /** RAM pages the dump left out. */
  excludedPages: number;
}

/** The ready line's source, when it is one (an older agent prints none). */
export function memorySourceInfo(ready: Record<string, unknown>): MemorySourceInfo | undefined {
  const s = ready.source as Partial<MemorySourceInfo> | undefined;
  if (typeof s !== 'object' || s === null || typeof s.kind !== 'string' || typeof s.format !== 'string' || typeof s.fileBytes !== 'number') return undefined;
  return {
    kind: s.kind,
    format: s.format,
    compression: typeof s.compression === 'string' ? s.compression : null,
    flattened: s.flattened === true,
    dumpLevel: typeof s.dumpLevel === 'number' ? s.dumpLevel : null,
    fileBytes: s.fileBytes,
    excludedPages: typeof s.excludedPages === 'number' ? s.excludedPages : 0,
  };
}

export interface OfflineAgent {
  /** shm:… address of the private buffer. */
  target: string;
  keyFile: string;
  source?: MemorySourceInfo;
  stop(): Promise<void>;
}

/** Serves an offline image (`--memory` value, optional memory map) on a private shm buffer with a fresh key. */
export async function startOfflineAgent(memory: string, memoryMap: string | undefined, readyTimeoutMs = 120_000): Promise<OfflineAgent> {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-agent-'));
  const keyFile = path.join(dir, 'key');
  const shmPath = `/dev/shm/grass-offline-${process.pid}-${randomBytes(4).toString('hex')}`;
  const cleanup = (): void => {
    rmSync(shmPath, { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  // If this process ends without stop(), the agent gets SIGTERM (--exit-with-parent) and
  // removes its buffer; the key goes with this hook.
  process.once('exit', cleanup);
  try {
    writeNewKeyFile(keyFile);
    const args = ['--memory', memory, ...(memoryMap ? ['--memory-map', memoryMap] : []), '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'];
    const agent = await startAgent(args, readyTimeoutMs);
    const source = memorySourceInfo(agent.ready);
    return {
      target: `shm:${shmPath}`,
      keyFile,
      ...(source ? { source } : {}),
      stop: async () => {
        await agent.stop();
        cleanup();
        process.off('exit', cleanup);
      },
    };
  } catch (err) {
    cleanup();
    process.off('exit', cleanup);
    throw err;
  }
}
