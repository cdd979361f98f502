// A testbed guest with a GRASS agent for the extension-host tests, run as its own process from
// source (`node --import tsx`), since the testbed finds its files relative to its sources and
// the test bundles live elsewhere. Prints one ready line `{"target","keyFile"}`, then answers
// one JSON request a line on stdin with one JSON line on stdout:
//   {"op":"truth"} -> the guest's ground truth   {"op":"exec","command":"…"} -> {"output"}
//   {"op":"pause"} / {"op":"resume"} / {"op":"stopAgent"} -> {}
//   {"op":"fault","kind":"f4"} -> {}: grass testbed's fault of that kind injected
//   {"op":"panic"} -> {"console"}: echo c > /proc/sysrq-trigger; answers once QEMU reports the
//   guest panicked, with the guest's serial console text
// On end of stdin (the test ended, or its extension host died) it stops the agent and the guest.
import { createInterface } from 'node:readline';
import { bootGuest, type FaultKind, type Guest } from '../../../testbed';
import { startGuestAgent, type GuestAgent } from '../../integration/agent-harness';

const reply = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
};

async function main(): Promise<void> {
  let guest: Guest | undefined;
  let agent: GuestAgent | undefined;
  const shutdown = async (): Promise<void> => {
    await agent?.stop();
    await guest?.down();
    process.exit(0);
  };
  try {
    guest = await bootGuest({ memMiB: 512, cpus: 2 });
    agent = await startGuestAgent(guest);
  } catch (err) {
    reply({ error: (err as Error).message });
    await shutdown();
    return;
  }
  reply({ target: agent.target, keyFile: agent.keyFile });
  const lines = createInterface({ input: process.stdin });
  lines.on('close', () => void shutdown());
  for await (const line of lines) {
    const request = JSON.parse(line) as { op: string; command?: string; kind?: FaultKind };
    try {
      switch (request.op) {
        case 'truth':
          reply(await guest.truth());
          break;
        case 'exec':
          reply({ output: await guest.exec(request.command ?? 'true') });
          break;
        case 'pause':
          await guest.pause();
          reply({});
          break;
        case 'resume':
          await guest.resume();
          reply({});
          break;
        case 'fault':
          if (!request.kind) throw new Error('fault: no kind');
          await guest.fault(request.kind);
          reply({});
          break;
        case 'panic': {
          await guest.fault('panic');
          const deadline = Date.now() + 60_000;
          while ((await guest.status()) !== 'guest-panicked') {
            if (Date.now() > deadline) throw new Error(`the guest did not panic; console ends: ${guest.console().slice(-1000)}`);
            await new Promise((r) => setTimeout(r, 200));
          }
          reply({ console: guest.console() });
          break;
        }
        case 'stopAgent':
          await agent.stop();
          reply({});
          break;
        default:
          reply({ error: `unknown op ${request.op}` });
      }
    } catch (err) {
      reply({ error: (err as Error).message });
    }
  }
}

void main();
