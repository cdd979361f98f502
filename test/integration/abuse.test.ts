// Protocol abuse against a real agent over shm (testbed guest, paused so its memory holds
// still): forged MACs, replays, out-of-range lengths and offsets, torn writes, a mark before
// its body, two remotes at once, slot exhaustion. Every case is refused or served correctly,
// and between every two cases a heartbeat from an honest client must be answered and the
// liveness counter must move. Requests are written byte by byte into the buffer (a remote with
// write access is exactly who the protocol must withstand); truth for served reads is the
// guest's RAM file. Prints the cases tried and how the agent classified them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootGuest, Guest } from '../../testbed';
import { GrassClient, GrassTimeoutError } from '../../src/rdma/client';
import { readKeyFile } from '../../src/rdma/key';
import * as codec from '../../src/rdma/protocol/codec';
import * as L from '../../src/rdma/protocol/layout';
import { openShmTransport } from '../../src/rdma/shm';
import { Transport } from '../../src/rdma/transport';
import { GuestAgent, startGuestAgent } from './agent-harness';

const SLOTS = 4;
let guest: Guest;
let agent: GuestAgent;
let honest: GrassClient; // the heartbeat checker
let raw: Transport; // the attacker's own access to the buffer
let key: Uint8Array;
let header: codec.BufferHeader;
let ramStart = 0n; // first RAM range: a physical range the agent serves
let ramEnd = 0n; // end of the highest RAM range

const outcomes = new Map<string, number>(); // classification -> count
const cases: string[] = [];
let heartbeatsBetween = 0;
let collisionErrors = 0; // two remotes without claims: requests that failed after 8 collisions

before(async () => {
  guest = await bootGuest({ memMiB: 256, cpus: 1 });
  agent = await startGuestAgent(guest, undefined, ['--slots', String(SLOTS)]);
  await guest.pause();
  key = readKeyFile(agent.keyFile);
  honest = await GrassClient.attach(await openShmTransport(agent.shmPath), key, { timeoutMs: 5000 });
  raw = await openShmTransport(agent.shmPath);
  header = honest.header;
  const ranges = guest.memoryMap().ranges.map((r) => ({ start: BigInt(r.physStart), end: BigInt(r.physStart) + BigInt(r.length) }));
  ramStart = ranges[0].start + 0x100000n;
  ramEnd = ranges.reduce((m, r) => (r.end > m ? r.end : m), 0n);
});

after(async () => {
  console.log(`abuse: ${cases.length} cases tried, ${heartbeatsBetween} heartbeats between them; outcomes: ` +
    [...outcomes].map(([k, v]) => `${k} ${v}`).join(', ') + `; crashes 0 (agent alive after each case), hangs 0, ` +
    `requests given up after repeated collisions (two remotes without claims) ${collisionErrors}`);
  await honest?.close();
  await raw?.close();
  await agent?.stop();
  await guest?.down();
});

const slotBase = (i: number): number => header.headerBytes + i * header.slotBytes;

interface Post {
  slot: number;
  opcode: number;
  args?: bigint[];
  data?: Uint8Array;
  seq?: bigint;
  /** Signing overrides: another key, slot index or instance than the real ones. */
  signKey?: Uint8Array;
  signSlot?: number;
  signInstance?: bigint;
  /** Changes the signed request bytes or data before they are written (a forger's edit). */
  tamper?: (request: Uint8Array, data: Uint8Array) => void;
  dataBytes?: number;
}

interface Answer {
  seq: bigint;
  reply: codec.Reply;
  data: Uint8Array;
}

/** Per slot, the highest seq written here (the marks go back when a case writes an old seq). */
const highestSeq = new Map<number, bigint>();

/** The slot's next fresh seq: past both marks and past every seq this test wrote. */
async function freshSeq(slot: number): Promise<bigint> {
  let seq = highestSeq.get(slot) ?? 0n;
  for (const mark of [L.slotOffsets.requestMark, L.slotOffsets.replyMark]) {
    const seen = await raw.readWord(slotBase(slot) + mark);
    if (seen > seq) seq = seen;
  }
  highestSeq.set(slot, seq + 1n);
  return seq + 1n;
}

