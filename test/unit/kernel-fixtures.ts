// Shared by the kernel-model unit tests: a memory image (pages of bytes at kernel addresses,
// unmapped elsewhere) served through the TargetMemory interface with every readBatch counted,
// and a model over it. The image is test data; the code under test is the model reading it.
import { Btf } from '../../src/kernel/btf/btf';
import { KernelModel } from '../../src/kernel/model';
import { SymbolTable } from '../../src/kernel/symbols/symbols';
import { TargetReadError, type AddressSpace, type KernelSymbol, type ReadRequest, type TargetMemory } from '../../src/kernel/target';

export class ImageMemory implements TargetMemory {
  readonly pages = new Map<bigint, Uint8Array>();
  batches = 0;
  reads = 0;

  /** Maps (zero-filled) pages covering [address, address+length). */
  map(address: bigint, length: number): void {
    for (let p = address & ~4095n; p < address + BigInt(length); p += 4096n) if (!this.pages.has(p)) this.pages.set(p, new Uint8Array(4096));
  }

  unmap(address: bigint): void {
    this.pages.delete(address & ~4095n);
  }

  write(address: bigint, bytes: Uint8Array): void {
    this.map(address, bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      const a = address + BigInt(i);
      this.pages.get(a & ~4095n)![Number(a & 4095n)] = bytes[i];
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

  async read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    this.reads++;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const a = address + BigInt(i);
      const page = this.pages.get(a & ~4095n);
      if (!page) throw new TargetReadError(space, address, length, `address 0x${a.toString(16)} is not mapped`);
      out[i] = page[Number(a & 4095n)];
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
