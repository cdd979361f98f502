// The client end of the relay's local socket (./wire; the relay is the `grass monitor` process):
// a Transport whose operations the relay performs over its RDMA session, and the list of targets
// it holds. A relay error of
// kind "transport" (the session's link is dead) becomes a TransportError, so the protocol
// client and the CLI report it as they would for a direct transport.
import net from 'node:net';
import { Transport, TransportError, VersionedRead } from '../rdma/transport';
import { RelayMemory, RelayReply, RelayRequest, SweepStats, TargetStatus } from './wire';

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };
type Body = RelayRequest extends infer R ? (R extends RelayRequest ? Omit<R, 'id'> : never) : never;

class RelayConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffered = '';
  private failure?: Error;

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const reply = JSON.parse(this.buffered.slice(0, nl)) as RelayReply;
        this.buffered = this.buffered.slice(nl + 1);
        const p = this.pending.get(reply.id);
        if (!p) continue;
        this.pending.delete(reply.id);
        if (reply.ok) p.resolve(reply.result);
        else p.reject(reply.error.kind === 'transport' ? new TransportError(`monitor ${socketPath}`, reply.error.message) : new Error(`monitor: ${reply.error.message}`));
      }
    });
    const gone = (err?: Error) => {
      this.failure = new Error(`the monitor at ${socketPath} went away${err ? `: ${err.message}` : ''}`);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
  }

  static open(socketPath: string): Promise<RelayConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => resolve(new RelayConnection(socket, socketPath)));
      socket.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`no monitor at ${socketPath} (${err.code ?? err.message}; start one with 'grass monitor')`)));
    });
  }

  call<T>(body: Body): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ ...body, id }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
  }

  /** One request on a connection of its own, closed after the answer. */
  static async once<T>(socketPath: string, body: Body): Promise<T> {
    const c = await RelayConnection.open(socketPath);
    try {
      return await c.call<T>(body);
    } finally {
      c.close();
    }
  }
}

/** The relay's own memory (after a full collection when it runs with node --expose-gc). */
export async function relayMemory(socketPath: string): Promise<RelayMemory> {
  return RelayConnection.once<RelayMemory>(socketPath, { op: 'memory' });
}

/** The relay's recent heartbeat sweeps (how long one heartbeat to every target took). */
export async function relaySweeps(socketPath: string): Promise<SweepStats> {
  return RelayConnection.once<SweepStats>(socketPath, { op: 'sweeps' });
}

/** The targets a relay holds, with their state and last good data. */
export async function relayTargets(socketPath: string): Promise<TargetStatus[]> {
  return RelayConnection.once<TargetStatus[]>(socketPath, { op: 'targets' });
}

/**
 * Asks the relay to hold `target` (rdma:// or shm:) from now on, with the target's key (over
 * the owner-only local socket) when given; resolves to its status. A key the agent refuses is
 * refused here too.
 */
export async function holdThroughRelay(socketPath: string, target: string, key?: Uint8Array): Promise<TargetStatus> {
  return RelayConnection.once<TargetStatus>(socketPath, { op: 'hold', target, ...(key ? { key: Buffer.from(key).toString('hex') } : {}) });
}

/** Asks the relay at socketPath to stop; resolves to its pid once it has accepted. */
export async function stopRelay(socketPath: string): Promise<number> {
  return (await RelayConnection.once<{ pid: number }>(socketPath, { op: 'stop' })).pid;
}

/** True when a relay answers at socketPath. */
export async function relayRunning(socketPath: string): Promise<boolean> {
  try {
    (await RelayConnection.open(socketPath)).close();
    return true;
  } catch {
    return false;
  }
}

/** A transport to `target` (a name or rdma:// address the relay holds), through the relay. */
export async function attachThroughRelay(socketPath: string, target: string): Promise<Transport> {
  const c = await RelayConnection.open(socketPath);
  try {
    const info = await c.call<{ name: string; size: number; transport: string }>({ op: 'attach', target });
    return new RelayTransport(c, `${info.transport} via monitor ${socketPath}`, info.size);
  } catch (err) {
    c.close();
    throw err;
  }
}

class RelayTransport implements Transport {
  constructor(
    private readonly c: RelayConnection,
    readonly name: string,
    readonly size: number,
  ) {}
  async read(offset: number, length: number): Promise<Uint8Array> {
    return Buffer.from(await this.c.call<string>({ op: 'read', offset, length }), 'base64');
  }
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    await this.c.call({ op: 'write', offset, data: Buffer.from(bytes).toString('base64') });
  }
  async readWord(offset: number): Promise<bigint> {
    return BigInt(await this.c.call<string>({ op: 'readWord', offset }));
  }
  async writeWord(offset: number, value: bigint): Promise<void> {
    await this.c.call({ op: 'writeWord', offset, value: value.toString() });
  }
  async readVersioned(versionOffset: number, offset: number, length: number): Promise<VersionedRead> {
    const read = await this.c.call<{ before: string; bytes: string; after: string }>({ op: 'readVersioned', versionOffset, offset, length });
    return { before: BigInt(read.before), bytes: Buffer.from(read.bytes, 'base64'), after: BigInt(read.after) };
  }
  tryClaim(offset: number): Promise<boolean> {
    return this.c.call<boolean>({ op: 'claim', offset });
  }
  async releaseClaim(offset: number): Promise<void> {
    await this.c.call({ op: 'release', offset });
  }
  async close(): Promise<void> {
    this.c.close();
  }
}
