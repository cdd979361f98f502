// grass ps: the target's tasks as the agent walks them (DESIGN §6 JSON shape).
import type { CliCommand } from '../command';
import { remoteAnalysisProcessList } from './kernel-target';
import { targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass ps --target ADDR [--key-file F] [--threads] [--idle] [--remote-analysis] [--json]

Lists thread-group leaders (every thread with --threads; the per-CPU idle tasks, pid 0, with
--idle). --json prints {"tasks":[{pid,tgid,ppid,comm,state,cpu,utimeNs,stimeNs,rssBytes,threads}]}
with state one of R S D T t Z X I as ps prints it.

${targetFlagsUsage}
  --threads          every thread, not only thread-group leaders
  --idle             include the idle tasks (pid 0)
  --remote-analysis  build the list here from memory reads and the target's BTF (the agent
                     only reads ranges) instead of asking the agent's process-list plugin
`;

export const psCommand: CliCommand = targetVerb({
  name: 'ps',
  summary: 'the target kernel\'s processes (or threads)',
  usage,
  options: { threads: { type: 'boolean', default: false }, idle: { type: 'boolean', default: false }, 'remote-analysis': { type: 'boolean', default: false } },
  prepare: ({ values }) => ({ which: { threads: values.threads === true, idle: values.idle === true }, remoteAnalysis: values['remote-analysis'] === true }),
  async run(session, { which, remoteAnalysis }) {
    const records = remoteAnalysis ? await remoteAnalysisProcessList(session, which) : await session.client.processList(which);
    const tasks = records.map((t) => ({
      pid: t.pid,
      tgid: t.tgid,
      ppid: t.ppid,
      comm: t.comm,
      state: t.state,
      cpu: t.cpu,
      utimeNs: Number(t.utimeNs),
      stimeNs: Number(t.stimeNs),
      rssBytes: Number(t.rssBytes),
      threads: t.threads,
    }));
    const seconds = (ns: number): string => (ns / 1e9).toFixed(2);
    return {
      json: { tasks },
      text: () => [
        '    PID    TGID    PPID CPU  S   RSS(kB)   USER(s)    SYS(s) THR COMMAND',
        ...tasks.map((t) =>
          [String(t.pid).padStart(7), String(t.tgid).padStart(7), String(t.ppid).padStart(7), String(t.cpu).padStart(3), t.state.padStart(2),
            String(Math.round(t.rssBytes / 1024)).padStart(9), seconds(t.utimeNs).padStart(9), seconds(t.stimeNs).padStart(9), String(t.threads).padStart(4), t.comm].join(' ')),
      ],
    };
  },
});
