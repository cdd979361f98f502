// GRASS over RDMA: what the agent tells its peer when a connection is set up. It travels as
// rdma_cm private data (the connect request when the agent connects out to a monitor, the
// accept when a monitor connects to a listening agent): RDMA_PS_TCP carries 56 bytes in a REQ.
// Checked from TypeScript by test/unit/verbs-abi.test.ts.
#ifndef GRASS_RDMA_H
#define GRASS_RDMA_H

#include <stdint.h>

#define GRASS_RDMA_HELLO_MAGIC 0x4f4c4548u /* "HELO" little-endian */
#define GRASS_RDMA_DEFAULT_PORT 7471

struct grass_rdma_hello {
  uint32_t magic;          /* GRASS_RDMA_HELLO_MAGIC */
  uint32_t version;        /* GRASS_PROTOCOL_VERSION of the buffer behind it */
  uint64_t buffer_addr;    /* remote address of the GRASS buffer (the MR's address) */
  uint64_t buffer_bytes;
  uint32_t rkey;
  uint32_t reserved0;
  char name[24];           /* the target's name, NUL-padded (not terminated when 24 long) */
};

#endif
