// grass report: the fault reports in the target kernel's log (panic, oops, BUG, WARNING, soft
// and hard lockup, hung task, RCU stall) and the task each CPU was running, read from memory.
import { extractFaultReports } from '../../kernel/log/faults';
import { formatReport, reportToJson } from '../../kernel/log/format';
import { KernelLogReader } from '../../kernel/log/ringbuffer';
import { runningTasks } from '../../kernel/log/running';
import { KernelModel } from '../../kernel/model';
import type { CliCommand } from '../command';
import { hex, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass report --target ADDR [--key-file F] [--json]

Finds the fault reports in the kernel log (read from the target's memory): panics ("Kernel
panic - not syncing: ..."), oopses, BUGs, WARNINGs, soft and hard lockups, hung tasks, RCU stalls.
Each is shown with the CPU and task it is about, its registers and call trace as printed, and the
log records it spans; then the task each CPU is running now (on a dead kernel: was running).

${targetFlagsUsage}

--json prints {"reports":[{kind,message,cpu,pid,comm,taint,hardware,rip,registers,code,modules,
callTrace,lines,firstSeq,lastSeq,timestampNs,reporter}],"running":[{cpu,pid,comm,task}|{cpu,error}],
"log":{"firstSeq","headSeq","notes"}}; kind is one of panic oops bug warning soft-lockup
hard-lockup hung-task rcu-stall.
`;

export const reportCommand: CliCommand = targetVerb({
  name: 'report',
  summary: 'panic, oops, lockup and hung-task reports from the kernel log, and who was running',
  usage,
  async run(session) {
    const description = await session.client.describe();
    // The running tasks need the kernel model (BTF); the log does not, and is read regardless.
    let model: KernelModel | undefined;
    try {
      model = KernelModel.fromDescription(description, session.client);
    } catch (err) {
      process.stderr.write(`grass report: cannot tell which tasks are running: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    const log = await new KernelLogReader(session.client, description, model?.btf).read();
    const reports = extractFaultReports(log.records);
    const running = model ? await runningTasks(model) : [];
    for (const note of log.notes) process.stderr.write(`grass report: ${note}\n`);
    return {
      json: {
        reports: reports.map(reportToJson),
        running: running.map((r) => ('error' in r ? r : { cpu: r.cpu, pid: r.pid, comm: r.comm, task: hex(r.taskAddress) })),
        log: { firstSeq: log.firstSeq, headSeq: log.headSeq, notes: log.notes },
      },
      text: () => [
        ...(reports.length === 0 ? [`no fault reports in the kernel log (records ${log.firstSeq}..${log.headSeq})`] : []),
        ...reports.flatMap((r) => [formatReport(r), '']),
        'running:',
        ...running.map((r) => ('error' in r ? `  CPU ${r.cpu}: unreadable: ${r.error}` : `  CPU ${r.cpu}: ${r.comm} (pid ${r.pid}) task ${hex(r.taskAddress)}`)),
      ],
    };
  },
});
