// The client's checks and failure paths that a healthy agent never provokes: a buffer that is
// not a GRASS buffer, slots already used by an earlier client, a reply whose data never matches
// its CRC, a liveness block stuck mid-update, a silent monitor. The buffer is a hand-made file
// in /dev/shm laid out with layout.ts (itself checked against protocol.h); where a reply is
// needed, the test writes it the way the header says the monitor does. The end-to-end paths
// against the real agent are in test/integration/agent.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { setImmediate as yieldImmediate } from 'node:timers/promises';
import { GrassClient, GrassProtocolError, GrassTimeoutError } from '../../src/rdma/client';
import * as codec from '../../src/rdma/protocol/codec';
import * as L from '../../src/rdma/protocol/layout';
import { openShmTransport } from '../../src/rdma/shm';
import { Transport } from '../../src/rdma/transport';

const SLOTS = 2;
const SLOT_BYTES = 8192;
const SLOT_DATA = 4096;
const SIZE = L.GRASS_HEADER_BYTES + SLOTS * SLOT_BYTES;
const KEY = new Uint8Array(32).fill(7);
const INSTANCE = 0x1234n;

function headerBytes(overrides: Partial<Record<keyof typeof L.bufferHeader.fields, bigint>> = {}): Buffer {
  const b = Buffer.alloc(SIZE);
  const f = L.bufferHeader.fields;
  const values: Partial<Record<keyof typeof f, bigint>> = {
    magic: L.GRASS_MAGIC,
    version: BigInt(L.GRASS_PROTOCOL_VERSION),
    header_bytes: BigInt(L.GRASS_HEADER_BYTES),
    buffer_bytes: BigInt(SIZE),
    slot_count: BigInt(SLOTS),
    slot_bytes: BigInt(SLOT_BYTES),
    slot_data_bytes: BigInt(SLOT_DATA),
    instance: INSTANCE,
    ...overrides,
  };
  for (const [name, value] of Object.entries(values) as [keyof typeof f, bigint][]) {
    if (f[name].size === 8) b.writeBigUInt64LE(value, f[name].offset);
    else b.writeUInt32LE(Number(value), f[name].offset);
  }
  return b;
}

async function withBuffer(contents: Buffer, fn: (path: string) => Promise<void>): Promise<void> {
  const path = `/dev/shm/grass-unit-client-${process.pid}-${Math.random().toString(16).slice(2)}`;
  writeFileSync(path, contents);
  // Plays the agent's part of holding the buffer's first word (an absent lock means "agent gone").
  const agent = await openShmTransport(path);
  await agent.tryClaim!(0);
  try {
    await fn(path);
  } finally {
    await agent.close();
    rmSync(path, { force: true });
  }
}

const slotBase = (i: number): number => L.GRASS_HEADER_BYTES + i * SLOT_BYTES;

/** Answers the next request on `slot` as protocol.h's monitor would, with `data` and `crc`. */
async function answerOnce(t: Transport, slot: number, data: Uint8Array, crc: number): Promise<bigint> {
  const base = slotBase(slot);
  for (;;) {
    const mark = await t.readWord(base + L.slotOffsets.requestMark);
    const answered = await t.readWord(base + L.slotOffsets.replyMark);
    if (mark !== 0n && mark !== answered) {
      const reply = Buffer.alloc(L.reply.size);
      reply.writeBigUInt64LE(mark, L.reply.fields.seq.offset);
      reply.writeUInt32LE(data.length, L.reply.fields.data_bytes.offset);
      reply.writeBigUInt64LE(BigInt(data.length), L.reply.fields.total_bytes.offset);
      reply.writeUInt32LE(crc, L.reply.fields.data_crc32.offset);
      reply.writeUInt32LE(codec.requestTag(await t.read(base + L.slotOffsets.request, L.request.size)), L.reply.fields.request_tag.offset);
      await t.write(base + L.slotOffsets.data, data);
      await t.write(base + L.slotOffsets.reply, reply);
      await t.writeWord(base + L.slotOffsets.replyMark, mark);
      return mark;
    }
    await yieldImmediate();
  }
}

