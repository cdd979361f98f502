// The generated TypeScript layout (wire.generated.ts) against the real C headers: it must be what
// the generator makes from them now (a header change without `make -C gpu` fails here), and, as
// the drift check, a program compiled here with gcc prints offsetof/sizeof of every field and the
// value of every constant, each of which must equal what the TypeScript side uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as layout from '../../src/rdma/protocol/layout';
import * as wire from '../../src/rdma/protocol/wire.generated';

const repo = path.resolve(__dirname, '../..');
const includeDir = path.join(repo, 'gpu/include');
const headers = ['grass/protocol.h', 'grass/detectors.h', 'grass/rdma.h'];

/** Every numeric constant of the generated file, by its C name. */
const constants = Object.entries(wire as Record<string, unknown>).filter((e): e is [string, number | bigint] => /^GRASS_/.test(e[0]) && (typeof e[1] === 'number' || typeof e[1] === 'bigint'));

function compileAndRun(source: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-layout-'));
  try {
    writeFileSync(path.join(dir, 'layout.c'), source);
    execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-I', includeDir, '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function layoutProgram(): string {
  const lines: string[] = [];
  for (const s of layout.allStructs) {
    lines.push(`  printf("sizeof ${s.name} %zu\\n", sizeof(struct ${s.name}));`);
    for (const field of Object.keys(s.fields)) {
      lines.push(`  printf("offsetof ${s.name}.${field} %zu\\n", offsetof(struct ${s.name}, ${field}));`);
      lines.push(`  printf("fieldsize ${s.name}.${field} %zu\\n", sizeof(((struct ${s.name} *)0)->${field}));`);
    }
  }
  for (const [name] of constants) {
    lines.push(`  printf("const ${name} %llu\\n", (unsigned long long)(${name}));`);
  }
  return ['#include <stddef.h>', '#include <stdio.h>', ...headers.map((h) => `#include "${h}"`), 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n');
}

test('every struct, field and constant of protocol.h matches the TypeScript layout', () => {
  const printed = new Map<string, bigint>();
  for (const line of compileAndRun(layoutProgram()).trim().split('\n')) {
    const [kind, name, value] = line.split(' ');
    printed.set(`${kind} ${name}`, BigInt(value));
  }
  for (const s of layout.allStructs) {
    assert.equal(printed.get(`sizeof ${s.name}`), BigInt(s.size), `sizeof(struct ${s.name})`);
    for (const [field, f] of Object.entries(s.fields)) {
      assert.equal(printed.get(`offsetof ${s.name}.${field}`), BigInt(f.offset), `offsetof(struct ${s.name}, ${field})`);
      assert.equal(printed.get(`fieldsize ${s.name}.${field}`), BigInt(f.size), `sizeof ${s.name}.${field}`);
    }
  }
  for (const [name, value] of constants) {
    assert.equal(printed.get(`const ${name}`), BigInt(value), name);
  }
});

test('the committed wire.generated.ts is what the headers generate now', () => {
  execFileSync(process.execPath, [path.join(repo, 'scripts/gen-wire-layout.mjs'), '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
});

test('the generated file names every struct and constant the headers define', () => {
  const text = headers.map((h) => readFileSync(path.join(includeDir, h), 'utf8')).join('\n');
  const cStructs = new Set([...text.matchAll(/^struct (grass_\w+) \{/gm)].map((m) => m[1]));
  assert.deepEqual([...cStructs].sort(), layout.allStructs.map((s) => s.name).sort());
  const cConstants = new Set([
    ...[...text.matchAll(/^#define (GRASS_\w+)[ \t]+\S/gm)].map((m) => m[1]).filter((n) => !n.endsWith('_H')),
    ...[...text.matchAll(/\b(GRASS_(?:OP|SPACE|OK|E)\w*) =/g)].map((m) => m[1]),
    ...[...text.matchAll(/^ {2}X\((\w+), /gm)].map((m) => `GRASS_DETECT_${m[1]}`),
  ]);
  assert.deepEqual([...cConstants].sort(), constants.map(([name]) => name).sort());
});

test('a field the header does not have fails to compile (the comparison is live)', () => {
  assert.throws(() => compileAndRun('#include <stddef.h>\n#include "grass/protocol.h"\nint main(void) { return (int)offsetof(struct grass_reply, no_such_field); }\n'));
});

test('the header pages hold the background area of every detector, and a DETECT reply fits a slot', () => {
  const { grass_buffer_header: header, grass_background: background, grass_detection: detection } = wire.structs;
  assert.ok(header.size <= wire.GRASS_BACKGROUND_OFFSET, `grass_buffer_header (${header.size} bytes) reaches the background area`);
  assert.ok(wire.GRASS_BACKGROUND_OFFSET + background.size <= wire.GRASS_HEADER_BYTES, `background area of ${background.size} bytes past the header pages`);
  assert.equal(wire.GRASS_HEADER_BYTES % 4096, 0);
  assert.equal(background.fields.detections.size, wire.GRASS_DETECTORS * detection.size);
  assert.ok(wire.GRASS_DETECTORS * detection.size <= 4096, 'the DETECT records exceed the smallest slot data area');
  assert.ok(wire.GRASS_DETECTORS <= 32);
});

/** protocol.h compiled over a detector list of n made-up detectors instead of grass/detectors.h's. */
function withDetectors(n: number, body: string): string {
  const rows = Array.from({ length: n }, (_, k) => `X(D${k}, d${k}, ${k + 1}, "d${k}")`).join(' ');
  return [
    '#include <stdio.h>',
    '#define GRASS_DETECTORS_H',
    `#define GRASS_DETECTOR_LIST(X) ${rows}`,
    '#define GRASS_DETECTOR_COUNT_(NAME, symbol, kind, name) +1u',
    '#define GRASS_DETECTORS (0u GRASS_DETECTOR_LIST(GRASS_DETECTOR_COUNT_))',
    '#include "grass/protocol.h"',
    `int main(void) { ${body} return 0; }`,
    '',
  ].join('\n');
}

test('the header pages grow with the detector list, and a list the wire cannot carry fails to compile, saying why', () => {
  assert.equal(compileAndRun(withDetectors(3, 'printf("%u", GRASS_HEADER_BYTES);')), '4096');
  assert.equal(compileAndRun(withDetectors(4, 'printf("%u", GRASS_HEADER_BYTES);')), '8192');
  assert.throws(() => compileAndRun(withDetectors(10, '')), (e: { stderr?: Buffer }) => /no longer fit a 4096-byte slot data area/.test(String(e.stderr)));
});

test('the detector table is grass/detectors.h\'s list, and the remote names and mode bits come from it', async () => {
  const { DETECTOR_NAMES } = await import('../../src/detect/detections');
  const list = readFileSync(path.join(includeDir, 'grass/detectors.h'), 'utf8');
  const rows = [...list.matchAll(/^ {2}X\((\w+), (\w+), (\d+), "([\w-]+)"\)/gm)].map((m) => ({ kind: Number(m[3]), bit: Number(m[3]) - 1, name: m[4], symbol: m[2] }));
  rows.sort((a, b) => a.kind - b.kind);
  assert.ok(rows.length >= 1);
  assert.deepEqual(wire.detectors.map((d) => ({ ...d })), rows);
  assert.deepEqual(DETECTOR_NAMES, rows.map((r) => r.name));
});
