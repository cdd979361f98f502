// The project's own small UI components. Webviews use only these, never the design system
// directly, so it can be replaced in this one folder (it was @vscode/webview-ui-toolkit until
// that was archived upstream; now @vscode-elements/elements, its maintained successor). Each
// element module registers its custom element when imported; only the five used are bundled.
// Everything here takes its colours from VS Code's theme variables (--vscode-*), so pages follow
// light, dark and high-contrast themes.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';

const DESIGN_SYSTEM_ELEMENTS = ['vscode-button', 'vscode-textfield', 'vscode-single-select', 'vscode-option', 'vscode-checkbox'];

/** Names of the custom elements registered here (reported to the host in `pong`). */
export function registeredComponents(): string[] {
  return DESIGN_SYSTEM_ELEMENTS.filter((name) => customElements.get(name) !== undefined);
}

/**
 * Adds a style sheet to the page. Constructed style sheets, not <style> elements: the pages'
 * Content-Security-Policy allows no inline styles.
 */
export function addStyles(css: string): void {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

addStyles(`
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); }
  .grass-row { display: flex; gap: 8px; align-items: flex-end; flex-wrap: wrap; margin: 4px 0; }
  .grass-toggle[aria-pressed="true"] { outline: 1px solid var(--vscode-focusBorder); }
  .grass-error { color: var(--vscode-errorForeground); }
  .grass-label { display: flex; flex-direction: column; gap: 2px; }
`);

export function heading(text: string): HTMLElement {
  const h = document.createElement('h1');
  h.textContent = text;
  return h;
}

export function button(id: string, label: string, onClick: () => void, options: { secondary?: boolean; title?: string } = {}): HTMLElement {
  const b = document.createElement('vscode-button');
  b.id = id;
  b.textContent = label;
  if (options.secondary) b.toggleAttribute('secondary', true);
  if (options.title) b.title = options.title;
  b.addEventListener('click', onClick);
  return b;
}

/** A button that stays pressed (group width, endianness, ...): `set(pressed)` shows its state. */
export function toggleButton(id: string, label: string, onClick: () => void): { element: HTMLElement; set(pressed: boolean): void } {
  const b = button(id, label, onClick, { secondary: true });
  b.classList.add('grass-toggle');
  return {
    element: b,
    set(pressed) {
      b.setAttribute('aria-pressed', String(pressed));
      b.toggleAttribute('secondary', !pressed);
    },
  };
}

export interface TextField {
  element: HTMLElement;
  value(): string;
  set(value: string): void;
  /** Enter in the field. */
  onEnter(handler: () => void): void;
}

export function textField(id: string, label: string, placeholder: string, initial = '', size?: number): TextField {
  const field = document.createElement('vscode-textfield') as HTMLElement & { value: string };
  field.id = id;
  field.setAttribute('placeholder', placeholder);
  // A width through the CSSOM (the pages' Content-Security-Policy refuses style attributes).
  if (size) field.style.width = `${size + 4}ch`;
  field.value = initial;
  return {
    element: labelled(id, label, field),
    value: () => field.value,
    set: (value) => (field.value = value),
    onEnter: (handler) => field.addEventListener('keydown', (e) => (e as KeyboardEvent).key === 'Enter' && handler()),
  };
}

/** A control with its caption above it, the caption naming it for screen readers. */
function labelled(id: string, label: string, control: HTMLElement): HTMLElement {
  const wrapper = document.createElement('div');
  wrapper.className = 'grass-label';
  const caption = document.createElement('label');
  caption.htmlFor = id;
  caption.textContent = label;
  control.setAttribute('aria-label', label);
  wrapper.append(caption, control);
  return wrapper;
}

export interface Dropdown<T extends string> {
  element: HTMLElement;
  value(): T;
  set(value: T): void;
}

/** A labelled choice among fixed options; `onChange` gets the chosen value. */
export function dropdown<T extends string>(id: string, label: string, options: { value: T; label: string }[], onChange: (value: T) => void): Dropdown<T> {
  const select = document.createElement('vscode-single-select') as HTMLElement & { value: string };
  select.id = id;
  for (const o of options) {
    const option = document.createElement('vscode-option') as HTMLElement & { value: string };
    option.setAttribute('value', o.value);
    option.textContent = o.label;
    select.append(option);
  }
  select.addEventListener('change', () => onChange(select.value as T));
  return { element: labelled(id, label, select), value: () => select.value as T, set: (value) => (select.value = value) };
}

export function checkbox(id: string, label: string, onChange: (checked: boolean) => void): { element: HTMLElement; set(checked: boolean): void } {
  const box = document.createElement('vscode-checkbox') as HTMLElement & { checked: boolean };
  box.id = id;
  box.setAttribute('label', label);
  box.addEventListener('change', () => onChange(box.checked));
  return { element: box, set: (checked) => (box.checked = checked) };
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
      p.classList.toggle('grass-error', isError);
    },
  };
}

export function row(...children: HTMLElement[]): HTMLElement {
  const div = document.createElement('div');
  div.className = 'grass-row';
  div.append(...children);
  return div;
}

addStyles(`
  .grass-action { background: none; border: none; padding: 0 4px; cursor: pointer; color: var(--vscode-textLink-foreground); font: inherit; }
  .grass-action:hover { text-decoration: underline; }
  .grass-action:focus-visible { outline: 1px solid var(--vscode-focusBorder); }
`);

/** A small link-like action beside a row (many per page, so a plain button, not a design-system one). */
export function action(label: string, title: string, onClick: () => void, className = ''): HTMLElement {
  const b = document.createElement('button');
  b.className = `grass-action ${className}`.trim();
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', (event) => {
    event.stopPropagation();
    onClick();
  });
  return b;
}
