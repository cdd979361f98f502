// Where the printk ring buffer (Linux 5.10+, kernel/printk/printk_ringbuffer.h) lives and how
// its structs are laid out on this target. Every offset comes from the target: VMCOREINFO first
// (the kernel publishes the ring's layout there for crash tools), the kernel's BTF for what
// VMCOREINFO does not say (the facility/flags/level bitfields of printk_info) or when the
// target has no VMCOREINFO. Nothing is assumed about a struct's layout.

import type { Btf } from '../btf/btf';
import type { KernelSymbol } from '../../types/target';
import type { Vmcoreinfo } from '../vmcoreinfo';

/** A member's place inside its struct: byte offset, plus bit position and width for bitfields. */
export interface FieldLocation {
  offset: number;
  /** Bitfields only: bit offset inside the 8-bit unit at `offset`, and width in bits. */
  bit?: { shift: number; width: number };
}

export interface PrintkLayout {
  /** Address of `prb`, the kernel's `struct printk_ringbuffer *`. */
  prbAddress: bigint;
  ringbuffer: { size: number; descRing: number; textDataRing: number };
  descRing: { countBits: number; descs: number; infos: number; headId: number; tailId: number };
  dataRing: { sizeBits: number; data: number; headLpos: number; tailLpos: number };
  desc: { size: number; stateVar: number; textBlkLpos: number };
  blkLpos: { begin: number; next: number };
  info: {
    size: number;
    seq: number;
    tsNsec: number;
    textLen: number;
    callerId: number;
    devInfo: number;
    /** From BTF only; absent when the target has no BTF. */
    facility?: FieldLocation;
    flags?: FieldLocation;
    level?: FieldLocation;
  };
  devInfo: { subsystem: number; subsystemLength: number; device: number; deviceLength: number };
  /** Where each part of the layout came from, for `--verbose` and error messages. */
  sources: string[];
}

export class PrintkLayoutError extends Error {
  constructor(message: string) {
    super(`kernel log layout: ${message}`);
    this.name = 'PrintkLayoutError';
  }
}

/** Looks members up in VMCOREINFO, then in BTF; names what is missing from both. */
class LayoutResolver {
  readonly sources = new Set<string>();

  constructor(
    private readonly vmcoreinfo: Vmcoreinfo | undefined,
    private readonly btf: Btf | undefined,
  ) {}

  size(struct: string): number {
    const fromVmcoreinfo = this.vmcoreinfo?.sizes.get(struct);
    if (fromVmcoreinfo !== undefined) {
      this.sources.add('VMCOREINFO');
      return fromVmcoreinfo;
    }
    const id = this.btfStruct(struct);
    if (id !== undefined && this.btf) {
      this.sources.add('BTF');
      return this.btf.sizeof(id);
    }
    throw new PrintkLayoutError(`SIZE(${struct}) is in neither VMCOREINFO nor BTF${this.missingHint()}`);
  }

  offset(struct: string, member: string): number {
    const fromVmcoreinfo = this.vmcoreinfo?.offsets.get(`${struct}.${member}`);
    if (fromVmcoreinfo !== undefined) {
      this.sources.add('VMCOREINFO');
      return fromVmcoreinfo;
    }
    const loc = this.btfMember(struct, member);
    if (loc) {
      if (loc.bit) throw new PrintkLayoutError(`${struct}.${member} is a bitfield in BTF, expected a plain member`);
      return loc.offset;
    }
    throw new PrintkLayoutError(`OFFSET(${struct}.${member}) is in neither VMCOREINFO nor BTF${this.missingHint()}`);
  }

  /** Members VMCOREINFO never lists (bitfields): BTF or nothing. */
  optionalBtfField(struct: string, member: string): FieldLocation | undefined {
    return this.btfMember(struct, member);
  }

  length(vmcoreinfoName: string, struct: string, member: string): number {
    const fromVmcoreinfo = this.vmcoreinfo?.lengths.get(vmcoreinfoName);
    if (fromVmcoreinfo !== undefined) return fromVmcoreinfo;
    const id = this.btfStruct(struct);
    const loc = id === undefined || !this.btf ? undefined : this.btf.findMember(id, member);
    if (loc && this.btf) {
      const t = this.btf.resolve(loc.member.type);
      if (t.kind === 'array') return t.nelems;
    }
    throw new PrintkLayoutError(`LENGTH(${vmcoreinfoName}) is in neither VMCOREINFO nor BTF${this.missingHint()}`);
  }

