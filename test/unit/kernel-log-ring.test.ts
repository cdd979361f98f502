// The printk ring reader on a real ring: the memory of a testbed guest (Debian 6.1) after its
// log wrapped, checked against the guest's own /dev/kmsg records read just before it was paused
// (test/fixtures/kernel-log/capture.ts made the fixture). Corruption cases damage copies of the
// same real bytes.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Btf } from '../../src/kernel/btf/btf';
import { KernelLogError, KernelLogReader, locateBlock, readKernelLog, type KernelLogRecord } from '../../src/kernel/log/ringbuffer';
import { KernelLogFollower } from '../../src/kernel/log/follow';
import { PrintkLayoutError } from '../../src/kernel/log/layout';
import { TargetReadError, type ReadRequest, type TargetDescription, type TargetMemory } from '../../src/types/target';
import { parseKmsg, type KmsgTruth } from './kernel-log-kmsg';

interface RingFixture {
  release: string;
  vmcoreinfo: string;
  btf: string;
  kmsg: string;
  regions: { address: string; data: string }[];
}

function loadRing(release: string): RingFixture {
  return JSON.parse(gunzipSync(readFileSync(join(__dirname, `../fixtures/kernel-log/ring-${release}.json.gz`))).toString('utf8')) as RingFixture;
}

const fixture = loadRing('6.1.0-56-amd64');

/** Serves the captured regions, counting round trips and bytes. */
class FixtureMemory implements TargetMemory {
  readonly regions: { address: bigint; data: Uint8Array }[];
  batches = 0;
  bytes = 0;

  constructor(f: RingFixture) {
    this.regions = f.regions.map((r) => ({ address: BigInt(r.address), data: new Uint8Array(Buffer.from(r.data, 'base64')) }));
  }

  region(index: number): { address: bigint; data: Uint8Array } {
    return this.regions[index];
  }

  async read(space: ReadRequest['space'], address: bigint, length: number): Promise<Uint8Array> {
    const [r] = await this.readBatch([{ space, address, length }]);
    if (r instanceof TargetReadError) throw r;
    return r;
  }

  async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    this.batches++;
    return requests.map((q) => {
      for (const r of this.regions) {
        const off = q.address - r.address;
        if (off >= 0n && off + BigInt(q.length) <= BigInt(r.data.byteLength)) {
          this.bytes += q.length;
          return r.data.slice(Number(off), Number(off) + q.length);
        }
      }
      return new TargetReadError(q.space, q.address, q.length, 'not captured');
    });
  }
}

// Region order in the fixture: prb, printk_ringbuffer, descs, infos, text data.
const DESCS = 2;
const INFOS = 3;
const DATA = 4;

function description(withBtf = true, vmcoreinfo = fixture.vmcoreinfo, f = fixture): TargetDescription {
  return {
    release: f.release,
    kaslrOffset: 0n,
    physBase: 0n,
    pageOffsetBase: 0n,
    pageTableRoot: 0n,
    pagingLevels: 4,
    memoryMap: [],
    symbols: [],
    btf: withBtf ? new Uint8Array(Buffer.from(f.btf, 'base64')) : new Uint8Array(0),
    vmcoreinfo,
  };
}

const truth = parseKmsg(fixture.kmsg);

function assertMatchesKmsg(records: KernelLogRecord[], expected: KmsgTruth[], withLevels: boolean): void {
  assert.deepEqual(
    records.map((r) => r.seq),
    expected.map((k) => k.seq),
  );
  for (let i = 0; i < expected.length; i++) {
    const r = records[i];
    const k = expected[i];
    const label = `record ${k.seq}`;
    assert.equal(r.text, k.text, label);
    assert.equal(Number(r.timestampNs / 1000n), k.timestampUs, label);
    assert.equal(r.continuation, k.continuation, label);
    assert.equal(r.subsystem, k.fields.SUBSYSTEM ?? '', label);
    assert.equal(r.device, k.fields.DEVICE ?? '', label);
    assert.equal(r.finalized, true, label);
    if (withLevels) assert.equal(((r.facility ?? -1) << 3) | (r.level ?? -1), k.priority, label);
    else assert.equal(r.level, undefined, label);
  }
}

