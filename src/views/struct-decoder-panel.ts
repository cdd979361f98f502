// Struct decoder panels: the value tree of an object decoded from the target's BTF
// (decodeExpression, src/kernel/objects/decode.ts) in a webview. The page expands members
// itself; following a pointer or a list_head asks the host to decode what it leads to, and a
// list_head can be walked into a table (one row per entry, bounded). Panels
// are restored after a reload (the page keeps its expression and asks for it again).
import * as vscode from 'vscode';
import {
  hexAddress,
  isStructDecoderWebviewMessage,
  LIST_TABLE_ROWS,
  parseHexAddress,
  type ListTableRow,
  type StructDecoderHostMessage,
  type StructDecoderWebviewMessage,
} from '../types/webview-protocol';
import type { Sessions } from '../session/sessions';
import type { KernelModel } from '../kernel/model';
import { decodeExpression, enumName } from '../kernel/objects/decode';
import { listForEachEntry } from '../kernel/objects/lists';
import { Kernel, type KObject } from '../kernel/objects/object';
import type { ValueNode } from '../types/decoded-value';
import { structTypeNames } from '../session/addresses';
import { nameTaskBits } from './flag-bits';
import { SessionPanels } from './session-panels';
import type { WebviewHost } from './webview-host';

export const STRUCT_DECODER_VIEW_TYPE = 'grass.structDecoderPanel';
/** Array elements sent per array: a page shows the rest as "N more". */
const MAX_ELEMENTS = 64;
const IDENTIFIER = /^[A-Za-z_]\w*$/;

export type StructDecoderPanel = WebviewHost<StructDecoderHostMessage, StructDecoderWebviewMessage>;

export class StructDecoderPanels extends SessionPanels<StructDecoderHostMessage, StructDecoderWebviewMessage> {
  constructor(
    extensionUri: vscode.Uri,
    sessions: Sessions,
    output: vscode.LogOutputChannel,
    /** Opens a memory inspector at a kernel-virtual address. */
    private readonly openMemory: (address: string) => Promise<unknown>,
  ) {
    const page = { viewType: STRUCT_DECODER_VIEW_TYPE, title: 'GRASS Struct Decoder', bundle: 'struct-decoder', isMessage: isStructDecoderWebviewMessage };
    super(extensionUri, sessions, output, { ...page, status: (message) => message });
  }

  /** Opens a new panel showing what `expression` designates (`init_task`, `*(struct x *)0x…`). */
  async open(expression: string): Promise<StructDecoderPanel> {
    const panel = this.adopt(undefined);
    await panel.whenReady(15_000);
    await this.decodeInto(panel, expression);
    return panel;
  }

  protected async handle(panel: StructDecoderPanel, message: StructDecoderWebviewMessage): Promise<void> {
    switch (message.type) {
      case 'decode':
        await this.decodeInto(panel, message.expression);
        break;
      case 'follow':
        await panel.post({ type: 'followed', requestId: message.requestId, ...(await this.decode(message.expression)) });
        break;
      case 'followList':
        if (message.table) await panel.post({ type: 'listTable', requestId: message.requestId, ...(await this.listTable(message)) });
        else await panel.post({ type: 'followed', requestId: message.requestId, ...(await this.followList(message)) });
        break;
      case 'copy':
        await vscode.env.clipboard.writeText(message.text);
        break;
      case 'openMemory':
        await this.openMemory(message.address);
        break;
    }
  }

  private async decodeInto(panel: StructDecoderPanel, expression: string): Promise<void> {
    panel.panel.title = `Struct: ${expression.length > 40 ? `${expression.slice(0, 40)}…` : expression}`;
    const { node, error } = await this.decode(expression);
    const named = node && (await this.symbolTitle(expression));
    if (named) panel.panel.title = `Struct: ${named}`;
    await panel.post({ type: 'decoded', expression, root: node, error, title: named });
  }

  /**
   * `init_task (struct task_struct)` for `*(struct task_struct *)0xffffffff82a1aa40` when a
   * kernel symbol starts at that address (what Decode as struct… at a symbol gives); undefined
   * for other expressions, which are their own best title.
   */
  private async symbolTitle(expression: string): Promise<string | undefined> {
    const cast = /^\*\((struct \w+) \*\)(0x[0-9a-fA-F]+)$/.exec(expression);
    if (!cast) return undefined;
    const symbol = (await this.model()).symbols.describe(BigInt(cast[2]));
    return symbol && !symbol.includes('+') ? `${symbol} (${cast[1]})` : undefined;
  }

  private async decode(expression: string): Promise<{ expression: string; node?: ValueNode; error?: string }> {
    try {
      const model = await this.model();
      const node = await decodeExpression(model, expression, { maxElements: MAX_ELEMENTS });
      await nameTaskBits(model, node);
      return { expression, node };
    } catch (err) {
      this.output.warn(`struct decoder: ${expression}: ${(err as Error).message}`);
      return { expression, error: (err as Error).message };
    }
  }

