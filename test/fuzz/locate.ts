// Where the fuzzer's targets live in the pristine image, found through the real kernel model
// (BTF layouts, the target's symbols, VMCOREINFO) and the kernel's own page tables, never from a
// hard-coded address or offset. Virtual addresses become physical ones with a page-table walk
// written here, over the image file, independent of the agent's translation under test.
import type { KernelModel } from '../../src/kernel/model';
import { Kernel } from '../../src/kernel/objects/object';
import { evaluate, expressionAddress } from '../../src/kernel/objects/expression';
import { listTasks } from '../../src/kernel/tasks/tasks';
import { listModules } from '../../src/kernel/modules/modules';
import type { TargetDescription } from '../../src/types/target';
import type { FuzzImage } from './image';

const PTE_PRESENT = 1n;
const PTE_HUGE = 0x80n;
const PTE_ADDR = 0x000ffffffffff000n;

export interface TableStep {
  level: number;
  tablePhys: bigint;
  entryPhys: bigint;
  entry: bigint;
}

/** A kernel object to mutate: a name for reports, its virtual address and size. */
export interface FuzzObject {
  name: string;
  va: bigint;
  size: number;
  /** Named fields (offset, size) worth aiming at. */
  fields?: { name: string; offset: number; size: number }[];
  /** A task's pid, for the stack step. */
  pid?: number;
}

export interface Located {
  tasks: FuzzObject[];
  /** Page-table paths to objects of every kind of mapping the readers use. */
  tablePaths: { name: string; va: bigint; steps: TableStep[] }[];
  vmcoreinfo: { phys: bigint; text: string }[];
  btf: FuzzObject;
  kallsyms: FuzzObject[];
  printk: FuzzObject[];
  modules: FuzzObject[];
  pidIdr: FuzzObject[];
  runqueues: FuzzObject[];
  kernelData: FuzzObject;
  banner: FuzzObject;
  /** A user address mapped in a process (its argument strings), for reads through its page tables. */
  userRead: { pid: number; address: bigint };
  /** vm_zone_stat[NR_FREE_PAGES]: set low, it holds the memory-leak detector's condition. */
  freePages: FuzzObject;
}

export class Translator {
  constructor(
    readonly image: FuzzImage,
    private readonly root: bigint,
    private readonly levels: number,
  ) {}

  /** The tables walked for va (top level first) and the physical address, if mapped. */
  /** root: the kernel's top-level table, or a process's (its mm->pgd, physical). */
  walk(va: bigint, root = this.root): { steps: TableStep[]; phys?: bigint } {
    const steps: TableStep[] = [];
    let table = root & PTE_ADDR;
    for (let level = this.levels; level >= 1; level--) {
      const shift = BigInt(12 + 9 * (level - 1));
      const entryPhys = table + ((va >> shift) & 511n) * 8n;
      if (this.image.offsetOf(entryPhys, 8) === undefined) return { steps };
      const entry = this.image.readPhys(entryPhys, 8).readBigUInt64LE();
      steps.push({ level, tablePhys: table, entryPhys, entry });
      if (!(entry & PTE_PRESENT)) return { steps };
      if (level === 1 || ((level === 2 || level === 3) && entry & PTE_HUGE)) {
        const pageMask = (1n << shift) - 1n;
        return { steps, phys: (entry & PTE_ADDR & ~pageMask) + (va & pageMask) };
      }
      table = entry & PTE_ADDR;
    }
    return { steps };
  }

  phys(va: bigint): bigint {
    const { phys } = this.walk(va);
    if (phys === undefined) throw new Error(`fuzz locate: 0x${va.toString(16)} is not mapped in the pristine image`);
    return phys;
  }
}

function fieldsOf(model: KernelModel, type: string, names: string[]): { name: string; offset: number; size: number }[] {
  const id = model.typeId(type);
  const out: { name: string; offset: number; size: number }[] = [];
  for (const name of names) {
    const m = model.btf.findMember(id, name);
    if (m) out.push({ name, offset: Math.floor(m.bitsOffset / 8), size: Math.max(1, model.btf.sizeof(m.member.type)) });
  }
  return out;
}

function symbolSpan(description: TargetDescription, name: string, maxBytes: number): FuzzObject | undefined {
  const s = description.symbols.find((x) => x.name === name);
  if (!s) return undefined;
  let next: bigint | undefined;
  for (const x of description.symbols) if (x.address > s.address && (next === undefined || x.address < next)) next = x.address;
  const size = next === undefined ? 8 : Number(next - s.address > BigInt(maxBytes) ? BigInt(maxBytes) : next - s.address);
  return { name, va: s.address, size };
}

const TASK_FIELDS = ['tasks', 'pid', 'tgid', 'comm', '__state', 'state', 'exit_state', 'real_parent', 'parent', 'group_leader', 'signal', 'mm',
  'active_mm', 'stack', 'thread_node', 'thread_group', 'pid_links', 'thread', 'children', 'sibling', 'utime', 'stime', 'cpu', 'thread_info', 'on_cpu', 'flags'];