/** Claims a slot against the honest client (OFD lock), runs fn, releases it. */
async function withSlot<T>(slot: number, fn: () => Promise<T>): Promise<T> {
  const offset = slotBase(slot) + L.slotOffsets.requestMark;
  const deadline = Date.now() + 5000;
  while (!(await raw.tryClaim!(offset))) {
    assert.ok(Date.now() < deadline, `slot ${slot} stays claimed`);
    await sleep(1);
  }
  try {
    return await fn();
  } finally {
    await raw.releaseClaim!(offset);
  }
}

function build(p: Post, seq: bigint): { request: Uint8Array; data: Uint8Array } {
  const data = p.data ?? new Uint8Array(0);
  const fields = { seq, opcode: p.opcode, dataBytes: data.length, args: p.args ?? [] };
  const request = codec.signedRequest(p.signKey ?? key, p.signInstance ?? header.instance, p.signSlot ?? p.slot, fields, data);
  const written = Uint8Array.from(data);
  if (p.dataBytes !== undefined) new DataView(request.buffer).setUint32(L.request.fields.data_bytes.offset, p.dataBytes, true);
  p.tamper?.(request, written);
  return { request, data: written };
}

async function awaitReply(slot: number, seq: bigint, timeoutMs = 5000): Promise<Answer | undefined> {
  const deadline = Date.now() + timeoutMs;
  while ((await raw.readWord(slotBase(slot) + L.slotOffsets.replyMark)) !== seq) {
    if (Date.now() > deadline) return undefined;
    await sleep(1);
  }
  const reply = codec.decodeReply(await raw.read(slotBase(slot) + L.slotOffsets.reply, L.reply.size));
  const data = await raw.read(slotBase(slot) + L.slotOffsets.data, Math.min(reply.dataBytes, header.slotDataBytes));
  return { seq, reply, data };
}

/** Writes data, request, then mark (the honest order), and waits for the reply. */
async function post(p: Post): Promise<Answer> {
  return withSlot(p.slot, async () => {
    const seq = p.seq ?? (await freshSeq(p.slot));
    const { request, data } = build(p, seq);
    if (data.length) await raw.write(slotBase(p.slot) + L.slotOffsets.data, data);
    await raw.write(slotBase(p.slot) + L.slotOffsets.request, request);
    await raw.writeWord(slotBase(p.slot) + L.slotOffsets.requestMark, seq);
    const answer = await awaitReply(p.slot, seq);
    assert.ok(answer, `no reply to seq ${seq} on slot ${p.slot}`);
    assert.equal(answer.reply.requestTag, codec.requestTag(request), 'the reply carries the request\'s tag');
    return answer;
  });
}

/** After each case: the honest client's heartbeat is answered and the monitor loop moves. */
async function assertAlive(what: string): Promise<void> {
  assert.equal(agent.process.exitCode, null, `the agent exited after: ${what}`);
  const before = await honest.liveness();
  const hb = await honest.heartbeat();
  assert.ok(hb.liveness.counter > before.counter, `liveness did not move after: ${what}`);
  heartbeatsBetween++;
}

function classify(name: string, a: Answer): string {
  const kind = a.reply.status === L.Status.Ok ? 'served' : `refused ${L.Status[a.reply.status] ?? a.reply.status}`;
  cases.push(`${name}: ${kind}`);
  outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
  return kind;
}

/** One case: expect a refusal with this status (and an empty reply), or 'served'. */
async function expectCase(name: string, p: Post, expected: L.Status): Promise<Answer> {
  const refusedBefore = (await honest.liveness()).requestsRefused;
  const a = await post(p);
  classify(name, a);
  assert.equal(L.Status[a.reply.status], L.Status[expected], `${name}: status ${a.reply.status}, detail 0x${a.reply.detail.toString(16)}`);
  if (expected !== L.Status.Ok) {
    assert.equal(a.reply.dataBytes, 0, `${name}: a refusal carries no data`);
    assert.equal(a.reply.totalBytes, 0n, `${name}: a refusal carries no result`);
  }
  if (expected === L.Status.BadMac || expected === L.Status.Replay || expected === L.Status.Malformed) {
    assert.ok((await honest.liveness()).requestsRefused > refusedBefore, `${name}: counted as refused`);
  }
  await assertAlive(name);
  return a;
}

function ramBytes(phys: bigint, length: number): Buffer {
  return guest.readPhysical(phys, length);
}

const readArgs = (space: number, address: bigint, length: bigint, pid = 0n): bigint[] => [BigInt(space), address, length, pid];
const flip = (offset: number) => (request: Uint8Array): void => void (request[offset] ^= 1);

