// VMCOREINFO: the "KEY=value" text the kernel keeps for crash tools (kernel/crash_core.c),
// read from the target's memory by the agent. Lines look like OSRELEASE=6.1.0-56-amd64,
// SYMBOL(prb)=ffffffff82a5c3d0, SIZE(printk_info)=88, OFFSET(printk_info.seq)=0,
// LENGTH(printk_info_device)=48, NUMBER(PG_lru)=4; SYMBOL values are hex, SIZE, OFFSET and
// LENGTH unsigned decimal, NUMBER signed decimal, as the kernel prints them. The one parser:
// the kernel log's layout and the vmcore page filter both read it.

export interface Vmcoreinfo {
  /** Plain keys (OSRELEASE, PAGESIZE, KERNELOFFSET, ...) with their raw text. */
  values: Map<string, string>;
  /** SYMBOL(name): runtime (relocated) virtual addresses. */
  symbols: Map<string, bigint>;
  /** SIZE(struct or type name). */
  sizes: Map<string, number>;
  /** OFFSET(struct.member). */
  offsets: Map<string, number>;
  /** LENGTH(name): array lengths. */
  lengths: Map<string, number>;
  /** NUMBER(name): constants (page flag bits, page_type values, ...). */
  numbers: Map<string, bigint>;
  /** Keyed lines whose value did not parse, by key (`NUMBER(PG_lru)`), with the raw value. */
  malformed: Map<string, string>;
}

const keyed = /^(SYMBOL|SIZE|OFFSET|LENGTH|NUMBER)\(([^)]+)\)=(.*)$/;
const plain = /^([A-Z][A-Z0-9_-]*)=(.*)$/;

export function parseVmcoreinfo(text: string): Vmcoreinfo {
  const info: Vmcoreinfo = {
    values: new Map(),
    symbols: new Map(),
    sizes: new Map(),
    offsets: new Map(),
    lengths: new Map(),
    numbers: new Map(),
    malformed: new Map(),
  };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\0.*$/s, '').trim();
    if (!line) continue;
    const m = keyed.exec(line);
    if (!m) {
      const p = plain.exec(line);
      if (p) info.values.set(p[1], p[2]);
      continue;
    }
    const [, kind, name, value] = m;
    try {
      switch (kind) {
        case 'SYMBOL':
          // crash_core prints symbol addresses with %lx (hex, no prefix).
          info.symbols.set(name, BigInt('0x' + value));
          break;
        case 'SIZE':
          info.sizes.set(name, parseDecimal(value));
          break;
        case 'OFFSET':
          info.offsets.set(name, parseDecimal(value));
          break;
        case 'LENGTH':
          info.lengths.set(name, parseDecimal(value));
          break;
        case 'NUMBER':
          // %ld: signed decimal (PAGE_BUDDY_MAPCOUNT_VALUE is negative on older kernels).
          if (!/^-?\d+$/.test(value)) throw new Error(`not a decimal: ${value}`);
          info.numbers.set(name, BigInt(value));
          break;
      }
    } catch {
      // Left out of the maps; a consumer that needs it can say what the text held.
      info.malformed.set(`${kind}(${name})`, value);
    }
  }
  return info;
}

// SIZE/OFFSET/LENGTH are printed with %lu / %zu.
function parseDecimal(value: string): number {
  if (!/^\d+$/.test(value)) throw new Error(`not a decimal: ${value}`);
  return Number(value);
}
