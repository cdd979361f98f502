// Flags every target verb shares (DESIGN §6: --target ADDR --key-file F --json) and the
// session around a verb's work, with errors that name the part that failed.
import { constants } from 'node:os';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { classifyFailure, exitStatusOf } from '../../session/failure';
import { openTarget, type ProtocolSession } from '../../session/open-target';
import type { CliCommand } from '../command';

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

type VerbOptions = NonNullable<ParseArgsConfig['options']>;

/** Parses argv with the shared target flags plus the verb's own. */
export function parseTargetArgs<O extends VerbOptions>(verb: string, argv: string[], own: O, allowPositionals = false) {
  const parsed = parseArgs({ args: argv, options: { ...targetOptions, ...own }, allowPositionals, strict: true });
  const v = parsed.values as Record<string, unknown>;
  if (typeof v.target !== 'string') throw new Error(`${verb}: --target ADDR is required`);
  const timeoutMs = positiveIntegerFlag(verb, 'timeout-ms', v['timeout-ms']);
  const flags: TargetFlags = { target: v.target, keyFile: v['key-file'] as string | undefined, timeoutMs, json: v.json === true };
  return { flags, values: parsed.values, positionals: parsed.positionals };
}

/** A flag's value as a positive integer (`fallback` when it is not given), or an error naming the flag. */
export function positiveIntegerFlag(verb: string, flag: string, value: unknown, fallback: number): number;
export function positiveIntegerFlag(verb: string, flag: string, value: unknown): number | undefined;
export function positiveIntegerFlag(verb: string, flag: string, value: unknown, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${verb}: --${flag} must be a positive integer`);
  return n;
}

export type ParsedTargetArgs<O extends VerbOptions> = ReturnType<typeof parseTargetArgs<O>>;

/**
 * What a target verb's work gives back: a result that prints as --json's document or as lines
 * for a person (exit status 0), or an exit status when the verb printed what it prints itself.
 */
export type VerbResult = number | { json: unknown; text: () => string[] };

/** A verb that works on one target (DESIGN §6's shared flags, and its own). */
export interface TargetVerb<O extends VerbOptions, A> {
  name: string;
  summary: string;
  usage: string;
  /** The verb's own flags, beside the shared ones. */
  options?: O;
  positionals?: boolean;
  /** Reads the verb's own flags and arguments before the target opens: a bad one never opens it. */
  prepare?: (parsed: ParsedTargetArgs<O>) => A;
  run(session: ProtocolSession, args: A, flags: TargetFlags): Promise<VerbResult>;
}

/** The CLI command of a target verb: parse, prepare, open the target, run, print, close (withTarget). */
export function targetVerb<O extends VerbOptions = Record<never, never>, A = undefined>(verb: TargetVerb<O, A>): CliCommand {
  return {
    name: verb.name,
    summary: verb.summary,
    usage: verb.usage,
    async run(argv) {
      const parsed = parseTargetArgs(verb.name, argv, verb.options ?? ({} as O), verb.positionals);
      const args = verb.prepare ? verb.prepare(parsed) : (undefined as A);
      return withTarget(verb.name, parsed.flags, async (session) => {
        const result = await verb.run(session, args, parsed.flags);
        if (typeof result === 'number') return result;
        if (parsed.flags.json) printJson(result.json);
        else process.stdout.write(result.text().map((line) => `${line}\n`).join(''));
        return 0;
      });
    },
  };
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
