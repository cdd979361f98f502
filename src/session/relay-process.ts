// The `grass monitor` the extension's sessions live in (DESIGN §3.4): found at its socket, or
// started detached (its own process group and session, stdio not tied to the extension host)
// so that it outlives the extension host, a window reload and VS Code itself. No VS Code
// dependency: the tests and the bench run it as is.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { holdThroughRelay, relayRunning } from '../relay/remote';
import type { TargetStatus } from '../relay/wire';

export interface RelayLaunch {
  socketPath: string;
  /** The bundled CLI (dist/cli.js of the extension). */
  cliPath: string;
  /** The key the relay's own heartbeats are signed with (in a private file only until it has read it). */
  key: Uint8Array;
  /** Where the relay's log goes (next to the socket unless given). */
  logFile?: string;
  /** Told the pid of a relay started here (it outlives the caller: someone may have to stop it). */
  onStarted?: (pid: number) => void;
  startTimeoutMs?: number;
}

export interface HeldTarget {
  status: TargetStatus;
  /** Pid of the relay this call started; undefined when one already ran. */
  startedPid?: number;
}

/**
 * Makes sure a relay runs at launch.socketPath and holds `target` (rdma:// or shm:) with the
 * target's key (the relay checks it against the agent first: a wrong key fails here and
 * never becomes the held session's). A relay started here for a hold that failed is stopped.
 */
export async function ensureRelayHolds(launch: RelayLaunch, target: string): Promise<HeldTarget> {
  if (await relayRunning(launch.socketPath)) return { status: await holdThroughRelay(launch.socketPath, target, launch.key) };
  const startedPid = await startRelay(launch);
  launch.onStarted?.(startedPid);
  try {
    return { status: await holdThroughRelay(launch.socketPath, target, launch.key), startedPid };
  } catch (err) {
    process.kill(startedPid, 'SIGTERM');
    throw err;
  }
}

async function startRelay(launch: RelayLaunch): Promise<number> {
  const logFile = launch.logFile ?? `${launch.socketPath}.log`;
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, 'a', 0o600);
  // The key travels in a file of a private folder that is removed as soon as the relay serves
  // (it reads the key before); Node's stdio pipes are socket pairs, which /dev/stdin cannot open.
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'grass-monitor-key-'));
  const keyFile = path.join(keyDir, 'key');
  fs.writeFileSync(keyFile, Buffer.from(launch.key).toString('hex') + '\n', { mode: 0o600 });
  try {
    return await spawnAndWait(launch, logFile, log, keyFile);
  } finally {
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

async function spawnAndWait(launch: RelayLaunch, logFile: string, log: number, keyFile: string): Promise<number> {
  // No target on the command line: the hold request that follows adds it, key checked.
  const child = spawn(process.execPath, [launch.cliPath, 'monitor', '--socket', launch.socketPath, '--key-file', keyFile], {
    detached: true,
    stdio: ['ignore', log, log],
    // In the Electron extension host, process.execPath is Electron: run it as Node.
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  fs.closeSync(log);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited (${signal ?? code})`));
  child.once('error', (err) => (exited = `could not start: ${err.message}`));
  child.unref();
  const deadline = Date.now() + (launch.startTimeoutMs ?? 20_000);
  while (!(await relayRunning(launch.socketPath))) {
    const tail = () => fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
    if (exited) throw new Error(`grass monitor ${exited} before serving ${launch.socketPath}: ${tail()}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`grass monitor did not serve ${launch.socketPath} within ${launch.startTimeoutMs ?? 20_000} ms: ${tail()}`);
    }
    await sleep(100);
  }
  return child.pid!;
}
