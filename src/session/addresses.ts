// What the user types where an address is asked for: a number (0x… or decimal), or a symbol or
// expression of the kernel model's language (`init_task`, `init_task.comm`, `*init_task.mm`).
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
