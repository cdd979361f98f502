// Memory inspector page: a hex + ASCII view scrolling over a range far larger than what is
// fetched. Only the rows on screen exist in the DOM; the 4 KiB pages under them are asked of
// the host when they first show and kept in a bounded cache. Refresh (by hand or on a timer)
// fetches the visible pages again and marks the bytes that changed.
import { addStyles, button, checkbox, dropdown, heading, registeredComponents, row, statusLine, textField, toggleButton } from '../components';
import { connectToHost } from '../components/host';
import {
  addressSpaceLabel,
  hexAddress,
  INSPECTOR_MAX_SPAN,
  INSPECTOR_PAGE_BYTES,
  type GroupBytes,
  type InspectorState,
  type MemoryInspectorHostMessage,
  type MemoryInspectorWebviewMessage,
  type SymbolAnnotation,
} from '../../src/types/webview-protocol';
import type { AddressSpace } from '../../src/types/target';

const host = connectToHost<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage, InspectorState>();

const BYTES_PER_ROW = 16;
const ROW_HEIGHT = 18;
/** Pages kept in the cache (4 KiB each): 2 MiB of target memory at most. */
const CACHE_PAGES = 512;
const ADDRESS_LIMIT = 1n << 64n;
const PAGE = BigInt(INSPECTOR_PAGE_BYTES);

addStyles(`
  html, body { height: 100%; margin: 0; }
  body { display: flex; flex-direction: column; padding: 0 12px; box-sizing: border-box; }
  h1 { font-size: 1.2em; margin: 8px 0 4px; }
  #rows { flex: 1; overflow-y: auto; position: relative; font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size);
          border-top: 1px solid var(--vscode-panel-border, transparent); user-select: none; }
  #rows-window { position: absolute; left: 0; right: 0; }
  .row { height: ${ROW_HEIGHT}px; line-height: ${ROW_HEIGHT}px; white-space: pre; }
  .addr { color: var(--vscode-editorLineNumber-foreground); }
  .group.mid { margin-right: 0.8em; }
  .byte.changed { background: var(--vscode-diffEditor-insertedTextBackground, rgba(155,185,85,.3)); color: var(--vscode-editorWarning-foreground); font-weight: bold; }
  .byte.selected, .ascii .selected { background: var(--vscode-editor-selectionBackground); }
  .byte.unreadable { color: var(--vscode-disabledForeground); }
  .ascii { margin-left: 0.6em; color: var(--vscode-textPreformat-foreground, inherit); }
  .ann { margin-left: 1em; color: var(--vscode-textLink-foreground); }
  /* The row keeps the panel's width: what follows the bytes is cut at its edge (all of it in the tooltip). */
  .row { display: flex; }
  .row > span { flex: none; }
  .row > .ann { flex: 0 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
  .ann.page-error { color: var(--vscode-errorForeground); }
  #selection { margin: 2px 0; }
  #data-inspector { border-collapse: collapse; margin: 2px 0 4px; font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
  #data-inspector th { text-align: left; font-weight: normal; color: var(--vscode-descriptionForeground); padding-right: 1em; }
  #data-inspector td { padding-right: 1.5em; white-space: pre; }
  #data-inspector .symbol { color: var(--vscode-textLink-foreground); }
`);

const saved = host.savedState();
const state: InspectorState = saved ?? {
  space: { kind: 'kernel' },
  addressText: '',
  base: '0x0',
  span: 1024 * 1024,
  focus: '0x0',
  groupBytes: 1,
  littleEndian: true,
  autoRefreshMs: 0,
};
/** Nothing is shown until the user (or the host) went to an address. */
let located = saved !== undefined && saved.addressText !== '';

interface CachedPage {
  bytes?: Uint8Array;
  error?: string;
  annotations: SymbolAnnotation[];
  /** Offsets in the page whose byte differed at the last refresh. */
  changed: Set<number>;
}
/** Pages by `space|address`; Map keeps insertion order, which serves as the LRU order. */
const cache = new Map<string, CachedPage>();
const inFlight = new Map<number, { key: string; refresh: boolean }>();
const requested = new Set<string>();
let nextRequestId = 1;
let selection: { anchor: bigint; end: bigint } | undefined;
/** What the last Go resolved (`init_task = 0x… (struct task_struct, 9792 bytes)`), shown under the controls. */
let resolvedNote: string | undefined;
/** Why the last Go failed: kept on the status line until the next Go, so a re-render (pages still arriving) does not wipe it. */
let goToError: string | undefined;
let refreshTimer: ReturnType<typeof setInterval> | undefined;

