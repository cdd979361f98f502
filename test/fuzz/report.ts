// What the fuzz tests print and assert, shared by the short and the long form.
import assert from 'node:assert/strict';
import type { FuzzSummary, MutantResult } from './fuzzer';

export function failureText(r: MutantResult): string {
  const steps = r.steps.filter((s) => s.status !== 'ok').map((s) => `    ${s.step}: ${s.status}${s.named === false ? ' (names no address)' : ''}: ${s.error ?? ''}`);
  return [`mutant ${r.mutant.index} (${r.mutant.family}, ${r.mutant.mode}) ${r.verdict}: ${r.mutant.what}`, ...(r.agent ? [`    agent: ${r.agent}`] : []), ...steps].join('\n');
}

/** Prints the counts and the failures; asserts zero crashes, hangs and unnamed errors. */
export function assertFuzzClean(summary: FuzzSummary, print: (line: string) => void): void {
  print(`image: ${summary.image}`);
  print(`by family: ${Object.entries(summary.byFamily).map(([f, c]) => `${f} ${c.served}/${c['clean-error']}/${c['unnamed-error']}/${c.crash}/${c.hang}`).join(', ')} (served/clean/unnamed/crash/hang)`);
  print(`clean errors per step: ${JSON.stringify(summary.stepErrors)}`);
  for (const f of summary.failures) print(failureText(f));
  print(summary.line);
  assert.deepEqual(summary.baselineFailures, [], 'the battery fails on the pristine image');
  assert.deepEqual(summary.selfCheckFailures, [], 'the classifier misjudged a stopped or killed agent');
  assert.equal(summary.imageRestored, true, 'the image differs from the pristine one after every mutant was undone');
  assert.deepEqual(summary.failures.map(failureText), [], `${summary.failures.length} mutants crashed, hung or failed without naming what and where (seed ${summary.seed})`);
  // A fuzzer whose mutants reach nothing would pass too: each layer must have refused some
  // (a run of fewer than 100 mutants, e.g. GRASS_FUZZ_MUTANTS=16 for a smoke test, may miss one).
  if (summary.mutants < 100) return;
  for (const step of ['discovery', 'agent ps', 'ps', 'log']) {
    assert.ok((summary.stepErrors[step] ?? 0) > 0, `no mutant made '${step}' fail: the mutations did not reach it (seed ${summary.seed})`);
  }
}
