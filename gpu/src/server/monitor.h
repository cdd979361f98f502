// Layer 4, the GRASS buffer server: one pass of the monitor loop over every slot. Monitor code
// (GRASS_HD): the cpu backend runs it on worker threads, the cuda backend in a persistent kernel
// (grass_monitor_pass, every slot). The host prepares grass_monitor (buffer, target, plugin
// layouts, key) before the loop.
//
// Several workers (the cpu backend's --workers) share one grass_monitor; what each touches:
//  - a slot's state (last_mark, last_seq, torn_since_ns, its arena and result generation) belongs
//    to the one worker that serves the slot (slot_worker[]); FETCH_RESULT reads only its own
//    slot's arena or the description, which nobody writes after set-up;
//  - request data is copied into the serving worker's own scratch (grass_request_data);
//  - served/refused are counted per worker and summed into the liveness block, which is written
//    under liveness_lock: by worker 0 after each pass (the passes count, its clock) and, on shm,
//    by another worker before each of its replies (so a client sees its request counted);
//  - worker 0 owns the rest: the passes count and the plugins' ticks;
//  - a plugin with a tick keeps state its opcodes read (metrics samples, detector state): its
//    ticks and those opcodes run under plugin_lock (host only; worker 0 skips a pass's ticks
//    rather than wait, so a heartbeat never waits on another worker's request).
#ifndef GRASS_SERVER_MONITOR_H
#define GRASS_SERVER_MONITOR_H

#include "grass/protocol.h"
#include "crypto/crc32.h"
#include "crypto/sha256.h"
#include "translation/translate.h"
#include "process-list/process_list.h"
#include "metrics/metrics.h"
#include "detect/detect.h"

#define GRASS_MAX_SLOTS 64u
#define GRASS_MAX_WORKERS 16u
#define GRASS_TORN_REQUEST_NS 50000000ull  // a request whose seq never matches its mark: malformed after 50 ms

// Where large replies are kept until the remote has fetched every chunk: one per slot (its last
// result) plus one for the target description.
struct grass_result_arena {
  uint8_t* data;
  uint64_t capacity;
  uint64_t id;      // 0: empty
  uint64_t bytes;
};

struct grass_monitor {
  // Set up by the host.
  uint8_t* buffer;
  uint32_t slot_count, slot_bytes, slot_data_bytes;
  uint32_t allow_writes;
  grass_hmac_key key;                                // the session key, as HMAC pad states
  uint64_t instance;
  grass_phys_map mem;
  grass_paging paging;
  grass_ps_layout ps;
  grass_metrics_layout metrics;                      // resolved == 0: the metrics plugin is off
  grass_crc32_tables crc;
  grass_result_arena arenas[GRASS_MAX_SLOTS + 1];  // [slot_count] holds the description
  uint8_t* scratch;                                  // worker 0's private copy of a request's data (slot_data_bytes)
  // Workers: 0 (and slot_worker all 0) is one worker, as the cuda backend runs.
  uint32_t workers;
  uint8_t slot_worker[GRASS_MAX_SLOTS];              // the worker serving each slot
  uint8_t* worker_scratch[GRASS_MAX_WORKERS];        // [w] for w >= 1: worker w's scratch
  uint32_t plugin_lock, liveness_lock;               // see the top of this file
  // Monitor state (never in the buffer: the remote can write the buffer).
  uint64_t last_mark[GRASS_MAX_SLOTS];
  uint64_t last_seq[GRASS_MAX_SLOTS];
  uint64_t torn_since_ns[GRASS_MAX_SLOTS];
  uint64_t result_generation[GRASS_MAX_SLOTS + 1];   // per arena
  uint64_t served[GRASS_MAX_WORKERS], refused[GRASS_MAX_WORKERS];  // per worker
  uint64_t passes;
  // 0: the liveness block is republished on every pass. Otherwise at most once per period: a
  // remote's seqlocked read takes three round trips (tens of ms with rxe under emulation or
  // through the remote monitor's socket) and must fit between two updates (the agent sets it
  // for RDMA; keep it well under the 200 ms a remote waits between two liveness reads).
  uint64_t liveness_period_ns;
  uint64_t liveness_published_ns;
  uint64_t liveness_passes, liveness_clock_ns;  // worker 0's last publication (under liveness_lock)
  grass_metrics_state metrics_state;  // the metrics plugin's last two samples
  grass_detect_state* detect;         // null: the detectors are off (they need the metrics plugin)
};

