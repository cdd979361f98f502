// grass save-vmcore: the dead kernel's physical memory, all of it or only the kernel's pages,
// streamed over the protocol's BULK_READ into an ELF vmcore that crash, drgn and grass open.
import type { CliCommand } from '../command';
import type { KdumpCompression } from '../../vmcore/kdump';
import { journalPath, SaveProgress, saveVmcore } from '../../vmcore/save';
import { positiveIntegerFlag, printJson, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass save-vmcore OUT --target ADDR [--key-file F] [--kernel-only] [--format elf|kdump]
                         [--compress zstd|zlib] [--parallel N] [--json]

Writes the target's physical memory to OUT as an ELF vmcore (VMCOREINFO note, one PT_LOAD per
physical range with its direct-map address, plus the kernel image's own mapping), or with
--format kdump as makedumpfile's kdump-compressed file (each page compressed, zstd by default;
pages left out are clear in its bitmap), which crash, drgn and 'grass … --target vmcore:OUT'
open. Pages the source itself lacks (a dump's dump level) are never asked for: left out, and
said so on stderr and in the manifest. Progress (rate, time left) goes to stderr.
An interrupted transfer leaves OUT.journal beside OUT: the same command resumes it and the
result is byte-identical to an uninterrupted one. When done, OUT.manifest.json lists the
segments, the pages left out and why, and each chunk's CRC32.

${targetFlagsUsage}
  --kernel-only      leave out free pages, user (anonymous) pages and file cache, judged
                     from the kernel's own struct page array as makedumpfile does
  --format F         elf (default) or kdump (makedumpfile's compressed format: crash reads it)
  --compress C       kdump's page compression: zstd (default) or zlib
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
  summary: 'save the target\'s memory (or only the kernel\'s pages) as an ELF or kdump-compressed vmcore, resumable',
  usage,
  options: { 'kernel-only': { type: 'boolean', default: false }, parallel: { type: 'string' }, format: { type: 'string' }, compress: { type: 'string' } },
  positionals: true,
  prepare({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('save-vmcore: expected one OUT file (see grass save-vmcore --help)');
    const parallel = positiveIntegerFlag('save-vmcore', 'parallel', values.parallel);
    const out = positionals[0];
    const format = values.format ?? 'elf';
    if (format !== 'elf' && format !== 'kdump') throw new Error(`save-vmcore: --format ${format}: expected elf or kdump`);
    const compression = values.compress ?? 'zstd';
    if (compression !== 'zstd' && compression !== 'zlib') throw new Error(`save-vmcore: --compress ${compression}: expected zstd or zlib`);
    const chosen = { format: format as 'elf' | 'kdump', compression: compression as KdumpCompression };
    if (values.compress !== undefined && format !== 'kdump') throw new Error('save-vmcore: --compress is for --format kdump (an ELF vmcore is not compressed)');
    // Ctrl-C: the session's own handler detaches and exits; every chunk is journaled only after
    // its bytes are written, so whatever was in flight is simply fetched again on resume.
    const onInterrupt = (): void => {
      process.stderr.write(`\nsave-vmcore: interrupted; run the same command again to resume (${journalPath(out)})\n`);
    };
    process.prependOnceListener('SIGINT', onInterrupt);
    process.prependOnceListener('SIGTERM', onInterrupt);
    return { out, parallel, kernelOnly: values['kernel-only'] === true, ...chosen, onInterrupt };
  },
  async run({ client }, { out, parallel, kernelOnly, format, compression, onInterrupt }, flags) {
    const r = await saveVmcore(client, out, { kernelOnly, parallel, format, compression, onProgress: progressPrinter() });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (flags.json) printJson(r);
    else process.stderr.write(`save-vmcore: ${out}: ${formatBytes(r.fileBytes)} (${r.pagesSaved} of ${r.pagesTotal} pages) in ${r.seconds.toFixed(1)} s; manifest ${r.manifest}\n`);
    // Pages the source itself lacks are said every time: a reader of OUT must not take them for RAM.
    const missing = r.excludedPages.notindump ?? 0;
    if (missing > 0) {
      const zeros = r.excludedAsZeros.notindump ?? 0;
      process.stderr.write(`save-vmcore: ${missing} pages are not in the source dump (excluded by its dump level): ${missing - zeros} left out of ${out}` +
        (zeros ? `, ${zeros} written as zero pages inside its segments (runs too short to split one; each run is in the manifest)` : '') + '\n');
    }
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
    return 0;
  },
});
