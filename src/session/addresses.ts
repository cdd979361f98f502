// What the user types where an address is asked for: a number (0x… or decimal), or a symbol or
// expression of the kernel model's language (`init_task`, `init_task.comm`, `*init_task.mm`).
import type { Btf } from '../kernel/btf/btf';
import type { KernelModel } from '../kernel/model';
import { expressionAddress } from '../kernel/objects/expression';
import { Kernel } from '../kernel/objects/object';

export interface ResolvedAddress {
  address: bigint;
  /** The object's size when the text named an object. */
  size?: number;
  /** C type of what the text named, when it named an object. */
  type?: string;
}

export async function resolveKernelAddress(model: KernelModel, text: string): Promise<ResolvedAddress> {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('no address given');
  if (/^(0x[0-9a-fA-F]+|\d+)$/.test(trimmed)) return { address: BigInt(trimmed) };
  const { address, size, type } = await expressionAddress(new Kernel(model), trimmed);
  return { address, size, type };
}

const structNamesCache = new WeakMap<Btf, string[]>();

/** Names of the named structs in the target's BTF, sorted (what a struct type is completed from). */
export function structTypeNames(btf: Btf): string[] {
  let names = structNamesCache.get(btf);
  if (!names) {
    const seen = new Set<string>();
    for (let id = btf.startId; id < btf.typeCount; id++) {
      const t = btf.type(id);
      if (t.kind === 'struct' && t.name !== '') seen.add(t.name);
    }
    names = [...seen].sort();
    structNamesCache.set(btf, names);
  }
  return names;
}

/** The expression that decodes a `struct type` at a number typed by the user. */
export function structAtAddress(type: string, address: string): string {
  const name = type.replace(/^struct\s+/, '').trim();
  if (!/^[A-Za-z_]\w*$/.test(name)) throw new Error(`'${type}' is not a struct name`);
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(address.trim())) throw new Error(`'${address}' is not an address (0x… or decimal)`);
  return `*(struct ${name} *)${address.trim()}`;
}
