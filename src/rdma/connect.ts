// From a target address to an attached protocol client, directly (never through the relay:
// src/session/open-target.ts is the one way the CLI and the extension open a target, and adds
// that path). Offline images get a private local agent for the session's lifetime.
import { parseTargetAddress, TargetAddress } from './address';
import { ClientOptions, GrassClient } from './client';
import { readKeyFile } from './key';
import { MemorySourceInfo, startOfflineAgent } from './local-agent';
import { openShmTransport } from './shm';
import type { Transport } from './transport';
import { VerbsOptions, VerbsTransport } from './verbs/transport';

/** A protocol client attached to one target (the kernel model and the CLI verbs read through it;
 * the extension's LiveSession wraps one). */
export interface ProtocolSession {
  address: TargetAddress;
  client: GrassClient;
  /** An offline image's format, compression, dump level and size, as its local agent reports them. */
  source?: MemorySourceInfo;
  /** Detaches; also stops the local agent of an offline image. */
  close(): Promise<void>;
}

export interface ConnectOptions extends ClientOptions {
  /** Key file; GRASS_KEY_FILE when absent. Not needed for offline images (a fresh key is made). */
  keyFile?: string;
  /** The key itself (the extension keeps keys in secret storage, not in files); wins over keyFile. */
  key?: Uint8Array;
}

export function sessionKey(addressText: string, options: ConnectOptions): Uint8Array {
  if (options.key) return options.key;
  const keyFile = options.keyFile ?? process.env.GRASS_KEY_FILE;
  if (!keyFile) throw new Error(`no key for ${addressText}: pass --key-file FILE or set GRASS_KEY_FILE`);
  return readKeyFile(keyFile);
}

/** A live agent's buffer: its shared memory on this host, or an agent listening for RDMA. */
export type LiveAddress = Extract<TargetAddress, { kind: 'shm' | 'rdma' }>;

/**
 * Opens a live agent's transport directly, without attaching a client: shm: maps the agent's
 * buffer, rdma:// connects to an agent listening there. connectTarget attaches over it; the
 * relay holds the transport and attaches its own clients.
 */
export function openLiveTransport(address: Extract<TargetAddress, { kind: 'rdma' }>, options?: VerbsOptions): Promise<VerbsTransport>;
export function openLiveTransport(address: LiveAddress, options?: VerbsOptions): Promise<Transport>;
export function openLiveTransport(address: LiveAddress, options: VerbsOptions = {}): Promise<Transport> {
  return address.kind === 'shm' ? openShmTransport(address.path) : VerbsTransport.connect(address.host, address.port, options);
}

/** Attaches a client over an open transport; the transport is closed if that fails. */
export async function attachOver(address: TargetAddress, transport: Transport, key: Uint8Array, options: ConnectOptions): Promise<ProtocolSession> {
  try {
    const client = await GrassClient.attach(transport, key, options);
    return { address, client, close: () => client.close() };
  } catch (err) {
    await transport.close();
    throw err;
  }
}

/** Opens `addressText` directly: shm: maps the agent's buffer, rdma:// connects to an agent
 * listening there, vmcore:/qemu-ram: start a private local agent. */
export async function connectTarget(addressText: string, options: ConnectOptions = {}): Promise<ProtocolSession> {
  const address = parseTargetAddress(addressText);
  switch (address.kind) {
    case 'shm':
    case 'rdma': {
      const key = sessionKey(addressText, options);
      return attachOver(address, await openLiveTransport(address, { opTimeoutMs: options.timeoutMs }), key, options);
    }
    case 'vmcore':
    case 'qemu-ram': {
      const agent = await startOfflineAgent(`${address.kind}:${address.path}`, address.kind === 'qemu-ram' ? address.memoryMap : undefined);
      try {
        const inner = await connectTarget(agent.target, { ...options, key: undefined, keyFile: agent.keyFile });
        return {
          address,
          client: inner.client,
          ...(agent.source ? { source: agent.source } : {}),
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
