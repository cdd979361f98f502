// Loaded kernel modules from memory: the `modules` list of struct module, as /proc/modules
// shows it, each module's own kallsyms (mod->kallsyms) and its split BTF. Field names that moved
// between versions are resolved through BTF with alternatives: 6.1 keeps `core_layout` /
// `init_layout`, 6.4+ an array `mem[MOD_MEM_NUM_TYPES]` indexed by enum mod_mem_type.

import { Btf } from '../btf/btf';
import { KernelModel } from '../model';
import { hex, Kernel, KObject, ObjectError } from '../objects/object';
import { listForEachEntry } from '../objects/lists';
import { SymbolTable } from '../symbols/symbols';
import type { KernelSymbol } from '../../types/target';

export class ModuleError extends ObjectError {
  constructor(message: string) {
    super(message);
    this.name = 'ModuleError';
  }
}

export interface ModuleRecord {
  name: string;
  /** Live, Loading, Unloading (as /proc/modules), or Unformed (not listed there). */
  state: string;
  /** Core text base (/proc/modules' address). */
  address: bigint;
  /** Core text size, for ranges of addresses inside the module. */
  textSize: number;
  /** What /proc/modules prints as the size (all of the module's memory, init included). */
  size: number;
  /** module_refcount(): refcnt minus the kernel's MODULE_REF_BASE of 1. */
  refcount: number;
  /** Modules that use this one (/proc/modules' "used by" column), plus "[permanent]". */
  usedBy: string[];
  /** Taint letters, e.g. "OE" ('' when untainted). */
  taints: string;
  /** Kernel address of the struct module. */
  structAddress: bigint;
}

/** At most this many modules: the kernel has no hard limit, but thousands means a corrupt list. */
const MAX_MODULES = 4096;
/** A module's symbol table beyond this many entries is taken as corrupt. */
const MAX_MODULE_SYMBOLS = 1 << 20;
/** Module BTF beyond this size is taken as corrupt. */
const MAX_MODULE_BTF = 64 << 20;

async function firstMember(obj: KObject, paths: string[]): Promise<KObject | undefined> {
  for (const p of paths) {
    try {
      return await obj.path(p);
    } catch {
      // try the next spelling
    }
  }
  return undefined;
}

async function intOf(obj: KObject, paths: string[]): Promise<bigint> {
  const m = await firstMember(obj, paths);
  if (!m) throw obj.fail(`has none of ${paths.join(', ')} in the target's BTF`);
  return m.readInt();
}

/** The struct module objects on the `modules` list. */
export async function* moduleObjects(kernel: Kernel): AsyncGenerator<KObject> {
  const head = kernel.object('struct list_head', kernel.symbols.address('modules'), 'modules');
  yield* listForEachEntry(head, 'struct module', 'list', { limit: MAX_MODULES });
}

function enumName(btf: Btf, typeId: number, value: bigint): string | undefined {
  const t = btf.resolve(typeId);
  if (t.kind !== 'enum' && t.kind !== 'enum64') return undefined;
  return t.values.find((v) => v.value === value)?.name;
}

/** Text base and size, and /proc/modules' total size, of either layout. */
async function moduleMemory(mod: KObject): Promise<{ address: bigint; textSize: number; size: number }> {
  const btf = mod.btf;
  const core = await firstMember(mod, ['core_layout']);
  if (core) {
    let size = Number(await (await core.member('size')).readInt());
    for (const other of ['init_layout', 'data_layout']) {
      const layout = await firstMember(mod, [other]);
      if (layout) size += Number(await (await layout.member('size')).readInt());
    }
    const text = await firstMember(core, ['text_size']);
    return { address: await (await core.member('base')).readInt(), textSize: Number(text ? await text.readInt() : BigInt(size)), size };
  }
  const mem = await firstMember(mod, ['mem']);
  const textIndex = btf.enumerator('MOD_TEXT');
  if (!mem || !textIndex) throw mod.fail('has neither core_layout nor mem[MOD_TEXT] in the target\'s BTF');
  const arr = btf.resolve(mem.typeId);
  const count = arr.kind === 'array' ? arr.nelems : 0;
  let size = 0;
  for (let i = 0; i < count; i++) size += Number(await (await (await mem.index(i)).member('size')).readInt());
  const text = await mem.index(textIndex.value);
  return { address: await (await text.member('base')).readInt(), textSize: Number(await (await text.member('size')).readInt()), size };
}

async function taintLetters(kernel: Kernel, taints: bigint): Promise<string> {
  if (taints === 0n) return '';
  // The kernel's own table of taint letters, indexed by taint bit.
  const table = kernel.symbols.address('taint_flags');
  const flag = kernel.model.typeId('struct taint_flag');
  let out = '';
  for (let bit = 0; bit < 64; bit++) {
    if (((taints >> BigInt(bit)) & 1n) === 0n) continue;
    const entry = kernel.object(flag, table + BigInt(bit * kernel.btf.sizeof(flag)), `taint_flags[${bit}]`);
    if ((await (await entry.member('module')).readInt()) === 0n) continue;
    out += String.fromCharCode(Number(await (await entry.member('c_true')).readInt()));
  }
  return out;
}

