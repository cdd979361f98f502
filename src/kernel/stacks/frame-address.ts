// Where a frame of a call trace as the kernel prints it lies: `sysrq_handle_crash+0x16/0x20`,
// `pvpanic_panic_notify+0x60/0x90 [pvpanic]` (%pB: the function, the offset of the return
// address in it, the function's size, its module). A name may be several functions' (static
// functions of one name in two files): the one of the printed size is meant.
import type { KernelModel } from '../model';
import type { LoadedModule } from '../modules/modules';
import { ObjectError } from '../objects/object';
import { StackSymbolizer } from './stacks';

export interface PrintedFrame {
  name: string;
  offset: bigint;
  size: bigint;
  module?: string;
  /** Printed with a leading `? ` (the kernel's unwinder could not vouch for it). */
  unreliable: boolean;
}

const FRAME = /^(\?\s+)?([A-Za-z_.$][\w.$]*)\+0x([0-9a-f]+)\/0x([0-9a-f]+)(?: \[([\w-]+)\])?$/;

/** A printed frame's parts; undefined for a line that is no frame ("<TASK>", registers). */
export function parseFrame(line: string): PrintedFrame | undefined {
  const m = FRAME.exec(line.trim());
  if (!m) return undefined;
  return { name: m[2], offset: BigInt(`0x${m[3]}`), size: BigInt(`0x${m[4]}`), ...(m[5] ? { module: m[5] } : {}), unreliable: m[1] !== undefined };
}

/** Resolves printed frames against the target's symbols (vmlinux's and its modules'). */
export class FrameResolver {
  private readonly symbolizer: StackSymbolizer;

  constructor(
    private readonly model: KernelModel,
    private readonly modules: readonly LoadedModule[],
  ) {
    this.symbolizer = new StackSymbolizer(model, modules);
  }

  /** The address a printed frame names (its function's start + the offset); a named error when none matches. */
  address(text: string): bigint {
    const frame = parseFrame(text);
    if (!frame) throw new ObjectError(`'${text}' is not a frame as the kernel prints one (function+0xOFFSET/0xSIZE [module])`);
    let starts: bigint[];
    if (frame.module) {
      const mod = this.modules.find((m) => m.name === frame.module);
      if (!mod) throw new ObjectError(`no module ${frame.module} is loaded on the target`);
      starts = mod.symbols.filter((s) => s.name === frame.name && s.type !== 'U').map((s) => s.address);
    } else {
      starts = (this.model.description?.symbols ?? []).filter((s) => s.name === frame.name).map((s) => s.address);
    }
    const sized = starts.find((a) => this.symbolizer.describe(a, false).symbol === `${frame.name}+0x0/0x${frame.size.toString(16)}`);
    if (sized === undefined) throw new ObjectError(`no function ${frame.name}${frame.module ? ` in module ${frame.module}` : ''} of size 0x${frame.size.toString(16)} on the target (${starts.length} of that name)`);
    return sized + frame.offset;
  }
}
