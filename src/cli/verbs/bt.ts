// grass bt: kernel stack traces of tasks, unwound from memory with the kernel's ORC tables.
import { blockedTasks, frameText, stackTraces, type StackFrame, type StackTrace } from '../../kernel/stacks/stacks';
import type { CliCommand } from '../command';
import { modelFromSession } from './kernel-target';
import { hex, parseTargetArgs, printJson, targetFlagsUsage, withTarget } from './target-flags';

const usage = `usage: grass bt --target ADDR [--key-file F] (PID... | --blocked) [--all-frames] [--json]

Kernel stack traces read from the target's memory. A sleeping task is unwound from the
registers it saved when it was switched out, with the kernel's own ORC tables (vmlinux and
modules); frames print as /proc/PID/stack does: symbol+offset/size [module]. A task running on
a CPU is marked "best effort": its stack is scanned for kernel text addresses. A trace that
cannot be completed (corrupt stack) ends with a note.
--blocked: every task in D state, grouped by identical stacks, then each CPU's current task.
--json: {"traces":[{pid,comm,state,taskAddress,method,frames:[{address,symbol,module?,scheduler}],note?}]}
        or with --blocked {"groups":[{frames,note?,tasks:[{pid,comm}]}],"cpus":[{cpu,...trace}]}.

${targetFlagsUsage}
  --blocked          all tasks in uninterruptible sleep, grouped by stack
  --all-frames       keep the scheduler's own frames (__schedule, schedule, ...)
`;

const frameJson = (f: StackFrame) => ({ ...f, address: hex(f.address) });
const traceJson = <T extends StackTrace>(t: T) => ({ ...t, taskAddress: hex(t.taskAddress), frames: t.frames.map(frameJson) });

function printTrace(t: StackTrace, prefix: string): void {
  process.stdout.write(`${prefix}pid ${t.pid} (${t.comm}) state ${t.state}${t.method === 'scan' ? ' [on a CPU: best-effort scan]' : ''}\n`);
  for (const f of t.frames) process.stdout.write(`  ${frameText(f)}\n`);
  if (t.note) process.stdout.write(`  [${t.note}]\n`);
}

export const btCommand: CliCommand = {
  name: 'bt',
  summary: 'kernel stack traces of tasks (or all blocked tasks), from memory',
  usage,
  async run(argv) {
    const { flags, values, positionals } = parseTargetArgs('bt', argv, { blocked: { type: 'boolean', default: false }, 'all-frames': { type: 'boolean', default: false } }, true);
    const pids = positionals.map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n) || n < 0) throw new Error(`bt: '${p}' is not a pid`);
      return n;
    });
    if (values.blocked !== true && pids.length === 0) throw new Error('bt: name a PID or --blocked');
    const options = { includeScheduler: values['all-frames'] === true };
    return withTarget('bt', flags, async (session) => {
      const model = await modelFromSession(session);
      if (values.blocked === true) {
        const { groups, cpus } = await blockedTasks(model, options);
        if (flags.json) {
          printJson({ groups: groups.map((g) => ({ ...g, frames: g.frames.map(frameJson) })), cpus: cpus.map(traceJson) });
          return 0;
        }
        if (groups.length === 0) process.stdout.write('no task in D state\n');
        for (const g of groups) {
          process.stdout.write(`${g.tasks.length} task(s) in D: ${g.tasks.map((t) => `${t.pid} (${t.comm})`).join(', ')}\n`);
          for (const f of g.frames) process.stdout.write(`  ${frameText(f)}\n`);
          if (g.note) process.stdout.write(`  [${g.note}]\n`);
          process.stdout.write('\n');
        }
        for (const c of cpus) printTrace(c, `CPU ${c.cpu}: `);
        return 0;
      }
      const traces = await stackTraces(model, pids, options);
      if (flags.json) {
        printJson({ traces: traces.map(traceJson) });
        return 0;
      }
      for (const t of traces) printTrace(t, '');
      return 0;
    });
  },
};
