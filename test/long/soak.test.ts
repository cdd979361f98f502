// The long soak (`npm run test:long`): one million heartbeats, then ten minutes of
// heartbeats, `ps` and physical reads at once against a real agent; no reply lost, wrong or
// stale, and no memory growth in the agent, the monitor holding it or this client process. See
// test/integration/soakLoad.ts; the short form runs in `npm test`. Progress goes to stderr and, with
// GRASS_SOAK_LOG=FILE, to FILE as it happens (the test runner shows a test's output only at its end).
import { appendFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertSoakClean, describeSoak, soak } from '../integration/soakLoad';

test('soak: 1 000 000 heartbeats and 10 minutes of ps + reads: nothing lost or stale, no memory growth', { timeout: 60 * 60_000 }, async () => {
  const progress = (line: string): void => {
    process.stderr.write(`${line}\n`);
    if (process.env.GRASS_SOAK_LOG) appendFileSync(process.env.GRASS_SOAK_LOG, `${new Date().toISOString()} ${line}\n`);
  };
  const r = await soak({ heartbeats: 1_000_000, loadSeconds: 600, progress });
  progress(describeSoak(r));
  assertSoakClean(r, { agentAnonKiB: 64, clientHeapKiB: 2048, clientBuffersKiB: 2048, clientNativeKiB: 16384, monitorAnonKiB: 49152, monitorHeapKiB: 2048 });
});
