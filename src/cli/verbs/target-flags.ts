// Flags every target verb shares (DESIGN §6: --target ADDR --key-file F --json) and the
// session around a verb's work, with errors that name the part that failed.
import { constants } from 'node:os';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { classifyFailure, exitStatusOf } from '../../session/failure';
import { openTarget, type ProtocolSession } from '../../session/open-target';

export const targetFlagsUsage = `  --target ADDR      shm:PATH, rdma://HOST|NAME[:PORT] (through a running 'grass monitor'),
                     vmcore:PATH or qemu-ram:PATH[?map=FILE]
  --key-file F       32-byte HMAC key as hex (default: $GRASS_KEY_FILE)
  --timeout-ms N     how long a request may go unanswered (default 3000)
  --json             machine-readable output on stdout`;

const targetOptions = {
  target: { type: 'string' },
  'key-file': { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies ParseArgsConfig['options'];

export interface TargetFlags {
  target: string;
  keyFile?: string;
  timeoutMs?: number;
  json: boolean;
}

/** Parses argv with the shared target flags plus the verb's own. */
export function parseTargetArgs<O extends NonNullable<ParseArgsConfig['options']>>(verb: string, argv: string[], own: O, allowPositionals = false) {
  const parsed = parseArgs({ args: argv, options: { ...targetOptions, ...own }, allowPositionals, strict: true });
  const v = parsed.values as Record<string, unknown>;
  if (typeof v.target !== 'string') throw new Error(`${verb}: --target ADDR is required`);
  let timeoutMs: number | undefined;
  if (v['timeout-ms'] !== undefined) {
    timeoutMs = Number(v['timeout-ms']);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`${verb}: --timeout-ms must be a positive integer`);
  }
  const flags: TargetFlags = { target: v.target, keyFile: v['key-file'] as string | undefined, timeoutMs, json: v.json === true };
  return { flags, values: parsed.values, positionals: parsed.positionals };
}

/** Runs `work` on an attached session; closes it; maps failures to a message and an exit status. */
export async function withTarget(verb: string, flags: TargetFlags, work: (session: ProtocolSession) => Promise<number>): Promise<number> {
  let session: ProtocolSession | undefined;
  // Interrupted: detach first, so an offline image's private agent and key go with us.
  const onSignal = (signal: NodeJS.Signals): void => {
    void (session?.close() ?? Promise.resolve()).finally(() => process.exit(128 + constants.signals[signal]));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    session = await openTarget(flags.target, { keyFile: flags.keyFile, timeoutMs: flags.timeoutMs });
    return await work(session);
  } catch (err) {
    // The exit status says which part failed (src/session/failure.ts); a refused connection
    // exits 1, as a request the agent refuses: the agent and the link are up.
    const failure = classifyFailure(err);
    const status = exitStatusOf(failure.state);
    if (status === undefined) throw err;
    process.stderr.write(`grass ${verb}: ${failure.message}${failure.state === 'gpu-nic-dead' ? ' (the agent or the transport is dead)' : ''}\n`);
    return status;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await session?.close();
  }
}

/** JSON on stdout, one document per line. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}
