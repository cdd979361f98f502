// Typed kernel objects with drgn-like navigation, named after kernel idioms: an object of a
// type at an address, member, index, deref, container_of, per_cpu. Navigation only computes
// addresses; bytes are read (through the request's MemoryReader) when a value is asked for.

import type { Btf } from '../btf/btf';
import type { KernelModel } from '../model';
import type { SymbolTable } from '../symbols/symbols';
import { TargetReadError } from '../../types/target';
import type { MemoryReader } from './reader';

export class ObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectError';
  }
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;
const MASK64 = (1n << 64n) - 1n;

/** One request's view of the kernel: the model plus a read cache that lives as long as the request. */
export class Kernel {
  readonly btf: Btf;
  readonly symbols: SymbolTable;
  private perCpuOffsets = new Map<number, bigint>();

  constructor(
    readonly model: KernelModel,
    readonly reader: MemoryReader = model.reader(),
  ) {
    this.btf = model.btf;
    this.symbols = model.symbols;
  }

  /** An object of a type (id or C spelling) at an address. */
  object(type: number | string, address: bigint, expression?: string): KObject {
    const id = typeof type === 'number' ? type : this.model.typeId(type);
    return new KObject(this, id, { address: address & MASK64 }, expression ?? `*(${this.btf.typeName(id)} *)${hex(address)}`);
  }

  /** An rvalue: a value of a type that lives nowhere in memory (a pointer computed by `&x`). */
  value(type: number, value: bigint, expression: string): KObject {
    return new KObject(this, type, { value: value & MASK64 }, expression);
  }

  /** A global variable by name, typed from BTF (or the model's table of well-known globals). */
  variable(name: string): KObject {
    const address = this.symbols.address(name);
    const type = this.model.variableType(name);
    if (type === undefined) {
      // Untyped symbols are still addressable: `&sym` and casts work on them.
      return new KObject(this, 0, { address }, name);
    }
    return new KObject(this, type, { address }, name);
  }

  /** __per_cpu_offset[cpu]: add it to a per-CPU variable's address to get that CPU's copy. */
  async perCpuOffset(cpu: number): Promise<bigint> {
    const cached = this.perCpuOffsets.get(cpu);
    if (cached !== undefined) return cached;
    const count = await this.cpuCount();
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= count) throw new ObjectError(`cpu ${cpu} out of range (the target has ${count} CPU ids)`);
    const base = this.symbols.address('__per_cpu_offset');
    const offset = await this.reader.u64(base + BigInt(cpu) * 8n);
    this.perCpuOffsets.set(cpu, offset);
    return offset;
  }

  private cpuCountValue: number | undefined;
  /** nr_cpu_ids, read from the target. */
  async cpuCount(): Promise<number> {
    if (this.cpuCountValue === undefined) {
      const nrCpuIds = this.variable('nr_cpu_ids');
      const v = await nrCpuIds.readInt();
      if (v <= 0n || v > 1n << 16n) throw new ObjectError(`nr_cpu_ids at ${hex(nrCpuIds.address!)} reads ${v}: implausible (corrupt memory?)`);
      // Every CPU's offset in one round: walks over the CPUs then cost no round trip each
      // (a corrupt nr_cpu_ids of thousands must not cost thousands of round trips).
      await this.reader.prefetch([{ address: this.symbols.address('__per_cpu_offset'), length: Number(v) * 8 }]);
      this.cpuCountValue = Number(v);
    }
    return this.cpuCountValue;
  }

  /** per_cpu(var, cpu): the given CPU's copy of a per-CPU object (lvalue) or pointer. */
  async perCpu(obj: KObject, cpu: number): Promise<KObject> {
    const offset = await this.perCpuOffset(cpu);
    if (obj.address !== undefined) {
      return new KObject(this, obj.typeId, { address: (obj.address + offset) & MASK64 }, `per_cpu(${obj.expression}, ${cpu})`);
    }
    const t = this.btf.resolve(obj.typeId);
    if (t.kind !== 'ptr') throw new ObjectError(`per_cpu(${obj.expression}, ${cpu}): needs a per-CPU variable or pointer, got ${this.btf.typeName(obj.typeId)}`);
    const ptr = await obj.readInt();
    return new KObject(this, t.type, { address: (ptr + offset) & MASK64 }, `per_cpu_ptr(${obj.expression}, ${cpu})`);
  }
}