const spaceKey = (space: AddressSpace): string => (space.kind === 'user' ? `user:${space.pid}` : space.kind);
const pageKey = (page: bigint): string => `${spaceKey(state.space)}|${page.toString(16)}`;
const base = (): bigint => BigInt(state.base);

// ---- controls --------------------------------------------------------------------------------

const title = heading('Memory Inspector');
const spaceChoice = dropdown<'kernel' | 'physical' | 'user'>(
  'space',
  'Address space',
  [
    { value: 'kernel', label: 'kernel virtual' },
    { value: 'physical', label: 'physical' },
    { value: 'user', label: 'process (user)' },
  ],
  () => showPidField(),
);
const pid = textField('pid', 'PID', 'pid', state.space.kind === 'user' ? String(state.space.pid) : '', 8);
const address = textField('address', 'Address', 'address, symbol or expression: 0xffff…, init_task, &init_task.comm', state.addressText, 40);
const spanChoice = dropdown<string>(
  'span',
  'Range',
  [64 * 1024, 1024 * 1024, INSPECTOR_MAX_SPAN].map((n) => ({ value: String(n), label: n >= 1 << 20 ? `${n >> 20} MiB` : `${n >> 10} KiB` })),
  (value) => {
    state.span = Number(value);
    if (located) goTo(BigInt(state.focus));
  },
);
const groups = ([1, 2, 4, 8] as GroupBytes[]).map((n) => ({ n, toggle: toggleButton(`group-${n}`, `${n}`, () => setGroup(n)) }));
const endian = toggleButton('endian', 'little-endian', () => {
  state.littleEndian = !state.littleEndian;
  showSettings();
  render();
});
const autoRefresh = dropdown<string>(
  'auto-refresh',
  'Auto-refresh',
  [
    { value: '0', label: 'off' },
    { value: '1000', label: 'every 1 s' },
    { value: '5000', label: 'every 5 s' },
  ],
  (value) => setAutoRefresh(Number(value)),
);
let showSymbols = true;
const annotate = checkbox('annotate', 'symbols', (checked) => {
  showSymbols = checked;
  render();
});
annotate.set(true);
/** Which target this panel reads (the host says it on every session change). */
const targetLine = statusLine('target');
const status = statusLine('status');
const selectionLine = statusLine('selection');
// The data inspector: the 8 bytes from the selection's start read as each type (as VS Code's
// hex editor and memory tools show them), the pointer with the kernel symbol it points into.
const INSPECTED_BYTES = 8;
const dataInspector = document.createElement('table');
dataInspector.id = 'data-inspector';
dataInspector.hidden = true;
const inspectorCells = new Map<string, HTMLTableCellElement>();
for (const kind of ['u8', 'u16', 'u32', 'u64', 'i64', 'string', 'pointer']) {
  const tr = document.createElement('tr');
  tr.dataset.kind = kind;
  const th = document.createElement('th');
  th.textContent = kind;
  const td = document.createElement('td');
  tr.append(th, td);
  dataInspector.append(tr);
  inspectorCells.set(kind, td);
}
let pointerSymbol: { address: string; symbol?: string; requestId?: number } | undefined;
const rows = document.createElement('div');
rows.id = 'rows';
rows.tabIndex = 0;
const spacer = document.createElement('div');
const rowsWindow = document.createElement('div');
rowsWindow.id = 'rows-window';
rows.append(spacer, rowsWindow);

document.body.append(
  title,
  targetLine.element,
  row(spaceChoice.element, pid.element, address.element, button('go', 'Go', requestGoTo), spanChoice.element),
  row(
    ...groups.map((g) => g.toggle.element),
    endian.element,
    button('refresh', 'Refresh', () => refreshVisible(), { secondary: true }),
    autoRefresh.element,
    annotate.element,
    button('decode', 'Decode as struct…', decodeSelection, { secondary: true, title: 'Decode the selected address as a struct (kernel-virtual)' }),
    button('save', 'Save range…', saveSelection, { secondary: true, title: 'Save the selected bytes to a file' }),
  ),
  status.element,
  selectionLine.element,
  dataInspector,
  rows,
);
address.onEnter(requestGoTo);
pid.onEnter(requestGoTo);

