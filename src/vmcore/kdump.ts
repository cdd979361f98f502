// makedumpfile's kdump-compressed format ("KDUMP   ", diskdump header version 6), as grass
// save-vmcore --format kdump writes it and crash, makedumpfile and GRASS's agent read it:
//   block 0         struct disk_dump_header (the kernel's utsname, status = the compression)
//   block 1..       struct kdump_sub_header (phys_base, dump level, 64-bit pfn bounds), then the
//                   VMCOREINFO text it points at, and the same as an ELF note (its notes)
//   bitmaps         the 1st bitmap (a bit per pfn: RAM) and the 2nd (the page is in the file);
//                   a page the source dump left out, or --kernel-only excluded, is clear in the
//                   2nd, so a reader says "excluded", never zeros
//   descriptors     struct page_desc {offset, size, flags, page_flags} per page in the file, in
//                   pfn order
//   data            each page compressed on its own (stored raw when that does not shrink it);
//                   every all-zero page shares one copy, as makedumpfile's own zero page
// Layouts are makedumpfile's diskdump_mod.h (x86-64: 8-byte longs and off_t); the reader is
// gpu/src/memory/kdump_source.cpp.
import { deflateSync, inflateSync } from 'node:zlib';
import { Btf } from '../kernel/btf/btf';
import type { GrassClient } from '../rdma/client';
import type { AgentDescription } from '../rdma/protocol/description';
import { TargetReadError } from '../types/target';
import { PAGE_BYTES } from './page-filter';
import type { Plan } from './plan';
import { vmcoreinfoNote } from './elf';

export type KdumpCompression = 'zstd' | 'zlib';
/** makedumpfile's DUMP_DH_COMPRESSED_* (header status and page descriptor flags). */
const COMPRESSED: Record<KdumpCompression, number> = { zlib: 0x1, zstd: 0x20 };
const BLOCK = PAGE_BYTES;
const HEADER_VERSION = 6;
const DESCRIPTOR_BYTES = 24;
const SUB_HEADER_BYTES = 104;
const UTS_FIELD = 65;

export interface KdumpLayout {
  /** Everything before the descriptors: header, sub-header with VMCOREINFO, both bitmaps. */
  head: Uint8Array;
  descriptorsAt: number;
  /** The shared zero page's data, then the pages' data from zeroAt + its length on. */
  zeroAt: number;
  dataAt: number;
  /** Descriptor index of each chunk's first page (pfn order is chunk order). */
  firstDescriptor: number[];
  pages: number;
}

export interface Codec {
  compression: KdumpCompression;
  compress(page: Uint8Array): Uint8Array;
  decompress(data: Uint8Array): Uint8Array;
}

/**
 * zstd through @bokuweb/zstd-wasm (the reference library compiled to WebAssembly; node 20 has no
 * zstd of its own), zlib through node's zlib; level 1 of either, makedumpfile's own choice for speed.
 */
export async function codec(compression: KdumpCompression): Promise<Codec> {
  if (compression === 'zlib') {
    return { compression, compress: (p) => deflateSync(p, { level: 1 }), decompress: (d) => inflateSync(d) };
  }
  const zstd = await import('@bokuweb/zstd-wasm');
  await zstd.init();
  return { compression, compress: (p) => zstd.compress(p, 1), decompress: (d) => zstd.decompress(d) };
}

function putString(view: Uint8Array, at: number, text: string, max: number): void {
  const bytes = new TextEncoder().encode(text).subarray(0, max - 1);
  view.set(bytes, at);
}

/** The dump level written in the sub-header: makedumpfile's bits for what was left out. */
export function dumpLevel(kernelOnly: boolean, sourceLacksPages: boolean): number {
  // 2 cache, 4 private cache, 8 user, 16 free: what --kernel-only leaves out (zero pages are
  // kept, bit 1 clear). A source dump that lacked pages had a level of its own, unknown over the
  // protocol: 31 says pages of any class may be missing; the 2nd bitmap is exact either way.
  return sourceLacksPages ? 31 : kernelOnly ? 30 : 0;
}

/**
 * The kernel's own struct new_utsname (init_uts_ns.name, laid out by BTF), as makedumpfile
 * copies it into the header: libkdumpfile (drgn) takes the architecture from it only when every
 * field is filled in. Undefined when the target has no init_uts_ns or it does not read.
 */