test('forged authenticators are refused (wrong key, flipped bits, another slot or agent run, edits after signing)', async () => {
  const read = readArgs(L.Space.Physical, ramStart, 64n);
  const otherKey = randomBytes(32);
  const mac = L.request.fields.mac.offset;
  const forged: [string, Post][] = [
    ['heartbeat signed with another key', { slot: 1, opcode: L.Opcode.Heartbeat, signKey: otherKey }],
    ['read signed with another key', { slot: 1, opcode: L.Opcode.Read, args: read, signKey: otherKey }],
    ['describe signed with another key', { slot: 2, opcode: L.Opcode.Describe, signKey: otherKey }],
    ['process list signed with another key', { slot: 2, opcode: L.Opcode.ProcessList, args: [0n], signKey: otherKey }],
    ['MAC all zeros', { slot: 1, opcode: L.Opcode.Read, args: read, tamper: (r) => r.fill(0, mac, mac + 32) }],
    ['first MAC bit flipped', { slot: 1, opcode: L.Opcode.Read, args: read, tamper: flip(mac) }],
    ['last MAC bit flipped', { slot: 1, opcode: L.Opcode.Read, args: read, tamper: flip(mac + 31) }],
    ['signed for slot 2, posted on slot 1', { slot: 1, opcode: L.Opcode.Read, args: read, signSlot: 2 }],
    ['signed for another agent run (instance + 1)', { slot: 1, opcode: L.Opcode.Read, args: read, signInstance: header.instance + 1n }],
    ['address changed after signing', { slot: 1, opcode: L.Opcode.Read, args: read, tamper: flip(L.request.fields.args.offset + 8) }],
    ['opcode changed after signing (heartbeat -> describe)', { slot: 1, opcode: L.Opcode.Heartbeat, tamper: (r) => void (r[L.request.fields.opcode.offset] = L.Opcode.Describe) }],
    ['batch entry changed after signing', {
      slot: 1, opcode: L.Opcode.ReadBatch, args: [1n],
      data: codec.encodeReadBatchEntries([{ space: L.Space.Physical, pid: 0, address: ramStart, length: 8 }]),
      tamper: (_r, d) => void (d[8] ^= 0x10),
    }],
    ['data_bytes shortened after signing', {
      slot: 1, opcode: L.Opcode.ReadBatch, args: [1n], dataBytes: 16,
      data: codec.encodeReadBatchEntries([{ space: L.Space.Physical, pid: 0, address: ramStart, length: 8 }]),
    }],
  ];
  for (const [name, p] of forged) await expectCase(name, p, L.Status.BadMac);
});

test('replays are refused: an older seq, seq 0, a request moved to another slot; an unchanged mark is not served again', async () => {
  const p: Post = { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramStart, 64n) };
  const first = await withSlot(1, async () => {
    const seq = await freshSeq(1);
    const bytes = build(p, seq);
    await raw.write(slotBase(1) + L.slotOffsets.request, bytes.request);
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, seq);
    assert.ok(await awaitReply(1, seq));
    return { seq, request: bytes.request };
  });
  await expectCase('a fresh read (served)', p, L.Status.Ok);
  const servedBefore = (await honest.liveness()).requestsServed;
  await withSlot(1, async () => {
    // The captured request again, with its own seq as the mark: older than the slot's last.
    await raw.write(slotBase(1) + L.slotOffsets.request, first.request);
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, first.seq);
    const a = await awaitReply(1, first.seq);
    assert.ok(a, 'the replay is answered (refused)');
    assert.equal(classify('replay of an older request', a), 'refused Replay');
    assert.ok(a.reply.detail > first.seq, 'detail names the slot\'s last accepted seq');
  });
  await assertAlive('replay of an older request');
  // The same bytes again with the mark unchanged: nothing new to serve.
  const last = await raw.readWord(slotBase(1) + L.slotOffsets.requestMark);
  await withSlot(1, async () => {
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, last);
    await sleep(200);
  });
  assert.equal(await raw.readWord(slotBase(1) + L.slotOffsets.replyMark), last);
  cases.push('the same mark written again: not served again');
  outcomes.set('ignored (mark unchanged)', (outcomes.get('ignored (mark unchanged)') ?? 0) + 1);
  await assertAlive('mark rewritten');
  await expectCase('seq 0', { ...p, seq: 0n }, L.Status.Replay);
  // Captured on slot 1, replayed on slot 2 with a seq newer than slot 2's: the MAC names slot 1.
  await withSlot(2, async () => {
    const seq = await freshSeq(2);
    const moved = build({ ...p, slot: 2, signSlot: 1 }, seq);
    await raw.write(slotBase(2) + L.slotOffsets.request, moved.request);
    await raw.writeWord(slotBase(2) + L.slotOffsets.requestMark, seq);
    const a = await awaitReply(2, seq);
    assert.ok(a);
    assert.equal(classify('request captured on slot 1 replayed on slot 2', a), 'refused BadMac');
  });
  await assertAlive('replay on another slot');
  const servedAfter = (await honest.liveness()).requestsServed;
  // Only the honest heartbeats were served since (one per assertAlive).
  assert.ok(servedAfter - servedBefore <= 6n, `served ${servedAfter - servedBefore} requests, expected only the heartbeats`);
});

