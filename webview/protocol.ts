// Messages between the extension host and its webviews. Imported by both sides, so it holds
// types and checks only: no DOM and no `vscode`.

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

// Memory inspector (webview/memory-inspector/).
export type MemoryInspectorHostMessage =
  | CommonHostMessage
  | { type: 'status'; connected: boolean; text: string }
  /** The answer to `readMemory`: the bytes as hex from `resolved` (0x…), or why there are none. */
  | { type: 'readMemoryResult'; address: string; length: number; resolved?: string; hex?: string; error?: string }
  /** The host asks the page to read this (a command opened the panel at an address). */
  | { type: 'goTo'; address: string; length: number };

export type MemoryInspectorWebviewMessage =
  | CommonWebviewMessage
  | { type: 'readMemory'; address: string; length: number };

const WEBVIEW_MESSAGE_TYPES = new Set(['ready', 'pong', 'readMemory']);

/** Checks the shape of a message that came from a webview before the host acts on it. */
export function isMemoryInspectorWebviewMessage(value: unknown): value is MemoryInspectorWebviewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  if (typeof m.type !== 'string' || !WEBVIEW_MESSAGE_TYPES.has(m.type)) return false;
  switch (m.type) {
    case 'pong':
      return typeof m.id === 'number' && typeof m.heading === 'string' && Array.isArray(m.components);
    case 'readMemory':
      return typeof m.address === 'string' && typeof m.length === 'number';
    default:
      return true;
  }
}
