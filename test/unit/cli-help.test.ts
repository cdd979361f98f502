// `grass --help` lists every registered verb, and docs/cli.md has a section for each.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { commands } from '../../src/cli/verbs';

const ROOT = path.resolve(__dirname, '../..');

test('grass --help lists every subcommand with its summary', () => {
  assert.ok(commands.length > 0, 'no verbs registered in src/cli/verbs/index.ts');
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  for (const c of commands) assert.match(run.stderr, new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
});

test('docs/cli.md has a section for every subcommand', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8');
  const missing = commands.filter((c) => !doc.includes(`## \`grass ${c.name}\``)).map((c) => c.name);
  assert.deepEqual(missing, [], 'verbs without a section in docs/cli.md');
});