interface Location {
  address?: bigint;
  /** Value of an rvalue (int or pointer). */
  value?: bigint;
  /** Bitfields: bit offset from `address` and width. */
  bitOffset?: number;
  bitSize?: number;
}

export class KObject {
  readonly address: bigint | undefined;
  readonly bitOffset: number;
  readonly bitSize: number;
  private readonly rvalue: bigint | undefined;

  constructor(
    readonly kernel: Kernel,
    readonly typeId: number,
    location: Location,
    /** How this object was reached, for error messages (`init_task.tasks.next`). */
    readonly expression: string,
  ) {
    this.address = location.address;
    this.rvalue = location.value;
    this.bitOffset = location.bitOffset ?? 0;
    this.bitSize = location.bitSize ?? 0;
  }

  get btf(): Btf {
    return this.kernel.btf;
  }

  get typeName(): string {
    return this.btf.typeName(this.typeId);
  }

  /** The type with typedefs and qualifiers stripped. */
  get resolved(): ReturnType<Btf['resolve']> {
    return this.btf.resolve(this.typeId);
  }

  get size(): number {
    return this.btf.sizeof(this.typeId);
  }

  private where(): string {
    return this.address !== undefined ? ` at ${hex(this.address)}` : '';
  }

  fail(message: string): ObjectError {
    return new ObjectError(`${this.expression} (${this.safeTypeName()}${this.where()}): ${message}`);
  }

  private safeTypeName(): string {
    try {
      return this.typeName;
    } catch {
      return `type ${this.typeId}`;
    }
  }

  /** obj.name — looks through anonymous structs/unions; a pointer is followed as by `->`. */
  async member(name: string): Promise<KObject> {
    const t = this.resolved;
    if (t.kind === 'ptr') return (await this.deref()).member(name);
    return this.memberOf(name);
  }

  /** obj.name on a struct/union lvalue (no read needed). */
  memberOf(name: string): KObject {
    const t = this.resolved;
    if (t.kind !== 'struct' && t.kind !== 'union') throw this.fail(`has no members (it is ${t.kind === 'void' ? 'untyped' : `a ${t.kind}`}); cannot take .${name}`);
    if (this.address === undefined) throw this.fail(`is not in memory; cannot take .${name}`);
    const found = this.btf.findMember(this.typeId, name);
    if (!found) throw this.fail(`has no member '${name}'`);
    const bits = this.bitOffset + found.bitsOffset;
    const expression = `${this.expression}.${name}`;
    if (found.member.bitfieldSize > 0) {
      return new KObject(this.kernel, found.member.type, { address: this.address, bitOffset: bits, bitSize: found.member.bitfieldSize }, expression);
    }
    if (bits % 8 !== 0) throw this.fail(`member '${name}' is at bit offset ${bits}, not on a byte`);
    return new KObject(this.kernel, found.member.type, { address: this.address + BigInt(bits / 8) }, expression);
  }

  /** A member path like `tasks.next` or `se.avg.load_avg`, following pointers where needed. */
  async path(dotted: string): Promise<KObject> {
    let obj: KObject = this;
    for (const part of dotted.split('.')) obj = await obj.member(part);
    return obj;
  }

