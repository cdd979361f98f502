// BTF parser. One pass at load indexes where each type record starts and checks every record's
// bounds and every type reference, so later lookups cannot run off the blob or loop; records
// and strings are decoded only when asked for. Follows include/uapi/linux/btf.h.

import {
  BTF_KIND_NAMES,
  BTF_VOID,
  type BtfComposite,
  type BtfLinkage,
  type BtfMember,
  type BtfRefType,
  type BtfType,
  type BtfTypeOrVoid,
} from './types';

export class BtfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BtfError';
  }
}

const BTF_MAGIC = 0xeb9f;
const HEADER_MIN = 24;
const TYPE_RECORD = 12;
/** Ids of pointer types derived on demand (pointerTo) start here, above any real BTF id. */
const DERIVED_BASE = 0x80000000;
/** Longest typedef/qualifier/array chain followed before declaring the BTF cyclic. */
const MAX_CHAIN = 64;

const K = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Bytes that follow the 12-byte common record, by kind. */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case K.INT:
    case K.VAR:
    case K.DECL_TAG:
      return 4;
    case K.ARRAY:
      return 12;
    case K.STRUCT:
    case K.UNION:
    case K.DATASEC:
    case K.ENUM64:
      return 12 * vlen;
    case K.ENUM:
    case K.FUNC_PROTO:
      return 8 * vlen;
    case K.PTR:
    case K.FWD:
    case K.TYPEDEF:
    case K.VOLATILE:
    case K.CONST:
    case K.RESTRICT:
    case K.FUNC:
    case K.FLOAT:
    case K.TYPE_TAG:
      return 0;
    default:
      return -1;
  }
}

export interface BtfOptions {
  /** The vmlinux BTF that a module's split BTF extends. */
  base?: Btf;
  /** Where the blob came from, for error messages. */
  source?: string;
}

export interface MemberLocation {
  /** Member names from the outer type down, '' for anonymous structs/unions crossed. */
  path: string[];
  member: BtfMember;
  /** Bit offset from the start of the outer type. */
  bitsOffset: number;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const latin1Decoder = new TextDecoder('latin1');

/** The latin1 spelling of a string's UTF-8 bytes, to search the latin1-decoded string section. */
function latin1Of(s: string): string {
  return /[^\x00-\x7f]/.test(s) ? String.fromCharCode(...new TextEncoder().encode(s)) : s;
}

export class Btf {
  readonly base: Btf | undefined;
  readonly source: string;
  readonly littleEndian: boolean;
  /** First type id described by this blob (1 for vmlinux, base.typeCount for split BTF). */
  readonly startId: number;
  /** One past the last valid type id (ids 0..typeCount-1 exist, 0 being void). */
  readonly typeCount: number;
  /** First string offset of this blob (0, or the base's string section length). */
  readonly startStrOff: number;
  readonly strLen: number;

  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly typeStart: number;
  private readonly strStart: number;
  private readonly offsets: Uint32Array;
  private readonly decoded: (BtfType | undefined)[];
  /** The string section as one latin1 string: substrings of it are cheap. */
  private strings: string | undefined;
  private readonly nameLookups = new Map<string, number[]>();
  private pointerSizeCache: number | undefined;
  private pointerIndex: Map<number, number> | undefined;
  private readonly derived = new Map<number, BtfRefType>();

