// What the memory inspector's host answers for one page: the bytes of an aligned 4 KiB page of
// one address space (the agent translates physical, kernel-virtual and user addresses) and the
// kernel symbols its pointer-like words point into. No `vscode` here: the bench runs it too.
import type { AddressSpace } from '../types/target';
import { INSPECTOR_PAGE_BYTES, parseHexAddress, type SymbolAnnotation } from '../types/webview-protocol';
import type { KernelModel } from '../kernel/model';
import { causeFirst } from './cause-first';

/** x86-64 kernel addresses: the upper half of the canonical address space. */
const KERNEL_HALF = 0xffff800000000000n;

export interface InspectorPage {
  hex?: string;
  error?: string;
  annotations: SymbolAnnotation[];
}

/** The page at `addressText` (0x…, page-aligned), or why there is none (its cause first). */
export async function readInspectorPage(model: () => Promise<KernelModel>, space: AddressSpace, addressText: string): Promise<InspectorPage> {
  try {
    const address = parseHexAddress(addressText);
    if (address % BigInt(INSPECTOR_PAGE_BYTES) !== 0n) throw new Error(`page address ${addressText} is not ${INSPECTOR_PAGE_BYTES}-byte aligned`);
    const m = await model();
    const bytes = await m.memory.read(space, address, INSPECTOR_PAGE_BYTES);
    return { hex: Buffer.from(bytes).toString('hex'), annotations: symbolAnnotations(m, bytes) };
  } catch (err) {
    // Cause first: a row has room for a few words of it.
    return { error: causeFirst((err as Error).message), annotations: [] };
  }
}

/** Aligned 8-byte words whose value lies in a kernel symbol (`name+0x10`). */
export function symbolAnnotations(model: KernelModel, page: Uint8Array): SymbolAnnotation[] {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const out: SymbolAnnotation[] = [];
  for (let offset = 0; offset + 8 <= page.length; offset += 8) {
    const value = view.getBigUint64(offset, true);
    if (value < KERNEL_HALF) continue;
    const symbol = model.symbols.describe(value);
    if (symbol) out.push({ offset, symbol });
  }
  return out;
}
