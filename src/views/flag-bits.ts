// A decoded task's flag words named bit by bit, from the kernel's own names only: a BTF enum of
// the bits where the kernel has one, else for the state the table the kernel itself prints
// states from (fs/proc/array.c's task_state_array, in kallsyms); no bit value is written here.
// Where neither names a bit, the row says so.
import type { KernelModel } from '../kernel/model';
import type { ValueNode } from '../types/decoded-value';

const KERNEL = { kind: 'kernel' } as const;
/** Entries of task_state_array read at most (the kernel's has 9 or 10). */
const MAX_STATE_NAMES = 32;
/** A state name as the kernel prints it in /proc/PID/stat's neighbours: `S (sleeping)`. */
const STATE_NAME = /^[A-Za-z] \([^()]+\)$/;

interface BitNames {
  /** The name of the zero value, if the source has one. */
  zero?: string;
  bits: Map<bigint, string>;
}

const isBit = (v: bigint): boolean => v > 0n && (v & (v - 1n)) === 0n;

/** Single-bit enumerators named `prefix…` of a BTF enum that has at least two of them, and no other values. */
function enumBits(model: KernelModel, prefix: string): BitNames | undefined {
  const btf = model.btf;
  for (let id = btf.startId; id < btf.typeCount; id++) {
    const t = btf.type(id);
    if (t.kind !== 'enum' && t.kind !== 'enum64') continue;
    const named = t.values.filter((e) => e.name.startsWith(prefix));
    if (named.length < 2 || named.length !== t.values.length || !named.every((e) => e.value === 0n || isBit(e.value))) continue;
    return { zero: named.find((e) => e.value === 0n)?.name, bits: new Map(named.filter((e) => e.value !== 0n).map((e) => [e.value, e.name])) };
  }
  return undefined;
}

async function cString(model: KernelModel, address: bigint): Promise<string> {
  const bytes = await model.memory.read(KERNEL, address, 32);
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString('latin1');
}

/**
 * task_state_array as the kernel holds it: "R (running)" for 0, then one name per reported
 * state bit from bit 0 up, then the idle state the kernel reports for TASK_IDLE (not a bit:
 * the kernel ties the table's length to ilog2(TASK_REPORT_MAX) + 1, TASK_REPORT_MAX being
 * the synthetic idle index).
 */
async function taskStateArray(model: KernelModel): Promise<BitNames | undefined> {
  const symbol = model.symbols.get('task_state_array');
  if (!symbol) return undefined;
  const pointers = await model.memory.read(KERNEL, symbol.address, 8 * MAX_STATE_NAMES);
  const view = new DataView(pointers.buffer, pointers.byteOffset, pointers.byteLength);
  const names: string[] = [];
  for (let i = 0; i < MAX_STATE_NAMES; i++) {
    const pointer = view.getBigUint64(i * 8, true);
    if (pointer === 0n) break;
    const name = await cString(model, pointer).catch(() => '');
    if (!STATE_NAME.test(name)) break;
    names.push(name);
  }
  if (names.length < 3) return undefined;
  return { zero: names[0], bits: new Map(names.slice(1, -1).map((name, i) => [1n << BigInt(i), name])) };
}

const stateNames = new WeakMap<KernelModel, Promise<{ names?: BitNames; source: string }>>();
const flagNames = new WeakMap<KernelModel, { names?: BitNames; source: string }>();

function stateSource(model: KernelModel): Promise<{ names?: BitNames; source: string }> {
  let found = stateNames.get(model);
  if (!found) {
    const fromEnum = enumBits(model, 'TASK_');
    found = fromEnum
      ? Promise.resolve({ names: fromEnum, source: 'the BTF enum of TASK_* bits' })
      : taskStateArray(model).then(
          (names) => ({ names, source: "the kernel's task_state_array (this kernel's BTF has no enum of TASK_* bits)" }),
          () => ({ source: "this kernel's BTF has no enum of TASK_* bits and task_state_array could not be read" }),
        );
    stateNames.set(model, found);
  }
  return found;
}

function flagSource(model: KernelModel): { names?: BitNames; source: string } {
  let found = flagNames.get(model);
  if (!found) {
    const names = enumBits(model, 'PF_');
    found = names ? { names, source: 'the BTF enum of PF_* bits' } : { source: "this kernel's BTF has no enum of PF_* bits" };
    flagNames.set(model, found);
  }
  return found;
}

function nameBits(value: bigint, source: { names?: BitNames; source: string }): { names: string[]; note?: string } {
  const { names, source: from } = source;
  if (value === 0n) return names?.zero ? { names: [names.zero] } : { names: ['0'], note: `not named: ${from}` };
  const shown: string[] = [];
  const unnamed: string[] = [];
  for (let bit = 1n; bit <= value; bit <<= 1n) {
    if ((value & bit) === 0n) continue;
    const name = names?.bits.get(bit);
    shown.push(name ?? `0x${bit.toString(16)}`);
    if (!name) unnamed.push(`0x${bit.toString(16)}`);
  }
  if (unnamed.length === 0) return { names: shown };
  return { names: shown, note: names ? `${unnamed.join(', ')} not named by ${from}` : `bits not named: ${from}` };
}

function integer(node: ValueNode): bigint | undefined {
  if (typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= 0) return BigInt(node.value);
  if (node.hex !== undefined && /^0x[0-9a-f]+$/i.test(node.hex)) return BigInt(node.hex);
  return undefined;
}

/** Names the bits of every task_struct's `__state` (or older `state`) and `flags` in a decoded tree, in place. */
export async function nameTaskBits(model: KernelModel, node: ValueNode): Promise<void> {
  if (node.type === 'struct task_struct' && node.children) {
    for (const member of node.children) {
      const value = integer(member);
      if (value === undefined) continue;
      if (member.name === '__state' || member.name === 'state') member.bits = nameBits(value, await stateSource(model));
      else if (member.name === 'flags') member.bits = nameBits(value, flagSource(model));
    }
  }
  for (const child of node.children ?? []) await nameTaskBits(model, child);
}
