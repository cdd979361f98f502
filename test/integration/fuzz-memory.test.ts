// Corrupt kernel memory, short form: a few hundred mutants of a real guest's memory image through
// the agent (discovery, translation, the process-list, metrics and detection plugins) and the
// kernel model (BTF, symbols, tasks, log, modules, decode, stacks), and a dozen damaged kdump
// files of the same image (the kdump family). Zero crashes, zero hangs, and
// every error names what was bad and where. docs/fuzzing.md; the long form is in test/long/.
import { test } from 'node:test';
import { runFuzz } from '../fuzz/fuzzer';
import { assertFuzzClean } from '../fuzz/report';
import { fuzzSeed } from '../fuzz/seed';

test('memory fuzzer: mutants of a guest image crash nothing, hang nothing, and every error names the object and address', async () => {
  const seed = fuzzSeed();
  console.log(`fuzz: seed ${seed} (GRASS_FUZZ_SEED=${seed} reproduces it)`);
  const summary = await runFuzz({
    seed,
    runtimeMutants: 160,
    discoveryMutants: 40,
    kdumpMutants: 12,
    stacksEvery: 10,
    mutantDeadlineMs: 30_000,
    log: (line) => console.log(line),
  });
  assertFuzzClean(summary, (line) => console.log(line));
});
