// Heartbeat round trips measured in a process of their own, as Bench.time measures (two warm-up
// runs, then `runs` runs of `inner`), printed as JSON µs per heartbeat:
//   node --import tsx bench/heartbeat-probe.ts TARGET KEY_FILE INNER RUNS
// bench/base-agent.ts runs this file in a worktree of an older revision (with that revision's
// client) and here, so agent.heartbeat-base and agent.heartbeat-process are measured alike.
import { connectTarget } from '../src/rdma/connect';

async function main(): Promise<void> {
  const [target, keyFile, inner, runs] = process.argv.slice(2);
  const session = await connectTarget(target, { keyFile });
  const values: number[] = [];
  for (let r = -2; r < Number(runs); r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < Number(inner); i++) await session.client.heartbeatRoundTrip();
    if (r >= 0) values.push(Number(process.hrtime.bigint() - start) / 1000 / Number(inner));
  }
  await session.close();
  process.stdout.write(JSON.stringify(values));
}

void main();
