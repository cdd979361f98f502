// The short soak (the long one is test/long/soak.test.ts): 20 000 heartbeats (fewer if they
// take over 20 s on a loaded host; the count is printed), then 15 s of heartbeats, `ps` and
// physical reads at once against a real agent; no reply lost, wrong or stale, and no memory
// growth in the agent, the monitor holding it or this client process. See soak-load.ts.
import { test } from 'node:test';
import { assertSoakClean, describeSoak, soak } from './soak-load';

test('soak: 20 000 heartbeats and 15 s of ps + reads: nothing lost or stale, no memory growth', async () => {
  const r = await soak({ heartbeats: 20_000, heartbeatSecondsAtMost: 20, loadSeconds: 15 });
  console.log(describeSoak(r));
  // Bounds: the agent allocates nothing per request (slack for libc); the client's heap is
  // measured after a full collection; its anonymous RSS also holds heap pages V8 keeps, so only
  // the growth beyond V8's heap is bounded; the monitor is a node process too.
  assertSoakClean(r, { agentAnonKiB: 64, clientHeapKiB: 2048, clientBuffersKiB: 2048, clientNativeKiB: 16384, monitorAnonKiB: 49152, monitorHeapKiB: 2048 });
});