test('out-of-range lengths, offsets, spaces, opcodes and result ids are refused, naming what was wrong', async () => {
  const big = BigInt(16 << 20); // the agent's result arena per slot (BufferOptions.result_bytes)
  const entry = (e: Partial<{ space: number; address: bigint; length: number }>): Uint8Array =>
    codec.encodeReadBatchEntries([{ space: L.Space.Physical, pid: 0, address: ramStart, length: 8, ...e } as never]);
  const M = L.Status.Malformed;
  const lastOpcode = Math.max(...Object.values(L.Opcode).filter((v): v is number => typeof v === 'number'));
  const page = BigInt(L.BULK_PAGE_BYTES);
  const refusals: [string, Post, L.Status][] = [
    ['data_bytes one past the data area', { slot: 1, opcode: L.Opcode.Heartbeat, dataBytes: header.slotDataBytes + 1 }, M],
    ['data_bytes 0xffffffff', { slot: 1, opcode: L.Opcode.Heartbeat, dataBytes: 0xffffffff }, M],
    ['opcode 0', { slot: 1, opcode: 0 }, M],
    [`opcode ${lastOpcode + 1} (one past the last)`, { slot: 1, opcode: lastOpcode + 1 }, M],
    ['opcode 0xffffffff', { slot: 1, opcode: 0xffffffff }, M],
    ['read of 0 bytes', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramStart, 0n) }, M],
    ['read one byte past the result arena', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramStart, big + 1n) }, M],
    ['read of 2^64-1 bytes', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramStart, (1n << 64n) - 1n) }, M],
    ['read in space 3', { slot: 1, opcode: L.Opcode.Read, args: readArgs(3, ramStart, 8n) }, M],
    ['read in space 2^63', { slot: 1, opcode: L.Opcode.Read, args: readArgs(0, ramStart, 8n).map((v, i) => (i === 0 ? 1n << 63n : v)) }, M],
    ['physical read past the end of RAM', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramEnd, 8n) }, L.Status.OutOfRange],
    ['physical read straddling the end of RAM', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramEnd - 8n, 16n) }, L.Status.OutOfRange],
    ['physical read wrapping past 2^64', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, (1n << 64n) - 8n, 4096n) }, L.Status.OutOfRange],
    ['kernel read at 0x10', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Kernel, 0x10n, 8n) }, L.Status.Unmapped],
    ['kernel read wrapping past 2^64', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Kernel, (1n << 64n) - 16n, 64n) }, L.Status.Unmapped],
    ['non-canonical kernel address', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Kernel, 0x0000800000000000n, 8n) }, L.Status.Unmapped],
    ['user read of pid 2^31-1 (no such process)', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.User, 0x400000n, 8n, 0x7fffffffn) }, M],
    ['write on an agent without --allow-writes', { slot: 1, opcode: L.Opcode.Write, args: readArgs(L.Space.Physical, ramStart, 8n), data: new Uint8Array(8) }, L.Status.WritesDisabled],
    ['fetch of result id 0', { slot: 1, opcode: L.Opcode.FetchResult, args: [0n, 0n] }, L.Status.NoSuchResult],
    ['fetch of a result id never issued', { slot: 1, opcode: L.Opcode.FetchResult, args: [0xdead_beef_01n, 0n] }, L.Status.NoSuchResult],
    ['fetch naming arena 255', { slot: 1, opcode: L.Opcode.FetchResult, args: [0x1ffn, 0n] }, L.Status.NoSuchResult],
    ['batch of 0 entries', { slot: 1, opcode: L.Opcode.ReadBatch, args: [0n] }, M],
    ['batch count larger than its data', { slot: 1, opcode: L.Opcode.ReadBatch, args: [2n], data: entry({}) }, M],
    ['batch count 2^61+1 (24 x count wraps to 24)', { slot: 1, opcode: L.Opcode.ReadBatch, args: [(1n << 61n) + 1n], data: entry({}) }, M],
    ['batch count 2^64-1', { slot: 1, opcode: L.Opcode.ReadBatch, args: [(1n << 64n) - 1n], data: entry({}) }, M],
    ['batch entry of 0xffffffff bytes', { slot: 1, opcode: L.Opcode.ReadBatch, args: [1n], data: entry({ length: 0xffffffff }) }, M],
    ['batch entry in space 9', { slot: 1, opcode: L.Opcode.ReadBatch, args: [1n], data: entry({ space: 9 }) }, M],
    ['bulk read of a part page', { slot: 1, opcode: L.Opcode.BulkRead, args: [ramStart, page - 1n] }, M],
    ['bulk read at an unaligned address', { slot: 1, opcode: L.Opcode.BulkRead, args: [ramStart + 8n, page] }, M],
    ['bulk read wrapping past 2^64', { slot: 1, opcode: L.Opcode.BulkRead, args: [(1n << 64n) - page, 2n * page] }, M],
    ['bulk read larger than the data area', { slot: 1, opcode: L.Opcode.BulkRead, args: [ramStart, BigInt(header.slotDataBytes) + page] }, M],
    ['bulk read with a bitmap shorter than its pages', { slot: 1, opcode: L.Opcode.BulkRead, args: [ramStart, 64n * page], data: new Uint8Array([0xff]) }, M],
    ['bulk read past the end of RAM', { slot: 1, opcode: L.Opcode.BulkRead, args: [ramEnd, page] }, L.Status.OutOfRange],
  ];
  for (const [name, p, status] of refusals) await expectCase(name, p, status);

  // A result's chunks past its end: the description (a large result) fetched at bad offsets.
  const d = await expectCase('describe (served)', { slot: 2, opcode: L.Opcode.Describe }, L.Status.Ok);
  assert.ok(d.reply.totalBytes > BigInt(d.reply.dataBytes), 'the description is chunked');
  await expectCase('fetch at the result\'s end', { slot: 2, opcode: L.Opcode.FetchResult, args: [d.reply.resultId, d.reply.totalBytes] }, M);
  await expectCase('fetch at offset 2^64-1', { slot: 2, opcode: L.Opcode.FetchResult, args: [d.reply.resultId, (1n << 64n) - 1n] }, M);
  const last = await expectCase('fetch of the last byte', { slot: 2, opcode: L.Opcode.FetchResult, args: [d.reply.resultId, d.reply.totalBytes - 1n] }, L.Status.Ok);
  assert.equal(last.reply.dataBytes, 1);

  // Served correctly at the edges: the last 8 bytes of RAM, a batch mixing good and bad entries,
  // every ps flag bit set (unknown bits ignored).
  const edge = await expectCase('physical read of the last 8 bytes of RAM', { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramEnd - 8n, 8n) }, L.Status.Ok);
  assert.deepEqual(Buffer.from(edge.data), ramBytes(ramEnd - 8n, 8));
  const mixed = codec.encodeReadBatchEntries([
    { space: L.Space.Physical, pid: 0, address: ramStart, length: 24 },
    { space: L.Space.Physical, pid: 0, address: ramEnd, length: 8 },
    { space: L.Space.Kernel, pid: 0, address: 0x10n, length: 8 },
  ]);
  const batch = await expectCase('batch with one good and two bad entries', { slot: 1, opcode: L.Opcode.ReadBatch, args: [3n], data: mixed }, L.Status.Ok);
  const b = Buffer.from(batch.data);
  assert.equal(b.readUInt32LE(0), L.Status.Ok);
  assert.deepEqual(b.subarray(4, 28), ramBytes(ramStart, 24));
  assert.equal(b.readUInt32LE(32), L.Status.OutOfRange);
  assert.equal(b.readUInt32LE(48), L.Status.Unmapped);
  const count = await expectCase('process count with every flag bit set', { slot: 0, opcode: L.Opcode.ProcessCount, args: [(1n << 64n) - 1n] }, L.Status.Ok);
  assert.equal(Buffer.from(count.data).readBigUInt64LE(0), BigInt(await honest.processCount({ threads: true, idle: true })));
});

