// Runs the memory fuzzer by hand:
//   node --import tsx test/fuzz/main.ts [--seed N] [--runtime N] [--discovery N] [--kdump N] [--stacks-every N]
//        [--only I,J] [--keep-image DIR] [--agent BINARY] [--json FILE]
// --keep-image (or GRASS_FUZZ_IMAGE) keeps the captured guest image in DIR, or reuses the one kept
// there, so that a seed reproduces the very same mutants; --agent runs another agent build (make -C
// gpu asan: gpu/build/asan/grass-agent). Prints failures and the count line; exits 1 when any
// mutant crashed, hung or failed without naming the object and address.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fuzzSeed } from './seed';
import { runFuzz } from './fuzzer';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      runtime: { type: 'string', default: '200' },
      discovery: { type: 'string', default: '50' },
      kdump: { type: 'string', default: '20' },
      'stacks-every': { type: 'string', default: '4' },
      only: { type: 'string' },
      json: { type: 'string' },
      'keep-image': { type: 'string' },
      agent: { type: 'string' },
    },
  });
  const seed = values.seed !== undefined ? Number(values.seed) : fuzzSeed();
  const summary = await runFuzz({
    seed,
    runtimeMutants: Number(values.runtime),
    discoveryMutants: Number(values.discovery),
    kdumpMutants: Number(values.kdump),
    stacksEvery: Number(values['stacks-every']),
    mutantDeadlineMs: 30_000,
    agentBinary: values.agent,
    keepImage: values['keep-image'] ?? process.env.GRASS_FUZZ_IMAGE,
    only: values.only?.split(',').map(Number),
    log: (line) => process.stderr.write(line + '\n'),
  });
  if (values.json) writeFileSync(values.json, JSON.stringify(summary, null, 2));
  for (const e of summary.examples) process.stdout.write(`  example: ${e}\n`);
  const perMode = (mode: string): string => {
    const ms = summary.results.filter((r) => r.mutant.mode === mode).map((r) => r.ms ?? 0);
    return ms.length ? `${mode} ${Math.round(ms.reduce((a, b) => a + b, 0) / ms.length)} ms/mutant` : '';
  };
  const stepMs = new Map<string, number[]>();
  for (const r of summary.results) for (const s of r.steps) stepMs.set(s.step, [...(stepMs.get(s.step) ?? []), s.ms]);
  const stepText = [...stepMs].map(([step, ms]) => `${step} ${Math.round(ms.reduce((a, b) => a + b, 0) / ms.length)}`).join(', ');
  process.stdout.write(`  ${perMode('runtime')} ${perMode('discovery')} ${perMode('kdump')}; mean ms per step: ${stepText}\n`);
  process.stdout.write(`  by family: ${JSON.stringify(summary.byFamily)}\n  step errors: ${JSON.stringify(summary.stepErrors)}\n  image restored: ${summary.imageRestored}\n`);
  process.stdout.write(summary.line + '\n');
  if (summary.selfCheckFailures.length) process.stdout.write(`  self-check: ${summary.selfCheckFailures.join("; ")}\n`);
  if (summary.baselineFailures.length) process.stdout.write(`  failing on the pristine image: ${summary.baselineFailures.join("; ")}\n`);
  return summary.failures.length === 0 && summary.imageRestored && summary.baselineFailures.length === 0 && summary.selfCheckFailures.length === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
