// Malformed BTF: truncations, bit flips, forged header fields and type records, reference
// cycles. Every case must end in a BtfError naming what is wrong, or parse into something whose
// every type can be printed, sized and exported without any other exception; never a crash or a
// hang. Seeds are real BTF: a small object pahole encodes here (every kind gcc emits) and the
// testbed's Debian 6.1 kernel BTF for truncations.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Btf, BtfError } from '../../src/kernel/btf/btf';
import { allTypesJson, formatType } from '../../src/kernel/btf/describe';
import { loadBtfFromBytes } from '../../src/kernel/btf/load';
import { debianKernel, toolMissing } from './btf-fixtures';

const SOURCE = `
typedef unsigned long ulong_t;
enum color { RED, GREEN = 5, BLUE = -1 };
enum big { BIG = 0x123456789abcdef0ULL };
struct node { struct node *next, *prev; };
union u { int i; float f; char c[8]; };
struct s {
  int a : 3, b : 5;
  unsigned int c : 24;
  const volatile char *restrict name;
  char comm[16];
  union u uu;
  struct { int x; int y; };
  union { long l; double d; };
  enum color col;
  enum big bg;
  struct node list;
  void (*fn)(int, const char *, ...);
  ulong_t arr[3][4];
  int flex[];
};
int f(struct s *p, enum color c) { return p->a + c; }
`;

