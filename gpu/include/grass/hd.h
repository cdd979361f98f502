// Portability of the monitor code: one source for the cpu backend (host compiler) and the cuda
// backend (nvcc). Functions that run in the monitor loop are GRASS_HD and use only plain structs.
#ifndef GRASS_HD_H
#define GRASS_HD_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#ifdef __CUDACC__
#define GRASS_HD __host__ __device__ inline
// For the large monitor functions: one call site each would otherwise be inlined into one huge
// device function, which takes cicc/ptxas minutes and bloats the persistent kernel.
#define GRASS_HD_CALL __host__ __device__ __noinline__
// Loops with a fixed trip count that must be unrolled on the device so that their arrays live in
// registers rather than in local memory (SHA-256's schedule).
#define GRASS_UNROLL _Pragma("unroll")
#else
#define GRASS_HD inline
#define GRASS_HD_CALL inline
#define GRASS_UNROLL
#endif

// Orders the stores before it with the stores after it, as seen by another agent of the system
// (the remote through the NIC, or the shm client).
GRASS_HD void grass_fence() {
#ifdef __CUDA_ARCH__
  __threadfence_system();
#else
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

GRASS_HD uint64_t grass_load_mark(const uint64_t* p) { return *(const volatile uint64_t*)p; }
GRASS_HD void grass_store_mark(uint64_t* p, uint64_t v) { *(volatile uint64_t*)p = v; }

// The cuda backend's copy grid (below): copies from this size, in chunks of this size.
#define GRASS_GRID_COPY_MIN (64u * 1024u)
#define GRASS_GRID_CHUNK_BYTES (16u * 1024u)
#define GRASS_GRID_MAX_CHUNKS 4096u  // chunk CRCs kept per job: copies up to 64 MiB per job

#ifdef __CUDACC__
// Large copies and checksums handed to the other warps of the monitor's block, when its kernel
// keeps them (cuda_backend.cu's persistent kernel sets grass_copy_helpers to its block's mailbox;
// each translation unit has its own, null elsewhere). The poster waits for every helper's share.
// A copy is 16-byte loads (8-byte where the ends allow no more) spread over the helpers so that a
// warp's loads are consecutive, several per helper in flight; a checksum gives each helper one
// contiguous piece and joins the pieces' CRC32s (crc32.h), so the value is the serial one.
enum { GRASS_JOB_COPY16 = 1, GRASS_JOB_COPY8 = 2, GRASS_JOB_CRC32 = 3, GRASS_JOB_PS_RECORDS = 4 };
struct grass_copy_job {
  const uint8_t* src;
  uint8_t* dst;
  uint64_t units;        // copy: 16- or 8-byte units; checksum: bytes
  const void* tables;    // checksum: the grass_crc32_tables
  uint32_t kind;         // GRASS_JOB_*; 0: the helpers leave
  uint32_t generation;   // bumped by the poster for each job
  uint32_t done;         // helpers that finished the current job
  uint32_t helpers;      // helper threads (the block's threads past the first warp)
  uint32_t crc;          // checksum: the helpers' pieces, joined (XOR of shifted CRCs)
  uint32_t first_failed; // process records (process_list.h): the lowest record that failed to read
  const void* ps[3];     // process records: the walk's memory map, paging and layout (not its
                         // context: that lives in the poster's thread-private stack)
};
static __device__ grass_copy_job* grass_copy_helpers = 0;
#define GRASS_PARALLEL_COPY_MIN 4096u

// Large copies handed to a grid of copy blocks beside the monitor's kernel, when the cuda
// backend runs one (cuda_backend.cu sets grass_copy_grid; null elsewhere): one block's threads
// cannot keep enough PCIe reads in flight to come near the bus's bandwidth. A work queue, not a
// cooperative launch: a block claims 16 KiB chunks from the ticket until none are left, so the
// copy finishes whichever of the grid's blocks are resident beside the monitor. Each block also
// takes the raw CRC of every chunk it copies while the bytes are in registers, so the reply's
// checksum (crc32.h) needs no second pass over the data: the memo keeps the last copy's chunk
// CRCs, valid until a later copy writes into that destination.
struct grass_grid_job {
  const uint8_t* src;
  uint8_t* dst;
  uint64_t bytes;                    // a multiple of 16; src and dst 16-byte aligned
  unsigned long long ticket;         // generation << 32 | next chunk to claim
  uint32_t chunks_done;
  uint32_t quit;
  uint32_t* chunk_crc;               // [GRASS_GRID_MAX_CHUNKS]: each chunk's raw CRC (no init, no final xor)
  const void* tables;                // the grass_crc32_grid_tables (crypto/crc32_grid.h)
  const uint8_t* memo_dst;           // the last job's destination and length, while no copy wrote into it
  uint64_t memo_bytes;
  // What the grid did, for the agent's reaction record: copies posted, chunks the grid copied,
  // chunks the poster copied itself after the grid made no progress for GRASS_GRID_STALL_NS.
  unsigned long long copies, chunks_by_grid, chunks_by_poster, stalls;
};
static __device__ grass_grid_job* grass_copy_grid = 0;
#define GRASS_GRID_STALL_NS 20000000ull

__device__ inline uint64_t grass_device_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)::"memory");
  return t;
}