function showPidField(): void {
  pid.element.style.display = spaceChoice.value() === 'user' ? '' : 'none';
}

function showSettings(): void {
  spaceChoice.set(state.space.kind);
  showPidField();
  spanChoice.set(String(state.span));
  for (const g of groups) g.toggle.set(g.n === state.groupBytes);
  endian.set(state.littleEndian);
  endian.element.textContent = state.littleEndian ? 'little-endian' : 'big-endian';
  autoRefresh.set(String(state.autoRefreshMs));
}

function setGroup(n: GroupBytes): void {
  state.groupBytes = n;
  showSettings();
  save();
  render();
}

function setAutoRefresh(ms: number): void {
  state.autoRefreshMs = ms;
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = ms > 0 ? setInterval(() => refreshVisible(), ms) : undefined;
  save();
}

function save(): void {
  host.saveState(state);
}

/** The space the controls name, or why it is not one. */
function chosenSpace(): AddressSpace | string {
  const kind = spaceChoice.value();
  if (kind !== 'user') return { kind };
  const n = Number(pid.value().trim());
  return Number.isInteger(n) && n > 0 ? { kind: 'user', pid: n } : `a process's addresses need its pid (a whole number above 0), not '${pid.value()}'`;
}

const pendingResolves = new Map<number, { text: string; space: AddressSpace }>();

function requestGoTo(): void {
  const space = chosenSpace();
  if (typeof space === 'string') return status.set(space, true);
  const text = address.value().trim();
  if (text === '') return status.set('Type an address, a symbol or an expression first.', true);
  const requestId = nextRequestId++;
  goToError = undefined;
  pendingResolves.set(requestId, { text, space });
  status.set(`Resolving ${text}…`);
  host.post({ type: 'resolve', requestId, text, space });
}

/** Shows `span` bytes around `target` and scrolls its row to the top. */
function goTo(target: bigint): void {
  const span = BigInt(state.span);
  let start = (target / PAGE) * PAGE - span / 2n;
  if (start < 0n) start = 0n;
  if (start + span > ADDRESS_LIMIT) start = ADDRESS_LIMIT - span;
  state.base = hexAddress(start);
  state.focus = hexAddress(target);
  located = true;
  selection = undefined;
  save();
  spacer.style.height = `${(state.span / BYTES_PER_ROW) * ROW_HEIGHT}px`;
  rows.scrollTop = Number((target - start) / BigInt(BYTES_PER_ROW)) * ROW_HEIGHT;
  render();
}

// ---- pages -----------------------------------------------------------------------------------

function requestPage(page: bigint, refresh: boolean): void {
  const key = pageKey(page);
  if (requested.has(key)) return;
  requested.add(key);
  const requestId = nextRequestId++;
  inFlight.set(requestId, { key, refresh });
  host.post({ type: 'readPage', requestId, space: state.space, address: hexAddress(page) });
}

function storePage(message: Extract<MemoryInspectorHostMessage, { type: 'page' }>): void {
  const request = inFlight.get(message.requestId);
  if (!request) return;
  inFlight.delete(message.requestId);
  requested.delete(request.key);
  const previous = cache.get(request.key);
  const bytes = message.hex !== undefined ? hexBytes(message.hex) : undefined;
  const changed = new Set<number>();
  if (request.refresh && previous?.bytes && bytes) {
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== previous.bytes[i]) changed.add(i);
  }
  cache.delete(request.key);
  cache.set(request.key, { bytes, error: message.error, annotations: message.annotations, changed });
  while (cache.size > CACHE_PAGES) cache.delete(cache.keys().next().value!);
  scheduleRender();
}

function visibleRows(): { first: number; count: number } {
  const total = state.span / BYTES_PER_ROW;
  const first = Math.max(0, Math.floor(rows.scrollTop / ROW_HEIGHT) - 4);
  const count = Math.min(total - first, Math.ceil(rows.clientHeight / ROW_HEIGHT) + 8);
  return { first, count: Math.max(0, count) };
}

