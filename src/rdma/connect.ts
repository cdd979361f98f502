// From a target address to an attached protocol client: the one entry point for the CLI and
// the monitor. Offline images get a private local agent for the session's lifetime.
import { parseTargetAddress, TargetAddress } from './address';
import { ClientOptions, GrassClient } from './client';
import { readKeyFile } from './key';
import { startOfflineAgent } from './local-agent';
import { openShmTransport } from './shm';
import type { Transport } from './transport';
import { VerbsTransport } from './verbs/transport';
import { attachThroughRelay, relayRunning } from '../relay/remote';
import { defaultRelaySocket } from '../relay/wire';

export interface TargetSession {
  address: TargetAddress;
  client: GrassClient;
  /** Detaches; also stops the local agent of an offline image. */
  close(): Promise<void>;
}

export interface ConnectOptions extends ClientOptions {
  /** Key file; GRASS_KEY_FILE when absent. Not needed for offline images (a fresh key is made). */
  keyFile?: string;
  /** The key itself (the extension keeps keys in secret storage, not in files); wins over keyFile. */
  key?: Uint8Array;
}

function sessionKey(addressText: string, options: ConnectOptions): Uint8Array {
  if (options.key) return options.key;
  const keyFile = options.keyFile ?? process.env.GRASS_KEY_FILE;
  if (!keyFile) throw new Error(`no key for ${addressText}: pass --key-file FILE or set GRASS_KEY_FILE`);
  return readKeyFile(keyFile);
}

/** Attaches a client over an open transport; the transport is closed if that fails. */
async function attachOver(address: TargetAddress, transport: Transport, key: Uint8Array, options: ConnectOptions): Promise<TargetSession> {
  try {
    const client = await GrassClient.attach(transport, key, options);
    return { address, client, close: () => client.close() };
  } catch (err) {
    await transport.close();
    throw err;
  }
}

export async function connectTarget(addressText: string, options: ConnectOptions = {}): Promise<TargetSession> {
  const address = parseTargetAddress(addressText);
  switch (address.kind) {
    case 'shm': {
      const key = sessionKey(addressText, options);
      return attachOver(address, await openShmTransport(address.path), key, options);
    }
    case 'rdma': {
      // Through the monitor when one runs (it holds the sessions; docs/rdma.md), else directly
      // to an agent listening at that address.
      const key = sessionKey(addressText, options);
      const socket = defaultRelaySocket();
      const transport = (await relayRunning(socket))
        ? await attachThroughRelay(socket, addressText)
        : await VerbsTransport.connect(address.host, address.port, { opTimeoutMs: options.timeoutMs });
      return attachOver(address, transport, key, options);
    }
    case 'vmcore':
    case 'qemu-ram': {
      const agent = await startOfflineAgent(`${address.kind}:${address.path}`, address.kind === 'qemu-ram' ? address.memoryMap : undefined);
      try {
        const inner = await connectTarget(agent.target, { ...options, key: undefined, keyFile: agent.keyFile });
        return {
          address,
          client: inner.client,
          close: async () => {
            await inner.close();
            await agent.stop();
          },
        };
      } catch (err) {
        await agent.stop();
        throw err;
      }
    }
  }
}
