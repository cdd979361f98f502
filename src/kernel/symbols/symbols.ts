// Kernel symbols from the target description: name → address, and address → `symbol+offset`.

import type { KernelSymbol } from '../../types/target';

export class SymbolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SymbolError';
  }
}

export interface SymbolLocation {
  symbol: KernelSymbol;
  offset: bigint;
}

/** Farther than this past a symbol, an address is not described as `symbol+offset`. */
const MAX_DESCRIBED_OFFSET = 1n << 20n;

export class SymbolTable {
  private readonly byName = new Map<string, KernelSymbol>();
  /** Symbols sorted by address, for nearest-below lookups; sorted on first use. */
  private sortedCache: KernelSymbol[] | undefined;

  constructor(private readonly symbols: readonly KernelSymbol[]) {
    for (const s of symbols) {
      // The first definition wins, as in /proc/kallsyms order (a global before local duplicates).
      if (!this.byName.has(s.name)) this.byName.set(s.name, s);
    }
  }

  private get sorted(): KernelSymbol[] {
    return (this.sortedCache ??= [...this.symbols].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)));
  }

  get size(): number {
    return this.symbols.length;
  }

  get(name: string): KernelSymbol | undefined {
    return this.byName.get(name);
  }

  /** Address of a symbol; throws naming it when the target has no such symbol. */
  address(name: string): bigint {
    const s = this.byName.get(name);
    if (!s) throw new SymbolError(`no symbol '${name}' in the target's symbol table (${this.symbols.length} symbols)`);
    return s.address;
  }

  /**
   * The symbol an address falls in: the nearest symbol at or below it, if the address is before
   * the next symbol and within 1 MiB. Per-CPU symbols (small section offsets) are never matched
   * for kernel addresses because they sort far below.
   */
  lookup(address: bigint): SymbolLocation | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid].address <= address) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return undefined;
    // Several names may share an address: prefer a global (upper-case type) one.
    let best = found;
    for (let i = found; i >= 0 && this.sorted[i].address === this.sorted[found].address; i--) {
      if (/[A-Z]/.test(this.sorted[i].type)) best = i;
    }
    const symbol = this.sorted[best];
    const offset = address - symbol.address;
    if (offset >= MAX_DESCRIBED_OFFSET) return undefined;
    return { symbol, offset };
  }

  /** `symbol+0x10`, `symbol`, or undefined when no symbol is near. */
  describe(address: bigint): string | undefined {
    const at = this.lookup(address);
    if (!at) return undefined;
    return at.offset === 0n ? at.symbol.name : `${at.symbol.name}+0x${at.offset.toString(16)}`;
  }
}

/** Parses /proc/kallsyms or System.map text ("ffffffff81000000 T _text [module]"). */
export function parseKallsyms(text: string): KernelSymbol[] {
  const out: KernelSymbol[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+)\s+(\S)\s+(\S+)/.exec(line);
    if (m) out.push({ address: BigInt('0x' + m[1]), type: m[2], name: m[3] });
  }
  return out;
}