export async function readModule(mod: KObject): Promise<ModuleRecord> {
  const kernel = mod.kernel;
  const name = await (await mod.member('name')).string();
  const stateObj = await mod.member('state');
  const stateValue = await stateObj.readInt();
  const stateName = enumName(mod.btf, stateObj.typeId, stateValue) ?? `state ${stateValue}`;
  const state = ({ MODULE_STATE_LIVE: 'Live', MODULE_STATE_COMING: 'Loading', MODULE_STATE_GOING: 'Unloading', MODULE_STATE_UNFORMED: 'Unformed' } as Record<string, string>)[stateName] ?? stateName;
  const memory = await moduleMemory(mod);
  const refcnt = await firstMember(mod, ['refcnt.counter']);
  const refcount = refcnt ? Number(await refcnt.readInt()) - 1 : 0;
  const usedBy: string[] = [];
  const sources = await firstMember(mod, ['source_list']);
  if (sources) {
    for await (const use of listForEachEntry(sources, 'struct module_use', 'source_list', { limit: MAX_MODULES })) {
      usedBy.push(await (await use.path('source.name')).string());
    }
  }
  const init = await firstMember(mod, ['init']);
  const exit = await firstMember(mod, ['exit']);
  if (init && exit && (await init.readInt()) !== 0n && (await exit.readInt()) === 0n) usedBy.push('[permanent]');
  const taints = await taintLetters(kernel, await intOf(mod, ['taints']));
  return { name, state, ...memory, refcount, usedBy, taints, structAddress: mod.address! };
}

/** Every module on the list, in list order (newest first, as /proc/modules). Unformed ones are left out, as there. */
export async function listModules(model: KernelModel, kernel = new Kernel(model)): Promise<ModuleRecord[]> {
  const out: ModuleRecord[] = [];
  for await (const mod of moduleObjects(kernel)) {
    const record = await readModule(mod);
    if (record.state !== 'Unformed') out.push(record);
  }
  return out;
}

/** One /proc/modules line. */
export function procModulesLine(m: ModuleRecord): string {
  const used = m.usedBy.length ? m.usedBy.map((u) => `${u},`).join('') : '-';
  const flags = m.taints || m.state === 'Loading' || m.state === 'Unloading' ? ` (${m.taints}${m.state === 'Unloading' ? '-' : m.state === 'Loading' ? '+' : ''})` : '';
  return `${m.name} ${m.size} ${m.refcount} ${used} ${m.state} 0x${m.address.toString(16).padStart(16, '0')}${m.taints ? flags : ''}`;
}

export interface ModuleSymbol extends KernelSymbol {
  module: string;
  /** st_size from the module's symbol table. */
  size: bigint;
}

/** A module's symbols from its own kallsyms (mod->kallsyms: symtab, strtab, typetab). */
export async function moduleSymbols(mod: KObject, moduleName: string): Promise<ModuleSymbol[]> {
  const kernel = mod.kernel;
  const kallsyms = await mod.member('kallsyms');
  if ((await kallsyms.readInt()) === 0n) return [];
  const count = Number(await (await kallsyms.member('num_symtab')).readInt());
  if (count < 0 || count > MAX_MODULE_SYMBOLS) throw mod.fail(`module ${moduleName}: num_symtab ${count} is implausible`);
  const symtab = await (await kallsyms.member('symtab')).readInt();
  const strtab = await (await kallsyms.member('strtab')).readInt();
  const typetabObj = await firstMember(await kallsyms.deref(), ['typetab']);
  const typetab = typetabObj ? await typetabObj.readInt() : 0n;
  const symType = kernel.model.typeId('struct elf64_sym');
  const entrySize = kernel.btf.sizeof(symType);
  const field = (name: string): number => {
    const f = kernel.btf.findMember(symType, name);
    if (!f) throw new ModuleError(`struct elf64_sym has no ${name} in the target's BTF`);
    return f.bitsOffset / 8;
  };
  const [nameAt, valueAt, sizeAt] = [field('st_name'), field('st_value'), field('st_size')];
  const fail = (what: string, err: unknown): ModuleError => new ModuleError(`module ${moduleName}: ${what} unreadable: ${err instanceof Error ? err.message : String(err)}`);
  let table: Uint8Array;
  let types: Uint8Array = new Uint8Array(count);
  try {
    table = await kernel.reader.read(symtab, count * entrySize);
    if (typetab !== 0n) types = await kernel.reader.read(typetab, count);
  } catch (err) {
    throw fail(`symbol table at ${hex(symtab)}`, err);
  }
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  let strEnd = 0;
  for (let i = 0; i < count; i++) strEnd = Math.max(strEnd, view.getUint32(i * entrySize + nameAt, true));
  // The string table ends with the name at the largest offset: read up to it, plus up to the
  // end of that name's page (KSYM_NAME_LEN is 512; a page boundary may end the mapping).
  const lastStart = strtab + BigInt(strEnd);
  const toPageEnd = Number(4096n - (lastStart & 4095n));
  let strings: Uint8Array;
  try {
    strings = await kernel.reader.read(strtab, strEnd + Math.min(512, toPageEnd));
  } catch (err) {
    throw fail(`string table at ${hex(strtab)}`, err);
  }
  const decoder = new TextDecoder('latin1');
  const out: ModuleSymbol[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * entrySize;
    const off = view.getUint32(at + nameAt, true);
    const address = view.getBigUint64(at + valueAt, true);
    if (off === 0 || address === 0n) continue;
    let end = strings.indexOf(0, off);
    if (end < 0) end = strings.length;
    const name = decoder.decode(strings.subarray(off, end));
    if (!name) continue;
    out.push({ name, address, type: String.fromCharCode(types[i] || 0x3f), module: moduleName, size: view.getBigUint64(at + sizeAt, true) });
  }
  return out;
}

