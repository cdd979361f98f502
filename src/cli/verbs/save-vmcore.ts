// grass save-vmcore: the dead kernel's physical memory, all of it or only the kernel's pages,
// streamed over the protocol's BULK_READ into an ELF vmcore that crash, drgn and grass open.
import type { CliCommand } from '../command';
import { journalPath, SaveProgress, saveVmcore } from '../../vmcore/save';
import { positiveIntegerFlag, printJson, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass save-vmcore OUT --target ADDR [--key-file F] [--kernel-only] [--parallel N] [--json]

Writes the target's physical memory to OUT as an ELF vmcore (VMCOREINFO note, one PT_LOAD per
physical range with its direct-map address, plus the kernel image's own mapping), which crash,
drgn and 'grass … --target vmcore:OUT' open. Progress (rate, time left) goes to stderr.
An interrupted transfer leaves OUT.journal beside OUT: the same command resumes it and the
result is byte-identical to an uninterrupted one. When done, OUT.manifest.json lists the
segments, the pages left out and why, and each chunk's CRC32.

${targetFlagsUsage}
  --kernel-only      leave out free pages, user (anonymous) pages and file cache, judged
                     from the kernel's own struct page array as makedumpfile does
  --parallel N       requests in flight (default: every slot but the heartbeat's)
`;

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** One stderr line, rewritten in place on a terminal, at most a few times a second. */
function progressPrinter(): (p: SaveProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.phase === 'transfer' && now - last < 250 && p.bytesDone < p.bytesTotal) return;
    last = now;
    const line = p.phase === 'classify'
      ? 'save-vmcore: reading the struct page array to find free, user and cache pages'
      : `save-vmcore: ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100}%)` +
        (p.rate > 0 ? `, ${formatBytes(p.rate)}/s` : '') + (p.etaSeconds !== undefined ? `, ${Math.ceil(p.etaSeconds)} s left` : '');
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  };
}

export const saveVmcoreCommand: CliCommand = targetVerb({
  name: 'save-vmcore',
  summary: 'save the target\'s memory (or only the kernel\'s pages) as an ELF vmcore, resumable',
  usage,
  options: { 'kernel-only': { type: 'boolean', default: false }, parallel: { type: 'string' } },
  positionals: true,
  prepare({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('save-vmcore: expected one OUT file (see grass save-vmcore --help)');
    const parallel = positiveIntegerFlag('save-vmcore', 'parallel', values.parallel);
    const out = positionals[0];
    // Ctrl-C: the session's own handler detaches and exits; every chunk is journaled only after
    // its bytes are written, so whatever was in flight is simply fetched again on resume.
    const onInterrupt = (): void => {
      process.stderr.write(`\nsave-vmcore: interrupted; run the same command again to resume (${journalPath(out)})\n`);
    };
    process.prependOnceListener('SIGINT', onInterrupt);
    process.prependOnceListener('SIGTERM', onInterrupt);
    return { out, parallel, kernelOnly: values['kernel-only'] === true, onInterrupt };
  },
  async run({ client }, { out, parallel, kernelOnly, onInterrupt }, flags) {
    const r = await saveVmcore(client, out, { kernelOnly, parallel, onProgress: progressPrinter() });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (flags.json) printJson(r);
    else process.stderr.write(`save-vmcore: ${out}: ${formatBytes(r.fileBytes)} (${r.pagesSaved} of ${r.pagesTotal} pages) in ${r.seconds.toFixed(1)} s; manifest ${r.manifest}\n`);
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
    return 0;
  },
});
