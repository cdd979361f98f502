import type { CliCommand } from '../command';
import { Btf, BtfError } from '../../kernel/btf/btf';
import { allTypesJson, formatType, lookupTypeName, typeJson } from '../../kernel/btf/describe';
import { loadBtfFile } from '../../kernel/btf/load';
import { parseArgs } from 'node:util';
import { modelFromSession } from './kernel-target';
import { parseTargetArgs, printJson, targetFlagsUsage, withTarget } from './target-flags';

const usage = `usage: grass btf [TYPE...] (--btf FILE [--base FILE] | --target ADDR --key-file F) [--json]

Types of a kernel from its BTF, offline from a file or from a target's description.
  TYPE            'task_struct', 'struct list_head', 'union thread_union', 'enum pid_type',
                  a typedef name, or '#ID' for a type id; printed pahole-style
  --json          the named types as JSON; with no TYPE, every type of the BTF:
                  {"source", "typeCount", "types": [{id, kind, name, ...}]}; struct and union
                  members carry name, typeId, type, offset, bitsOffset, bitfieldSize, size
  --btf FILE      raw BTF (/sys/kernel/btf/vmlinux), an ELF with .BTF (vmlinux, a module .ko),
                  or a compressed bzImage (/boot/vmlinuz-*: gzip, xz, zstd)
  --base FILE     the vmlinux BTF that a module's split BTF (--btf module.ko) extends
${targetFlagsUsage}
With no TYPE and no --json, prints how many types of each kind the BTF holds.
`;

function resolveTypeArg(btf: Btf, arg: string): number[] {
  const byId = /^#(\d+)$/.exec(arg);
  if (byId) {
    const id = Number(byId[1]);
    btf.type(id);
    return [id];
  }
  return lookupTypeName(btf, arg);
}

export const btfCommand: CliCommand = {
  name: 'btf',
  summary: 'print kernel types from BTF (pahole-like, or --json)',
  usage,
  async run(argv) {
    const own = { btf: { type: 'string' }, base: { type: 'string' } } as const;
    const offline = parseArgs({ args: argv, options: { ...own, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: false });
    if (typeof offline.values.btf === 'string') {
      const { values, positionals } = parseArgs({ args: argv, options: { ...own, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
      const file = values.btf as string;
      try {
        const baseBtf = values.base ? (await loadBtfFile(values.base as string)).btf : undefined;
        const { btf } = await loadBtfFile(file, { base: baseBtf });
        return printTypes(btf, file, positionals, values.json === true);
      } catch (err) {
        if (err instanceof BtfError) {
          process.stderr.write(`grass btf: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    }
    const { flags, positionals } = parseTargetArgs('btf', argv, {}, true);
    return withTarget('btf', flags, async (session) => {
      const model = await modelFromSession(session);
      return printTypes(model.btf, flags.target, positionals, flags.json);
    });
  },
};

function printTypes(btf: Btf, source: string, names: string[], json: boolean): number {
  if (names.length === 0) {
    if (json) {
      printJson({ source, typeCount: btf.typeCount, types: allTypesJson(btf) });
    } else {
      const counts = new Map<string, number>();
      for (const id of btf.ids()) counts.set(btf.kindOf(id), (counts.get(btf.kindOf(id)) ?? 0) + 1);
      process.stdout.write(`${source}: ${btf.typeCount - 1} types\n`);
      for (const [kind, n] of [...counts].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${kind.padEnd(10)} ${n}\n`);
    }
    return 0;
  }
  const found: number[] = [];
  for (const arg of names) {
    const ids = resolveTypeArg(btf, arg);
    if (ids.length === 0) {
      process.stderr.write(`grass btf: no type named '${arg}' in ${source}\n`);
      return 1;
    }
    found.push(...ids);
  }
  if (json) printJson({ source, types: found.map((id) => typeJson(btf, id)) });
  else process.stdout.write(found.map((id) => formatType(btf, id)).join('\n\n') + '\n');
  return 0;
}
