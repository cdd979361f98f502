// Struct decoder view: the value tree of an object decoded from the target's memory
// (decodeExpression, src/kernel/objects/decode.ts). Members expand; a non-null pointer expands
// into the object it points at, decoded when first expanded.
import * as vscode from 'vscode';
import type { Sessions } from '../session/sessions';
import { decodeExpression } from '../kernel/objects/decode';
import type { ValueNode } from '../types/decoded-value';
import { nameTaskBits } from './flag-bits';

export interface DecodedItem {
  id: string;
  node: ValueNode;
  parent?: DecodedItem;
  /** Pointers: the expression that decodes what they point at. */
  follow?: string;
}

/** Pointers worth following: to a struct or union (void and char pointers are not). */
function followExpression(node: ValueNode): string | undefined {
  const p = node.pointer;
  if (!p || p.isNull || !/^(struct|union) /.test(p.target)) return undefined;
  return `*(${p.target} *)${p.address}`;
}

export class StructDecoderProvider implements vscode.TreeDataProvider<DecodedItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private root: DecodedItem | undefined;
  private readonly followed = new Map<string, Promise<DecodedItem[]>>();
  private generation = 0;
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly sessions: Sessions) {
    this.subscriptions = [sessions.onDidChange(() => this.show(undefined))];
  }

  get current(): ValueNode | undefined {
    return this.root?.node;
  }

  /** Decodes `expression` (e.g. `*(struct task_struct *)0xffff…`, `init_task`) and shows it. */
  async decode(expression: string): Promise<ValueNode> {
    const session = this.sessions.current;
    if (!session) throw new Error('not connected to a target');
    const model = await session.model();
    const node = await decodeExpression(model, expression);
    await nameTaskBits(model, node);
    this.show(node);
    return node;
  }

  private show(node: ValueNode | undefined): void {
    this.generation++;
    this.followed.clear();
    this.root = node && this.item(node, `grass.decoded/${this.generation}`);
    this.changed.fire();
  }

  private item(node: ValueNode, id: string, parent?: DecodedItem): DecodedItem {
    return { id, node, parent, follow: followExpression(node) };
  }

  async getChildren(element?: DecodedItem): Promise<DecodedItem[]> {
    if (!element) return this.root ? [this.root] : [];
    if (element.node.children) return element.node.children.map((c, i) => this.item(c, `${element.id}/${i}`, element));
    if (!element.follow) return [];
    const session = this.sessions.current;
    if (!session) return [];
    let followed = this.followed.get(element.id);
    if (!followed) {
      const model = await session.model();
      followed = decodeExpression(model, element.follow).then(
        async (target) => {
          await nameTaskBits(model, target);
          return [this.item(target, `${element.id}/*`, element)];
        },
        (err: unknown) => [this.item({ name: element.follow!, type: element.node.pointer!.target, typeId: 0, kind: 'error', offset: 0, size: 0, error: (err as Error).message }, `${element.id}/*`, element)],
      );
      this.followed.set(element.id, followed);
    }
    return followed;
  }

  getParent(element: DecodedItem): DecodedItem | undefined {
    return element.parent;
  }

  getTreeItem(item: DecodedItem): vscode.TreeItem {
    const n = item.node;
    const expandable = (n.children?.length ?? 0) > 0 || item.follow !== undefined;
    const tree = new vscode.TreeItem(n.name, expandable ? (item.parent ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.Expanded) : vscode.TreeItemCollapsibleState.None);
    tree.id = item.id;
    tree.description = `${n.type}${valueText(n)}`;
    tree.tooltip = `${n.type} ${n.name}${n.address ? ` at ${n.address}` : ''} (offset ${n.offset}, ${n.size} bytes)${n.bits?.note ? `\n${n.bits.note}` : ''}${n.error ? `\n${n.error}` : ''}`;
    tree.iconPath = new vscode.ThemeIcon(n.error ? 'error' : n.pointer ? 'arrow-right' : n.children ? 'symbol-struct' : 'symbol-field');
    tree.contextValue = n.address ? 'grass.decoded.addressed' : 'grass.decoded';
    return tree;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}

/** ` = value` as the decoder gave it (pointers with their symbol, enums by name). */
export function valueText(n: ValueNode): string {
  if (n.error !== undefined) return ` <${n.error}>`;
  if (n.pointer) return n.pointer.isNull ? ' = NULL' : ` = ${n.pointer.address}${n.pointer.symbol ? ` <${n.pointer.symbol}>` : ''}`;
  if (n.value === undefined) return n.omitted ? ` (${n.omitted} more not shown)` : '';
  if (typeof n.value === 'string' && n.kind === 'array') return ` = ${JSON.stringify(n.value)}`;
  const bits = n.bits ? ` [${n.bits.names.join(' | ')}]` : '';
  return ` = ${String(n.value)}${n.hex !== undefined && typeof n.value !== 'boolean' && n.hex !== String(n.value) ? ` (${n.hex})` : ''}${bits}`;
}
