// Loaded modules read from memory against the guest's own /proc/modules, module symbols against
// its /proc/kallsyms, and a struct defined only in a module (qemu_fw_cfg's fw_cfg_sysfs_entry)
// decoded through the module's split BTF against pahole and the guest's /sys/firmware.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, Guest } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { KernelModel } from '../../src/kernel/model';
import { loadModules, moduleTypeModel, type LoadedModule } from '../../src/kernel/modules/modules';
import { Kernel } from '../../src/kernel/objects/object';
import { listForEachEntry } from '../../src/kernel/objects/lists';
import { grass, GuestAgent, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;
let args: string[];

before(async () => {
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  // A fault module that stays loaded (F4's device, nobody reading it yet) and one that taints.
  await guest.exec('insmod /lib/grass/grass_f4.ko');
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

test('grass modules equals the guest\'s /proc/modules line for line', async () => {
  const truth = (await guest.exec('cat /proc/modules')).trim();
  const r = await grass(['modules', ...args]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), truth);
  assert.match(truth, /^grass_f4 /m, 'the fault module is loaded');
  assert.ok(truth.split('\n').length >= 3, `only ${truth}`);
});

let modules: LoadedModule[];

test('module symbols equal the guest\'s /proc/kallsyms [module] lines', async () => {
  const kallsyms = await guest.exec("grep '\\[' /proc/kallsyms");
  const model = KernelModel.fromDescription(await session.client.describe(), session.client);
  modules = await loadModules(model);
  const truth = new Set<string>();
  for (const line of kallsyms.trim().split('\n')) {
    const [addr, type, name, mod] = line.split(/\s+/);
    truth.add(`${BigInt('0x' + addr).toString(16)} ${type} ${name} ${mod}`);
  }
  const ours = new Set(modules.flatMap((m) => m.symbols.map((s) => `${s.address.toString(16)} ${s.type} ${s.name} [${m.name}]`)));
  const f4 = modules.find((m) => m.name === 'grass_f4')!;
  assert.ok(f4.symbols.some((s) => s.name === 'grass_f4_read'), 'grass_f4_read among grass_f4\'s symbols');
  // /proc/kallsyms leaves out some symbols of a module (its module's own name markers); every
  // symbol it shows must be ours, and ours that it does not show must be few.
  for (const t of truth) assert.ok(ours.has(t), `/proc/kallsyms has ${t}, not read from memory`);
  assert.ok(ours.size >= truth.size, `${ours.size} symbols read, ${truth.size} in /proc/kallsyms`);
});

test('a struct defined only in a module decodes through its BTF (fw_cfg_sysfs_entry vs pahole and /sys)', async () => {
  const fwcfg = modules.find((m) => m.name === 'qemu_fw_cfg');
  assert.ok(fwcfg, 'qemu_fw_cfg is loaded by the testbed\'s init');
  assert.ok(fwcfg.btf, `qemu_fw_cfg has BTF: ${fwcfg.notes.join('; ')}`);
  const model = KernelModel.fromDescription(await session.client.describe(), session.client);
  assert.throws(() => model.typeId('struct fw_cfg_sysfs_entry'), /no type/);
  const modModel = moduleTypeModel(model, fwcfg);
  const id = modModel.typeId('struct fw_cfg_sysfs_entry');
  // Layout truth: pahole on the module's .ko with vmlinux BTF as base.
  let scratch: string | undefined;
  let ko = execFileSync('find', [guest.kernelDir.modulesRoot, '-name', 'qemu_fw_cfg.ko*'], { encoding: 'utf8' }).trim().split('\n')[0];
  if (/\.(xz|zst)$/.test(ko)) {
    // Newer Debian kernels ship compressed modules; pahole reads the plain ELF.
    scratch = mkdtempSync(path.join(tmpdir(), 'grass-ko-'));
    const plain = path.join(scratch, 'qemu_fw_cfg.ko');
    writeFileSync(plain, execFileSync(ko.endsWith('.xz') ? 'xz' : 'zstd', ['-dc', ko], { maxBuffer: 1 << 28 }));
    ko = plain;
  }
  const pahole = execFileSync('pahole', ['--btf_base', guest.kernelDir.btf, '-F', 'btf', '-C', 'fw_cfg_sysfs_entry', ko], { encoding: 'utf8' });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  assert.equal(modModel.btf.sizeof(id), Number(/size: (\d+)/.exec(pahole)![1]));
  for (const m of pahole.matchAll(/^\t\S.*?(\w+)(?:\[\d+\])?;\s+\/\*\s+(\d+)/gm)) {
    assert.equal(modModel.btf.findMember(id, m[1])!.bitsOffset / 8, Number(m[2]), `offset of ${m[1]}`);
  }
  // Values truth: the module's entry cache against /sys/firmware/qemu_fw_cfg/by_key/*.
  const sys = await guest.exec('for d in /sys/firmware/qemu_fw_cfg/by_key/*; do echo "$(cat $d/size) $(cat $d/name)"; done');
  // The module's static list head, by name: module symbols are merged into the model's lookup.
  const kernel = new Kernel(modModel);
  const head = kernel.object('struct list_head', modModel.symbols.address('fw_cfg_entry_cache'), 'fw_cfg_entry_cache');
  const ours: string[] = [];
  for await (const e of listForEachEntry(head, 'struct fw_cfg_sysfs_entry', 'list')) {
    ours.push(`${await (await e.member('size')).readInt()} ${await (await e.member('name')).string()}`);
  }
  assert.ok(ours.length > 3, `only ${ours.length} fw_cfg entries`);
  assert.deepEqual(ours.sort(), sys.trim().split('\n').sort());
});
