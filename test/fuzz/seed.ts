// The run's seed: GRASS_FUZZ_SEED when set (to reproduce a run), else a fresh one to print.
import { randomInt } from 'node:crypto';

export function fuzzSeed(): number {
  const text = process.env.GRASS_FUZZ_SEED;
  if (text === undefined || text === '') return randomInt(2 ** 31);
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`GRASS_FUZZ_SEED must be an integer in 0..2^32-1, got '${text}'`);
  return seed;
}