  /** obj[i] for arrays (lvalue) and pointers (reads the pointer). */
  async index(i: number | bigint): Promise<KObject> {
    const n = BigInt(i);
    const t = this.resolved;
    if (t.kind === 'array') {
      if (this.address === undefined) throw this.fail('array is not in memory');
      if (t.nelems > 0 && (n < 0n || n >= BigInt(t.nelems))) throw this.fail(`index ${n} out of bounds [0, ${t.nelems})`);
      const elemSize = BigInt(this.btf.sizeof(t.type));
      return new KObject(this.kernel, t.type, { address: this.address + n * elemSize }, `${this.expression}[${n}]`);
    }
    if (t.kind === 'ptr') {
      const base = await this.readInt();
      if (base === 0n) throw this.fail('NULL pointer indexed');
      const elemSize = BigInt(this.btf.sizeof(t.type));
      return new KObject(this.kernel, t.type, { address: (base + n * elemSize) & MASK64 }, `${this.expression}[${n}]`);
    }
    throw this.fail('cannot be indexed (not an array or pointer)');
  }

  /** *ptr: the object a pointer points at. */
  async deref(): Promise<KObject> {
    const t = this.resolved;
    if (t.kind === 'array') return this.index(0);
    if (t.kind !== 'ptr') throw this.fail('cannot be dereferenced (not a pointer)');
    const target = await this.readInt();
    if (target === 0n) throw this.fail('NULL pointer dereferenced');
    return new KObject(this.kernel, t.type, { address: target }, `(*${this.expression})`);
  }

  /** &obj: a pointer value to this object. */
  addressOf(): KObject {
    if (this.address === undefined || this.bitSize > 0) throw this.fail('has no address');
    const ptr = this.kernel.model.pointerTo(this.typeId);
    return this.kernel.value(ptr, this.address, `&${this.expression}`);
  }

  /** (type)obj: a pointer or integer value reinterpreted, or an lvalue retyped in place. */
  async cast(type: number | string): Promise<KObject> {
    const id = typeof type === 'number' ? type : this.kernel.model.typeId(type);
    const target = this.btf.resolve(id);
    const expression = `(${this.btf.typeName(id)})${this.expression}`;
    if (target.kind === 'ptr' || target.kind === 'int' || target.kind === 'enum' || target.kind === 'enum64') {
      const from = this.resolved;
      const v = from.kind === 'array' || from.kind === 'struct' || from.kind === 'union' || from.kind === 'void' ? this.lvalueAddress() : await this.readInt();
      return this.kernel.value(id, v, expression);
    }
    if (this.address === undefined) throw this.fail(`cannot be cast to ${this.btf.typeName(id)} (not in memory)`);
    return new KObject(this.kernel, id, { address: this.address }, expression);
  }

  private lvalueAddress(): bigint {
    if (this.address === undefined) throw this.fail('has no address');
    return this.address;
  }

  /**
   * container_of(ptr, type, member): a pointer to the enclosing object of the member this
   * pointer (or list_head lvalue) points at, as the kernel macro (and drgn) return it.
   */
  async containerOf(type: number | string, memberPath: string): Promise<KObject> {
    const id = typeof type === 'number' ? type : this.kernel.model.typeId(type);
    const t = this.resolved;
    const ptr = t.kind === 'ptr' ? await this.readInt() : this.lvalueAddress();
    const offset = memberOffset(this.btf, id, memberPath, this.expression);
    const pointerType = this.kernel.model.pointerTo(id);
    return this.kernel.value(pointerType, (ptr - BigInt(offset)) & MASK64, `container_of(${this.expression}, ${this.btf.typeName(id)}, ${memberPath})`);
  }

  /** Raw bytes of the object. */
  async bytes(): Promise<Uint8Array> {
    if (this.address === undefined) throw this.fail('is a value, not in memory');
    try {
      return await this.kernel.reader.read(this.address, this.size);
    } catch (err) {
      if (err instanceof TargetReadError) throw this.fail(`unreadable: ${err.message}`);
      throw err;
    }
  }

