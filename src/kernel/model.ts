// The kernel model: a target's BTF and symbols plus its memory. Long-lived; each request
// (a decode, a process list) works in a Kernel view of it with its own read cache.

import { Btf } from './btf/btf';
import { lookupTypeName } from './btf/describe';
import { MemoryReader } from './objects/reader';
import { SymbolTable } from './symbols/symbols';
import type { TargetDescription, TargetMemory } from '../types/target';

export class KernelModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelModelError';
  }
}

/**
 * Types of well-known kernel globals. vmlinux BTF describes only per-CPU variables (pahole
 * encodes no other VARs by default), so these name the type of a few globals by C type name;
 * the layout still comes from the target's BTF. BTF VARs take precedence when present.
 */
const KNOWN_GLOBAL_TYPES: Record<string, string> = {
  init_task: 'struct task_struct',
  init_mm: 'struct mm_struct',
  init_pid_ns: 'struct pid_namespace',
  init_nsproxy: 'struct nsproxy',
  init_uts_ns: 'struct uts_namespace',
  init_cred: 'struct cred',
  init_fs: 'struct fs_struct',
  init_files: 'struct files_struct',
  init_net: 'struct net',
  init_user_ns: 'struct user_namespace',
  prb: 'struct printk_ringbuffer *',
  nr_cpu_ids: 'unsigned int',
  nr_threads: 'int',
  total_forks: 'long unsigned int',
  jiffies_64: 'u64',
  jiffies: 'long unsigned int',
  max_pfn: 'long unsigned int',
  totalram_pages: 'atomic_long_t',
  panic_cpu: 'atomic_t',
  oops_in_progress: 'int',
  system_state: 'enum system_states',
  vmcoreinfo_data: 'unsigned char *',
  page_offset_base: 'long unsigned int',
  vmemmap_base: 'long unsigned int',
  phys_base: 'long unsigned int',
};

export interface KernelModelOptions {
  /** Limits of every walk (list, tree) in one request. */
  maxListLength?: number;
  /** Cache line of a request's reads. */
  lineSize?: number;
}

export class KernelModel {
  readonly maxListLength: number;
  readonly lineSize: number;
  private readonly typeSpellings = new Map<string, number>();

  constructor(
    readonly btf: Btf,
    readonly symbols: SymbolTable,
    readonly memory: TargetMemory,
    readonly description?: TargetDescription,
    options: KernelModelOptions = {},
  ) {
    // PID_MAX_LIMIT (4M) bounds how many tasks can exist; lists longer than that are corrupt.
    this.maxListLength = options.maxListLength ?? 1 << 22;
    this.lineSize = options.lineSize ?? 64;
  }

  static fromDescription(description: TargetDescription, memory: TargetMemory, options: KernelModelOptions = {}): KernelModel {
    // Errors in a corrupt BTF name where the kernel keeps it, when its symbols say.
    const section = description.symbols.find((s) => s.name === '__start_BTF');
    const where = section ? `, .BTF at 0x${section.address.toString(16)}` : '';
    const btf = new Btf(description.btf, { source: `target BTF (${description.release || 'unknown release'}${where})` });
    return new KernelModel(btf, new SymbolTable(description.symbols), memory, description, options);
  }

  /** The target's page size: VMCOREINFO's PAGESIZE, else x86-64's 4096. */
  get pageSize(): number {
    const m = /^PAGESIZE=(\d+)$/m.exec(this.description?.vmcoreinfo ?? '');
    return m ? Number(m[1]) : 4096;
  }

  /** A fresh read cache for one request. */
  reader(): MemoryReader {
    return new MemoryReader(this.memory, this.lineSize);
  }

  /** Type id of a C type name: `struct task_struct`, `unsigned int`, `struct rq *`, `char [16]`. */
  typeId(spelled: string): number {
    const key = spelled.replace(/\s+/g, ' ').trim();
    const cached = this.typeSpellings.get(key);
    if (cached !== undefined) return cached;
    const id = this.parseTypeName(key);
    this.typeSpellings.set(key, id);
    return id;
  }

  /** Pointer type to `target` (the BTF's own, or one derived on demand). */
  pointerTo(target: number): number {
    return this.btf.pointerTo(target);
  }

  /** Type of a global: its BTF VAR, else the well-known table, else undefined. */
  variableType(name: string): number | undefined {
    const varId = this.btf.byName(name, 'var')[0];
    if (varId !== undefined) {
      const v = this.btf.type(varId);
      if (v.kind === 'var') return v.type;
    }
    const known = KNOWN_GLOBAL_TYPES[name];
    if (known) {
      try {
        return this.typeId(known);
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  private parseTypeName(key: string): number {
    const m = /^(.*?)\s*((?:\*\s*)*)((?:\[\d*\]\s*)*)$/.exec(key)!;
    const baseName = m[1].trim();
    const stars = (m[2].match(/\*/g) ?? []).length;
    if (m[3]) throw new KernelModelError(`type '${key}': array types cannot be named in a cast here; cast to a pointer instead`);
    let id: number;
    if (baseName === 'void') {
      id = 0;
    } else {
      const ids = lookupTypeName(this.btf, normaliseIntName(baseName));
      if (ids.length === 0) throw new KernelModelError(`no type '${baseName}' in the target's BTF`);
      id = ids[0];
    }
    for (let i = 0; i < stars; i++) id = this.pointerTo(id);
    return id;
  }
}

/** C allows `unsigned long`, BTF spells it `long unsigned int` (as gcc's DWARF does). */
function normaliseIntName(name: string): string {
  const aliases: Record<string, string> = {
    'unsigned long': 'long unsigned int',
    'unsigned long int': 'long unsigned int',
    long: 'long int',
    'signed long': 'long int',
    'unsigned long long': 'long long unsigned int',
    'long long': 'long long int',
    unsigned: 'unsigned int',
    'unsigned short': 'short unsigned int',
    short: 'short int',
    'signed char': 'signed char',
  };
  return aliases[name] ?? name;
}