  constructor(data: Uint8Array, options: BtfOptions = {}) {
    this.base = options.base;
    this.source = options.source ?? 'BTF';
    this.bytes = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.byteLength < HEADER_MIN) {
      throw this.error(`truncated: ${data.byteLength} bytes, shorter than the ${HEADER_MIN}-byte header`);
    }
    const magicLE = this.view.getUint16(0, true);
    if (magicLE === BTF_MAGIC) this.littleEndian = true;
    else if (this.view.getUint16(0, false) === BTF_MAGIC) this.littleEndian = false;
    else throw this.error(`bad magic 0x${magicLE.toString(16).padStart(4, '0')} (want 0xeb9f)`);
    const version = data[2];
    if (version !== 1) throw this.error(`unsupported version ${version} (want 1)`);
    const hdrLen = this.u32(4);
    const typeOff = this.u32(8);
    const typeLen = this.u32(12);
    const strOff = this.u32(16);
    this.strLen = this.u32(20);
    if (hdrLen < HEADER_MIN || hdrLen > data.byteLength) {
      throw this.error(`header length ${hdrLen} outside 24..${data.byteLength}`);
    }
    // A newer header may carry more sections; libbpf requires the unknown tail to be zero.
    for (let i = HEADER_MIN; i < hdrLen; i++) {
      if (data[i] !== 0) throw this.error(`header is ${hdrLen} bytes with unknown non-zero fields after byte 24`);
    }
    this.typeStart = hdrLen + typeOff;
    this.strStart = hdrLen + strOff;
    if (this.typeStart + typeLen > data.byteLength || this.typeStart + typeLen < this.typeStart) {
      throw this.error(`type section (offset ${typeOff}, ${typeLen} bytes) runs past the end of the ${data.byteLength}-byte blob`);
    }
    if (this.strStart + this.strLen > data.byteLength) {
      throw this.error(`string section (offset ${strOff}, ${this.strLen} bytes) runs past the end of the ${data.byteLength}-byte blob`);
    }
    if (typeOff % 4 !== 0) throw this.error(`type section offset ${typeOff} is not 4-byte aligned`);
    if (typeOff < strOff ? typeOff + typeLen > strOff : strOff + this.strLen > typeOff) {
      throw this.error('type and string sections overlap');
    }
    if (this.base) {
      this.startId = this.base.typeCount;
      this.startStrOff = this.base.startStrOff + this.base.strLen;
    } else {
      this.startId = 1;
      this.startStrOff = 0;
      if (this.strLen === 0 || data[this.strStart] !== 0) throw this.error('string section does not start with an empty string');
    }
    if (this.strLen > 0 && data[this.strStart + this.strLen - 1] !== 0) {
      throw this.error('string section does not end with a NUL byte');
    }
    this.offsets = this.indexTypes(typeLen);
    this.typeCount = this.startId + this.offsets.length;
    this.decoded = new Array(this.offsets.length);
    this.checkReferences();
  }

  /** Bytes a pointer takes on the target: the size of `long`, as libbpf guesses it. */
  get pointerSize(): number {
    if (this.pointerSizeCache === undefined) {
      const longId = this.findByName('long int', 'int') ?? this.findByName('long unsigned int', 'int');
      const t = longId === undefined ? undefined : this.type(longId);
      this.pointerSizeCache = t && t.kind === 'int' && (t.size === 4 || t.size === 8) ? t.size : 8;
    }
    return this.pointerSizeCache;
  }

  type(id: number): BtfTypeOrVoid {
    if (id === 0) return BTF_VOID;
    if (id >= DERIVED_BASE) {
      const derived = this.derived.get(id);
      if (derived) return derived;
    }
    if (!Number.isInteger(id) || id < 0 || id >= this.typeCount) {
      throw this.error(`type id ${id} out of range (0..${this.typeCount - 1})`);
    }
    if (id < this.startId) return this.base!.type(id);
    const index = id - this.startId;
    return (this.decoded[index] ??= this.decode(id, index));
  }

  /** All type ids described by this blob and its base, in order (1..typeCount-1). */
  *ids(): IterableIterator<number> {
    for (let id = 1; id < this.typeCount; id++) yield id;
  }

  /** Ids of every type with this name, optionally of one kind ('struct', 'typedef', ...). */
  byName(name: string, kind?: string): number[] {
    const found: number[] = [];
    if (this.base) found.push(...this.base.byName(name, kind));
    const own = this.ownByName(name);
    for (const id of own) if (!kind || this.kindOf(id) === kind) found.push(id);
    return found;
  }

  /** First type with this name (and kind); a complete struct/union wins over a fwd. */
  findByName(name: string, kind?: string): number | undefined {
    const ids = this.byName(name, kind);
    return ids.find((id) => this.kindOf(id) !== 'fwd') ?? ids[0];
  }

  kindOf(id: number): string {
    if (id === 0) return 'void';
    if (id >= DERIVED_BASE && this.derived.has(id)) return 'ptr';
    if (id < this.startId) return this.base!.kindOf(id);
    const info = this.u32(this.typeStart + this.offsets[id - this.startId] + 4);
    return BTF_KIND_NAMES[(info >>> 24) & 0x1f];
  }

