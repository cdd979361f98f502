// What a target is to every layer: its description and one-sided memory reads. The kernel
// model reads through TargetMemory; the GRASS protocol client (src/rdma/) and the test fixtures
// implement it, so it lives below both (the model never sees transports).

export type AddressSpace =
  | { kind: 'physical' }
  | { kind: 'kernel' }
  | { kind: 'user'; pid: number };

export interface MemoryMapRange {
  physStart: bigint;
  length: bigint;
}

export interface KernelSymbol {
  name: string;
  address: bigint;
  /** kallsyms type letter ('T', 'D', 'b', ...). */
  type: string;
}

/** Published by the agent at start; fetched by the remote in one go. */
export interface TargetDescription {
  release: string;
  /** KASLR slide of the kernel image (0 without KASLR). */
  kaslrOffset: bigint;
  physBase: bigint;
  pageOffsetBase: bigint;
  /** Physical address of the kernel's top-level page table. */
  pageTableRoot: bigint;
  pagingLevels: 4 | 5;
  memoryMap: MemoryMapRange[];
  symbols: KernelSymbol[];
  /** Raw .BTF blob of vmlinux. */
  btf: Uint8Array;
  /** VMCOREINFO text as found in the target's memory ('' when absent). */
  vmcoreinfo: string;
}

export class TargetReadError extends Error {
  constructor(
    readonly space: AddressSpace,
    readonly address: bigint,
    readonly length: number,
    readonly reason: string,
  ) {
    super(`read of ${length} bytes at ${describeSpace(space)} 0x${address.toString(16)} failed: ${reason}`);
    this.name = 'TargetReadError';
  }
}

export function describeSpace(space: AddressSpace): string {
  return space.kind === 'user' ? `user(pid ${space.pid})` : space.kind;
}

export interface ReadRequest {
  space: AddressSpace;
  address: bigint;
  length: number;
}

export interface TargetMemory {
  /** Throws TargetReadError naming the address when any byte is unreadable. */
  read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array>;
  /** Many reads in as few round trips as the transport allows; one failure does not sink the rest. */
  readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]>;
}