test('torn writes and a mark before its body: refused, or served once the body is whole; the slot stays usable', async () => {
  const p: Post = { slot: 1, opcode: L.Opcode.Read, args: readArgs(L.Space.Physical, ramStart, 32n) };
  // The mark lands, the body never does: the agent waits, then refuses; heartbeats go on meanwhile.
  await withSlot(1, async () => {
    const seq = await freshSeq(1);
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, seq);
    const hb = await honest.heartbeat(); // served while slot 1 holds a bodiless mark
    assert.ok(hb.roundTripNs > 0n);
    heartbeatsBetween++;
    const a = await awaitReply(1, seq);
    assert.ok(a, 'a mark with no body is answered');
    assert.equal(classify('mark with no body', a), 'refused Malformed');
  });
  await assertAlive('mark with no body');
  // Mark first, body a moment later (within the agent's 50 ms wait): served with the right bytes.
  await withSlot(1, async () => {
    const seq = await freshSeq(1);
    const { request } = build(p, seq);
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, seq);
    await raw.write(slotBase(1) + L.slotOffsets.request, request);
    const a = await awaitReply(1, seq);
    assert.ok(a);
    const kind = classify('mark, then its body', a);
    // On a loaded host the body may come after the agent's wait: then it must be refused, never misread.
    if (kind === 'served') assert.deepEqual(Buffer.from(a.data), ramBytes(ramStart, 32));
    else assert.equal(kind, 'refused Malformed');
  });
  await assertAlive('mark before body');
  // Half the request struct written (the seq and part of the args, the rest from the last request).
  await withSlot(1, async () => {
    const seq = await freshSeq(1);
    const { request } = build({ ...p, args: readArgs(L.Space.Physical, ramStart + 4096n, 32n) }, seq);
    await raw.write(slotBase(1) + L.slotOffsets.request, request.subarray(0, 40));
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, seq);
    const a = await awaitReply(1, seq);
    assert.ok(a);
    assert.equal(classify('half of the request struct written', a), 'refused BadMac');
  });
  await assertAlive('half request');
  // Batch entries half written when the mark is set.
  const entries = codec.encodeReadBatchEntries([0, 1, 2, 3].map((k) => ({ space: L.Space.Physical, pid: 0, address: ramStart + BigInt(k * 4096), length: 16 })));
  await withSlot(1, async () => {
    const seq = await freshSeq(1);
    const { request, data } = build({ slot: 1, opcode: L.Opcode.ReadBatch, args: [4n], data: entries }, seq);
    await raw.write(slotBase(1) + L.slotOffsets.data, new Uint8Array(data.length)); // old contents
    await raw.write(slotBase(1) + L.slotOffsets.data, data.subarray(0, data.length / 2));
    await raw.write(slotBase(1) + L.slotOffsets.request, request);
    await raw.writeWord(slotBase(1) + L.slotOffsets.requestMark, seq);
    const a = await awaitReply(1, seq);
    assert.ok(a);
    assert.equal(classify('request data half written', a), 'refused BadMac');
  });
  await assertAlive('half data');
  // The slot serves the next whole request.
  const ok = await expectCase('whole request after the torn ones', p, L.Status.Ok);
  assert.deepEqual(Buffer.from(ok.data), ramBytes(ramStart, 32));
});