test('attach refuses what is not a GRASS buffer, naming the field', async () => {
  const cases: [Buffer, RegExp][] = [
    [headerBytes({ magic: 0x1122n }), /not a GRASS buffer \(magic 0x1122/],
    [headerBytes({ version: 1n }), /protocol version 1, this client speaks 3/],
    [headerBytes({ slot_bytes: 5000n }), /slot_bytes 5000 is not a multiple of 4096/],
    [headerBytes({ slot_data_bytes: 8000n }), /slot_data_bytes 8000 does not fit/],
    [headerBytes({ slot_count: 3n }), /3 slots of 8192 bytes do not fit/],
  ];
  for (const [contents, message] of cases) {
    await withBuffer(contents, async (path) => {
      const t = await openShmTransport(path);
      try {
        await assert.rejects(GrassClient.attach(t, KEY), (e: Error) => e instanceof GrassProtocolError && message.test(e.message), String(message));
      } finally {
        await t.close();
      }
    });
  }
});

test('requests start past the slot\'s marks; a silent monitor is "not answering"', async () => {
  const contents = headerBytes();
  contents.writeBigUInt64LE(41n, slotBase(0) + L.slotOffsets.requestMark);
  contents.writeBigUInt64LE(40n, slotBase(0) + L.slotOffsets.replyMark);
  await withBuffer(contents, async (path) => {
    const t = await openShmTransport(path);
    const client = await GrassClient.attach(t, KEY, { timeoutMs: 100 });
    try {
      await assert.rejects(client.heartbeat(), (e: Error) => e instanceof GrassTimeoutError && /HEARTBEAT on slot 0 .* monitor not answering \(its liveness counter is stuck at 0/.test(e.message));
      const request = Buffer.from(await t.read(slotBase(0), L.request.size));
      assert.equal(request.readBigUInt64LE(L.request.fields.seq.offset), 42n);
      assert.equal(await t.readWord(slotBase(0) + L.slotOffsets.requestMark), 42n);
      const expected = codec.signedRequest(KEY, INSTANCE, 0, { seq: 42n, opcode: L.Opcode.Heartbeat, dataBytes: 0, args: [] }, new Uint8Array(0));
      assert.deepEqual(request, Buffer.from(expected));
    } finally {
      await client.close();
    }
  });
});

test('a reply whose data never matches its CRC fails after re-reading, naming both CRCs', async () => {
  await withBuffer(headerBytes(), async (path) => {
    const t = await openShmTransport(path);
    const monitor = await openShmTransport(path, 'pread');
    const client = await GrassClient.attach(t, KEY, { timeoutMs: 2000 });
    try {
      const data = Buffer.alloc(8, 1);
      const good = codec.dataCrc32(data);
      const answered = answerOnce(monitor, 1, data, (good ^ 1) >>> 0);
      await assert.rejects(client.describe(), (e: Error) => e instanceof GrassProtocolError && new RegExp(`CRC32C 0x${good.toString(16)} does not match the reply's 0x${((good ^ 1) >>> 0).toString(16)} on each of 16 reads`).test(e.message));
      assert.equal(await answered, 1n);
      // A correct reply on the same slot is taken (8 bytes: a process count).
      const count = Buffer.alloc(8);
      count.writeBigUInt64LE(155n);
      void answerOnce(monitor, 0, count, codec.dataCrc32(count));
      assert.equal(await client.processCount(), 155);
    } finally {
      await client.close();
      await monitor.close();
    }
  });
});

test('a liveness block whose version stays odd is "monitor not answering"', async () => {
  const contents = headerBytes({ liveness_version: 7n, liveness_counter: 99n });
  await withBuffer(contents, async (path) => {
    const t = await openShmTransport(path);
    const client = await GrassClient.attach(t, KEY, { timeoutMs: 50 });
    try {
      await assert.rejects(client.liveness(), (e: Error) => e instanceof GrassTimeoutError && /stuck mid-update at version 7/.test(e.message));
      await t.writeWord(L.bufferHeader.fields.liveness_version.offset, 8n);
      assert.equal((await client.liveness()).counter, 99n);
    } finally {
      await client.close();
    }
  });
});
