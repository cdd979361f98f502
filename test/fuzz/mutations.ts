// The mutants: each a family, the object and address it corrupts, and the bytes it writes.
// Mutant i of a run is drawn from its own generator seeded by (seed, i), so `GRASS_FUZZ_SEED`
// and the index reproduce any one mutant alone.
import type { PhysWrite } from './image';
import type { FuzzObject, Located, Translator } from './locate';

/**
 * runtime: written under a running agent (what the plugins, translation and the kernel model
 * read per request); discovery: written before a fresh agent starts (what discovery reads);
 * kdump: a kdump-compressed file of the image, damaged (kdump-mutations.ts), for a fresh agent.
 */
export type MutantMode = 'runtime' | 'discovery' | 'kdump';

export interface Mutant {
  index: number;
  family: string;
  mode: MutantMode;
  /** What was corrupted, for the report: object, field and address. */
  what: string;
  writes: PhysWrite[];
  /** The task whose stack the battery unwinds, when a task was hit. */
  pid?: number;
}

/** mulberry32: small, fast, and the same sequence on every machine. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  u64(): bigint {
    return (BigInt(this.int(2 ** 32)) << 32n) | BigInt(this.int(2 ** 32));
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

/** The generator of mutant i of the run with this seed. */
export function mutantRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0);
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

