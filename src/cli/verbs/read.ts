// grass read: raw target memory, kernel-virtual by default, physical with --phys, a process's
// user addresses with --pid; printed as a hex dump, or saved raw with --out.
import { writeFileSync } from 'node:fs';
import type { AddressSpace } from '../../types/target';
import type { GrassClient } from '../../rdma/client';
import type { CliCommand } from '../command';
import { KernelModel } from '../../kernel/model';
import { expressionAddress } from '../../kernel/objects/expression';
import { Kernel } from '../../kernel/objects/object';
import { hex, printJson, targetFlagsUsage, targetVerb } from './target-flags';

const MAX_READ_BYTES = 1 << 30;

const usage = `usage: grass read ADDR LEN --target ADDR [--key-file F] [--phys | --pid P] [--out FILE] [--json]

ADDR is a number (0x… hex or decimal) or a kernel symbol, optionally SYMBOL+OFFSET, or an
expression of grass decode ('init_task.comm', 'per_cpu(runqueues, 1)', '*init_task.mm'),
typed from the target's BTF: an object's address, or a pointer's value.
Kernel-virtual by default; --phys for physical, --pid P for process P's user addresses.

${targetFlagsUsage}
  --phys             ADDR is a physical address
  --pid P            ADDR is a user address of process P
  --out FILE         write the raw bytes to FILE instead of a hex dump
`;

export function parseNumber(text: string, what: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) throw new Error(`read: ${what} '${text}' is not a number`);
  return BigInt(text);
}

/** A number, or SYMBOL[+OFFSET] looked up in the target's kallsyms. */
async function resolveAddress(text: string, client: GrassClient): Promise<{ address: bigint; symbol?: string }> {
  if (/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) return { address: BigInt(text) };
  const m = /^([A-Za-z_.$][\w.$]*)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(text);
  const viaExpression = async (): Promise<{ address: bigint; symbol: string }> => {
    const kernel = new Kernel(KernelModel.fromDescription(await client.describe(), client));
    return { address: (await expressionAddress(kernel, text)).address, symbol: text };
  };
  if (!m) return viaExpression();
  const { symbols } = await client.describe();
  const symbol = symbols.find((s) => s.name === m[1]);
  if (!symbol && m[2] === undefined && m[1].includes('.')) return viaExpression();
  if (!symbol) throw new Error(`read: no symbol '${m[1]}' in the target's kallsyms (${symbols.length} symbols)`);
  return { address: symbol.address + (m[2] ? BigInt(m[2]) : 0n), symbol: text };
}

export function hexDump(address: bigint, bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hexBytes = [...row].map((b, i) => b.toString(16).padStart(2, '0') + (i === 7 ? ' ' : '')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${(address + BigInt(at)).toString(16).padStart(16, '0')}  ${hexBytes.padEnd(49)} |${ascii}|`);
  }
  return lines.join('\n') + '\n';
}

export const readCommand: CliCommand = targetVerb({
  name: 'read',
  summary: 'read target memory (kernel-virtual, physical or a process\'s) as a hex dump',
  usage,
  options: { phys: { type: 'boolean', default: false }, pid: { type: 'string' }, out: { type: 'string' } },
  positionals: true,
  prepare({ values, positionals }) {
    if (positionals.length !== 2) throw new Error('read: expected ADDR LEN (see grass read --help)');
    const length = parseNumber(positionals[1], 'length');
    if (length <= 0n || length > BigInt(MAX_READ_BYTES)) throw new Error(`read: length must be between 1 and ${MAX_READ_BYTES}`);
    if (values.phys && values.pid !== undefined) throw new Error('read: --phys and --pid exclude each other');
    const space: AddressSpace = values.phys ? { kind: 'physical' } : values.pid !== undefined ? { kind: 'user', pid: Number(parseNumber(values.pid as string, 'pid')) } : { kind: 'kernel' };
    return { addressText: positionals[0], length: Number(length), space, out: values.out as string | undefined };
  },
  async run({ client }, { addressText, length, space, out }, flags) {
    const { address, symbol } = await resolveAddress(addressText, client);
    const bytes = await client.read(space, address, length);
    if (out) writeFileSync(out, bytes);
    if (flags.json) {
      printJson({ space: space.kind, ...(space.kind === 'user' ? { pid: space.pid } : {}), address: hex(address), ...(symbol ? { symbol } : {}), length: bytes.length, ...(out ? { out } : { hex: Buffer.from(bytes).toString('hex') }) });
    } else if (out) {
      process.stderr.write(`read: ${bytes.length} bytes at ${hex(address)} written to ${out}\n`);
    } else {
      process.stdout.write(hexDump(address, bytes));
    }
    return 0;
  },
});
