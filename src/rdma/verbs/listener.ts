// Accepts the connections agents make at start (the paper's direction, DESIGN §3.4): binds an
// rdma_cm id, listens, and turns each connect request carrying a GRASS set-up message into a
// VerbsTransport. Requests that are not GRASS agents are rejected.
import { TransportError } from '../transport';
import { CmChannel } from './cm';
import { constants } from './abi';
import { lastError, NativeMemory, verbs, writeBytes } from './native';
import { encodeSockaddr, resolveHost } from './sockaddr';
import { VerbsOptions, VerbsTransport } from './transport';

export class VerbsListener {
  private closed = false;

  private constructor(
    private readonly channel: CmChannel,
    private readonly id: number,
    readonly address: string,
  ) {}

  /**
   * Listens on host:port (host "0.0.0.0" or "::" for every address). `onAgent` gets each
   * connected agent; `onRefused` each request that failed (not an agent, set-up error);
   * `onRemoved` the removal of the RDMA device under the listener, which is then closed (its
   * cm_id must go for the removal to complete).
   */
  static async listen(
    host: string,
    port: number,
    options: VerbsOptions,
    onAgent: (transport: VerbsTransport) => void,
    onRefused: (err: Error) => void,
    onRemoved: (err: Error) => void,
  ): Promise<VerbsListener> {
    const where = `rdma://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const { address, family } = await resolveHost(host);
    const channel = CmChannel.shared();
    const v = verbs();
    const id = channel.createId();
    const scratch = NativeMemory.allocate(4096);
    try {
      writeBytes(scratch.address, encodeSockaddr(address, family, port));
      if ((v.rdma_bind_addr(id, scratch.address) as number) !== 0) throw new Error(`rdma_bind_addr failed (${lastError()}; address in use, or no RDMA device on it?)`);
      if ((v.rdma_listen(id, 16) as number) !== 0) throw new Error(`rdma_listen failed (${lastError()})`);
    } catch (err) {
      v.rdma_destroy_id(id);
      throw new TransportError(where, (err as Error).message, { cause: err });
    } finally {
      scratch.free();
    }
    const listener = new VerbsListener(channel, id, where);
    channel.register(id, (event) => {
      if (event.type === constants.RDMA_CM_EVENT_DEVICE_REMOVAL) {
        listener.close();
        onRemoved(new TransportError(where, 'the RDMA device under the listener was removed'));
        return;
      }
      if (event.type !== constants.RDMA_CM_EVENT_CONNECT_REQUEST) return;
      VerbsTransport.accept(channel, event, options).then(onAgent, onRefused);
    });
    return listener;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.unregister(this.id);
    verbs().rdma_destroy_id(this.id);
  }
}
