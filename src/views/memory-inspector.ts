// Memory inspector panels (as many as the user opens; restored after a reload by a
// WebviewPanelSerializer). The page asks for 4 KiB pages of one address space as it scrolls;
// the host reads them through the session's kernel model (the agent translates physical,
// kernel-virtual and user addresses), and marks 8-byte words that point into kernel symbols.
import { writeFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import {
  addressSpaceLabel,
  hexAddress,
  INSPECTOR_MAX_SPAN,
  isMemoryInspectorWebviewMessage,
  parseHexAddress,
  type MemoryInspectorHostMessage,
  type MemoryInspectorWebviewMessage,
} from '../types/webview-protocol';
import type { AddressSpace } from '../types/target';
import type { Sessions } from '../session/sessions';
import { resolveKernelAddress, structAtAddress, structTypeNames } from '../session/addresses';
import { readInspectorPage } from './inspector-pages';
import { StructDecoderPanels } from './struct-decoder-panel';
import { SessionPanels } from './session-panels';
import type { WebviewHost } from './webview-host';

export const MEMORY_INSPECTOR_VIEW_TYPE = 'grass.memoryInspector';
/** Bytes read per request when saving a range. */
const SAVE_CHUNK = 64 * 1024;

export type MemoryInspectorPanel = WebviewHost<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage>;

export class MemoryInspector extends SessionPanels<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage> {
  /** Struct decoder panels: where "decode as struct…" opens, and which opens members here. */
  readonly structDecoder: StructDecoderPanels;

  constructor(extensionUri: vscode.Uri, sessions: Sessions, output: vscode.LogOutputChannel) {
    const page = { viewType: MEMORY_INSPECTOR_VIEW_TYPE, title: 'GRASS Memory Inspector', bundle: 'memory-inspector', isMessage: isMemoryInspectorWebviewMessage };
    super(extensionUri, sessions, output, { ...page, status: (message) => message });
    this.structDecoder = new StructDecoderPanels(extensionUri, sessions, output, (address) => this.openAt(address));
    this.subscriptions.push(this.structDecoder);
  }

  /** Opens a new inspector panel. */
  open(): MemoryInspectorPanel {
    return this.adopt(undefined);
  }

  /** Opens a new panel at what `addressText` designates (a number, symbol or expression). */
  async openAt(addressText: string, space: AddressSpace = { kind: 'kernel' }): Promise<MemoryInspectorPanel> {
    const panel = this.open();
    await panel.whenReady(15_000);
    await panel.post({ type: 'goTo', addressText, space });
    return panel;
  }

  protected async handle(panel: MemoryInspectorPanel, message: MemoryInspectorWebviewMessage): Promise<void> {
    switch (message.type) {
      case 'title':
        panel.panel.title = message.text;
        break;
      case 'resolve':
        await panel.post({ type: 'resolved', requestId: message.requestId, ...(await this.resolve(message.text, message.space)) });
        break;
      case 'readPage':
        await panel.post({ type: 'page', requestId: message.requestId, address: message.address, ...(await readInspectorPage(() => this.model(), message.space, message.address)) });
        break;
      case 'symbolize':
        await panel.post({ type: 'symbolized', requestId: message.requestId, address: message.address, symbol: await this.symbolize(message.address) });
        break;
      case 'decodeAsStruct':
        await this.decodeAsStruct(panel, message.space, message.address);
        break;
      case 'saveRange':
        await this.saveRange(panel, message.space, message.address, message.length);
        break;
    }
  }

  /** An address in `space` for what the user typed; symbols and expressions are kernel-virtual. */
  private async resolve(text: string, space: AddressSpace): Promise<{ address?: string; size?: number; typeName?: string; error?: string }> {
    try {
      const model = await this.model();
      if (space.kind !== 'kernel') {
        if (!/^\s*(0x[0-9a-fA-F]+|\d+)\s*$/.test(text)) {
          throw new Error(`in ${addressSpaceLabel(space)} memory only a number is an address: symbols and expressions are kernel-virtual`);
        }
        return { address: hexAddress(BigInt(text.trim())) };
      }
      const resolved = await resolveKernelAddress(model, text);
      return { address: hexAddress(resolved.address), size: resolved.size, typeName: resolved.type };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** The kernel symbol (`name+0x10`) an address lies in; undefined when none or not connected. */
  private async symbolize(addressText: string): Promise<string | undefined> {
    try {
      return (await this.model()).symbols.describe(parseHexAddress(addressText));
    } catch {
      return undefined;
    }
  }

  private async decodeAsStruct(panel: MemoryInspectorPanel, space: AddressSpace, addressText: string): Promise<void> {
    if (space.kind !== 'kernel') {
      await panel.post({ type: 'notice', text: `Decoding reads kernel-virtual addresses; this panel shows ${addressSpaceLabel(space)} memory.`, isError: true });
      return;
    }
    try {
      const names = structTypeNames((await this.model()).btf);
      const picked = await vscode.window.showQuickPick(names, { title: `GRASS: decode ${addressText} as`, placeHolder: "struct type (from the target's BTF)" });
      if (picked) await this.structDecoder.open(structAtAddress(picked, addressText));
    } catch (err) {
      await panel.post({ type: 'notice', text: `Cannot decode at ${addressText}: ${(err as Error).message}`, isError: true });
    }
  }

  private async saveRange(panel: MemoryInspectorPanel, space: AddressSpace, addressText: string, length: number): Promise<void> {
    try {
      if (!Number.isInteger(length) || length <= 0 || length > INSPECTOR_MAX_SPAN) throw new Error(`a saved range holds 1 to ${INSPECTOR_MAX_SPAN} bytes, not ${length}`);
      const address = parseHexAddress(addressText);
      const target = await vscode.window.showSaveDialog({
        title: `GRASS: save ${length} bytes of ${addressSpaceLabel(space)} memory at ${addressText}`,
        defaultUri: vscode.Uri.file(`${addressText}-${length}.bin`),
      });
      if (!target) return;
      const model = await this.model();
      const bytes = Buffer.alloc(length);
      for (let done = 0; done < length; done += SAVE_CHUNK) {
        const n = Math.min(SAVE_CHUNK, length - done);
        bytes.set(await model.memory.read(space, address + BigInt(done), n), done);
      }
      await writeFile(target.fsPath, bytes);
      await panel.post({ type: 'notice', text: `Saved ${length} bytes at ${addressText} to ${target.fsPath}`, isError: false });
    } catch (err) {
      await panel.post({ type: 'notice', text: `Saving ${length} bytes at ${addressText} failed: ${(err as Error).message}`, isError: true });
    }
  }
}
