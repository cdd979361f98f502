// `grass testbed`'s verbs and their JSON. Loaded at run time, from a checkout only, by
// src/cli/verbs/testbed.ts (which holds the verb's usage text): the launcher is not part of
// dist/cli.js or the .vsix.
import fs from 'node:fs';
import path from 'node:path';
import { startAgent } from './agent';
import { attachGuest, bootGuest, FAULT_KINDS, FaultKind, listGuests, PreemptModel, QEMU_DUMP_FORMATS, QemuDumpFormat } from './guest';
import { KDUMP_FORMATS, KdumpFormat, KdumpGuest } from './kdump-guest';


class UsageError extends Error {}

function takeOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function takeFlag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function takeInt(args: string[], name: string): number | undefined {
  const v = takeOption(args, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} needs a whole number, got '${v}'`);
  return Number(v);
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 2) + '\n');
}

function needId(args: string[], verb: string): string {
  const id = args.shift();
  if (!id) throw new UsageError(`testbed ${verb} needs a guest id`);
  return id;
}

async function up(args: string[]): Promise<number> {
  const json = takeFlag(args, '--json');
  const kaslr = takeFlag(args, '--kaslr');
  const agent = takeFlag(args, '--agent');
  const kdump = takeFlag(args, '--kdump');
  const crashKernelMiB = takeInt(args, '--crash-kernel');
  if (crashKernelMiB !== undefined && !kdump) throw new UsageError('--crash-kernel needs --kdump');
  const preempt = takeOption(args, '--preempt');
  if (preempt !== undefined && !['none', 'voluntary', 'full'].includes(preempt)) {
    throw new UsageError(`--preempt must be none, voluntary or full, got '${preempt}'`);
  }
  const options = {
    kernel: takeOption(args, '--kernel'),
    kaslr,
    memMiB: takeInt(args, '--mem'),
    cpus: takeInt(args, '--cpus'),
    cpuModel: takeOption(args, '--cpu-model'),
    preempt: preempt as PreemptModel | undefined,
    swapMiB: takeInt(args, '--swap'),
    diskMiB: takeInt(args, '--disk'),
    append: takeOption(args, '--append')?.split(/\s+/),
    persistent: true,
  };
  if (args.length) throw new UsageError(`testbed up: unexpected '${args[0]}'`);
  const guest = kdump ? (await KdumpGuest.boot({ ...options, crashKernelMiB })).guest : await bootGuest(options);
  let agentInfo: { target: string; keyFile: string } | undefined;
  if (agent) {
    try {
      const handle = await startAgent(guest);
      agentInfo = { target: handle.target, keyFile: handle.keyFile };
    } catch (e) {
      await guest.down();
      throw e;
    }
  }
  const k = guest.kernelDir;
  const out = {
    id: guest.id,
    ramFile: guest.ramFile,
    memoryMap: guest.memoryMapFile,
    serial: guest.serialLog,
    qmp: guest.qmpSocket,
    shell: guest.record.shellSocket,
    kernel: { package: k.package, abi: k.abi, release: k.release, vmlinux: k.vmlinux, btf: k.btf, dir: k.dir },
    kernelCommandLine: guest.record.kernelCommandLine,
    bootMs: guest.bootMs,
    ...agentInfo,
  };
  if (json) printJson(out);
  else process.stdout.write(`${guest.id}\n`);
  process.stderr.write(`testbed: guest ${guest.id} up in ${guest.bootMs} ms (${k.abi}); 'grass testbed down ${guest.id}' stops it\n`);
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const args = [...argv];
  const verb = args.shift();
  switch (verb) {
    case 'up':
      return up(args);
    case 'run': {
      const json = takeFlag(args, '--json');
      const timeoutMs = takeInt(args, '--timeout');
      const guest = attachGuest(needId(args, verb));
      if (!args.length) throw new UsageError('testbed run needs a command');
      const r = await guest.run(args.join(' '), { timeoutMs });
      if (json) printJson(r);
      else process.stdout.write(r.stdout);
      return r.rc;
    }
    case 'truth': {
      takeFlag(args, '--json'); // JSON is the only output form
      const kallsyms = takeFlag(args, '--kallsyms');
      const guest = attachGuest(needId(args, verb));
      printJson(await guest.truth({ kallsyms }));
      return 0;
    }
    case 'fault': {
      const json = takeFlag(args, '--json');
      const guest = attachGuest(needId(args, verb));
      const kind = args.shift() as FaultKind | undefined;
      if (!kind || !FAULT_KINDS.includes(kind)) throw new UsageError(`testbed fault needs a kind: ${FAULT_KINDS.join(', ')}`);
      const r = await guest.fault(kind);
      if (json) printJson(r);
      else process.stderr.write(`testbed: fault ${kind} injected into ${guest.id}\n`);
      return 0;
    }
    case 'spawn': {
      const json = takeFlag(args, '--json');
      const threads = takeFlag(args, '--threads');
      const guest = attachGuest(needId(args, verb));
      const n = Number(args.shift());
      const r = await guest.spawn(n, { threads });
      if (json) printJson(r);
      else process.stdout.write(`${r.created} ${threads ? 'threads' : 'processes'} held by pid ${r.holderPid}\n`);
      return 0;
    }
    case 'pause':
      await attachGuest(needId(args, verb)).pause();
      return 0;
    case 'resume':
      await attachGuest(needId(args, verb)).resume();
      return 0;
    case 'dump': {
      const format = (takeOption(args, '--format') ?? 'elf') as QemuDumpFormat;
      if (!QEMU_DUMP_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${QEMU_DUMP_FORMATS.join(', ')}, got '${format}'`);
      const guest = attachGuest(needId(args, verb));
      const file = args.shift();
      if (!file) throw new UsageError('testbed dump needs a file path');
      await guest.dump(file, format);
      return 0;
    }
    case 'kdump': {
      const json = takeFlag(args, '--json');
      const format = (takeOption(args, '--format') ?? 'zlib') as KdumpFormat;
      if (!KDUMP_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${KDUMP_FORMATS.join(', ')}, got '${format}'`);
      const flattened = takeFlag(args, '--flattened');
      const dumpLevel = takeInt(args, '--dump-level');
      const kg = KdumpGuest.attach(needId(args, verb));
      const out = args.shift();
      if (!out) throw new UsageError('testbed kdump needs a file path');
      if (args.length) throw new UsageError(`testbed kdump: unexpected '${args[0]}'`);
      await kg.arm([{ format, flattened, dumpLevel }]);
      const r = await kg.panicAndDump(path.dirname(path.resolve(out)));
      fs.renameSync(r.results[0].file, out);
      const summary = { file: path.resolve(out), bytes: r.results[0].bytes, makedumpfileSeconds: r.results[0].seconds, captureBootSeconds: r.captureBootSeconds };
      if (json) printJson(summary);
      else process.stderr.write(`testbed: ${summary.file}: ${summary.bytes} bytes (capture kernel up ${summary.captureBootSeconds.toFixed(1)} s after the panic, makedumpfile ${summary.makedumpfileSeconds.toFixed(1)} s); the guest now idles in its capture kernel\n`);
      return 0;
    }
    case 'down': {
      const id = needId(args, verb);
      await (KdumpGuest.attachIfKdump(id) ?? attachGuest(id)).down();
      return 0;
    }
    case 'list': {
      const guests = listGuests().map((g) => ({ id: g.id, qemuPid: g.qemuPid, ramFile: g.ramFile, kernel: g.kernel.abi, options: g.options }));
      if (takeFlag(args, '--json')) printJson({ guests });
      else for (const g of guests) process.stdout.write(`${g.id}  ${g.kernel}  ${g.options.memMiB} MiB  ${g.options.cpus} CPUs\n`);
      return 0;
    }
    default:
      throw new UsageError(verb ? `testbed: unknown verb '${verb}'` : 'testbed needs a verb');
  }
}

/** Runs `grass testbed ARGV`; a usage mistake prints what was wrong and `usage`, exit status 2. */
export async function runTestbed(argv: string[], usage: string): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`grass testbed: ${e.message}\n\n${usage}`);
      return 2;
    }
    throw e;
  }
}
