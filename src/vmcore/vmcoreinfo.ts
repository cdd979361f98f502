// The kernel's VMCOREINFO text (KEY=VALUE lines, as crash_save_vmcoreinfo writes them), read
// from the target's memory by the agent. Numbers are looked up by their exact key, e.g.
// 'NUMBER(PG_lru)', 'OFFSET(page.flags)', 'SIZE(page)', 'LENGTH(zone.free_area)'.
export class VmcoreInfo {
  private readonly entries = new Map<string, string>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) this.entries.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }

  get size(): number {
    return this.entries.size;
  }

  raw(key: string): string | undefined {
    return this.entries.get(key);
  }

  /** NUMBER() values are signed decimal; SYMBOL() hex; OFFSET/SIZE/LENGTH decimal. */
  number(key: string): bigint | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    const text = key.startsWith('SYMBOL(') || key === 'KERNELOFFSET' ? `0x${v}` : v;
    if (!/^(-?\d+|0x[0-9a-fA-F]+)$/.test(text)) throw new Error(`VMCOREINFO ${key}=${v} is not a number`);
    return BigInt(text);
  }
}
