// grass agent: runs the target agent (gpu/build/grass-agent, or $GRASS_AGENT_BIN) with the
// same flags, in the foreground; its ready line and messages pass through.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { CliCommand } from '../command';
import { agentBinary } from '../../rdma/local-agent';

const usage = `usage: grass agent --memory <qemu-ram:PATH|vmcore:PATH|pmem:PATH> [--memory-map F]
                   [--kallsyms F] [--btf F] (--listen <shm:PATH|rdma://…> | --connect rdma://MONITOR)
                   --key-file F [--allow-writes] [--backend cpu|cuda]

Runs the GRASS agent in the foreground: it finds the kernel in the memory image, publishes the
target description and serves requests. Prints one JSON line on stdout when it is serving.
The binary is gpu/build/grass-agent of this package (override with GRASS_AGENT_BIN).
`;

export const agentCommand: CliCommand = {
  name: 'agent',
  summary: 'run the target agent on a memory image (cpu or cuda backend)',
  usage,
  async run(argv) {
    const child = spawn(agentBinary(), argv, { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`agent: cannot run ${agentBinary()}: ${err.message}`)));
      child.once('exit', (code, signal) => {
        process.off('SIGINT', forward);
        process.off('SIGTERM', forward);
        resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
      });
    });
  },
};
