// ORC tables as the stack unwinder reads them, on the Debian kernel's real vmlinux: entries
// decoded through BTF's struct orc_entry against a C program compiled with the kernel's own
// asm/orc_types.h and linux/objtool.h (gcc's bitfield layout, the kernel's register and type
// codes), and lookups against a plain scan of the sections as readelf places them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Btf } from '../../src/kernel/btf/btf';
import { KernelModel } from '../../src/kernel/model';
import { Kernel } from '../../src/kernel/objects/object';
import { SymbolTable } from '../../src/kernel/symbols/symbols';
import { ORC_REG, OrcLayout, OrcUnwindTables } from '../../src/kernel/stacks/orc';
import { TargetReadError, type AddressSpace, type ReadRequest, type TargetMemory } from '../../src/types/target';
import { debianKernel, toolMissing } from './btf-fixtures';

const kernel = debianKernel();
const skip = !kernel ? 'testbed kernel unavailable' : toolMissing('gcc', 'readelf', 'objcopy');

interface Section {
  address: bigint;
  bytes: Uint8Array;
}

function section(vmlinux: string, name: string, dir: string): Section {
  const line = execFileSync('readelf', ['-SW', vmlinux], { encoding: 'utf8' }).split('\n').find((l) => l.includes(` ${name} `));
  assert.ok(line, `vmlinux has no ${name}`);
  const address = BigInt('0x' + line.trim().split(/\s+/).slice(-8)[0]);
  const out = path.join(dir, name.slice(1));
  execFileSync('objcopy', ['-O', 'binary', `--only-section=${name}`, vmlinux, out]);
  return { address, bytes: readFileSync(out) };
}

/** Memory that holds the given sections, zeros around them in their pages, unmapped elsewhere. */
class SectionMemory implements TargetMemory {
  constructor(private readonly sections: Section[]) {}
  async read(space: AddressSpace, address: bigint, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (const s of this.sections) {
      const first = s.address & ~4095n;
      const last = (s.address + BigInt(s.bytes.length) + 4095n) & ~4095n;
      if (address < first || address + BigInt(length) > last) continue;
      for (let i = 0; i < length; i++) {
        const off = address + BigInt(i) - s.address;
        if (off >= 0n && off < BigInt(s.bytes.length)) out[i] = s.bytes[Number(off)];
      }
      return out;
    }
    throw new TargetReadError(space, address, length, 'not in any section');
  }
  async readBatch(requests: ReadRequest[]): Promise<(Uint8Array | TargetReadError)[]> {
    return Promise.all(requests.map((r) => this.read(r.space, r.address, r.length).catch((e: TargetReadError) => e)));
  }
}