function u64le(v: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

interface Context {
  located: Located;
  translator: Translator;
  physEnd: bigint;
  pageOffsetBase: bigint;
}

/** Writes bytes at a virtual address, page by page through the pristine page tables. */
function atVirtual(ctx: Context, va: bigint, bytes: Uint8Array): PhysWrite[] {
  const writes: PhysWrite[] = [];
  for (let done = 0; done < bytes.length; ) {
    const addr = va + BigInt(done);
    const inPage = Math.min(bytes.length - done, 4096 - Number(addr & 4095n));
    writes.push({ phys: ctx.translator.phys(addr), bytes: bytes.subarray(done, done + inPage) });
    done += inPage;
  }
  return writes;
}

/** Flips random bits of `count` random bytes in [va, va+size). */
function flips(ctx: Context, rng: Rng, va: bigint, size: number, count: number): { writes: PhysWrite[]; at: bigint } {
  const writes: PhysWrite[] = [];
  let first = va;
  for (let i = 0; i < count; i++) {
    const at = va + BigInt(rng.int(Math.max(1, size)));
    if (i === 0) first = at;
    const old = ctx.translator.image.readPhys(ctx.translator.phys(at), 1)[0];
    writes.push(...atVirtual(ctx, at, Uint8Array.of(old ^ (1 + rng.int(255)))));
  }
  return { writes, at: first };
}

/** A pointer value a corrupt kernel might hold instead of a good one. */
function wildPointer(ctx: Context, rng: Rng, own: bigint, other: bigint): { value: bigint; kind: string } {
  switch (rng.int(8)) {
    case 0: return { value: 0n, kind: 'NULL' };
    case 1: return { value: 0x4141414141414141n, kind: 'non-canonical' };
    case 2: return { value: 0xffff800000000000n | (rng.u64() & 0x3fffffffff000n), kind: 'unmapped kernel address' };
    case 3: return { value: ctx.pageOffsetBase + ctx.physEnd + BigInt(rng.int(1 << 20)) * 4096n, kind: 'direct map past the end of RAM' };
    case 4: return { value: BigInt(0x400000 + rng.int(1 << 20) * 8), kind: 'user address' };
    case 5: return { value: own, kind: 'itself' };
    case 6: return { value: other + BigInt(rng.int(512)) * 8n + 4n, kind: 'misaligned into another object' };
    default: return { value: rng.u64(), kind: 'random' };
  }
}

type Generator = (ctx: Context, rng: Rng) => Omit<Mutant, 'index' | 'family' | 'mode'>;

function fieldOf(rng: Rng, o: FuzzObject): { name: string; offset: number; size: number } {
  return o.fields?.length ? rng.pick(o.fields) : { name: 'bytes', offset: 0, size: o.size };
}

/** Flips in a named field of a random object of the list, or anywhere in it. */
function objectFlip(list: (ctx: Context) => FuzzObject[]): Generator {
  return (ctx, rng) => {
    const o = rng.pick(list(ctx));
    const f = rng.int(2) === 0 ? fieldOf(rng, o) : { name: 'bytes', offset: 0, size: o.size };
    const { writes, at } = flips(ctx, rng, o.va + BigInt(f.offset), f.size, 1 + rng.int(3));
    return { what: `${o.name}: ${f.name} flipped at ${hex(at)}`, writes, pid: o.pid };
  };
}

/** A pointer field of a random object set to a wild value. */
function objectPointer(list: (ctx: Context) => FuzzObject[], pointerFields: string[]): Generator {
  return (ctx, rng) => {
    const objects = list(ctx);
    const o = rng.pick(objects);
    const candidates = (o.fields ?? []).filter((f) => pointerFields.includes(f.name));
    const f = candidates.length ? rng.pick(candidates) : { name: 'first word', offset: 0, size: 8 };
    // A list_head or hlist: next or prev.
    const slot = f.size >= 16 && rng.int(2) === 1 ? 8 : 0;
    const at = o.va + BigInt(f.offset + slot);
    const other = rng.pick(objects).va;
    const wild = wildPointer(ctx, rng, at, other);
    return { what: `${o.name}: ${f.name}${slot ? '.prev' : ''} at ${hex(at)} set to ${hex(wild.value)} (${wild.kind})`, writes: atVirtual(ctx, at, u64le(wild.value)), pid: o.pid };
  };
}

/** A task's `tasks` (or thread list) made cyclic without its head, or a self-loop. */
const listCycle: Generator = (ctx, rng) => {
  const tasks = ctx.located.tasks.filter((t) => t.pid !== undefined && t.pid > 0);
  const member = rng.pick(['tasks', 'thread_node', 'sibling', 'children'].filter((m) => tasks[0].fields?.some((f) => f.name === m)));
  const field = tasks[0].fields!.find((f) => f.name === member)!;
  const from = tasks[rng.int(tasks.length)];
  const to = rng.int(3) === 0 ? from : tasks[rng.int(tasks.length)];
  const at = from.va + BigInt(field.offset);
  const target = to.va + BigInt(field.offset);
  return { what: `${from.name}: ${member}.next at ${hex(at)} points back to ${to === from ? 'itself' : to.name} (${hex(target)}): a cycle without the head`, writes: atVirtual(ctx, at, u64le(target)), pid: from.pid };
};

const PAGE_TABLE_ACTIONS = ['zero table page', 'zero entry', 'entry past the end of RAM', 'entry loops to its own table', 'huge bit set', 'present bit cleared'] as const;

const pageTable: Generator = (ctx, rng) => {
  const path = rng.pick(ctx.located.tablePaths);
  const step = rng.pick(path.steps);
  const action = rng.pick(PAGE_TABLE_ACTIONS);
  const where = `level-${step.level} table at phys ${hex(step.tablePhys)} (entry ${hex(step.entryPhys)}) on the path to ${path.name} ${hex(path.va)}`;
  let writes: PhysWrite[];
  switch (action) {
    case 'zero table page': writes = [{ phys: step.tablePhys, bytes: new Uint8Array(4096) }]; break;
    case 'zero entry': writes = [{ phys: step.entryPhys, bytes: new Uint8Array(8) }]; break;
    case 'entry past the end of RAM': writes = [{ phys: step.entryPhys, bytes: u64le(((ctx.physEnd + BigInt(rng.int(1 << 16)) * 4096n) & 0x000ffffffffff000n) | 0x63n) }]; break;
    case 'entry loops to its own table': writes = [{ phys: step.entryPhys, bytes: u64le(step.tablePhys | 0x63n) }]; break;
    case 'huge bit set': writes = [{ phys: step.entryPhys, bytes: u64le(step.entry | 0x80n) }]; break;
    default: writes = [{ phys: step.entryPhys, bytes: u64le(step.entry & ~1n) }]; break;
  }
  return { what: `page table: ${action}: ${where}`, writes };
};

/** N random bit flips in the kernel's .data, or anywhere in RAM. */
function randomFlips(inKernelData: boolean): Generator {
  return (ctx, rng) => {
    const count = 1 + rng.int(32);
    const writes: PhysWrite[] = [];
    const places: bigint[] = [];
    for (let i = 0; i < count; i++) {
      let phys: bigint;
      if (inKernelData) phys = ctx.translator.phys(ctx.located.kernelData.va + BigInt(rng.int(ctx.located.kernelData.size)));
      else phys = BigInt(rng.int(Number(ctx.physEnd)));
      const old = ctx.translator.image.offsetOf(phys) === undefined ? 0 : ctx.translator.image.readPhys(phys, 1)[0];
      writes.push({ phys, bytes: Uint8Array.of(old ^ (1 << rng.int(8))) });
      places.push(phys);
    }
    return { what: `${count} random bit flips in ${inKernelData ? 'the kernel .data' : 'RAM'} (first at phys ${hex(places[0])})`, writes };
  };
}

/** The same edit at every copy of the VMCOREINFO text. */
function vmcoreinfoEdit(ctx: Context, offset: number, bytes: Uint8Array): PhysWrite[] {
  return ctx.located.vmcoreinfo.map((c) => ({ phys: c.phys + BigInt(offset), bytes }));
}

const VMCOREINFO_KEYS = ['OSRELEASE', 'PAGESIZE', 'KERNELOFFSET', 'NUMBER(phys_base)', 'SYMBOL(init_top_pgt)', 'SYMBOL(swapper_pg_dir)', 'NUMBER(pgtable_l5_enabled)',
  'SYMBOL(kallsyms_names)', 'SYMBOL(kallsyms_num_syms)', 'SYMBOL(kallsyms_token_table)', 'SYMBOL(kallsyms_token_index)', 'SYMBOL(kallsyms_offsets)',
  'SYMBOL(kallsyms_relative_base)', 'SYMBOL(prb)', 'SYMBOL(init_uts_ns)', 'SYMBOL(_stext)', 'SYMBOL(page_offset_base)', 'OFFSET(uts_namespace.name)'];

const vmcoreinfoValue: Generator = (ctx, rng) => {
  const text = ctx.located.vmcoreinfo[0].text;
  const keys = VMCOREINFO_KEYS.filter((k) => text.includes(`\n${k}=`) || text.startsWith(`${k}=`));
  const key = rng.pick(keys);
  const start = text.startsWith(`${key}=`) ? key.length + 1 : text.indexOf(`\n${key}=`) + key.length + 2;
  const end = text.indexOf('\n', start);
  const length = end - start;
  const choices = [
    () => '0'.repeat(length),
    () => 'f'.repeat(length),
    () => Array.from({ length }, () => rng.pick([...'0123456789abcdef'])).join(''),
    () => Array.from({ length }, () => rng.pick([...'xyz!@# -'])).join(''),
    () => '\0' + ' '.repeat(Math.max(0, length - 1)),
  ];
  const value = rng.pick(choices)();
  return { what: `VMCOREINFO ${key}= value (${length} bytes at phys ${ctx.located.vmcoreinfo.map((c) => hex(c.phys + BigInt(start))).join(', ')}) set to ${JSON.stringify(value)}`, writes: vmcoreinfoEdit(ctx, start, Buffer.from(value, 'latin1')) };
};

const vmcoreinfoBytes: Generator = (ctx, rng) => {
  const text = ctx.located.vmcoreinfo[0].text;
  if (rng.int(4) === 0) {
    const at = rng.int(text.length);
    return { what: `VMCOREINFO truncated by a NUL at byte ${at}`, writes: vmcoreinfoEdit(ctx, at, Uint8Array.of(0)) };
  }
  const count = 1 + rng.int(8);
  const writes: PhysWrite[] = [];
  for (let i = 0; i < count; i++) {
    const at = rng.int(text.length);
    writes.push(...vmcoreinfoEdit(ctx, at, Uint8Array.of(text.charCodeAt(at) ^ (1 + rng.int(255)))));
  }
  return { what: `VMCOREINFO: ${count} bytes flipped`, writes };
};

/** VMCOREINFO gone (discovery falls back to the banner), and the banner damaged too, maybe. */
const vmcoreinfoGone: Generator = (ctx, rng) => {
  const writes = vmcoreinfoEdit(ctx, 0, new Uint8Array(ctx.located.vmcoreinfo[0].text.length));
  let what = `VMCOREINFO wiped (${ctx.located.vmcoreinfo.length} copies)`;
  if (rng.int(2) === 0) {
    const b = ctx.located.banner;
    const f = flips(ctx, rng, b.va, b.size, 1 + rng.int(4));
    writes.push(...f.writes);
    what += ` and ${b.name} flipped at ${hex(f.at)}`;
  }
  return { what, writes };
};

const BTF_HEADER = ['magic', 'version', 'flags', 'hdr_len', 'type_off', 'type_len', 'str_off', 'str_len'];
const BTF_HEADER_FIELDS: [number, number][] = [[0, 2], [2, 1], [3, 1], [4, 4], [8, 4], [12, 4], [16, 4], [20, 4]];

const btfDamage: Generator = (ctx, rng) => {
  const b = ctx.located.btf;
  if (rng.int(3) === 0) {
    const k = rng.int(BTF_HEADER.length);
    const [offset, size] = BTF_HEADER_FIELDS[k];
    const bytes = rng.int(2) === 0 ? rng.bytes(size) : new Uint8Array(size).fill(0xff);
    return { what: `BTF header ${BTF_HEADER[k]} at ${hex(b.va + BigInt(offset))} set to 0x${Buffer.from(bytes).reverse().toString('hex')}`, writes: atVirtual(ctx, b.va + BigInt(offset), bytes) };
  }
  // Type records sit before the strings: aim at either.
  const f = flips(ctx, rng, b.va + 24n, b.size - 24, 1 + rng.int(16));
  return { what: `${b.name}: bytes flipped from ${hex(f.at)}`, writes: f.writes };
};

const kallsymsDamage: Generator = (ctx, rng) => {
  const table = rng.pick(ctx.located.kallsyms);
  if (table.name === 'kallsyms_num_syms' || table.name === 'kallsyms_relative_base' || rng.int(4) === 0) {
    const value = rng.pick([0n, 0xffffffffn, BigInt(rng.int(1 << 30)), rng.u64()]);
    const size = table.name === 'kallsyms_num_syms' ? 4 : 8;
    const bytes = u64le(value).subarray(0, size);
    return { what: `${table.name} at ${hex(table.va)} set to ${hex(BigInt.asUintN(size * 8, value))}`, writes: atVirtual(ctx, table.va, bytes) };
  }
  const f = flips(ctx, rng, table.va, table.size, 1 + rng.int(16));
  return { what: `${table.name}: bytes flipped from ${hex(f.at)}`, writes: f.writes };
};

/** printk descriptors, infos or text, or the ring's own fields. */
const printkDamage: Generator = (ctx, rng) => {
  const rings = ctx.located.printk;
  if (rng.int(3) === 0) return objectPointer(() => rings.slice(0, 1), ['desc_ring', 'text_data_ring'])(ctx, rng);
  const o = rng.pick(rings);
  const f = flips(ctx, rng, o.va, o.size, 1 + rng.int(16));
  return { what: `${o.name}: bytes flipped from ${hex(f.at)}`, writes: f.writes };
};

const FAMILIES: { name: string; mode: MutantMode; weight: number; make: Generator }[] = [
  { name: 'task-field-flip', mode: 'runtime', weight: 14, make: objectFlip((c) => c.located.tasks) },
  { name: 'task-pointer', mode: 'runtime', weight: 12, make: objectPointer((c) => c.located.tasks, ['tasks', 'real_parent', 'parent', 'group_leader', 'signal', 'mm', 'active_mm', 'stack', 'thread_node', 'thread_group', 'pid_links', 'children', 'sibling']) },
  { name: 'tasks-cycle', mode: 'runtime', weight: 8, make: listCycle },
  { name: 'page-table', mode: 'runtime', weight: 10, make: pageTable },
  { name: 'printk', mode: 'runtime', weight: 8, make: printkDamage },
  { name: 'module', mode: 'runtime', weight: 6, make: (c, r) => (r.int(2) ? objectFlip((x) => x.located.modules)(c, r) : objectPointer((x) => x.located.modules, ['list', 'source_list', 'target_list', 'kallsyms', 'btf_data'])(c, r)) },
  { name: 'pid-idr', mode: 'runtime', weight: 6, make: (c, r) => (r.int(2) ? objectFlip((x) => x.located.pidIdr)(c, r) : objectPointer((x) => x.located.pidIdr, ['slots', 'parent'])(c, r)) },
  { name: 'runqueue-stats', mode: 'runtime', weight: 6, make: (c, r) => (r.int(2) ? objectFlip((x) => x.located.runqueues)(c, r) : objectPointer((x) => x.located.runqueues, ['curr', 'idle', 'stop'])(c, r)) },
  { name: 'kernel-data-flips', mode: 'runtime', weight: 5, make: randomFlips(true) },
  { name: 'ram-flips', mode: 'runtime', weight: 3, make: randomFlips(false) },
  { name: 'vmcoreinfo-value', mode: 'discovery', weight: 5, make: vmcoreinfoValue },
  { name: 'vmcoreinfo-bytes', mode: 'discovery', weight: 3, make: vmcoreinfoBytes },
  { name: 'vmcoreinfo-gone', mode: 'discovery', weight: 1, make: vmcoreinfoGone },
  { name: 'btf', mode: 'discovery', weight: 4, make: btfDamage },
  { name: 'kallsyms', mode: 'discovery', weight: 4, make: kallsymsDamage },
  { name: 'page-table-at-start', mode: 'discovery', weight: 2, make: pageTable },
  { name: 'tasks-at-start', mode: 'discovery', weight: 1, make: listCycle },
];

export const FAMILY_NAMES = FAMILIES.map((f) => f.name);

export class MutantFactory {
  private readonly ctx: Context;
  constructor(
    located: Located,
    translator: Translator,
    physEnd: bigint,
    pageOffsetBase: bigint,
    readonly seed: number,
  ) {
    this.ctx = { located, translator, physEnd, pageOffsetBase };
  }

  /** Mutant `index` of this seed; `mode` restricts the families drawn from. */
  make(index: number, mode: MutantMode): Mutant {
    const rng = mutantRng(this.seed, index);
    const families = FAMILIES.filter((f) => f.mode === mode);
    let r = rng.int(families.reduce((s, f) => s + f.weight, 0));
    const family = families.find((f) => (r -= f.weight) < 0)!;
    return { index, family: family.name, mode, ...family.make(this.ctx, rng) };
  }
}
