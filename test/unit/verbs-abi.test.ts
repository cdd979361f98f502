// The verbs transport reads and writes libibverbs/librdmacm structs by offset and calls
// ibv_context.ops slots by pointer. A C program compiled against the installed rdma-core
// headers prints offsetof/sizeof of every member and the value of every constant the
// TypeScript side relies on; each must match. The GRASS set-up message (grass/rdma.h) is
// checked the same way, and a hello filled in by C is decoded by TypeScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as abi from '../../src/rdma/verbs/abi';
import { encodeSockaddr, formatSockaddr } from '../../src/rdma/verbs/sockaddr';
import { decodeHello, HELLO_BYTES, HELLO_MAGIC, HELLO_NAME_BYTES, helloLayout } from '../../src/rdma/verbs/hello';
import { GRASS_PROTOCOL_VERSION } from '../../src/rdma/protocol/wire.generated';

const repo = path.resolve(__dirname, '../..');
const includeDir = path.join(repo, 'gpu/include');

function compileAndRun(source: string, libs: string[] = []): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'grass-verbs-abi-'));
  try {
    writeFileSync(path.join(dir, 'abi.c'), source);
    execFileSync('gcc', ['-std=gnu11', '-Wall', '-Werror', '-I', includeDir, '-o', path.join(dir, 'abi'), path.join(dir, 'abi.c'), ...libs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return execFileSync(path.join(dir, 'abi'), { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const headers = ['#include <stddef.h>', '#include <stdio.h>', '#include <string.h>', '#include <netinet/in.h>', '#include <infiniband/verbs.h>', '#include <rdma/rdma_cma.h>', '#include "grass/protocol.h"', '#include "grass/rdma.h"'];

test('set-up: rdma-core development headers are installed', () => {
  execFileSync(path.join(repo, 'scripts/lib/ensure-debs.sh'), ['libibverbs-dev', 'librdmacm-dev', 'gcc', 'libc6-dev'], { stdio: 'inherit' });
});

test('every struct member, size and constant the verbs transport uses matches rdma-core headers', () => {
  const lines: string[] = [];
  for (const name of Object.keys(abi.fields)) {
    const [struct, ...member] = name.split('.');
    lines.push(`  printf("offsetof ${name} %zu\\n", offsetof(struct ${struct}, ${member.join('.')}));`);
    lines.push(`  printf("fieldsize ${name} %zu\\n", sizeof(((struct ${struct} *)0)->${member.join('.')}));`);
  }
  for (const name of Object.keys(abi.sizes)) lines.push(`  printf("sizeof ${name} %zu\\n", sizeof(struct ${name}));`);
  for (const name of [...Object.keys(abi.constants), 'RDMA_MAX_RESP_RES', 'RDMA_MAX_INIT_DEPTH']) {
    lines.push(`  printf("const ${name} %lld\\n", (long long)(${name}));`);
  }
  for (const member of Object.keys(helloLayout)) {
    lines.push(`  printf("hello ${member} %zu\\n", offsetof(struct grass_rdma_hello, ${member}));`);
  }
  lines.push('  printf("hellosize x %zu\\n", sizeof(struct grass_rdma_hello));');
  lines.push('  printf("hellomagic x %llu\\n", (unsigned long long)GRASS_RDMA_HELLO_MAGIC);');
  lines.push('  printf("helloname x %zu\\n", sizeof(((struct grass_rdma_hello *)0)->name));');
  const source = [...headers, 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n');
  const printed = new Map<string, number>();
  for (const line of compileAndRun(source).trim().split('\n')) {
    const [kind, name, value] = line.split(' ');
    printed.set(`${kind} ${name}`, Number(value));
  }
  for (const [name, f] of Object.entries(abi.fields)) {
    assert.equal(printed.get(`offsetof ${name}`), f.offset, `offsetof ${name}`);
    assert.equal(printed.get(`fieldsize ${name}`), f.size, `sizeof ${name}`);
  }
  for (const [name, size] of Object.entries(abi.sizes)) assert.equal(printed.get(`sizeof ${name}`), size, `sizeof(struct ${name})`);
  for (const [name, value] of Object.entries(abi.constants)) assert.equal(printed.get(`const ${name}`), value, name);
  assert.equal(printed.get('const RDMA_MAX_RESP_RES'), abi.RDMA_MAX_RESP_RES);
  assert.equal(printed.get('const RDMA_MAX_INIT_DEPTH'), abi.RDMA_MAX_INIT_DEPTH);
  for (const [member, offset] of Object.entries(helloLayout)) assert.equal(printed.get(`hello ${member}`), offset, `offsetof(struct grass_rdma_hello, ${member})`);
  assert.equal(printed.get('hellosize x'), HELLO_BYTES);
  assert.equal(printed.get('hellomagic x'), HELLO_MAGIC);
  assert.equal(printed.get('helloname x'), HELLO_NAME_BYTES);
});

test('ibv_post_send, ibv_poll_cq and ibv_req_notify_cq are the ops slots the transport calls', () => {
  // The static inline wrappers must still be one-line calls through these members; if a future
  // rdma-core routed them elsewhere (e.g. through verbs_context), calling the slot would be wrong.
  const verbsH = execFileSync('sh', ['-c', 'cat "$(echo \'#include <infiniband/verbs.h>\' | gcc -M -xc - | tr " " "\\n" | grep "infiniband/verbs.h$" | head -1)"'], { encoding: 'utf8' });
  assert.match(verbsH, /static inline int ibv_post_send\([^)]*\)\s*\{\s*return qp->context->ops\.post_send\(qp, wr, bad_wr\);\s*\}/);
  assert.match(verbsH, /static inline int ibv_poll_cq\([^)]*\)\s*\{\s*return cq->context->ops\.poll_cq\(cq, num_entries, wc\);\s*\}/);
});

test('a hello filled in by C decodes to the same values in TypeScript', () => {
  const out = compileAndRun([...headers, `int main(void) {
  struct grass_rdma_hello h; memset(&h, 0, sizeof h);
  h.magic = GRASS_RDMA_HELLO_MAGIC; h.version = GRASS_PROTOCOL_VERSION;
  h.buffer_addr = 0x7f1234567000ull; h.buffer_bytes = 9441280; h.rkey = 0xabcd12;
  strcpy(h.name, "guest-one");
  const unsigned char *p = (const unsigned char *)&h;
  for (size_t i = 0; i < sizeof h; i++) printf("%02x", p[i]);
  return 0;
}`].join('\n'));
  const hello = decodeHello(Buffer.from(out.trim(), 'hex'), 'test');
  assert.deepEqual(hello, { version: GRASS_PROTOCOL_VERSION, bufferAddress: 0x7f1234567000n, bufferBytes: 9441280, rkey: 0xabcd12, name: 'guest-one' });
  assert.throws(() => decodeHello(Buffer.alloc(HELLO_BYTES), 'peer'), /bad set-up magic 0x0/);
  assert.throws(() => decodeHello(Buffer.alloc(8), 'peer'), /8 bytes, expected 56/);
});

test('a member the headers do not have fails to compile (the comparison is live)', () => {
  assert.throws(() => compileAndRun([...headers, 'int main(void) { return (int)offsetof(struct ibv_send_wr, no_such_member); }'].join('\n')));
});

test('sockaddr_in/in6 built for rdma_cm equal what inet_pton and htons make', () => {
  const cases: [string, 4 | 6, number][] = [['10.11.12.1', 4, 7471], ['fe80::1:2', 6, 7471], ['::1', 6, 1], ['2001:db8:0:0:1:0:0:1', 6, 65535]];
  const body = cases.map(([a, f, port], i) => f === 4
    ? `{ struct sockaddr_in s; memset(&s, 0, sizeof s); s.sin_family = AF_INET; s.sin_port = htons(${port}); inet_pton(AF_INET, "${a}", &s.sin_addr); dump(${i}, &s, sizeof s); }`
    : `{ struct sockaddr_in6 s; memset(&s, 0, sizeof s); s.sin6_family = AF_INET6; s.sin6_port = htons(${port}); inet_pton(AF_INET6, "${a}", &s.sin6_addr); dump(${i}, &s, sizeof s); }`).join('\n');
  const out = compileAndRun([...headers, '#include <arpa/inet.h>',
    'static void dump(int i, const void *p, size_t n) { printf("%d ", i); for (size_t k = 0; k < n; k++) printf("%02x", ((const unsigned char *)p)[k]); printf("\\n"); }',
    `int main(void) {\n${body}\n  return 0;\n}`].join('\n'));
  const lines = out.trim().split('\n');
  cases.forEach(([address, family, port], i) => {
    assert.equal(encodeSockaddr(address, family, port).toString('hex'), lines[i].split(' ')[1], address);
    assert.equal(formatSockaddr(Buffer.concat([encodeSockaddr(address, family, port), Buffer.alloc(100)])).endsWith(`:${port}`), true);
  });
});
