// The `grass.targets` setting and target keys as the extension reads them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKeyHex } from '../../src/settings/keys';
import { parseTargetsSetting } from '../../src/settings/targets';

test('grass.targets: entries with defaults and parsed addresses', () => {
  const targets = parseTargetsSetting([
    { name: 'guest', address: 'shm:/dev/shm/grass-1' },
    { name: 'lab', address: 'rdma://[fe80::2]:7000', options: { requestTimeoutMs: 500 } },
  ]);
  assert.deepEqual(
    targets.map((t) => [t.name, t.parsed, t.options]),
    [
      ['guest', { kind: 'shm', path: '/dev/shm/grass-1' }, { heartbeatIntervalMs: 1000, requestTimeoutMs: 2000 }],
      ['lab', { kind: 'rdma', host: 'fe80::2', port: 7000 }, { heartbeatIntervalMs: 1000, requestTimeoutMs: 500 }],
    ],
  );
  assert.deepEqual(parseTargetsSetting(undefined), []);
});

test('grass.targets: each mistake is named with its entry', () => {
  const cases: [unknown, RegExp][] = [
    [{ name: 'x' }, /must be a list/],
    [[{ address: 'shm:/a' }], /grass\.targets\[0\]: 'name' must be a non-empty string/],
    [[{ name: 'a', address: 'shm:/a' }, { name: 'a', address: 'shm:/b' }], /grass\.targets\[1\]: the name 'a' is used twice/],
    [[{ name: 'a', address: 'tcp://host' }], /grass\.targets\[0\] \('a'\): target address 'tcp:\/\/host'/],
    [[{ name: 'a', address: 'rdma://host:70000' }], /port 70000/],
    [[{ name: 'a', address: 'shm:/a', options: { retries: 3 } }], /unknown option 'retries'/],
    [[{ name: 'a', address: 'shm:/a', options: { requestTimeoutMs: 0 } }], /'requestTimeoutMs' must be a positive integer/],
  ];
  for (const [value, message] of cases) assert.throws(() => parseTargetsSetting(value), message);
});

test('keys: 64 hex digits; errors never echo the text', () => {
  assert.deepEqual([...parseKeyHex(` ${'0f'.repeat(32)}\n`)], Array(32).fill(15));
  const secretish = 'zz'.repeat(32);
  assert.throws(() => parseKeyHex(secretish), (err: Error) => /other characters/.test(err.message) && !err.message.includes(secretish));
  assert.throws(() => parseKeyHex('ab'.repeat(31)), /has 62/);
});
