// Decoding against C itself: a C program fills a struct (bitfields, signed/unsigned, bool,
// char array, unions, anonymous members, enums incl. flags and enum64, pointers, arrays),
// prints its bytes and, as C reads them back, each field's value; pahole encodes the program's
// BTF. The value tree decoded from those bytes at a kernel address must say what C says.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Btf } from '../../src/kernel/btf/btf';
import { decodeObject, formatValueTree } from '../../src/kernel/objects/decode';
import type { ValueNode } from '../../src/types/decoded-value';
import { evaluate } from '../../src/kernel/objects/expression';
import { Kernel } from '../../src/kernel/objects/object';
import { toolMissing } from './btf-fixtures';
import { ImageMemory, modelOver } from './kernel-fixtures';

const PROGRAM = String.raw`
#include <stdio.h>
#include <string.h>
typedef unsigned long ulong_t;
enum color { RED, GREEN = 5, BLUE = -1 };
enum flags { F_A = 1, F_B = 2, F_C = 4 };
enum big { BIG = 0x123456789abcdef0ULL };
struct node { struct node *next, *prev; };
union u { int i; float f; char c[8]; };
struct s {
  int a : 3, b : 5;
  unsigned int c : 24;
  _Bool ok;
  char comm[16];
  union u uu;
  struct { int x; int y; };
  union { long l; double d; };
  enum color col;
  enum flags fl;
  enum big bg;
  struct node list;
  short neg;
  unsigned long long huge;
  ulong_t arr[3];
};
int main(void) {
  struct s v; memset(&v, 0, sizeof v);
  v.a = -3; v.b = 9; v.c = 0xabcdef; v.ok = 1;
  strcpy(v.comm, "kworker/0:1");
  v.uu.i = 0x41424344; v.x = -7; v.y = 42; v.l = -123456789012345L;
  v.col = BLUE; v.fl = F_A | F_C; v.bg = BIG;
  v.list.next = (struct node *)0xffff888001234560UL; v.list.prev = 0;
  v.neg = -2; v.huge = 18446744073709551615ULL;
  v.arr[0] = 1; v.arr[1] = 2; v.arr[2] = 3;
  const unsigned char *p = (const unsigned char *)&v;
  for (size_t i = 0; i < sizeof v; i++) printf("%02x", p[i]);
  printf("\n{\"a\":%d,\"b\":%d,\"c\":%u,\"ok\":%d,\"comm\":\"%s\",\"uu.i\":%d,\"uu.c0\":%d,\"x\":%d,\"y\":%d,\"l\":\"%ld\",\"col\":%d,\"fl\":%d,\"bg\":\"%llu\",\"next\":\"%p\",\"neg\":%d,\"huge\":\"%llu\",\"arr2\":%lu}\n",
    v.a, v.b, v.c, v.ok, v.comm, v.uu.i, v.uu.c[0], v.x, v.y, v.l, (int)v.col, (int)v.fl, (unsigned long long)v.bg, (void *)v.list.next, v.neg, v.huge, v.arr[2]);
  return 0;
}
`;

interface CTruth {
  bytes: Uint8Array;
  values: Record<string, number | string>;
  btf: Btf;
}

