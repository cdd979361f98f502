// Decoding an object into a JSON-able value tree: what the struct decoder webview shows and
// `grass decode --json` prints. The object's bytes are fetched in one batch; a member whose
// bytes are unreadable gets an `error` and the rest of the tree is still decoded.

import type { Btf } from '../btf/btf';
import type { BtfEnum } from '../btf/types';
import type { PointerInfo, ValueNode } from '../../types/decoded-value';
import { TargetReadError } from '../../types/target';
import type { KernelModel } from '../model';
import { evaluate } from './expression';
import { extractBits, hex, Kernel, type KObject, littleEndianInt } from './object';

export interface DecodeOptions {
  /** Array elements shown per array (default 256). */
  maxElements?: number;
  /** Nesting depth of structs/arrays decoded (default 32). */
  maxDepth?: number;
}

const FLOAT = (b: Uint8Array): number => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return b.length === 4 ? v.getFloat32(0, true) : b.length === 8 ? v.getFloat64(0, true) : NaN;
};

const jsonInt = (v: bigint): number | string => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

function hexOf(v: bigint, size: number): string {
  return hex(v < 0n ? BigInt.asUintN(size * 8, v) : v);
}

/** Enumerator names for a value: exact match, else an OR of single-bit flags, else undefined. */
export function enumName(t: BtfEnum, value: bigint): string | undefined {
  const exact = t.values.find((e) => e.value === value);
  if (exact) return exact.name;
  if (value <= 0n) return undefined;
  const flags = t.values.filter((e) => e.value > 0n && (e.value & (e.value - 1n)) === 0n && (value & e.value) === e.value);
  const covered = flags.reduce((acc, e) => acc | e.value, 0n);
  return covered === value && flags.length > 1 ? flags.map((e) => e.name).join('|') : undefined;
}

class Decoder {
  private readonly btf: Btf;
  private readonly maxElements: number;
  private readonly maxDepth: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly rootAddress: bigint,
    options: DecodeOptions,
  ) {
    this.btf = kernel.btf;
    this.maxElements = options.maxElements ?? 256;
    this.maxDepth = options.maxDepth ?? 32;
  }

  node(name: string, typeId: number, offset: number, depth: number, bits?: { bitOffset: number; bitSize: number }): ValueNode {
    const btf = this.btf;
    const t = btf.resolve(typeId);
    const address = this.rootAddress + BigInt(offset);
    let size = 0;
    try {
      size = btf.sizeof(typeId);
    } catch {
      size = 0;
    }
    const n: ValueNode = { name, type: btf.typeName(typeId), typeId, kind: t.kind, offset, size, address: hex(address) };
    if (bits) {
      n.bitOffset = bits.bitOffset;
      n.bitSize = bits.bitSize;
    }
    if (depth > this.maxDepth) {
      n.error = `nested deeper than ${this.maxDepth}`;
      return n;
    }
    try {
      switch (t.kind) {
        case 'struct':
        case 'union':
          n.children = t.members.map((m) => {
            const memberOffset = offset + Math.floor(m.bitsOffset / 8);
            const mb = m.bitfieldSize > 0 ? { bitOffset: m.bitsOffset % 8, bitSize: m.bitfieldSize } : undefined;
            return this.node(m.name || '(anonymous)', m.type, memberOffset, depth + 1, mb);
          });
          break;
        case 'array': {
          n.length = t.nelems;
          const elem = btf.resolve(t.type);
          const elemSize = t.nelems > 0 ? btf.sizeof(t.type) : 0;
          if (elem.kind === 'int' && elem.size === 1 && (elem.char || /char/.test(elem.name))) {
            const b = this.bytes(offset, size);
            const nul = b.indexOf(0);
            n.value = new TextDecoder('utf-8', { fatal: false }).decode(nul >= 0 ? b.subarray(0, nul) : b);
            break;
          }
          const shown = Math.min(t.nelems, this.maxElements);
          n.children = [];
          for (let i = 0; i < shown; i++) n.children.push(this.node(`[${i}]`, t.type, offset + i * elemSize, depth + 1));
          if (t.nelems > shown) n.omitted = t.nelems - shown;
          break;
        }
        case 'int': {
          let v: bigint;
          if (bits) {
            const span = Math.ceil((bits.bitOffset + bits.bitSize) / 8);
            v = extractBits(this.bytes(offset, span), bits.bitOffset, bits.bitSize);
            if (t.signed) v = BigInt.asIntN(bits.bitSize, v);
          } else {
            v = littleEndianInt(this.bytes(offset, t.size));
            if (t.signed) v = BigInt.asIntN(t.size * 8, v);
          }
          n.value = t.bool ? v !== 0n : jsonInt(v);
          n.hex = hexOf(v, t.size);
          break;
        }
        case 'enum':
        case 'enum64': {
          let v: bigint;
          if (bits) {
            const span = Math.ceil((bits.bitOffset + bits.bitSize) / 8);
            v = extractBits(this.bytes(offset, span), bits.bitOffset, bits.bitSize);
          } else {
            v = littleEndianInt(this.bytes(offset, t.size));
          }
          if (t.signed) v = BigInt.asIntN((bits?.bitSize ?? t.size * 8), v);
          n.value = enumName(t, v) ?? jsonInt(v);
          n.numeric = v.toString();
          n.hex = hexOf(v, t.size);
          break;
        }
        case 'ptr': {
          const v = littleEndianInt(this.bytes(offset, btf.pointerSize));
          n.value = hex(v);
          n.pointer = pointerInfo(this.kernel, t.type, v);
          break;
        }
        case 'float':
          n.value = FLOAT(this.bytes(offset, t.size));
          break;
        default:
          n.error = `cannot decode a value of kind ${t.kind}`;
      }
    } catch (err) {
      n.error = err instanceof Error ? err.message : String(err);
    }
    return n;
  }

  private bytes(offset: number, length: number): Uint8Array {
    return this.kernel.reader.cached(this.rootAddress + BigInt(offset), length);
  }
}

