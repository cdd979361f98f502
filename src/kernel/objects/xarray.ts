// Batched walk of an XArray (and so of an IDR, whose radix tree is an XArray since 4.20): all
// nodes of one level are fetched in one batch of reads, so a tree of N entries costs about
// log64(N) round trips instead of one per entry. Entry encoding (include/linux/xarray.h):
// internal entries end in binary 10 — node pointers are (node | 2) and lie above 4096, smaller
// ones are sibling/retry/zero markers; value entries end in 1; anything else is a pointer.

import type { Kernel } from './object';
import { hex, ObjectError } from './object';

export interface XArrayEntry {
  index: bigint;
  entry: bigint;
}

export interface XArrayWalkOptions {
  /** Stop with an error past this many entries (the structure is corrupt). */
  maxEntries?: number;
  /** Stop with an error past this many nodes. */
  maxNodes?: number;
}

const isInternal = (e: bigint): boolean => (e & 3n) === 2n;
const isNode = (e: bigint): boolean => isInternal(e) && e > 4096n;

/** Every pointer entry of the XArray whose `struct xarray` is at `xarray`, in index order. */
export async function xarrayEntries(kernel: Kernel, xarray: bigint, what: string, options: XArrayWalkOptions = {}): Promise<XArrayEntry[]> {
  const btf = kernel.btf;
  const reader = kernel.reader;
  const xa = btf.findByName('xarray', 'struct');
  const node = btf.findByName('xa_node', 'struct');
  if (xa === undefined || node === undefined) throw new ObjectError(`${what}: the BTF has no struct xarray / xa_node`);
  const headOff = btf.findMember(xa, 'xa_head');
  const shiftOff = btf.findMember(node, 'shift');
  const slotsOff = btf.findMember(node, 'slots');
  if (!headOff || !shiftOff || !slotsOff) throw new ObjectError(`${what}: struct xarray/xa_node lack xa_head, shift or slots`);
  const slotsType = btf.resolve(slotsOff.member.type);
  if (slotsType.kind !== 'array' || slotsType.nelems === 0) throw new ObjectError(`${what}: xa_node.slots is not a fixed array`);
  const chunk = slotsType.nelems;
  const chunkShift = Math.log2(chunk);
  if (!Number.isInteger(chunkShift)) throw new ObjectError(`${what}: xa_node.slots has ${chunk} entries, not a power of two`);
  const slotsAt = BigInt(slotsOff.bitsOffset / 8);
  const shiftAt = BigInt(shiftOff.bitsOffset / 8);
  const nodeSpan = Number(slotsAt) + chunk * 8;
  const maxEntries = options.maxEntries ?? kernel.model.maxListLength;
  const maxNodes = options.maxNodes ?? Math.ceil(maxEntries / 4) + 64;

  const head = await reader.u64(xarray + BigInt(headOff.bitsOffset / 8));
  const out: XArrayEntry[] = [];
  if (head === 0n) return out;
  if (!isNode(head)) {
    if (!isInternal(head) && (head & 1n) === 0n) out.push({ index: 0n, entry: head });
    return out;
  }
  const seen = new Set<bigint>();
  let level: { address: bigint; base: bigint; shift: number | undefined }[] = [{ address: head - 2n, base: 0n, shift: undefined }];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > Math.ceil(64 / chunkShift)) throw new ObjectError(`${what}: tree deeper than ${Math.ceil(64 / chunkShift)} levels (corrupt)`);
    for (const n of level) {
      if (seen.has(n.address)) throw new ObjectError(`${what}: node ${hex(n.address)} reached twice (cycle)`);
      seen.add(n.address);
    }
    if (seen.size > maxNodes) throw new ObjectError(`${what}: more than ${maxNodes} nodes (corrupt?)`);
    await reader.prefetch(level.map((n) => ({ address: n.address, length: nodeSpan })));
    const next: typeof level = [];
    for (const n of level) {
      let shiftByte: number;
      let slots: Uint8Array;
      try {
        shiftByte = reader.cached(n.address + shiftAt, 1)[0];
        slots = reader.cached(n.address + slotsAt, chunk * 8);
      } catch (err) {
        throw new ObjectError(`${what}: node ${hex(n.address)} unreadable: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (n.shift !== undefined && shiftByte !== n.shift) {
        throw new ObjectError(`${what}: node ${hex(n.address)} has shift ${shiftByte}, expected ${n.shift} (corrupt or changed during the walk)`);
      }
      if (shiftByte % chunkShift !== 0 || shiftByte >= 64) throw new ObjectError(`${what}: node ${hex(n.address)} has invalid shift ${shiftByte}`);
      const view = new DataView(slots.buffer, slots.byteOffset, slots.byteLength);
      for (let i = 0; i < chunk; i++) {
        const e = view.getBigUint64(i * 8, true);
        if (e === 0n) continue;
        const index = n.base + (BigInt(i) << BigInt(shiftByte));
        if (isNode(e)) {
          if (shiftByte === 0) throw new ObjectError(`${what}: leaf node ${hex(n.address)} slot ${i} points at another node`);
          next.push({ address: e - 2n, base: index, shift: shiftByte - chunkShift });
        } else if (!isInternal(e) && (e & 1n) === 0n) {
          out.push({ index, entry: e });
          if (out.length > maxEntries) throw new ObjectError(`${what}: more than ${maxEntries} entries (corrupt?)`);
        }
      }
    }
    level = next;
  }
  out.sort((a, b) => (a.index < b.index ? -1 : a.index > b.index ? 1 : 0));
  return out;
}