  private btfStruct(struct: string): number | undefined {
    return this.btf?.findByName(struct, 'struct');
  }

  private btfMember(struct: string, member: string): FieldLocation | undefined {
    const id = this.btfStruct(struct);
    if (id === undefined || !this.btf) return undefined;
    const loc = this.btf.findMember(id, member);
    if (!loc) return undefined;
    this.sources.add('BTF');
    const width = loc.member.bitfieldSize;
    if (width === 0) {
      if (loc.bitsOffset % 8 !== 0) throw new PrintkLayoutError(`BTF puts ${struct}.${member} at bit ${loc.bitsOffset}, not on a byte`);
      return { offset: loc.bitsOffset / 8 };
    }
    const offset = Math.floor(loc.bitsOffset / 8);
    const shift = loc.bitsOffset % 8;
    // The printk_info bitfields live in one u8; a field straddling bytes is not what we decode.
    if (shift + width > 8) throw new PrintkLayoutError(`BTF bitfield ${struct}.${member} spans bytes (bit ${loc.bitsOffset}, ${width} bits)`);
    return { offset, bit: { shift, width } };
  }

  private missingHint(): string {
    if (!this.vmcoreinfo && !this.btf) return ' (the target description has neither VMCOREINFO text nor BTF)';
    if (!this.btf) return ' (the target description has no BTF)';
    if (!this.vmcoreinfo) return ' (the target description has no VMCOREINFO text)';
    return ' (is this kernel older than 5.10, before the lockless ring buffer?)';
  }
}

/**
 * Resolves the ring buffer's layout for one target. `prb`'s address comes from VMCOREINFO's
 * SYMBOL(prb) (a runtime address) or else the target's symbol table.
 */
export function resolvePrintkLayout(
  vmcoreinfo: Vmcoreinfo | undefined,
  btf: Btf | undefined,
  symbols: readonly KernelSymbol[],
): PrintkLayout {
  const r = new LayoutResolver(vmcoreinfo, btf);
  let prbAddress = vmcoreinfo?.symbols.get('prb');
  if (prbAddress === undefined) {
    prbAddress = symbols.find((s) => s.name === 'prb')?.address;
    if (prbAddress !== undefined) r.sources.add('symbols');
  }
  if (prbAddress === undefined) {
    throw new PrintkLayoutError("no address for 'prb': VMCOREINFO has no SYMBOL(prb) and the symbol table has no 'prb' (kernel older than 5.10?)");
  }

  // atomic_long_t wraps one long; VMCOREINFO publishes both its size and its counter's offset.
  const atomicSize = vmcoreinfo?.sizes.get('atomic_long_t') ?? (btf ? btf.pointerSize : 8);
  if (atomicSize !== 8) throw new PrintkLayoutError(`atomic_long_t is ${atomicSize} bytes; only 64-bit targets are supported`);
  const counter = vmcoreinfo?.offsets.get('atomic_long_t.counter') ?? 0;

  const layout: PrintkLayout = {
    prbAddress,
    ringbuffer: {
      size: r.size('printk_ringbuffer'),
      descRing: r.offset('printk_ringbuffer', 'desc_ring'),
      textDataRing: r.offset('printk_ringbuffer', 'text_data_ring'),
    },
    descRing: {
      countBits: r.offset('prb_desc_ring', 'count_bits'),
      descs: r.offset('prb_desc_ring', 'descs'),
      infos: r.offset('prb_desc_ring', 'infos'),
      headId: r.offset('prb_desc_ring', 'head_id') + counter,
      tailId: r.offset('prb_desc_ring', 'tail_id') + counter,
    },
    dataRing: {
      sizeBits: r.offset('prb_data_ring', 'size_bits'),
      data: r.offset('prb_data_ring', 'data'),
      headLpos: r.offset('prb_data_ring', 'head_lpos') + counter,
      tailLpos: r.offset('prb_data_ring', 'tail_lpos') + counter,
    },
    desc: {
      size: r.size('prb_desc'),
      stateVar: r.offset('prb_desc', 'state_var') + counter,
      textBlkLpos: r.offset('prb_desc', 'text_blk_lpos'),
    },
    blkLpos: {
      begin: r.offset('prb_data_blk_lpos', 'begin'),
      next: r.offset('prb_data_blk_lpos', 'next'),
    },
    info: {
      size: r.size('printk_info'),
      seq: r.offset('printk_info', 'seq'),
      tsNsec: r.offset('printk_info', 'ts_nsec'),
      textLen: r.offset('printk_info', 'text_len'),
      callerId: r.offset('printk_info', 'caller_id'),
      devInfo: r.offset('printk_info', 'dev_info'),
      facility: r.optionalBtfField('printk_info', 'facility'),
      flags: r.optionalBtfField('printk_info', 'flags'),
      level: r.optionalBtfField('printk_info', 'level'),
    },
    devInfo: {
      subsystem: r.offset('dev_printk_info', 'subsystem'),
      subsystemLength: r.length('printk_info_subsystem', 'dev_printk_info', 'subsystem'),
      device: r.offset('dev_printk_info', 'device'),
      deviceLength: r.length('printk_info_device', 'dev_printk_info', 'device'),
    },
    sources: [],
  };
  layout.sources = [...r.sources];
  checkLayout(layout);
  return layout;
}

