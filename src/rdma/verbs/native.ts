// libibverbs, librdmacm and the bits of libc the verbs transport needs, through koffi.
// Every pointer crosses as uintptr_t (a JS number: user-space addresses are below 2^47), and
// structs are read and written in native memory with memcpy at the offsets of ./abi, which a
// unit test checks against the real headers. Nothing here blocks: rdma_get_cm_event runs on a
// non-blocking fd and completions are polled.
import koffi, { type TypeObject } from 'koffi';
import { fields, FieldName } from './abi';

type NativeFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;

export interface Verbs {
  // librdmacm
  rdma_create_event_channel: NativeFunction;
  rdma_destroy_event_channel: NativeFunction;
  rdma_create_id: NativeFunction;
  rdma_destroy_id: NativeFunction;
  rdma_resolve_addr: NativeFunction;
  rdma_resolve_route: NativeFunction;
  rdma_bind_addr: NativeFunction;
  rdma_listen: NativeFunction;
  rdma_connect: NativeFunction;
  rdma_accept: NativeFunction;
  rdma_reject: NativeFunction;
  rdma_disconnect: NativeFunction;
  rdma_get_cm_event: NativeFunction;
  rdma_ack_cm_event: NativeFunction;
  rdma_create_qp: NativeFunction;
  rdma_destroy_qp: NativeFunction;
  rdma_get_src_port: NativeFunction;
  // libibverbs
  ibv_alloc_pd: NativeFunction;
  ibv_dealloc_pd: NativeFunction;
  ibv_reg_mr: NativeFunction;
  ibv_dereg_mr: NativeFunction;
  ibv_create_cq: NativeFunction;
  ibv_destroy_cq: NativeFunction;
  ibv_wc_status_str: NativeFunction;
  ibv_create_comp_channel: NativeFunction;
  ibv_destroy_comp_channel: NativeFunction;
  ibv_get_cq_event: NativeFunction;
  ibv_ack_cq_events: NativeFunction;
  // libc
  mmap: NativeFunction;
  munmap: NativeFunction;
  fcntl: NativeFunction;
  strerror: NativeFunction;
  copyIn: NativeFunction;
  copyOut: NativeFunction;
  // prototypes of the ibv_context.ops slots called through function pointers
  pollCqProto: TypeObject;
  postSendProto: TypeObject;
  reqNotifyCqProto: TypeObject;
}

let loaded: Verbs | undefined;
let loadError: Error | undefined;

