// GRASS_BENCH_BASE_REV=REV: the agent of another revision (e.g. HEAD~1, the parent of a change),
// built in a `git worktree` of that revision in a temporary folder, and its heartbeat measured by
// that revision's own client (an older protocol version: this tree's client refuses its buffer),
// so that agent.heartbeat can be compared with the old agent's in the same run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..');

export interface BaseAgent {
  /** The revision as given, and its commit. */
  revision: string;
  commit: string;
  /** Its agent binary. */
  binary: string;
  /** µs per heartbeat of `runs` runs of `inner`, by that revision's client (bench/heartbeat-probe.ts). */
  heartbeats(target: string, keyFile: string, inner: number, runs: number): number[];
  remove(): void;
}

/** bench/heartbeat-probe.ts of the tree at `tree`, with that tree's client: µs per heartbeat of each run. */
export function probeHeartbeats(tree: string, target: string, keyFile: string, inner: number, runs: number): number[] {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/heartbeat-probe.ts', target, keyFile, String(inner), String(runs)], { cwd: tree, encoding: 'utf8', timeout: 300_000 });
  return JSON.parse(out) as number[];
}

/** The revision named by GRASS_BENCH_BASE_REV, built; undefined when it is not set. */
export function buildBaseAgent(): BaseAgent | undefined {
  const revision = process.env.GRASS_BENCH_BASE_REV;
  if (!revision) return undefined;
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short=12', `${revision}^{commit}`], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-base-'));
  const tree = path.join(dir, 'tree');
  const remove = (): void => {
    execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', tree], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', tree, commit], { stdio: 'ignore' });
    // Only the agent: the revision's wire layout is committed, no node step needed.
    execFileSync('make', ['-C', path.join(tree, 'gpu'), '-j2', 'build/grass-agent'], { stdio: 'ignore' });
    symlinkSync(path.join(root, 'node_modules'), path.join(tree, 'node_modules'));
    copyFileSync(path.join(__dirname, 'heartbeat-probe.ts'), path.join(tree, 'bench', 'heartbeat-probe.ts'));
  } catch (err) {
    remove();
    throw new Error(`GRASS_BENCH_BASE_REV=${revision}: could not build its agent: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    revision,
    commit,
    binary: path.join(tree, 'gpu', 'build', 'grass-agent'),
    heartbeats: (target, keyFile, inner, runs) => probeHeartbeats(tree, target, keyFile, inner, runs),
    remove,
  };
}
