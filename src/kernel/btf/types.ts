// The BTF type model: one decoded record per type id, as the kernel's include/uapi/linux/btf.h
// lays them out. Id 0 is `void` and has no record.

export const BTF_KIND_NAMES = [
  'unknown',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
] as const;

export type BtfKindName = Exclude<(typeof BTF_KIND_NAMES)[number], 'unknown'>;

interface BtfTypeBase {
  id: number;
  /** '' for anonymous types. */
  name: string;
}

export interface BtfInt extends BtfTypeBase {
  kind: 'int';
  size: number;
  signed: boolean;
  char: boolean;
  bool: boolean;
  /** Bit offset and width of the value inside its `size` bytes (BTF_INT_OFFSET / BTF_INT_BITS). */
  bitOffset: number;
  bits: number;
}

export interface BtfFloat extends BtfTypeBase {
  kind: 'float';
  size: number;
}

/** Types that only point at another: pointers, typedefs, qualifiers, type tags. */
export interface BtfRefType extends BtfTypeBase {
  kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  type: number;
  /** type_tag only: kind_flag set means an attribute tag (`__attribute__((btf_type_tag))` vs attr). */
  attribute?: boolean;
}

export interface BtfArray extends BtfTypeBase {
  kind: 'array';
  type: number;
  indexType: number;
  nelems: number;
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset of the member from the start of its struct or union, in bits. */
  bitsOffset: number;
  /** Width of a bitfield in bits; 0 for an ordinary member. */
  bitfieldSize: number;
}

export interface BtfComposite extends BtfTypeBase {
  kind: 'struct' | 'union';
  size: number;
  members: BtfMember[];
}

export interface BtfEnumValue {
  name: string;
  value: bigint;
}

export interface BtfEnum extends BtfTypeBase {
  kind: 'enum' | 'enum64';
  size: number;
  signed: boolean;
  values: BtfEnumValue[];
}

export interface BtfFwd extends BtfTypeBase {
  kind: 'fwd';
  union: boolean;
}

export type BtfLinkage = 'static' | 'global' | 'extern' | `linkage(${number})`;

export interface BtfFunc extends BtfTypeBase {
  kind: 'func';
  /** A func_proto id. */
  type: number;
  linkage: BtfLinkage;
}

export interface BtfParam {
  name: string;
  /** 0 with an empty name for the trailing `...` of a variadic function. */
  type: number;
}

export interface BtfFuncProto extends BtfTypeBase {
  kind: 'func_proto';
  returnType: number;
  params: BtfParam[];
}

export interface BtfVar extends BtfTypeBase {
  kind: 'var';
  type: number;
  linkage: BtfLinkage;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export interface BtfDatasec extends BtfTypeBase {
  kind: 'datasec';
  size: number;
  vars: BtfVarSecinfo[];
}

export interface BtfDeclTag extends BtfTypeBase {
  kind: 'decl_tag';
  type: number;
  /** -1 for the type itself, else the member or parameter index it tags. */
  componentIdx: number;
  attribute: boolean;
}

export type BtfType =
  | BtfInt
  | BtfFloat
  | BtfRefType
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfDeclTag;

export interface BtfVoid {
  id: 0;
  kind: 'void';
  name: 'void';
}

export type BtfTypeOrVoid = BtfType | BtfVoid;

export const BTF_VOID: BtfVoid = { id: 0, kind: 'void', name: 'void' };
