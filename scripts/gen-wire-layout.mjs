#!/usr/bin/env node
// Generates src/rdma/protocol/wire.generated.ts, the TypeScript view of the wire format, from the
// C headers that define it (gpu/include/grass/*.h). The headers give only the names (structs,
// fields, constants, enum members); every number (offset, size, alignment, value) is printed by a
// program the C compiler builds from those headers, so the compiler's layout is the truth.
//   node scripts/gen-wire-layout.mjs           write the file (gpu/Makefile runs this)
//   node scripts/gen-wire-layout.mjs --check   exit 1 when the committed file is stale
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const includeDir = path.join(repo, 'gpu/include');
const headers = ['grass/protocol.h', 'grass/detectors.h', 'grass/rdma.h'];
const output = path.join(repo, 'src/rdma/protocol/wire.generated.ts');

const scalarTypes = { uint8_t: 'u8', char: 'char', uint16_t: 'u16', uint32_t: 'u32', int32_t: 'i32', uint64_t: 'u64' };

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/** Structs (name, fields with their C type) and constants (#define and enum members), in header order. */
function parseHeader(file) {
  const text = stripComments(readFileSync(path.join(includeDir, file), 'utf8'));
  const structs = [];
  for (const m of text.matchAll(/^struct (grass_\w+) \{([\s\S]*?)^\};/gm)) {
    const fields = [];
    for (const decl of m[2].split(';').map((d) => d.trim()).filter(Boolean)) {
      const d = /^(struct\s+\w+|\w+)\s+([\s\S]+)$/.exec(decl);
      if (!d) throw new Error(`${file}: struct ${m[1]}: cannot read the declaration "${decl}"`);
      const type = d[1].startsWith('struct') ? d[1].replace(/^struct\s+/, '') : scalarTypes[d[1]];
      if (!type) throw new Error(`${file}: struct ${m[1]}: type ${d[1]} has no wire mapping`);
      for (const declarator of d[2].split(',')) {
        const name = /^\s*(\w+)/.exec(declarator)?.[1];
        if (!name) throw new Error(`${file}: struct ${m[1]}: cannot read the declarator "${declarator}"`);
        fields.push({ name, type });
      }
    }
    structs.push({ name: m[1], fields });
  }
  const constants = [];
  for (const m of text.matchAll(/^#define (GRASS_\w+)[ \t]+\S/gm)) constants.push(m[1]);
  const enums = [];
  for (const m of text.matchAll(/^enum (grass_\w+) \{([\s\S]*?)\};/gm)) {
    const members = [...m[2].matchAll(/\b(GRASS_\w+)\s*=/g)].map((x) => x[1]);
    if (!members.length) continue; // built by a list macro (the detectors: printed from the list)
    enums.push({ name: m[1], members });
    constants.push(...members);
  }
  return { structs, constants, enums };
}

function measure(parsed) {
  const lines = [];
  for (const s of parsed.structs) {
    lines.push(`  printf("struct ${s.name} %zu %zu\\n", sizeof(struct ${s.name}), _Alignof(struct ${s.name}));`);
    for (const f of s.fields) {
      const member = `((struct ${s.name} *)0)->${f.name}`;
      lines.push(`  printf("field ${s.name}.${f.name} %zu %zu\\n", offsetof(struct ${s.name}, ${f.name}), sizeof(${member}));`);
    }
  }
  for (const name of parsed.constants) lines.push(`  printf("const ${name} %llu\\n", (unsigned long long)(${name}));`);
  lines.push('#define GRASS_PRINT_DETECTOR(NAME, symbol, kind, name) printf("detector GRASS_DETECT_" #NAME " %u " name " " #symbol "\\n", (unsigned)GRASS_DETECT_##NAME);');
  lines.push('  GRASS_DETECTOR_LIST(GRASS_PRINT_DETECTOR)');
  const source = ['#include <stddef.h>', '#include <stdio.h>', ...headers.map((h) => `#include "${h}"`), 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n');
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-wire-'));
  try {
    writeFileSync(path.join(dir, 'wire.c'), source);
    execFileSync(process.env.CC || 'cc', ['-std=c11', '-Wall', '-Werror', '-I', includeDir, '-o', path.join(dir, 'wire'), path.join(dir, 'wire.c')], { stdio: ['ignore', 'pipe', 'inherit'] });
    return execFileSync(path.join(dir, 'wire'), { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GRASS_OP_PROCESS_COUNT → ProcessCount, with the enum's common prefix (GRASS_OP_, GRASS_E_) gone. */
function memberName(constant, prefix) {
  return constant.slice(prefix.length).replace(/^E_/, '').toLowerCase().replace(/(^|_)([a-z0-9])/g, (_, __, c) => c.toUpperCase());
}

function commonPrefix(names) {
  let prefix = names[0];
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, prefix.lastIndexOf('_', prefix.length - 2) + 1);
  return prefix;
}

function generate() {
  const parsed = { structs: [], constants: [], enums: [] };
  for (const h of headers) {
    const p = parseHeader(h);
    parsed.structs.push(...p.structs);
    parsed.constants.push(...p.constants.filter((c) => !c.endsWith('_H')));
    parsed.enums.push(...p.enums);
  }
  const sizes = new Map();
  const fields = new Map();
  const values = new Map();
  const detectors = [];
  for (const line of measure(parsed).trim().split('\n')) {
    const [kind, name, a, b, c] = line.split(' ');
    if (kind === 'detector') detectors.push({ constant: name, kind: Number(a), name: b, symbol: c });
    else if (kind === 'struct') sizes.set(name, { size: Number(a), align: Number(b) });
    else if (kind === 'field') fields.set(name, { offset: Number(a), size: Number(b) });
    else values.set(name, BigInt(a));
  }
  const out = [
    '// Generated by scripts/gen-wire-layout.mjs from gpu/include/grass/*.h (names from the headers,',
    '// every number from the C compiler). Do not edit: change the header and run `make -C gpu`.',
    '',
  ];
  for (const name of parsed.constants) {
    const v = values.get(name);
    out.push(`export const ${name} = ${v > BigInt(Number.MAX_SAFE_INTEGER) ? `0x${v.toString(16)}n` : v.toString()};`);
  }
  detectors.sort((x, y) => x.kind - y.kind);
  for (const d of detectors) out.push(`export const ${d.constant} = ${d.kind};`);
  out.push('');
  out.push('/**');
  out.push(' * grass/detectors.h, by kind (the records\' order): each detector\'s kind (its record is kind - 1 of');
  out.push(' * a GRASS_OP_DETECT reply and of the background area), its bit in GRASS_DETECT_SET_MODES\'s mask');
  out.push(' * (kind - 1), its remote name and its C symbol (llview-plugins/detect/<name>/).');
  out.push(' */');
  out.push('export const detectors = [');
  for (const d of detectors) out.push(`  { kind: ${d.kind}, bit: ${d.kind - 1}, name: '${d.name}', symbol: '${d.symbol}' },`);
  out.push('] as const;');
  out.push('');
  // An enum is a row naming its members' constants above (each number stands once, where the
  // drift check reads it): Opcode.ProcessCount is GRASS_OP_PROCESS_COUNT.
  for (const e of parsed.enums) {
    const prefix = e.members.length > 1 ? commonPrefix(e.members) : 'GRASS_';
    out.push(`/** enum ${e.name} */`);
    out.push(`export enum ${memberName(e.name.toUpperCase(), 'GRASS_')} { ${e.members.map((m) => `${memberName(m, prefix)} = ${m}`).join(', ')} }`);
  }
  out.push('');
  out.push('/** Every struct of the headers: size, alignment, and per field its offset, size and C type. */');
  out.push('export const structs = {');
  for (const s of parsed.structs) {
    const { size, align } = sizes.get(s.name);
    out.push(`  ${s.name}: {`);
    out.push(`    name: '${s.name}', size: ${size}, align: ${align},`);
    out.push('    fields: {');
    for (const f of s.fields) {
      const { offset, size: fieldSize } = fields.get(`${s.name}.${f.name}`);
      out.push(`      ${f.name}: { offset: ${offset}, size: ${fieldSize}, type: '${f.type}' },`);
    }
    out.push('    },');
    out.push('  },');
  }
  out.push('} as const;');
  out.push('');
  // What each hang class means, as grass/protocol.h's comment on its #define says it: the one
  // place the words are written (the Faults view shows them).
  const hangClasses = [...readFileSync(path.join(includeDir, 'grass/protocol.h'), 'utf8').matchAll(/^#define (GRASS_HANG_(F\d+))\s+\S+\s*\/\*\s*(.*?)\s*\*\//gm)];
  out.push('/** The SHFH hang classes (grass_detection.values[0] of GRASS_DETECT_HANG): name and meaning, from grass/protocol.h. */');
  out.push('export const hangClasses = [');
  for (const [, constant, name, meaning] of hangClasses) out.push(`  { value: ${constant}, name: '${name}', meaning: '${meaning.replace(/['\\]/g, '\\$&')}' },`);
  out.push('] as const;');
  out.push('');
  return out.join('\n');
}

const text = generate();
if (process.argv.includes('--check')) {
  let committed = '';
  try { committed = readFileSync(output, 'utf8'); } catch { /* missing counts as stale */ }
  if (committed !== text) {
    process.stderr.write(`${path.relative(repo, output)} is stale: the headers changed since it was generated (run make -C gpu and commit it)\n`);
    process.exit(1);
  }
} else {
  let committed = '';
  try { committed = readFileSync(output, 'utf8'); } catch { /* written below */ }
  if (committed !== text) writeFileSync(output, text);
}
