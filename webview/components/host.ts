// The webview's side of the message channel to the extension host.

interface VsCodeApi {
  postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

// acquireVsCodeApi may be called only once per page.
const api = acquireVsCodeApi();

export interface HostChannel<FromHost, ToHost> {
  post(message: ToHost): void;
  onMessage(handler: (message: FromHost) => void): void;
}

export function connectToHost<FromHost, ToHost>(): HostChannel<FromHost, ToHost> {
  return {
    post: (message) => api.postMessage(message),
    onMessage: (handler) => window.addEventListener('message', (event: MessageEvent<FromHost>) => handler(event.data)),
  };
}
