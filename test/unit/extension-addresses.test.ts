// What a user types where the extension asks for an address and a struct type.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { structAtAddress } from '../../src/session/addresses';

test('an address and a struct name make the expression the decoder evaluates', () => {
  assert.equal(structAtAddress('task_struct', '0xffff888003a8c000'), '*(struct task_struct *)0xffff888003a8c000');
  assert.equal(structAtAddress('struct list_head', ' 4096 '), '*(struct list_head *)4096');
});

test('a bad struct name or address is named in the error', () => {
  assert.throws(() => structAtAddress('task struct', '0x1000'), /'task struct' is not a struct name/);
  assert.throws(() => structAtAddress('task_struct', 'init_task'), /'init_task' is not an address/);
  assert.throws(() => structAtAddress('task_struct', '0xzz'), /'0xzz' is not an address/);
});