test('the fixture is a wrapped ring: the guest wrote more than the text ring holds', () => {
  assert.ok(truth.length > 1000, `${truth.length} kmsg records`);
  assert.ok(truth[0].seq > 0, 'the oldest records were overwritten');
  // At least one record's data block wraps to the start of the text array (stored at offset 0).
  const mem = new FixtureMemory(fixture);
  const descs = mem.region(DESCS).data;
  const dataSize = BigInt(mem.region(DATA).data.byteLength);
  const view = new DataView(descs.buffer, descs.byteOffset, descs.byteLength);
  let wrapping = 0;
  for (let off = 0; off + 24 <= descs.byteLength; off += 24) {
    const begin = view.getBigUint64(off + 8, true);
    const next = view.getBigUint64(off + 16, true);
    const b = locateBlock(begin, next, dataSize, 17);
    if (typeof b === 'object' && b.offset === 0 && (begin & (dataSize - 1n)) !== 0n) wrapping++;
  }
  assert.ok(wrapping >= 1, 'a wrapping data block is present');
});

test('the log read from memory equals the guest\'s /dev/kmsg records (seq, level, facility, time, text, flags)', async () => {
  const mem = new FixtureMemory(fixture);
  const log = await readKernelLog(mem, description());
  assert.deepEqual(log.notes, []);
  assert.equal(log.firstSeq, truth[0].seq);
  assert.equal(log.headSeq, truth[truth.length - 1].seq);
  assert.equal(log.resumeAfterSeq, log.headSeq);
  assertMatchesKmsg(log.records, truth, true);
  assert.deepEqual(log.layoutSources.sort(), ['BTF', 'VMCOREINFO']);
  // The whole ring in a few large reads: prb, ring struct, head/tail, arrays, text, re-check.
  assert.ok(mem.batches <= 6, `${mem.batches} round trips`);
});

test('without BTF the text, sequence numbers and times still decode; levels are unknown', async () => {
  const log = await readKernelLog(new FixtureMemory(fixture), description(false));
  assertMatchesKmsg(log.records, truth, false);
});

test('incremental reads return only records after sinceSeq, cheaply', async () => {
  const mem = new FixtureMemory(fixture);
  const reader = new KernelLogReader(mem, description());
  const since = truth[truth.length - 4].seq;
  await reader.read({ sinceSeq: since });
  const before = mem.bytes;
  const batchesBefore = mem.batches;
  const log = await reader.read({ sinceSeq: since });
  // After the first read the ring struct comes with prb: ends, descriptors+infos, text, re-check.
  assert.equal(mem.batches - batchesBefore, 5);
  assertMatchesKmsg(log.records, truth.slice(-3), true);
  assert.equal(log.resumeAfterSeq, truth[truth.length - 1].seq);
  assert.ok(mem.bytes - before < 8192, `${mem.bytes - before} bytes read for 3 records`);
  const batchesNone = mem.batches;
  const none = await reader.read({ sinceSeq: log.resumeAfterSeq });
  assert.deepEqual(none.records, []);
  // Nothing new: prb with the ring struct, then the head and tail.
  assert.equal(mem.batches - batchesNone, 2);
  assert.equal(none.resumeAfterSeq, log.resumeAfterSeq);
});

test('asking from before the tail reports how many records were overwritten', async () => {
  const log = await readKernelLog(new FixtureMemory(fixture), description(), { sinceSeq: 100 });
  assert.equal(log.overwritten, truth[0].seq - 101);
  assert.equal(log.records.length, truth.length);
});

/** A copy of the fixture with bytes of one region changed. */
function damaged(region: number, patch: (data: Uint8Array, view: DataView) => void): FixtureMemory {
  const mem = new FixtureMemory(fixture);
  const data = mem.regions[region].data;
  patch(data, new DataView(data.buffer, data.byteOffset, data.byteLength));
  return mem;
}

function slotOf(seq: number): number {
  return seq & (98304 / 24 - 1);
}

test('a descriptor with garbage block positions is skipped with a note, the rest decodes', async () => {
  const victim = truth[500].seq;
  const mem = damaged(DESCS, (_d, v) => {
    v.setBigUint64(slotOf(victim) * 24 + 8, 0x1234567n, true);
    v.setBigUint64(slotOf(victim) * 24 + 16, 0xdeadbeefn, true);
  });
  const log = await readKernelLog(mem, description());
  assert.equal(log.notes.length, 1);
  assert.match(log.notes[0], new RegExp(`^record ${victim}: .*skipped$`));
  assertMatchesKmsg(log.records, truth.filter((k) => k.seq !== victim), true);
});

