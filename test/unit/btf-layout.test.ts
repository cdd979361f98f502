// `grass btf --json` against bpftool and pahole on the same BTF: every struct and union of a
// real kernel (this machine's and Debian 6.1's), every member's name, type, bit offset,
// bitfield size and size; every type's kind and name; module split BTF against its base.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { decompressBzImage } from '../../src/kernel/btf/load';
import { debianKernel, HOST_BTF, runGrass, toolMissing } from './btf-fixtures';

interface BpftoolMember {
  name: string;
  type_id: number;
  bits_offset: number;
  bitfield_size?: number;
}
interface BpftoolType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BpftoolMember[];
}
interface OurMember {
  name: string;
  typeId: number;
  offset: number;
  bitsOffset: number;
  bitfieldSize: number;
  size: number | null;
}
interface OurType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  members?: OurMember[];
  [field: string]: unknown;
}

/**
 * Our record of a type other than a struct/union in the shape bpftool's JSON gives it, so every
 * field of every kind (int encodings, arrays, enums and enum64, fwd, func linkage, prototypes,
 * vars, datasecs, float, decl/type tags) is compared.
 */
function asBpftool(t: OurType): Record<string, unknown> {
  const base = { id: t.id, kind: t.kind.toUpperCase(), name: t.name || '(anon)' };
  const x = t as unknown as Record<string, never>;
  switch (t.kind) {
    case 'int':
      return { ...base, size: x.size, bits_offset: x.bitOffset, nr_bits: x.bits, encoding: x.signed ? 'SIGNED' : x.char ? 'CHAR' : x.bool ? 'BOOL' : '(none)' };
    case 'ptr':
    case 'const':
    case 'volatile':
    case 'restrict':
    case 'typedef':
    case 'type_tag':
      return { ...base, type_id: x.type };
    case 'array':
      return { ...base, type_id: x.type, index_type_id: x.indexType, nr_elems: x.nelems };
    case 'enum':
    case 'enum64': {
      const values = x.values as unknown as { name: string; value: string }[];
      return { ...base, encoding: x.signed ? 'SIGNED' : 'UNSIGNED', size: x.size, vlen: values.length, values: values.map((v) => ({ name: v.name, val: v.value })) };
    }
    case 'fwd':
      return { ...base, fwd_kind: x.union ? 'union' : 'struct' };
    case 'func':
      return { ...base, type_id: x.type, linkage: x.linkage };
    case 'func_proto': {
      const params = x.params as unknown as { name: string; type: number }[];
      return { ...base, ret_type_id: x.returnType, vlen: params.length, params: params.map((p) => ({ name: p.name || '(anon)', type_id: p.type })) };
    }
    case 'var':
      return { ...base, type_id: x.type, linkage: x.linkage };
    case 'datasec': {
      const vars = x.vars as unknown as { type: number; offset: number; size: number }[];
      return { ...base, size: x.size, vlen: vars.length, vars: vars.map((v) => ({ type_id: v.type, offset: v.offset, size: v.size })) };
    }
    case 'float':
      return { ...base, size: x.size };
    case 'decl_tag':
      return { ...base, type_id: x.type, component_idx: x.componentIdx };
    default:
      return { ...base, unexpected: t.kind };
  }
}

function bpftoolTypes(file: string, base?: string): BpftoolType[] {
  const args = base ? ['btf', '-B', base, 'dump', 'file', file, '-j'] : ['btf', 'dump', 'file', file, '-j'];
  // Enumerator values may exceed 2^53: keep them as decimal strings.
  const out = execFileSync('bpftool', args, { maxBuffer: 1 << 30 }).toString().replace(/"val": ?(-?\d+)/g, '"val":"$1"');
  return (JSON.parse(out) as { types: BpftoolType[] }).types;
}

/** sizeof() computed from bpftool's records alone (independent of the code under test). */
function bpftoolSizer(types: Map<number, BpftoolType>): (id: number) => number | null {
  const sizeOf = (id: number, depth = 0): number | null => {
    if (depth > 64) return null;
    const t = types.get(id);
    if (!t) return null;
    switch (t.kind) {
      case 'INT':
      case 'STRUCT':
      case 'UNION':
      case 'ENUM':
      case 'ENUM64':
      case 'FLOAT':
      case 'DATASEC':
        return t.size ?? null;
      case 'PTR':
        return 8;
      case 'ARRAY': {
        const e = sizeOf(t.type_id!, depth + 1);
        return e === null ? null : e * t.nr_elems!;
      }
      case 'TYPEDEF':
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT':
      case 'TYPE_TAG':
        return sizeOf(t.type_id!, depth + 1);
      default:
        return null;
    }
  };
  return sizeOf;
}

