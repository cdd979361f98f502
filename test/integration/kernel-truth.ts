// Shared by the kernel-model integration tests: comparisons with the guest's own /proc.
import assert from 'node:assert/strict';
import type { GroundTruth } from '../../testbed';
import type { PsTask } from './agent-harness';

/** RSS as /proc reports it, for tasks whose RSS did not move between the two truths. */
export function assertRssMatchesTruth(listed: PsTask[], before: GroundTruth, after: GroundTruth): number {
  const later = new Map(after.tasks.map((t) => [t.pid, t]));
  let compared = 0;
  for (const t of before.tasks) {
    const t2 = later.get(t.pid);
    const got = listed.find((x) => x.pid === t.pid);
    if (!t2 || !got || t2.rssPages !== t.rssPages) continue;
    assert.equal(got.rssBytes, t.rssPages * 4096, `rss of pid ${t.pid} (${t.comm})`);
    compared++;
  }
  return compared;
}