test('a data block whose id does not match its descriptor is skipped', async () => {
  const victim = truth[10].seq;
  const mem = new FixtureMemory(fixture);
  const descs = new DataView(mem.regions[DESCS].data.buffer);
  const begin = descs.getBigUint64(slotOf(victim) * 24 + 8, true);
  const next = descs.getBigUint64(slotOf(victim) * 24 + 16, true);
  const block = locateBlock(begin, next, 131072n, 17);
  assert.ok(typeof block === 'object');
  new DataView(mem.regions[DATA].data.buffer).setBigUint64(block.offset, 0x42n, true);
  const log = await readKernelLog(mem, description());
  assert.equal(log.notes.length, 1);
  assert.match(log.notes[0], /carries id 0x42/);
  assert.equal(log.records.length, truth.length - 1);
});

test('a text_len longer than its block is refused for that record only', async () => {
  const victim = truth[20].seq;
  const mem = damaged(INFOS, (_d, v) => v.setUint16(slotOf(victim) * 88 + 16, 60000, true));
  const log = await readKernelLog(mem, description());
  assert.match(log.notes.join('\n'), new RegExp(`record ${victim}: text_len 60000 exceeds`));
  assert.equal(log.records.length, truth.length - 1);
});

test('an info record whose seq disagrees with its slot is skipped as corrupt', async () => {
  const victim = truth[30].seq;
  const mem = damaged(INFOS, (_d, v) => v.setBigUint64(slotOf(victim) * 88, 7n, true));
  const log = await readKernelLog(mem, description());
  assert.match(log.notes.join('\n'), new RegExp(`record ${victim}: descriptor .* seq 7; skipped as corrupt`));
  assert.equal(log.records.length, truth.length - 1);
});

test('a garbage count_bits is a clear error, not a huge read', async () => {
  const mem = damaged(1, (_d, v) => v.setUint32(0, 60, true));
  await assert.rejects(readKernelLog(mem, description()), (e: unknown) => e instanceof KernelLogError && /count_bits 60 outside/.test(e.message));
  assert.ok(mem.bytes < 1024);
});

test('an unreadable text ring names what failed and where', async () => {
  const mem = new FixtureMemory(fixture);
  mem.regions.splice(DATA, 1);
  await assert.rejects(readKernelLog(mem, description()), (e: unknown) => e instanceof KernelLogError && /reading text data ring \[0\.\.131071\] \(131072 bytes at 0xffffffff[0-9a-f]+\) failed: not captured/.test(e.message));
});

test('without VMCOREINFO or symbols the error says prb cannot be found', () => {
  assert.throws(() => new KernelLogReader(new FixtureMemory(fixture), description(false, '')), (e: unknown) => e instanceof PrintkLayoutError && /no address for 'prb': VMCOREINFO has no SYMBOL\(prb\)/.test(e.message));
});

test('BTF alone (no VMCOREINFO) is enough given the symbol for prb', async () => {
  const d = description(true, '');
  d.symbols = [{ name: 'prb', address: BigInt(fixture.regions[0].address), type: 'D' }];
  const log = await readKernelLog(new FixtureMemory(fixture), d);
  assert.deepEqual(log.layoutSources.sort(), ['BTF', 'symbols']);
  assertMatchesKmsg(log.records, truth, true);
});

test('a target without the BTF records of the ring structs, nor VMCOREINFO, is refused by name', () => {
  const d = description(false, '');
  d.symbols = [{ name: 'prb', address: 1n, type: 'D' }];
  assert.throws(() => new KernelLogReader(new FixtureMemory(fixture), d), /SIZE\(printk_ringbuffer\) is in neither VMCOREINFO nor BTF \(the target description has neither/);
});

test('the BTF subset in the fixture is the kernel\'s own layout (matches VMCOREINFO where both speak)', () => {
  const btf = new Btf(new Uint8Array(Buffer.from(fixture.btf, 'base64')));
  const info = btf.findByName('printk_info', 'struct')!;
  assert.equal(btf.sizeof(info), 88);
  assert.equal(btf.findMember(info, 'caller_id')!.bitsOffset, 20 * 8);
  const level = btf.findMember(info, 'level')!;
  assert.equal(level.member.bitfieldSize, 3);
});

/** Rewrites the state bits of the descriptor of `seq`, keeping its id. */
function withState(mem: FixtureMemory, seq: number, state: bigint): void {
  const v = new DataView(mem.regions[DESCS].data.buffer);
  const sv = v.getBigUint64(slotOf(seq) * 24, true);
  v.setBigUint64(slotOf(seq) * 24, (state << 62n) | (sv & ((1n << 62n) - 1n)), true);
}

test('the last line still open for continuation (committed, not finalized) comes back until final', async () => {
  const head = truth[truth.length - 1].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, head, 1n);
  const log = await readKernelLog(mem, description());
  assert.deepEqual(log.notes, []);
  const last = log.records[log.records.length - 1];
  assert.equal(last.seq, head);
  assert.equal(last.finalized, false);
  assert.equal(last.text, truth[truth.length - 1].text);
  // A follower asks again from before it.
  assert.equal(log.resumeAfterSeq, head - 1);
  const again = await readKernelLog(mem, description(), { sinceSeq: log.resumeAfterSeq });
  assert.deepEqual(again.records.map((r) => r.seq), [head]);
});

