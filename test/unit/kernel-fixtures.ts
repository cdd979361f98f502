// Shared by the kernel-model unit tests: a memory image (pages of bytes at kernel addresses,
// unmapped elsewhere) served through the TargetMemory interface with every readBatch counted,
// and a model over it. The image is test data; the code under test is the model reading it.
import { Btf } from '../../src/kernel/btf/btf';
import { KernelModel } from '../../src/kernel/model';
import { SymbolTable } from '../../src/kernel/symbols/symbols';
import { TargetReadError, type AddressSpace, type KernelSymbol, type ReadRequest, type TargetMemory } from '../../src/types/target';

export class ImageMemory implements TargetMemory {
  /** Mapped pages; those never written read as zeros and take no memory. */
  private readonly mapped = new Set<bigint>();
  private readonly pages = new Map<bigint, Uint8Array>();
  batches = 0;
  reads = 0;

  /** Maps (zero-filled) pages covering [address, address+length). */
  map(address: bigint, length: number): void {
    for (let p = address & ~4095n; p < address + BigInt(length); p += 4096n) this.mapped.add(p);
  }

  unmap(address: bigint): void {
    this.mapped.delete(address & ~4095n);
    this.pages.delete(address & ~4095n);
  }

  write(address: bigint, bytes: Uint8Array): void {
    this.map(address, bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      const a = address + BigInt(i);
      const base = a & ~4095n;
      let page = this.pages.get(base);
      if (!page) this.pages.set(base, (page = new Uint8Array(4096)));
      page[Number(a & 4095n)] = bytes[i];
    }
  }

  u64(address: bigint, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(address, b);
  }

  u32(address: bigint, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(address, b);
  }

  u8(address: bigint, value: number): void {
    this.write(address, Uint8Array.of(value));
  }

  async read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    this.reads++;
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const a = address + BigInt(at);
      const base = a & ~4095n;
      if (!this.mapped.has(base)) throw new TargetReadError(space, address, length, `address 0x${a.toString(16)} is not mapped`);
      const from = Number(a & 4095n);
      const n = Math.min(length - at, 4096 - from);
      const page = this.pages.get(base);
      if (page) out.set(page.subarray(from, from + n), at);
      at += n;
    }
    return out;
  }

  async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    this.batches++;
    return Promise.all(requests.map((r) => this.read(r.space, r.address, r.length).catch((e: TargetReadError) => e)));
  }
}

export function modelOver(btf: Btf, memory: ImageMemory, symbols: KernelSymbol[] = [], maxListLength?: number): KernelModel {
  return new KernelModel(btf, new SymbolTable(symbols), memory, undefined, { maxListLength });
}

/** A bump allocator of kernel-looking addresses for building images. */
export class Allocator {
  constructor(private next = 0xffff888000100000n) {}

  alloc(size: number, align = 64): bigint {
    const a = BigInt(align);
    this.next = (this.next + a - 1n) & ~(a - 1n);
    const at = this.next;
    this.next += BigInt(size);
    return at;
  }
}
