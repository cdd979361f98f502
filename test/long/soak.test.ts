// The long soak (`npm run test:long`): one million heartbeats, then ten minutes of
// heartbeats, `ps` and physical reads at once against a real agent; no reply lost, wrong or
// stale, and no memory growth in the agent, the monitor holding it or this client process. See
// test/integration/soak-load.ts; the short form runs in `npm test`. Progress: test/long/log.ts.
import { test } from 'node:test';
import { assertSoakClean, describeSoak, soak } from '../integration/soak-load';
import { longLog } from './log';

test('soak: 1 000 000 heartbeats and 10 minutes of ps + reads: nothing lost or stale, no memory growth', { timeout: 60 * 60_000 }, async () => {
  const r = await soak({ heartbeats: 1_000_000, loadSeconds: 600, progress: longLog });
  longLog(describeSoak(r));
  assertSoakClean(r, { agentAnonKiB: 64, clientHeapKiB: 2048, clientBuffersKiB: 2048, clientNativeKiB: 16384, monitorAnonKiB: 49152, monitorHeapKiB: 2048 });
});