function visiblePages(): bigint[] {
  const { first, count } = visibleRows();
  if (count === 0) return [];
  const start = base() + BigInt(first * BYTES_PER_ROW);
  const end = start + BigInt(count * BYTES_PER_ROW);
  const pages: bigint[] = [];
  for (let p = (start / PAGE) * PAGE; p < end; p += PAGE) pages.push(p);
  return pages;
}

function refreshVisible(): void {
  if (!located) return;
  for (const page of visiblePages()) requestPage(page, true);
}

// ---- rendering -------------------------------------------------------------------------------

let renderQueued = false;
function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render(): void {
  if (!located) return;
  const { first, count } = visibleRows();
  rowsWindow.style.top = `${first * ROW_HEIGHT}px`;
  const fragment = document.createDocumentFragment();
  let missing = false;
  for (let r = first; r < first + count; r++) {
    const at = base() + BigInt(r * BYTES_PER_ROW);
    const page = (at / PAGE) * PAGE;
    const cached = cache.get(pageKey(page));
    if (!cached) {
      requestPage(page, false);
      missing = true;
    }
    fragment.append(renderRow(at, cached, Number(at - page)));
  }
  rowsWindow.replaceChildren(fragment);
  // Where the view is scrolled to is what a reload restores.
  state.focus = hexAddress(base() + BigInt(Math.floor(rows.scrollTop / ROW_HEIGHT) * BYTES_PER_ROW));
  save();
  const shownStart = base() + BigInt(first * BYTES_PER_ROW);
  if (goToError) status.set(goToError, true);
  else status.set(
    `${addressSpaceLabel(state.space)} ${hexAddress(shownStart)}–${hexAddress(shownStart + BigInt(count * BYTES_PER_ROW))} of ${hexAddress(base())}+${(state.span / 1024).toFixed(0)} KiB` +
      `${missing ? ' (loading…)' : ''}; ${cache.size} pages cached`,
  );
  showSelection();
  showDataInspector();
}

/** The byte at an address from the cached pages, if read. */
function byteAt(at: bigint): number | undefined {
  const page = (at / PAGE) * PAGE;
  return cache.get(pageKey(page))?.bytes?.[Number(at - page)];
}

function showDataInspector(): void {
  const range = selectedRange();
  // Shown while a byte is selected: the rows keep the height otherwise.
  dataInspector.hidden = range === undefined;
  if (!range) return;
  const bytes: number[] = [];
  for (let i = 0; i < INSPECTED_BYTES; i++) {
    const b = byteAt(range.start + BigInt(i));
    if (b === undefined) break;
    bytes.push(b);
  }
  const value = (n: number): bigint | undefined => {
    if (bytes.length < n) return undefined;
    const ordered = state.littleEndian ? bytes.slice(0, n).reverse() : bytes.slice(0, n);
    return ordered.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  };
  const number = (v: bigint | undefined): string => (v === undefined ? '—' : `${v} (0x${v.toString(16)})`);
  const u64 = value(8);
  inspectorCells.get('u8')!.textContent = number(value(1));
  inspectorCells.get('u16')!.textContent = number(value(2));
  inspectorCells.get('u32')!.textContent = number(value(4));
  inspectorCells.get('u64')!.textContent = number(u64);
  inspectorCells.get('i64')!.textContent = u64 === undefined ? '—' : String(BigInt.asIntN(64, u64));
  const text = bytes.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0 ? '\\0' : '.')).join('');
  inspectorCells.get('string')!.textContent = bytes.length ? text : '—';
  const pointerCell = inspectorCells.get('pointer')!;
  if (u64 === undefined) {
    pointerCell.textContent = "the selection's 8 bytes are not read yet";
    return;
  }
  const address = hexAddress(u64);
  if (pointerSymbol?.address !== address) {
    pointerSymbol = { address, requestId: nextRequestId++ };
    host.post({ type: 'symbolize', requestId: pointerSymbol.requestId!, address });
  }
  const symbol = document.createElement('span');
  symbol.className = 'symbol';
  symbol.textContent = pointerSymbol.requestId !== undefined ? ' …' : pointerSymbol.symbol ? ` <${pointerSymbol.symbol}>` : ' (no kernel symbol)';
  pointerCell.replaceChildren(address, symbol);
}

