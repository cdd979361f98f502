// Starts a GRASS agent on a testbed guest's RAM. The agent is being written separately; until
// it exists this says so.
import type { Guest } from './guest';

export interface AgentHandle {
  /** Target address for the CLI and the extension (DESIGN §6), e.g. shm:/dev/shm/... */
  target: string;
  keyFile: string;
  stop(): Promise<void>;
}

export async function startAgent(guest: Guest): Promise<AgentHandle> {
  throw new Error(`testbed: cannot start an agent on guest ${guest.id}: the agent is not built yet (gpu/build/grass-agent missing)`);
}
