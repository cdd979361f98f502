// The kernel model of a connected target, for the verbs that analyse memory on this side
// (btf, decode, ps --remote-analysis): the agent's description gives BTF and symbols, the
// protocol client gives reads.
import { KernelModel, type KernelModelOptions } from '../../kernel/model';
import type { TargetSession } from '../../rdma/connect';

export async function modelFromSession(session: TargetSession, options: KernelModelOptions = {}): Promise<KernelModel> {
  const description = await session.client.describe();
  return KernelModel.fromDescription(description, session.client, options);
}
