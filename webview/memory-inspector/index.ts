// Memory inspector page: asks the host for a range of target memory and shows the answer.
import { button, heading, registeredComponents, row, statusLine, textField } from '../components';
import { connectToHost } from '../components/host';
import type { MemoryInspectorHostMessage, MemoryInspectorWebviewMessage } from '../protocol';

const host = connectToHost<MemoryInspectorHostMessage, MemoryInspectorWebviewMessage>();

const title = heading('Memory Inspector');
const address = textField('address', 'Address', 'kernel virtual address or symbol, e.g. 0xffffffff81000000');
const length = textField('length', 'Length', 'bytes', '256');
const status = statusLine('status');

function requestRead(): void {
  const bytes = Number(length.value());
  if (!Number.isInteger(bytes) || bytes <= 0) {
    status.set(`Length must be a positive whole number of bytes, not '${length.value()}'.`, true);
    return;
  }
  host.post({ type: 'readMemory', address: address.value().trim(), length: bytes });
}

document.body.append(title, row(address.element, length.element, button('read', 'Read', requestRead)), status.element);

host.onMessage((message) => {
  switch (message.type) {
    case 'ping':
      host.post({ type: 'pong', id: message.id, heading: title.textContent ?? '', components: registeredComponents() });
      break;
    case 'status':
      status.set(message.text, !message.connected);
      break;
    case 'readMemoryResult':
      status.set(`Reading ${message.length} bytes at ${message.address || '(no address)'} failed: ${message.error}`, true);
      break;
  }
});

host.post({ type: 'ready' });
