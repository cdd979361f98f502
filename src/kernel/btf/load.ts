// Finding a kernel's BTF in what users have: a raw blob (/sys/kernel/btf/vmlinux), an ELF
// (vmlinux, a module .ko) with a .BTF section, or a compressed bzImage (/boot/vmlinuz-*:
// gzip, xz on Debian 6.1, zstd on 6.12).

import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { Btf, BtfError, type BtfOptions } from './btf';
import { xzDecompress } from './xz';

export type BtfContainer = 'raw' | 'elf' | 'bzImage';

export interface LoadedBtf {
  btf: Btf;
  container: BtfContainer;
  /** Compression of a bzImage payload ('none' otherwise). */
  compression: 'none' | 'gzip' | 'xz' | 'zstd';
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

function startsWith(data: Uint8Array, magic: number[], at = 0): boolean {
  if (data.length < at + magic.length) return false;
  return magic.every((b, i) => data[at + i] === b);
}

export function isRawBtf(data: Uint8Array): boolean {
  return data.length >= 2 && ((data[0] === 0x9f && data[1] === 0xeb) || (data[0] === 0xeb && data[1] === 0x9f));
}

export function isElf(data: Uint8Array): boolean {
  return startsWith(data, ELF_MAGIC);
}

/** The bytes of an ELF section by name, or undefined when the ELF has none. */
export function elfSection(elf: Uint8Array, wanted: string, source = 'ELF'): Uint8Array | undefined {
  const fail = (why: string): never => {
    throw new BtfError(`${source}: ${why}`);
  };
  if (!isElf(elf)) fail('not an ELF file');
  const is64 = elf[4] === 2;
  if (elf[4] !== 1 && !is64) fail(`unknown ELF class ${elf[4]}`);
  const le = elf[5] === 1;
  if (elf[5] !== 1 && elf[5] !== 2) fail(`unknown ELF data encoding ${elf[5]}`);
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const need = is64 ? 0x40 : 0x34;
  if (elf.length < need) fail('truncated ELF header');
  const word = (off: number): number => (is64 ? Number(v.getBigUint64(off, le)) : v.getUint32(off, le));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = v.getUint16(is64 ? 0x3a : 0x2e, le);
  const shnum = v.getUint16(is64 ? 0x3c : 0x30, le);
  const shstrndx = v.getUint16(is64 ? 0x3e : 0x32, le);
  const minEnt = is64 ? 0x40 : 0x28;
  if (shnum === 0) return undefined;
  if (shentsize < minEnt || shoff + shnum * shentsize > elf.length) fail('section header table runs past the end of the file');
  if (shstrndx >= shnum) fail(`section name table index ${shstrndx} out of range`);
  const section = (i: number): { name: number; offset: number; size: number; type: number } => {
    const at = shoff + i * shentsize;
    return {
      name: v.getUint32(at, le),
      type: v.getUint32(at + 4, le),
      offset: word(at + (is64 ? 0x18 : 0x10)),
      size: word(at + (is64 ? 0x20 : 0x14)),
    };
  };
  const names = section(shstrndx);
  if (names.offset + names.size > elf.length) fail('section name table runs past the end of the file');
  const wantedBytes = new TextEncoder().encode(wanted + '\0');
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameAt = names.offset + s.name;
    if (s.name + wantedBytes.length > names.size) continue;
    if (!wantedBytes.every((b, k) => elf[nameAt + k] === b)) continue;
    const SHT_NOBITS = 8;
    if (s.type === SHT_NOBITS) fail(`section ${wanted} has no bytes in the file`);
    if (s.offset + s.size > elf.length) fail(`section ${wanted} (offset ${s.offset}, ${s.size} bytes) runs past the end of the file`);
    return elf.subarray(s.offset, s.offset + s.size);
  }
  return undefined;
}

/**
 * The compressed kernel inside a bzImage, located through the boot protocol header
 * (payload_offset/payload_length, boot protocol ≥ 2.08), without the 4-byte size the kernel
 * build appends to it.
 */
