// Struct decoder page: the value tree of one object. Members expand in place; a non-null
// pointer to a struct or union expands into the object it points at, and a list_head into the
// struct holding the entry it links to (both decoded by the host when first expanded), or into
// a table of all its entries (walked by the host, bounded).
// Each row: name, type, value; actions copy the value or address or open the member in a
// memory inspector.
import { action, addStyles, button, heading, registeredComponents, row, statusLine, textField } from '../components';
import { connectToHost } from '../components/host';
import type { ValueNode } from '../../src/types/decoded-value';
import type { StructDecoderHostMessage, StructDecoderWebviewMessage } from '../../src/types/webview-protocol';

interface SavedState {
  expression: string;
}

const host = connectToHost<StructDecoderHostMessage, StructDecoderWebviewMessage, SavedState>();

addStyles(`
  body { padding: 0 12px; }
  h1 { font-size: 1.2em; margin: 8px 0 4px; }
  #tree { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
  ul { list-style: none; margin: 0; padding-left: 1.2em; }
  #tree > ul { padding-left: 0; }
  .node { white-space: pre; line-height: 20px; cursor: default; }
  .node:hover { background: var(--vscode-list-hoverBackground); }
  .twisty { display: inline-block; width: 1em; cursor: pointer; color: var(--vscode-icon-foreground); }
  .name { color: var(--vscode-symbolIcon-fieldForeground, var(--vscode-foreground)); }
  .type { color: var(--vscode-descriptionForeground); margin-left: 0.6em; }
  .value { margin-left: 0.6em; color: var(--vscode-debugTokenExpression-value, var(--vscode-foreground)); }
  .value.string { color: var(--vscode-debugTokenExpression-string, var(--vscode-foreground)); }
  .value.error { color: var(--vscode-errorForeground); }
  .offset, .size { display: inline-block; text-align: right; color: var(--vscode-descriptionForeground); margin-right: 0.6em; }
  .offset { min-width: 5em; }
  .size { min-width: 3.5em; }
  .bits { margin-left: 0.6em; color: var(--vscode-debugTokenExpression-name, var(--vscode-foreground)); }
  .note { margin-left: 0.6em; font-style: italic; color: var(--vscode-descriptionForeground); }
  .list-table { border-collapse: collapse; margin: 2px 0 2px 1em; }
  .list-table th { text-align: left; font-weight: normal; color: var(--vscode-descriptionForeground); padding-right: 1.2em; }
  .list-table td { padding-right: 1.2em; white-space: pre; }
  .list-table tbody tr:hover { background: var(--vscode-list-hoverBackground); }
  .list-note { margin-left: 1em; font-style: italic; color: var(--vscode-descriptionForeground); }
  .list-note.error { color: var(--vscode-errorForeground); }
  .actions { visibility: hidden; margin-left: 0.6em; }
  .node:hover .actions, .node:focus-within .actions { visibility: visible; }
`);

const title = heading('Struct Decoder');
const expressionField = textField('expression', 'Expression', 'init_task, *(struct task_struct *)0xffff…, per_cpu(runqueues, 0)', '', 50);
/** Which target this panel reads (the host says it on every session change). */
const targetLine = statusLine('target');
const status = statusLine('status');
const tree = document.createElement('div');
tree.id = 'tree';
tree.setAttribute('role', 'tree');
document.body.append(title, targetLine.element, row(expressionField.element, button('decode', 'Decode', decodeTyped)), status.element, tree);
expressionField.onEnter(decodeTyped);

let nextRequestId = 1;
/** The last expression the host could not decode (retried when a session opens). */
let failedExpression: string | undefined;
const pending = new Map<number, (answer: Extract<StructDecoderHostMessage, { type: 'followed' }>) => void>();

function decodeTyped(): void {
  const expression = expressionField.value().trim();
  if (expression === '') return status.set('Type an expression to decode.', true);
  status.set(`Decoding ${expression}…`);
  host.post({ type: 'decode', expression });
}

function follow(message: { type: 'follow'; expression: string } | Omit<Extract<StructDecoderWebviewMessage, { type: 'followList' }>, 'requestId'>): Promise<Extract<StructDecoderHostMessage, { type: 'followed' }>> {
  const requestId = nextRequestId++;
  return new Promise((resolve) => {
    pending.set(requestId, resolve);
    host.post({ ...message, requestId } as StructDecoderWebviewMessage);
  });
}