function pointerInfo(kernel: Kernel, targetType: number, v: bigint): PointerInfo {
  const info: PointerInfo = { address: hex(v), isNull: v === 0n, target: kernel.btf.typeName(targetType) };
  if (v !== 0n) {
    const symbol = kernel.symbols.describe(v);
    if (symbol) info.symbol = symbol;
  }
  return info;
}

/** Decodes an object (in memory, or a value such as `&init_task`) into a value tree. */
export async function decodeObject(obj: KObject, options: DecodeOptions = {}): Promise<ValueNode> {
  const kernel = obj.kernel;
  const btf = kernel.btf;
  if (obj.address === undefined || obj.bitSize > 0) {
    const v = await obj.readInt();
    const t = obj.resolved;
    const n: ValueNode = { name: obj.expression, type: obj.typeName, typeId: obj.typeId, kind: t.kind, offset: 0, size: obj.size };
    if (t.kind === 'ptr') {
      n.value = hex(v);
      n.pointer = pointerInfo(kernel, t.type, v);
    } else if (t.kind === 'enum' || t.kind === 'enum64') {
      n.value = enumName(t, v) ?? jsonInt(v);
      n.numeric = v.toString();
      n.hex = hexOf(v, t.size);
    } else {
      n.value = t.kind === 'int' && t.bool ? v !== 0n : jsonInt(v);
      n.hex = hexOf(v, obj.size);
    }
    if (obj.address !== undefined) n.address = hex(obj.address);
    return n;
  }
  const t = obj.resolved;
  if (t.kind === 'void') throw obj.fail('has no type: cast it, e.g. *(struct task_struct *)&symbol');
  const size = btf.sizeof(obj.typeId);
  await kernel.reader.prefetch([{ address: obj.address, length: size }]);
  const root = new Decoder(kernel, obj.address, options).node(obj.expression, obj.typeId, 0, 0);
  if (root.error === undefined && !kernel.reader.has(obj.address, size)) {
    // Some lines failed: say so at the root too; the failing members carry their own errors.
    root.error = new TargetReadError({ kind: 'kernel' }, obj.address, size, 'part of the object is unreadable').message;
  }
  return root;
}

/**
 * One request: evaluate an expression on a fresh read cache and decode what it designates. What
 * the struct decoder view calls to show an object or follow a pointer
 * (`*(struct task_struct *)0x…`, `container_of(…)`, `per_cpu(runqueues, 1)`).
 */
export async function decodeExpression(model: KernelModel, expression: string, options: DecodeOptions = {}): Promise<ValueNode> {
  return decodeObject(await evaluate(new Kernel(model), expression), options);
}

/** Text rendering of a value tree, one member per line, like drgn's print(). */
export function formatValueTree(node: ValueNode, indent = ''): string {
  const bits = node.bitSize !== undefined ? `:${node.bitSize}` : '';
  const label = indent === '' ? `(${node.type})${node.name} =` : `${node.name.startsWith('[') ? node.name : `.${node.name}`}${bits} = (${node.type})`;
  if (node.children) {
    const body = node.children.map((c) => formatValueTree(c, indent + '  ')).join('\n');
    const omitted = node.omitted ? `\n${indent}  ... ${node.omitted} more` : '';
    return `${indent}${label}${indent === '' ? ' ' : ''}{\n${body}${omitted}\n${indent}}`;
  }
  if (node.error !== undefined) return `${indent}${label} <error: ${node.error}>`;
  let value: string;
  if (node.pointer) value = node.pointer.isNull ? 'NULL' : `${node.pointer.address}${node.pointer.symbol ? ` <${node.pointer.symbol}>` : ''}`;
  else if (typeof node.value === 'string' && node.kind === 'array') value = JSON.stringify(node.value);
  else if (node.hex !== undefined && typeof node.value !== 'boolean') value = `${node.value} (${node.hex})`;
  else value = String(node.value);
  return `${indent}${label} ${value}`;
}
