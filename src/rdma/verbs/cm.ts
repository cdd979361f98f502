// rdma_cm events without blocking: one event channel per process, its fd non-blocking and
// watched by libuv (koffi.node.poll); each event is copied out, acknowledged at once (so
// rdma_destroy_id never waits on us) and handed to whoever registered its cm_id.
import koffi, { type node as koffiNode } from 'koffi';
import { CM_EVENT_NAMES, constants } from './abi';
import { lastError, NativeMemory, readBytes, readField, setNonBlocking, verbs } from './native';

export interface CmEvent {
  type: number;
  /** The cm_id the event is about (for CONNECT_REQUEST: the new id of the request). */
  id: number;
  listenId: number;
  status: number;
  /** Private data of a connect request or reply (copied before the event is acknowledged). */
  privateData: Buffer;
}

export function cmEventName(type: number): string {
  return CM_EVENT_NAMES[type] ?? `event ${type}`;
}

type Handler = (event: CmEvent) => void;

const EAGAIN = 11;

export class CmChannel {
  private static instance: CmChannel | undefined;
  readonly channel: number;
  private readonly handlers = new Map<number, Handler>();
  private readonly poller: koffiNode.PollHandle;
  /** Scratch for rdma_get_cm_event's out-pointer and rdma_create_id's. */
  private readonly scratch: NativeMemory;

  private constructor() {
    const v = verbs();
    const channel = v.rdma_create_event_channel() as number;
    if (!channel) {
      throw new Error(`rdma_cm: cannot open an event channel (${lastError()}; is /dev/infiniband/rdma_cm there, i.e. rdma_ucm loaded and an RDMA device present?)`);
    }
    this.channel = channel;
    const fd = readField(channel, 'rdma_event_channel.fd');
    setNonBlocking(fd);
    this.scratch = NativeMemory.allocate(4096);
    this.poller = koffi.node.poll(fd, { readable: true }, () => this.drain());
    this.poller.unref();
  }

  static shared(): CmChannel {
    CmChannel.instance ??= new CmChannel();
    return CmChannel.instance;
  }

  /** A new cm_id on this channel (RDMA_PS_TCP: reliable connected). */
  createId(): number {
    const v = verbs();
    if ((v.rdma_create_id(this.channel, this.scratch.address, 0, constants.RDMA_PS_TCP) as number) !== 0) {
      throw new Error(`rdma_create_id failed (${lastError()})`);
    }
    return Number(readBytes(this.scratch.address, 8).readBigUInt64LE(0));
  }

  /** Routes the events of `id` to `handler`; the event loop stays alive while any is registered. */
  register(id: number, handler: Handler): void {
    this.handlers.set(id, handler);
    this.poller.ref();
  }

  unregister(id: number): void {
    this.handlers.delete(id);
    if (this.handlers.size === 0) this.poller.unref();
  }

  private drain(): void {
    const v = verbs();
    for (;;) {
      if ((v.rdma_get_cm_event(this.channel, this.scratch.address) as number) !== 0) {
        if (koffi.errno() !== EAGAIN) process.emitWarning(`rdma_get_cm_event failed (${lastError()})`);
        return;
      }
      const event = Number(readBytes(this.scratch.address, 8).readBigUInt64LE(0));
      const type = readField(event, 'rdma_cm_event.event');
      const dataPointer = readField(event, 'rdma_cm_event.param.conn.private_data');
      const dataLength = readField(event, 'rdma_cm_event.param.conn.private_data_len');
      const copy: CmEvent = {
        type,
        id: readField(event, 'rdma_cm_event.id'),
        listenId: readField(event, 'rdma_cm_event.listen_id'),
        status: readField(event, 'rdma_cm_event.status') | 0,
        privateData: dataPointer && dataLength ? readBytes(dataPointer, dataLength) : Buffer.alloc(0),
      };
      v.rdma_ack_cm_event(event);
      const handler = this.handlers.get(type === constants.RDMA_CM_EVENT_CONNECT_REQUEST ? copy.listenId : copy.id);
      try {
        handler?.(copy);
      } catch (err) {
        process.emitWarning(`rdma_cm: handler of ${cmEventName(type)} threw: ${(err as Error).message}`);
      }
    }
  }
}

/** Resolves when `id` gets one of `want`; rejects on any other event or after timeoutMs. */
export function awaitCmEvent(channel: CmChannel, id: number, want: number[], what: string, timeoutMs: number): Promise<CmEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.unregister(id);
      reject(new Error(`${what}: no rdma_cm answer in ${timeoutMs} ms`));
    }, timeoutMs);
    channel.register(id, (event) => {
      clearTimeout(timer);
      channel.unregister(id);
      if (want.includes(event.type)) resolve(event);
      else if (event.type === constants.RDMA_CM_EVENT_REJECTED && event.status === REJECTED_BY_CONSUMER) reject(new RefusedByFarEnd(`${what}: ${describeUnwanted(event)}`));
      else reject(new Error(`${what}: ${describeUnwanted(event)}`));
    });
  });
}

/** The far end's own rdma_reject() (the transport turns it into a ConnectionRefusedError). */
export class RefusedByFarEnd extends Error {}

/** IB CM reject reason "consumer defined": the far end's own rdma_reject(). */
const REJECTED_BY_CONSUMER = 28;

function describeUnwanted(event: CmEvent): string {
  if (event.type === constants.RDMA_CM_EVENT_REJECTED && event.status === REJECTED_BY_CONSUMER) {
    return `REJECTED (status ${event.status}): the far end refused the connection (an agent refuses addresses not in its --peer list)`;
  }
  return `${cmEventName(event.type)}${event.status ? ` (status ${event.status})` : ''}`;
}
