// Types as people and programs read them: pahole-like C text for `grass btf <type>`, and the
// JSON of `grass btf --json` (every type, every member with its offsets and size).

import type { Btf } from './btf';
import type { BtfType } from './types';

export interface MemberJson {
  name: string;
  typeId: number;
  /** C spelling of the member's type. */
  type: string;
  /** Byte offset from the start of the struct (bitsOffset / 8, rounded down). */
  offset: number;
  /** Offset in bits from the start of the struct, as BTF records it. */
  bitsOffset: number;
  /** Bitfield width in bits; 0 when the member is not a bitfield. */
  bitfieldSize: number;
  /** sizeof() the member's type in bytes; null for types without a size. */
  size: number | null;
}

export type TypeJson = { id: number; kind: BtfType['kind']; name: string } & Record<string, unknown>;

function sizeOrNull(btf: Btf, id: number): number | null {
  try {
    return btf.sizeof(id);
  } catch {
    return null;
  }
}

export function membersJson(btf: Btf, id: number): MemberJson[] {
  const t = btf.composite(id);
  return t.members.map((m) => ({
    name: m.name,
    typeId: m.type,
    type: btf.typeName(m.type),
    offset: Math.floor(m.bitsOffset / 8),
    bitsOffset: m.bitsOffset,
    bitfieldSize: m.bitfieldSize,
    size: sizeOrNull(btf, m.type),
  }));
}

/** One type as JSON: its record, with enum values as strings (they may exceed 2^53). */
export function typeJson(btf: Btf, id: number): TypeJson {
  const t = btf.type(id);
  if (t.kind === 'void') throw btf.error('type 0 (void) has no record');
  switch (t.kind) {
    case 'struct':
    case 'union':
      return { id, kind: t.kind, name: t.name, size: t.size, members: membersJson(btf, id) };
    case 'enum':
    case 'enum64':
      return { id, kind: t.kind, name: t.name, size: t.size, signed: t.signed, values: t.values.map((v) => ({ name: v.name, value: v.value.toString() })) };
    default:
      return { ...t };
  }
}

export function allTypesJson(btf: Btf): TypeJson[] {
  const out: TypeJson[] = [];
  for (const id of btf.ids()) out.push(typeJson(btf, id));
  return out;
}

/** Resolves `struct foo`, `union foo`, `enum foo`, a typedef or any named type to ids. */
export function lookupTypeName(btf: Btf, spelled: string): number[] {
  const m = /^\s*(struct|union|enum)\s+(\S+)\s*$/.exec(spelled);
  if (m) {
    const kinds = m[1] === 'enum' ? ['enum', 'enum64'] : [m[1]];
    const ids = kinds.flatMap((k) => btf.byName(m[2], k));
    const complete = ids.filter((id) => btf.kindOf(id) !== 'fwd');
    return complete.length ? complete : btf.byName(m[2], 'fwd');
  }
  const name = spelled.trim();
  const all = btf.byName(name);
  const types = all.filter((id) => !['func', 'var', 'decl_tag', 'datasec', 'fwd'].includes(btf.kindOf(id)));
  // A bare name prefers the struct/union so `grass btf task_struct` works like pahole -C; a
  // name that is no type may still be a function, variable or section.
  const composite = types.filter((id) => ['struct', 'union'].includes(btf.kindOf(id)));
  return composite.length ? composite : types.length ? types : all;
}

const COMMENT_COLUMN = 56;

function commentLine(indent: string, text: string, comment: string): string {
  const line = `${indent}${text}`;
  const pad = Math.max(1, COMMENT_COLUMN - line.replace(/\t/g, '        ').length);
  return `${line}${' '.repeat(pad)}/* ${comment} */`;
}

/**
 * pahole-style text of a struct/union: members with byte offset and size, bitfields with their
 * bit position, anonymous structs and unions expanded in place (offsets stay absolute, from
 * the start of the outermost type), holes noted.
 */
export function formatComposite(btf: Btf, id: number): string {
  const t = btf.composite(id);
  const lines: string[] = [];
  const render = (compositeId: number, base: number, indent: string, depth: number): void => {
    const c = btf.composite(compositeId);
    let expectedEnd = base * 8;
    for (const m of c.members) {
      const bitsOffset = base * 8 + m.bitsOffset;
      const size = sizeOrNull(btf, m.type);
      if (c.kind === 'struct' && bitsOffset > expectedEnd && m.bitfieldSize === 0) {
        const hole = Math.floor((bitsOffset - expectedEnd) / 8);
        if (hole > 0) lines.push('', `${indent}/* XXX ${hole} byte${hole === 1 ? '' : 's'} hole */`, '');
      }
      const resolved = btf.resolve(m.type);
      const anonymousComposite = m.name === '' && (resolved.kind === 'struct' || resolved.kind === 'union') && resolved.name === '';
      if (anonymousComposite && depth < 16) {
        lines.push(`${indent}${resolved.kind} {`);
        render(resolved.id, Math.floor(bitsOffset / 8), indent + '\t', depth + 1);
        lines.push(commentLine(indent, '};', `${Math.floor(bitsOffset / 8)} ${size ?? '?'}`));
      } else if (m.bitfieldSize > 0) {
        const byte = Math.floor(bitsOffset / 8);
        lines.push(commentLine(indent, `${btf.declaration(m.type, m.name)}:${m.bitfieldSize};`, `${byte}:${bitsOffset % 8} ${size ?? '?'}`));
      } else {
        lines.push(commentLine(indent, `${btf.declaration(m.type, m.name)};`, `${Math.floor(bitsOffset / 8)} ${size ?? '?'}`));
      }
      const end = m.bitfieldSize > 0 ? bitsOffset + m.bitfieldSize : bitsOffset + (size ?? 0) * 8;
      expectedEnd = Math.max(expectedEnd, end);
    }
  };
  lines.push(`${t.kind} ${t.name || '{...}'} {`);
  render(id, 0, '\t', 0);
  lines.push('', `\t/* size: ${t.size}, members: ${t.members.length} */`, '};');
  return lines.join('\n');
}

/** Text for any named type: composites pahole-style, enums with values, others as C. */
export function formatType(btf: Btf, id: number): string {
  const t = btf.type(id);
  switch (t.kind) {
    case 'struct':
    case 'union':
      return formatComposite(btf, id);
    case 'enum':
    case 'enum64': {
      const body = t.values.map((v) => `\t${v.name} = ${v.value},`);
      return [`enum ${t.name || '{...}'} {`, ...body, `};\t/* size: ${t.size} */`].join('\n');
    }
    case 'typedef':
      return `typedef ${btf.declaration(t.type, t.name)};`;
    default:
      return `${btf.declaration(id, '')};\t/* ${t.kind}, id ${id} */`;
  }
}