function renderRow(at: bigint, page: CachedPage | undefined, offsetInPage: number): HTMLElement {
  const line = document.createElement('div');
  line.className = 'row';
  line.dataset.address = hexAddress(at);
  const addr = document.createElement('span');
  addr.className = 'addr';
  addr.textContent = at.toString(16).padStart(16, '0') + '  ';
  const hexPart = document.createElement('span');
  hexPart.className = 'hex';
  const ascii = document.createElement('span');
  ascii.className = 'ascii';
  const g = state.groupBytes;
  for (let group = 0; group < BYTES_PER_ROW; group += g) {
    const span = document.createElement('span');
    span.className = group + g === 8 ? 'group mid' : 'group';
    // Within a group the most significant byte comes first: the last one for little-endian.
    for (let k = 0; k < g; k++) {
      const i = group + (state.littleEndian && g > 1 ? g - 1 - k : k);
      span.append(byteCell(at + BigInt(i), page, offsetInPage + i));
    }
    // A real space between groups, so that copied text reads as the screen does.
    hexPart.append(span, ' ');
  }
  for (let i = 0; i < BYTES_PER_ROW; i++) ascii.append(asciiCell(at + BigInt(i), page, offsetInPage + i));
  line.append(addr, hexPart, ascii);
  const notes = showSymbols && page ? page.annotations.filter((a) => a.offset >= offsetInPage && a.offset < offsetInPage + BYTES_PER_ROW) : [];
  if (notes.length > 0) {
    const ann = document.createElement('span');
    ann.className = 'ann';
    ann.textContent = notes.map((a) => `+${a.offset - offsetInPage}: ${a.symbol}`).join('  ');
    ann.title = ann.textContent;
    line.append(ann);
  } else if (page?.error && offsetInPage === 0) {
    const ann = document.createElement('span');
    // Cut at the row's edge (the host puts the cause first); all of it in the tooltip.
    ann.className = 'ann page-error';
    ann.textContent = page.error;
    ann.title = page.error;
    line.append(ann);
  }
  return line;
}

function isSelected(at: bigint): boolean {
  if (!selection) return false;
  const [lo, hi] = selection.anchor <= selection.end ? [selection.anchor, selection.end] : [selection.end, selection.anchor];
  return at >= lo && at <= hi;
}

function byteCell(at: bigint, page: CachedPage | undefined, offset: number): HTMLElement {
  const cell = document.createElement('span');
  cell.className = 'byte';
  cell.dataset.address = hexAddress(at);
  const value = page?.bytes?.[offset];
  cell.textContent = value === undefined ? (page ? '??' : '  ') : value.toString(16).padStart(2, '0');
  if (page && value === undefined) cell.classList.add('unreadable');
  if (page?.changed.has(offset)) cell.classList.add('changed');
  if (isSelected(at)) cell.classList.add('selected');
  return cell;
}

function asciiCell(at: bigint, page: CachedPage | undefined, offset: number): HTMLElement {
  const cell = document.createElement('span');
  const value = page?.bytes?.[offset];
  cell.textContent = value === undefined ? ' ' : value >= 0x20 && value < 0x7f ? String.fromCharCode(value) : '.';
  if (page?.changed.has(offset)) cell.classList.add('changed');
  if (isSelected(at)) cell.classList.add('selected');
  return cell;
}

// ---- selection, decode, save -----------------------------------------------------------------

rows.addEventListener('mousedown', (event) => {
  const target = (event.target as HTMLElement).closest<HTMLElement>('.byte');
  if (!target?.dataset.address) return;
  const at = BigInt(target.dataset.address);
  selection = event.shiftKey && selection ? { anchor: selection.anchor, end: at } : { anchor: at, end: at };
  render();
});

function selectedRange(): { start: bigint; length: number } | undefined {
  if (!selection) return undefined;
  const [lo, hi] = selection.anchor <= selection.end ? [selection.anchor, selection.end] : [selection.end, selection.anchor];
  return { start: lo, length: Number(hi - lo) + 1 };
}

