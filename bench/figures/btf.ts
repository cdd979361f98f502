// BTF parse time on real kernels (this machine's 6.18 and the testbed's Debian 6.1): the
// parse in this process, a first type lookup, loading from vmlinux ELF and xz vmlinuz, and a
// cold `grass btf TYPE` process next to pahole and bpftool doing the same on the same file.
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { Btf } from '../../src/kernel/btf/btf';
import { loadBtfFile } from '../../src/kernel/btf/load';
import { prepareKernel } from '../../testbed/kernels';

const root = path.resolve(__dirname, '..', '..');

let bundled: string | undefined;

/**
 * The CLI as users run it: an esbuild bundle like dist/cli.js (same options as
 * scripts/build.mjs), built from the current source into .cache/bench/ so a concurrent
 * `npm run build` cannot pull it away mid-run.
 */
export async function cliCommand(): Promise<string[]> {
  if (!bundled) {
    const out = path.join(root, '.cache', 'bench', 'cli.js');
    await build({ entryPoints: [path.join(root, 'src', 'cli', 'main.ts')], outfile: out, bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['vscode', 'koffi', '@node-rs/crc32'], logLevel: 'warning' });
    bundled = out;
  }
  return [bundled];
}

function processMicros(command: string, args: string[]): number {
  const start = process.hrtime.bigint();
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'ignore'], maxBuffer: 1 << 30 });
  return Number(process.hrtime.bigint() - start) / 1000;
}

export const group: FigureGroup = {
  name: 'btf',
  description: 'BTF parse and type lookup on real kernels; cold grass btf vs pahole and bpftool',
  async run(bench) {
    const kernel = await prepareKernel();
    const files = [
      { tag: 'host', file: '/sys/kernel/btf/vmlinux' },
      { tag: 'debian61', file: kernel.btf },
    ].filter((f) => existsSync(f.file));
    for (const { tag, file } of files) {
      const bytes = readFileSync(file);
      const mb = (bytes.length / 1e6).toFixed(1);
      const types = new Btf(bytes).typeCount - 1;
      await bench.time(`parse-${tag}`, `parse ${path.basename(file)} (${tag}, ${mb} MB, ${types} types), warm`, () => new Btf(bytes), { runs: 21, warmup: 3 });
      await bench.time(`lookup-${tag}`, `parse + first lookup of struct task_struct and its members (${tag})`, () => {
        const btf = new Btf(bytes);
        btf.composite(btf.findByName('task_struct', 'struct')!);
      }, { runs: 21, warmup: 3 });
      const cli = await cliCommand();
      const ours = [];
      const paholeRuns = [];
      const bpftoolRuns = [];
      for (let r = 0; r < 7; r++) {
        ours.push(processMicros(process.execPath, [...cli, 'btf', '--btf', file, 'task_struct']));
        paholeRuns.push(processMicros('pahole', ['-F', 'btf', '-C', 'task_struct', file]));
        bpftoolRuns.push(processMicros('bpftool', ['btf', 'dump', 'file', file, 'format', 'raw']));
      }
      bench.record(`pahole-${tag}`, `pahole -C task_struct process (${tag})`, 'µs', paholeRuns);
      bench.record(`bpftool-${tag}`, `bpftool btf dump format raw process, all types (${tag})`, 'µs', bpftoolRuns);
      bench.record(`cli-${tag}`, `grass btf task_struct process, launch to output (${tag}, esbuild bundle)`, 'µs', ours, { versus: `pahole-${tag}` });
    }
    const images = [
      { tag: 'vmlinux', file: kernel.vmlinux, what: 'ELF vmlinux' },
      { tag: 'vmlinuz-xz', file: kernel.vmlinuz, what: 'bzImage, xz (6.1)' },
    ];
    try {
      images.push({ tag: 'vmlinuz-zstd', file: (await prepareKernel('linux-image-6.12-amd64')).vmlinuz, what: 'bzImage, zstd (6.12)' });
    } catch (err) {
      process.stderr.write(`bench: btf: no 6.12 kernel for the zstd figure: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    for (const { tag, file, what } of images) {
      await bench.time(`load-${tag}`, `load BTF from ${what} (${(readFileSync(file).length / 1e6).toFixed(1)} MB file)`, () => loadBtfFile(file), { runs: 5, warmup: 1 });
    }
  },
};
