// The one failure vocabulary (src/session/failure.ts) against the errors the client and the
// transports really throw, and the CLI's exit statuses against docs/cli.md's numbers (3: the
// monitor does not answer, 4: the transport or agent is dead); heldAs against addresses written
// two ways.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { GrassProtocolError, GrassTimeoutError } from '../../src/rdma/client';
import { ConnectionRefusedError, TransportError } from '../../src/rdma/transport';
import type { TargetStatus } from '../../src/relay/wire';
import { classifyFailure, exitStatusOf, relayStateOf } from '../../src/session/failure';
import { heldAs } from '../../src/session/relay-model';
import { parseTargetsSetting } from '../../src/settings/targets';

test('errors map to one failure state each', () => {
  assert.equal(classifyFailure(new GrassTimeoutError('t', true)).state, 'monitor-busy');
  assert.equal(classifyFailure(new GrassTimeoutError('t', false)).state, 'monitor-dead');
  assert.equal(classifyFailure(new TransportError('shm:x', 'gone')).state, 'gpu-nic-dead');
  assert.equal(classifyFailure(new ConnectionRefusedError('rdma://h', 'no')).state, 'refused');
  assert.equal(classifyFailure(new GrassProtocolError('bad magic')).state, 'error');
  assert.equal(classifyFailure(new TransportError('shm:x', 'gone')).message, 'transport shm:x: gone');
});

test('exit statuses are the ones docs/cli.md promises', () => {
  const doc = readFileSync(path.resolve(__dirname, '../../docs/cli.md'), 'utf8');
  const m = /Exit status (\d): the monitor does not answer \(buffer readable\); (\d): the transport or agent is dead/.exec(doc);
  assert.ok(m, 'docs/cli.md states the heartbeat exit statuses');
  assert.equal(exitStatusOf('monitor-dead'), Number(m[1]));
  assert.equal(exitStatusOf('monitor-busy'), Number(m[1]));
  assert.equal(exitStatusOf('gpu-nic-dead'), Number(m[2]));
  assert.equal(exitStatusOf('refused'), 1);
  assert.equal(exitStatusOf('error'), undefined);
});

test('the relay records only the failures of a part', () => {
  assert.deepEqual(
    (['monitor-busy', 'monitor-dead', 'gpu-nic-dead', 'refused', 'error'] as const).map(relayStateOf),
    [undefined, 'monitor-dead', 'gpu-nic-dead', undefined, undefined],
  );
});

test('heldAs matches the relay status of a target however its address is written', () => {
  const [target] = parseTargetsSetting([{ name: 'box', address: 'rdma://10.0.0.7' }]);
  const status = (name: string, address: string) => ({ name, address }) as TargetStatus;
  assert.ok(heldAs(target, status('agent-7', 'rdma://10.0.0.7:7471')), 'default port written out');
  assert.ok(heldAs(target, status('10.0.0.7', 'rdma://10.0.0.7:7471')));
  assert.ok(!heldAs(target, status('other', 'rdma://10.0.0.8:7471')));
});