async function readBlob(kernel: Kernel, address: bigint, size: number, what: string): Promise<Uint8Array> {
  if (size <= 0 || size > MAX_MODULE_BTF) throw new ModuleError(`${what}: size ${size} is implausible`);
  try {
    // Copied: the reader's cache lines are views of larger replies.
    return Uint8Array.from(await kernel.reader.read(address, size));
  } catch (err) {
    throw new ModuleError(`${what} at ${hex(address)} (${size} bytes) unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A module's split BTF, parsed on top of vmlinux BTF. The kernel clears mod->btf_data once the
 * module is initialised (.BTF is not an allocated section), so a live module's BTF is found on
 * the BPF subsystem's `btf_modules` list, which keeps a parsed copy (struct btf.data).
 */
export async function moduleBtf(mod: KObject, moduleName: string, base: Btf): Promise<Btf | undefined> {
  const kernel = mod.kernel;
  const source = `BTF of module ${moduleName}`;
  const data = await firstMember(mod, ['btf_data']);
  const size = await firstMember(mod, ['btf_data_size']);
  if (data && size) {
    const address = await data.readInt();
    if (address !== 0n) return new Btf(await readBlob(kernel, address, Number(await size.readInt()), source), { base, source });
  }
  if (!kernel.symbols.get('btf_modules')) return undefined;
  const head = kernel.object('struct list_head', kernel.symbols.address('btf_modules'), 'btf_modules');
  for await (const entry of listForEachEntry(head, 'struct btf_module', 'list', { limit: MAX_MODULES })) {
    if ((await (await entry.member('module')).readInt()) !== mod.address) continue;
    const btf = await entry.member('btf');
    if ((await btf.readInt()) === 0n) return undefined;
    const blob = await (await btf.member('data')).readInt();
    const blobSize = Number(await (await btf.member('data_size')).readInt());
    return new Btf(await readBlob(kernel, blob, blobSize, source), { base, source });
  }
  return undefined;
}

export interface LoadedModule extends ModuleRecord {
  symbols: ModuleSymbol[];
  /** Its split BTF; undefined when the module was built without BTF. */
  btf?: Btf;
  /** Why the symbols or BTF could not be read, if so. */
  notes: string[];
}

/** Modules with their symbols and BTF: what symbol lookup and type decoding need. */
export async function loadModules(model: KernelModel, options: { btf?: boolean } = {}): Promise<LoadedModule[]> {
  const kernel = new Kernel(model);
  const out: LoadedModule[] = [];
  for await (const mod of moduleObjects(kernel)) {
    const record = await readModule(mod);
    if (record.state === 'Unformed') continue;
    const loaded: LoadedModule = { ...record, symbols: [], notes: [] };
    try {
      loaded.symbols = await moduleSymbols(mod, record.name);
    } catch (err) {
      loaded.notes.push(`symbols: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (options.btf !== false) {
      try {
        loaded.btf = await moduleBtf(mod, record.name, model.btf);
      } catch (err) {
        loaded.notes.push(`BTF: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    out.push(loaded);
  }
  return out;
}

/** The kernel model with every module's symbols added to vmlinux's (names resolve in both). */
export function withModuleSymbols(model: KernelModel, modules: readonly LoadedModule[]): KernelModel {
  const symbols = [...(model.description?.symbols ?? []), ...modules.flatMap((m) => m.symbols.filter((s) => s.type !== 'U'))];
  return new KernelModel(model.btf, new SymbolTable(symbols), model.memory, model.description, { maxListLength: model.maxListLength, lineSize: model.lineSize });
}

/** A model whose types are the module's split BTF (its own types, then vmlinux's), with module symbols. */
export function moduleTypeModel(model: KernelModel, module: LoadedModule, modules: readonly LoadedModule[] = [module]): KernelModel {
  if (!module.btf) throw new ModuleError(`module ${module.name} has no BTF (built without CONFIG_DEBUG_INFO_BTF_MODULES, or its BTF is unreadable)`);
  const symbols = withModuleSymbols(model, modules).symbols;
  return new KernelModel(module.btf, symbols, model.memory, model.description, { maxListLength: model.maxListLength, lineSize: model.lineSize });
}
