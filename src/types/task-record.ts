// One task as `grass ps` shows it (DESIGN §6 fields): what the agent's process-list plugin
// answers (src/rdma/protocol/codec.ts decodes it) and what the kernel model reads itself in
// remote-analysis mode (src/kernel/tasks/tasks.ts), so the views and the CLI take either.

export interface TaskRecord {
  pid: number;
  tgid: number;
  ppid: number;
  comm: string;
  /** One of R S D T t X Z P I, as ps prints it. */
  state: string;
  cpu: number;
  utimeNs: bigint;
  stimeNs: bigint;
  rssBytes: bigint;
  threads: number;
  /** Kernel virtual address of the task_struct. */
  taskAddress: bigint;
}