test('a writer stopped mid-printk (head reserved, its seq not yet set) ends the log before it', async () => {
  const head = truth[truth.length - 1].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, head, 0n);
  // prb_reserve sets the seq after claiming the descriptor: a slot on its first lap still says 0.
  new DataView(mem.regions[INFOS].data.buffer).setBigUint64(slotOf(head) * 88, 0n, true);
  const log = await readKernelLog(mem, description());
  assert.deepEqual(log.notes, []);
  assert.equal(log.headSeq, head);
  assertMatchesKmsg(log.records, truth.slice(0, -1), true);
  assert.equal(log.resumeAfterSeq, head - 1);
});

test('a reserved record in the middle (a writer that died) is skipped with a note; later ones are read', async () => {
  const victim = truth[truth.length - 5].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, victim, 0n);
  const log = await readKernelLog(mem, description());
  assert.deepEqual(log.notes, [`record ${victim}: still reserved by its writer, never committed; skipped`]);
  assertMatchesKmsg(log.records, truth.filter((k) => k.seq !== victim), true);
  // Nothing after it counts as final while it may still complete.
  assert.equal(log.resumeAfterSeq, victim - 1);
});

/** A live writer moving the head between our reads: the head slot's id changes under us. */
class MovingHeadMemory extends FixtureMemory {
  constructor(private readonly moves: number) {
    super(fixture);
  }
  moved = 0;

  override async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    const answers = await super.readBatch(requests);
    // The ends batch reads the head descriptor first; report it reused by a newer record.
    if (requests.length === 4 && this.moved < this.moves) {
      this.moved++;
      const head = answers[0] as Uint8Array;
      const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
      v.setBigUint64(0, v.getBigUint64(0, true) + 4096n, true);
    }
    return answers;
  }
}

test('a head that moves while being read is read again', async () => {
  const mem = new MovingHeadMemory(2);
  const log = await readKernelLog(mem, description());
  assert.equal(mem.moved, 2);
  assertMatchesKmsg(log.records, truth, true);
});

test('a head that never holds still ends in an error after three attempts, not a loop', async () => {
  const mem = new MovingHeadMemory(Infinity);
  await assert.rejects(readKernelLog(mem, description()), /no longer carries the head id/);
  assert.equal(mem.moved, 3);
});

test('a follower returns each record once, in order', async () => {
  const follower = new KernelLogFollower(new KernelLogReader(new FixtureMemory(fixture), description()));
  const first = await follower.poll();
  assertMatchesKmsg(first.records, truth, true);
  assert.equal(first.overwritten, 0, 'records dropped before following began were never asked for');
  assert.deepEqual((await follower.poll()).records, []);
  assert.equal(follower.lastReturnedSeq, truth[truth.length - 1].seq);
});

test('a follower holds an open last line back until it is final or stays unchanged for two polls', async () => {
  const head = truth[truth.length - 1].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, head, 1n);
  const follower = new KernelLogFollower(new KernelLogReader(mem, description()), head - 3);
  assert.deepEqual((await follower.poll()).records.map((r) => r.seq), [head - 2, head - 1]);
  // Unchanged at the next poll (the kernel stopped writing): its last words are shown.
  const second = await follower.poll();
  assert.deepEqual(second.records.map((r) => [r.seq, r.finalized]), [[head, false]]);
  assert.deepEqual((await follower.poll()).records, []);

  const mem2 = new FixtureMemory(fixture);
  withState(mem2, head, 1n);
  const follower2 = new KernelLogFollower(new KernelLogReader(mem2, description()), head - 1);
  assert.deepEqual((await follower2.poll()).records, []);
  withState(mem2, head, 2n);
  assert.deepEqual((await follower2.poll()).records.map((r) => [r.seq, r.finalized]), [[head, true]]);
});

