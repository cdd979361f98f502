// The project's own small UI components. Webviews use only these, never the toolkit
// directly, so the toolkit (@vscode/webview-ui-toolkit, now unmaintained upstream) can be
// replaced in this one folder.
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeTextField } from '@vscode/webview-ui-toolkit';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeTextField());

/** Names of the custom elements registered here (reported to the host in `pong`). */
export function registeredComponents(): string[] {
  return ['vscode-button', 'vscode-text-field'].filter((name) => customElements.get(name) !== undefined);
}

export function heading(text: string): HTMLElement {
  const h = document.createElement('h1');
  h.textContent = text;
  return h;
}

export function button(id: string, label: string, onClick: () => void): HTMLElement {
  const b = document.createElement('vscode-button');
  b.id = id;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

export interface TextField {
  element: HTMLElement;
  value(): string;
  set(value: string): void;
}

export function textField(id: string, label: string, placeholder: string, initial = ''): TextField {
  const field = document.createElement('vscode-text-field') as HTMLElement & { value: string };
  field.id = id;
  field.setAttribute('placeholder', placeholder);
  field.textContent = label;
  field.value = initial;
  return { element: field, value: () => field.value, set: (value) => (field.value = value) };
}

/** A line of text the page updates (status, errors); announced to screen readers. */
export function statusLine(id: string): { element: HTMLElement; set(text: string, isError?: boolean): void } {
  const p = document.createElement('p');
  p.id = id;
  p.setAttribute('role', 'status');
  return {
    element: p,
    set(text, isError = false) {
      p.textContent = text;
      p.style.color = isError ? 'var(--vscode-errorForeground)' : '';
    },
  };
}

/** Preformatted text the page replaces (hex dumps). */
export function preformatted(id: string): { element: HTMLElement; set(text: string): void } {
  const pre = document.createElement('pre');
  pre.id = id;
  pre.style.fontFamily = 'var(--vscode-editor-font-family)';
  pre.style.fontSize = 'var(--vscode-editor-font-size)';
  return { element: pre, set: (text) => (pre.textContent = text) };
}

export function row(...children: HTMLElement[]): HTMLElement {
  const div = document.createElement('div');
  div.style.display = 'flex';
  div.style.gap = '8px';
  div.style.alignItems = 'flex-end';
  div.append(...children);
  return div;
}
