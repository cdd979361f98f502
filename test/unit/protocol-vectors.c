// Known vectors for test/unit/protocol.test.ts, built from the real protocol.h structs and
// OpenSSL's HMAC: what the agent side (C/C++) would put on the wire. Prints one JSON object.
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include "grass/protocol.h"

static void hex(const char *name, const void *p, size_t n, int last) {
  printf("\"%s\":\"", name);
  for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);
  printf("\"%s\n", last ? "" : ",");
}

int main(void) {
  unsigned char key[32];
  for (int i = 0; i < 32; i++) key[i] = (unsigned char)(0xa0 + i);
  const uint64_t instance = 0x0123456789abcdefull;
  const uint32_t slot = 3;
  const char data[] = "request data: twenty-nine byt";

  struct grass_request req;
  memset(&req, 0, sizeof req);
  req.seq = 0x1122334455667788ull;
  req.opcode = GRASS_OP_READ_BATCH;
  req.data_bytes = sizeof data - 1;
  for (unsigned i = 0; i < GRASS_REQUEST_ARGS; i++) req.args[i] = 0xf0f0f0f000000000ull + i;

  unsigned char message[8 + 4 + sizeof req + sizeof data];
  size_t n = 0;
  memcpy(message + n, &instance, 8), n += 8;
  memcpy(message + n, &slot, 4), n += 4;
  memcpy(message + n, &req, offsetof(struct grass_request, mac)), n += offsetof(struct grass_request, mac);
  memcpy(message + n, data, req.data_bytes), n += req.data_bytes;
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key, sizeof key, message, n, req.mac, &mac_len);

  struct grass_task_record task;
  memset(&task, 0, sizeof task);
  task.task_address = 0xffff888003a1c000ull;
  task.pid = 4242;
  task.tgid = 4240;
  task.ppid = -1;
  task.cpu = 1;
  task.utime_ns = 123456789012ull;
  task.stime_ns = 987654321ull;
  task.rss_bytes = 1ull << 33;
  task.threads = 7;
  task.state = 'D';
  strcpy(task.comm, "kworker/u4:2");

  struct grass_read_batch_entry entries[2];
  memset(entries, 0, sizeof entries);
  entries[0].space = GRASS_SPACE_KERNEL;
  entries[0].address = 0xffffffff82000000ull;
  entries[0].length = 64;
  entries[1].space = GRASS_SPACE_USER;
  entries[1].pid = 77;
  entries[1].address = 0x7ffd0000ull;
  entries[1].length = 4096;

  printf("{\n");
  hex("key", key, sizeof key, 0);
  hex("data", data, req.data_bytes, 0);
  hex("request", &req, sizeof req, 0);
  hex("task", &task, sizeof task, 0);
  hex("batch", entries, sizeof entries, 1);
  printf("}\n");
  return mac_len == 32 ? 0 : 1;
}
