// Starts a GRASS agent (gpu/build/grass-agent, cpu backend) on a testbed guest's RAM file and
// memory map. The agent outlives the process that started it (guests can be persistent) and
// ends with the guest: it watches the guest's QEMU (--watch-pid) and stops, removing its
// buffer, when QEMU exits, whoever stopped it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeNewKeyFile } from '../src/rdma/key';
import { agentBinary } from '../src/rdma/local-agent';
import type { Guest } from './guest';

export interface AgentHandle {
  /** Target address for the CLI and the extension (DESIGN §6), e.g. shm:/dev/shm/... */
  target: string;
  keyFile: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True if pid is still the agent serving shmPath (guards against pid reuse). */
function isAgentOf(pid: number, shmPath: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(shmPath);
  } catch {
    return false;
  }
}

export async function startAgent(guest: Guest): Promise<AgentHandle> {
  const { runDir, qemuPid } = guest.record;
  const shmPath = `/dev/shm/grass-agent-${guest.id}`;
  const keyFile = path.join(runDir, 'agent.key');
  const outFile = path.join(runDir, 'agent.out');
  const logFile = path.join(runDir, 'agent.log');
  fs.rmSync(keyFile, { force: true });
  writeNewKeyFile(keyFile);
  const out = fs.openSync(outFile, 'w');
  const log = fs.openSync(logFile, 'w');
  const args = ['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`,
    '--key-file', keyFile, '--watch-pid', String(qemuPid)];
  const child = spawn(agentBinary(), args, { detached: true, stdio: ['ignore', out, log] });
  fs.closeSync(out);
  fs.closeSync(log);
  child.unref();
  const pid = child.pid;
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = signal ?? `status ${code}`));
  child.once('error', (err) => (exit = err.message));

  const stop = async (): Promise<void> => {
    if (pid !== undefined && isAgentOf(pid, shmPath)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 5000;
      while (alive(pid) && isAgentOf(pid, shmPath) && Date.now() < deadline) await sleep(20);
      if (isAgentOf(pid, shmPath)) process.kill(pid, 'SIGKILL');
    }
    fs.rmSync(shmPath, { force: true });
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const line = fs.readFileSync(outFile, 'utf8').split('\n').find((l) => l.startsWith('{'));
    if (line) {
      const ready = JSON.parse(line) as { ready?: boolean; target?: string };
      if (ready.ready !== true || ready.target !== `shm:${shmPath}`) {
        await stop();
        throw new Error(`testbed: agent on guest ${guest.id} printed an unexpected ready line: ${line}`);
      }
      fs.writeFileSync(path.join(runDir, 'agent.json'), JSON.stringify({ pid, target: ready.target, keyFile, ready }, null, 2) + '\n');
      return { target: ready.target, keyFile, stop };
    }
    const why = exit ?? (Date.now() > deadline ? `no ready line within ${READY_TIMEOUT_MS} ms` : undefined);
    if (why) {
      await stop();
      const stderr = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim() : '';
      throw new Error(`testbed: agent on guest ${guest.id} failed (${why})${stderr ? `:\n${stderr}` : ''}`);
    }
    await sleep(50);
  }
}
