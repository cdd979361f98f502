// Bounded walks of the kernel's intrusive lists: list_head rings and hlist chains. The kernel
// being inspected may be corrupt or still running: every walk stops at a length limit, detects
// cycles that miss the head, and checks each node's back link so a list changing under the
// walk is reported (ListChangedError) rather than silently mixed.

import { hex, type KObject, ObjectError } from './object';
import { memberOffset } from './object';

export class ListChangedError extends ObjectError {
  constructor(message: string) {
    super(message);
    this.name = 'ListChangedError';
  }
}

export interface ListWalkOptions {
  /** At most this many entries (default: the model's maxListLength). */
  limit?: number;
  /** Read each whole entry in the same round trip as its link (for walks that use the entries). */
  prefetchEntries?: boolean;
  /** Check node->next->prev == node (default true): detects lists changing under the walk. */
  checkLinks?: boolean;
}

/** The address of a list head: a `struct list_head` object or a pointer to one. */
async function headAddress(head: KObject): Promise<bigint> {
  const t = head.resolved;
  if (t.kind === 'ptr') {
    const p = await head.readInt();
    if (p === 0n) throw head.fail('NULL list head');
    return p;
  }
  if (head.address === undefined) throw head.fail('list head is not in memory');
  return head.address;
}

/**
 * list_for_each_entry(pos, head, member): the entries of type `type` linked through `member`
 * (a list_head inside them) on the ring that starts at `head`.
 */
export async function* listForEachEntry(head: KObject, type: string | number, member: string, options: ListWalkOptions = {}): AsyncGenerator<KObject> {
  const kernel = head.kernel;
  const typeId = typeof type === 'number' ? type : kernel.model.typeId(type);
  const offset = BigInt(memberOffset(kernel.btf, typeId, member, head.expression));
  const entrySize = kernel.btf.sizeof(typeId);
  const limit = options.limit ?? kernel.model.maxListLength;
  const checkLinks = options.checkLinks ?? true;
  const reader = kernel.reader;
  const start = await headAddress(head);
  const what = `list ${head.expression} (head ${hex(start)})`;
  const readLinks = async (node: bigint): Promise<[bigint, bigint]> => {
    try {
      const b = await reader.read(node, 16);
      const v = new DataView(b.buffer, b.byteOffset, 16);
      return [v.getBigUint64(0, true), v.getBigUint64(8, true)];
    } catch (err) {
      throw new ObjectError(`${what}: node ${hex(node)} unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const seen = new Set<bigint>();
  let prev = start;
  let [pos] = await readLinks(start);
  for (let n = 0; pos !== start; n++) {
    if (n >= limit) throw new ObjectError(`${what}: longer than the limit of ${limit} entries (corrupt or cyclic list?)`);
    if (pos === 0n) throw new ObjectError(`${what}: entry ${n} has a NULL next pointer (after node ${hex(prev)})`);
    if (seen.has(pos)) throw new ObjectError(`${what}: cycle at node ${hex(pos)} (entry ${n}) that never returns to the head`);
    seen.add(pos);
    if (options.prefetchEntries) await reader.prefetch([{ address: pos - offset, length: entrySize }]);
    const [next, back] = await readLinks(pos);
    if (checkLinks && back !== prev) {
      throw new ListChangedError(`${what}: node ${hex(pos)} (entry ${n}) has prev ${hex(back)}, expected ${hex(prev)}: the list changed during the walk or is corrupt`);
    }
    yield kernel.object(typeId, pos - offset, `list_entry(${hex(pos)}, ${kernel.btf.typeName(typeId)}, ${member})`);
    prev = pos;
    pos = next;
  }
}

/** hlist_for_each_entry(pos, head, member): entries on the NULL-terminated chain of an hlist_head. */
export async function* hlistForEachEntry(head: KObject, type: string | number, member: string, options: ListWalkOptions = {}): AsyncGenerator<KObject> {
  const kernel = head.kernel;
  const typeId = typeof type === 'number' ? type : kernel.model.typeId(type);
  const offset = BigInt(memberOffset(kernel.btf, typeId, member, head.expression));
  const limit = options.limit ?? kernel.model.maxListLength;
  const start = await headAddress(head);
  const what = `hlist ${head.expression} (head ${hex(start)})`;
  const seen = new Set<bigint>();
  let pos: bigint;
  try {
    pos = await kernel.reader.u64(start);
  } catch (err) {
    throw new ObjectError(`${what}: unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (let n = 0; pos !== 0n; n++) {
    if (n >= limit) throw new ObjectError(`${what}: longer than the limit of ${limit} entries`);
    if (seen.has(pos)) throw new ObjectError(`${what}: cycle at node ${hex(pos)} (entry ${n})`);
    seen.add(pos);
    yield kernel.object(typeId, pos - offset, `hlist_entry(${hex(pos)}, ${kernel.btf.typeName(typeId)}, ${member})`);
    try {
      pos = await kernel.reader.u64(pos);
    } catch (err) {
      throw new ObjectError(`${what}: node ${hex(pos)} (entry ${n}) unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** Collects a walk into an array. */
export async function collect<T>(walk: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of walk) out.push(x);
  return out;
}
