// grass heartbeat: one request the monitor answers at once, plus the liveness block it keeps
// on its own; says which part failed when there is no answer.
import type { CliCommand } from '../command';
import { positiveIntegerFlag, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass heartbeat --target ADDR [--key-file F] [--count N] [--json]

Sends heartbeats and prints the round trip and the monitor's liveness counter.
Exit status 3: the monitor does not answer (buffer readable); 4: the transport or agent is dead.

${targetFlagsUsage}
  --count N          heartbeats to send (default 1); prints min and median
`;

export const heartbeatCommand: CliCommand = targetVerb({
  name: 'heartbeat',
  summary: 'round trip to the target monitor and its liveness counter',
  usage,
  options: { count: { type: 'string', default: '1' } },
  prepare: ({ values }) => positiveIntegerFlag('heartbeat', 'count', values.count, 1),
  async run({ client }, count, flags) {
    const roundTripsUs: number[] = [];
    let last;
    for (let i = 0; i < count; i++) {
      last = await client.heartbeat();
      roundTripsUs.push(Number(last.roundTripNs) / 1000);
    }
    const sorted = [...roundTripsUs].sort((a, b) => a - b);
    const result = {
      roundTripUs: roundTripsUs[roundTripsUs.length - 1],
      minUs: sorted[0],
      medianUs: sorted[Math.floor(sorted.length / 2)],
      count,
      livenessCounter: Number(last!.liveness.counter),
      monitorClockNs: Number(last!.liveness.monitorClockNs),
      requestsServed: Number(last!.liveness.requestsServed),
      requestsRefused: Number(last!.liveness.requestsRefused),
      backend: client.backend,
    };
    const trip = count === 1 ? `${result.roundTripUs.toFixed(1)} µs round trip` : `round trip min ${result.minUs.toFixed(1)} µs, median ${result.medianUs.toFixed(1)} µs over ${count}`;
    return {
      json: result,
      text: () => [`${flags.target}: ${trip}; liveness ${result.livenessCounter} (${result.backend} backend, ${result.requestsServed} served, ${result.requestsRefused} refused)`],
    };
  },
});