/** pahole --sizes: "name<TAB>size<TAB>holes" for each named struct (pahole's own BTF reader). */
function paholeSizes(file: string): Map<string, number> {
  const out = execFileSync('pahole', ['--sizes', '-F', 'btf', file], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const sizes = new Map<string, number>();
  for (const line of out.split('\n')) {
    const [name, size] = line.split('\t');
    if (name && size && !sizes.has(name)) sizes.set(name, Number(size));
  }
  return sizes;
}

/**
 * bpftool 7.1 prints a 32-bit unsigned enumerator sign-extended to 64 bits (4026531839 as
 * 18446744073441116159); the BTF holds 32 bits, so compare those.
 */
function bpftoolNormalised(t: BpftoolType): BpftoolType {
  if (t.kind !== 'ENUM' || (t as { encoding?: string }).encoding !== 'UNSIGNED') return t;
  const values = (t as unknown as { values: { name: string; val: string }[] }).values;
  return { ...t, values: values.map((v) => ({ name: v.name, val: BigInt.asUintN(32, BigInt(v.val)).toString() })) } as BpftoolType;
}

function compareLayouts(file: string, ours: OurType[], theirs: BpftoolType[], firstId = 1, baseTypes: BpftoolType[] = []): { composites: number; members: number; others: number } {
  const byId = new Map([...baseTypes, ...theirs].map((t) => [t.id, t]));
  const sizeOf = bpftoolSizer(byId);
  assert.equal(ours.length, theirs.length, `${file}: type count`);
  let composites = 0;
  let members = 0;
  let others = 0;
  const mismatches: string[] = [];
  for (const [i, t] of theirs.entries()) {
    const o = ours[i];
    assert.equal(o.id, t.id, `${file}: type #${i} id`);
    if (o.id < firstId) continue;
    const theirName = t.name === '(anon)' ? '' : t.name;
    if (o.kind.toUpperCase() !== t.kind || o.name !== theirName) mismatches.push(`type ${t.id}: ours ${o.kind} '${o.name}', bpftool ${t.kind} '${theirName}'`);
    if (t.kind !== 'STRUCT' && t.kind !== 'UNION') {
      others++;
      const mine = JSON.stringify(asBpftool(o));
      if (mine !== JSON.stringify(bpftoolNormalised(t))) mismatches.push(`type ${t.id}: ours ${mine.slice(0, 300)}, bpftool ${JSON.stringify(t).slice(0, 300)}`);
      continue;
    }
    composites++;
    if (o.size !== t.size) mismatches.push(`${t.kind} ${t.name} (id ${t.id}): size ${o.size} vs ${t.size}`);
    const tm = t.members ?? [];
    const om = o.members ?? [];
    if (om.length !== tm.length) {
      mismatches.push(`${t.kind} ${t.name} (id ${t.id}): ${om.length} members vs ${tm.length}`);
      continue;
    }
    for (const [k, m] of tm.entries()) {
      members++;
      const mine = om[k];
      const name = m.name === '(anon)' ? '' : m.name;
      const expected = { name, typeId: m.type_id, bitsOffset: m.bits_offset, offset: Math.floor(m.bits_offset / 8), bitfieldSize: m.bitfield_size ?? 0, size: sizeOf(m.type_id) };
      const actual = { name: mine.name, typeId: mine.typeId, bitsOffset: mine.bitsOffset, offset: mine.offset, bitfieldSize: mine.bitfieldSize, size: mine.size };
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        mismatches.push(`${t.kind} ${t.name} (id ${t.id}) member ${k}: ours ${JSON.stringify(actual)}, bpftool ${JSON.stringify(expected)}`);
      }
    }
  }
  assert.deepEqual(mismatches.slice(0, 20), [], `${file}: ${mismatches.length} mismatches with bpftool`);
  return { composites, members, others };
}

for (const target of [
  { label: "this machine's kernel", file: () => HOST_BTF },
  { label: 'Debian 6.1', file: () => debianKernel()?.btf },
]) {
  describe(`grass btf --json on ${target.label}`, () => {
    const file = target.file();
    const skip = !file || !existsSync(file) ? `no BTF file (${file ?? 'testbed kernel not prepared'})` : toolMissing('bpftool', 'pahole');
    it('matches bpftool for every struct and union member, and every type kind and name', { skip }, () => {
      const ours = (JSON.parse(runGrass(['btf', '--btf', file!, '--json'])) as { types: OurType[] }).types;
      const counts = compareLayouts(file!, ours, bpftoolTypes(file!));
      assert.ok(counts.composites > 5000, `only ${counts.composites} structs/unions compared`);
      process.stdout.write(`${file}: ${counts.composites} structs/unions, ${counts.members} members, ${counts.others} other types equal to bpftool\n`);

      const pahole = paholeSizes(file!);
      let compared = 0;
      const wrong: string[] = [];
      const named = new Map<string, number>();
      for (const t of ours) if (t.kind === 'struct' && t.name && !named.has(t.name)) named.set(t.name, t.size!);
      for (const [name, size] of pahole) {
        if (!named.has(name)) continue;
        compared++;
        if (named.get(name) !== size) wrong.push(`struct ${name}: ours ${named.get(name)}, pahole ${size}`);
      }
      assert.deepEqual(wrong.slice(0, 20), []);
      assert.ok(compared > 3000, `only ${compared} struct sizes compared with pahole`);
      process.stdout.write(`${file}: ${compared} struct sizes equal to pahole --sizes\n`);
    });
  });
}

