// docs/prometheus/ checked by Debian's promtool (installed by scripts/setup.sh): the scrape config
// with file-based discovery of several monitors is valid, the rules parse, and `promtool test
// rules` passes on the recorded series of grass-rules.test.yml (each alert at the time it must
// fire, and not before). No guest: the series are recorded, the truth is promtool's evaluation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const DIR = path.resolve(__dirname, '../../docs/prometheus');

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (scripts/setup.sh installs Debian's prometheus package)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('the scrape config (file SD over monitors/*.json) and its rule file pass promtool check config', () => {
  const r = promtool('check', 'config', 'prometheus.yml');
  assert.equal(r.status, 0, r.out);
  assert.doesNotMatch(r.out, /WARNING/, r.out);
  // The example discovery file names several monitors.
  const groups = JSON.parse(readFileSync(path.join(DIR, 'monitors/example.json'), 'utf8')) as { targets: string[] }[];
  assert.ok(groups.flatMap((g) => g.targets).length >= 2, 'several monitors in the example');
});

test('promtool check rules: every rule parses', () => {
  const r = promtool('check', 'rules', 'grass-rules.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: 10 rules found/);
});

test('promtool test rules: each alert fires on the recorded series when it must, and not before', () => {
  const r = promtool('test', 'rules', 'grass-rules.test.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS/);
  // Every alert of the rule file has a test.
  const rules = readFileSync(path.join(DIR, 'grass-rules.yml'), 'utf8');
  const tests = readFileSync(path.join(DIR, 'grass-rules.test.yml'), 'utf8');
  const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  assert.equal(alerts.length, 8);
  for (const a of alerts) assert.match(tests, new RegExp(`alertname: ${a}\\b`), `${a} has no test`);
});