/** A real BTF blob encoded by pahole from a small C file (gcc -g, pahole --btf_encode_detached). */
function smallBtf(): Uint8Array {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-btf-fuzz-'));
  try {
    writeFileSync(path.join(dir, 't.c'), SOURCE);
    execFileSync('gcc', ['-g', '-c', 't.c', '-o', 't.o'], { cwd: dir });
    execFileSync('pahole', ['--btf_encode_detached=t.btf', 't.o'], { cwd: dir, stdio: 'ignore' });
    return new Uint8Array(readFileSync(path.join(dir, 't.btf')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic PRNG (mulberry32), so a failing case can be reproduced by its number. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Outcome {
  rejected: number;
  accepted: number;
}

/** Parses and, when accepted, exercises every type; only BtfError may escape. */
function tryCase(label: string, bytes: Uint8Array, outcome: Outcome, base?: Btf): void {
  const started = Date.now();
  try {
    const btf = new Btf(bytes, { source: label, base });
    for (const id of btf.ids()) {
      btf.type(id);
      btf.typeName(id);
      try {
        btf.sizeof(id);
      } catch (err) {
        if (!(err instanceof BtfError)) throw err;
      }
      if (btf.kindOf(id) === 'struct' || btf.kindOf(id) === 'union') formatType(btf, id);
    }
    allTypesJson(btf);
    btf.findByName('s', 'struct');
    outcome.accepted++;
  } catch (err) {
    if (!(err instanceof BtfError)) {
      assert.fail(`${label}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (not a BtfError)`);
    }
    assert.ok(err.message.startsWith(label), `${label}: error does not name its source: ${err.message}`);
    outcome.rejected++;
  }
  assert.ok(Date.now() - started < 5000, `${label}: took ${Date.now() - started} ms`);
}

const HEADER_FIELDS = [4, 8, 12, 16, 20];

describe('malformed BTF', () => {
  const skip = toolMissing('gcc', 'pahole');
  const seed = skip ? new Uint8Array() : smallBtf();

  it('the seed is valid and holds the kinds under test', { skip }, () => {
    const btf = new Btf(seed);
    const kinds = new Set([...btf.ids()].map((id) => btf.kindOf(id)));
    for (const k of ['int', 'ptr', 'array', 'struct', 'union', 'enum', 'enum64', 'typedef', 'const', 'volatile', 'restrict', 'func', 'func_proto']) assert.ok(kinds.has(k), `seed lacks ${k}`);
  });

  it('truncated at every length: BtfError or a valid prefix', { skip }, () => {
    const outcome = { rejected: 0, accepted: 0 };
    for (let n = 0; n < seed.length; n++) tryCase(`truncated to ${n}`, seed.slice(0, n), outcome);
    assert.equal(outcome.rejected + outcome.accepted, seed.length);
    assert.ok(outcome.rejected > seed.length * 0.9, `${outcome.accepted} truncations accepted`);
    process.stdout.write(`truncations: ${seed.length} cases, ${outcome.rejected} rejected, ${outcome.accepted} accepted\n`);
  });

  it('random bit flips and byte overwrites', { skip }, () => {
    const outcome = { rejected: 0, accepted: 0 };
    const random = rng(1);
    const cases = 4000;
    for (let c = 0; c < cases; c++) {
      const b = seed.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(random() * b.length);
        if (random() < 0.5) b[at] ^= 1 << Math.floor(random() * 8);
        else b[at] = Math.floor(random() * 256);
      }
      tryCase(`flip case ${c}`, b, outcome);
    }
    process.stdout.write(`bit flips: ${cases} cases, ${outcome.rejected} rejected, ${outcome.accepted} accepted\n`);
    assert.ok(outcome.rejected > 0 && outcome.accepted > 0);
  });

  it('forged header fields', { skip }, () => {
    const outcome = { rejected: 0, accepted: 0 };
    const values = [0, 1, 3, 4, 23, 24, 25, seed.length - 1, seed.length, seed.length + 1, 0x7fffffff, 0xffffffff, 0xfffffff0];
    let cases = 0;
    for (const field of HEADER_FIELDS) {
      for (const v of values) {
        const b = seed.slice();
        new DataView(b.buffer).setUint32(field, v, true);
        tryCase(`header field @${field} = ${v}`, b, outcome);
        cases++;
      }
    }
    for (const [at, v] of [[0, 0], [1, 0], [2, 2], [2, 0], [3, 0xff]]) {
      const b = seed.slice();
      b[at] = v;
      tryCase(`header byte ${at} = ${v}`, b, outcome);
      cases++;
    }
    process.stdout.write(`header forgeries: ${cases} cases, ${outcome.rejected} rejected, ${outcome.accepted} accepted\n`);
  });

  it('forged type records: kinds, vlen, references, name offsets, self and mutual cycles', { skip }, () => {
    const btf = new Btf(seed);
    const v = new DataView(seed.buffer, seed.byteOffset, seed.byteLength);
    const hdrLen = v.getUint32(4, true);
    const typeOff = hdrLen + v.getUint32(8, true);
    // Offsets of each type record, walked with the record sizes bpftool's raw dump implies.
    const records: number[] = [];
    const recordSize = (kind: number, vlen: number): number =>
      12 + ([1, 14, 17].includes(kind) ? 4 : kind === 3 ? 12 : [4, 5, 15, 19].includes(kind) ? 12 * vlen : [6, 13].includes(kind) ? 8 * vlen : 0);
    for (let at = typeOff, id = 1; id < btf.typeCount; id++) {
      records.push(at);
      const info = v.getUint32(at + 4, true);
      at += recordSize((info >>> 24) & 0x1f, info & 0xffff);
    }
    const outcome = { rejected: 0, accepted: 0 };
    let cases = 0;
    const mutate = (label: string, f: (d: DataView) => void): void => {
      const b = seed.slice();
      f(new DataView(b.buffer));
      tryCase(label, b, outcome);
      cases++;
    };
    records.forEach((at, i) => {
      const id = i + 1;
      const info = v.getUint32(at + 4, true);
      for (const kind of [0, 20, 31, 1, 3, 4, 8, 13, 15, 19]) mutate(`type ${id} kind := ${kind}`, (d) => d.setUint32(at + 4, (info & ~(0x1f << 24)) | (kind << 24), true));
      for (const vlen of [0, 1, 0xffff]) mutate(`type ${id} vlen := ${vlen}`, (d) => d.setUint32(at + 4, (info & ~0xffff) | vlen, true));
      mutate(`type ${id} kind_flag toggled`, (d) => d.setUint32(at + 4, info ^ 0x80000000, true));
      for (const ref of [0, id, id + 1, btf.typeCount, btf.typeCount - 1, 0xffffffff]) mutate(`type ${id} size/type := ${ref}`, (d) => d.setUint32(at + 8, ref, true));
      for (const off of [1, 0xffffff, 0xffffffff]) mutate(`type ${id} name_off := ${off}`, (d) => d.setUint32(at, off, true));
      // Member/param/value records: their first two words (name, type) forged.
      for (const word of [12, 16, 20]) {
        if (at + word + 4 > typeOff + v.getUint32(12, true)) continue;
        for (const x of [0xffffffff, id, btf.typeCount]) mutate(`type ${id} word @${word} := ${x}`, (d) => d.setUint32(at + word, x, true));
      }
    });
    // Mutual typedef cycle: every typedef/qualifier/pointer pointing at the next such type, the last at the first.
    const refs = records.map((at, i) => ({ at, id: i + 1, kind: (v.getUint32(at + 4, true) >>> 24) & 0x1f })).filter((r) => [2, 8, 9, 10, 11].includes(r.kind));
    if (refs.length >= 2) {
      mutate('typedef/qualifier ring', (d) => refs.forEach((r, k) => d.setUint32(r.at + 8, refs[(k + 1) % refs.length].id, true)));
    }
    const arrays = records.map((at, i) => ({ at, id: i + 1, kind: (v.getUint32(at + 4, true) >>> 24) & 0x1f })).filter((r) => r.kind === 3);
    for (const a of arrays) mutate(`array ${a.id} of itself`, (d) => d.setUint32(a.at + 12, a.id, true));
    process.stdout.write(`type record forgeries: ${cases} cases, ${outcome.rejected} rejected, ${outcome.accepted} accepted\n`);
    assert.ok(cases > 300);
  });

  it('cycles are reported, not followed forever', { skip }, () => {
    const b = seed.slice();
    const v = new DataView(b.buffer);
    const typeOff = v.getUint32(4, true) + v.getUint32(8, true);
    // Types 10 (CONST of char) and 11 (VOLATILE of 10) in the seed: make them point at each other.
    const recordOf = (id: number): number => {
      let at = typeOff;
      for (let k = 1; k < id; k++) {
        const info = v.getUint32(at + 4, true);
        const kind = (info >>> 24) & 0x1f;
        const vlen = info & 0xffff;
        at += 12 + ([1, 14, 17].includes(kind) ? 4 : kind === 3 ? 12 : [4, 5, 15, 19].includes(kind) ? 12 * vlen : [6, 13].includes(kind) ? 8 * vlen : 0);
      }
      return at;
    };
    const constChar = new Btf(seed).findByName('s', 'struct');
    assert.ok(constChar);
    const quals = [...new Btf(seed).ids()].filter((id) => ['const', 'volatile'].includes(new Btf(seed).kindOf(id)));
    assert.ok(quals.length >= 2);
    v.setUint32(recordOf(quals[0]) + 8, quals[1], true);
    v.setUint32(recordOf(quals[1]) + 8, quals[0], true);
    const btf = new Btf(b, { source: 'cyclic' });
    assert.throws(() => btf.resolve(quals[0]), (err: unknown) => err instanceof BtfError && /chain longer than 64 \(cycle\?\)/.test(err.message));
    assert.throws(() => btf.typeName(quals[0]), BtfError);
    assert.throws(() => btf.sizeof(quals[0]), BtfError);
  });

  it('clear errors for what is not BTF at all', async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(), /neither raw BTF/],
      ['text', new TextEncoder().encode('hello world, not btf'), /neither raw BTF/],
      ['ELF without .BTF', new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, ...new Array(57).fill(0)]), /no \.BTF section|ELF/],
      ['bad magic', new Uint8Array(24).fill(0), /neither raw BTF/],
    ];
    for (const [label, bytes, pattern] of cases) {
      await assert.rejects(loadBtfFromBytes(bytes, { source: label }), (err: unknown) => err instanceof BtfError && pattern.test(err.message) && err.message.startsWith(label));
    }
  });

  it('Debian 6.1 kernel BTF truncated at 200 points: rejected with the offending type named', { skip: !debianKernel() && 'testbed kernel not prepared' }, () => {
    const big = readFileSync(debianKernel()!.btf);
    const random = rng(7);
    let rejected = 0;
    for (let c = 0; c < 200; c++) {
      const n = Math.floor(random() * big.length);
      try {
        new Btf(big.subarray(0, n), { source: `6.1 BTF cut at ${n}` });
      } catch (err) {
        assert.ok(err instanceof BtfError, `cut at ${n}: ${String(err)}`);
        rejected++;
      }
    }
    assert.equal(rejected, 200);
  });
});
