// Corrupt kernel memory, long form: thousands of mutants (GRASS_FUZZ_MUTANTS, default 2400, a
// fifth of them before discovery), stacks unwound on every other one, in runs of 400 (each a
// test: npm test's runner gives a test 10 minutes), then two runs of 300 (at most an eighth of
// the count each) on the agent built by `make -C gpu asan` (AddressSanitizer and UBSan turn
// silent memory errors into crashes).
// Run k uses seed SEED+k; SEED is printed and GRASS_FUZZ_SEED sets it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { runFuzz } from '../fuzz/fuzzer';
import { assertFuzzClean } from '../fuzz/report';
import { fuzzSeed } from '../fuzz/seed';

const root = path.resolve(__dirname, '../..');
const total = Number(process.env.GRASS_FUZZ_MUTANTS ?? 2400);
const perRun = 400;
const seed = fuzzSeed();
console.log(`fuzz: seed ${seed} (GRASS_FUZZ_SEED=${seed} reproduces every run of this file)`);

async function fuzz(runSeed: number, mutants: number, agentBinary?: string): Promise<void> {
  const discovery = Math.round(mutants / 5);
  // And a kdump family of a tenth as many, on the image saved as a kdump-compressed file.
  const summary = await runFuzz({ seed: runSeed, runtimeMutants: mutants - discovery, discoveryMutants: discovery, kdumpMutants: Math.round(mutants / 10), stacksEvery: 2, mutantDeadlineMs: 60_000, agentBinary, log: (line) => console.log(line) });
  assertFuzzClean(summary, (line) => console.log(line));
}

const runs = Math.max(1, Math.ceil(total / perRun));
for (let k = 0; k < runs; k++) {
  const mutants = Math.min(perRun, total - k * perRun);
  test(`memory fuzzer, long, run ${k + 1}/${runs}: ${mutants} mutants (seed ${seed + k})`, () => fuzz(seed + k, mutants));
}

const sanitized = Math.min(300, Math.ceil(total / 8));
for (let k = 0; k < 2; k++) {
  test(`memory fuzzer, long, AddressSanitizer/UBSan agent, run ${k + 1}/2: ${sanitized} mutants (seed ${seed + runs + k})`, async () => {
    execFileSync('make', ['-s', '-C', path.join(root, 'gpu'), 'asan'], { stdio: 'inherit' });
    await fuzz(seed + runs + k, sanitized, path.join(root, 'gpu/build/asan/grass-agent'));
  });
}
