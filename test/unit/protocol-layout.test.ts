// The TypeScript mirror of the wire format against the real C header: a small program compiled
// with gcc prints offsetof/sizeof of every field and the value of every constant, and each must
// equal the TypeScript side. Any change on either side without the other fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as layout from '../../src/rdma/protocol/layout';

const includeDir = path.resolve(__dirname, '../../gpu/include');
const headerText = readFileSync(path.join(includeDir, 'grass/protocol.h'), 'utf8');

/** C constant name → the TypeScript value that must equal it. */
const constants: Record<string, bigint | number> = {
  GRASS_MAGIC: layout.GRASS_MAGIC,
  GRASS_PROTOCOL_VERSION: layout.GRASS_PROTOCOL_VERSION,
  GRASS_MAC_BYTES: layout.GRASS_MAC_BYTES,
  GRASS_REQUEST_ARGS: layout.GRASS_REQUEST_ARGS,
  GRASS_HEADER_BYTES: layout.GRASS_HEADER_BYTES,
  GRASS_SLOT_DATA_OFFSET: layout.GRASS_SLOT_DATA_OFFSET,
  GRASS_PS_THREADS: layout.PS_THREADS,
  GRASS_PS_IDLE: layout.PS_IDLE,
  GRASS_AGENT_WRITES_ALLOWED: layout.AGENT_WRITES_ALLOWED,
  GRASS_AGENT_BACKEND_CUDA: layout.AGENT_BACKEND_CUDA,
  GRASS_OP_HEARTBEAT: layout.Opcode.Heartbeat,
  GRASS_OP_DESCRIBE: layout.Opcode.Describe,
  GRASS_OP_READ: layout.Opcode.Read,
  GRASS_OP_WRITE: layout.Opcode.Write,
  GRASS_OP_PROCESS_COUNT: layout.Opcode.ProcessCount,
  GRASS_OP_PROCESS_LIST: layout.Opcode.ProcessList,
  GRASS_OP_FETCH_RESULT: layout.Opcode.FetchResult,
  GRASS_OP_READ_BATCH: layout.Opcode.ReadBatch,
  GRASS_OP_METRICS: layout.Opcode.Metrics,
  GRASS_OP_DETECT: layout.Opcode.Detect,
  GRASS_OP_BULK_READ: layout.Opcode.BulkRead,
  GRASS_BULK_PAGE_BYTES: layout.BULK_PAGE_BYTES,
  GRASS_DETECTORS: layout.DETECTORS,
  GRASS_DETECT_CPU_HIGH_LOAD: layout.DETECT_CPU_HIGH_LOAD,
  GRASS_DETECT_MEMORY_LEAK: layout.DETECT_MEMORY_LEAK,
  GRASS_DETECT_CULPRITS: layout.DETECT_CULPRITS,
  GRASS_BACKGROUND_OFFSET: layout.BACKGROUND_OFFSET,
  GRASS_DETECT_HANG: layout.DETECT_HANG,
  GRASS_DETECT_SET_MODES: layout.DETECT_SET_MODES,
  GRASS_BACKGROUND_LAYOUT: layout.BACKGROUND_LAYOUT,
  GRASS_HISTORY_POINTS: layout.HISTORY_POINTS,
  GRASS_METRICS_PART_CORE: layout.METRICS_PART_CORE,
  GRASS_METRICS_PART_PROGRESS: layout.METRICS_PART_PROGRESS,
  GRASS_METRICS_PART_PREEMPT: layout.METRICS_PART_PREEMPT,
  GRASS_METRICS_PART_TIMER: layout.METRICS_PART_TIMER,
  GRASS_METRICS_PART_LOCKQ: layout.METRICS_PART_LOCKQ,
  GRASS_METRICS_PART_DISKS: layout.METRICS_PART_DISKS,
  GRASS_METRICS_MAX_DISKS: layout.METRICS_MAX_DISKS,
  GRASS_HANG_F1: layout.HANG_F1,
  GRASS_HANG_F2: layout.HANG_F2,
  GRASS_HANG_F3: layout.HANG_F3,
  GRASS_HANG_F4: layout.HANG_F4,
  GRASS_HANG_F5: layout.HANG_F5,
  GRASS_HANG_F6: layout.HANG_F6,
  GRASS_SPACE_PHYSICAL: layout.Space.Physical,
  GRASS_SPACE_KERNEL: layout.Space.Kernel,
  GRASS_SPACE_USER: layout.Space.User,
  GRASS_OK: layout.Status.Ok,
  GRASS_E_BAD_MAC: layout.Status.BadMac,
  GRASS_E_REPLAY: layout.Status.Replay,
  GRASS_E_MALFORMED: layout.Status.Malformed,
  GRASS_E_UNMAPPED: layout.Status.Unmapped,
  GRASS_E_OUT_OF_RANGE: layout.Status.OutOfRange,
  GRASS_E_WRITES_DISABLED: layout.Status.WritesDisabled,
  GRASS_E_NO_SUCH_RESULT: layout.Status.NoSuchResult,
  GRASS_E_TARGET: layout.Status.Target,
  GRASS_E_UNSUPPORTED: layout.Status.Unsupported,
};

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
  for (const name of Object.keys(constants)) {
    lines.push(`  printf("const ${name} %llu\\n", (unsigned long long)(${name}));`);
  }
  return ['#include <stddef.h>', '#include <stdio.h>', '#include "grass/protocol.h"', 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n');
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
  for (const [name, value] of Object.entries(constants)) {
    assert.equal(printed.get(`const ${name}`), BigInt(value), name);
  }
});

test('the TypeScript side names every struct and constant the header defines', () => {
  const cStructs = new Set([...headerText.matchAll(/^struct (grass_\w+) \{/gm)].map((m) => m[1]));
  assert.deepEqual([...cStructs].sort(), layout.allStructs.map((s) => s.name).sort());
  const cConstants = new Set([
    ...[...headerText.matchAll(/^#define (GRASS_\w+) /gm)].map((m) => m[1]).filter((n) => n !== 'GRASS_PROTOCOL_H'),
    ...[...headerText.matchAll(/\b(GRASS_(?:OP|SPACE|OK|E)\w*) =/g)].map((m) => m[1]),
  ]);
  assert.deepEqual([...cConstants].sort(), Object.keys(constants).sort());
});

test('a field the header does not have fails to compile (the comparison is live)', () => {
  assert.throws(() => compileAndRun('#include <stddef.h>\n#include "grass/protocol.h"\nint main(void) { return (int)offsetof(struct grass_reply, no_such_field); }\n'));
});
