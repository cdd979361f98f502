// Memory: read a range (memory inspector), decode a struct at an address (struct decoder view),
// open the memory inspector panel.
import * as vscode from 'vscode';
import type { ValueNode } from '../types/decoded-value';
import type { MemoryInspectorPanel } from '../views/memory-inspector';
import { valueText, type DecodedItem } from '../views/struct-decoder';
import { structAtAddress, structTypeNames } from '../session/addresses';
import type { CommandDeps } from './deps';
import { requireSession } from './require-session';
import type { LiveSession } from '../session/live-session';

export function registerMemoryCommands(deps: CommandDeps): vscode.Disposable[] {
  return [
    /** Asks for an address, symbol or expression (or takes it as an argument) and shows it in
     * the memory inspector. Resolves to the panel. */
    vscode.commands.registerCommand('grass.readMemory', async (address?: unknown): Promise<MemoryInspectorPanel | undefined> => {
      if (!requireSession(deps.sessions, 'read memory')) return undefined;
      const text =
        typeof address === 'string'
          ? address
          : await vscode.window.showInputBox({
              title: 'GRASS: read memory',
              prompt: 'Kernel-virtual address (0x…), symbol or expression (init_task, init_task.comm, *init_task.mm)',
              ignoreFocusOut: true,
            });
      if (!text) return undefined;
      return deps.memoryInspector.openAt(text);
    }),
    /** Decodes an object into the Struct Decoder view: arguments (expression) or (address,
     * struct type), else asked for: an expression, or an address and then a struct type picked
     * from the target's BTF. Resolves to the value tree. */
    vscode.commands.registerCommand('grass.decodeStruct', async (first?: unknown, structType?: unknown): Promise<ValueNode | undefined> => {
      const session = requireSession(deps.sessions, 'decode a struct');
      if (!session) return undefined;
      let text: string | undefined;
      try {
        text = await decodeInput(session, first, structType);
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot decode: ${(err as Error).message}`);
        return undefined;
      }
      if (!text) return undefined;
      try {
        const node = await vscode.window.withProgress({ location: { viewId: 'grass.structDecoder' }, title: `decoding ${text}` }, () =>
          deps.views.structDecoderProvider.decode(text),
        );
        await vscode.commands.executeCommand('grass.structDecoder.focus');
        return node;
      } catch (err) {
        void vscode.window.showErrorMessage(`GRASS: cannot decode ${text}: ${(err as Error).message}`);
        return undefined;
      }
    }),
    // The Struct Decoder view's context menu.
    vscode.commands.registerCommand('grass.decoded.openMemory', (item: DecodedItem) =>
      item.node.address ? vscode.commands.executeCommand('grass.readMemory', item.node.address) : undefined,
    ),
    vscode.commands.registerCommand('grass.decoded.copyValue', (item: DecodedItem) =>
      vscode.env.clipboard.writeText(typeof item.node.value === 'string' || item.node.pointer ? String(item.node.pointer?.address ?? item.node.value) : valueText({ ...item.node, bits: undefined }).replace(/^ = /, '')),
    ),
    vscode.commands.registerCommand('grass.decoded.copyAddress', (item: DecodedItem) => (item.node.address ? vscode.env.clipboard.writeText(item.node.address) : undefined)),
    /** Resolves to the panel, so that callers (and tests) can talk to it. */
    vscode.commands.registerCommand('grass.openMemoryInspector', (): MemoryInspectorPanel => deps.memoryInspector.open()),
  ];
}

const NUMBER = /^(0x[0-9a-fA-F]+|\d+)$/;

/** The expression to decode, from the command's arguments or asked for. */
async function decodeInput(session: LiveSession, first: unknown, structType: unknown): Promise<string | undefined> {
  if (typeof first === 'string' && typeof structType === 'string') return structAtAddress(structType, first);
  const text =
    typeof first === 'string'
      ? first
      : await vscode.window.showInputBox({
          title: 'GRASS: decode struct',
          prompt: 'An address (then pick its struct type), or an object: init_task, *(struct task_struct *)0xffff…, per_cpu(runqueues, 1)',
          ignoreFocusOut: true,
        });
  if (!text || !NUMBER.test(text.trim())) return text;
  const names = structTypeNames((await session.model()).btf);
  const picked = await vscode.window.showQuickPick(names, { title: `GRASS: struct at ${text.trim()}`, placeHolder: 'struct type (from the target\'s BTF)' });
  return picked && structAtAddress(picked, text);
}
