// Test-only TargetMemory over a testbed guest's RAM file that serves the kernel image's
// addresses and nothing else: enough for the printk ring buffer, which lives in the image
// (printk_rb_static) unless a log_buf_len= or many CPUs make the kernel allocate a bigger one.
// It exists so the log decoder can be checked against real memory independently of the agent,
// which owns real address translation; it walks no page table. The image's virtual-to-physical
// offset is found from memory alone: init_uts_ns (VMCOREINFO gives its virtual address) is
// located in RAM by its contents.

import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { parseVmcoreinfo, type Vmcoreinfo } from '../../src/kernel/vmcoreinfo';
import { TargetReadError, type AddressSpace, type ReadRequest, type TargetMemory } from '../../src/types/target';

const UTS_FIELD = 65; // __NEW_UTS_LEN + 1: sysname, nodename, release, ... each this long

export class ImageMemory implements TargetMemory {
  private constructor(
    private readonly fd: number,
    private readonly fileSize: number,
    /** virtual − physical for the kernel image mapping. */
    private readonly imageDelta: bigint,
    readonly vmcoreinfoText: string,
    readonly vmcoreinfo: Vmcoreinfo,
  ) {}

  /** `ramFile` must map physical addresses 1:1 (q35 guests below 2 GiB of RAM). */
  static open(ramFile: string): ImageMemory {
    const fd = openSync(ramFile, 'r');
    try {
      const size = fstatSync(fd).size;
      const ram = Buffer.alloc(size);
      readSync(fd, ram, 0, size, 0);
      const text = findVmcoreinfo(ram);
      const info = parseVmcoreinfo(text);
      const release = info.values.get('OSRELEASE');
      const utsVirt = info.symbols.get('init_uts_ns');
      const nameOffset = info.offsets.get('uts_namespace.name');
      if (!release || utsVirt === undefined || nameOffset === undefined) {
        throw new Error(`${ramFile}: VMCOREINFO lacks OSRELEASE, SYMBOL(init_uts_ns) or OFFSET(uts_namespace.name)`);
      }
      const nameVirt = utsVirt + BigInt(nameOffset);
      const sysname = Buffer.from('Linux\0');
      for (let at = ram.indexOf(sysname); at >= 0; at = ram.indexOf(sysname, at + 1)) {
        if (BigInt(at % 4096) !== nameVirt % 4096n) continue;
        const rel = ram.subarray(at + 2 * UTS_FIELD, at + 3 * UTS_FIELD);
        if (rel.toString('latin1', 0, release.length) === release && rel[release.length] === 0) {
          return new ImageMemory(fd, size, nameVirt - BigInt(at), text, info);
        }
      }
      throw new Error(`${ramFile}: init_uts_ns (release ${release}) not found in RAM`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  async read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    const r = this.readOne({ space, address, length });
    if (r instanceof TargetReadError) throw r;
    return r;
  }

  async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    return requests.map((r) => this.readOne(r));
  }

  private readOne(r: ReadRequest): Uint8Array | TargetReadError {
    if (r.space.kind !== 'kernel') return new TargetReadError(r.space, r.address, r.length, 'this test memory serves kernel-image addresses only');
    const phys = r.address - this.imageDelta;
    if (phys < 0n || phys + BigInt(r.length) > BigInt(this.fileSize)) {
      return new TargetReadError(r.space, r.address, r.length, 'outside the kernel image mapping this test memory serves');
    }
    const out = Buffer.alloc(r.length);
    readSync(this.fd, out, 0, r.length, Number(phys));
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

/** The VMCOREINFO page's text: starts "OSRELEASE=", NUL-terminated. */
function findVmcoreinfo(ram: Buffer): string {
  const marker = Buffer.from('OSRELEASE=');
  for (let at = ram.indexOf(marker); at >= 0; at = ram.indexOf(marker, at + 1)) {
    const end = ram.indexOf(0, at);
    const text = ram.toString('latin1', at, end);
    if (text.includes('\nSYMBOL(prb)=')) return text;
  }
  throw new Error('no VMCOREINFO text (OSRELEASE=... with SYMBOL(prb)) in RAM');
}