/** A remote: its own transport (own slot claims unless withoutClaims), its own client. */
async function remote(withoutClaims: boolean): Promise<GrassClient> {
  const t = await openShmTransport(agent.shmPath);
  if (withoutClaims) {
    // As over RDMA: no lock between remotes, only the protocol's own seqs and replies.
    (t as { tryClaim?: unknown }).tryClaim = undefined;
    (t as { releaseClaim?: unknown }).releaseClaim = undefined;
  }
  return GrassClient.attach(t, key, { timeoutMs: 5000 });
}

/** Mixed load from several remotes at once; every answer checked against the RAM file. */
async function twoRemotes(withoutClaims: boolean, perRemote: number): Promise<{ answers: number; wrong: string[]; errors: string[] }> {
  const remotes = [await remote(withoutClaims), await remote(withoutClaims)];
  const count = await honest.processCount();
  const wrong: string[] = [];
  const errors: string[] = [];
  let answers = 0;
  try {
    await Promise.all(remotes.map(async (c, r) => {
      for (let k = 0; k < perRemote; k++) {
        const phys = ramStart + BigInt(((r * perRemote + k) % 2048) * 4096 + 8 * r);
        const length = 64 + 8 * (k % 7);
        const work = [
          c.read({ kind: 'physical' }, phys, length).then((got) => {
            if (!ramBytes(phys, length).equals(Buffer.from(got))) wrong.push(`remote ${r} read at 0x${phys.toString(16)}`);
          }),
          c.processCount().then((n) => { if (n !== count) wrong.push(`remote ${r} process count ${n}, expected ${count}`); }),
          c.heartbeat().then(() => undefined),
        ];
        for (const s of await Promise.allSettled(work)) {
          if (s.status === 'fulfilled') answers++;
          else errors.push(String(s.reason));
        }
      }
    }));
  } finally {
    for (const c of remotes) await c.close();
  }
  return { answers, wrong, errors };
}