/** Offsets must fall inside their structs: a forged or garbled VMCOREINFO is refused here. */
function checkLayout(l: PrintkLayout): void {
  const within = (what: string, offset: number, width: number, size: number): void => {
    if (!(offset >= 0 && offset + width <= size)) {
      throw new PrintkLayoutError(`${what} at offset ${offset} (+${width}) lies outside its ${size}-byte struct`);
    }
  };
  const rbSize = l.ringbuffer.size;
  within('printk_ringbuffer.desc_ring.count_bits', l.ringbuffer.descRing + l.descRing.countBits, 4, rbSize);
  within('printk_ringbuffer.desc_ring.descs', l.ringbuffer.descRing + l.descRing.descs, 8, rbSize);
  within('printk_ringbuffer.desc_ring.infos', l.ringbuffer.descRing + l.descRing.infos, 8, rbSize);
  within('printk_ringbuffer.desc_ring.head_id', l.ringbuffer.descRing + l.descRing.headId, 8, rbSize);
  within('printk_ringbuffer.desc_ring.tail_id', l.ringbuffer.descRing + l.descRing.tailId, 8, rbSize);
  within('printk_ringbuffer.text_data_ring.size_bits', l.ringbuffer.textDataRing + l.dataRing.sizeBits, 4, rbSize);
  within('printk_ringbuffer.text_data_ring.data', l.ringbuffer.textDataRing + l.dataRing.data, 8, rbSize);
  within('printk_ringbuffer.text_data_ring.head_lpos', l.ringbuffer.textDataRing + l.dataRing.headLpos, 8, rbSize);
  within('printk_ringbuffer.text_data_ring.tail_lpos', l.ringbuffer.textDataRing + l.dataRing.tailLpos, 8, rbSize);
  within('prb_desc.state_var', l.desc.stateVar, 8, l.desc.size);
  within('prb_desc.text_blk_lpos.begin', l.desc.textBlkLpos + l.blkLpos.begin, 8, l.desc.size);
  within('prb_desc.text_blk_lpos.next', l.desc.textBlkLpos + l.blkLpos.next, 8, l.desc.size);
  within('printk_info.seq', l.info.seq, 8, l.info.size);
  within('printk_info.ts_nsec', l.info.tsNsec, 8, l.info.size);
  within('printk_info.text_len', l.info.textLen, 2, l.info.size);
  within('printk_info.caller_id', l.info.callerId, 4, l.info.size);
  within('printk_info.dev_info.subsystem', l.info.devInfo + l.devInfo.subsystem, l.devInfo.subsystemLength, l.info.size);
  within('printk_info.dev_info.device', l.info.devInfo + l.devInfo.device, l.devInfo.deviceLength, l.info.size);
  for (const [name, f] of [['facility', l.info.facility], ['flags', l.info.flags], ['level', l.info.level]] as const) {
    if (f) within(`printk_info.${name}`, f.offset, 1, l.info.size);
  }
  if (l.desc.size <= 0 || l.info.size <= 0) throw new PrintkLayoutError('zero-sized prb_desc or printk_info');
}
