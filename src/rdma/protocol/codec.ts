// Encoding and decoding of the structs of protocol.h, through the offsets in layout.ts.
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import * as L from './layout';

export interface BufferHeader {
  magic: bigint;
  version: number;
  headerBytes: number;
  bufferBytes: bigint;
  slotCount: number;
  slotBytes: number;
  slotDataBytes: number;
  flags: number;
  instance: bigint;
}

export interface Liveness {
  counter: bigint;
  monitorClockNs: bigint;
  requestsServed: bigint;
  requestsRefused: bigint;
}

export interface RequestFields {
  seq: bigint;
  opcode: L.Opcode;
  dataBytes: number;
  args: readonly bigint[];
}

export interface Reply {
  seq: bigint;
  status: number;
  dataBytes: number;
  totalBytes: bigint;
  resultId: bigint;
  offset: bigint;
  detail: bigint;
  dataCrc32: number;
  requestTag: number;
}

export interface TaskRecord {
  taskAddress: bigint;
  pid: number;
  tgid: number;
  ppid: number;
  cpu: number;
  utimeNs: bigint;
  stimeNs: bigint;
  rssBytes: bigint;
  threads: number;
  state: string;
  comm: string;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function need(bytes: Uint8Array, size: number, what: string): DataView {
  if (bytes.length < size) throw new Error(`${what}: ${bytes.length} bytes, need ${size}`);
  return view(bytes);
}

export function decodeBufferHeader(bytes: Uint8Array): BufferHeader {
  const f = L.bufferHeader.fields;
  const v = need(bytes, L.bufferHeader.size, 'buffer header');
  return {
    magic: v.getBigUint64(f.magic.offset, true),
    version: v.getUint32(f.version.offset, true),
    headerBytes: v.getUint32(f.header_bytes.offset, true),
    bufferBytes: v.getBigUint64(f.buffer_bytes.offset, true),
    slotCount: v.getUint32(f.slot_count.offset, true),
    slotBytes: v.getUint32(f.slot_bytes.offset, true),
    slotDataBytes: v.getUint32(f.slot_data_bytes.offset, true),
    flags: v.getUint32(f.flags.offset, true),
    instance: v.getBigUint64(f.instance.offset, true),
  };
}

/** Decodes the liveness block (bytes from livenessBlock.start to livenessBlock.end). */
export function decodeLiveness(block: Uint8Array): Liveness {
  const f = L.bufferHeader.fields;
  const base = L.livenessBlock.start;
  const v = need(block, L.livenessBlock.end - base, 'liveness block');
  return {
    counter: v.getBigUint64(f.liveness_counter.offset - base, true),
    monitorClockNs: v.getBigUint64(f.monitor_clock_ns.offset - base, true),
    requestsServed: v.getBigUint64(f.requests_served.offset - base, true),
    requestsRefused: v.getBigUint64(f.requests_refused.offset - base, true),
  };
}

/** The request struct with its MAC field zeroed; the MAC covers the bytes before `mac`. */
export function encodeRequest(fields: RequestFields): Uint8Array {
  if (fields.args.length > L.GRASS_REQUEST_ARGS) throw new Error(`a request has at most ${L.GRASS_REQUEST_ARGS} arguments`);
  const f = L.request.fields;
  const bytes = new Uint8Array(L.request.size);
  const v = view(bytes);
  v.setBigUint64(f.seq.offset, fields.seq, true);
  v.setUint32(f.opcode.offset, fields.opcode, true);
  v.setUint32(f.data_bytes.offset, fields.dataBytes, true);
  fields.args.forEach((arg, i) => v.setBigUint64(f.args.offset + 8 * i, BigInt.asUintN(64, arg), true));
  return bytes;
}

/**
 * HMAC-SHA256(key, instance || slot index (u32 LE) || request bytes up to mac || the first
 * data_bytes of the slot's data area), as protocol.h defines it.
 */
export function requestMac(key: Uint8Array, instance: bigint, slotIndex: number, requestBytes: Uint8Array, data: Uint8Array): Uint8Array {
  const prefix = Buffer.alloc(12);
  prefix.writeBigUInt64LE(instance, 0);
  prefix.writeUInt32LE(slotIndex, 8);
  return createHmac('sha256', key)
    .update(prefix)
    .update(requestBytes.subarray(0, L.request.fields.mac.offset))
    .update(data)
    .digest();
}

/** What the agent echoes in reply.request_tag: the first 4 bytes of the signed request's mac (LE). */
export function requestTag(signedRequestBytes: Uint8Array): number {
  return view(signedRequestBytes).getUint32(L.request.fields.mac.offset, true);
}

/** Encodes a request and signs it: the bytes to write at the slot's request offset. */
export function signedRequest(key: Uint8Array, instance: bigint, slotIndex: number, fields: RequestFields, data: Uint8Array): Uint8Array {
  if (data.length !== fields.dataBytes) throw new Error(`request data is ${data.length} bytes but data_bytes says ${fields.dataBytes}`);
  const bytes = encodeRequest(fields);
  bytes.set(requestMac(key, instance, slotIndex, bytes, data), L.request.fields.mac.offset);
  return bytes;
}

export function decodeReply(bytes: Uint8Array): Reply {
  const f = L.reply.fields;
  const v = need(bytes, L.reply.size, 'reply');
  return {
    seq: v.getBigUint64(f.seq.offset, true),
    status: v.getUint32(f.status.offset, true),
    dataBytes: v.getUint32(f.data_bytes.offset, true),
    totalBytes: v.getBigUint64(f.total_bytes.offset, true),
    resultId: v.getBigUint64(f.result_id.offset, true),
    offset: v.getBigUint64(f.offset.offset, true),
    detail: v.getBigUint64(f.detail.offset, true),
    dataCrc32: v.getUint32(f.data_crc32.offset, true),
    requestTag: v.getUint32(f.request_tag.offset, true),
  };
}

/** CRC32 (IEEE 802.3, as zlib computes it) of a reply chunk's data. */
export function dataCrc32(data: Uint8Array): number {
  return crc32(data) >>> 0;
}

const textDecoder = new TextDecoder('utf-8');

/** A NUL-padded char array as a string (up to the first NUL). */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return textDecoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

export function decodeTaskRecords(bytes: Uint8Array): TaskRecord[] {
  const size = L.taskRecord.size;
  if (bytes.length % size !== 0) throw new Error(`process list of ${bytes.length} bytes is not a whole number of ${size}-byte records`);
  const f = L.taskRecord.fields;
  const v = view(bytes);
  const tasks: TaskRecord[] = [];
  for (let base = 0; base < bytes.length; base += size) {
    tasks.push({
      taskAddress: v.getBigUint64(base + f.task_address.offset, true),
      pid: v.getInt32(base + f.pid.offset, true),
      tgid: v.getInt32(base + f.tgid.offset, true),
      ppid: v.getInt32(base + f.ppid.offset, true),
      cpu: v.getInt32(base + f.cpu.offset, true),
      utimeNs: v.getBigUint64(base + f.utime_ns.offset, true),
      stimeNs: v.getBigUint64(base + f.stime_ns.offset, true),
      rssBytes: v.getBigUint64(base + f.rss_bytes.offset, true),
      threads: v.getUint32(base + f.threads.offset, true),
      state: String.fromCharCode(bytes[base + f.state.offset]),
      comm: cString(bytes.subarray(base + f.comm.offset, base + f.comm.offset + f.comm.size)),
    });
  }
  return tasks;
}

export function encodeReadBatchEntries(entries: readonly { space: L.Space; pid: number; address: bigint; length: number }[]): Uint8Array {
  const f = L.readBatchEntry.fields;
  const bytes = new Uint8Array(entries.length * L.readBatchEntry.size);
  const v = view(bytes);
  entries.forEach((e, i) => {
    const base = i * L.readBatchEntry.size;
    v.setUint32(base + f.space.offset, e.space, true);
    v.setUint32(base + f.pid.offset, e.pid, true);
    v.setBigUint64(base + f.address.offset, BigInt.asUintN(64, e.address), true);
    v.setUint32(base + f.length.offset, e.length, true);
  });
  return bytes;
}

/** Reply bytes one READ_BATCH entry of `length` bytes takes: a u32 status, the bytes, padded to 8. */
export function readBatchReplyBytes(length: number): number {
  return L.alignUp(4 + length, 8);
}
