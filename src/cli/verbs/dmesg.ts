// grass dmesg: the target kernel's log, read from its printk ring buffer through the agent
// (remote analysis: the agent only reads memory), so it works on a panicked or hung kernel.
import { KernelLogError, KernelLogReader, type KernelLog } from '../../kernel/log/ringbuffer';
import { KernelLogFollower } from '../../kernel/log/follow';
import { formatRecord, recordToJson } from '../../kernel/log/format';
import type { CliCommand } from '../command';
import { positiveIntegerFlag, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass dmesg --target ADDR [--key-file F] [--since SEQ] [--follow [--interval-ms N]] [--json]

Prints the kernel log as "dmesg -r" does plus the printk caller (task T<pid> or CPU C<n>):
  <6>[   12.345678] [    T87] message
<N> is the syslog priority (facility * 8 + level; <?> when the target has no BTF to say).
The log is read from the target's memory (its printk ring buffer), not from the target's OS.

${targetFlagsUsage}
  --since SEQ        only records with a sequence number greater than SEQ
  --follow           keep printing new records as the kernel logs them, until interrupted
                     (exit status 130 on SIGINT); in order, each once: a record still being
                     written or open for continuation is waited for, one poll at most
  --interval-ms N    how often --follow polls (default 1000)

--json prints {"records":[{seq,timestampNs,timestampUs,level,levelName,facility,continuation,
newline,caller:{pid}|{cpu},text,subsystem?,device?,finalized}],"firstSeq","headSeq",
"resumeAfterSeq","overwritten","notes","layoutSources"}; with --follow, one record object per
line instead.
`;

export const dmesgCommand: CliCommand = targetVerb({
  name: 'dmesg',
  summary: "the target kernel's log, read from its memory",
  usage,
  options: {
    since: { type: 'string' },
    follow: { type: 'boolean', default: false },
    'interval-ms': { type: 'string' },
  },
  prepare({ values }) {
    const since = values.since === undefined ? -1 : Number(values.since);
    if (!Number.isSafeInteger(since) || since < -1) throw new Error(`dmesg: --since must be a sequence number, not '${values.since}'`);
    return { since, intervalMs: positiveIntegerFlag('dmesg', 'interval-ms', values['interval-ms'], 1000), follow: values.follow === true };
  },
  async run(session, { since, intervalMs, follow }, flags) {
    const reader = new KernelLogReader(session.client, await session.client.describe());
    if (follow) return followLog(reader, since, intervalMs, flags.json);
    const log = await reader.read({ sinceSeq: since });
    reportNotes(log, since);
    return { json: { ...log, records: log.records.map(recordToJson) }, text: () => log.records.map(formatRecord) };
  },
});

/**
 * Polls until interrupted. withTarget answers SIGINT/SIGTERM by detaching and exiting 130/143;
 * the flag here only keeps a poll cut short by that detach from being reported as a failure.
 */
async function followLog(reader: KernelLogReader, since: number, intervalMs: number, json: boolean): Promise<number> {
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const follower = new KernelLogFollower(reader, since);
  try {
    for (;;) {
      try {
        const update = await follower.poll();
        for (const note of update.notes) process.stderr.write(`grass dmesg: ${note}\n`);
        if (update.overwritten > 0) process.stderr.write(`grass dmesg: ${update.overwritten} records were overwritten before they could be read\n`);
        for (const r of update.records) process.stdout.write((json ? JSON.stringify(recordToJson(r)) : formatRecord(r)) + '\n');
      } catch (err) {
        if (interrupted) return 130;
        // A writer racing the read, or memory briefly unreadable: say so and poll again.
        if (!(err instanceof KernelLogError)) throw err;
        process.stderr.write(`grass dmesg: ${err.message}\n`);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function reportNotes(log: KernelLog, since: number): void {
  for (const note of log.notes) process.stderr.write(`grass dmesg: ${note}\n`);
  if (log.overwritten > 0 && since >= 0) {
    process.stderr.write(`grass dmesg: ${log.overwritten} records after ${since} were overwritten before they could be read\n`);
  }
}