function buildTruth(): CTruth {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-decode-'));
  try {
    writeFileSync(path.join(dir, 'p.c'), PROGRAM);
    execFileSync('gcc', ['-g', '-O0', '-o', 'p', 'p.c'], { cwd: dir });
    const [hex, json] = execFileSync(path.join(dir, 'p')).toString().trim().split('\n');
    execFileSync('pahole', ['--btf_encode_detached=p.btf', 'p'], { cwd: dir, stdio: 'ignore' });
    return { bytes: Uint8Array.from(Buffer.from(hex, 'hex')), values: JSON.parse(json) as Record<string, number | string>, btf: new Btf(new Uint8Array(readFileSync(path.join(dir, 'p.btf')))) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const child = (n: ValueNode, name: string): ValueNode => {
  const c = n.children?.find((x) => x.name === name);
  assert.ok(c, `${n.name} has no child ${name}`);
  return c;
};

describe('value tree decoding, checked against C', () => {
  const skip = toolMissing('gcc', 'pahole');
  const truth = skip ? undefined : buildTruth();
  const ADDRESS = 0xffff888000200040n;

  const decode = async (): Promise<ValueNode> => {
    const memory = new ImageMemory();
    memory.write(ADDRESS, truth!.bytes);
    const kernel = new Kernel(modelOver(truth!.btf, memory, [{ name: 'some_symbol', address: 0xffff888001234500n, type: 'D' }]));
    return decodeObject(await evaluate(kernel, `*(struct s *)0x${ADDRESS.toString(16)}`));
  };

  it('every field as C reads it', { skip }, async () => {
    const v = truth!.values;
    const tree = await decode();
    assert.equal(tree.size, truth!.bytes.length);
    assert.equal(child(tree, 'a').value, v.a);
    assert.equal(child(tree, 'a').bitSize, 3);
    assert.equal(child(tree, 'b').value, v.b);
    assert.equal(child(tree, 'b').bitOffset, 3);
    assert.equal(child(tree, 'c').value, v.c);
    assert.equal(child(tree, 'c').hex, `0x${Number(v.c).toString(16)}`);
    assert.equal(child(tree, 'ok').value, v.ok === 1);
    assert.equal(child(tree, 'comm').value, v.comm);
    const uu = child(tree, 'uu');
    assert.equal(child(uu, 'i').value, v['uu.i']);
    assert.equal(child(uu, 'c').children, undefined, 'char arrays decode as a string, not elements');
    assert.equal((child(uu, 'c').value as string).charCodeAt(0), v['uu.c0'], 'the union shows every view of the same bytes');
    assert.ok(child(uu, 'f').value !== undefined);
    const anonymous = tree.children!.filter((c) => c.name === '(anonymous)');
    assert.equal(anonymous.length, 2);
    assert.equal(child(anonymous[0], 'x').value, v.x);
    assert.equal(child(anonymous[0], 'y').value, v.y);
    assert.equal(String(child(anonymous[1], 'l').value), v.l);
    assert.equal(child(tree, 'col').value, 'BLUE');
    assert.equal(child(tree, 'col').numeric, String(v.col));
    assert.equal(child(tree, 'fl').value, 'F_A|F_C');
    assert.equal(child(tree, 'fl').numeric, String(v.fl));
    assert.equal(child(tree, 'bg').value, 'BIG');
    assert.equal(child(tree, 'bg').numeric, v.bg);
    const next = child(child(tree, 'list'), 'next');
    assert.equal(next.value, v.next);
    assert.equal(next.pointer?.symbol, 'some_symbol+0x60');
    assert.equal(next.pointer?.target, 'struct node');
    assert.equal(child(child(tree, 'list'), 'prev').pointer?.isNull, true);
    assert.equal(child(tree, 'neg').value, v.neg);
    assert.equal(child(tree, 'neg').hex, '0xfffe');
    assert.equal(child(tree, 'huge').value, v.huge, 'beyond 2^53: a decimal string');
    assert.equal(child(tree, 'arr').length, 3);
    assert.equal(child(child(tree, 'arr'), '[2]').value, v.arr2);
  });

  it('offsets and sizes of every node agree with BTF; text rendering names every member', { skip }, async () => {
    const tree = await decode();
    const s = truth!.btf.composite(truth!.btf.findByName('s', 'struct')!);
    for (const m of s.members) {
      const node = tree.children!.find((c) => c.name === (m.name || '(anonymous)') && c.offset === Math.floor(m.bitsOffset / 8));
      assert.ok(node, `member ${m.name} at ${m.bitsOffset / 8}`);
    }
    const text = formatValueTree(tree);
    for (const name of ['.a:3 = (int) -3 (0xfffffffd)', '.c:24 = (unsigned int) 11259375 (0xabcdef)', '.comm = (char [16]) "kworker/0:1"', '.col = (enum color) BLUE', '.next = (struct node *) 0xffff888001234560 <some_symbol+0x60>']) {
      assert.ok(text.includes(name), `text lacks ${name}:\n${text}`);
    }
  });

  it('an object partly in unmapped memory keeps what was readable', { skip }, async () => {
    // The struct straddles a page boundary; the second page is unmapped.
    const memory = new ImageMemory();
    const at = 0xffff888000300000n - 40n;
    memory.write(at, truth!.bytes.subarray(0, 40));
    const kernel = new Kernel(modelOver(truth!.btf, memory));
    const tree = await decodeObject(kernel.object(truth!.btf.findByName('s', 'struct')!, at));
    assert.match(tree.error!, /unreadable/);
    assert.equal(child(tree, 'a').value, truth!.values.a);
    assert.equal(child(tree, 'comm').value, truth!.values.comm);
    assert.match(child(tree, 'huge').error!, /0xffff888000300000/);
  });
});