export async function kernelUtsname(client: GrassClient, description: AgentDescription): Promise<Uint8Array | undefined> {
  const ns = description.symbols.find((x) => x.name === 'init_uts_ns');
  const btf = new Btf(description.btf, { source: 'target BTF' });
  const nsType = btf.findByName('uts_namespace', 'struct');
  const utsType = btf.findByName('new_utsname', 'struct');
  const name = nsType === undefined ? undefined : btf.findMember(nsType, 'name');
  if (!ns || utsType === undefined || !name || btf.sizeof(utsType) !== 6 * UTS_FIELD) return undefined;
  try {
    return await client.read({ kind: 'kernel' }, ns.address + BigInt(name.bitsOffset / 8), 6 * UTS_FIELD);
  } catch (err) {
    if (err instanceof TargetReadError) return undefined;
    throw err;
  }
}

export function kdumpLayout(plan: Plan, description: AgentDescription, compression: KdumpCompression, level: number, timestampSeconds: number, utsname?: Uint8Array): KdumpLayout {
  const ram = description.memoryMap;
  for (let i = 1; i < ram.length; i++) if (ram[i].physStart < ram[i - 1].physStart + ram[i - 1].length) throw new Error('save-vmcore: the memory map is not in ascending order; a kdump file needs pfn order');
  for (let i = 1; i < plan.segments.length; i++) if (plan.segments[i].physStart <= plan.segments[i - 1].physStart) throw new Error('save-vmcore: segments out of pfn order');
  const last = ram[ram.length - 1];
  const maxMapnr = Number((last.physStart + last.length + BigInt(PAGE_BYTES) - 1n) / BigInt(PAGE_BYTES));
  const bitmapBytes = Math.ceil(Math.ceil(maxMapnr / 8) / BLOCK) * BLOCK;
  const vmcoreinfo = new TextEncoder().encode(description.vmcoreinfo);
  // The same text as an ELF note too, where makedumpfile copies /proc/vmcore's notes:
  // libkdumpfile (drgn) takes VMCOREINFO from the notes, crash from offset_vmcoreinfo.
  const note = vmcoreinfoNote(description.vmcoreinfo);
  const noteAt = BLOCK + ((SUB_HEADER_BYTES + vmcoreinfo.length + 7) & ~7);
  const subHeaderBlocks = Math.ceil((noteAt - BLOCK + note.length) / BLOCK);
  const bitmapsAt = BLOCK * (1 + subHeaderBlocks);
  const descriptorsAt = bitmapsAt + 2 * bitmapBytes;
  const head = new Uint8Array(descriptorsAt);
  const v = new DataView(head.buffer);

  // The 1st bitmap: every page of RAM; the 2nd: the pages this file holds.
  const set = (base: number, pfn: number): void => { head[base + (pfn >> 3)] |= 1 << (pfn & 7); };
  for (const r of ram) {
    const first = Number(r.physStart / BigInt(PAGE_BYTES));
    for (let k = 0; k < Number(r.length / BigInt(PAGE_BYTES)); k++) set(bitmapsAt, first + k);
  }
  let pages = 0;
  const firstDescriptor: number[] = [];
  for (const c of plan.chunks) {
    firstDescriptor.push(pages);
    const first = Number(c.physStart / BigInt(PAGE_BYTES));
    for (let k = 0; k < c.pages; k++) {
      if (c.bitmap && ((c.bitmap[k >> 3] >> (k & 7)) & 1) === 0) continue;
      set(bitmapsAt + bitmapBytes, first + k);
      pages++;
    }
  }

  // struct disk_dump_header
  putString(head, 0, 'KDUMP   ', 9);
  v.setInt32(8, HEADER_VERSION, true);
  const uts = 12; // struct new_utsname: sysname, nodename, release, version, machine, domainname
  if (utsname) head.set(utsname, uts);
  else {
    putString(head, uts, 'Linux', UTS_FIELD);
    putString(head, uts + 2 * UTS_FIELD, description.release, UTS_FIELD);
    putString(head, uts + 4 * UTS_FIELD, 'x86_64', UTS_FIELD);
  }
  const timestamp = 408; // struct timeval, 8-aligned after the utsname
  v.setBigInt64(timestamp, BigInt(timestampSeconds), true);
  v.setUint32(424, COMPRESSED[compression], true); // status
  v.setInt32(428, BLOCK, true); // block_size
  v.setInt32(432, subHeaderBlocks, true); // sub_hdr_size
  v.setUint32(436, (2 * bitmapBytes) / BLOCK, true); // bitmap_blocks
  v.setUint32(440, Math.min(maxMapnr, 0xffffffff), true); // max_mapnr (32-bit, obsolete)
  v.setUint32(444, pages, true); // total_ram_blocks
  v.setInt32(460, description.cpuCount, true); // nr_cpus

  // struct kdump_sub_header
  const sub = BLOCK;
  v.setBigUint64(sub, description.physBase, true);
  v.setInt32(sub + 8, level, true);
  v.setInt32(sub + 12, 0, true); // split: one file
  v.setBigUint64(sub + 16, 0n, true); // start_pfn (32-bit, obsolete)
  v.setBigUint64(sub + 24, BigInt(Math.min(maxMapnr, 0xffffffff)), true);
  v.setBigUint64(sub + 32, BigInt(sub + SUB_HEADER_BYTES), true); // offset_vmcoreinfo
  v.setBigUint64(sub + 40, BigInt(vmcoreinfo.length), true);
  v.setBigUint64(sub + 80, 0n, true); // start_pfn_64
  v.setBigUint64(sub + 88, BigInt(maxMapnr), true); // end_pfn_64
  v.setBigUint64(sub + 96, BigInt(maxMapnr), true); // max_mapnr_64
  v.setBigUint64(sub + 48, BigInt(noteAt), true); // offset_note
  v.setBigUint64(sub + 56, BigInt(note.length), true); // size_note
  head.set(vmcoreinfo, sub + SUB_HEADER_BYTES);
  head.set(note, noteAt);

  const zeroAt = descriptorsAt + pages * DESCRIPTOR_BYTES;
  return { head, descriptorsAt, zeroAt, dataAt: zeroAt, firstDescriptor, pages };
}