  /**
   * The struct the entries of a list are, and the list_head member linking them. BTF does not
   * say which struct a list links, so the user picks: by default a list of siblings (the struct
   * holding this list_head, through the same member: the container_of hint), or another struct
   * and one of its list_head members.
   */
  private async pickContainer(message: ListMessage, what: string): Promise<{ type: string; member: string } | { error: string }> {
    const model = await this.model();
    const sameList = message.ownerType && message.member && IDENTIFIER.test(message.member) ? { type: message.ownerType.replace(/^struct\s+/, ''), member: message.member } : undefined;
    const other = 'Another struct…';
    const choice = await vscode.window.showQuickPick([...(sameList ? [`struct ${sameList.type} via ${sameList.member}`] : []), other], { title: `GRASS: ${what} inside which struct?` });
    if (!choice) return { error: 'no struct picked' };
    if (choice !== other && sameList) return sameList;
    const type = await vscode.window.showQuickPick(structTypeNames(model.btf), { title: 'GRASS: struct containing the list entries' });
    if (!type) return { error: 'no struct picked' };
    const members = listHeadMembers(model, type);
    if (members.length === 0) return { error: `struct ${type} has no list_head member` };
    const member = await vscode.window.showQuickPick(members, { title: `GRASS: the list_head member of struct ${type}` });
    return member ? { type, member } : { error: 'no member picked' };
  }

  /** The struct holding the list entry `pointer` points at (container_of). */
  private async followList(message: ListMessage): Promise<{ expression?: string; node?: ValueNode; error?: string }> {
    try {
      const pointer = parseHexAddress(message.pointer);
      if (pointer === 0n) throw new Error('the list_head pointer is NULL (the list was never initialised)');
      if (pointer === parseHexAddress(message.headAddress)) throw new Error('the list is empty: it points back at its own head');
      const container = await this.pickContainer(message, `the entry at ${message.pointer} is`);
      if ('error' in container) return container;
      return this.decode(`*container_of((struct list_head *)${message.pointer}, struct ${container.type}, ${container.member})`);
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /**
   * The list from its head (list_for_each_entry: the head's own struct is not an entry), one row
   * per entry, at most LIST_TABLE_ROWS; the columns: members that say which entry it is.
   */
  private async listTable(message: ListMessage): Promise<Omit<Extract<StructDecoderHostMessage, { type: 'listTable' }>, 'type' | 'requestId'>> {
    const rows: ListTableRow[] = [];
    let columns: string[] = [];
    try {
      const head = parseHexAddress(message.headAddress);
      if (parseHexAddress(message.pointer) === 0n) throw new Error('the list_head pointer is NULL (the list was never initialised)');
      const container = await this.pickContainer(message, `the entries of the list at ${message.headAddress} are`);
      if ('error' in container) return { columns, rows, more: false, error: container.error };
      const model = await this.model();
      const kernel = new Kernel(model);
      const typeId = model.typeId(`struct ${container.type}`);
      columns = tableColumns(model, typeId);
      const entries = listForEachEntry(kernel.object('struct list_head', head, `list at ${message.headAddress}`), typeId, container.member);
      let more = false;
      try {
        for await (const entry of entries) {
          if (rows.length === LIST_TABLE_ROWS) {
            more = true;
            break;
          }
          rows.push({ address: hexAddress(entry.address!), values: await Promise.all(columns.map((c) => memberText(entry, c))) });
        }
      } catch (err) {
        // What was walked before the list broke stays on screen, with why it stopped.
        return { entryType: `struct ${container.type}`, member: container.member, columns, rows, more: false, error: (err as Error).message };
      }
      return { entryType: `struct ${container.type}`, member: container.member, columns, rows, more };
    } catch (err) {
      return { columns, rows, more: false, error: (err as Error).message };
    }
  }
}

type ListMessage = Extract<StructDecoderWebviewMessage, { type: 'followList' }>;

/** Members that tell entries apart, in this order when the struct has them. */
const NAMING_MEMBERS = ['pid', 'tgid', 'comm', 'name', 'id', '__state', 'state'];
/** Columns of a list table: the naming members the struct has, else its first scalar members. */
const TABLE_COLUMNS = 4;

function tableColumns(model: KernelModel, typeId: number): string[] {
  const t = model.btf.composite(typeId);
  const shown = (m: { name: string; type: number }): boolean => {
    const r = model.btf.resolve(m.type);
    return m.name !== '' && (r.kind === 'int' || r.kind === 'enum' || r.kind === 'enum64' || (r.kind === 'array' && model.btf.typeName(r.type).endsWith('char')));
  };
  const named = NAMING_MEMBERS.filter((n) => t.members.some((m) => m.name === n && shown(m)));
  return (named.length ? named : t.members.filter(shown).map((m) => m.name)).slice(0, TABLE_COLUMNS);
}

/** A member's value as a table cell: a number, an enumerator's name, or a quoted string. */
async function memberText(entry: KObject, name: string): Promise<string> {
  try {
    const m = await entry.member(name);
    const t = m.resolved;
    if (t.kind === 'array') return JSON.stringify(await m.string());
    const value = await m.readInt();
    return t.kind === 'enum' || t.kind === 'enum64' ? (enumName(t, value) ?? String(value)) : String(value);
  } catch (err) {
    return `<${(err as Error).message}>`;
  }
}

/** Direct members of `struct type` that are a `struct list_head` (what container_of can name). */
function listHeadMembers(model: KernelModel, type: string): string[] {
  const id = model.typeId(`struct ${type}`);
  const t = model.btf.resolve(id);
  if (t.kind !== 'struct' && t.kind !== 'union') return [];
  return t.members.filter((m) => m.name !== '' && model.btf.typeName(m.type) === 'struct list_head').map((m) => m.name);
}