/** Loads the libraries once; throws a message naming the missing package. */
export function verbs(): Verbs {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  let cm: ReturnType<typeof koffi.load>;
  let ibv: ReturnType<typeof koffi.load>;
  try {
    ibv = koffi.load('libibverbs.so.1');
    cm = koffi.load('librdmacm.so.1');
  } catch (err) {
    loadError = new Error(`verbs transport: cannot load libibverbs/librdmacm (install Debian's libibverbs1 librdmacm1 ibverbs-providers): ${(err as Error).message}`);
    throw loadError;
  }
  const libc = koffi.load('libc.so.6');
  loaded = {
    rdma_create_event_channel: cm.func('uintptr_t rdma_create_event_channel(void)'),
    rdma_destroy_event_channel: cm.func('void rdma_destroy_event_channel(uintptr_t channel)'),
    rdma_create_id: cm.func('int rdma_create_id(uintptr_t channel, uintptr_t id_out, uintptr_t context, int ps)'),
    rdma_destroy_id: cm.func('int rdma_destroy_id(uintptr_t id)'),
    rdma_resolve_addr: cm.func('int rdma_resolve_addr(uintptr_t id, uintptr_t src, uintptr_t dst, int timeout_ms)'),
    rdma_resolve_route: cm.func('int rdma_resolve_route(uintptr_t id, int timeout_ms)'),
    rdma_bind_addr: cm.func('int rdma_bind_addr(uintptr_t id, uintptr_t addr)'),
    rdma_listen: cm.func('int rdma_listen(uintptr_t id, int backlog)'),
    rdma_connect: cm.func('int rdma_connect(uintptr_t id, uintptr_t conn_param)'),
    rdma_accept: cm.func('int rdma_accept(uintptr_t id, uintptr_t conn_param)'),
    rdma_reject: cm.func('int rdma_reject(uintptr_t id, uintptr_t private_data, uint8_t private_data_len)'),
    rdma_disconnect: cm.func('int rdma_disconnect(uintptr_t id)'),
    rdma_get_cm_event: cm.func('int rdma_get_cm_event(uintptr_t channel, uintptr_t event_out)'),
    rdma_ack_cm_event: cm.func('int rdma_ack_cm_event(uintptr_t event)'),
    rdma_create_qp: cm.func('int rdma_create_qp(uintptr_t id, uintptr_t pd, uintptr_t qp_init_attr)'),
    rdma_destroy_qp: cm.func('void rdma_destroy_qp(uintptr_t id)'),
    rdma_get_src_port: cm.func('uint16_t rdma_get_src_port(uintptr_t id)'),
    ibv_alloc_pd: ibv.func('uintptr_t ibv_alloc_pd(uintptr_t context)'),
    ibv_dealloc_pd: ibv.func('int ibv_dealloc_pd(uintptr_t pd)'),
    ibv_reg_mr: ibv.func('uintptr_t ibv_reg_mr(uintptr_t pd, uintptr_t addr, size_t length, int access)'),
    ibv_dereg_mr: ibv.func('int ibv_dereg_mr(uintptr_t mr)'),
    ibv_create_cq: ibv.func('uintptr_t ibv_create_cq(uintptr_t context, int cqe, uintptr_t cq_context, uintptr_t channel, int comp_vector)'),
    ibv_destroy_cq: ibv.func('int ibv_destroy_cq(uintptr_t cq)'),
    ibv_wc_status_str: ibv.func('const char *ibv_wc_status_str(int status)'),
    ibv_create_comp_channel: ibv.func('uintptr_t ibv_create_comp_channel(uintptr_t context)'),
    ibv_destroy_comp_channel: ibv.func('int ibv_destroy_comp_channel(uintptr_t channel)'),
    ibv_get_cq_event: ibv.func('int ibv_get_cq_event(uintptr_t channel, uintptr_t cq_out, uintptr_t cq_context_out)'),
    ibv_ack_cq_events: ibv.func('void ibv_ack_cq_events(uintptr_t cq, unsigned int nevents)'),
    mmap: libc.func('uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: libc.func('int munmap(uintptr_t addr, size_t length)'),
    fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
    strerror: libc.func('const char *strerror(int errnum)'),
    // memcpy in both directions between JS buffers and native addresses
    copyIn: libc.func('uintptr_t memcpy(uintptr_t dst, const uint8_t *src, size_t n)'),
    copyOut: libc.func('uintptr_t memcpy(_Out_ uint8_t *dst, uintptr_t src, size_t n)'),
    pollCqProto: koffi.proto('int grass_ibv_poll_cq(uintptr_t cq, int num_entries, uintptr_t wc)'),
    postSendProto: koffi.proto('int grass_ibv_post_send(uintptr_t qp, uintptr_t wr, uintptr_t bad_wr)'),
    reqNotifyCqProto: koffi.proto('int grass_ibv_req_notify_cq(uintptr_t cq, int solicited_only)'),
  };
  return loaded;
}

/** The errno of the last failed call, as "ENAME (text)"-ish text for messages. */
export function lastError(): string {
  const errno = koffi.errno();
  return `errno ${errno}: ${verbs().strerror(errno) as string}`;
}

export function readBytes(address: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  if (length > 0) verbs().copyOut(out, address, length);
  return out;
}

export function writeBytes(address: number, bytes: Uint8Array): void {
  if (bytes.length > 0) verbs().copyIn(address, bytes, bytes.length);
}

/** A field of a native struct at `base`, as a number (pointers included) or bigint for u64. */
export function readField(base: number, name: FieldName): number {
  const f = fields[name];
  const b = readBytes(base + f.offset, f.size);
  switch (f.size) {
    case 1: return b.readUInt8(0);
    case 2: return b.readUInt16LE(0);
    case 4: return b.readUInt32LE(0);
    case 8: {
      const v = b.readBigUInt64LE(0);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`verbs: ${name} = 0x${v.toString(16)} does not fit a JS number`);
      return Number(v);
    }
    default: throw new Error(`verbs: ${name} is ${f.size} bytes, not a scalar`);
  }
}

/** Writes a scalar field into a JS buffer that mirrors the struct (offsets from ./abi). */
export function putField(buffer: Buffer, name: FieldName, value: number | bigint, base = 0): void {
  const f = fields[name];
  const at = base + f.offset;
  switch (f.size) {
    case 1: buffer.writeUInt8(Number(value), at); break;
    case 2: buffer.writeUInt16LE(Number(value), at); break;
    case 4: buffer.writeUInt32LE(Number(value), at); break;
    case 8: buffer.writeBigUInt64LE(BigInt(value), at); break;
    default: throw new Error(`verbs: ${name} is ${f.size} bytes, not a scalar`);
  }
}

export function getField(buffer: Buffer, name: FieldName, base = 0): number {
  const f = fields[name];
  const at = base + f.offset;
  switch (f.size) {
    case 1: return buffer.readUInt8(at);
    case 2: return buffer.readUInt16LE(at);
    case 4: return buffer.readUInt32LE(at);
    case 8: return Number(buffer.readBigUInt64LE(at));
    default: throw new Error(`verbs: ${name} is ${f.size} bytes, not a scalar`);
  }
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 2 ** 64 - 1;

/** Page-aligned anonymous memory that never moves (what ibv_reg_mr needs). */
export class NativeMemory {
  private constructor(
    readonly address: number,
    readonly size: number,
  ) {}

  static allocate(size: number): NativeMemory {
    const address = verbs().mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) as number;
    if (address === 0 || address === MAP_FAILED || address === -1) throw new Error(`verbs: mmap of ${size} bytes failed (${lastError()})`);
    return new NativeMemory(address, size);
  }

  free(): void {
    verbs().munmap(this.address, this.size);
  }
}

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

export function setNonBlocking(fd: number): void {
  const v = verbs();
  const flags = v.fcntl(fd, F_GETFL) as number;
  if (flags < 0 || (v.fcntl(fd, F_SETFL, 'int', flags | O_NONBLOCK) as number) < 0) {
    throw new Error(`verbs: cannot make fd ${fd} non-blocking (${lastError()})`);
  }
}