  /**
   * A pointer type to `target`: the BTF's own when it has one, else one derived here (as a
   * compiler forms `T *` on demand), with an id above every real one. Casts such as
   * `(struct foo *)addr` need it when the kernel never used that pointer type.
   */
  pointerTo(target: number): number {
    if (!this.pointerIndex) {
      this.pointerIndex = new Map();
      for (let id = this.startId; id < this.typeCount; id++) {
        if (this.kindOf(id) !== 'ptr') continue;
        const t = this.type(id);
        if (t.kind === 'ptr' && !this.pointerIndex.has(t.type)) this.pointerIndex.set(t.type, id);
      }
    }
    const own = this.pointerIndex.get(target);
    if (own !== undefined) return own;
    if (this.base && target < this.startId) {
      const inBase = this.base.pointerIndex?.get(target);
      if (inBase !== undefined) return inBase;
    }
    this.type(target);
    const id = DERIVED_BASE + this.derived.size;
    this.derived.set(id, { id, kind: 'ptr', name: '', type: target });
    this.pointerIndex.set(target, id);
    return id;
  }

  /** Follows typedefs, qualifiers and type tags to the type that defines the layout. */
  resolve(id: number): BtfTypeOrVoid {
    let t = this.type(id);
    for (let hops = 0; ; hops++) {
      if (hops > MAX_CHAIN) throw this.error(`type ${id}: typedef/qualifier chain longer than ${MAX_CHAIN} (cycle?)`);
      if (t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag') {
        t = this.type(t.type);
      } else {
        return t;
      }
    }
  }

