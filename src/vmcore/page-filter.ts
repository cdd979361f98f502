// The kernel-only filter of grass save-vmcore: which physical pages hold nothing but free memory,
// user data or file cache, decided the way makedumpfile's dump level 31 does (less its zero-page
// check, which would need the pages themselves), from the target's own struct page array.
//
// Everything comes from the target: struct page's size and member offsets from its BTF (checked
// against VMCOREINFO's OFFSET()/SIZE() where the kernel exports them), the page-flag bit numbers
// from BTF's enum pageflags, the buddy and offline page_type values from VMCOREINFO
// (PAGE_BUDDY_MAPCOUNT_VALUE, PAGE_OFFLINE_MAPCOUNT_VALUE are #defines, absent from BTF), the
// largest buddy order from struct zone's free_area[] length, the array's base from the kernel's
// vmemmap_base variable. The one constant is PAGE_MAPPING_ANON, the tag in bit 0 of
// page->mapping (a pointer tag, the same in every kernel since 2.6 and hard-coded by
// makedumpfile and crash alike).
import type { Btf } from '../kernel/btf/btf';
import type { BtfEnum } from '../kernel/btf/types';
import { parseVmcoreinfo, type Vmcoreinfo } from '../kernel/vmcoreinfo';
import type { TargetDescription, TargetMemory } from '../types/target';
import { TargetReadError } from '../types/target';

export const PAGE_BYTES = 4096;
const PAGE_MAPPING_ANON = 1n;

/** Why a page is left out. 'kept' pages are saved. */
export enum PageClass {
  Kept = 0,
  Free = 1,
  User = 2,
  Cache = 3,
  Offline = 4,
  /** Not in the memory source: a dump (makedumpfile's dump level) left it out. */
  NotInDump = 5,
}

export const PAGE_CLASS_NAMES: Record<PageClass, string> = {
  [PageClass.Kept]: 'kernel',
  [PageClass.Free]: 'free (buddy allocator)',
  [PageClass.User]: 'user (anonymous memory of processes)',
  [PageClass.Cache]: 'file cache (on an LRU list, not anonymous)',
  [PageClass.Offline]: 'offline (ballooned or hot-removed)',
  [PageClass.NotInDump]: 'not in the source dump (excluded by its dump level)',
};

export interface PageLayout {
  pageSize: number;
  flags: number;
  mapping: number;
  compoundHead: number;
  pageType: number;
  private: number;
  pgLru: number;
  /** PG_slab's bit, on kernels where slab is a page flag. */
  pgSlab: number | undefined;
  /** PGTY_slab, on kernels where slab is a page type (in page_type's top byte). */
  slabType: number | undefined;
  /** page_type is a type byte in its top 8 bits (kernels with enum pagetype), else inverted bits. */
  typeInTopByte: boolean;
  buddyType: number;
  offlineType: number | undefined;
  /** Buddy orders are below this (struct zone's free_area[] length). */
  orders: number;
  vmemmapBase: bigint;
}

/** Pages of one memory-map range and the class of each. */
export interface RangeClasses {
  physStart: bigint;
  pages: number;
  classes: Uint8Array;
  /** Pages whose struct page could not be read: kept, counted here. */
  unreadable: number;
}

export class PageFilterError extends Error {
  constructor(message: string) {
    super(`kernel-only filter: ${message}`);
    this.name = 'PageFilterError';
  }
}

function memberByte(btf: Btf, struct: number, name: string, where = 'struct page'): number {
  const m = btf.findMember(struct, name);
  if (!m) throw new PageFilterError(`${where} has no member '${name}' in the target's BTF`);
  if (m.bitsOffset % 8) throw new PageFilterError(`${where}.${name} is a bitfield`);
  return m.bitsOffset / 8;
}

function enumValue(btf: Btf, enumName: string, name: string): number | undefined {
  for (const id of btf.byName(enumName, 'enum')) {
    const t = btf.type(id) as BtfEnum;
    const v = t.values.find((e) => e.name === name);
    if (v) return Number(v.value);
  }
  return undefined;
}

/** A VMCOREINFO value the filter checks against: `parsed`, or an error naming the line that did not parse. */
function exportedValue<T>(info: Vmcoreinfo, key: string, parsed: T | undefined): T | undefined {
  const raw = info.malformed.get(key);
  if (raw !== undefined) throw new PageFilterError(`VMCOREINFO ${key}=${raw} is not a number`);
  return parsed;
}