// Copies bytes (16-byte multiple, aligned) by the grid and waits for every chunk. When no chunk
// completes for GRASS_GRID_STALL_NS (the grid's blocks not resident, or stuck), the poster claims
// the chunks left through the same ticket and copies them itself, so a copy always ends; the memo
// is then not kept (those chunks have no CRC).
__device__ inline void grass_run_grid_copy(grass_grid_job* job, uint8_t* dst, const uint8_t* src, uint64_t bytes) {
  volatile grass_grid_job* v = job;
  v->src = src;
  v->dst = dst;
  v->bytes = bytes;
  v->chunks_done = 0;
  uint32_t chunks = (uint32_t)((bytes + GRASS_GRID_CHUNK_BYTES - 1) / GRASS_GRID_CHUNK_BYTES);
  __threadfence();
  unsigned long long generation = (v->ticket >> 32) + 1;
  atomicExch(&job->ticket, generation << 32);
  v->copies = v->copies + 1;
  uint32_t done, seen = 0, by_poster = 0;
  uint64_t since = grass_device_ns();
  while ((done = atomicAdd(&job->chunks_done, 0u)) != chunks) {
    uint64_t now = grass_device_ns();
    if (done != seen) { seen = done; since = now; continue; }
    if (now - since < GRASS_GRID_STALL_NS) continue;
    v->stalls = v->stalls + 1;
    for (;;) {
      unsigned long long ticket = v->ticket;
      if ((uint32_t)ticket >= chunks) break;
      if (atomicCAS(&job->ticket, ticket, ticket + 1) != ticket) continue;
      uint64_t at = (uint64_t)(uint32_t)ticket * GRASS_GRID_CHUNK_BYTES;
      uint64_t n = bytes - at < GRASS_GRID_CHUNK_BYTES ? bytes - at : GRASS_GRID_CHUNK_BYTES;
      for (uint64_t k = 0; k < n; k += 8) *(uint64_t*)(dst + at + k) = *(const volatile uint64_t*)(src + at + k);
      atomicAdd(&job->chunks_done, 1u);
      by_poster++;
    }
    since = now;
  }
  __threadfence();
  v->chunks_by_grid = v->chunks_by_grid + (chunks - by_poster);
  v->chunks_by_poster = v->chunks_by_poster + by_poster;
  v->memo_dst = dst;
  v->memo_bytes = by_poster ? 0 : bytes;
}

// A copy into [dst, dst + n) that did not go through the grid makes the memo stale if it overlaps.
__device__ inline void grass_grid_memo_written(const uint8_t* dst, uint64_t n) {
  grass_grid_job* job = grass_copy_grid;
  if (job && job->memo_bytes && dst < job->memo_dst + job->memo_bytes && job->memo_dst < dst + n) job->memo_bytes = 0;
}

// Posts a job to the helpers and waits until each has done its share.
__device__ inline void grass_run_helper_job(grass_copy_job* job) {
  job->done = 0;
  job->crc = 0;
  __threadfence_block();
  atomicAdd(&job->generation, 1u);
  while (atomicAdd(&job->done, 0u) != job->helpers) {}
  __threadfence();
}
#endif

// Copy out of target memory or into the buffer. On the device: spread over the helper warps
// when large and 8-byte aligned, else 8-byte words when both ends allow it; on the host: the C
// library's memcpy.
GRASS_HD void grass_copy(void* dst, const void* src, uint64_t n) {
#ifdef __CUDA_ARCH__
  uint8_t* d = (uint8_t*)dst;
  const uint8_t* s = (const uint8_t*)src;
  grass_copy_job* job = grass_copy_helpers;
  grass_grid_job* grid = grass_copy_grid;
  if (grid && n >= GRASS_GRID_COPY_MIN && n / 16 <= (uint64_t)GRASS_GRID_MAX_CHUNKS * (GRASS_GRID_CHUNK_BYTES / 16) &&
      (((uintptr_t)d | (uintptr_t)s) & 15) == 0) {
    uint64_t body = n & ~15ull;
    grass_run_grid_copy(grid, d, s, body);
    d += body, s += body, n -= body;
    if (n) grass_grid_memo_written(d, n);  // the tail is copied below (the memo covers only the body)
  } else {
    grass_grid_memo_written(d, n);
  }
  if (job && n >= GRASS_PARALLEL_COPY_MIN && (((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
    uint64_t unit = (((uintptr_t)d | (uintptr_t)s) & 15) == 0 ? 16 : 8;
    job->src = s;
    job->dst = d;
    job->units = n / unit;
    job->kind = unit == 16 ? GRASS_JOB_COPY16 : GRASS_JOB_COPY8;
    grass_run_helper_job(job);
    d += job->units * unit, s += job->units * unit, n -= job->units * unit;
  }
  if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
    // Up to eight words loaded before any is stored, so their loads are in flight together
    // (a load then its store, word by word, pays a memory latency per word).
    while (n >= 8) {
      uint64_t w[8], words = n / 8 < 8 ? n / 8 : 8;
#pragma unroll
      for (uint64_t k = 0; k < 8; k++)
        if (k < words) w[k] = ((const volatile uint64_t*)s)[k];
#pragma unroll
      for (uint64_t k = 0; k < 8; k++)
        if (k < words) ((uint64_t*)d)[k] = w[k];
      d += 8 * words, s += 8 * words, n -= 8 * words;
    }
  }
  for (; n > 0; n--) *d++ = *(const volatile uint8_t*)s++;
#else
  memcpy(dst, src, n);
#endif
}

GRASS_HD void grass_zero(void* dst, uint64_t n) {
  uint8_t* d = (uint8_t*)dst;
#ifdef __CUDA_ARCH__
  grass_grid_memo_written(d, n);
#endif
  for (; n > 0; n--) *d++ = 0;
}

#endif