test('a follower that fell behind the ring says how many records it lost', async () => {
  const follower = new KernelLogFollower(new KernelLogReader(new FixtureMemory(fixture), description()), 999);
  const update = await follower.poll();
  assert.equal(update.overwritten, truth[0].seq - 1000);
  assert.equal(update.records.length, truth.length);
});

test('a damaged BTF costs the levels, not the log', async () => {
  const d = description();
  d.btf = d.btf.slice(0, 40);
  const log = await readKernelLog(new FixtureMemory(fixture), d);
  assert.equal(log.notes.length, 1);
  assert.match(log.notes[0], /^BTF unusable \(BTF of 6\.1\.0-56-amd64: .*\): levels and facilities unknown$/);
  assertMatchesKmsg(log.records, truth, false);
});

test('a garbled VMCOREINFO layout is refused by name, before any read', () => {
  const text = fixture.vmcoreinfo.replace(/^OFFSET\(printk_info\.caller_id\)=\d+$/m, 'OFFSET(printk_info.caller_id)=9999');
  assert.notEqual(text, fixture.vmcoreinfo);
  const mem = new FixtureMemory(fixture);
  assert.throws(() => new KernelLogReader(mem, description(true, text)), /printk_info\.caller_id at offset 9999 \(\+4\) lies outside its 88-byte struct/);
  assert.equal(mem.batches, 0);
});

test('a follower waits for a record still being written before passing it, one poll at most', async () => {
  const victim = truth[truth.length - 5].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, victim, 0n);
  const follower = new KernelLogFollower(new KernelLogReader(mem, description()), victim - 3);
  // Records after it may already be final (another CPU); the follower does not pass it yet.
  assert.deepEqual((await follower.poll()).records.map((r) => r.seq), [victim - 2, victim - 1]);
  // Still reserved at the next poll: a writer that will not finish. The rest is shown.
  assert.deepEqual((await follower.poll()).records.map((r) => r.seq), truth.slice(-4).map((k) => k.seq));
  assert.deepEqual((await follower.poll()).records, []);
});

test('a follower returns a record that completes while it waits, in order', async () => {
  const victim = truth[truth.length - 5].seq;
  const mem = new FixtureMemory(fixture);
  withState(mem, victim, 0n);
  const follower = new KernelLogFollower(new KernelLogReader(mem, description()), victim - 3);
  assert.deepEqual((await follower.poll()).records.map((r) => r.seq), [victim - 2, victim - 1]);
  withState(mem, victim, 2n);
  const next = await follower.poll();
  assertMatchesKmsg(next.records, truth.slice(-5), true);
});

test("Debian 6.12's ring (wrapped, with an empty record) equals its /dev/kmsg", async () => {
  const f612 = loadRing('6.12.117+deb12-amd64');
  const truth612 = parseKmsg(f612.kmsg);
  assert.ok(truth612[0].seq > 0, 'the ring wrapped');
  assert.ok(truth612.some((k) => k.text === ''), 'the guest logged an empty record');
  const log = await readKernelLog(new FixtureMemory(f612), description(true, f612.vmcoreinfo, f612));
  assert.deepEqual(log.notes, []);
  assertMatchesKmsg(log.records, truth612, true);
});

test('prb pointing elsewhere than at the last read (the boot-time switch to a bigger ring) is followed', async () => {
  const mem = new FixtureMemory(fixture);
  const reader = new KernelLogReader(mem, description());
  await reader.read();
  // Point prb at a copy of the ring struct elsewhere (as setup_log_buf() does with a new ring).
  const copyAt = 0xffffffff80001000n;
  mem.regions.push({ address: copyAt, data: mem.regions[1].data.slice() });
  new DataView(mem.regions[0].data.buffer).setBigUint64(0, copyAt, true);
  new DataView(mem.regions[1].data.buffer).setUint32(0, 60, true); // the old struct is garbage now
  const log = await reader.read();
  assertMatchesKmsg(log.records, truth, true);
});
