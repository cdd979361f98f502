// `grass testbed`: boots and drives the QEMU testbed, in a GRASS checkout only. The launcher
// (testbed/) is not part of the product, so dist/cli.js and the .vsix do not carry it: its
// verbs (testbed/cli.ts) are loaded at run time from the checkout this CLI runs from,
// compiled by the checkout's own tsx; without testbed/ the verb says so.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { CliCommand } from '../command';

const usage = `usage: grass testbed <verb> ...  (a Debian kernel in QEMU; see docs/testbed.md)

  up [--kernel PKG] [--kaslr] [--mem MiB] [--cpus N] [--cpu-model MODEL] [--preempt none|voluntary|full]
     [--swap MiB] [--disk MiB] [--append WORDS] [--agent] [--kdump [--crash-kernel MiB]] [--json]
                      boot a guest that stays up until 'down'; --kdump reserves a crash kernel
                      (crashkernel=, default 192 MiB; memory default 640 MiB) and loads it; prints
                      {id, ramFile, memoryMap, serial, qmp, shell, kernel, bootMs, target?, keyFile?}
  run ID CMD...       run a shell command in the guest; prints its output, exits with its status
                      (--json: {stdout, rc}; --timeout MS, default 30000)
  truth ID [--kallsyms] --json
                      ground truth from the guest itself: tasks, /proc/stat, meminfo, vmstat,
                      loadavg, kernel log (seq, level, text), and /proc/kallsyms if asked
  fault ID KIND       inject a fault (without KIND it lists the kinds)
  spawn ID N [--threads]
                      start N sleeping processes (or threads)
  pause ID | resume ID
                      stop / continue the guest's CPUs (QMP stop / cont)
  dump ID PATH [--format elf|kdump-zlib|kdump-lzo|kdump-snappy]
                      write a vmcore (QMP dump-guest-memory; default ELF)
  kdump ID PATH [--format zlib|lzo|snappy|zstd|elf] [--flattened] [--dump-level N] [--json]
                      panic a guest booted with --kdump (sysrq c); its capture kernel runs
                      makedumpfile (default -c -d 31) on /proc/vmcore; the dump is copied to PATH
  down ID             stop QEMU, remove the RAM file and run directory
  list [--json]       guests running on this machine
`;

/** What testbed/cli.ts exports. */
interface TestbedVerbs {
  runTestbed(argv: string[], usage: string): Promise<number>;
}

/** The folder holding this CLI's package.json: the checkout (from src/cli/verbs/ or dist/). */
function packageRoot(): string {
  let dir = __dirname;
  for (let depth = 0; depth < 6; depth++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`no package.json above ${__dirname}`);
}

function loadTestbed(): TestbedVerbs {
  const root = packageRoot();
  const entry = path.join(root, 'testbed', 'cli.ts');
  if (!existsSync(entry)) {
    throw new Error(`'grass testbed' runs only from a GRASS checkout: ${entry} is not there (the testbed is not part of the installed CLI or extension)`);
  }
  // A require the bundler cannot follow: tsx is resolved from the checkout, at run time.
  const requireFromRoot = createRequire(path.join(root, 'package.json'));
  let tsx: { require(id: string, fromFile: string): unknown };
  try {
    tsx = requireFromRoot('tsx/cjs/api') as typeof tsx;
  } catch (e) {
    throw new Error(`'grass testbed' compiles testbed/ with the checkout's tsx, which did not load (run npm install in ${root}): ${e instanceof Error ? e.message : String(e)}`);
  }
  return tsx.require(entry, __filename) as TestbedVerbs;
}

export const testbedCommand: CliCommand = {
  name: 'testbed',
  summary: 'boot and drive a Debian kernel in QEMU (faults, ground truth, dumps)',
  usage,
  run: (argv) => loadTestbed().runTestbed(argv, usage),
};
