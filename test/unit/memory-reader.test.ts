// MemoryReader, the per-request cache every kernel walk reads through, against a memory image
// (the truth: bytes written at known addresses): what it asks the target for (runs of lines,
// gaps bridged within a page, never across one), what it hands back (the image's bytes, also
// across lines, runs and pages, and through uintAt), what it keeps (a line fetched once is not
// asked for again, and keeps its first reading) and how an unreadable byte is named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryReader } from '../../src/kernel/objects/reader';
import { TargetReadError, type ReadRequest } from '../../src/types/target';
import { ImageMemory } from './kernel-fixtures';

const BASE = 0xffff888000200000n;

/** An image of `pages` mapped pages filled with a pattern of their addresses; readBatch calls recorded. */
function image(pages = 4): { memory: ImageMemory; asked: ReadRequest[][]; byte: (a: bigint) => number } {
  const memory = new ImageMemory();
  const byte = (a: bigint): number => Number((a * 7n + (a >> 8n)) & 0xffn);
  const bytes = new Uint8Array(pages * 4096).map((_, i) => byte(BASE + BigInt(i)));
  memory.write(BASE, bytes);
  const asked: ReadRequest[][] = [];
  const readBatch = memory.readBatch.bind(memory);
  memory.readBatch = (requests: ReadRequest[]) => {
    asked.push(requests.map((r) => ({ ...r })));
    return readBatch(requests);
  };
  return { memory, asked, byte };
}

const expected = (byte: (a: bigint) => number, address: bigint, length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => byte(address + BigInt(i)));

describe('MemoryReader', () => {
  it('asks for runs of missing lines, bridges gaps of two lines, never crosses a page', async () => {
    const { memory, asked } = image();
    const reader = new MemoryReader(memory, 64);
    await reader.prefetch([
      { address: BASE + 8n, length: 8 }, // line 0
      { address: BASE + 3n * 64n, length: 4 }, // line 3: two lines after 0, bridged
      { address: BASE + 10n * 64n, length: 64 }, // line 10: a gap of six, a run of its own
      { address: BASE + 4096n - 16n, length: 32 }, // the last line of page 0 and the first of page 1
    ]);
    assert.equal(asked.length, 1);
    assert.deepEqual(asked[0].map((r) => [r.address - BASE, r.length]), [[0n, 256], [640n, 64], [4032n, 64], [4096n, 64]]);
    assert.equal(reader.stats.rounds, 1);
    assert.equal(reader.stats.ranges, 4);
    assert.equal(reader.stats.bytes, 448);
    // Everything cached: no second round.
    await reader.prefetch([{ address: BASE + 100n, length: 50 }, { address: BASE + 4090n, length: 12 }]);
    assert.equal(asked.length, 1);
    assert.equal(reader.stats.rounds, 1);
  });

  it('hands back the image\'s bytes: within a run (a view), across runs and pages (a copy), and through uintAt', async () => {
    const { memory, byte } = image();
    const reader = new MemoryReader(memory, 64);
    await reader.prefetch([{ address: BASE, length: 200 }, { address: BASE + 512n, length: 64 }, { address: BASE + 4000n, length: 300 }]);
    await reader.prefetch([{ address: BASE + 200n, length: 312 }]); // the lines between, a later run
    for (const [offset, length] of [[0, 8], [60, 8], [0, 200], [130, 400], [4000, 300], [4090, 12]] as const) {
      assert.deepEqual(reader.cached(BASE + BigInt(offset), length), expected(byte, BASE + BigInt(offset), length), `${length} bytes at +${offset}`);
    }
    const page = Number(BASE >> 12n);
    // In one line, across two lines of one run, across two runs, across the page boundary.
    for (const [offset, size] of [[0, 4], [62, 4], [254, 4], [4094, 2], [4094, 4], [4097, 1]] as const) {
      const want = expected(byte, BASE + BigInt(offset), size).reduce((v, x, i) => v + x * 2 ** (8 * i), 0);
      assert.equal(reader.uintAt(page, offset, size), want, `${size} bytes at +${offset}`);
    }
    assert.equal(reader.uintAt(page - 1, 4096 + 64, 4), reader.uintAt(page, 64, 4), 'offsets past the page are carried into the page number');
  });

  it('an unreadable page fails alone, naming the read and the first unreadable byte; a line read before prefetch is an internal error', async () => {
    const { memory } = image();
    memory.unmap(BASE + 4096n);
    const reader = new MemoryReader(memory, 64);
    await reader.prefetch([{ address: BASE + 4000n, length: 200 }]);
    assert.equal(reader.cached(BASE + 4000n, 96).length, 96);
    assert.throws(
      () => reader.cached(BASE + 4000n, 200),
      (err: unknown) => err instanceof TargetReadError && err.address === BASE + 4000n && err.message.includes(`byte 0x${(BASE + 4096n).toString(16)} unreadable`) && err.message.includes('not mapped'),
    );
    assert.throws(() => reader.cached(BASE + 8192n, 8), /internal: .* read before it was prefetched/);
  });

  it('a line fetched twice (bridged again) keeps its first reading', async () => {
    const { memory, byte } = image();
    const reader = new MemoryReader(memory, 64);
    await reader.prefetch([{ address: BASE + 64n, length: 8 }]);
    const first = Uint8Array.from(reader.cached(BASE + 64n, 8));
    memory.write(BASE + 64n, new Uint8Array(8).fill(0xee)); // the target changes under the walk
    await reader.prefetch([{ address: BASE, length: 8 }, { address: BASE + 128n, length: 8 }]); // lines 0 and 2: line 1 bridged again
    assert.deepEqual(reader.cached(BASE + 64n, 8), first);
    assert.deepEqual(reader.cached(BASE, 8), expected(byte, BASE, 8));
  });

  it('plan() takes page numbers with offsets of any size, as a walk computes them', async () => {
    const { memory, asked, byte } = image();
    const reader = new MemoryReader(memory, 64);
    const plan = reader.plan();
    const page = Number(BASE >> 12n);
    plan.add(page, 4096 + 128, 16); // page 1, line 2
    plan.add(page + 2, -4096 + 192, 8); // page 1, line 3 (a negative offset)
    await plan.fetch();
    assert.deepEqual(asked[0].map((r) => [r.address - BASE, r.length]), [[4096n + 128n, 128]]);
    assert.deepEqual(reader.cachedAt(page, 4096 + 128, 72), expected(byte, BASE + 4096n + 128n, 72));
  });
});