  /** The value of an integer, enum, pointer or bitfield (as an unsigned/signed bigint). */
  async readInt(): Promise<bigint> {
    if (this.rvalue !== undefined) return this.signExtend(this.rvalue);
    if (this.address === undefined) throw this.fail('has no value');
    const t = this.resolved;
    if (t.kind !== 'int' && t.kind !== 'ptr' && t.kind !== 'enum' && t.kind !== 'enum64') {
      throw this.fail(`is not an integer or pointer (it is ${t.kind === 'void' ? 'untyped' : `a ${t.kind}`})`);
    }
    let raw: bigint;
    if (this.bitSize > 0) {
      const firstByte = Math.floor(this.bitOffset / 8);
      const span = Math.ceil((this.bitOffset % 8 + this.bitSize) / 8);
      const b = await this.readAt(this.address + BigInt(firstByte), span);
      raw = extractBits(b, this.bitOffset % 8, this.bitSize);
      return t.kind === 'int' && t.signed ? BigInt.asIntN(this.bitSize, raw) : raw;
    }
    const size = this.size;
    const b = await this.readAt(this.address, size);
    raw = littleEndianInt(b);
    return this.signExtend(raw);
  }

  private signExtend(raw: bigint): bigint {
    const t = this.resolved;
    if ((t.kind === 'int' || t.kind === 'enum' || t.kind === 'enum64') && t.signed) return BigInt.asIntN(t.size * 8, raw);
    return raw;
  }

  private async readAt(address: bigint, length: number): Promise<Uint8Array> {
    try {
      return await this.kernel.reader.read(address, length);
    } catch (err) {
      if (err instanceof TargetReadError) throw this.fail(`unreadable: ${err.message}`);
      throw err;
    }
  }

  /** A char array or char pointer as a string (up to the NUL, at most `max` bytes). */
  async string(max = 4096): Promise<string> {
    const t = this.resolved;
    let bytes: Uint8Array;
    if (t.kind === 'array') bytes = await this.bytes();
    else if (t.kind === 'ptr') {
      const p = await this.readInt();
      if (p === 0n) throw this.fail('NULL string pointer');
      bytes = await readCString(this.kernel, p, max, this);
    } else throw this.fail('is not a char array or pointer');
    const nul = bytes.indexOf(0);
    return new TextDecoder('utf-8', { fatal: false }).decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
  }
}

async function readCString(kernel: Kernel, address: bigint, max: number, obj: KObject): Promise<Uint8Array> {
  const out: number[] = [];
  // Read up to the end of each page at a time: the string may end just before an unmapped page.
  let at = address;
  while (out.length < max) {
    const n = Math.min(max - out.length, Number(4096n - (at & 4095n)));
    let chunk: Uint8Array;
    try {
      chunk = await kernel.reader.read(at, n);
    } catch (err) {
      if (err instanceof TargetReadError) throw obj.fail(`string at ${hex(address)} unreadable: ${err.message}`);
      throw err;
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      out.push(...chunk.subarray(0, nul));
      return Uint8Array.from(out);
    }
    out.push(...chunk);
    at += BigInt(n);
  }
  return Uint8Array.from(out);
}

export function littleEndianInt(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** Bits [bitOffset, bitOffset+bitSize) of little-endian bytes (BTF bit offsets on x86). */
export function extractBits(b: Uint8Array, bitOffset: number, bitSize: number): bigint {
  return (littleEndianInt(b) >> BigInt(bitOffset)) & ((1n << BigInt(bitSize)) - 1n);
}

/** Byte offset of a (dotted) member path inside a type, e.g. `pid_links` or `se.run_node`. */
export function memberOffset(btf: Btf, typeId: number, memberPath: string, context: string): number {
  let bits = 0;
  let current = typeId;
  for (const part of memberPath.split('.')) {
    const arr = /^(\w+)\[(\d+)\]$/.exec(part);
    const name = arr ? arr[1] : part;
    const found = btf.findMember(current, name);
    if (!found) throw new ObjectError(`${context}: ${btf.typeName(current)} has no member '${name}'`);
    bits += found.bitsOffset;
    current = found.member.type;
    if (arr) {
      const t = btf.resolve(current);
      if (t.kind !== 'array') throw new ObjectError(`${context}: ${name} is not an array`);
      bits += Number(arr[2]) * btf.sizeof(t.type) * 8;
      current = t.type;
    }
  }
  if (bits % 8 !== 0) throw new ObjectError(`${context}: member ${memberPath} is a bitfield`);
  return bits / 8;
}
