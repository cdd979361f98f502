// Messages between the extension host and its webviews. Imported by both sides, so it holds
// types and checks only: no DOM, no Node and no `vscode`. Addresses travel as `0x…` strings
// (bigint does not survive postMessage's structured clone in every host), bytes as hex strings.

import type { ValueNode } from './decoded-value';
import type { AddressSpace } from './target';

/** Every webview answers `ping` with `pong` (the host uses it to know the page is live). */
export type CommonHostMessage = { type: 'ping'; id: number };
export type CommonWebviewMessage =
  | { type: 'ready' }
  | {
      type: 'pong';
      id: number;
      /** What the page shows, so the host can tell it rendered: its main heading. */
      heading: string;
      /** Custom elements the page registered (the toolkit components it uses). */
      components: string[];
    };

export type GroupBytes = 1 | 2 | 4 | 8;

/** Bytes the inspector fetches per request: one 4 KiB page, aligned, so a failure means an unmapped page. */
export const INSPECTOR_PAGE_BYTES = 4096;
/** The largest range one inspector scrolls over (rows are real DOM heights: 16 MiB = 1 M rows). */
export const INSPECTOR_MAX_SPAN = 16 * 1024 * 1024;

/** What an inspector panel is showing; kept by the page (setState) and restored on reload. */
export interface InspectorState {
  space: AddressSpace;
  /** What the user typed to get here (a number, symbol or expression). */
  addressText: string;
  /** First byte of the scrollable range, 0x…, page-aligned. */
  base: string;
  /** Bytes in the scrollable range. */
  span: number;
  /** The address the view was scrolled to, 0x…. */
  focus: string;
  groupBytes: GroupBytes;
  littleEndian: boolean;
  /** 0: off. */
  autoRefreshMs: number;
}

/** A word in a page that points into a kernel symbol (`name+0x10`). */
export interface SymbolAnnotation {
  /** Byte offset of the 8-byte word in the page. */
  offset: number;
  symbol: string;
}

/** What a panel reads: the connected target (named) or nothing, as the page's status line says it. */
export interface PanelStatusMessage {
  type: 'status';
  connected: boolean;
  text: string;
}

export type MemoryInspectorHostMessage =
  | CommonHostMessage
  | PanelStatusMessage
  /** The host asks the page to show this (a command opened the panel at an address). */
  | { type: 'goTo'; addressText: string; space: AddressSpace }
  /** The answer to `resolve`. */
  | { type: 'resolved'; requestId: number; address?: string; size?: number; typeName?: string; error?: string }
  /** The answer to `readPage`: the page's bytes, or why there are none. */
  | { type: 'page'; requestId: number; address: string; hex?: string; error?: string; annotations: SymbolAnnotation[] }
  /** Something the page should say (a range saved, a decode refused). */
  | { type: 'notice'; text: string; isError: boolean }
  /** The answer to `symbolize`: the kernel symbol an address lies in (`name+0x10`), if any. */
  | { type: 'symbolized'; requestId: number; address: string; symbol?: string };

export type MemoryInspectorWebviewMessage =
  | CommonWebviewMessage
  /** Turn what the user typed (number, symbol, expression) into an address in `space`. */
  | { type: 'resolve'; requestId: number; text: string; space: AddressSpace }
  | { type: 'readPage'; requestId: number; space: AddressSpace; address: string }
  /** The selection's start, to decode as a struct the user picks (kernel-virtual only). */
  | { type: 'decodeAsStruct'; space: AddressSpace; address: string }
  | { type: 'saveRange'; space: AddressSpace; address: string; length: number }
  /** The panel's title follows what it shows. */
  | { type: 'title'; text: string }
  /** The kernel symbol a pointer value points into (the data inspector's pointer line). */
  | { type: 'symbolize'; requestId: number; address: string };

export type StructDecoderHostMessage =
  | CommonHostMessage
  | PanelStatusMessage
  /** The object the panel shows, decoded from `expression`. */
  | { type: 'decoded'; expression: string; root?: ValueNode; error?: string; /** The symbol the object is at, when one starts there: `init_task (struct task_struct)`. */ title?: string }
  /** The answer to `follow`/`followList`: what a pointer or list entry leads to. */
  | { type: 'followed'; requestId: number; expression?: string; node?: ValueNode; error?: string }
  /**
   * The answer to `followList` with `table`: the list walked from its head, one row per entry
   * (its address and the `columns` members' values), at most LIST_TABLE_ROWS; `more` when the
   * list goes on past them.
   */
  | { type: 'listTable'; requestId: number; entryType?: string; member?: string; columns: string[]; rows: ListTableRow[]; more: boolean; error?: string };

