// The kernel model of a connected target, for the verbs that analyse memory on this side
// (btf, decode, ps --remote-analysis): the agent's description gives BTF and symbols, the
// protocol client gives reads.
import { KernelModel, type KernelModelOptions } from '../../kernel/model';
import { listTasks } from '../../kernel/tasks/tasks';
import type { TaskRecord } from '../../types/task-record';
import type { ProtocolSession } from '../../session/open-target';

export async function modelFromSession(session: ProtocolSession, options: KernelModelOptions = {}): Promise<KernelModel> {
  const description = await session.client.describe();
  return KernelModel.fromDescription(description, session.client, options);
}

/** `grass ps --remote-analysis`: the process list built here from memory reads alone. */
export async function remoteAnalysisProcessList(session: ProtocolSession, options: { threads?: boolean; idle?: boolean }): Promise<TaskRecord[]> {
  const model = await modelFromSession(session);
  return (await listTasks(model, options)).tasks;
}