function showSelection(): void {
  const range = selectedRange();
  selectionLine.set(
    range
      ? `Selected ${hexAddress(range.start)}, ${range.length} byte${range.length === 1 ? '' : 's'}`
      : `${resolvedNote ? `${resolvedNote}. ` : ''}Click a byte to select it; shift-click to extend.`,
  );
}

function decodeSelection(): void {
  const start = selectedRange()?.start ?? (located ? BigInt(state.focus) : undefined);
  if (start === undefined) return status.set('Go to an address first.', true);
  host.post({ type: 'decodeAsStruct', space: state.space, address: hexAddress(start) });
}

function saveSelection(): void {
  const range = selectedRange();
  if (!range) return status.set('Select the bytes to save first (click a byte, shift-click the last one).', true);
  host.post({ type: 'saveRange', space: state.space, address: hexAddress(range.start), length: range.length });
}

rows.addEventListener('scroll', () => {
  scheduleRender();
});
new ResizeObserver(() => scheduleRender()).observe(rows);

// ---- messages from the host ------------------------------------------------------------------

host.onMessage((message) => {
  switch (message.type) {
    case 'ping':
      host.post({ type: 'pong', id: message.id, heading: title.textContent ?? '', components: registeredComponents() });
      break;
    case 'status':
      targetLine.set(message.text, !message.connected);
      if (!message.connected) status.set(message.text, true);
      else if (located) {
        // A new session: what is cached came from the old one.
        cache.clear();
        render();
      } else status.set(message.text);
      break;
    case 'goTo':
      spaceChoice.set(message.space.kind);
      if (message.space.kind === 'user') pid.set(String(message.space.pid));
      showPidField();
      address.set(message.addressText);
      requestGoTo();
      break;
    case 'resolved': {
      const asked = pendingResolves.get(message.requestId);
      pendingResolves.delete(message.requestId);
      if (!asked) break;
      if (message.address === undefined) {
        goToError = `Cannot go to ${asked.text}: ${message.error ?? 'no address'}`;
        showGoToFailure(asked.text);
        break;
      }
      if (spaceKey(asked.space) !== spaceKey(state.space)) cache.clear();
      state.space = asked.space;
      state.addressText = asked.text;
      const at = BigInt(message.address);
      const what = message.typeName ? ` (${message.typeName}, ${message.size} bytes)` : '';
      showTitle(`Memory: ${asked.text} (${addressSpaceLabel(asked.space)})`);
      resolvedNote = `${asked.text} = ${message.address}${what}`;
      goTo(at);
      break;
    }
    case 'page':
      storePage(message);
      break;
    case 'notice':
      status.set(message.text, message.isError);
      break;
    case 'symbolized':
      if (pointerSymbol?.requestId !== message.requestId) break;
      pointerSymbol = { address: message.address, symbol: message.symbol };
      showDataInspector();
      break;
  }
});

/**
 * After a failed Go the previous object's bytes go (they would read as the new one's): the rows,
 * the selection and what the last Go resolved are cleared, the title and status say what failed.
 */
function showGoToFailure(text: string): void {
  located = false;
  selection = undefined;
  resolvedNote = undefined;
  state.addressText = '';
  save();
  rowsWindow.replaceChildren();
  spacer.style.height = '0px';
  showTitle(`Memory: ${text} (cannot go)`);
  status.set(goToError ?? `Cannot go to ${text}`, true);
  selectionLine.set('');
  showDataInspector();
}

/** The panel's tab (through the host) and the page's own title say what it shows. */
function showTitle(text: string): void {
  document.title = text;
  host.post({ type: 'title', text });
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

showSettings();
if (state.autoRefreshMs > 0) setAutoRefresh(state.autoRefreshMs);
if (located) {
  showTitle(`Memory: ${state.addressText} (${addressSpaceLabel(state.space)})`);
  const keep = BigInt(state.focus);
  spacer.style.height = `${(state.span / BYTES_PER_ROW) * ROW_HEIGHT}px`;
  requestAnimationFrame(() => {
    rows.scrollTop = Number((keep - base()) / BigInt(BYTES_PER_ROW)) * ROW_HEIGHT;
    render();
  });
} else {
  status.set('Type an address, symbol or expression and press Go.');
}
host.post({ type: 'ready' });
