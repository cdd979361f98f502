// The kdump family: mutants of a kdump-compressed file (makedumpfile's format, written from the
// pristine image by grass save-vmcore --format kdump), each one fed to a fresh agent as
// vmcore:FILE. Where the file's parts are comes from the file's own header (makedumpfile's
// diskdump_mod.h layout, read here apart from the agent's reader); a mutant is a list of byte
// patches, or a cut. Mutant i is drawn from mutantRng(seed, i), as the memory mutants are.
import * as fs from 'node:fs';
import { mutantRng, type Rng } from './mutations';

export interface KdumpParts {
  bytes: number;
  blockSize: number;
  subHeaderAt: number;
  bitmapsAt: number;
  bitmapBytes: number;
  descriptorsAt: number;
  descriptors: number;
  /** Where the first page's data starts (after the descriptors). */
  dataAt: number;
}

export interface KdumpMutant {
  index: number;
  family: string;
  what: string;
  patches: { at: number; bytes: Uint8Array }[];
  /** The file cut to this many bytes. */
  cutTo?: number;
}

export function kdumpParts(file: string): KdumpParts {
  const head = Buffer.alloc(8192);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.subarray(0, 8).toString('latin1') !== 'KDUMP   ') throw new Error(`${file}: not a kdump-compressed file`);
  const blockSize = head.readInt32LE(428);
  const bitmapsAt = blockSize * (1 + head.readInt32LE(432));
  const bitmapBytes = head.readUInt32LE(436) * blockSize;
  const descriptorsAt = bitmapsAt + bitmapBytes;
  const descriptors = head.readUInt32LE(444); // total_ram_blocks: the pages in the file, as grass writes it
  return { bytes: fs.statSync(file).size, blockSize, subHeaderAt: blockSize, bitmapsAt, bitmapBytes, descriptorsAt, descriptors, dataAt: descriptorsAt + 24 * descriptors };
}