/** What a row shows after the type: ` = value`. */
function valueText(n: ValueNode): { text: string; className: string } {
  if (n.error !== undefined) return { text: `<${n.error}>`, className: 'error' };
  if (n.pointer) return { text: n.pointer.isNull ? '= NULL' : `= ${n.pointer.address}${n.pointer.symbol ? ` <${n.pointer.symbol}>` : ''}`, className: '' };
  if (n.value === undefined) return { text: n.omitted ? `(${n.omitted} more not shown)` : '', className: '' };
  if (typeof n.value === 'string' && n.kind === 'array') return { text: `= ${JSON.stringify(n.value)}`, className: 'string' };
  if (n.kind === 'enum' || n.kind === 'enum64') return { text: `= ${String(n.value)}${n.numeric !== undefined && n.numeric !== String(n.value) ? ` (${n.numeric})` : ''}`, className: '' };
  return { text: `= ${String(n.value)}${n.hex !== undefined && typeof n.value !== 'boolean' && n.hex !== String(n.value) ? ` (${n.hex})` : ''}`, className: '' };
}

/** The text "Copy value" puts on the clipboard. */
function copyText(n: ValueNode): string {
  if (n.pointer) return n.pointer.address;
  if (n.value !== undefined && n.value !== null) return String(n.value);
  return valueText(n).text.replace(/^= /, '');
}

function followExpression(n: ValueNode): string | undefined {
  const p = n.pointer;
  if (!p || p.isNull || !/^(struct|union) /.test(p.target)) return undefined;
  return `*(${p.target} *)${p.address}`;
}

const isListHead = (n: ValueNode): boolean => n.type === 'struct list_head' && n.children !== undefined && n.address !== undefined;

/**
 * One tree item. `path` (dotted member names, `*` for what a pointer leads to, `entry` for a
 * list's next entry) names it in data-path, for people reading the DOM and for tests.
 */
function item(n: ValueNode, path: string, owner: ValueNode | undefined, expanded: boolean): HTMLElement {
  const li = document.createElement('li');
  li.setAttribute('role', 'treeitem');
  const line = document.createElement('div');
  line.className = 'node';
  line.dataset.path = path;
  const twisty = document.createElement('span');
  twisty.className = 'twisty';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = n.bitSize !== undefined ? `${n.name}:${n.bitSize}` : n.name;
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = n.type;
  // Where the member lies and how big it is, as crash's `struct -o` prints it: offset from the
  // decoded object's start, size in bytes.
  const offset = document.createElement('span');
  offset.className = 'offset';
  offset.textContent = `+0x${n.offset.toString(16)}`;
  offset.title = `offset ${n.offset} bytes from the start of the decoded object`;
  const size = document.createElement('span');
  size.className = 'size';
  size.textContent = `${n.size} B`;
  const value = document.createElement('span');
  const shown = valueText(n);
  value.className = `value ${shown.className}`.trim();
  value.textContent = shown.text;
  const bits = document.createElement('span');
  bits.className = 'bits';
  if (n.bits) bits.textContent = `[${n.bits.names.join(' | ')}]`;
  const note = document.createElement('span');
  note.className = 'note';
  if (n.bits?.note) note.textContent = n.bits.note;
  const actions = document.createElement('span');
  actions.className = 'actions';
  actions.append(action('copy', 'Copy the value', () => host.post({ type: 'copy', text: copyText(n) }), 'copy-value'));
  if (n.address) {
    actions.append(
      action('copy address', `Copy the address (${n.address})`, () => host.post({ type: 'copy', text: n.address! }), 'copy-address'),
      action('memory', `Open ${n.address} in a memory inspector`, () => host.post({ type: 'openMemory', address: n.address!, size: n.size }), 'open-memory'),
    );
  }
  const children = document.createElement('ul');
  children.setAttribute('role', 'group');
  let filled = false;
  const fill = async (): Promise<void> => {
    filled = true;
    if (n.children) {
      for (const c of n.children) children.append(item(c, path === '' ? c.name : `${path}.${c.name}`, n, false));
      return;
    }
    const expression = followExpression(n);
    if (!expression) return;
    const answer = await follow({ type: 'follow', expression });
    children.append(answerItem(answer, `${path}.*`));
  };
  const followable = (n.children?.length ?? 0) > 0 || followExpression(n) !== undefined;
  if (isListHead(n)) {
    const next = n.children!.find((c) => c.name === 'next')?.pointer;
    if (next && !next.isNull) {
      actions.prepend(
        action('next entry…', 'Decode the struct holding the entry this list_head links to (container_of)', () => {
          void follow({ type: 'followList', pointer: next.address, headAddress: n.address!, ownerType: owner?.kind === 'struct' ? owner.type : undefined, member: n.name }).then((answer) => {
            setOpen(true);
            children.append(answerItem(answer, `${path}.entry`));
          });
        }, 'follow-list'),
        action('walk list…', 'Walk the whole list into a table: one row per entry (the struct holding them picked as for next entry)', () => {
          void walkList({ type: 'followList', table: true, pointer: next.address, headAddress: n.address!, ownerType: owner?.kind === 'struct' ? owner.type : undefined, member: n.name }).then((answer) => {
            setOpen(true);
            children.querySelector(':scope > .list-table-item')?.remove();
            const table = listTableItem(answer, `${path}.table`);
            children.append(table);
            table.scrollIntoView({ block: 'nearest' });
          });
        }, 'walk-list'),
      );
    }
  }
  const setOpen = (open: boolean): void => {
    twisty.textContent = open ? '▾' : '▸';
    li.setAttribute('aria-expanded', String(open));
    children.hidden = !open;
    if (open && !filled) void fill();
  };
  if (followable || isListHead(n)) {
    twisty.addEventListener('click', () => setOpen(children.hidden));
    setOpen(expanded);
  } else {
    twisty.textContent = ' ';
    children.hidden = true;
  }
  line.append(twisty, offset, size, name, type, value, bits, note, actions);
  li.append(line, children);
  return li;
}

