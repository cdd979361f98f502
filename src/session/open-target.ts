// The one way to open a target, for the CLI, the extension and the scripts: an rdma:// target
// through the relay (`grass monitor`) when one answers at the relay's socket (it holds the
// sessions; docs/rdma.md), else directly; shm: and offline images directly (src/rdma/connect.ts).
// A target the relay already holds is opened by its relay-side name (openHeld). The relay itself
// holds live targets' transports opened by openLiveTransport, the direct path without a client.
// No VS Code dependency.
import { parseTargetAddress, type TargetAddress } from '../rdma/address';
import { attachOver, connectTarget, sessionKey, type ConnectOptions, type ProtocolSession } from '../rdma/connect';
import { attachThroughRelay, relayRunning } from '../relay/remote';
import { defaultRelaySocket } from '../relay/wire';

export { openLiveTransport, type LiveAddress, type ProtocolSession } from '../rdma/connect';

export interface OpenOptions extends ConnectOptions {
  /** The relay's socket: the setting grass.monitor.socketPath in the extension; else
   * $GRASS_MONITOR_SOCKET or the per-user default (defaultRelaySocket). */
  relaySocket?: string;
}

export async function openTarget(addressText: string, options: OpenOptions = {}): Promise<ProtocolSession> {
  const address = parseTargetAddress(addressText);
  if (address.kind === 'rdma') {
    const socket = options.relaySocket ?? defaultRelaySocket();
    if (await relayRunning(socket)) return openHeld(socket, addressText, address, sessionKey(addressText, options), options);
  }
  return connectTarget(addressText, options);
}

/**
 * Opens a target the relay at socketPath holds (heldName: its relay-side name, or an rdma://
 * address it holds), without a new hold; `address` is what the session reports as its target.
 */
export async function openHeld(socketPath: string, heldName: string, address: TargetAddress, key: Uint8Array, options: ConnectOptions = {}): Promise<ProtocolSession> {
  return attachOver(address, await attachThroughRelay(socketPath, heldName), key, options);
}
