// Which part of the path to a target failed (DESIGN §4.3, the paper's terms): the one
// vocabulary the status bar, the Targets view, the CLI's exit statuses and the relay's target
// status all map from. Classified from the errors the protocol client and the transports throw.
import { GrassTimeoutError } from '../rdma/client';
import { ConnectionRefusedError, TransportError } from '../rdma/transport';

/**
 * - `monitor-busy`: the agent's monitor loop is alive (its liveness counter moves) but did not
 *   answer this request in time (busy, stuck in a request, or every slot held by other clients);
 * - `monitor-dead`: no answer and the liveness counter stuck, while the buffer is still readable;
 * - `gpu-nic-dead`: the transport failed (GPU/NIC, network, or the agent process is gone);
 * - `refused`: the agent refused the connection (it and the link are up);
 * - `error`: anything else (a protocol error, a refused request, a bad reply).
 */
export type FailureState = 'monitor-busy' | 'monitor-dead' | 'gpu-nic-dead' | 'refused' | 'error';

export interface Failure {
  state: FailureState;
  message: string;
}

export function classifyFailure(err: unknown): Failure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ConnectionRefusedError) return { state: 'refused', message };
  if (err instanceof TransportError) return { state: 'gpu-nic-dead', message };
  if (err instanceof GrassTimeoutError) return { state: err.monitorAlive ? 'monitor-busy' : 'monitor-dead', message };
  return { state: 'error', message };
}

/** Whether the target's monitor loop did not answer (alive or not): the part to blame is the monitor. */
export function monitorNotAnswering(state: FailureState): boolean {
  return state === 'monitor-busy' || state === 'monitor-dead';
}

/**
 * The CLI's exit status for a failure (docs/cli.md, a user contract): 3 the monitor does not
 * answer (buffer readable), 4 the transport or agent is dead, 1 refused; undefined for `error`,
 * which the CLI reports as any other error (exit status 1).
 */
export const EXIT_MONITOR_NOT_ANSWERING = 3;
export const EXIT_TRANSPORT_DEAD = 4;
export const EXIT_REFUSED = 1;

export function exitStatusOf(state: FailureState): number | undefined {
  switch (state) {
    case 'monitor-busy':
    case 'monitor-dead':
      return EXIT_MONITOR_NOT_ANSWERING;
    case 'gpu-nic-dead':
      return EXIT_TRANSPORT_DEAD;
    case 'refused':
      return EXIT_REFUSED;
    case 'error':
      return undefined;
  }
}

/** The failures the relay records in a held target's status (wire TargetState). */
export type RelayFailureState = Extract<FailureState, 'monitor-dead' | 'gpu-nic-dead'>;

/** What the relay's status of a held target says after a failure: only failures of a part; a
 * busy monitor or another error leaves the state as it was (undefined). */
export function relayStateOf(state: FailureState): RelayFailureState | undefined {
  if (state === 'monitor-dead' || state === 'gpu-nic-dead') return state;
  return undefined;
}
