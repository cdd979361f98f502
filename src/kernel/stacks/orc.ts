// The kernel's ORC unwind tables, read from its memory: vmlinux's (__start_orc_unwind_ip ..
// __stop_orc_unwind_ip, __start_orc_unwind) and each module's (mod->arch.orc_unwind_ip,
// orc_unwind, num_orcs). The entry layout (bitfields) comes from BTF's struct orc_entry; the
// register and type codes are the ORC format's own (objtool's orc_types.h), in the two
// numberings it has had: before 6.4 (`end` bit; CALL=0, REGS=1, REGS_PARTIAL=2) and after
// (`signal` bit; UNDEFINED=0, END_OF_STACK=1, CALL=2, REGS=3, REGS_PARTIAL=4).

import type { Btf } from '../btf/btf';
import type { Kernel } from '../objects/object';
import { hex, ObjectError } from '../objects/object';
import type { LoadedModule } from '../modules/modules';

export const ORC_REG = { UNDEFINED: 0, PREV_SP: 1, DX: 2, DI: 3, BP: 4, SP: 5, R10: 6, R13: 7, BP_INDIRECT: 8, SP_INDIRECT: 9 } as const;

export type OrcType = 'call' | 'regs' | 'regs_partial' | 'end' | 'undefined';

export interface OrcEntry {
  spOffset: number;
  bpOffset: number;
  spReg: number;
  bpReg: number;
  type: OrcType;
  /** The frame was interrupted (look up ip itself, not ip - 1, in the caller). */
  signal: boolean;
}

/** Tables bigger than this are taken as corrupt (vmlinux has about half a million entries). */
const MAX_ORC_ENTRIES = 1 << 23;

interface BitField {
  bit: number;
  size: number;
  signed: boolean;
}

/** Decodes orc_entry records through the BTF layout. */
export class OrcLayout {
  readonly size: number;
  readonly newNumbering: boolean;
  private readonly fields: Record<string, BitField | undefined> = {};

  constructor(btf: Btf) {
    const id = btf.findByName('orc_entry', 'struct');
    if (id === undefined) throw new ObjectError("the target's BTF has no struct orc_entry (kernel built without the ORC unwinder?)");
    this.size = btf.sizeof(id);
    for (const name of ['sp_offset', 'bp_offset', 'sp_reg', 'bp_reg', 'type', 'end', 'signal']) {
      const m = btf.findMember(id, name);
      if (!m) continue;
      const t = btf.resolve(m.member.type);
      const size = m.member.bitfieldSize || btf.sizeof(m.member.type) * 8;
      this.fields[name] = { bit: m.bitsOffset, size, signed: t.kind === 'int' && t.signed };
    }
    for (const need of ['sp_offset', 'bp_offset', 'sp_reg', 'bp_reg', 'type']) {
      if (!this.fields[need]) throw new ObjectError(`struct orc_entry has no ${need} in the target's BTF`);
    }
    this.newNumbering = this.fields.end === undefined;
  }

  private get(bytes: Uint8Array, at: number, name: string): number {
    const f = this.fields[name];
    if (!f) return 0;
    let v = 0n;
    for (let i = this.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
    const raw = (v >> BigInt(f.bit)) & ((1n << BigInt(f.size)) - 1n);
    return Number(f.signed ? BigInt.asIntN(f.size, raw) : raw);
  }

  decode(bytes: Uint8Array, at: number): OrcEntry {
    const code = this.get(bytes, at, 'type');
    let type: OrcType;
    if (this.newNumbering) type = (['undefined', 'end', 'call', 'regs', 'regs_partial'] as const)[code] ?? 'undefined';
    else type = this.get(bytes, at, 'end') ? 'end' : ((['call', 'regs', 'regs_partial'] as const)[code] ?? 'undefined');
    return {
      spOffset: this.get(bytes, at, 'sp_offset'),
      bpOffset: this.get(bytes, at, 'bp_offset'),
      spReg: this.get(bytes, at, 'sp_reg'),
      bpReg: this.get(bytes, at, 'bp_reg'),
      type,
      signal: this.newNumbering ? this.get(bytes, at, 'signal') === 1 : type === 'regs' || type === 'regs_partial',
    };
  }
}

/** One sorted table: ips relative to `ipBase` (Numbers: differences fit easily), entries raw. */
class OrcTable {
  constructor(
    readonly owner: string,
    readonly start: bigint,
    readonly end: bigint,
    private readonly ipBase: bigint,
    private readonly ips: Float64Array,
    private readonly entries: Uint8Array,
    private readonly layout: OrcLayout,
  ) {}