/** Resolves struct page's layout from the target's BTF, VMCOREINFO and kernel variables. */
export async function resolvePageLayout(btf: Btf, description: TargetDescription, memory: TargetMemory): Promise<PageLayout> {
  if (!description.vmcoreinfo.trim()) throw new PageFilterError('the target has no VMCOREINFO (the buddy page_type value is exported only there)');
  const info = parseVmcoreinfo(description.vmcoreinfo);
  const page = btf.findByName('page', 'struct');
  if (page === undefined) throw new PageFilterError('no struct page in the target\'s BTF');
  const layout = {
    pageSize: btf.sizeof(page),
    flags: memberByte(btf, page, 'flags'),
    mapping: memberByte(btf, page, 'mapping'),
    compoundHead: memberByte(btf, page, 'compound_head'),
    pageType: memberByte(btf, page, 'page_type'),
    private: memberByte(btf, page, 'private'),
  };
  // The kernel's own export of the same facts: a disagreement means we misread the BTF.
  const offset = (member: string): number | undefined => exportedValue(info, `OFFSET(page.${member})`, info.offsets.get(`page.${member}`));
  const exported: [string, number | undefined, number][] = [
    ['SIZE(page)', exportedValue(info, 'SIZE(page)', info.sizes.get('page')), layout.pageSize],
    ['OFFSET(page.flags)', offset('flags'), layout.flags],
    ['OFFSET(page.mapping)', offset('mapping'), layout.mapping],
    ['OFFSET(page.compound_head)', offset('compound_head'), layout.compoundHead],
    ['OFFSET(page._mapcount)', offset('_mapcount'), layout.pageType],
    ['OFFSET(page.private)', offset('private'), layout.private],
  ];
  for (const [key, v, fromBtf] of exported) {
    if (v !== undefined && v !== fromBtf) throw new PageFilterError(`VMCOREINFO ${key}=${v} but the BTF says ${fromBtf}`);
  }
  const flag = (name: string, required = true): number | undefined => {
    const v = enumValue(btf, 'pageflags', name);
    if (v === undefined && !required) return undefined;
    if (v === undefined) throw new PageFilterError(`enum pageflags has no ${name} in the target's BTF`);
    const exportedBit = exportedValue(info, `NUMBER(${name})`, info.numbers.get(name));
    if (exportedBit !== undefined && Number(exportedBit) !== v) throw new PageFilterError(`VMCOREINFO NUMBER(${name})=${exportedBit} but BTF's enum pageflags says ${v}`);
    return v;
  };
  const buddy = exportedValue(info, 'NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)', info.numbers.get('PAGE_BUDDY_MAPCOUNT_VALUE'));
  if (buddy === undefined) throw new PageFilterError('VMCOREINFO lacks NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE): free pages cannot be told apart');
  const offline = exportedValue(info, 'NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)', info.numbers.get('PAGE_OFFLINE_MAPCOUNT_VALUE'));
  if (enumValue(btf, 'pageflags', 'PG_slab') === undefined && enumValue(btf, 'pagetype', 'PGTY_slab') === undefined) {
    throw new PageFilterError('neither enum pageflags PG_slab nor enum pagetype PGTY_slab in the BTF: slab pages cannot be recognised');
  }
  const zone = btf.findByName('zone', 'struct');
  const freeArea = zone === undefined ? undefined : btf.findMember(zone, 'free_area');
  const areaType = freeArea ? btf.resolve(freeArea.member.type) : undefined;
  if (!areaType || areaType.kind !== 'array') throw new PageFilterError('struct zone has no free_area[] array in the target\'s BTF');
  const vmemmapSymbol = description.symbols.find((s) => s.name === 'vmemmap_base');
  if (!vmemmapSymbol) throw new PageFilterError('no vmemmap_base symbol (the struct page array is found through it on x86-64 with SPARSEMEM_VMEMMAP)');
  const base = await memory.read({ kind: 'kernel' }, vmemmapSymbol.address, 8);
  return {
    ...layout,
    pgLru: flag('PG_lru')!,
    pgSlab: flag('PG_slab', false),
    slabType: enumValue(btf, 'pagetype', 'PGTY_slab'),
    typeInTopByte: enumValue(btf, 'pagetype', 'PGTY_buddy') !== undefined,
    buddyType: Number(BigInt.asUintN(32, buddy)),
    offlineType: offline === undefined ? undefined : Number(BigInt.asUintN(32, offline)),
    orders: areaType.nelems,
    vmemmapBase: new DataView(base.buffer, base.byteOffset, 8).getBigUint64(0, true),
  };
}

