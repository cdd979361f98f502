// Kernel stack traces of tasks, from memory. A sleeping task's registers were saved by
// __switch_to_asm as a struct inactive_task_frame at task->thread.sp; from there the stack is
// unwound with the kernel's own ORC tables, following arch/x86/kernel/unwind_orc.c. Frames are
// reported as /proc/<pid>/stack does (the scheduler's own functions left out unless asked).
// A task running on a CPU has no saved registers worth anything (no NMI reaches a dead kernel),
// so its frames are inferred from the return addresses on its stack instead (infer), marked as such --
// unless the kernel crashed into kdump: crash_save_cpu() then left each CPU's registers in an
// ELF PRSTATUS note at per_cpu_ptr(crash_notes, cpu) (the panicking CPU's from
// crash_setup_regs() in __crash_kexec, the others' from the NMI that stopped them), and the
// task that CPU ran is unwound from those, as crash does.
// Every walk is bounded by the task's stack area and a frame count; a trace that cannot go on
// ends with a note saying why.

import type { KernelModel } from '../model';
import { loadModules, type LoadedModule } from '../modules/modules';
import { hex, Kernel, KObject, ObjectError } from '../objects/object';
import { forEachTask, listTasks } from '../tasks/tasks';
import { TargetReadError } from '../../types/target';
import type { TaskRecord } from '../../types/task-record';
import { ORC_REG, OrcUnwindTables } from './orc';

export interface StackFrame {
  address: bigint;
  /** `symbol+0x1a/0x40`, or the bare address when no symbol covers it. */
  symbol: string;
  module?: string;
  /** In the scheduler's or locking's own text (/proc/<pid>/stack leaves these out). */
  scheduler: boolean;
}

export interface StackTrace {
  pid: number;
  comm: string;
  state: string;
  taskAddress: bigint;
  /** 'orc': unwound from saved registers; 'inferred': a running task's, unwound from the return addresses on its stack (StackContext.infer). */
  method: 'orc' | 'inferred';
  /** Where an 'orc' unwind of a task on a CPU started: the registers the kernel saved for kdump on that CPU. */
  registers?: 'crash_notes';
  frames: StackFrame[];
  /** Why the trace ended early, or what it is (inferred); undefined for a complete unwind. */
  note?: string;
}

/** /proc/<pid>/stack stops at 64 entries (MAX_STACK_TRACE_DEPTH); so do we, and note it. */
const MAX_FRAMES = 64;
/** How far above a frame without ORC data its caller's return address is looked for (bytes). */
const MAX_CALLER_SCAN = 4096n;
/** Candidate return addresses a running task's stack is unwound from, at most (a 16 KiB stack has 2048 words). */
const MAX_CANDIDATES = 512;
/** Bytes of a function scanned for its tail calls, at most (x64_sys_call, a switch of ~450 jumps, is some 8 KiB). */
const MAX_FUNCTION_SCAN = 65536;
/** A function this small that a called function jumps to is followed one jump further (syscall wrappers). */
const MAX_WRAPPER_BYTES = 256;

interface SymbolEntry {
  address: bigint;
  name: string;
  /** Address of the next symbol (the end of this one, as kallsyms sizes symbols). */
  end: bigint;
  module?: string;
}

/** Address → `symbol+offset/size [module]`, sized as the kernel's kallsyms does it. */
export class StackSymbolizer {
  private readonly entries: SymbolEntry[];