function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function u64(v: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

/** A 32-bit value a broken header might hold. */
function wild32(rng: Rng, good: number): { value: number; kind: string } {
  switch (rng.int(5)) {
    case 0: return { value: 0, kind: 'zero' };
    case 1: return { value: 0xffffffff, kind: 'all ones' };
    case 2: return { value: good + 1, kind: 'one more' };
    case 3: return { value: good - 1, kind: 'one less' };
    default: return { value: rng.int(2 ** 32), kind: 'random' };
  }
}

function flips(rng: Rng, from: number, to: number, count: number, read: (at: number) => number): { at: number; bytes: Uint8Array }[] {
  return Array.from({ length: count }, () => {
    const at = from + rng.int(Math.max(1, to - from));
    return { at, bytes: Uint8Array.of(read(at) ^ (1 + rng.int(255))) };
  });
}

const HEADER_FIELDS: [string, number][] = [['header_version', 8], ['status', 424], ['block_size', 428], ['sub_hdr_size', 432], ['bitmap_blocks', 436], ['max_mapnr', 440], ['total_ram_blocks', 444], ['nr_cpus', 460]];
const SUB_HEADER_FIELDS: [string, number][] = [['phys_base', 0], ['dump_level', 8], ['split', 12], ['offset_vmcoreinfo', 32], ['size_vmcoreinfo', 40], ['offset_note', 48], ['size_note', 56], ['start_pfn_64', 80], ['end_pfn_64', 88], ['max_mapnr_64', 96]];

export const KDUMP_FAMILIES = ['kdump-header', 'kdump-sub-header', 'kdump-bitmaps', 'kdump-descriptors', 'kdump-pages', 'kdump-cut'];

/** Mutant `index` of the run with this seed, on a file with these parts (read: its pristine bytes). */
export function kdumpMutant(seed: number, index: number, parts: KdumpParts, read: (at: number, n: number) => Buffer): KdumpMutant {
  const rng = mutantRng(seed, index);
  const family = KDUMP_FAMILIES[rng.int(KDUMP_FAMILIES.length)];
  const byte = (at: number): number => read(at, 1)[0];
  switch (family) {
    case 'kdump-header': {
      const [name, at] = rng.pick(HEADER_FIELDS);
      const w = wild32(rng, read(at, 4).readUInt32LE());
      return { index, family, what: `disk_dump_header.${name} ${w.kind} (0x${w.value.toString(16)})`, patches: [{ at, bytes: u32(w.value) }] };
    }
    case 'kdump-sub-header': {
      const [name, off] = rng.pick(SUB_HEADER_FIELDS);
      const at = parts.subHeaderAt + off;
      const good = read(at, 8).readBigUInt64LE();
      const value = [0n, ~0n, good + 1n, BigInt(parts.bytes) * 2n, (BigInt(rng.int(2 ** 32)) << 32n) | BigInt(rng.int(2 ** 32))][rng.int(5)];
      const patch = name === 'dump_level' || name === 'split' ? u32(Number(value & 0xffffffffn)) : u64(value);
      return { index, family, what: `kdump_sub_header.${name} = 0x${BigInt.asUintN(patch.length * 8, value).toString(16)}`, patches: [{ at, bytes: patch }] };
    }
    case 'kdump-bitmaps': {
      const n = 1 + rng.int(32);
      return { index, family, what: `${n} byte flips in the bitmaps`, patches: flips(rng, parts.bitmapsAt, parts.descriptorsAt, n, byte) };
    }
    case 'kdump-descriptors': {
      const k = rng.int(parts.descriptors);
      const at = parts.descriptorsAt + 24 * k;
      const field = rng.pick(['offset', 'size', 'flags'] as const);
      if (field === 'offset') {
        const value = [0n, BigInt(parts.bytes), BigInt(parts.bytes) - 8n, ~0n, BigInt(parts.dataAt + rng.int(Math.max(1, parts.bytes - parts.dataAt)))][rng.int(5)];
        return { index, family, what: `page descriptor ${k}: offset 0x${BigInt.asUintN(64, value).toString(16)}`, patches: [{ at, bytes: u64(value) }] };
      }
      if (field === 'size') {
        const value = [0, 1, parts.blockSize + 1, 0xffffffff, rng.int(2 ** 32)][rng.int(5)];
        return { index, family, what: `page descriptor ${k}: size ${value >>> 0}`, patches: [{ at: at + 8, bytes: u32(value) }] };
      }
      const value = [0, 0x1, 0x2, 0x4, 0x20, 0x27, rng.int(2 ** 32)][rng.int(7)];
      return { index, family, what: `page descriptor ${k}: flags 0x${(value >>> 0).toString(16)}`, patches: [{ at: at + 12, bytes: u32(value) }] };
    }
    case 'kdump-pages': {
      const n = 1 + rng.int(32);
      return { index, family, what: `${n} byte flips in the compressed pages`, patches: flips(rng, parts.dataAt, parts.bytes, n, byte) };
    }
    default: {
      const cutTo = rng.int(parts.bytes);
      return { index, family, what: `cut to ${cutTo} of ${parts.bytes} bytes`, patches: [], cutTo };
    }
  }
}

/** Writes the mutant's file: the pristine one copied, patched (or cut). */
export function writeKdumpMutant(pristine: string, out: string, m: KdumpMutant): void {
  if (m.cutTo !== undefined) {
    const fd = fs.openSync(out, 'w');
    const src = fs.openSync(pristine, 'r');
    try {
      const chunk = Buffer.alloc(1 << 22);
      for (let at = 0; at < m.cutTo; ) {
        const n = fs.readSync(src, chunk, 0, Math.min(chunk.length, m.cutTo - at), at);
        if (n <= 0) break;
        fs.writeSync(fd, chunk, 0, n, at);
        at += n;
      }
    } finally {
      fs.closeSync(src);
      fs.closeSync(fd);
    }
    return;
  }
  fs.copyFileSync(pristine, out);
  const fd = fs.openSync(out, 'r+');
  try {
    for (const p of m.patches) fs.writeSync(fd, p.bytes, 0, p.bytes.length, p.at);
  } finally {
    fs.closeSync(fd);
  }
}
