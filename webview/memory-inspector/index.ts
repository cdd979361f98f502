// Memory inspector page: asks the host for a range of target memory and shows the answer.
import { button, heading, preformatted, registeredComponents, row, statusLine, textField } from '../components';
import { connectToHost } from '../components/host';
import type { MemoryInspectorHostMessage, MemoryInspectorWebviewMessage } from '../protocol';

const host = connectToHost<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage>();

const title = heading('Memory Inspector');
const address = textField('address', 'Address', 'kernel virtual address or symbol, e.g. 0xffffffff81000000');
const length = textField('length', 'Length', 'bytes', '256');
const status = statusLine('status');
const dump = preformatted('dump');
/** Bytes per group in the dump: 1, or 2/4/8 shown as little-endian numbers (x86-64 targets). */
let groupBytes = 1;
let shown: { start: bigint; hex: string } | undefined;

function setGroup(bytes: number): void {
  groupBytes = bytes;
  if (shown) dump.set(hexDump(shown.start, shown.hex));
}

function requestRead(): void {
  const bytes = Number(length.value());
  if (!Number.isInteger(bytes) || bytes <= 0) {
    status.set(`Length must be a positive whole number of bytes, not '${length.value()}'.`, true);
    return;
  }
  host.post({ type: 'readMemory', address: address.value().trim(), length: bytes });
}

document.body.append(
  title,
  row(address.element, length.element, button('read', 'Read', requestRead)),
  row(...[1, 2, 4, 8].map((n) => button(`group-${n}`, `${n}-byte`, () => setGroup(n)))),
  status.element,
  dump.element,
);

host.onMessage((message) => {
  switch (message.type) {
    case 'ping':
      host.post({ type: 'pong', id: message.id, heading: title.textContent ?? '', components: registeredComponents() });
      break;
    case 'status':
      status.set(message.text, !message.connected);
      break;
    case 'readMemoryResult':
      if (message.hex === undefined || message.resolved === undefined) {
        status.set(`Reading ${message.length} bytes at ${message.address || '(no address)'} failed: ${message.error ?? 'no data'}`, true);
        shown = undefined;
        dump.set('');
      } else {
        const at = message.address === message.resolved ? message.resolved : `${message.address} (${message.resolved})`;
        status.set(`${message.length} bytes at ${at}`);
        shown = { start: BigInt(message.resolved), hex: message.hex };
        dump.set(hexDump(shown.start, shown.hex));
      }
      break;
    case 'goTo':
      address.set(message.address);
      length.set(String(message.length));
      requestRead();
      break;
  }
});

/** 16 bytes a line: address, hex in groups of `groupBytes` (a gap after 8 bytes) and ASCII. */
function hexDump(start: bigint, hex: string): string {
  const lines: string[] = [];
  for (let at = 0; at < hex.length / 2; at += 16) {
    const bytes = (hex.slice(at * 2, at * 2 + 32).match(/../g) ?? []).map((b) => parseInt(b, 16));
    const groups: string[] = [];
    for (let g = 0; g < bytes.length; g += groupBytes) {
      // Little-endian: the group's last byte is the number's most significant.
      const group = bytes.slice(g, g + groupBytes).reverse().map((b) => b.toString(16).padStart(2, '0')).join('');
      groups.push(group + (g + groupBytes === 8 && groupBytes < 8 ? ' ' : ''));
    }
    const hexPart = groups.join(' ');
    const ascii = bytes.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${(start + BigInt(at)).toString(16).padStart(16, '0')}  ${hexPart.padEnd(49)} |${ascii}|`);
  }
  return lines.join('\n');
}

host.post({ type: 'ready' });