  constructor(model: KernelModel, modules: readonly LoadedModule[]) {
    const out: SymbolEntry[] = [];
    // vmlinux: the first name at an address wins (kallsyms' get_symbol_pos); a symbol ends at
    // the next higher address.
    const core = [...(model.description?.symbols ?? [])]
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.address >= 0xffff800000000000n)
      .sort((a, b) => (a.s.address < b.s.address ? -1 : a.s.address > b.s.address ? 1 : a.i - b.i));
    for (let k = 0; k < core.length; k++) {
      if (k > 0 && core[k].s.address === core[k - 1].s.address) continue;
      let next = k + 1;
      while (next < core.length && core[next].s.address === core[k].s.address) next++;
      out.push({ address: core[k].s.address, name: core[k].s.name, end: next < core.length ? core[next].s.address : core[k].s.address + 1n });
    }
    // Modules: the kernel's find_kallsyms_symbol, on the module's text; the last symbol ends at
    // the end of the text.
    for (const m of modules) {
      const textEnd = m.address + BigInt(m.textSize);
      const syms = m.symbols
        .map((s, i) => ({ s, i }))
        .filter(({ s }) => s.type !== 'U' && s.address >= m.address && s.address < textEnd)
        .sort((a, b) => (a.s.address < b.s.address ? -1 : a.s.address > b.s.address ? 1 : a.i - b.i));
      for (let k = 0; k < syms.length; k++) {
        if (k > 0 && syms[k].s.address === syms[k - 1].s.address) continue;
        let next = k + 1;
        while (next < syms.length && syms[next].s.address === syms[k].s.address) next++;
        out.push({ address: syms[k].s.address, name: syms[k].s.name, end: next < syms.length ? syms[next].s.address : textEnd, module: m.name });
      }
    }
    this.entries = out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  private at(address: bigint): SymbolEntry | undefined {
    let lo = 0;
    let hi = this.entries.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].address <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const e = this.entries[found];
    return address < e.end ? e : undefined;
  }

  /**
   * A return address as %pB prints it: the symbol of address - 1 (a call may be a function's
   * last instruction), the offset from the address itself.
   */
  describe(address: bigint, isReturnAddress = true): { symbol: string; module?: string } {
    const e = this.at(isReturnAddress ? address - 1n : address);
    if (!e) return { symbol: hex(address) };
    return { symbol: `${e.name}+${hex(address - e.address)}/${hex(e.end - e.address)}`, module: e.module };
  }

  /** The start of the function holding address, if a known one does. */
  start(address: bigint): bigint | undefined {
    return this.at(address)?.address;
  }

  /** Whether an address is inside a known function (a candidate return address of infer). */
  isText(address: bigint): boolean {
    return this.at(address) !== undefined;
  }
}

/** What unwinding needs once per request: ORC tables, symbols, layouts. */
export class StackContext {
  private constructor(
    readonly kernel: Kernel,
    readonly modules: LoadedModule[],
    readonly orc: OrcUnwindTables,
    readonly symbolizer: StackSymbolizer,
    private readonly ranges: { sched: [bigint, bigint][]; text: [bigint, bigint]; retFromFork: bigint[]; threadSize: bigint },
  ) {}

  static async create(model: KernelModel): Promise<StackContext> {
    const kernel = new Kernel(model);
    const modules = await loadModules(model, { btf: false });
    const orc = await OrcUnwindTables.read(kernel, modules);
    const sym = (n: string): bigint => model.symbols.address(n);
    const sched: [bigint, bigint][] = [[sym('__sched_text_start'), sym('__sched_text_end')]];
    if (model.symbols.get('__lock_text_start') && model.symbols.get('__lock_text_end')) sched.push([sym('__lock_text_start'), sym('__lock_text_end')]);
    // THREAD_SIZE from the initial task's stack, which the linker script sizes to it (its
    // bounds were renamed from *_init_task to *_init_stack in 6.2).
    const bounds = [['__start_init_task', '__end_init_task'], ['__start_init_stack', '__end_init_stack'], ['init_stack', '__end_init_stack']].find(([a, b]) => model.symbols.get(a) && model.symbols.get(b));
    const threadSize = bounds ? sym(bounds[1]) - sym(bounds[0]) : 0n;
    if (threadSize <= 0n || threadSize > 1n << 20n) throw new ObjectError(`cannot tell the kernel stack size: no __start_init_task/__end_init_task (or __start_init_stack/__end_init_stack) pair of symbols gives one${bounds ? ` (${bounds.join('..')} gives ${threadSize})` : ''}`);
    const retFromFork = ['ret_from_fork', 'ret_from_fork_asm'].filter((n) => model.symbols.get(n)).map(sym);
    return new StackContext(kernel, modules, orc, new StackSymbolizer(model, modules), { sched, text: [sym('_stext'), sym('_etext')], retFromFork, threadSize });
  }

  get threadSize(): bigint {
    return this.ranges.threadSize;
  }

  private frame(address: bigint, isReturnAddress = true): StackFrame {
    const { symbol, module } = this.symbolizer.describe(address, isReturnAddress);
    const scheduler = this.ranges.sched.some(([a, b]) => address >= a && address < b);
    return { address, symbol, ...(module ? { module } : {}), scheduler };
  }