  /** sizeof() of a type in bytes; throws for types without a size (void, func, fwd). */
  sizeof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw this.error(`type ${id}: nested arrays deeper than ${MAX_CHAIN} (cycle?)`);
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int':
      case 'float':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'datasec':
        return t.size;
      case 'ptr':
        return this.pointerSize;
      case 'array':
        return t.nelems * this.sizeof(t.type, depth + 1);
      default:
        throw this.error(`type ${id} (${t.kind}${t.name ? ' ' + t.name : ''}) has no size`);
    }
  }

  /**
   * Finds a member by name, looking through anonymous structs and unions as C does.
   * Returns undefined when the type has no such member.
   */
  findMember(compositeId: number, name: string, depth = 0): MemberLocation | undefined {
    if (depth > MAX_CHAIN) throw this.error(`type ${compositeId}: anonymous members nested deeper than ${MAX_CHAIN}`);
    const t = this.resolve(compositeId);
    if (t.kind !== 'struct' && t.kind !== 'union') return undefined;
    for (const m of t.members) {
      if (m.name === name) return { path: [name], member: m, bitsOffset: m.bitsOffset };
    }
    for (const m of t.members) {
      if (m.name !== '') continue;
      const inner = this.findMember(m.type, name, depth + 1);
      if (inner) return { path: ['', ...inner.path], member: inner.member, bitsOffset: m.bitsOffset + inner.bitsOffset };
    }
    return undefined;
  }

  /** The composite (struct/union) a type resolves to, or an error naming what it is instead. */
  composite(id: number): BtfComposite {
    const t = this.resolve(id);
    if (t.kind !== 'struct' && t.kind !== 'union') {
      throw this.error(`type ${id} (${this.typeName(id)}) is not a struct or union`);
    }
    return t;
  }

  /** C spelling of a type, e.g. `struct task_struct *`, `char [16]`, `int (*)(void *)`. */
  typeName(id: number): string {
    return this.declaration(id, '');
  }

  /** C declaration of `name` with type `id`, e.g. `char comm[16]`, `void (*fn)(int)`. */
  declaration(id: number, name: string, depth = 0): string {
    if (depth > MAX_CHAIN) throw this.error(`type ${id}: declaration nested deeper than ${MAX_CHAIN} (cycle?)`);
    const t = this.type(id);
    const withName = (base: string): string => (name ? `${base} ${name}` : base);
    switch (t.kind) {
      case 'void':
        return withName('void');
      case 'int':
      case 'float':
      case 'typedef':
        return withName(t.name);
      case 'struct':
      case 'union':
        return withName(t.name ? `${t.kind} ${t.name}` : `${t.kind} {...}`);
      case 'enum':
      case 'enum64':
        return withName(t.name ? `enum ${t.name}` : 'enum {...}');
      case 'fwd':
        return withName(`${t.union ? 'union' : 'struct'} ${t.name}`);
      case 'const':
      case 'volatile':
      case 'restrict': {
        const target = this.type(t.type);
        // `const char *` reads better than `char const *`; keep the qualifier after a pointer.
        if (target.kind === 'ptr') return this.declaration(t.type, name ? `${t.kind} ${name}` : t.kind, depth + 1);
        return `${t.kind} ${this.declaration(t.type, name, depth + 1)}`;
      }
      case 'type_tag':
        return this.declaration(t.type, name, depth + 1);
      case 'ptr': {
        const target = this.type(t.type);
        const inner = target.kind === 'array' || target.kind === 'func_proto' ? `(*${name})` : `*${name}`;
        return this.declaration(t.type, inner, depth + 1);
      }
      case 'array':
        return this.declaration(t.type, `${name}[${t.nelems}]`, depth + 1);
      case 'func_proto': {
        const params = t.params.map((p) => (p.type === 0 && p.name === '' ? '...' : this.declaration(p.type, p.name, depth + 1)));
        return this.declaration(t.returnType, `${name}(${params.length ? params.join(', ') : 'void'})`, depth + 1);
      }
      case 'func':
        return this.declaration(t.type, t.name, depth + 1);
      case 'var':
        return this.declaration(t.type, t.name, depth + 1);
      case 'datasec':
        return withName(`SEC("${t.name}")`);
      case 'decl_tag':
        return withName(`__attribute__((btf_decl_tag("${t.name}")))`);
    }
  }

  /** String at an offset of the combined (base + own) string section. */
  str(offset: number): string {
    if (offset < this.startStrOff) return this.base!.str(offset);
    const rel = offset - this.startStrOff;
    if (rel >= this.strLen) throw this.error(`string offset ${offset} beyond the string section`);
    const all = this.stringSection();
    const s = all.substring(rel, all.indexOf('\0', rel));
    // Identifiers are ASCII; anything else (a tag's text) is UTF-8 and decoded properly.
    return /[^\x00-\x7f]/.test(s) ? utf8Decoder.decode(this.bytes.subarray(this.strStart + rel, this.strStart + rel + s.length)) : s;
  }

  error(message: string): BtfError {
    return new BtfError(`${this.source}: ${message}`);
  }

  private u32(offset: number): number {
    return this.view.getUint32(offset, this.littleEndian);
  }

  private i32(offset: number): number {
    return this.view.getInt32(offset, this.littleEndian);
  }

  private indexTypes(typeLen: number): Uint32Array {
    let offsets = new Uint32Array(Math.max(16, typeLen >>> 5));
    let count = 0;
    const end = this.typeStart + typeLen;
    const maxStr = this.startStrOff + this.strLen;
    for (let pos = this.typeStart; pos < end; ) {
      const id = this.startId + count;
      if (pos + TYPE_RECORD > end) throw this.error(`type ${id} at byte ${pos - this.typeStart} of the type section is truncated`);
      const nameOff = this.u32(pos);
      const info = this.u32(pos + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const extra = extraBytes(kind, vlen);
      if (extra < 0) throw this.error(`type ${id} has unknown kind ${kind}`);
      if (pos + TYPE_RECORD + extra > end) {
        throw this.error(`type ${id} (${BTF_KIND_NAMES[kind]}, vlen ${vlen}) runs past the end of the type section`);
      }
      if (nameOff >= maxStr) throw this.error(`type ${id} name offset ${nameOff} beyond the string section (${maxStr} bytes)`);
      if (count === offsets.length) {
        const grown = new Uint32Array(offsets.length * 2);
        grown.set(offsets);
        offsets = grown;
      }
      offsets[count++] = pos - this.typeStart;
      pos += TYPE_RECORD + extra;
    }
    return offsets.slice(0, count);
  }

  /** Every type id and name offset inside a record must be in range: later walks rely on it. */
  private checkReferences(): void {
    const maxStr = this.startStrOff + this.strLen;
    const ref = (id: number, what: string, target: number): void => {
      if (target >= this.typeCount) {
        throw this.error(`type ${id} ${what} refers to type ${target}, beyond the last type ${this.typeCount - 1}`);
      }
    };
    const name = (id: number, what: string, off: number): void => {
      if (off >= maxStr) throw this.error(`type ${id} ${what} name offset ${off} beyond the string section`);
    };
    for (let i = 0; i < this.offsets.length; i++) {
      const id = this.startId + i;
      const pos = this.typeStart + this.offsets[i];
      const info = this.u32(pos + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const sizeOrType = this.u32(pos + 8);
      const rec = pos + TYPE_RECORD;
      switch (kind) {
        case K.INT: {
          const enc = this.u32(rec);
          const bits = enc & 0xff;
          const off = (enc >>> 16) & 0xff;
          if (bits === 0 || bits > 128 || off + bits > sizeOrType * 8) {
            throw this.error(`type ${id} int of ${sizeOrType} bytes has invalid bit offset ${off} / width ${bits}`);
          }
          break;
        }
        case K.PTR:
        case K.TYPEDEF:
        case K.VOLATILE:
        case K.CONST:
        case K.RESTRICT:
        case K.FUNC:
        case K.VAR:
        case K.DECL_TAG:
        case K.TYPE_TAG:
          ref(id, 'target', sizeOrType);
          if (sizeOrType === id) throw this.error(`type ${id} (${BTF_KIND_NAMES[kind]}) refers to itself`);
          break;
        case K.ARRAY:
          ref(id, 'element', this.u32(rec));
          ref(id, 'index', this.u32(rec + 4));
          break;
        case K.STRUCT:
        case K.UNION:
          for (let m = 0; m < vlen; m++) {
            name(id, `member ${m}`, this.u32(rec + 12 * m));
            ref(id, `member ${m}`, this.u32(rec + 12 * m + 4));
          }
          break;
        case K.ENUM:
          for (let m = 0; m < vlen; m++) name(id, `enumerator ${m}`, this.u32(rec + 8 * m));
          break;
        case K.ENUM64:
          for (let m = 0; m < vlen; m++) name(id, `enumerator ${m}`, this.u32(rec + 12 * m));
          break;
        case K.FUNC_PROTO:
          ref(id, 'return', sizeOrType);
          for (let m = 0; m < vlen; m++) {
            name(id, `parameter ${m}`, this.u32(rec + 8 * m));
            ref(id, `parameter ${m}`, this.u32(rec + 8 * m + 4));
          }
          break;
        case K.DATASEC:
          for (let m = 0; m < vlen; m++) ref(id, `variable ${m}`, this.u32(rec + 12 * m));
          break;
      }
    }
  }

  private stringSection(): string {
    return (this.strings ??= latin1Decoder.decode(this.bytes.subarray(this.strStart, this.strStart + this.strLen)));
  }

  /**
   * Ids of this blob's types named `name`. Strings are deduplicated in BTF, so the name's
   * offsets are found in the string section first, then the type records are scanned for them;
   * no index of all names is ever built.
   */
  private ownByName(name: string): number[] {
    const cached = this.nameLookups.get(name);
    if (cached) return cached;
    const found: number[] = [];
    const offsets = this.ownStringOffsets(name);
    {
      if (offsets.length > 0) {
        const single = offsets.length === 1 ? offsets[0] : -1;
        for (let i = 0; i < this.offsets.length; i++) {
          const nameOff = this.u32(this.typeStart + this.offsets[i]);
          if (nameOff === single || (single < 0 && offsets.includes(nameOff))) found.push(this.startId + i);
        }
      }
    }
    this.nameLookups.set(name, found);
    return found;
  }

  /** Offsets (combined numbering) at which this blob's string section holds exactly `name`. */
  private ownStringOffsets(name: string): number[] {
    if (name === '' || name.includes('\0')) return [];
    const all = this.stringSection();
    const needle = `\0${latin1Of(name)}\0`;
    const offsets: number[] = all.startsWith(needle.substring(1)) ? [this.startStrOff] : [];
    for (let at = all.indexOf(needle); at >= 0; at = all.indexOf(needle, at + 1)) offsets.push(at + 1 + this.startStrOff);
    return offsets;
  }

  /**
   * The value of an enumerator (`PIDTYPE_PID`, `MM_ANONPAGES`) and the enum type holding it,
   * found by its name's string offsets without decoding every enum.
   */
  enumerator(name: string): { value: bigint; type: number } | undefined {
    const inBase = this.base?.enumerator(name);
    if (inBase) return inBase;
    const offsets = this.ownStringOffsets(name);
    if (offsets.length === 0) return undefined;
    for (let i = 0; i < this.offsets.length; i++) {
      const pos = this.typeStart + this.offsets[i];
      const info = this.u32(pos + 4);
      const kind = (info >>> 24) & 0x1f;
      if (kind !== K.ENUM && kind !== K.ENUM64) continue;
      const stride = kind === K.ENUM ? 8 : 12;
      const vlen = info & 0xffff;
      for (let m = 0; m < vlen; m++) {
        if (!offsets.includes(this.u32(pos + TYPE_RECORD + stride * m))) continue;
        const t = this.type(this.startId + i);
        if (t.kind === 'enum' || t.kind === 'enum64') return { value: t.values[m].value, type: t.id };
      }
    }
    return undefined;
  }

  private decode(id: number, index: number): BtfType {
    const pos = this.typeStart + this.offsets[index];
    const name = this.str(this.u32(pos));
    const info = this.u32(pos + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = (info & 0x80000000) !== 0;
    const sizeOrType = this.u32(pos + 8);
    const rec = pos + TYPE_RECORD;
    const linkage = (v: number): BtfLinkage => (v === 0 ? 'static' : v === 1 ? 'global' : v === 2 ? 'extern' : `linkage(${v})`);
    switch (kind) {
      case K.INT: {
        const enc = this.u32(rec);
        const flags = (enc >>> 24) & 0x0f;
        return {
          id,
          kind: 'int',
          name,
          size: sizeOrType,
          signed: (flags & 1) !== 0,
          char: (flags & 2) !== 0,
          bool: (flags & 4) !== 0,
          bitOffset: (enc >>> 16) & 0xff,
          bits: enc & 0xff,
        };
      }
      case K.PTR:
      case K.TYPEDEF:
      case K.VOLATILE:
      case K.CONST:
      case K.RESTRICT:
        return { id, kind: BTF_KIND_NAMES[kind] as 'ptr', name, type: sizeOrType };
      case K.TYPE_TAG:
        return { id, kind: 'type_tag', name, type: sizeOrType, attribute: kindFlag };
      case K.ARRAY:
        return { id, kind: 'array', name, type: this.u32(rec), indexType: this.u32(rec + 4), nelems: this.u32(rec + 8) };
      case K.STRUCT:
      case K.UNION: {
        const members: BtfMember[] = new Array(vlen);
        for (let m = 0; m < vlen; m++) {
          const at = rec + 12 * m;
          const off = this.u32(at + 8);
          members[m] = {
            name: this.str(this.u32(at)),
            type: this.u32(at + 4),
            bitsOffset: kindFlag ? off & 0xffffff : off,
            bitfieldSize: kindFlag ? off >>> 24 : 0,
          };
        }
        return { id, kind: kind === K.STRUCT ? 'struct' : 'union', name, size: sizeOrType, members };
      }
      case K.ENUM: {
        const values = new Array(vlen);
        for (let m = 0; m < vlen; m++) {
          const at = rec + 8 * m;
          const raw = kindFlag ? this.i32(at + 4) : this.u32(at + 4);
          values[m] = { name: this.str(this.u32(at)), value: BigInt(raw) };
        }
        return { id, kind: 'enum', name, size: sizeOrType, signed: kindFlag, values };
      }
      case K.ENUM64: {
        const values = new Array(vlen);
        for (let m = 0; m < vlen; m++) {
          const at = rec + 12 * m;
          const lo = BigInt(this.u32(at + 4));
          const hi = BigInt(this.u32(at + 8));
          const u = (hi << 32n) | lo;
          values[m] = { name: this.str(this.u32(at)), value: kindFlag ? BigInt.asIntN(64, u) : u };
        }
        return { id, kind: 'enum64', name, size: sizeOrType, signed: kindFlag, values };
      }
      case K.FWD:
        return { id, kind: 'fwd', name, union: kindFlag };
      case K.FUNC:
        return { id, kind: 'func', name, type: sizeOrType, linkage: linkage(vlen) };
      case K.FUNC_PROTO: {
        const params = new Array(vlen);
        for (let m = 0; m < vlen; m++) {
          const at = rec + 8 * m;
          params[m] = { name: this.str(this.u32(at)), type: this.u32(at + 4) };
        }
        return { id, kind: 'func_proto', name, returnType: sizeOrType, params };
      }
      case K.VAR:
        return { id, kind: 'var', name, type: sizeOrType, linkage: linkage(this.u32(rec)) };
      case K.DATASEC: {
        const vars = new Array(vlen);
        for (let m = 0; m < vlen; m++) {
          const at = rec + 12 * m;
          vars[m] = { type: this.u32(at), offset: this.u32(at + 4), size: this.u32(at + 8) };
        }
        return { id, kind: 'datasec', name, size: sizeOrType, vars };
      }
      case K.FLOAT:
        return { id, kind: 'float', name, size: sizeOrType };
      case K.DECL_TAG:
        return { id, kind: 'decl_tag', name, type: sizeOrType, componentIdx: this.i32(rec), attribute: kindFlag };
      default:
        throw this.error(`type ${id} has unknown kind ${kind}`);
    }
  }
}