function bzImagePayload(image: Uint8Array, source: string): Uint8Array {
  const fail = (why: string): never => {
    throw new BtfError(`${source}: ${why}`);
  };
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 0x250) fail('too short for a bzImage');
  const version = v.getUint16(0x206, true);
  if (version < 0x208) fail(`boot protocol ${version >> 8}.${version & 0xff} has no payload fields (need ≥ 2.08)`);
  const setupSects = image[0x1f1] || 4;
  const payloadOffset = v.getUint32(0x248, true);
  const payloadLength = v.getUint32(0x24c, true);
  const start = (setupSects + 1) * 512 + payloadOffset;
  if (payloadLength < 4 || start + payloadLength > image.length) fail('compressed payload runs past the end of the file');
  return image.subarray(start, start + payloadLength - 4);
}

function bzImagePayloadEnd(image: Uint8Array): number {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  return ((image[0x1f1] || 4) + 1) * 512 + v.getUint32(0x248, true) + v.getUint32(0x24c, true);
}

/** zstd through zstddec (the reference decoder compiled to WebAssembly; ESM-only, so loaded lazily). */
async function zstdDecompress(data: Uint8Array, size: number): Promise<Uint8Array> {
  const { ZSTDDecoder } = await import('zstddec');
  const decoder = new ZSTDDecoder();
  await decoder.init();
  return decoder.decode(data, size);
}

function isBzImage(data: Uint8Array): boolean {
  return data.length > 0x206 && startsWith(data, [0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
}

/** Parses BTF from a raw blob, an ELF's .BTF section, or a compressed bzImage. */
export async function loadBtfFromBytes(data: Uint8Array, options: BtfOptions = {}): Promise<LoadedBtf> {
  const source = options.source ?? 'BTF';
  if (isRawBtf(data)) return { btf: new Btf(data, options), container: 'raw', compression: 'none' };
  if (isElf(data)) return { btf: btfFromElf(data, options, source), container: 'elf', compression: 'none' };
  if (isBzImage(data)) {
    const { elf, compression } = await decompressBzImage(data, source);
    return { btf: btfFromElf(elf, options, source), container: 'bzImage', compression };
  }
  throw new BtfError(`${source}: neither raw BTF, an ELF with .BTF, nor a bzImage`);
}

/** The vmlinux ELF inside a bzImage, and how it was compressed. */
export async function decompressBzImage(data: Uint8Array, source = 'bzImage'): Promise<{ elf: Uint8Array; compression: LoadedBtf['compression'] }> {
  if (!isBzImage(data)) throw new BtfError(`${source}: not a bzImage (no HdrS boot header)`);
  const payload = bzImagePayload(data, source);
  // The kernel build appends the uncompressed size (le32) after the payload.
  const end = bzImagePayloadEnd(data);
  const expectedSize = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(end - 4, true);
  let compression: LoadedBtf['compression'];
  let elf: Uint8Array;
  try {
    if (startsWith(payload, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) {
      compression = 'xz';
      elf = await xzDecompress(payload);
    } else if (startsWith(payload, [0x28, 0xb5, 0x2f, 0xfd])) {
      compression = 'zstd';
      elf = await zstdDecompress(payload, expectedSize);
    } else if (startsWith(payload, [0x1f, 0x8b])) {
      compression = 'gzip';
      elf = gunzipSync(payload);
    } else {
      const magic = Array.from(payload.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new BtfError(`${source}: bzImage payload compressed with an unsupported method (magic ${magic}; gzip, xz and zstd are supported)`);
    }
  } catch (err) {
    if (err instanceof BtfError) throw err;
    throw new BtfError(`${source}: decompressing the bzImage payload failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isElf(elf)) throw new BtfError(`${source}: the decompressed bzImage payload is not an ELF vmlinux`);
  return { elf, compression };
}

function btfFromElf(elf: Uint8Array, options: BtfOptions, source: string): Btf {
  const section = elfSection(elf, '.BTF', source);
  if (!section) throw new BtfError(`${source}: ELF has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?)`);
  // Copy so the (possibly 60+ MB) decompressed ELF can be freed.
  return new Btf(section.slice(), { ...options, source: `${source} .BTF` });
}

export async function loadBtfFile(path: string, options: Omit<BtfOptions, 'source'> = {}): Promise<LoadedBtf> {
  let data: Uint8Array;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new BtfError(`${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return loadBtfFromBytes(data, { ...options, source: path });
}