  /** A task's stack trace: unwound when it sleeps (or from kdump's saved registers), inferred when it is on a CPU. */
  async trace(task: TaskRecord, options: { includeScheduler?: boolean } = {}): Promise<StackTrace> {
    const ts = this.kernel.object('struct task_struct', task.taskAddress, `task ${task.pid}`);
    const base: Omit<StackTrace, 'method' | 'frames'> = { pid: task.pid, comm: task.comm, state: task.state, taskAddress: task.taskAddress };
    const stack = await (await ts.member('stack')).readInt();
    // An exited task's stack may already be freed (task->stack NULL), as /proc then shows nothing.
    if (stack === 0n) return { ...base, method: 'orc', frames: [], note: 'the task has no kernel stack (it has exited)' };
    const onCpu = await ts.member('on_cpu').then((o) => o.readInt()).catch(() => 0n);
    const crashed = onCpu !== 0n ? await this.crashRegisters(task.cpu, task.pid) : undefined;
    const raw = crashed ? await this.walk(crashed, stack) : onCpu !== 0n ? await this.infer(stack) : await this.unwind(ts, stack);
    const frames = options.includeScheduler ? raw.frames : raw.frames.filter((f) => !f.scheduler);
    return { ...base, method: raw.method, ...(crashed ? { registers: 'crash_notes' as const } : {}), frames, ...(raw.note ? { note: raw.note } : {}) };
  }

