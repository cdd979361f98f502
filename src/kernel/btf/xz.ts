// .xz decompression for kernel images. The kernel compresses vmlinux with
// `xz --check=crc32 --x86 --lzma2`: a BCJ x86 filter before LZMA2. The WebAssembly decoder we
// use (xz-decompress, xz-embedded without BCJ) handles LZMA2 only, so each block's LZMA2 data
// is re-framed as a filter-less .xz stream (check "none"), decoded, then the x86 branch
// conversion is undone here. Container layout: the .xz file format specification 1.1.0.

import { XzReadableStream } from 'xz-decompress';

export class XzError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XzError';
  }
}

const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC = [0x59, 0x5a];
const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class Reader {
  constructor(
    readonly data: Uint8Array,
    public pos: number,
    readonly end: number,
    readonly what: string,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw new XzError(`${this.what} is truncated`);
    return this.data[this.pos++];
  }

  /** Variable-length integer: 7 bits a byte, at most 9 bytes. */
  vli(): number {
    let value = 0;
    for (let i = 0; i < 9; i++) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    throw new XzError(`${this.what} has an over-long integer`);
  }
}

function encodeVli(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

function padTo4(bytes: number[]): void {
  while (bytes.length % 4 !== 0) bytes.push(0);
}

interface Filter {
  id: number;
  props: Uint8Array;
}

interface Block {
  filters: Filter[];
  compressed: Uint8Array;
  uncompressedSize: number;
}

/** Blocks of a single-stream .xz file, located through its index. */
function parseBlocks(data: Uint8Array): { blocks: Block[]; checkSize: number } {
  if (!MAGIC.every((b, i) => data[i] === b)) throw new XzError('not an .xz stream (bad magic)');
  if (data.length < 24) throw new XzError('.xz stream shorter than its header and footer');
  const checkType = data[7] & 0x0f;
  const checkSize = CHECK_SIZES[checkType];
  // Stream padding (zero 4-byte groups) may follow the footer.
  let end = data.length;
  while (end >= 4 && end % 4 === 0 && data[end - 1] === 0 && data[end - 2] === 0 && data[end - 3] === 0 && data[end - 4] === 0) end -= 4;
  if (data[end - 2] !== FOOTER_MAGIC[0] || data[end - 1] !== FOOTER_MAGIC[1]) throw new XzError('.xz stream footer not found (truncated?)');
  const footer = end - 12;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (crc32(data.subarray(footer + 4, footer + 10)) !== view.getUint32(footer, true)) throw new XzError('.xz stream footer CRC mismatch');
  const indexSize = (view.getUint32(footer + 4, true) + 1) * 4;
  const indexStart = footer - indexSize;
  if (indexStart < 12) throw new XzError('.xz index runs before the stream header');
  const index = new Reader(data, indexStart, footer, '.xz index');
  if (index.byte() !== 0) throw new XzError('.xz index indicator missing');
  const count = index.vli();
  const records: { unpadded: number; uncompressed: number }[] = [];
  for (let i = 0; i < count; i++) records.push({ unpadded: index.vli(), uncompressed: index.vli() });

  const blocks: Block[] = [];
  let pos = 12;
  for (const [i, rec] of records.entries()) {
    const what = `.xz block ${i}`;
    const headerSize = (data[pos] + 1) * 4;
    if (data[pos] === 0 || pos + headerSize > indexStart) throw new XzError(`${what} header is invalid`);
    const header = new Reader(data, pos + 1, pos + headerSize - 4, `${what} header`);
    const flags = header.byte();
    if (flags & 0x3c) throw new XzError(`${what} uses reserved header flags`);
    if (flags & 0x40) header.vli();
    if (flags & 0x80) header.vli();
    const filters: Filter[] = [];
    for (let f = 0; f <= (flags & 3); f++) {
      const id = header.vli();
      const propsSize = header.vli();
      if (header.pos + propsSize > header.end) throw new XzError(`${what} filter properties are truncated`);
      filters.push({ id, props: data.subarray(header.pos, header.pos + propsSize) });
      header.pos += propsSize;
    }
    const compressedSize = rec.unpadded - headerSize - checkSize;
    const start = pos + headerSize;
    if (compressedSize <= 0 || start + compressedSize > indexStart) throw new XzError(`${what} size in the index is inconsistent`);
    blocks.push({ filters, compressed: data.subarray(start, start + compressedSize), uncompressedSize: rec.uncompressed });
    pos += Math.ceil(rec.unpadded / 4) * 4;
  }
  return { blocks, checkSize };
}

/** A complete .xz stream holding one LZMA2-only block, with no integrity check. */
function reframeLzma2(block: Block, lzma2Props: Uint8Array): Uint8Array<ArrayBuffer> {
  const streamFlags = [0x00, 0x00];
  const head = [...MAGIC, ...streamFlags, ...le32(crc32(Uint8Array.from(streamFlags)))];
  const blockHeader = [0, 0x00, ...encodeVli(FILTER_LZMA2), ...encodeVli(lzma2Props.length), ...lzma2Props];
  padTo4(blockHeader);
  blockHeader[0] = (blockHeader.length + 4) / 4 - 1;
  blockHeader.push(...le32(crc32(Uint8Array.from(blockHeader))));
  const unpadded = blockHeader.length + block.compressed.length;
  const padding = (4 - (block.compressed.length % 4)) % 4;
  const index = [0x00, ...encodeVli(1), ...encodeVli(unpadded), ...encodeVli(block.uncompressedSize)];
  padTo4(index);
  index.push(...le32(crc32(Uint8Array.from(index))));
  const footerBody = [...le32(index.length / 4 - 1), ...streamFlags];
  const foot = [...le32(crc32(Uint8Array.from(footerBody))), ...footerBody, ...FOOTER_MAGIC];
  const out = new Uint8Array(head.length + blockHeader.length + block.compressed.length + padding + index.length + foot.length);
  let at = 0;
  for (const part of [head, blockHeader, block.compressed, new Array<number>(padding).fill(0), index, foot]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function decodeXzStream(stream: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const reader = new XzReadableStream(new Blob([stream]).stream()).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const X86_ALLOWED = [true, true, true, false, true, false, false, false];
const X86_BIT_NUM = [0, 1, 2, 2, 3, 3, 3, 3];
const isMsByte = (b: number): boolean => b === 0x00 || b === 0xff;

/**
 * Undoes the BCJ x86 filter in place: CALL/JMP targets go back from absolute to relative.
 * Only bytes 0xE8/0xE9 start a candidate; native indexOf finds them, the rest is skipped.
 */
export function bcjX86Decode(buf: Uint8Array, startOffset = 0): void {
  if (buf.length <= 4) return;
  const limit = buf.length - 4;
  const next = (byte: number, from: number): number => {
    const at = buf.indexOf(byte, from);
    return at < 0 ? Infinity : at;
  };
  let nextE8 = next(0xe8, 0);
  let nextE9 = next(0xe9, 0);
  let prevPos = -1;
  let prevMask = 0;
  for (let i = Math.min(nextE8, nextE9); i < limit; ) {
    const distance = i - prevPos;
    let resume = i + 1;
    let skip = false;
    if (distance > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (distance - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - X86_BIT_NUM[prevMask]];
        if (!X86_ALLOWED[prevMask] || isMsByte(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          skip = true;
        }
      }
    }
    if (!skip) {
      prevPos = i;
      if (isMsByte(buf[i + 4])) {
        let src = (buf[i + 1] | (buf[i + 2] << 8) | (buf[i + 3] << 16) | (buf[i + 4] << 24)) >>> 0;
        let dest: number;
        for (;;) {
          dest = (src - (startOffset + i + 5)) >>> 0;
          if (prevMask === 0) break;
          const j = X86_BIT_NUM[prevMask] * 8;
          if (!isMsByte((dest >>> (24 - j)) & 0xff)) break;
          src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
        }
        dest &= 0x01ffffff;
        if (dest & 0x01000000) dest |= 0xfe000000;
        buf[i + 1] = dest & 0xff;
        buf[i + 2] = (dest >>> 8) & 0xff;
        buf[i + 3] = (dest >>> 16) & 0xff;
        buf[i + 4] = (dest >>> 24) & 0xff;
        resume = i + 5;
      } else {
        prevMask = (prevMask << 1) | 1;
      }
    }
    if (nextE8 < resume) nextE8 = next(0xe8, resume);
    if (nextE9 < resume) nextE9 = next(0xe9, resume);
    i = Math.min(nextE8, nextE9);
  }
}

/** Decompresses a single-stream .xz file whose blocks use LZMA2, optionally after BCJ x86. */
export async function xzDecompress(data: Uint8Array): Promise<Uint8Array> {
  const { blocks } = parseBlocks(data);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const [i, block] of blocks.entries()) {
    const last = block.filters[block.filters.length - 1];
    if (!last || last.id !== FILTER_LZMA2) throw new XzError(`.xz block ${i} does not end in an LZMA2 filter`);
    const pre = block.filters.slice(0, -1);
    if (pre.some((f) => f.id !== FILTER_X86)) {
      throw new XzError(`.xz block ${i} uses filter ${pre.map((f) => '0x' + f.id.toString(16)).join(',')}; only x86 BCJ + LZMA2 is supported`);
    }
    const out = await decodeXzStream(reframeLzma2(block, last.props));
    if (out.length !== block.uncompressedSize) {
      throw new XzError(`.xz block ${i} decoded to ${out.length} bytes, the index says ${block.uncompressedSize}`);
    }
    for (const f of pre) {
      const start = f.props.length === 4 ? new DataView(f.props.buffer, f.props.byteOffset, 4).getUint32(0, true) : 0;
      bcjX86Decode(out, start);
    }
    parts.push(out);
    total += out.length;
  }
  if (parts.length === 1) return parts[0];
  const joined = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return joined;
}