/** The header without its time stamp: what names the plan in the journal (a resume keeps the file's). */
export function headForDigest(layout: KdumpLayout): Uint8Array {
  const copy = layout.head.slice();
  copy.fill(0, 408, 424);
  return copy;
}

function isZero(page: Uint8Array): boolean {
  for (let i = 0; i < page.length; i++) if (page[i] !== 0) return false;
  return true;
}

/** The shared zero page's data as it is stored (compressed), written once before the pages. */
export function zeroPage(c: Codec): Uint8Array {
  return c.compress(new Uint8Array(PAGE_BYTES));
}

/**
 * One chunk's pages (packed, as BULK_READ returned them) stored at dataAt: the descriptors (24
 * bytes each) and the data to write there. Zero pages point at the shared zero page.
 */
export function encodeChunk(c: Codec, data: Uint8Array, dataAt: number, zero: { at: number; bytes: number }): { descriptors: Uint8Array; blob: Uint8Array } {
  const pages = data.length / PAGE_BYTES;
  const descriptors = new Uint8Array(pages * DESCRIPTOR_BYTES);
  const dv = new DataView(descriptors.buffer);
  const parts: Uint8Array[] = [];
  let at = dataAt;
  for (let k = 0; k < pages; k++) {
    const page = data.subarray(k * PAGE_BYTES, (k + 1) * PAGE_BYTES);
    let offset = zero.at;
    let size = zero.bytes;
    let flags = COMPRESSED[c.compression];
    if (!isZero(page)) {
      const packed = c.compress(page);
      const stored = packed.length < PAGE_BYTES ? packed : page;
      if (stored === page) flags = 0;
      parts.push(stored);
      offset = at;
      size = stored.length;
      at += stored.length;
    }
    dv.setBigUint64(k * DESCRIPTOR_BYTES, BigInt(offset), true);
    dv.setUint32(k * DESCRIPTOR_BYTES + 8, size, true);
    dv.setUint32(k * DESCRIPTOR_BYTES + 12, flags, true);
  }
  const blob = new Uint8Array(at - dataAt);
  let o = 0;
  for (const p of parts) {
    blob.set(p, o);
    o += p.length;
  }
  return { descriptors, blob };
}

/** The pages a chunk's descriptors point at, decompressed (a resume checks them against the journal's CRC). */
export function decodePages(c: Codec, descriptors: Uint8Array, read: (offset: number, bytes: number) => Uint8Array): Uint8Array {
  const pages = descriptors.length / DESCRIPTOR_BYTES;
  const out = new Uint8Array(pages * PAGE_BYTES);
  const dv = new DataView(descriptors.buffer, descriptors.byteOffset, descriptors.byteLength);
  for (let k = 0; k < pages; k++) {
    const offset = Number(dv.getBigUint64(k * DESCRIPTOR_BYTES, true));
    const size = dv.getUint32(k * DESCRIPTOR_BYTES + 8, true);
    const flags = dv.getUint32(k * DESCRIPTOR_BYTES + 12, true);
    const stored = read(offset, size);
    const page = flags === 0 ? stored : c.decompress(stored);
    if (page.length !== PAGE_BYTES) throw new Error(`save-vmcore: a page stored at ${offset} decompresses to ${page.length} bytes`);
    out.set(page, k * PAGE_BYTES);
  }
  return out;
}

export const KDUMP_DESCRIPTOR_BYTES = DESCRIPTOR_BYTES;
