// Struct decoder panels: the value tree of an object decoded from the target's BTF
// (decodeExpression, src/kernel/objects/decode.ts) in a webview. The page expands members
// itself; following a pointer or a list_head asks the host to decode what it leads to. Panels
// are restored after a reload (the page keeps its expression and asks for it again).
import * as vscode from 'vscode';
import {
  isStructDecoderWebviewMessage,
  parseHexAddress,
  type StructDecoderHostMessage,
  type StructDecoderWebviewMessage,
} from '../types/webview-protocol';
import type { Sessions } from '../session/sessions';
import type { KernelModel } from '../kernel/model';
import { decodeExpression } from '../kernel/objects/decode';
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
        await panel.post({ type: 'followed', requestId: message.requestId, ...(await this.followList(message)) });
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
    await panel.post({ type: 'decoded', expression, root: node, error });
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
   * The struct holding the list entry `pointer` points at. BTF does not say which struct a
   * list links, so the user picks: by default a list of siblings (the struct holding this
   * list_head, through the same member), or another struct and one of its list_head members.
   */
  private async followList(message: Extract<StructDecoderWebviewMessage, { type: 'followList' }>): Promise<{ expression?: string; node?: ValueNode; error?: string }> {
    try {
      const pointer = parseHexAddress(message.pointer);
      if (pointer === 0n) throw new Error('the list_head pointer is NULL (the list was never initialised)');
      if (pointer === parseHexAddress(message.headAddress)) throw new Error('the list is empty: it points back at its own head');
      const model = await this.model();
      const sameList = message.ownerType && message.member && IDENTIFIER.test(message.member) ? { type: message.ownerType.replace(/^struct\s+/, ''), member: message.member } : undefined;
      const other = 'Another struct…';
      const choice = await vscode.window.showQuickPick([...(sameList ? [`struct ${sameList.type} via ${sameList.member}`] : []), other], {
        title: `GRASS: the entry at ${message.pointer} is inside which struct?`,
      });
      if (!choice) return { error: 'no struct picked' };
      let container = choice === other ? undefined : sameList;
      if (!container) {
        const type = await vscode.window.showQuickPick(structTypeNames(model.btf), { title: 'GRASS: struct containing the list entry' });
        if (!type) return { error: 'no struct picked' };
        const members = listHeadMembers(model, type);
        if (members.length === 0) return { error: `struct ${type} has no list_head member` };
        const member = await vscode.window.showQuickPick(members, { title: `GRASS: the list_head member of struct ${type}` });
        if (!member) return { error: 'no member picked' };
        container = { type, member };
      }
      return this.decode(`*container_of((struct list_head *)${message.pointer}, struct ${container.type}, ${container.member})`);
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
}

/** Direct members of `struct type` that are a `struct list_head` (what container_of can name). */
function listHeadMembers(model: KernelModel, type: string): string[] {
  const id = model.typeId(`struct ${type}`);
  const t = model.btf.resolve(id);
  if (t.kind !== 'struct' && t.kind !== 'union') return [];
  return t.members.filter((m) => m.name !== '' && model.btf.typeName(m.type) === 'struct list_head').map((m) => m.name);
}