  /**
   * The registers crash_save_cpu() saved for kdump on this CPU, when they are this pid's: the
   * ELF note (Elf64_Nhdr, name "CORE", type NT_PRSTATUS) at per_cpu_ptr(crash_notes, cpu), its
   * struct elf_prstatus laid out by BTF. Undefined on a kernel that did not crash into kdump
   * (the notes are zero until then), without crash_notes, or when the note is another task's.
   */
  private async crashRegisters(cpu: number, pid: number): Promise<StartState | undefined> {
    const model = this.kernel.model;
    const slot = this.userRegsSlots();
    if (!model.symbols.get('crash_notes') || model.btf.findByName('elf_prstatus', 'struct') === undefined || !slot) return undefined;
    try {
      const notes = (await this.kernel.reader.u64(model.symbols.address('crash_notes'))) + (await this.kernel.perCpuOffset(cpu));
      const head = await this.kernel.reader.read(notes, 12);
      const view = new DataView(head.buffer, head.byteOffset, 12);
      const [nameBytes, descBytes, type] = [view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true)];
      const NT_PRSTATUS = 1;
      const prstatusType = model.typeId('struct elf_prstatus');
      if (type !== NT_PRSTATUS || nameBytes !== 5 || descBytes !== this.kernel.btf.sizeof(prstatusType)) return undefined;
      const name = await this.kernel.reader.read(notes + 12n, 5);
      if (new TextDecoder().decode(name) !== 'CORE\0') return undefined;
      // The note's name is padded to 4 bytes, then its descriptor, the struct elf_prstatus.
      const prstatus = this.kernel.object(prstatusType, notes + 12n + 8n, `crash_notes of CPU ${cpu}`);
      const pidObj = await prstatus.path('common.pr_pid').catch(() => prstatus.member('pr_pid'));
      if (Number(await pidObj.readInt()) !== pid) return undefined;
      const regs = await prstatus.member('pr_reg');
      const at = async (i: number): Promise<bigint> => (await regs.index(i)).readInt();
      const state = { ip: await at(slot.ip), sp: await at(slot.sp), bp: await at(slot.bp), exact: true };
      return state.ip !== 0n && state.sp !== 0n ? state : undefined;
    } catch (err) {
      // Unreadable or unlike a note: the CPU has no saved registers to start from (infer).
      if (err instanceof ObjectError || err instanceof TargetReadError) return undefined;
      throw err;
    }
  }

  /** Where ip, sp and bp sit in elf_gregset_t: the order of struct user_regs_struct, from BTF. */
  private userRegsSlots(): { ip: number; sp: number; bp: number } | undefined {
    const btf = this.kernel.btf;
    const id = btf.findByName('user_regs_struct', 'struct');
    const slots = id === undefined ? [] : ['ip', 'sp', 'bp'].map((name) => btf.findMember(id, name)?.bitsOffset);
    if (slots.length !== 3 || slots.some((b) => b === undefined || b % 64 !== 0)) return undefined;
    const [ip, sp, bp] = slots.map((b) => b! / 64);
    return { ip, sp, bp };
  }

  private async readStackWord(address: bigint, stackLo: bigint, stackHi: bigint): Promise<bigint> {
    if (address < stackLo || address + 8n > stackHi) throw new UnwindStop(`stack read at ${hex(address)} is outside the task's stack ${hex(stackLo)}-${hex(stackHi)}`);
    try {
      return await this.kernel.reader.u64(address);
    } catch (err) {
      throw new UnwindStop(`stack word at ${hex(address)} unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** A sleeping task: its registers as __switch_to_asm saved them (struct inactive_task_frame at thread.sp). */
  private async unwind(ts: KObject, stackLo: bigint): Promise<{ method: 'orc'; frames: StackFrame[]; note?: string }> {
    const stackHi = stackLo + this.ranges.threadSize;
    const savedSp = await (await ts.path('thread.sp')).readInt();
    const frameType = this.kernel.model.typeId('struct inactive_task_frame');
    const frameSize = BigInt(this.kernel.btf.sizeof(frameType));
    try {
      const saved = this.kernel.object(frameType, savedSp, `inactive_task_frame of task at ${hex(ts.address!)}`);
      if (savedSp < stackLo || savedSp + frameSize > stackHi) throw new UnwindStop(`saved stack pointer ${hex(savedSp)} is outside the task's stack ${hex(stackLo)}-${hex(stackHi)}`);
      const ip = await (await saved.member('ret_addr')).readInt();
      const bp = await (await saved.member('bp')).readInt();
      return await this.walk({ ip, sp: savedSp + frameSize, bp, exact: this.ranges.retFromFork.includes(ip) }, stackLo);
    } catch (err) {
      if (err instanceof UnwindStop || err instanceof ObjectError) return { method: 'orc', frames: [], note: `unwinding stopped: ${err.message}` };
      throw err;
    }
  }

  /**
   * ORC unwinding from a register state. exact: ip is the instruction itself (a task that never
   * ran, or registers saved mid-function), not a return address, so its ORC entry and symbol
   * are those of ip rather than ip - 1.
   */
  private async walk(start: StartState, stackLo: bigint): Promise<{ method: 'orc'; frames: StackFrame[]; note?: string; /** Where a complete unwind ended: the user-mode pt_regs, or the stack pointer at the end entry. */ end?: bigint }> {
    const stackHi = stackLo + this.ranges.threadSize;
    const frames: StackFrame[] = [];
    const regs = this.ptRegsLayout();
    try {
      let { ip, bp, sp } = start;
      if (sp < stackLo || sp >= stackHi) throw new UnwindStop(`the stack pointer ${hex(sp)} is outside the task's stack ${hex(stackLo)}-${hex(stackHi)} (an interrupt or exception stack)`);
      let signal = start.exact;
      const first = start.exact ? this.orc.find(ip) : undefined;
      if (first && (first.type === 'undefined' || first.spReg === ORC_REG.UNDEFINED)) {
        // Registers saved inside a function objtool left without ORC data (Debian's 6.1 builds
        // kexec_core.o so: crash_setup_regs' pushf, in __crash_kexec): its caller's frame is
        // found instead (callerFrame), and the unwind goes on from there.
        frames.push(this.frame(ip, false));
        ({ ip, sp } = await this.callerFrame(ip, sp, stackLo, stackHi));
        signal = false;
      }
      let regsAt: bigint | undefined;
      let fullRegs = false;
      for (;;) {
        if (regsAt !== undefined && ((await this.readStackWord(regsAt + regs.cs, stackLo, stackHi)) & 3n) !== 0n) return { method: 'orc', frames, end: regsAt }; // reached user mode: complete
        if (frames.length >= MAX_FRAMES) return { method: 'orc', frames, note: `stopped after ${MAX_FRAMES} frames` };
        if (!this.orcCovers(ip)) throw new UnwindStop(`${hex(ip)} is not kernel text (corrupt stack?)`);
        frames.push(this.frame(ip, !(start.exact && frames.length === 0)));
        const orc = this.orc.find(signal ? ip : ip - 1n);
        if (!orc) throw new UnwindStop(`no ORC entry for ${hex(ip)}`);
        if (orc.type === 'end') return { method: 'orc', frames, end: sp };
        if (orc.type === 'undefined' || orc.spReg === ORC_REG.UNDEFINED) throw new UnwindStop(`ORC entry for ${this.symbolizer.describe(ip).symbol} has no rule for the stack pointer`);
        const prevSp = sp;
        let newSp: bigint;
        switch (orc.spReg) {
          case ORC_REG.SP: newSp = sp + BigInt(orc.spOffset); break;
          case ORC_REG.BP: newSp = bp + BigInt(orc.spOffset); break;
          case ORC_REG.SP_INDIRECT: newSp = (await this.readStackWord(sp, stackLo, stackHi)) + BigInt(orc.spOffset); break;
          case ORC_REG.BP_INDIRECT: newSp = await this.readStackWord(bp + BigInt(orc.spOffset), stackLo, stackHi); break;
          case ORC_REG.R10: case ORC_REG.R13: case ORC_REG.DI: case ORC_REG.DX: {
            if (regsAt === undefined || !fullRegs) throw new UnwindStop(`ORC rule at ${hex(ip)} needs a register that no saved pt_regs holds`);
            const off = { [ORC_REG.R10]: regs.r10, [ORC_REG.R13]: regs.r13, [ORC_REG.DI]: regs.di, [ORC_REG.DX]: regs.dx }[orc.spReg]!;
            newSp = await this.readStackWord(regsAt + off, stackLo, stackHi);
            break;
          }
          default: throw new UnwindStop(`ORC entry for ${hex(ip)} has an unknown stack-pointer register ${orc.spReg}`);
        }
        let newIp: bigint;
        if (orc.type === 'call') {
          newIp = await this.readStackWord(newSp - 8n, stackLo, stackHi);
          regsAt = undefined;
          fullRegs = false;
        } else if (orc.type === 'regs') {
          regsAt = newSp;
          fullRegs = true;
          newIp = await this.readStackWord(regsAt + regs.ip, stackLo, stackHi);
          newSp = await this.readStackWord(regsAt + regs.sp, stackLo, stackHi);
        } else {
          // regs_partial: only the hardware's iret frame (ip, cs, flags, sp, ss) is there.
          regsAt = newSp - regs.ip;
          fullRegs = false;
          newIp = await this.readStackWord(regsAt + regs.ip, stackLo, stackHi);
          newSp = await this.readStackWord(regsAt + regs.sp, stackLo, stackHi);
        }
        const cfa = orc.type === 'call' ? newSp : regsAt! + (orc.type === 'regs' ? 0n : regs.ip);
        switch (orc.bpReg) {
          case ORC_REG.UNDEFINED:
            if (regsAt !== undefined && fullRegs) bp = await this.readStackWord(regsAt + regs.bp, stackLo, stackHi);
            break;
          case ORC_REG.PREV_SP: bp = await this.readStackWord(cfa + BigInt(orc.bpOffset), stackLo, stackHi); break;
          case ORC_REG.BP: bp = await this.readStackWord(bp + BigInt(orc.bpOffset), stackLo, stackHi); break;
          default: throw new UnwindStop(`ORC entry for ${hex(ip)} has an unknown frame-pointer register ${orc.bpReg}`);
        }
        signal = orc.signal;
        ip = newIp;
        sp = newSp;
        // Bad ORC data or a corrupt stack must not loop: the stack only grows upwards while unwinding.
        const user = regsAt !== undefined && ((await this.readStackWord(regsAt + regs.cs, stackLo, stackHi)) & 3n) !== 0n;
        if (!user && sp <= prevSp) throw new UnwindStop(`stack pointer went from ${hex(prevSp)} to ${hex(sp)} (the wrong direction)`);
      }
    } catch (err) {
      if (err instanceof UnwindStop || err instanceof ObjectError) return { method: 'orc', frames, note: `unwinding stopped: ${err.message}` };
      throw err;
    }
  }

  /**
   * The frame that called the function holding ip, when ip's own frame cannot be unwound: the
   * first word at or above sp that is a return address of a direct call (e8 rel32) to that
   * function's start, checked against the kernel text itself. Its caller's ip, and sp above it.
   */
  private async callerFrame(ip: bigint, sp: bigint, stackLo: bigint, stackHi: bigint): Promise<{ ip: bigint; sp: bigint }> {
    const fn = this.symbolizer.start(ip);
    if (fn === undefined) throw new UnwindStop(`${hex(ip)} is in no known function`);
    const CALL_REL32 = 0xe8;
    for (let at = sp; at + 8n <= stackHi && at < sp + MAX_CALLER_SCAN; at += 8n) {
      const v = await this.readStackWord(at, stackLo, stackHi);
      if (!this.orcCovers(v) || !this.symbolizer.isText(v - 1n)) continue;
      const call = await this.kernel.reader.read(v - 5n, 5).catch(() => undefined);
      if (!call || call[0] !== CALL_REL32) continue;
      const rel = BigInt(new DataView(call.buffer, call.byteOffset + 1, 4).getInt32(0, true));
      if (((v + rel) & 0xffffffffffffffffn) === fn) return { ip: v, sp: at + 8n };
    }
    throw new UnwindStop(`${this.symbolizer.describe(ip, false).symbol} has no ORC data and no return address of a call to it lies within ${MAX_CALLER_SCAN} bytes above ${hex(sp)}`);
  }

  private orcCovers(ip: bigint): boolean {
    return this.orc.find(ip) !== undefined;
  }

  private ptRegsCache: Record<'ip' | 'sp' | 'bp' | 'cs' | 'r10' | 'r13' | 'di' | 'dx', bigint> | undefined;
  private ptRegsLayout(): Record<'ip' | 'sp' | 'bp' | 'cs' | 'r10' | 'r13' | 'di' | 'dx', bigint> {
    if (this.ptRegsCache) return this.ptRegsCache;
    const btf = this.kernel.btf;
    const id = this.kernel.model.typeId('struct pt_regs');
    const off = (name: string): bigint => {
      const m = btf.findMember(id, name);
      if (!m) throw new ObjectError(`struct pt_regs has no ${name} in the target's BTF`);
      return BigInt(m.bitsOffset / 8);
    };
    this.ptRegsCache = { ip: off('ip'), sp: off('sp'), bp: off('bp'), cs: off('cs'), r10: off('r10'), r13: off('r13'), di: off('di'), dx: off('dx') };
    return this.ptRegsCache;
  }

  /**
   * A task on a CPU, registers unknown: every word of its stack that is a return address (a
   * kernel text address right after a call instruction) is a candidate for the frame it would
   * return to; the ORC unwind from each, deepest first, is kept when it reaches the stack's end
   * (user mode's pt_regs, an end-of-stack entry) with every frame called by the one above it
   * (callSite: a direct call's target is the function the frame below runs in). Stale return
   * addresses left below the live frames unwind into live slots that hold another call's
   * return address, and are refused there.
   */
  private async infer(stackLo: bigint): Promise<{ method: 'inferred'; frames: StackFrame[]; note: string }> {
    const note = 'task is running on a CPU: its registers are unknown, so this chain of return addresses was inferred from its stack (each frame ORC-unwound and called by the one above it; the running function itself is not known)';
    let bytes: Uint8Array;
    try {
      bytes = await this.kernel.reader.read(stackLo, Number(this.ranges.threadSize));
    } catch (err) {
      return { method: 'inferred', frames: [], note: `${note}; the stack is unreadable: ${err instanceof Error ? err.message : String(err)}` };
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let best: StackFrame[] = [];
    let tried = 0;
    for (let at = 0; at + 8 <= bytes.length && tried < MAX_CANDIDATES; at += 8) {
      const ip = view.getBigUint64(at, true);
      if (!this.orcCovers(ip) || !this.symbolizer.isText(ip - 1n) || !(await this.callSite(ip))) continue;
      tried++;
      const walked = await this.walk({ ip, sp: stackLo + BigInt(at) + 8n, bp: 0n, exact: false }, stackLo);
      const linked = await this.linkedFrames(walked.frames);
      if (walked.end !== undefined && this.atStackTop(walked.end, stackLo) && linked === walked.frames.length) return { method: 'inferred', frames: walked.frames, note };
      if (linked > best.length) best = walked.frames.slice(0, linked);
    }
    return {
      method: 'inferred',
      frames: best,
      note: `${note}; no chain reached the stack's end (of ${tried} candidate return addresses), these are the longest linked part of one`,
    };
  }

  /**
   * Whether a complete unwind ended at the stack's top, as a live one does: a task's entry from
   * user mode saves its pt_regs at the very top (task_pt_regs), and a kernel thread's or idle
   * task's end entry lies within a pt_regs' size of it. A stale interrupt frame deeper down whose
   * saved cs has been overwritten with something that reads as user mode ends elsewhere.
   */
  private atStackTop(end: bigint, stackLo: bigint): boolean {
    const stackHi = stackLo + this.ranges.threadSize;
    const ptRegs = BigInt(this.kernel.btf.sizeof(this.kernel.model.typeId('struct pt_regs')));
    return end <= stackHi && stackHi - end <= ptRegs;
  }

  private readonly codeCache = new Map<bigint, Uint8Array | undefined>();

  /**
   * The call instruction a return address follows: its direct target (call rel32), null for an
   * indirect call (call *reg, call *mem: ff /2, whatever its addressing), undefined when the
   * bytes before it are no call. (Retpoline sites patched to call *%reg keep their nops after
   * the call: the return address then follows the ff /2 itself.)
   */
  private async callSite(ret: bigint): Promise<{ target: bigint | null } | undefined> {
    if (!this.codeCache.has(ret)) this.codeCache.set(ret, await this.kernel.reader.read(ret - 7n, 7).catch(() => undefined));
    const code = this.codeCache.get(ret);
    if (!code) return undefined;
    // code[7 - n] is the byte n before the return address.
    if (code[2] === 0xe8) return { target: BigInt.asUintN(64, ret + BigInt(new DataView(code.buffer, code.byteOffset + 3, 4).getInt32(0, true))) };
    for (let length = 2; length <= 7; length++) {
      const op = 7 - length;
      if (code[op] !== 0xff) continue;
      const modrm = code[op + 1];
      if (((modrm >> 3) & 7) !== 2) continue;
      const mod = modrm >> 6;
      const rm = modrm & 7;
      const sib = mod !== 3 && rm === 4 ? 1 : 0;
      const disp = mod === 1 ? 1 : mod === 2 ? 4 : mod === 0 && rm === 5 ? 4 : mod === 0 && sib && (code[op + 2] & 7) === 5 ? 4 : 0;
      if (2 + sib + disp === length) return { target: null };
    }
    return undefined;
  }

  /**
   * How many frames, from the top, each follow a call to the frame above (the first: a call of
   * any function). A direct call's target must be the start of the function the frame above
   * runs in, or a part of it (`f` for `f.cold`, `f.part.0`), or a thunk that jumps there (a
   * static call's trampoline). A frame after an interrupt's pt_regs is the interrupted
   * instruction itself, not checked; the one below it returns into the interrupted function.
   */
  private async linkedFrames(frames: readonly StackFrame[]): Promise<number> {
    for (let i = 0; i < frames.length; i++) {
      const interrupted = i > 0 && ['regs', 'regs_partial'].includes(this.orc.find(frames[i - 1].address - 1n)?.type ?? '');
      // The bottom of a stack is entered with a pushed return address, not a call (head_64.S's
      // lretq into start_secondary); its ORC entry marks the end.
      if (interrupted || (i === frames.length - 1 && this.orc.find(frames[i].address - 1n)?.type === 'end')) continue;
      const site = await this.callSite(frames[i].address);
      if (!site) return i;
      if (i === 0 || site.target === null) continue;
      const aboveInterrupted = i > 1 && ['regs', 'regs_partial'].includes(this.orc.find(frames[i - 2].address - 1n)?.type ?? '');
      const callee = frames[i - 1].address - (aboveInterrupted ? 0n : 1n);
      if (!(await this.calls(site.target, callee))) return i;
    }
    return frames.length;
  }

  /** Whether a call to target lands in the function that contains address. */
  private async calls(target: bigint, address: bigint): Promise<boolean> {
    const fn = this.symbolizer.start(address);
    if (fn === undefined) return false;
    if (target === fn) return true;
    const name = (a: bigint): string => this.symbolizer.describe(a, false).symbol.split('+')[0];
    // An indirect call through a retpoline: call __x86_indirect_thunk_rax (and its call/jump thunk kin).
    if (name(target).startsWith('__x86_indirect_')) return true;
    if (this.symbolizer.start(target) === target && name(fn).startsWith(name(target) + '.')) return true;
    // Tail calls: the called function jumps to it (a static call's trampoline; x64_sys_call's
    // `jmp __x64_sys_write`), or jumps to a small function that does (`__x64_sys_write` jumps on
    // to ksys_write).
    const first = await this.tailCalls(target);
    if (first === 'indirect' || first.includes(fn)) return true;
    const small = first.filter((f) => this.functionSize(f) <= MAX_WRAPPER_BYTES);
    await this.kernel.reader.prefetch(small.map((f) => ({ address: f, length: this.functionSize(f) })));
    for (const f of small) {
      const next = await this.tailCalls(f);
      if (next === 'indirect' || next.includes(fn)) return true;
    }
    return false;
  }

  private functionSize(start: bigint): number {
    const m = /\/0x([0-9a-f]+)$/.exec(this.symbolizer.describe(start, false).symbol);
    return m ? Number.parseInt(m[1], 16) : 0;
  }

  private readonly jumpCache = new Map<bigint, bigint[] | 'indirect'>();

  /**
   * The functions a function jumps to with jmp rel32 (e9: a tail call; its own body's jumps land
   * inside it and are left out), found by scanning its bytes: a byte e9 that is not an opcode
   * only gives a destination at a function's very start by chance. 'indirect' when it has an
   * indirect tail call (jmp to a retpoline thunk, or jmp *%reg: ff e0-e7), which may reach any.
   */
  private async tailCalls(start: bigint): Promise<bigint[] | 'indirect'> {
    const cached = this.jumpCache.get(start);
    if (cached) return cached;
    const size = Math.min(this.functionSize(start), MAX_FUNCTION_SCAN);
    const code = size > 0 ? await this.kernel.reader.read(start, size).catch(() => undefined) : undefined;
    const out = new Set<bigint>();
    if (code) {
      const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
      for (let i = 0; i + 5 <= code.length; i++) {
        if (code[i] !== 0xe9) continue;
        const dest = BigInt.asUintN(64, start + BigInt(i + 5 + view.getInt32(i + 1, true)));
        if (dest !== start && this.symbolizer.start(dest) === dest) out.add(dest);
      }
    }
    const indirect = [...out].some((d) => this.symbolizer.describe(d, false).symbol.startsWith('__x86_indirect_')) || (code !== undefined && code.some((b, i) => b === 0xff && i + 1 < code.length && code[i + 1] >= 0xe0 && code[i + 1] <= 0xe7));
    const list = indirect ? 'indirect' : [...out];
    this.jumpCache.set(start, list);
    return list;
  }
}

class UnwindStop extends Error {}

interface StartState {
  ip: bigint;
  sp: bigint;
  bp: bigint;
  exact: boolean;
}

/** Stack traces of the tasks with these pids (threads included). Unknown pids are an error naming them. */
export async function stackTraces(model: KernelModel, pids: number[], options: { includeScheduler?: boolean } = {}): Promise<StackTrace[]> {
  // One walk for every pid asked for; pid 0 is init_task (the first idle task), as findTask has it.
  const wanted = new Set(pids);
  const found = new Map<number, TaskRecord>();
  for await (const { record } of forEachTask(model, { threads: true, idle: true })) {
    if (wanted.has(record.pid) && !found.has(record.pid)) found.set(record.pid, record);
  }
  const missing = pids.filter((p) => !found.has(p));
  if (missing.length) throw new ObjectError(`no task with pid ${missing.join(', ')} on the target`);
  const ctx = await StackContext.create(model);
  const out: StackTrace[] = [];
  for (const pid of pids) out.push(await ctx.trace(found.get(pid)!, options));
  return out;
}

export interface BlockedGroup {
  frames: StackFrame[];
  note?: string;
  tasks: { pid: number; comm: string }[];
}

export interface BlockedReport {
  /** Tasks in D, grouped by identical stacks, largest group first. */
  groups: BlockedGroup[];
  /** Each CPU's current task (rq->curr), its stack inferred (on a CPU) or unwound if it is switched out. */
  cpus: ({ cpu: number } & StackTrace)[];
}

/** Every task in uninterruptible sleep (D), grouped by identical stacks, and each CPU's current task. */
export async function blockedTasks(model: KernelModel, options: { includeScheduler?: boolean } = {}): Promise<BlockedReport> {
  const { tasks } = await listTasks(model, { threads: true, idle: true });
  const ctx = await StackContext.create(model);
  const groups = new Map<string, BlockedGroup>();
  for (const t of tasks.filter((x) => x.state === 'D')) {
    const trace = await ctx.trace(t, options);
    const key = trace.frames.map((f) => f.symbol + (f.module ?? '')).join('|') + '#' + (trace.note ?? '');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { frames: trace.frames, ...(trace.note ? { note: trace.note } : {}), tasks: [] }));
    g.tasks.push({ pid: t.pid, comm: t.comm });
  }
  const cpus: BlockedReport['cpus'] = [];
  const byAddress = new Map(tasks.map((t) => [t.taskAddress, t]));
  const runqueues = ctx.kernel.variable('runqueues');
  for (let cpu = 0; cpu < (await ctx.kernel.cpuCount()); cpu++) {
    const curr = await (await (await ctx.kernel.perCpu(runqueues, cpu)).member('curr')).readInt();
    const task = byAddress.get(curr);
    if (!task) throw new ObjectError(`CPU ${cpu}: rq->curr ${hex(curr)} is no task of the target's task list`);
    cpus.push({ cpu, ...(await ctx.trace(task, options)) });
  }
  return { groups: [...groups.values()].sort((a, b) => b.tasks.length - a.tasks.length), cpus };
}

/** One frame as /proc/<pid>/stack prints it (without the `[<0>] ` prefix). */
export function frameText(f: StackFrame): string {
  return f.module ? `${f.symbol} [${f.module}]` : f.symbol;
}