test('orc_entry decoded through BTF equals gcc with the kernel\'s orc_types.h; lookups equal a scan of the sections', { skip }, async () => {
  const k = kernel!;
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-orc-'));
  try {
    const ip = section(k.vmlinux, '.orc_unwind_ip', dir);
    const orc = section(k.vmlinux, '.orc_unwind', dir);
    const btf = new Btf(readFileSync(k.btf));
    const layout = new OrcLayout(btf);
    const count = ip.bytes.length / 4;
    assert.equal(orc.bytes.length, count * layout.size);

    // The C side: the kernel's headers with stub includes for what they pull in.
    const common = execFileSync('find', [path.join(k.dir, 'headers-root', 'usr', 'src'), '-path', '*-common/arch/x86/include/asm/orc_types.h'], { encoding: 'utf8' }).trim().split('\n')[0];
    assert.ok(common, 'orc_types.h in the kernel headers');
    const commonRoot = common.replace(/\/arch\/x86\/include\/asm\/orc_types\.h$/, '');
    const stubs = path.join(dir, 'stubs');
    for (const h of ['linux/types.h', 'linux/compiler.h', 'asm/byteorder.h']) {
      mkdirSync(path.dirname(path.join(stubs, h)), { recursive: true });
      writeFileSync(path.join(stubs, h), '');
    }
    const objtool = path.join(commonRoot, 'include', 'linux', 'objtool.h');
    const hints = readFileSync(objtool, 'utf8').split('\n').filter((l) => /^#define UNWIND_HINT_TYPE_\w+\s+\d+/.test(l)).join('\n');
    writeFileSync(path.join(dir, 'decode.c'), `#include <stdio.h>
#include <stdint.h>
typedef int16_t s16;
#define __packed __attribute__((packed))
#define __LITTLE_ENDIAN_BITFIELD
#include "${common}"
${hints}
int main(void) {
  struct orc_entry e;
  printf("regs %d %d %d %d %d %d %d %d %d %d\\n", ORC_REG_UNDEFINED, ORC_REG_PREV_SP, ORC_REG_DX, ORC_REG_DI, ORC_REG_BP, ORC_REG_SP, ORC_REG_R10, ORC_REG_R13, ORC_REG_BP_INDIRECT, ORC_REG_SP_INDIRECT);
  printf("types %d %d %d\\n", UNWIND_HINT_TYPE_CALL, UNWIND_HINT_TYPE_REGS, UNWIND_HINT_TYPE_REGS_PARTIAL);
  while (fread(&e, sizeof e, 1, stdin) == 1) printf("%d %d %u %u %u %u\\n", e.sp_offset, e.bp_offset, e.sp_reg, e.bp_reg, e.type, e.end);
  return 0;
}
`);
    execFileSync('gcc', ['-I', stubs, '-o', path.join(dir, 'decode'), path.join(dir, 'decode.c')]);
    // Every 97th entry, plus the last: thousands of real entries of every kind.
    const picks: number[] = [];
    for (let i = 0; i < count; i += 97) picks.push(i);
    picks.push(count - 1);
    const sample = new Uint8Array(picks.length * layout.size);
    picks.forEach((p, j) => sample.set(orc.bytes.subarray(p * layout.size, (p + 1) * layout.size), j * layout.size));
    const lines = execFileSync(path.join(dir, 'decode'), { input: sample, encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n');
    const regs = lines[0].split(' ').slice(1).map(Number);
    assert.deepEqual(regs, [ORC_REG.UNDEFINED, ORC_REG.PREV_SP, ORC_REG.DX, ORC_REG.DI, ORC_REG.BP, ORC_REG.SP, ORC_REG.R10, ORC_REG.R13, ORC_REG.BP_INDIRECT, ORC_REG.SP_INDIRECT]);
    const [call, regsType, partial] = lines[1].split(' ').slice(1).map(Number);
    const typeName = (t: number, end: number): string => (end ? 'end' : t === call ? 'call' : t === regsType ? 'regs' : t === partial ? 'regs_partial' : 'undefined');
    assert.equal(layout.newNumbering, false, '6.1 has the `end` bit');
    const kinds = new Set<string>();
    lines.slice(2).forEach((line, j) => {
      const [spOffset, bpOffset, spReg, bpReg, type, end] = line.split(' ').map(Number);
      const ours = layout.decode(sample, j * layout.size);
      assert.deepEqual(
        { spOffset: ours.spOffset, bpOffset: ours.bpOffset, spReg: ours.spReg, bpReg: ours.bpReg, type: ours.type },
        { spOffset, bpOffset, spReg, bpReg, type: typeName(type, end) },
        `entry ${picks[j]}`,
      );
      kinds.add(ours.type);
    });
    assert.ok(kinds.has('call') && kinds.has('regs') && kinds.has('end'), `kinds sampled: ${[...kinds].join(', ')}`);

    // Lookups: the tables read through the model from memory holding only these sections.
    const text = section(k.vmlinux, '.text', dir);
    const symbols = [
      { name: '__start_orc_unwind_ip', address: ip.address, type: 'T' },
      { name: '__stop_orc_unwind_ip', address: ip.address + BigInt(ip.bytes.length), type: 'T' },
      { name: '__start_orc_unwind', address: orc.address, type: 'T' },
      { name: '_stext', address: text.address, type: 'T' },
      { name: '_etext', address: text.address + BigInt(text.bytes.length), type: 'T' },
    ];
    const model = new KernelModel(btf, new SymbolTable(symbols), new SectionMemory([ip, orc]));
    const tables = await OrcUnwindTables.read(new Kernel(model), []);
    const view = new DataView(ip.bytes.buffer, ip.bytes.byteOffset, ip.bytes.byteLength);
    const ipAt = (i: number): bigint => ip.address + BigInt(i * 4 + view.getInt32(i * 4, true));
    let checked = 0;
    for (let i = 1; i < count - 1; i += 1009) {
      const at = ipAt(i);
      // Entries for init text (freed after boot) lie beyond _etext; vmlinux lookups cover .text.
      if (at === ipAt(i + 1) || at < text.address || ipAt(i + 1) > text.address + BigInt(text.bytes.length)) continue;
      const want = layout.decode(orc.bytes, i * layout.size);
      assert.deepEqual(tables.find(at), want, `entry ${i} at its own ip`);
      // Just before the next entry's ip, the same entry still covers the address.
      if (ipAt(i + 1) > at + 1n) assert.deepEqual(tables.find(ipAt(i + 1) - 1n), want, `entry ${i} before the next ip`);
      checked++;
    }
    assert.ok(checked > 100, `${checked} lookups checked`);
    assert.equal(tables.find(text.address - 1n), undefined, 'no entry below the kernel text');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
