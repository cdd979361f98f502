// Corrupt kernel memory, long form: thousands of mutants (GRASS_FUZZ_MUTANTS, default 3000, a
// fifth of them before discovery), stacks unwound on every other one, with the agent as built
// and, when `make -C gpu asan` builds, under AddressSanitizer and UBSan, which turn silent
// memory errors into crashes. The seed is printed; GRASS_FUZZ_SEED reproduces a run.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { runFuzz } from '../fuzz/fuzzer';
import { assertFuzzClean } from '../fuzz/report';
import { fuzzSeed } from '../fuzz/seed';

const root = path.resolve(__dirname, '../..');
const total = Number(process.env.GRASS_FUZZ_MUTANTS ?? 3000);

async function fuzz(seed: number, mutants: number, agentBinary?: string): Promise<void> {
  const discovery = Math.round(mutants / 5);
  const summary = await runFuzz({ seed, runtimeMutants: mutants - discovery, discoveryMutants: discovery, stacksEvery: 2, mutantDeadlineMs: 60_000, agentBinary, log: (line) => console.log(line) });
  assertFuzzClean(summary, (line) => console.log(line));
}

test(`memory fuzzer, long: ${total} mutants`, async () => {
  const seed = fuzzSeed();
  console.log(`fuzz: seed ${seed} (GRASS_FUZZ_SEED=${seed} reproduces it)`);
  await fuzz(seed, total);
});

test(`memory fuzzer, long: ${Math.round(total / 3)} mutants on the agent built with AddressSanitizer and UBSan`, async () => {
  execFileSync('make', ['-s', '-C', path.join(root, 'gpu'), 'asan'], { stdio: 'inherit' });
  const seed = fuzzSeed() ^ 0x5a5a5a5a;
  console.log(`fuzz (asan agent): seed ${seed} (GRASS_FUZZ_SEED=${seed ^ 0x5a5a5a5a} reproduces it)`);
  await fuzz(seed >>> 0, Math.round(total / 3), path.join(root, 'gpu/build/asan/grass-agent'));
});