/** Finds every object the mutators aim at, on the pristine image. */
export async function locate(model: KernelModel, description: TargetDescription, image: FuzzImage): Promise<{ located: Located; translator: Translator }> {
  const translator = new Translator(image, description.pageTableRoot, description.pagingLevels);
  const kernel = new Kernel(model);
  const taskSize = model.btf.sizeof(model.typeId('struct task_struct'));
  const taskFields = fieldsOf(model, 'struct task_struct', TASK_FIELDS);
  const { tasks } = await listTasks(model, { threads: true, idle: true });
  const taskObjects: FuzzObject[] = tasks.map((t) => ({ name: `task_struct of pid ${t.pid} (${t.comm})`, va: t.taskAddress, size: taskSize, fields: taskFields, pid: t.pid }));

  // Page-table paths: the kernel image, a task in the direct map, a (vmalloc'd) kernel stack,
  // the per-CPU area, a module.
  const tablePaths: Located['tablePaths'] = [];
  const addPath = (name: string, va: bigint): void => {
    const { steps } = translator.walk(va);
    if (steps.length) tablePaths.push({ name, va, steps });
  };
  addPath('init_task (kernel image)', model.symbols.address('init_task'));
  const someTask = tasks.find((t) => t.pid > 1) ?? tasks[0];
  addPath(`task_struct of pid ${someTask.pid} (direct map)`, someTask.taskAddress);
  const stack = await evaluate(kernel, `((struct task_struct *)0x${someTask.taskAddress.toString(16)})->stack`);
  addPath(`kernel stack of pid ${someTask.pid}`, await stack.readInt());
  const rq1 = await expressionAddress(kernel, 'per_cpu(runqueues, 0)');
  addPath('runqueues of CPU 0 (per-CPU area)', rq1.address);

  // VMCOREINFO: every copy of the text the agent published.
  const vmcoreinfo: Located['vmcoreinfo'] = [];
  const head = Buffer.from(description.vmcoreinfo.slice(0, 64), 'latin1');
  if (head.length) {
    const chunk = 1 << 24;
    for (const r of image.ranges) {
      for (let at = 0n; at < r.length; at += BigInt(chunk)) {
        const bytes = image.readPhys(r.physStart + at, Number(r.length - at < BigInt(chunk + head.length) ? r.length - at : BigInt(chunk + head.length)));
        for (let i = bytes.indexOf(head); i >= 0 && i < chunk; i = bytes.indexOf(head, i + 1)) vmcoreinfo.push({ phys: r.physStart + at + BigInt(i), text: description.vmcoreinfo });
      }
    }
  }

  const startBtf = model.symbols.address('__start_BTF');
  const btf: FuzzObject = { name: '.BTF section', va: startBtf, size: Number(model.symbols.address('__stop_BTF') - startBtf) };
  // The kallsyms tables are not in the symbol table they encode: VMCOREINFO names them. Each
  // spans up to the next one (the last, the token index, has one u16 per token: 256).
  const tables = [...description.vmcoreinfo.matchAll(/^SYMBOL\((kallsyms_\w+)\)=([0-9a-f]+)$/gm)]
    .map((m) => ({ name: m[1], va: BigInt('0x' + m[2]) }))
    .sort((a, b) => (a.va < b.va ? -1 : 1));
  const kallsyms: FuzzObject[] = tables.map((t, i) => ({
    name: t.name,
    va: t.va,
    size: i + 1 < tables.length ? Math.min(1 << 20, Number(tables[i + 1].va - t.va)) : 512,
  }));

  const printk: FuzzObject[] = [];
  const prb = await evaluate(kernel, '*prb');
  printk.push({ name: 'printk_ringbuffer (*prb)', va: prb.address!, size: prb.size, fields: fieldsOf(model, 'struct printk_ringbuffer', ['desc_ring', 'text_data_ring', 'fail']) });
  const countBits = Number(await (await evaluate(kernel, 'prb->desc_ring.count_bits')).readInt());
  const descs = await (await evaluate(kernel, 'prb->desc_ring.descs')).readInt();
  const infos = await (await evaluate(kernel, 'prb->desc_ring.infos')).readInt();
  const sizeBits = Number(await (await evaluate(kernel, 'prb->text_data_ring.size_bits')).readInt());
  const data = await (await evaluate(kernel, 'prb->text_data_ring.data')).readInt();
  printk.push({ name: 'printk descriptors (prb->desc_ring.descs)', va: descs, size: (1 << countBits) * model.btf.sizeof(model.typeId('struct prb_desc')) });
  printk.push({ name: 'printk infos (prb->desc_ring.infos)', va: infos, size: (1 << countBits) * model.btf.sizeof(model.typeId('struct printk_info')) });
  printk.push({ name: 'printk text ring (prb->text_data_ring.data)', va: data, size: 1 << sizeBits });

  const moduleSize = model.btf.sizeof(model.typeId('struct module'));
  const moduleFields = fieldsOf(model, 'struct module', ['list', 'name', 'state', 'mem', 'core_layout', 'init_layout', 'kallsyms', 'num_syms', 'symtab', 'btf_data', 'btf_data_size', 'refcnt', 'source_list', 'target_list', 'taints']);
  const modules: FuzzObject[] = (await listModules(model)).map((m) => ({ name: `struct module ${m.name}`, va: m.structAddress, size: moduleSize, fields: moduleFields }));
  modules.push({ name: 'modules (list head)', va: model.symbols.address('modules'), size: 16 });
  if (modules.length) addPath(`module ${modules[0].name}`, modules[0].va);

  const pidIdr: FuzzObject[] = [];
  const idr = await expressionAddress(kernel, 'init_pid_ns.idr');
  pidIdr.push({ name: 'init_pid_ns.idr', va: idr.address, size: idr.size ?? 24 });
  const xaHead = await (await evaluate(kernel, 'init_pid_ns.idr.idr_rt.xa_head')).readInt();
  const nodeSize = model.btf.sizeof(model.typeId('struct xa_node'));
  // XArray ABI: an internal entry (low bits 10) above 4096 is a node pointer plus 2.
  if ((xaHead & 3n) === 2n && xaHead > 4096n) {
    const node = xaHead - 2n;
    pidIdr.push({ name: 'pid IDR root xa_node', va: node, size: nodeSize, fields: fieldsOf(model, 'struct xa_node', ['shift', 'offset', 'count', 'nr_values', 'parent', 'slots']) });
    const slots = await expressionAddress(kernel, `((struct xa_node *)0x${node.toString(16)})->slots`);
    const slotBytes = image.readPhys(translator.phys(slots.address), 64 * 8);
    for (let i = 0; i < 64; i++) {
      const child = slotBytes.readBigUInt64LE(i * 8);
      if ((child & 3n) === 2n && child > 4096n) pidIdr.push({ name: `pid IDR xa_node (slot ${i})`, va: child - 2n, size: nodeSize });
    }
  }

  const runqueues: FuzzObject[] = [];
  const cpus = await kernel.cpuCount();
  const rqFields = fieldsOf(model, 'struct rq', ['curr', 'idle', 'nr_running', 'stop', 'cpu']);
  for (let cpu = 0; cpu < cpus; cpu++) {
    const rq = await expressionAddress(kernel, `per_cpu(runqueues, ${cpu})`);
    runqueues.push({ name: `runqueues of CPU ${cpu}`, va: rq.address, size: rq.size ?? 64, fields: rqFields });
    const stat = await expressionAddress(kernel, `per_cpu(kernel_cpustat, ${cpu})`);
    runqueues.push({ name: `kernel_cpustat of CPU ${cpu}`, va: stat.address, size: stat.size ?? 80 });
  }
  for (const stat of ['vm_zone_stat', 'vm_node_stat', 'vm_numa_event', 'totalram_pages', '__per_cpu_offset', 'nr_cpu_ids']) {
    const s = symbolSpan(description, stat, 512);
    if (s) runqueues.push(s);
  }

  const sdata = model.symbols.address('_sdata');
  const kernelData: FuzzObject = { name: 'kernel .data', va: sdata, size: Number(model.symbols.address('_edata') - sdata) };
  const banner: FuzzObject = { name: 'linux_banner', va: model.symbols.address('linux_banner'), size: 160 };

  const init = tasks.find((t) => t.pid === 1);
  if (!init) throw new Error('fuzz locate: no pid 1 on the pristine image');
  const argStart = await (await evaluate(kernel, `((struct task_struct *)0x${init.taskAddress.toString(16)})->mm->arg_start`)).readInt();
  const userRead = { pid: 1, address: argStart };
  const pgd = await (await evaluate(kernel, `((struct task_struct *)0x${init.taskAddress.toString(16)})->mm->pgd`)).readInt();
  const userPath = translator.walk(argStart, translator.phys(pgd));
  if (userPath.steps.length) tablePaths.push({ name: 'arguments of pid 1 (its own page tables)', va: argStart, steps: userPath.steps });

  const nrFree = model.btf.enumerator('NR_FREE_PAGES');
  if (!nrFree) throw new Error("fuzz locate: no NR_FREE_PAGES in the target's BTF");
  const counterSize = model.btf.sizeof(model.typeId('atomic_long_t'));
  const freePages: FuzzObject = { name: 'vm_zone_stat[NR_FREE_PAGES]', va: model.symbols.address('vm_zone_stat') + nrFree.value * BigInt(counterSize), size: counterSize };

  return { located: { tasks: taskObjects, tablePaths, vmcoreinfo, btf, kallsyms, printk, modules, pidIdr, runqueues, kernelData, banner, freePages, userRead }, translator };
}
