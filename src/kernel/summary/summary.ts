// What a person asks first of a target kernel: its release, KASLR slide, how long it has run,
// whether it is tainted (by the kernel's own taint_flags letters) and whether it panicked, its
// CPUs and memory. Read from the target's memory through its BTF and symbols; a part that cannot
// be read says why instead of failing the rest.
import type { Btf } from '../btf/btf';
import type { KernelModel } from '../model';
import { Kernel } from '../objects/object';

export interface KernelSummary {
  release: string;
  kaslrOffset: bigint;
  /** CLOCK_MONOTONIC seconds (the timekeeper's ktime_sec: uptime less any time suspended), or why unknown. */
  uptimeSeconds: number | { error: string };
  /** tainted_mask and its letters (taint_flags[bit].c_true, as /proc/sys/kernel/tainted and print_tainted()). */
  taint: { mask: bigint; letters: string } | { error: string };
  /** panic_cpu: the CPU that panicked, or undefined when none did (PANIC_CPU_INVALID). */
  panic: { cpu: number | undefined } | { error: string };
  /** nr_cpu_ids, else the agent's count. */
  cpus: number;
  /** The memory map's RAM, bytes. */
  ramBytes: bigint;
  /** _totalram_pages × the page size (what the kernel manages: RAM less what it reserved, /proc/meminfo's MemTotal), or why unknown. */
  managedBytes: bigint | { error: string };
}

const failure = (err: unknown): { error: string } => ({ error: err instanceof Error ? err.message : String(err) });

async function attempt<T>(read: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await read();
  } catch (err) {
    return failure(err);
  }
}

const tkCoreTypes = new WeakMap<Btf, number | undefined>();

/**
 * The timekeeper's ktime_sec. tk_core is a static variable of an anonymous struct type
 * ({ seq; timekeeper; }), so its layout is found in BTF by its members' names.
 */
async function monotonicSeconds(kernel: Kernel): Promise<number> {
  const { btf } = kernel;
  // (A scan of every type, some 0.5 s on a vmlinux BTF: once per BTF.)
  if (!tkCoreTypes.has(btf)) {
    let found: number | undefined;
    for (let id = btf.startId; id < btf.typeCount && found === undefined; id++) {
      if (btf.kindOf(id) !== 'struct') continue;
      const t = btf.composite(id);
      if (t.name === '' && t.members.length === 2 && t.members[0].name === 'seq' && t.members[1].name === 'timekeeper') found = id;
    }
    tkCoreTypes.set(btf, found);
  }
  const tkCore = tkCoreTypes.get(btf);
  if (tkCore === undefined) throw new Error("the target's BTF has no type of tk_core ({ seq; timekeeper; })");
  const timekeeper = await kernel.object(tkCore, kernel.symbols.address('tk_core'), 'tk_core').member('timekeeper');
  return Number(await (await timekeeper.member('ktime_sec')).readInt());
}

async function taint(kernel: Kernel): Promise<{ mask: bigint; letters: string }> {
  const mask = await kernel.reader.u64(kernel.symbols.address('tainted_mask'));
  let letters = '';
  for (let bit = 0; bit < 64; bit++) {
    if (!((mask >> BigInt(bit)) & 1n)) continue;
    const flag = kernel.object('struct taint_flag', kernel.symbols.address('taint_flags') + BigInt(bit * kernel.btf.sizeof(kernel.model.typeId('struct taint_flag'))), `taint_flags[${bit}]`);
    letters += String.fromCharCode(Number(await (await flag.member('c_true')).readInt()));
  }
  return { mask, letters };
}

export async function kernelSummary(model: KernelModel): Promise<KernelSummary> {
  const kernel = new Kernel(model);
  const d = model.description;
  const [uptimeSeconds, tainted, panic, cpus, managedBytes] = await Promise.all([
    attempt(() => monotonicSeconds(kernel)),
    attempt(() => taint(kernel)),
    attempt(async () => {
      const cpu = Number(BigInt.asIntN(32, await (await kernel.variable('panic_cpu').member('counter')).readInt()));
      return { cpu: cpu < 0 ? undefined : cpu };
    }),
    kernel.cpuCount().catch(() => undefined),
    // (_totalram_pages since 5.0; totalram_pages() reads it.)
    attempt(async () => (await (await kernel.object('atomic_long_t', kernel.symbols.address('_totalram_pages'), '_totalram_pages').member('counter')).readInt()) * BigInt(model.pageSize)),
  ]);
  return {
    release: d?.release ?? '',
    kaslrOffset: d?.kaslrOffset ?? 0n,
    uptimeSeconds,
    taint: tainted,
    panic,
    cpus: cpus ?? 0,
    ramBytes: (d?.memoryMap ?? []).reduce((sum, r) => sum + r.length, 0n),
    managedBytes,
  };
}
