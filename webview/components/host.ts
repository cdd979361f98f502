// The webview's side of the message channel to the extension host, and the page's saved state
// (what VS Code hands back when it restores the panel after a reload).

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

// acquireVsCodeApi may be called only once per page.
const api = acquireVsCodeApi();

export interface HostChannel<FromHost, ToHost, State> {
  post(message: ToHost): void;
  onMessage(handler: (message: FromHost) => void): void;
  /** What setState saved before a reload; undefined on a new panel. */
  savedState(): State | undefined;
  saveState(state: State): void;
}

export function connectToHost<FromHost, ToHost, State = never>(): HostChannel<FromHost, ToHost, State> {
  return {
    post: (message) => api.postMessage(message),
    onMessage: (handler) => window.addEventListener('message', (event: MessageEvent<FromHost>) => handler(event.data)),
    savedState: () => (api.getState() ?? undefined) as State | undefined,
    saveState: (state) => api.setState(state),
  };
}
