// Encoding and decoding of the structs of protocol.h, through the offsets in layout.ts.
import { createHmac } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import * as L from './layout';
import type { TaskRecord } from '../../types/task-record';
import { StructView } from './struct-view';

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

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeBufferHeader(bytes: Uint8Array): BufferHeader {
  const h = StructView.at(bytes, L.bufferHeader, 0, 'buffer header');
  return {
    magic: h.u64('magic'),
    version: h.u32('version'),
    headerBytes: h.u32('header_bytes'),
    bufferBytes: h.u64('buffer_bytes'),
    slotCount: h.u32('slot_count'),
    slotBytes: h.u32('slot_bytes'),
    slotDataBytes: h.u32('slot_data_bytes'),
    flags: h.u32('flags'),
    instance: h.u64('instance'),
  };
}

/** Decodes the liveness block (bytes from livenessBlock.start to livenessBlock.end). */
export function decodeLiveness(block: Uint8Array): Liveness {
  const f = L.bufferHeader.fields;
  const base = L.livenessBlock.start;
  const size = L.livenessBlock.end - base;
  if (block.length < size) throw new Error(`liveness block: ${block.length} bytes, need ${size}`);
  const v = view(block);
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
  const r = StructView.at(bytes, L.reply, 0, 'reply');
  return {
    seq: r.u64('seq'),
    status: r.u32('status'),
    dataBytes: r.u32('data_bytes'),
    totalBytes: r.u64('total_bytes'),
    resultId: r.u64('result_id'),
    offset: r.u64('offset'),
    detail: r.u64('detail'),
    dataCrc32: r.u32('data_crc32'),
    requestTag: r.u32('request_tag'),
  };
}

/**
 * CRC32C (Castagnoli, the iSCSI CRC; protocol v3, in `data_crc32` and `background_crc32`) of a
 * reply chunk's data, by @node-rs/crc32's native code (SSE4.2 where the CPU has it;
 * docs/dependencies.md says why that package).
 */
export function dataCrc32(data: Uint8Array): number {
  return crc32c(data) >>> 0;
}

/** GRASS_OP_PROCESS_LIST's reply: grass_task_record[]. */
export function decodeTaskRecords(bytes: Uint8Array): TaskRecord[] {
  const size = L.taskRecord.size;
  if (bytes.length % size !== 0) throw new Error(`process list of ${bytes.length} bytes is not a whole number of ${size}-byte records`);
  return StructView.array(bytes, L.taskRecord, bytes.length / size).map((t) => ({
    taskAddress: t.u64('task_address'),
    pid: t.i32('pid'),
    tgid: t.i32('tgid'),
    ppid: t.i32('ppid'),
    cpu: t.i32('cpu'),
    utimeNs: t.u64('utime_ns'),
    stimeNs: t.u64('stime_ns'),
    rssBytes: t.u64('rss_bytes'),
    threads: t.u32('threads'),
    state: t.char('state'),
    comm: t.text('comm'),
  }));
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

/** One READ_BATCH entry's part of the reply: its status, and its bytes when that is OK. */
export interface ReadBatchEntryReply {
  status: number;
  bytes: Uint8Array;
}

/**
 * The READ_BATCH reply split by the entries' lengths (every entry's place follows from the
 * lengths alone); null for an entry that the reply ends before.
 */
export function decodeReadBatchReply(data: Uint8Array, lengths: readonly number[]): (ReadBatchEntryReply | null)[] {
  const v = view(data);
  let at = 0;
  return lengths.map((length) => {
    const span = readBatchReplyBytes(length);
    const start = at;
    at += span;
    if (start + span > data.length) return null;
    const status = v.getUint32(start, true);
    return { status, bytes: status === L.Status.Ok ? data.slice(start + 4, start + 4 + length) : new Uint8Array(0) };
  });
}
