// The ELF core file around the saved pages: what crash, drgn and GRASS's own vmcore reader need.
//  - PT_NOTE with the target's VMCOREINFO note (crash and drgn read the kernel's release, page
//    size, KASLR offset and phys_base from it);
//  - one PT_LOAD per segment with its physical address in p_paddr and its direct-map address
//    (page_offset_base + phys) in p_vaddr;
//  - PT_LOADs for the kernel image's own mapping (_text.._end at __START_KERNEL_map + phys -
//    phys_base), sharing the file bytes of the segments that hold it: drgn 0.0.22 reads the page
//    tables through this mapping and aborts without it ("recursive address translation"), and
//    crash derives phys_base from it. GRASS's reader keeps one of two PT_LOADs with the same
//    physical memory.
import type { KernelSymbol } from '../types/target';
import { PAGE_BYTES } from './page-filter';
import type { Segment } from './plan';

const EHDR_BYTES = 64;
const PHDR_BYTES = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
const PF_RWX = 7;
/**
 * x86-64's base of the kernel image mapping (__START_KERNEL_map), an architecture constant: the
 * kernel's phys_base is defined against it (image physical = virtual - this + phys_base). The
 * agent's discovery uses the same constant.
 */
export const START_KERNEL_MAP = 0xffffffff80000000n;

export interface ElfLayout {
  /** Header, program headers and note, padded to the first segment. */
  header: Uint8Array;
  /** File offset of each segment's first page. */
  segmentOffsets: number[];
  fileBytes: number;
  textAliases: number;
}

export interface ElfTarget {
  vmcoreinfo: string;
  pageOffsetBase: bigint;
  physBase: bigint;
  symbols: KernelSymbol[];
}

/** The ELF note the kernel writes for its VMCOREINFO (name "VMCOREINFO", type 0), padded to 4 bytes. */
export function vmcoreinfoNote(text: string): Uint8Array {
  const name = new TextEncoder().encode('VMCOREINFO\0');
  const desc = new TextEncoder().encode(text);
  const pad4 = (n: number): number => (n + 3) & ~3;
  const note = new Uint8Array(12 + pad4(name.length) + pad4(desc.length));
  const v = new DataView(note.buffer);
  v.setUint32(0, name.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, 0, true); // the kernel writes type 0 for VMCOREINFO
  note.set(name, 12);
  note.set(desc, 12 + pad4(name.length));
  return note;
}

/** The kernel image's physical span, from its _text and _end symbols. */
function kernelImage(target: ElfTarget): { virt: bigint; phys: bigint; bytes: bigint } {
  const find = (name: string): bigint => {
    const s = target.symbols.find((x) => x.name === name);
    if (!s) throw new Error(`vmcore: no ${name} symbol in the target's kallsyms (needed for the kernel-image segment)`);
    return s.address;
  };
  const virt = find('_text');
  const end = find('_end');
  if (end <= virt) throw new Error(`vmcore: _end 0x${end.toString(16)} is not above _text 0x${virt.toString(16)}`);
  const bytes = (end - virt + BigInt(PAGE_BYTES) - 1n) & ~(BigInt(PAGE_BYTES) - 1n);
  return { virt, phys: BigInt.asUintN(64, virt - START_KERNEL_MAP + target.physBase), bytes };
}

export function elfLayout(segments: Segment[], target: ElfTarget): ElfLayout {
  const image = kernelImage(target);
  // Where each segment overlaps the kernel image's physical span: one alias PT_LOAD each.
  const aliases: { segment: number; from: bigint; bytes: bigint }[] = [];
  segments.forEach((s, segment) => {
    const start = s.physStart;
    const end = s.physStart + BigInt(s.pages) * BigInt(PAGE_BYTES);
    const from = start > image.phys ? start : image.phys;
    const to = end < image.phys + image.bytes ? end : image.phys + image.bytes;
    if (from < to) aliases.push({ segment, from, bytes: to - from });
  });
  if (aliases.length === 0) throw new Error(`vmcore: the kernel image (physical 0x${image.phys.toString(16)}) lies in no saved segment`);
  const note = vmcoreinfoNote(target.vmcoreinfo);
  const phnum = 1 + segments.length + aliases.length;
  const noteOffset = EHDR_BYTES + phnum * PHDR_BYTES;
  const dataStart = Math.ceil((noteOffset + note.length) / PAGE_BYTES) * PAGE_BYTES;
  const segmentOffsets: number[] = [];
  let at = dataStart;
  for (const s of segments) {
    segmentOffsets.push(at);
    at += s.pages * PAGE_BYTES;
  }
  const header = new Uint8Array(dataStart);
  const v = new DataView(header.buffer);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* little-endian */, 1 /* EV_CURRENT */], 0);
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(EHDR_BYTES), true); // e_phoff
  v.setUint16(52, EHDR_BYTES, true);
  v.setUint16(54, PHDR_BYTES, true);
  v.setUint16(56, phnum, true);
  let ph = EHDR_BYTES;
  const phdr = (type: number, offset: number, vaddr: bigint, paddr: bigint, bytes: bigint, align: bigint): void => {
    v.setUint32(ph, type, true);
    v.setUint32(ph + 4, type === PT_LOAD ? PF_RWX : 0, true);
    v.setBigUint64(ph + 8, BigInt(offset), true);
    v.setBigUint64(ph + 16, vaddr, true);
    v.setBigUint64(ph + 24, paddr, true);
    v.setBigUint64(ph + 32, bytes, true);
    v.setBigUint64(ph + 40, bytes, true);
    v.setBigUint64(ph + 48, align, true);
    ph += PHDR_BYTES;
  };
  phdr(PT_NOTE, noteOffset, 0n, 0n, BigInt(note.length), 4n);
  // p_align 0, as kdump writes it: crash tells a kdump ELF core from a netdump one by the first
  // PT_LOAD's alignment, and only for kdump takes the KASLR offset from VMCOREINFO.
  segments.forEach((s, i) => phdr(PT_LOAD, segmentOffsets[i], BigInt.asUintN(64, target.pageOffsetBase + s.physStart), s.physStart, BigInt(s.pages * PAGE_BYTES), 0n));
  for (const a of aliases) {
    const offset = segmentOffsets[a.segment] + Number(a.from - segments[a.segment].physStart);
    phdr(PT_LOAD, offset, BigInt.asUintN(64, image.virt + (a.from - image.phys)), a.from, a.bytes, 0n);
  }
  header.set(note, noteOffset);
  return { header, segmentOffsets, fileBytes: at, textAliases: aliases.length };
}
