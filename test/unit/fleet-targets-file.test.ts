// `grass monitor --targets-file` parsing (src/relay/targets-file.ts) and `--metrics-listen`'s
// address: every bad entry is reported by index and name while the good ones come through, a
// file that does not parse is refused whole, key files resolve beside the targets file and their
// contents never appear in a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTargetsFile, TargetsFileError } from '../../src/relay/targets-file';
import { parseListenAddress } from '../../src/relay/metrics';

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-targets-file-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const KEY = 'ab'.repeat(32);

test('good entries come through with their keys; each bad entry is reported by index and name', () => {
  withDir((dir) => {
    writeFileSync(path.join(dir, 'web.key'), KEY + '\n');
    writeFileSync(path.join(dir, 'short.key'), 'abcd\n');
    const file = path.join(dir, 'targets.json');
    writeFileSync(file, JSON.stringify([
      { name: 'web-01', address: 'rdma://10.0.0.21', keyFile: 'web.key' },
      { name: 'db-01', address: 'shm:/dev/shm/db-01', keyFile: 'web.key', options: { heartbeatIntervalMs: 5000 } },
      'not an object',
      { address: 'shm:/x' },
      { name: 'web-01', address: 'shm:/dup', keyFile: 'web.key' },
      { name: 'typo', address: 'rdma:/10.0.0.9', keyFile: 'web.key' },
      { name: 'offline', address: 'vmcore:/tmp/x', keyFile: 'web.key' },
      { name: 'extra', address: 'shm:/e', keyFile: 'web.key', key: KEY },
      { name: 'nokey', address: 'shm:/n' },
      { name: 'shortkey', address: 'shm:/s', keyFile: 'short.key' },
      { name: 'slow', address: 'shm:/s2', keyFile: 'web.key', options: { heartbeatIntervalMs: -1 } },
    ]));
    const { targets, errors } = readTargetsFile(file, undefined);
    assert.deepEqual(targets.map((t) => [t.name, t.address, t.keyFile, t.options.heartbeatIntervalMs]), [
      ['web-01', 'rdma://10.0.0.21', path.join(dir, 'web.key'), 1000],
      ['db-01', 'shm:/dev/shm/db-01', path.join(dir, 'web.key'), 5000],
    ]);
    assert.deepEqual(Buffer.from(targets[0].key!).toString('hex'), KEY);
    const byIndex = new Map(errors.map((e) => [e.index, e]));
    assert.deepEqual([...byIndex.keys()], [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.match(byIndex.get(2)!.message, /^entry 2: must be an object/);
    assert.match(byIndex.get(3)!.message, /^entry 3: 'name' must be a non-empty string/);
    assert.match(byIndex.get(4)!.message, /^entry 4 \('web-01'\): the name 'web-01' is used twice/);
    assert.match(byIndex.get(5)!.message, /^entry 5 \('typo'\): target address 'rdma:\/10\.0\.0\.9'/);
    assert.match(byIndex.get(6)!.message, /^entry 6 \('offline'\): a monitor holds rdma:\/\/ and shm: targets/);
    assert.match(byIndex.get(7)!.message, /^entry 7 \('extra'\): unknown field 'key'/);
    assert.match(byIndex.get(8)!.message, /no 'keyFile', and the monitor was started without --key-file/);
    assert.match(byIndex.get(9)!.message, /short\.key: 4 hex digits, expected 64/);
    assert.match(byIndex.get(10)!.message, /option 'heartbeatIntervalMs' must be a positive integer/);
    assert.equal(byIndex.get(3)!.name, undefined);
    assert.equal(byIndex.get(5)!.name, 'typo');
    // Key material never in a message.
    for (const e of errors) assert.ok(!e.message.includes(KEY) && !e.message.includes('abcd'), e.message);
  });
});

test('the monitor\'s --key-file serves the entries that name none; {"targets": [...]} and YAML read the same', () => {
  withDir((dir) => {
    const key = Buffer.from(KEY, 'hex');
    const json = path.join(dir, 'fleet.json');
    writeFileSync(json, JSON.stringify({ targets: [{ name: 'a', address: 'shm:/a' }] }));
    const fromJson = readTargetsFile(json, key);
    assert.deepEqual(fromJson.errors, []);
    assert.equal(fromJson.targets[0].keyFile, undefined);
    assert.deepEqual(Buffer.from(fromJson.targets[0].key!), key);
    const yaml = path.join(dir, 'fleet.yaml');
    writeFileSync(yaml, '# the fleet\n- name: a\n  address: shm:/a\n- name: b\n  address: rdma://[fd00::2]:7471\n  options: {requestTimeoutMs: 3000}\n');
    const fromYaml = readTargetsFile(yaml, key);
    assert.deepEqual(fromYaml.errors, []);
    assert.deepEqual(fromYaml.targets.map((t) => [t.name, t.parsed.kind, t.options.requestTimeoutMs]), [['a', 'shm', 2000], ['b', 'rdma', 3000]]);
    writeFileSync(yaml, '');
    assert.deepEqual(readTargetsFile(yaml, key).targets, []);
  });
});

test('a file that cannot be read or parsed, or is not a list, is refused whole with a named error', () => {
  withDir((dir) => {
    const file = path.join(dir, 'targets.json');
    assert.throws(() => readTargetsFile(file, undefined), (e: Error) => e instanceof TargetsFileError && /targets\.json: ENOENT/.test(e.message));
    writeFileSync(file, '[{"name": "a",');
    assert.throws(() => readTargetsFile(file, undefined), (e: Error) => e instanceof TargetsFileError && /not JSON/.test(e.message));
    writeFileSync(file, '{"name": "a"}');
    assert.throws(() => readTargetsFile(file, undefined), (e: Error) => e instanceof TargetsFileError && /expected a list/.test(e.message));
    const yaml = path.join(dir, 't.yml');
    writeFileSync(yaml, '- name: a\n  address: [unclosed\n');
    assert.throws(() => readTargetsFile(yaml, undefined), (e: Error) => e instanceof TargetsFileError && /not YAML/.test(e.message));
    // YAML's own types beyond JSON's (a tagged value) are refused, not constructed.
    writeFileSync(yaml, '- !!js/function "function () {}"\n');
    assert.throws(() => readTargetsFile(yaml, undefined), (e: Error) => e instanceof TargetsFileError);
  });
});

test('--metrics-listen HOST:PORT: IPv4, a name, [IPv6]; anything else is refused by name', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9471'), { host: '127.0.0.1', port: 9471 });
  assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(parseListenAddress('[::1]:9471'), { host: '::1', port: 9471 });
  for (const bad of ['9471', ':9471', '127.0.0.1', '127.0.0.1:70000', '::1:9471', '[::1]', 'host:port']) {
    assert.throws(() => parseListenAddress(bad), /--metrics-listen .*expected HOST:PORT/, bad);
  }
});
