// The shm transport, both access methods, checked against plain file I/O on the same file in
// /dev/shm (what the agent sees through its own mapping).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libcAbi, openShmTransport, ShmAccess } from '../../src/rdma/shm';
import { TransportError } from '../../src/rdma/transport';

const SIZE = 3 * 4096;

for (const access of ['mmap', 'pread'] as ShmAccess[]) {
  test(`shm ${access}: reads, writes and words reach the file's pages`, async () => {
    const path = `/dev/shm/grass-unit-${process.pid}-${access}`;
    const initial = randomBytes(SIZE);
    writeFileSync(path, initial);
    const t = await openShmTransport(path, access);
    try {
      assert.equal(t.size, SIZE);
      assert.deepEqual(Buffer.from(await t.read(100, 900)), initial.subarray(100, 1000));

      const data = randomBytes(5000);
      await t.write(3000, data);
      await t.writeWord(8192, 0x0123456789abcdefn);
      const file = readFileSync(path);
      assert.deepEqual(file.subarray(3000, 8000), data);
      assert.equal(file.readBigUInt64LE(8192), 0x0123456789abcdefn);

      // A change made behind the transport's back (as the agent does) is seen.
      const other = Buffer.alloc(8);
      other.writeBigUInt64LE(0xfeedfacecafebeefn);
      writeFileSync(path, Buffer.concat([file.subarray(0, 4096), other, file.subarray(4104)]));
      assert.equal(await t.readWord(4096), 0xfeedfacecafebeefn);

      await assert.rejects(t.read(SIZE - 4, 8), TransportError);
      await assert.rejects(t.writeWord(12, 1n), /not 8-byte aligned/);
      await assert.rejects(t.read(-1, 1), TransportError);
    } finally {
      await t.close();
      rmSync(path, { force: true });
    }
    await assert.rejects(t.read(0, 8), /used after close/);
  });
}

test('shm: a missing or empty buffer file is a transport error naming the path', async () => {
  const path = `/dev/shm/grass-unit-${process.pid}-missing`;
  await assert.rejects(openShmTransport(path), (err: Error) => err instanceof TransportError && err.message.includes(path));
  writeFileSync(path, '');
  try {
    await assert.rejects(openShmTransport(path), /empty/);
  } finally {
    rmSync(path, { force: true });
  }
});

test('shm: slot claims exclude other clients of the same buffer until released', async () => {
  const path = `/dev/shm/grass-unit-${process.pid}-claims`;
  writeFileSync(path, Buffer.alloc(SIZE));
  const first = await openShmTransport(path, 'mmap');
  const second = await openShmTransport(path, 'pread');
  try {
    assert.equal(await first.tryClaim!(4096), true);
    assert.equal(await first.tryClaim!(4096), true, 'a client may re-claim what it holds');
    assert.equal(await second.tryClaim!(4096), false);
    assert.equal(await second.tryClaim!(8192), true);
    assert.equal(await first.tryClaim!(8192), false);
    await first.releaseClaim!(4096);
    assert.equal(await second.tryClaim!(4096), true);
    await second.close();
    assert.equal(await first.tryClaim!(8192), true, 'claims of a closed client are gone');
  } finally {
    await first.close();
    await second.close();
    rmSync(path, { force: true });
  }
});

test('shm: a buffer file removed or recreated at the path is reported as replaced', async () => {
  const path = `/dev/shm/grass-unit-${process.pid}-replaced`;
  writeFileSync(path, Buffer.alloc(SIZE));
  const transports = [await openShmTransport(path, 'mmap'), await openShmTransport(path, 'pread')];
  try {
    for (const t of transports) assert.equal(await t.replaced!(), false);
    rmSync(path);
    for (const t of transports) assert.equal(await t.replaced!(), true, `${t.name} after removal`);
    writeFileSync(path, Buffer.alloc(SIZE));
    for (const t of transports) assert.equal(await t.replaced!(), true, `${t.name} after re-creation`);
  } finally {
    for (const t of transports) await t.close();
    rmSync(path, { force: true });
  }
});

test('the libc constants and struct flock layout used by the shm transport match the C headers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grass-libc-'));
  try {
    const fields = ['l_type', 'l_whence', 'l_start', 'l_len', 'l_pid'] as const;
    const constants = ['F_OFD_GETLK', 'F_OFD_SETLK', 'F_RDLCK', 'F_WRLCK', 'F_UNLCK', 'EAGAIN', 'EACCES', 'PROT_READ', 'PROT_WRITE', 'MAP_SHARED'] as const;
    const source = [
      '#define _GNU_SOURCE',
      '#include <errno.h>',
      '#include <fcntl.h>',
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include <sys/mman.h>',
      'int main(void) {',
      '  printf("size %zu\\n", sizeof(struct flock));',
      ...fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct flock, ${f}));`),
      ...constants.map((c) => `  printf("${c} %d\\n", (int)(${c}));`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'abi.c'), source);
    execFileSync('gcc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')]);
    const printed = Object.fromEntries(execFileSync(join(dir, 'abi'), { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    assert.equal(printed.size, libcAbi.flock.size);
    for (const f of fields) assert.equal(printed[f], libcAbi.flock[f], `offsetof(struct flock, ${f})`);
    for (const c of constants) assert.equal(printed[c], libcAbi[c], c);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
