// Framing, HMAC and CRC of the protocol client against vectors from outside it: the real C
// structs of protocol.h filled and signed with OpenSSL (test/unit/protocol-vectors.c), CRC32C's
// check value and RFC 3720's vectors, RFC 4231's HMAC-SHA256 vector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import * as codec from '../../src/rdma/protocol/codec';
import * as L from '../../src/rdma/protocol/layout';
import { parseDescription, parseKallsyms } from '../../src/rdma/protocol/description';
import { parseTargetAddress } from '../../src/rdma/address';

interface Vectors {
  key: string;
  data: string;
  request: string;
  task: string;
  batch: string;
}

function cVectors(): Vectors {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-vectors-'));
  try {
    const exe = path.join(dir, 'vectors');
    execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-I', path.resolve(__dirname, '../../gpu/include'), '-o', exe, path.join(__dirname, 'protocol-vectors.c'), '-lcrypto'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Vectors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const vectors = cVectors();
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

test('a signed request equals the C struct signed with OpenSSL per the header', () => {
  const key = Buffer.from(vectors.key, 'hex');
  const data = Buffer.from(vectors.data, 'hex');
  const args = [0n, 1n, 2n, 3n, 4n, 5n].map((i) => 0xf0f0f0f000000000n + i);
  const bytes = codec.signedRequest(key, 0x0123456789abcdefn, 3, { seq: 0x1122334455667788n, opcode: L.Opcode.ReadBatch, dataBytes: data.length, args }, data);
  assert.equal(hex(bytes), vectors.request);
});

test('the MAC changes with each covered part: instance, slot, seq, args, data', () => {
  const key = Buffer.from(vectors.key, 'hex');
  const data = Buffer.from(vectors.data, 'hex');
  const fields = { seq: 5n, opcode: L.Opcode.Read, dataBytes: data.length, args: [1n, 2n] };
  const base = hex(codec.signedRequest(key, 1n, 0, fields, data));
  const variants = [
    codec.signedRequest(key, 2n, 0, fields, data),
    codec.signedRequest(key, 1n, 1, fields, data),
    codec.signedRequest(key, 1n, 0, { ...fields, seq: 6n }, data),
    codec.signedRequest(key, 1n, 0, { ...fields, args: [1n, 3n] }, data),
    codec.signedRequest(key, 1n, 0, fields, Buffer.from(data.map((b, i) => (i === 0 ? b ^ 1 : b)))),
  ];
  const macs = new Set(variants.map((v) => hex(v.subarray(L.request.fields.mac.offset))));
  assert.equal(macs.size, variants.length);
  assert.ok(!macs.has(base.slice(L.request.fields.mac.offset * 2)));
});

test('request data whose length disagrees with data_bytes is rejected before signing', () => {
  assert.throws(() => codec.signedRequest(new Uint8Array(32), 0n, 0, { seq: 1n, opcode: L.Opcode.Read, dataBytes: 3, args: [] }, new Uint8Array(2)), /data_bytes/);
});

test('node:crypto HMAC-SHA256 matches RFC 4231 test case 2', () => {
  const mac = createHmac('sha256', 'Jefe').update('what do ya want for nothing?').digest('hex');
  assert.equal(mac, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

test('the reply CRC is CRC32C: the check value of "123456789" (0xe3069283) and RFC 3720 B.4\'s vectors', () => {
  assert.equal(codec.dataCrc32(Buffer.from('123456789')), 0xe3069283);
  assert.equal(codec.dataCrc32(new Uint8Array(0)), 0);
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(codec.dataCrc32(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(codec.dataCrc32(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(codec.dataCrc32(ascending), 0x46dd794e);
  assert.equal(codec.dataCrc32(ascending.slice().reverse()), 0x113fdb5c);
  // A view into a larger buffer checks only its own bytes.
  const larger = new Uint8Array(40);
  larger.set(ascending, 4);
  assert.equal(codec.dataCrc32(larger.subarray(4, 36)), 0x46dd794e);
});

test('a task record from the C struct decodes field by field', () => {
  const [task] = codec.decodeTaskRecords(Buffer.from(vectors.task, 'hex'));
  assert.deepEqual(task, {
    taskAddress: 0xffff888003a1c000n,
    pid: 4242,
    tgid: 4240,
    ppid: -1,
    cpu: 1,
    utimeNs: 123456789012n,
    stimeNs: 987654321n,
    rssBytes: 1n << 33n,
    threads: 7,
    state: 'D',
    comm: 'kworker/u4:2',
  });
  assert.throws(() => codec.decodeTaskRecords(new Uint8Array(L.taskRecord.size + 1)), /whole number/);
});

test('read-batch entries encode as the C struct array', () => {
  const bytes = codec.encodeReadBatchEntries([
    { space: L.Space.Kernel, pid: 0, address: 0xffffffff82000000n, length: 64 },
    { space: L.Space.User, pid: 77, address: 0x7ffd0000n, length: 4096 },
  ]);
  assert.equal(hex(bytes), vectors.batch);
});

function descriptionBlob(sections: { release: string; symbols: string; btf: Uint8Array; vmcoreinfo: string; ranges: [bigint, bigint][] }): Uint8Array {
  const f = L.descriptionHeader.fields;
  const parts: Uint8Array[] = [];
  let at = L.descriptionHeader.size;
  const header = Buffer.alloc(L.descriptionHeader.size);
  const place = (bytes: Uint8Array, offsetField: string, bytesField?: string): void => {
    header.writeBigUInt64LE(BigInt(at), f[offsetField].offset);
    if (bytesField) header.writeBigUInt64LE(BigInt(bytes.length), f[bytesField].offset);
    parts.push(bytes);
    at += bytes.length;
  };
  header.writeUInt32LE(L.GRASS_PROTOCOL_VERSION, f.version.offset);
  header.writeUInt32LE(5, f.paging_levels.offset);
  header.writeBigUInt64LE(0x2a000000n, f.kaslr_offset.offset);
  header.writeBigUInt64LE(0xffffffffd0800000n, f.phys_base.offset);
  header.writeBigUInt64LE(0xff11000000000000n, f.page_offset_base.offset);
  header.writeBigUInt64LE(0x3c0a000n, f.page_table_root.offset);
  header.writeUInt32LE(2, f.cpu_count.offset);
  header.writeUInt32LE(sections.ranges.length, f.memory_range_count.offset);
  const map = Buffer.alloc(sections.ranges.length * 16);
  sections.ranges.forEach(([start, length], i) => {
    map.writeBigUInt64LE(start, i * 16);
    map.writeBigUInt64LE(length, i * 16 + 8);
  });
  place(map, 'memory_map_offset');
  place(Buffer.from(sections.release), 'release_offset', 'release_bytes');
  place(Buffer.from(sections.vmcoreinfo), 'vmcoreinfo_offset', 'vmcoreinfo_bytes');
  place(Buffer.from(sections.symbols), 'symbols_offset', 'symbols_bytes');
  place(sections.btf, 'btf_offset', 'btf_bytes');
  return Buffer.concat([header, ...parts]);
}

test('a description blob parses into a TargetDescription', () => {
  const blob = descriptionBlob({
    release: '6.1.0-56-amd64',
    symbols: 'ffffffff81000000 T _text\nffffffff82a00940 D init_task\nffffffffc0002000 t helper\t[virtio_net]\n',
    btf: Uint8Array.from([0x9f, 0xeb, 1, 0]),
    vmcoreinfo: 'OSRELEASE=6.1.0-56-amd64\n',
    ranges: [[0x1000n, 0x9f000n], [0x100000000n, 0x40000000n]],
  });
  const d = parseDescription(blob);
  assert.equal(d.release, '6.1.0-56-amd64');
  assert.equal(d.pagingLevels, 5);
  assert.equal(d.kaslrOffset, 0x2a000000n);
  assert.equal(d.physBase, 0xffffffffd0800000n);
  assert.equal(d.pageOffsetBase, 0xff11000000000000n);
  assert.equal(d.pageTableRoot, 0x3c0a000n);
  assert.equal(d.cpuCount, 2);
  assert.deepEqual(d.memoryMap, [{ physStart: 0x1000n, length: 0x9f000n }, { physStart: 0x100000000n, length: 0x40000000n }]);
  assert.deepEqual(d.symbols.map((s) => [s.name, s.type, s.address]), [
    ['_text', 'T', 0xffffffff81000000n],
    ['init_task', 'D', 0xffffffff82a00940n],
    ['helper', 't', 0xffffffffc0002000n],
  ]);
  assert.deepEqual([...d.btf], [0x9f, 0xeb, 1, 0]);
  assert.equal(d.vmcoreinfo, 'OSRELEASE=6.1.0-56-amd64\n');
});

test('a truncated or inconsistent description is refused naming the part', () => {
  const blob = descriptionBlob({ release: 'r', symbols: '', btf: new Uint8Array(8), vmcoreinfo: '', ranges: [] });
  assert.throws(() => parseDescription(blob.subarray(0, blob.length - 1)), /BTF section .* runs past/);
  assert.throws(() => parseDescription(blob.subarray(0, 10)), /shorter than its/);
  const badLevels = Buffer.from(blob);
  badLevels.writeUInt32LE(3, L.descriptionHeader.fields.paging_levels.offset);
  assert.throws(() => parseDescription(badLevels), /paging_levels is 3/);
  assert.throws(() => parseKallsyms('ffffffff81000000 T _text\nnot a symbol line\n'), /line 2/);
});

test('target addresses parse per DESIGN §6', () => {
  assert.deepEqual(parseTargetAddress('shm:/dev/shm/grass-1'), { kind: 'shm', path: '/dev/shm/grass-1' });
  assert.deepEqual(parseTargetAddress('rdma://10.0.0.2'), { kind: 'rdma', host: '10.0.0.2', port: 7471 });
  assert.deepEqual(parseTargetAddress('rdma://[fe80::1]:9000'), { kind: 'rdma', host: 'fe80::1', port: 9000 });
  assert.deepEqual(parseTargetAddress('vmcore:/tmp/a.core'), { kind: 'vmcore', path: '/tmp/a.core' });
  assert.deepEqual(parseTargetAddress('qemu-ram:/dev/shm/ram?map=/tmp/map.json'), { kind: 'qemu-ram', path: '/dev/shm/ram', memoryMap: '/tmp/map.json' });
  assert.deepEqual(parseTargetAddress('qemu-ram:/dev/shm/ram'), { kind: 'qemu-ram', path: '/dev/shm/ram' });
  for (const bad of ['', 'shm:', 'rdma://', 'rdma://h:99999', 'tcp://h', 'qemu-ram:/x?mop=1', '/dev/shm/x']) {
    assert.throws(() => parseTargetAddress(bad), /target address/, bad);
  }
});