describe('BTF from the containers users have (Debian 6.1)', () => {
  const kernel = debianKernel();
  const skip = !kernel ? 'testbed kernel not prepared' : toolMissing('objcopy', 'xz', 'bpftool');
  it('vmlinux ELF and xz bzImage give the same BTF as the raw .BTF section objcopy extracts', { skip }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-btf-'));
    try {
      const raw = path.join(dir, 'btf.raw');
      execFileSync('objcopy', ['-O', 'binary', '--only-section=.BTF', kernel!.vmlinux, raw]);
      const expected = runGrass(['btf', '--btf', raw, '--json']).replace(/^\{"source":"[^"]*"/, '');
      for (const file of [kernel!.vmlinux, kernel!.vmlinuz]) {
        const got = runGrass(['btf', '--btf', file, '--json']).replace(/^\{"source":"[^"]*"/, '');
        assert.ok(got === expected, `${file}: BTF differs from objcopy's .BTF`);
      }
      assert.deepEqual(readFileSync(raw), readFileSync(kernel!.btf), 'objcopy .BTF equals the testbed vmlinux.btf');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('xz vmlinuz (BCJ x86 + LZMA2) decompresses to exactly the vmlinux that xz -dc gives', { skip }, async () => {
    const { elf, compression } = await decompressBzImage(readFileSync(kernel!.vmlinuz), kernel!.vmlinuz);
    assert.equal(compression, 'xz');
    const expected = readFileSync(kernel!.vmlinux);
    assert.equal(elf.length, expected.length);
    assert.ok(Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength).equals(expected), 'decompressed bytes differ from the testbed vmlinux (made by xz -dc)');
  });

  it('zstd and gzip payloads: BTF from a bzImage rebuilt with them', { skip: skip || toolMissing('zstd', 'gzip') }, async () => {
    // Repack the same vmlinux with the other compressors the kernel build offers, in place of
    // the xz payload (boot header fields adjusted), as a 6.12 zstd or older gzip bzImage has it.
    const image = readFileSync(kernel!.vmlinuz);
    const setup = ((image[0x1f1] || 4) + 1) * 512;
    const payloadOffset = image.readUInt32LE(0x248);
    const vmlinux = readFileSync(kernel!.vmlinux);
    const expected = runGrass(['btf', '--btf', kernel!.btf, 'task_struct', '--json']).replace(/^\{"source":"[^"]*"/, '');
    for (const [tool, args] of [['zstd', ['-q', '-3', '-c']], ['gzip', ['-1', '-c']]] as const) {
      const packed = execFileSync(tool, [...args], { input: vmlinux, maxBuffer: 1 << 30 });
      const size = Buffer.alloc(4);
      size.writeUInt32LE(vmlinux.length);
      const rebuilt = Buffer.concat([image.subarray(0, setup + payloadOffset), packed, size]);
      rebuilt.writeUInt32LE(packed.length + 4, 0x24c);
      const dir = mkdtempSync(path.join(tmpdir(), 'grass-bz-'));
      try {
        const file = path.join(dir, `vmlinuz-${tool}`);
        writeFileSync(file, rebuilt);
        const { elf, compression } = await decompressBzImage(rebuilt, file);
        assert.equal(compression, tool);
        assert.equal(elf.length, vmlinux.length);
        assert.equal(runGrass(['btf', '--btf', file, 'task_struct', '--json']).replace(/^\{"source":"[^"]*"/, ''), expected);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('split BTF of modules matches bpftool -B vmlinux', { skip }, () => {
    const baseTypes = bpftoolTypes(kernel!.btf);
    const baseCount = baseTypes.length + 1;
    const modules = execFileSync('find', [kernel!.modulesRoot, '-name', '*.ko', '-path', '*drivers/net*']).toString().trim().split('\n').slice(0, 3);
    assert.ok(modules.length > 0 && modules[0] !== '', 'no modules found');
    for (const ko of modules) {
      const ours = (JSON.parse(runGrass(['btf', '--btf', ko, '--base', kernel!.btf, '--json'])) as { types: OurType[] }).types;
      const theirs = bpftoolTypes(ko, kernel!.btf);
      const ownTheirs = theirs.filter((t) => t.id >= baseCount);
      const ownOurs = ours.filter((t) => t.id >= baseCount);
      assert.ok(ownOurs.length > 0, `${ko}: no module types`);
      compareLayouts(ko, ownOurs, ownTheirs, baseCount, baseTypes);
      process.stdout.write(`${path.basename(ko)}: ${ownOurs.length} split types equal to bpftool -B\n`);
    }
  });
});