GRASS_HD grass_buffer_header* grass_header(grass_monitor* mon) { return (grass_buffer_header*)mon->buffer; }
GRASS_HD grass_slot_header* grass_slot(grass_monitor* mon, uint32_t i) {
  return (grass_slot_header*)(mon->buffer + GRASS_HEADER_BYTES + (uint64_t)i * mon->slot_bytes);
}
GRASS_HD uint8_t* grass_slot_data(grass_monitor* mon, uint32_t i) { return (uint8_t*)grass_slot(mon, i) + GRASS_SLOT_DATA_OFFSET; }

GRASS_HD uint64_t grass_result_id(grass_monitor* mon, uint32_t arena) {
  return (++mon->result_generation[arena] << 8) | (arena + 1);
}

// Where slot i's request data is copied before it is checked and used: its worker's scratch.
GRASS_HD uint8_t* grass_request_data(grass_monitor* mon, uint32_t i) {
  uint32_t w = mon->slot_worker[i];
  return w ? mon->worker_scratch[w] : mon->scratch;
}

// A lock between workers (host, several workers only; the device runs one monitor thread):
// plugin_lock, liveness_lock. wait false: give up at once when it is held.
GRASS_HD bool grass_lock(grass_monitor* mon, uint32_t* word, bool wait) {
#ifndef __CUDA_ARCH__
  if (mon->workers > 1) {
    while (__atomic_exchange_n(word, 1u, __ATOMIC_ACQUIRE)) {
      if (!wait) return false;
      while (__atomic_load_n(word, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
#endif
  (void)mon, (void)word, (void)wait;
  return true;
}
GRASS_HD void grass_unlock(grass_monitor* mon, uint32_t* word) {
#ifndef __CUDA_ARCH__
  if (mon->workers > 1) __atomic_store_n(word, 0u, __ATOMIC_RELEASE);
#endif
  (void)mon, (void)word;
}

// What a request handler produced: data in the slot's data area (inline) or in an arena.
struct grass_outcome {
  uint32_t status;
  uint64_t detail;
  uint64_t inline_bytes;
  grass_result_arena* arena;  // non-null: reply with a chunk of it
  uint64_t offset;            // chunk start within the arena's result
};

// Writes the chunk (if any), then the reply, then its mark, each separated by a fence. tag: the
// request's first 4 mac bytes, so that a remote whose request with the same seq was overwritten
// by another's knows the reply is not its own.
GRASS_HD_CALL void grass_send_reply(grass_monitor* mon, uint32_t i, uint64_t seq, uint32_t tag, const grass_outcome* o) {
  grass_slot_header* h = grass_slot(mon, i);
  uint8_t* data = grass_slot_data(mon, i);
  uint64_t chunk = o->inline_bytes, total = o->inline_bytes, id = 0;
  if (o->arena) {
    total = o->arena->bytes;
    id = o->arena->id;
    chunk = total - o->offset;
    if (chunk > mon->slot_data_bytes) chunk = mon->slot_data_bytes;
    grass_copy(data, o->arena->data + o->offset, chunk);
  }
  grass_reply r;
  r.seq = seq;
  r.status = o->status;
  r.data_bytes = (uint32_t)chunk;
  r.total_bytes = total;
  r.result_id = id;
  r.offset = o->arena ? o->offset : 0;
  r.detail = o->detail;
  r.data_crc32 = grass_crc32(&mon->crc, data, chunk);
  r.request_tag = tag;
  grass_fence();
  grass_copy(&h->reply, &r, sizeof r);
  grass_fence();
  grass_store_mark(&h->reply_mark, seq);
  grass_fence();
}

GRASS_HD bool grass_valid_space(uint64_t s) { return s <= GRASS_SPACE_USER; }

// Page-table root for a space: the kernel's, or the process's for GRASS_SPACE_USER.
GRASS_HD bool grass_space_root(grass_monitor* mon, uint32_t space, uint32_t pid, uint64_t* root, grass_fault* f) {
  *root = mon->paging.root_phys;
  if (space != GRASS_SPACE_USER) return true;
  grass_ps_ctx c = {&mon->mem, &mon->paging, &mon->ps, f};
  return grass_ps_user_root(&c, pid, root);
}

GRASS_HD void grass_fault_outcome(grass_outcome* o, const grass_fault* f) {
  o->status = f->status;
  o->detail = f->address;
}

GRASS_HD_CALL void grass_op_read(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t space = q->args[0], addr = q->args[1], len = q->args[2];
  grass_result_arena* arena = &mon->arenas[i];
  if (!grass_valid_space(space) || len == 0 || len > arena->capacity) { o->status = GRASS_E_MALFORMED; o->detail = len; return; }
  grass_fault f = {0, 0};
  uint64_t root;
  if (!grass_space_root(mon, (uint32_t)space, (uint32_t)q->args[3], &root, &f)) { grass_fault_outcome(o, &f); return; }
  bool fits = len <= mon->slot_data_bytes;
  if (!fits) arena->id = 0;  // the arena is being overwritten: its old result is gone
  uint8_t* dst = fits ? grass_slot_data(mon, i) : arena->data;
  if (!grass_read(&mon->mem, &mon->paging, (uint32_t)space, root, addr, dst, len, &f)) { grass_fault_outcome(o, &f); return; }
  if (fits) {
    o->inline_bytes = len;
  } else {
    arena->id = grass_result_id(mon, i);
    arena->bytes = len;
    o->arena = arena;
  }
}

// Reply: per entry a uint32 status, then the entry's length bytes (zeros when the status is not
// GRASS_OK), padded to a multiple of 8 bytes.
GRASS_HD_CALL void grass_op_read_batch(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t n = q->args[0];
  grass_result_arena* arena = &mon->arenas[i];
  const grass_read_batch_entry* e = (const grass_read_batch_entry*)grass_request_data(mon, i);
  // n compared by division: n * sizeof can wrap (n = 2^61 + 1 gives 24) and walk e[] off scratch.
  if (n == 0 || q->data_bytes % sizeof(grass_read_batch_entry) || n != q->data_bytes / sizeof(grass_read_batch_entry)) {
    o->status = GRASS_E_MALFORMED;
    o->detail = n;
    return;
  }
  uint64_t total = 0;
  for (uint64_t k = 0; k < n; k++) {
    if (!grass_valid_space(e[k].space)) { o->status = GRASS_E_MALFORMED; o->detail = k; return; }
    total += (4 + (uint64_t)e[k].length + 7) & ~7ull;
  }
  if (total > arena->capacity) { o->status = GRASS_E_MALFORMED; o->detail = total; return; }
  arena->id = 0;  // the arena is being overwritten: its old result is gone
  uint64_t at = 0, root = mon->paging.root_phys;
  uint32_t root_pid = 0xffffffffu;
  bool root_ok = false;
  for (uint64_t k = 0; k < n; k++) {
    grass_fault f = {GRASS_OK, 0};
    uint8_t* out = arena->data + at + 4;
    uint64_t r = mon->paging.root_phys;
    bool ok = true;
    if (e[k].space == GRASS_SPACE_USER) {
      if (e[k].pid != root_pid) { root_pid = e[k].pid; root_ok = grass_space_root(mon, GRASS_SPACE_USER, root_pid, &root, &f); }
      ok = root_ok;
      if (!ok && f.status == GRASS_OK) f.status = (uint32_t)GRASS_E_UNMAPPED;
      r = root;
    }
    if (ok) ok = grass_read(&mon->mem, &mon->paging, e[k].space, r, e[k].address, out, e[k].length, &f);
    if (!ok) grass_zero(out, e[k].length);
    uint32_t status = ok ? (uint32_t)GRASS_OK : f.status;
    grass_copy(arena->data + at, &status, 4);
    uint64_t used = 4 + (uint64_t)e[k].length;
    grass_zero(arena->data + at + used, ((used + 7) & ~7ull) - used);
    at += (used + 7) & ~7ull;
  }
  arena->id = grass_result_id(mon, i);
  arena->bytes = total;
  o->arena = arena;
}

GRASS_HD_CALL void grass_op_write(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t space = q->args[0], addr = q->args[1], len = q->args[2];
  if (!mon->allow_writes || !mon->mem.writable) { o->status = GRASS_E_WRITES_DISABLED; return; }
  if (!grass_valid_space(space) || len == 0 || len > q->data_bytes) { o->status = GRASS_E_MALFORMED; o->detail = len; return; }
  grass_fault f = {0, 0};
  uint64_t root;
  if (!grass_space_root(mon, (uint32_t)space, (uint32_t)q->args[3], &root, &f) ||
      !grass_write(&mon->mem, &mon->paging, (uint32_t)space, root, addr, grass_request_data(mon, i), len, &f))
    grass_fault_outcome(o, &f);
}

// Only the asking slot's own result or the description: another slot's arena may be being
// rewritten by its worker.
GRASS_HD void grass_op_fetch(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t id = q->args[0], offset = q->args[1];
  uint32_t index = (uint32_t)(id & 0xff);
  grass_result_arena* a = index == i + 1 || index == mon->slot_count + 1 ? &mon->arenas[index - 1] : 0;
  if (!a || id == 0 || a->id != id) { o->status = GRASS_E_NO_SUCH_RESULT; o->detail = id; return; }
  if (offset > a->bytes || (offset == a->bytes && a->bytes != 0)) { o->status = GRASS_E_MALFORMED; o->detail = offset; return; }
  o->arena = a;
  o->offset = offset;
}

GRASS_HD void grass_op_heartbeat(grass_monitor*, uint32_t, const grass_request*, grass_outcome*) {}
GRASS_HD void grass_op_describe(grass_monitor* mon, uint32_t, const grass_request*, grass_outcome* o) { o->arena = &mon->arenas[mon->slot_count]; }

// The plugins (process list, metrics, detectors, bulk): their entry points, in one list.
#include "plugins.h"

// Every opcode and its handler (mon, slot, request, outcome): the buffer server's own (heartbeat,
// describe, memory reads and writes, fetching a large result), then each plugin's, from the plugin
// list. The dispatch in grass_handle is generated from this list.
#define GRASS_OPCODE_LIST(X)                    \
  X(GRASS_OP_HEARTBEAT, grass_op_heartbeat)     \
  X(GRASS_OP_DESCRIBE, grass_op_describe)       \
  X(GRASS_OP_READ, grass_op_read)               \
  X(GRASS_OP_READ_BATCH, grass_op_read_batch)   \
  X(GRASS_OP_WRITE, grass_op_write)             \
  X(GRASS_OP_FETCH_RESULT, grass_op_fetch)      \
  GRASS_PLUGIN_OPCODE_LIST(X)

// Writes the liveness block under its seqlock: worker 0's last counter and clock, every
// worker's counts. Under liveness_lock: one writer at a time.
GRASS_HD void grass_write_liveness(grass_monitor* mon) {
  grass_buffer_header* hd = grass_header(mon);
  uint64_t v = grass_load_mark(&hd->liveness_version);
  grass_store_mark(&hd->liveness_version, v + 1);
  grass_fence();
  grass_store_mark(&hd->liveness_counter, mon->liveness_passes);
  grass_store_mark(&hd->monitor_clock_ns, mon->liveness_clock_ns);
  uint64_t served = 0, refused = 0;
  for (uint32_t w = 0; w < GRASS_MAX_WORKERS; w++) served += grass_load_mark(&mon->served[w]), refused += grass_load_mark(&mon->refused[w]);
  grass_store_mark(&hd->requests_served, served);
  grass_store_mark(&hd->requests_refused, refused);
  grass_fence();
  grass_store_mark(&hd->liveness_version, v + 2);
  grass_fence();
}

// Worker 0: bumps the liveness counter (the passes) and the clock, with the counts.
GRASS_HD void grass_publish_liveness(grass_monitor* mon, uint64_t now_ns) {
  grass_lock(mon, &mon->liveness_lock, true);
  mon->liveness_passes = mon->passes;
  mon->liveness_clock_ns = now_ns;
  grass_write_liveness(mon);
  grass_unlock(mon, &mon->liveness_lock);
}

// Whether an opcode is a plugin's whose tick keeps state the opcode reads (host: the plugin lock).
GRASS_HD bool grass_opcode_shares_tick_state(uint32_t opcode) {
  bool shares = false;
#ifndef __CUDA_ARCH__
#define GRASS_TICKED_OPCODE_(op, handler) found = found || opcode == op;
#define GRASS_TICKED_PLUGIN_(Y, name, resolve, tick, ops)   \
  {                                                        \
    bool found = false;                                    \
    ops(GRASS_TICKED_OPCODE_)                              \
    if (found) shares = tick != grass_plugin_no_tick;       \
  }
  GRASS_PLUGIN_LIST(GRASS_TICKED_PLUGIN_, )
#undef GRASS_TICKED_PLUGIN_
#undef GRASS_TICKED_OPCODE_
#endif
  (void)opcode;
  return shares;
}

// Authenticates, checks freshness, runs and answers one request whose mark has appeared.
GRASS_HD_CALL void grass_handle(grass_monitor* mon, uint32_t i, const grass_request* q, uint64_t mark) {
  grass_outcome o = {GRASS_OK, 0, 0, 0, 0};
  bool refused = true;
  if (q->seq != mark || q->data_bytes > mon->slot_data_bytes) {
    o.status = GRASS_E_MALFORMED;
  } else {
    uint8_t* request_data = grass_request_data(mon, i);
    if (q->data_bytes) grass_copy(request_data, grass_slot_data(mon, i), q->data_bytes);
    grass_hmac m;
    grass_hmac_begin(&m, &mon->key);
    grass_hmac_update(&m, &mon->instance, 8);
    grass_hmac_update(&m, &i, 4);
    grass_hmac_update(&m, q, (uint64_t)((const uint8_t*)&q->mac - (const uint8_t*)q));
    grass_hmac_update(&m, request_data, q->data_bytes);
    uint8_t mac[32];
    grass_hmac_final(&m, mac);
    if (!grass_mac_equal(mac, q->mac, 32)) {
      o.status = GRASS_E_BAD_MAC;
    } else if (q->seq <= mon->last_seq[i]) {
      o.status = GRASS_E_REPLAY;
      o.detail = mon->last_seq[i];
    } else {
      mon->last_seq[i] = q->seq;
      refused = false;
      bool locked = mon->workers > 1 && grass_opcode_shares_tick_state(q->opcode) && grass_lock(mon, &mon->plugin_lock, true);
      switch (q->opcode) {
#define GRASS_OP_CASE_(opcode, handler) \
  case opcode: handler(mon, i, q, &o); break;
        GRASS_OPCODE_LIST(GRASS_OP_CASE_)
#undef GRASS_OP_CASE_
        default: o.status = GRASS_E_MALFORMED; o.detail = q->opcode; break;
      }
      if (locked) grass_unlock(mon, &mon->plugin_lock);
      if (o.status == GRASS_E_MALFORMED) refused = true;
    }
  }
  if (o.status != GRASS_OK) { o.inline_bytes = 0; o.arena = 0; }
  uint64_t* count = refused ? &mon->refused[mon->slot_worker[i]] : &mon->served[mon->slot_worker[i]];
  grass_store_mark(count, *count + 1);  // one store: the publisher reads it
  // A worker other than 0 republishes the counts before its reply (shm: the liveness block is
  // republished on every pass anyway), so a client that has the reply sees it counted.
  if (mon->slot_worker[i] != 0 && mon->liveness_period_ns == 0) {
    grass_lock(mon, &mon->liveness_lock, true);
    grass_write_liveness(mon);
    grass_unlock(mon, &mon->liveness_lock);
  }
  uint32_t tag;
  grass_copy(&tag, q->mac, 4);
  grass_send_reply(mon, i, mark, tag, &o);
}

// Answers the request of slot i if its mark is new. With heartbeats_only, other requests wait
// for the second sweep of the pass, so a heartbeat never queues behind a long request.
GRASS_HD bool grass_serve_slot(grass_monitor* mon, uint32_t i, uint64_t now_ns, bool heartbeats_only) {
  grass_slot_header* h = grass_slot(mon, i);
  uint64_t mark = grass_load_mark(&h->request_mark);
  if (mark == mon->last_mark[i]) return false;
  grass_fence();  // the request is read after its mark
  grass_request q;
  grass_copy(&q, &h->request, sizeof q);
  if (q.seq != mark) {
    // The request's bytes have not all landed yet (or never will): wait, then refuse.
    if (mon->torn_since_ns[i] == 0) mon->torn_since_ns[i] = now_ns ? now_ns : 1;
    if (now_ns - mon->torn_since_ns[i] < GRASS_TORN_REQUEST_NS) return false;
  } else if (heartbeats_only && q.opcode != GRASS_OP_HEARTBEAT) {
    return false;
  }
  mon->torn_since_ns[i] = 0;
  mon->last_mark[i] = mark;
  grass_handle(mon, i, &q, mark);
  return true;
}

// Serves slots [first, end) once, heartbeats first. Returns how many requests it answered.
GRASS_HD uint32_t grass_serve_slots(grass_monitor* mon, uint32_t first, uint32_t end, uint64_t now_ns) {
  uint32_t answered = 0;
  for (uint32_t i = first; i < end; i++) answered += grass_serve_slot(mon, i, now_ns, true);
  for (uint32_t i = first; i < end; i++) answered += grass_serve_slot(mon, i, now_ns, false);
  return answered;
}

// Worker 0's part of a pass after its slots: the pass count, the plugins' ticks (skipped for this
// pass while another worker holds the plugin lock) and the liveness block.
GRASS_HD void grass_monitor_housekeeping(grass_monitor* mon, uint64_t now_ns) {
  mon->passes++;
  if (grass_lock(mon, &mon->plugin_lock, false)) {
    grass_plugins_tick(mon, now_ns);
    grass_unlock(mon, &mon->plugin_lock);
  }
  if (mon->liveness_period_ns == 0 || mon->liveness_published_ns == 0 || now_ns - mon->liveness_published_ns >= mon->liveness_period_ns) {
    grass_publish_liveness(mon, now_ns);
    mon->liveness_published_ns = now_ns ? now_ns : 1;
  }
}

// One pass over every slot (heartbeats first), then the housekeeping: the one-worker loop (the
// cuda backend's). Returns how many requests it answered.
GRASS_HD uint32_t grass_monitor_pass(grass_monitor* mon, uint64_t now_ns) {
  uint32_t answered = grass_serve_slots(mon, 0, mon->slot_count, now_ns);
  grass_monitor_housekeeping(mon, now_ns);
  return answered;
}

#endif