/** One entry of a walked list: where it is and its shown members' values. */
export interface ListTableRow {
  address: string;
  values: string[];
}

/** At most this many entries of a list are walked into a table (a corrupt list can be endless). */
export const LIST_TABLE_ROWS = 512;

export type StructDecoderWebviewMessage =
  | CommonWebviewMessage
  /** Decode what a non-null pointer points at (`*(struct x *)0x…`). */
  | { type: 'follow'; requestId: number; expression: string }
  /**
   * Follow a `list_head` into the struct containing the entry it points at. `pointer`: the
   * list_head's next (or prev); `ownerType`/`member`: the struct holding this list_head and its
   * member name (the default guess: a list of siblings of the same type).
   */
  | { type: 'followList'; requestId: number; pointer: string; headAddress: string; ownerType?: string; member?: string; /** Walk the whole list into a table (answered by `listTable`). */ table?: boolean }
  | { type: 'copy'; text: string }
  | { type: 'openMemory'; address: string; size: number }
  /** Decode a new expression in this panel. */
  | { type: 'decode'; expression: string };

const is = (m: Record<string, unknown>, key: string, type: 'string' | 'number' | 'boolean'): boolean => typeof m[key] === type;

function isSpace(value: unknown): value is AddressSpace {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  if (s.kind === 'kernel' || s.kind === 'physical') return true;
  return s.kind === 'user' && Number.isInteger(s.pid) && (s.pid as number) > 0;
}

function isCommon(m: Record<string, unknown>): boolean | undefined {
  if (m.type === 'ready') return true;
  if (m.type === 'pong') return is(m, 'id', 'number') && is(m, 'heading', 'string') && Array.isArray(m.components);
  return undefined;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>).type === 'string' ? (value as Record<string, unknown>) : undefined;
}

/** A guard of one page's messages: a record with a type, one every page sends, or one of `own`'s. */
function pageMessageGuard<T>(own: (m: Record<string, unknown>) => boolean): (value: unknown) => value is T {
  return (value): value is T => {
    const m = asRecord(value);
    return m !== undefined && (isCommon(m) ?? own(m));
  };
}

/** Checks the shape of a message from a memory inspector page before the host acts on it. */
export const isMemoryInspectorWebviewMessage = pageMessageGuard<MemoryInspectorWebviewMessage>((m) => {
  switch (m.type) {
    case 'resolve':
      return is(m, 'requestId', 'number') && is(m, 'text', 'string') && isSpace(m.space);
    case 'readPage':
      return is(m, 'requestId', 'number') && is(m, 'address', 'string') && isSpace(m.space);
    case 'decodeAsStruct':
      return is(m, 'address', 'string') && isSpace(m.space);
    case 'saveRange':
      return is(m, 'address', 'string') && is(m, 'length', 'number') && isSpace(m.space);
    case 'title':
      return is(m, 'text', 'string');
    case 'symbolize':
      return is(m, 'requestId', 'number') && is(m, 'address', 'string');
    default:
      return false;
  }
});

/** Checks the shape of a message from a struct decoder page before the host acts on it. */
export const isStructDecoderWebviewMessage = pageMessageGuard<StructDecoderWebviewMessage>((m) => {
  switch (m.type) {
    case 'follow':
      return is(m, 'requestId', 'number') && is(m, 'expression', 'string');
    case 'followList':
      return (
        is(m, 'requestId', 'number') &&
        is(m, 'pointer', 'string') &&
        is(m, 'headAddress', 'string') &&
        (m.ownerType === undefined || is(m, 'ownerType', 'string')) &&
        (m.member === undefined || is(m, 'member', 'string')) &&
        (m.table === undefined || is(m, 'table', 'boolean'))
      );
    case 'copy':
      return is(m, 'text', 'string');
    case 'openMemory':
      return is(m, 'address', 'string') && is(m, 'size', 'number');
    case 'decode':
      return is(m, 'expression', 'string');
    default:
      return false;
  }
});

/** `0x…` for an address; throws on anything else (messages carry addresses only this way). */
export function parseHexAddress(text: string): bigint {
  if (!/^0x[0-9a-fA-F]{1,16}$/.test(text)) throw new Error(`'${text}' is not an address (0x followed by at most 16 hex digits)`);
  return BigInt(text);
}

export function hexAddress(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** An address space in a person's words, for titles and notices (describeSpace is errors' short form). */
export function addressSpaceLabel(space: AddressSpace): string {
  return space.kind === 'user' ? `pid ${space.pid} user` : space.kind === 'kernel' ? 'kernel-virtual' : 'physical';
}
