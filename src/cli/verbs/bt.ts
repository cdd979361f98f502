// grass bt: kernel stack traces of tasks, unwound from memory with the kernel's ORC tables.
import { blockedTasks, frameText, stackTraces, type StackFrame, type StackTrace } from '../../kernel/stacks/stacks';
import type { CliCommand } from '../command';
import { modelFromSession } from './kernel-target';
import { hex, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass bt --target ADDR [--key-file F] (PID... | --blocked) [--all-frames] [--json]

Kernel stack traces read from the target's memory. A sleeping task is unwound from the
registers it saved when it was switched out, with the kernel's own ORC tables (vmlinux and
modules); frames print as /proc/PID/stack does: symbol+offset/size [module]. A task running on
a CPU of a kernel that crashed into kdump is unwound from the registers the kernel saved for
the dump (crash_notes: the panicking CPU's, and the others' from the NMI that stopped them);
on any other kernel it is inferred (method "inferred"): the chain of return addresses on its
stack that ORC-unwinds to the stack's end with each frame called by the one above it (stale
return addresses and the running function itself left out). A trace that cannot be completed
(corrupt stack) ends with a note.
--blocked: every task in D state, grouped by identical stacks, then each CPU's current task.
--json: {"traces":[{pid,comm,state,taskAddress,method,registers?,frames:[{address,symbol,module?,scheduler}],note?}]}
        (registers: "crash_notes" when unwound from the registers saved for kdump)
        or with --blocked {"groups":[{frames,note?,tasks:[{pid,comm}]}],"cpus":[{cpu,...trace}]}.

${targetFlagsUsage}
  --blocked          all tasks in uninterruptible sleep, grouped by stack
  --all-frames       keep the scheduler's own frames (__schedule, schedule, ...)
`;

const frameJson = (f: StackFrame) => ({ ...f, address: hex(f.address) });
const traceJson = <T extends StackTrace>(t: T) => ({ ...t, taskAddress: hex(t.taskAddress), frames: t.frames.map(frameJson) });

function traceLines(t: StackTrace, prefix: string): string[] {
  return [
    `${prefix}pid ${t.pid} (${t.comm}) state ${t.state}${t.method === 'inferred' ? ' [on a CPU: inferred from its stack]' : t.registers === 'crash_notes' ? ' [on a CPU at the crash: from the registers the kernel saved for kdump]' : ''}`,
    ...t.frames.map((f) => `  ${frameText(f)}`),
    ...(t.note ? [`  [${t.note}]`] : []),
  ];
}

export const btCommand: CliCommand = targetVerb({
  name: 'bt',
  summary: 'kernel stack traces of tasks (or all blocked tasks), from memory',
  usage,
  options: { blocked: { type: 'boolean', default: false }, 'all-frames': { type: 'boolean', default: false } },
  positionals: true,
  prepare({ values, positionals }) {
    const pids = positionals.map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n) || n < 0) throw new Error(`bt: '${p}' is not a pid`);
      return n;
    });
    if (values.blocked !== true && pids.length === 0) throw new Error('bt: name a PID or --blocked');
    return { pids, blocked: values.blocked === true, options: { includeScheduler: values['all-frames'] === true } };
  },
  async run(session, { pids, blocked, options }) {
    const model = await modelFromSession(session);
    if (blocked) {
      const { groups, cpus } = await blockedTasks(model, options);
      return {
        json: { groups: groups.map((g) => ({ ...g, frames: g.frames.map(frameJson) })), cpus: cpus.map(traceJson) },
        text: () => [
          ...(groups.length === 0 ? ['no task in D state'] : []),
          ...groups.flatMap((g) => [
            `${g.tasks.length} task(s) in D: ${g.tasks.map((t) => `${t.pid} (${t.comm})`).join(', ')}`,
            ...g.frames.map((f) => `  ${frameText(f)}`),
            ...(g.note ? [`  [${g.note}]`] : []),
            '',
          ]),
          ...cpus.flatMap((c) => traceLines(c, `CPU ${c.cpu}: `)),
        ],
      };
    }
    const traces = await stackTraces(model, pids, options);
    return { json: { traces: traces.map(traceJson) }, text: () => traces.flatMap((t) => traceLines(t, '')) };
  },
});