type ListTableAnswer = Extract<StructDecoderHostMessage, { type: 'listTable' }>;
const pendingTables = new Map<number, (answer: ListTableAnswer) => void>();

function walkList(message: Omit<Extract<StructDecoderWebviewMessage, { type: 'followList' }>, 'requestId'>): Promise<ListTableAnswer> {
  const requestId = nextRequestId++;
  status.set(`Walking the list at ${message.headAddress}…`);
  return new Promise((resolve) => {
    pendingTables.set(requestId, resolve);
    host.post({ ...message, requestId });
  });
}

/** A walked list as a table: #, address, then the host's columns; what it is and where it stopped under it. */
function listTableItem(answer: ListTableAnswer, path: string): HTMLElement {
  const li = document.createElement('li');
  li.className = 'list-table-item';
  const table = document.createElement('table');
  table.className = 'list-table';
  table.dataset.path = path;
  const head = table.createTHead().insertRow();
  for (const label of ['#', 'address', ...answer.columns]) head.append(Object.assign(document.createElement('th'), { textContent: label }));
  const body = table.createTBody();
  answer.rows.forEach((r, i) => {
    const tr = body.insertRow();
    tr.dataset.address = r.address;
    for (const text of [String(i), r.address, ...r.values]) tr.insertCell().textContent = text;
  });
  const note = document.createElement('div');
  note.className = answer.error ? 'list-note error' : 'list-note';
  const what = answer.entryType ? `${answer.rows.length} entr${answer.rows.length === 1 ? 'y' : 'ies'} of ${answer.entryType} via ${answer.member}` : '';
  note.textContent = [what, answer.more ? `the first ${answer.rows.length}: the list goes on` : '', answer.error ? `stopped: ${answer.error}` : ''].filter(Boolean).join('; ');
  status.set(note.textContent, answer.error !== undefined);
  li.append(table, note);
  return li;
}

function answerItem(answer: Extract<StructDecoderHostMessage, { type: 'followed' }>, path: string): HTMLElement {
  if (answer.node) return item({ ...answer.node, name: answer.expression ?? answer.node.name }, path, undefined, true);
  return item({ name: answer.expression ?? 'follow', type: '', typeId: 0, kind: 'error', offset: 0, size: 0, error: answer.error ?? 'nothing decoded' }, path, undefined, false);
}

host.onMessage((message) => {
  switch (message.type) {
    case 'ping':
      host.post({ type: 'pong', id: message.id, heading: title.textContent ?? '', components: registeredComponents() });
      break;
    case 'status':
      targetLine.set(message.text, !message.connected);
      if (!message.connected || tree.childElementCount === 0) status.set(message.text, !message.connected);
      // Restored before the session was back: decode again now that it is.
      if (message.connected && failedExpression) host.post({ type: 'decode', expression: failedExpression });
      break;
    case 'decoded': {
      expressionField.set(message.expression);
      host.saveState({ expression: message.expression });
      failedExpression = message.root ? undefined : message.expression;
      const list = document.createElement('ul');
      document.title = `Struct: ${message.title ?? message.expression}`;
      if (message.root) {
        list.append(item(message.root, '', undefined, true));
        status.set(`${message.expression}: ${message.root.type}${message.root.address ? ` at ${message.root.address}` : ''}, ${message.root.size} bytes`);
      } else {
        status.set(`Cannot decode ${message.expression}: ${message.error ?? 'no value'}`, true);
      }
      tree.replaceChildren(list);
      break;
    }
    case 'followed':
      pending.get(message.requestId)?.(message);
      pending.delete(message.requestId);
      break;
    case 'listTable':
      pendingTables.get(message.requestId)?.(message);
      pendingTables.delete(message.requestId);
      break;
  }
});

const saved = host.savedState();
if (saved?.expression) {
  expressionField.set(saved.expression);
  host.post({ type: 'decode', expression: saved.expression });
} else {
  status.set('Type an expression and press Decode.');
}
host.post({ type: 'ready' });