  /** The entry covering ip: the last one whose ip is at or below it (the kernel's __orc_find). */
  find(ip: bigint): OrcEntry | undefined {
    const target = Number(ip - this.ipBase);
    let lo = 0;
    let hi = this.ips.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.ips[mid] <= target) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.layout.decode(this.entries, found * this.layout.size);
  }
}

async function readTable(kernel: Kernel, owner: string, ipTable: bigint, orcTable: bigint, count: number, layout: OrcLayout, start: bigint, end: bigint): Promise<OrcTable> {
  if (count <= 0 || count > MAX_ORC_ENTRIES) throw new ObjectError(`ORC table of ${owner}: ${count} entries is implausible`);
  let ipBytes: Uint8Array;
  let entries: Uint8Array;
  try {
    [ipBytes, entries] = await Promise.all([kernel.reader.read(ipTable, count * 4), kernel.reader.read(orcTable, count * layout.size)]);
  } catch (err) {
    throw new ObjectError(`ORC table of ${owner} (ips at ${hex(ipTable)}, entries at ${hex(orcTable)}, ${count} entries) unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const view = new DataView(ipBytes.buffer, ipBytes.byteOffset, ipBytes.byteLength);
  const ips = new Float64Array(count);
  // Each ip is stored relative to its own slot: ip = &table[i] + table[i].
  for (let i = 0; i < count; i++) ips[i] = i * 4 + view.getInt32(i * 4, true);
  return new OrcTable(owner, start, end, ipTable, ips, Uint8Array.from(entries), layout);
}

/** ORC lookup for vmlinux and the loaded modules. */
export class OrcUnwindTables {
  private constructor(
    private readonly tables: OrcTable[],
    readonly newNumbering: boolean,
  ) {}

  static async read(kernel: Kernel, modules: readonly LoadedModule[]): Promise<OrcUnwindTables> {
    const layout = new OrcLayout(kernel.btf);
    const sym = (name: string): bigint => kernel.symbols.address(name);
    const ipStart = sym('__start_orc_unwind_ip');
    const count = Number((sym('__stop_orc_unwind_ip') - ipStart) / 4n);
    const tables = [await readTable(kernel, 'vmlinux', ipStart, sym('__start_orc_unwind'), count, layout, sym('_stext'), sym('_etext'))];
    const modType = kernel.model.typeId('struct module');
    for (const m of modules) {
      const mod = kernel.object(modType, m.structAddress, `module ${m.name}`);
      const arch = await mod.member('arch');
      const n = Number(await (await arch.member('num_orcs')).readInt());
      if (n === 0) continue;
      const ips = await (await arch.member('orc_unwind_ip')).readInt();
      const orcs = await (await arch.member('orc_unwind')).readInt();
      tables.push(await readTable(kernel, m.name, ips, orcs, n, layout, m.address, m.address + BigInt(m.textSize)));
    }
    return new OrcUnwindTables(tables, layout.newNumbering);
  }

  /** The ORC entry for an address, or undefined when it is in no table's text. */
  find(ip: bigint): OrcEntry | undefined {
    const table = this.tables.find((t) => ip >= t.start && ip < t.end);
    return table?.find(ip);
  }
}
