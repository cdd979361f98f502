import type { CliCommand } from '../command';
import { decodeExpression, formatValueTree } from '../../kernel/objects/decode';
import { modelFromSession } from './kernel-target';
import { printJson, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass decode EXPR --target ADDR [--key-file F] [--max-elements N] [--json]

Evaluates a C-like expression on the target's memory (remote-analysis mode: the agent only
reads ranges; types come from the target's BTF) and decodes the object to a value tree.
  EXPR   init_task, init_task.tasks.next, *(struct task_struct *)0xffff888003a1c000,
         per_cpu(runqueues, 1).nr_running, &init_task, init_task.comm[0],
         container_of(init_task.tasks.next, struct task_struct, tasks)->pid
--json prints the tree: each node {name, type, typeId, kind, offset, size, address,
[bitOffset, bitSize], value, hex, numeric, pointer {address, isNull, symbol, target},
length, omitted, children, error}; integers are numbers (decimal strings beyond 2^53).
Exit status 1 when (part of) the object is unreadable; the tree is printed all the same, each
unreadable member carrying its error.

${targetFlagsUsage}
  --max-elements N   array elements shown per array (default 256)
`;

export const decodeCommand: CliCommand = targetVerb({
  name: 'decode',
  summary: 'decode a kernel object or expression to a value tree (BTF-typed)',
  usage,
  options: { 'max-elements': { type: 'string' } },
  positionals: true,
  prepare({ values, positionals }) {
    if (positionals.length !== 1) throw new Error('decode: give exactly one expression (quote it)');
    const maxElements = values['max-elements'] === undefined ? undefined : Number(values['max-elements']);
    if (maxElements !== undefined && (!Number.isInteger(maxElements) || maxElements < 0)) throw new Error('decode: --max-elements must be a whole number');
    return { expression: positionals[0], maxElements };
  },
  async run(session, { expression, maxElements }, flags) {
    const tree = await decodeExpression(await modelFromSession(session), expression, { maxElements });
    if (flags.json) printJson(tree);
    else process.stdout.write(formatValueTree(tree) + '\n');
    // The tree is printed either way (what was readable is kept); the status says it is partial.
    if (tree.error !== undefined) {
      process.stderr.write(`grass decode: ${tree.error}\n`);
      return 1;
    }
    return 0;
  },
});