const READ_PAGES = 4096;     // struct pages per read (256 KiB with 64-byte pages)
const RETRY_PAGES = 64;      // on failure, retried in pieces of this many (one 4 KiB page of them)
const READS_IN_FLIGHT = 6;

/** Reads the struct pages of [pfn, pfn + count); pieces that stay unreadable are left zero and listed. */
async function readStructPages(memory: TargetMemory, layout: PageLayout, pfn: number, count: number, unreadable: [number, number][]): Promise<Uint8Array> {
  const out = new Uint8Array(count * layout.pageSize);
  const pieces: [number, number][] = [];
  for (let at = 0; at < count; at += READ_PAGES) pieces.push([at, Math.min(READ_PAGES, count - at)]);
  const readPiece = async ([at, n]: [number, number]): Promise<void> => {
    const address = layout.vmemmapBase + BigInt(pfn + at) * BigInt(layout.pageSize);
    try {
      out.set(await memory.read({ kind: 'kernel' }, address, n * layout.pageSize), at * layout.pageSize);
    } catch (err) {
      if (!(err instanceof TargetReadError)) throw err;
      if (n <= RETRY_PAGES) { unreadable.push([at, n]); return; }
      for (let k = 0; k < n; k += RETRY_PAGES) await readPiece([at + k, Math.min(RETRY_PAGES, n - k)]);
    }
  };
  let next = 0;
  await Promise.all(Array.from({ length: READS_IN_FLIGHT }, async () => {
    while (next < pieces.length) await readPiece(pieces[next++]);
  }));
  return out;
}

/** Classifies every page of the target's memory map. */
export async function classifyPages(memory: TargetMemory, layout: PageLayout, memoryMap: { physStart: bigint; length: bigint }[]): Promise<RangeClasses[]> {
  const result: RangeClasses[] = [];
  const size = layout.pageSize;
  for (const range of memoryMap) {
    const firstPfn = Number(range.physStart / BigInt(PAGE_BYTES));
    const pages = Number(range.length / BigInt(PAGE_BYTES));
    const unreadablePieces: [number, number][] = [];
    const raw = await readStructPages(memory, layout, firstPfn, pages, unreadablePieces);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const classes = new Uint8Array(pages);
    const unknown = new Uint8Array(pages);
    for (const [at, n] of unreadablePieces) unknown.fill(1, at, at + n);
    const typeMatches = (pageType: number, value: number): boolean =>
      pageType === value || (layout.typeInTopByte && pageType >>> 24 === value >>> 24);
    for (let i = 0; i < pages; i++) {
      if (unknown[i] || classes[i] !== PageClass.Kept) continue;
      const off = i * size;
      const pageType = view.getUint32(off + layout.pageType, true);
      if (typeMatches(pageType, layout.buddyType)) {
        // The first page of a free block carries the type; page->private holds the block's order.
        const order = view.getBigUint64(off + layout.private, true);
        const span = order < BigInt(layout.orders) ? 2 ** Number(order) : 1;
        for (let k = i; k < Math.min(pages, i + span); k++) if (!unknown[k]) classes[k] = PageClass.Free;
        continue;
      }
      if (layout.offlineType !== undefined && typeMatches(pageType, layout.offlineType)) { classes[i] = PageClass.Offline; continue; }
      // A tail page of a compound page is what its head is.
      let head = off;
      const compoundHead = view.getBigUint64(off + layout.compoundHead, true);
      if (compoundHead & 1n) {
        const headIndex = (compoundHead - 1n - layout.vmemmapBase) / BigInt(size) - BigInt(firstPfn);
        if (headIndex >= 0n && headIndex < BigInt(pages) && !unknown[Number(headIndex)]) head = Number(headIndex) * size;
      }
      const flags = view.getBigUint64(head + layout.flags, true);
      // Slab pages reuse the mapping word for the allocator's own fields: kernel memory.
      if (layout.pgSlab !== undefined && (flags >> BigInt(layout.pgSlab)) & 1n) continue;
      if (layout.slabType !== undefined && view.getUint32(head + layout.pageType, true) >>> 24 === layout.slabType) continue;
      const mapping = view.getBigUint64(head + layout.mapping, true);
      if (mapping & PAGE_MAPPING_ANON) classes[i] = PageClass.User;
      else if ((flags >> BigInt(layout.pgLru)) & 1n) classes[i] = PageClass.Cache;
    }
    result.push({ physStart: range.physStart, pages, classes, unreadable: unknown.reduce((a, b) => a + b, 0) });
  }
  return result;
}
