// A decoded kernel object as a JSON-able value tree: what src/kernel/objects/decode.ts builds,
// `grass decode --json` prints and the struct decoder webview shows.

export interface PointerInfo {
  address: string;
  isNull: boolean;
  /** `symbol+0x10` when the pointer is into a known symbol. */
  symbol?: string;
  /** C type of what it points at. */
  target: string;
}

export interface ValueNode {
  /** Member name, `[i]` for an array element, the expression for the root. */
  name: string;
  /** C type name. */
  type: string;
  typeId: number;
  /** Kind after typedefs and qualifiers: int, ptr, struct, union, array, enum, enum64, float, ... */
  kind: string;
  /** Bytes from the start of the decoded (root) object. */
  offset: number;
  size: number;
  /** Bitfields only: bit position inside the byte at `offset`, and width. */
  bitOffset?: number;
  bitSize?: number;
  address?: string;
  /**
   * Integers: a number when it fits 2^53, else a decimal string; booleans: true/false;
   * enums: the enumerator name (or `A|B` flags, or the number when none matches);
   * pointers: the address as hex; char arrays: the string; floats: a number.
   */
  value?: number | string | boolean | null;
  /** Integers and enums: the value in hex (two's complement for negatives). */
  hex?: string;
  /** Enums: the numeric value as a decimal string. */
  numeric?: string;
  pointer?: PointerInfo;
  /** Arrays: the declared element count (0 for a flexible array member). */
  length?: number;
  /** Elements not shown (arrays longer than the element limit). */
  omitted?: number;
  children?: ValueNode[];
  error?: string;
  /**
   * Flag words (a task's state and flags): the set bits by the kernel's own names, in bit
   * order (a bit without one as hex), and why some or all are not named.
   */
  bits?: { names: string[]; note?: string };
}