test('two remotes at once, sharing every slot: each gets its own answers', async () => {
  const withClaims = await twoRemotes(false, 60);
  cases.push(`two remotes with slot claims: ${withClaims.answers} answers`);
  assert.deepEqual(withClaims.wrong, []);
  assert.deepEqual(withClaims.errors, []);
  await assertAlive('two remotes with claims');
  // Without claims (the RDMA case: nothing but seqs keeps remotes apart) a collision may be
  // refused and asked again, or fail with an error saying another client used the slot, but
  // no remote may take another's reply as its own.
  const bare = await twoRemotes(true, 60);
  cases.push(`two remotes without claims: ${bare.answers} answers, ${bare.errors.length} errors`);
  collisionErrors += bare.errors.length;
  assert.deepEqual(bare.wrong, [], 'a remote took another remote\'s reply');
  for (const e of bare.errors) assert.match(e, /another client/);
  await assertAlive('two remotes without claims');
});

test('slot exhaustion: other slots held, heartbeats still answered on slot 0; all held, a clear error in time; freed, served', async () => {
  const held = [1, 2, 3].map((i) => slotBase(i) + L.slotOffsets.requestMark);
  for (const offset of held) assert.ok(await raw.tryClaim!(offset));
  const impatient = await GrassClient.attach(await openShmTransport(agent.shmPath), key, { timeoutMs: 800 });
  try {
    await impatient.heartbeat(); // slot 0 is free: urgent requests still go
    heartbeatsBetween++;
    const start = Date.now();
    await assert.rejects(impatient.read({ kind: 'physical' }, ramStart, 8), (e: Error) => e instanceof GrassTimeoutError && /every slot usable for this request is held by other clients/.test(e.message));
    assert.ok(Date.now() - start < 3000, 'the error comes within the timeout');
    cases.push('every non-urgent slot held: read fails naming the held slots; heartbeat served');
    const zero = slotBase(0) + L.slotOffsets.requestMark;
    // Slot 0 too, once the client's own lingering claim on it has lapsed.
    const deadline = Date.now() + 2000;
    while (!(await raw.tryClaim!(zero))) {
      assert.ok(Date.now() < deadline, 'slot 0 claimable');
      await sleep(2);
    }
    await assert.rejects(impatient.heartbeat(), (e: Error) => e instanceof GrassTimeoutError && /held by other clients/.test(e.message));
    cases.push('every slot held: heartbeat fails naming the held slots');
    await raw.releaseClaim!(zero);
  } finally {
    for (const offset of held) await raw.releaseClaim!(offset);
  }
  assert.deepEqual(Buffer.from(await impatient.read({ kind: 'physical' }, ramStart, 8)), ramBytes(ramStart, 8));
  await impatient.close();
  // Every slot busy with large reads at once: heartbeats still come back, each well in time.
  const slowest = { ms: 0 };
  const big = 8 << 20;
  const load = honest.read({ kind: 'physical' }, ramStart, big);
  const beats = (async () => {
    for (let k = 0; k < 20; k++) {
      const t0 = Date.now();
      await honest.heartbeat();
      heartbeatsBetween++;
      slowest.ms = Math.max(slowest.ms, Date.now() - t0);
    }
  })();
  const [bytes] = await Promise.all([load, beats]);
  assert.ok(ramBytes(ramStart, big).equals(Buffer.from(bytes)), 'the large read is right');
  cases.push(`20 heartbeats during an ${big >> 20} MiB read on every slot: slowest ${slowest.ms} ms`);
  await assertAlive('slot exhaustion');
});
