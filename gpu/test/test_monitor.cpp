// The protocol server in-process: requests signed here with OpenSSL's HMAC (independent of the
// monitor's own SHA-256), one monitor pass each, replies checked against CRC32C from its definition (check.h) and the
// memory they describe.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <string>
#include <vector>

#include <chrono>
#include <thread>

#include "backend/cpu_backend.h"
#include "server/buffer_setup.h"
#include "check.h"

namespace {

struct Rig {
  grass::BufferOptions opts;
  std::vector<uint8_t> buffer, memory;
  std::vector<uint8_t> description;
  grass::MonitorSetup setup;
  uint8_t key[32];
  uint64_t instance = 0x1122334455667788ull;
  uint64_t clock = 1000;

  explicit Rig(bool allow_writes) {
    opts.slot_count = 3;
    opts.slot_data_bytes = 4096;
    opts.result_bytes = 64 << 10;
    opts.allow_writes = allow_writes;
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + 1);
    buffer.resize(grass::buffer_bytes(opts));
    memory.resize(256 << 10);
    for (size_t i = 0; i < memory.size(); i++) memory[i] = (uint8_t)(i * 31 + (i >> 8));
    grass_phys_map mem{};
    mem.ranges[0] = {0, memory.size(), memory.data()};
    mem.count = 1;
    mem.writable = 1;
    grass_paging pg{};
    description.resize(10000);
    for (size_t i = 0; i < description.size(); i++) description[i] = (uint8_t)(i ^ 0x5a);
    setup = grass::prepare_monitor(buffer.data(), opts, key, instance, mem, pg, description);
  }
  grass_monitor* mon() { return setup.monitor.get(); }
  grass_slot_header* slot(uint32_t i) { return grass_slot(mon(), i); }
  uint8_t* data(uint32_t i) { return grass_slot_data(mon(), i); }

  // Writes a signed request into slot i and its mark; mac_slot/mac_instance forge the MAC.
  void post(uint32_t i, uint64_t seq, uint32_t op, std::vector<uint64_t> args, const std::vector<uint8_t>& payload = {},
            uint32_t mac_slot = ~0u, uint64_t mac_instance = 0, bool zero_mac = false) {
    grass_request q{};
    q.seq = seq;
    q.opcode = op;
    q.data_bytes = (uint32_t)payload.size();
    for (size_t k = 0; k < args.size(); k++) q.args[k] = args[k];
    if (!payload.empty()) memcpy(data(i), payload.data(), payload.size());
    std::vector<uint8_t> msg(12);
    uint64_t inst = mac_instance ? mac_instance : instance;
    uint32_t si = mac_slot == ~0u ? i : mac_slot;
    memcpy(&msg[0], &inst, 8);
    memcpy(&msg[8], &si, 4);
    msg.insert(msg.end(), (uint8_t*)&q, (uint8_t*)&q + offsetof(grass_request, mac));
    msg.insert(msg.end(), payload.begin(), payload.end());
    unsigned n = 0;
    HMAC(EVP_sha256(), key, 32, msg.data(), msg.size(), q.mac, &n);
    if (zero_mac) memset(q.mac, 0, 32);
    memcpy(&slot(i)->request, &q, sizeof q);
    slot(i)->request_mark = seq;
  }
  grass_reply pass_and_reply(uint32_t i) {
    grass_monitor_pass(mon(), clock += 1000);
    return slot(i)->reply;
  }
  bool crc_ok(uint32_t i) {
    const grass_reply& r = slot(i)->reply;
    return reference_crc32c(data(i), r.data_bytes) == r.data_crc32;
  }
  // The whole result of a chunked reply, fetched on slot i with further seqs.
  std::vector<uint8_t> collect(uint32_t i, uint64_t* seq) {
    grass_reply r = slot(i)->reply;
    std::vector<uint8_t> out(data(i), data(i) + r.data_bytes);
    while (out.size() < r.total_bytes) {
      post(i, ++*seq, GRASS_OP_FETCH_RESULT, {r.result_id, out.size()});
      grass_reply c = pass_and_reply(i);
      if (c.status != GRASS_OK || c.offset != out.size() || !crc_ok(i) || c.data_bytes == 0) return {};
      out.insert(out.end(), data(i), data(i) + c.data_bytes);
    }
    return out;
  }
};

}  // namespace

int main() {
  Rig rig(false);
  grass_buffer_header* h = (grass_buffer_header*)rig.buffer.data();
  CHECK(h->magic == GRASS_MAGIC && h->version == GRASS_PROTOCOL_VERSION && h->slot_count == 3);
  CHECK(h->slot_bytes % 4096 == 0 && h->slot_data_bytes == 4096 && h->instance == rig.instance);
  CHECK(h->buffer_bytes == rig.buffer.size() && h->flags == 0);

  // Heartbeat; liveness moves on every pass, with an even seqlock version.
  uint64_t seq = 10;
  rig.post(0, ++seq, GRASS_OP_HEARTBEAT, {});
  grass_reply r = rig.pass_and_reply(0);
  CHECK(r.seq == seq && r.status == GRASS_OK && r.data_bytes == 0 && rig.slot(0)->reply_mark == seq);
  uint64_t live = h->liveness_counter;
  grass_monitor_pass(rig.mon(), rig.clock += 1000);
  CHECK(h->liveness_counter == live + 1);
  CHECK(h->liveness_version % 2 == 0);
  CHECK(h->monitor_clock_ns == rig.clock);
  CHECK(h->requests_served == 1 && h->requests_refused == 0);

  // Forged (zero MAC), MAC of another slot, MAC of another agent instance: refused, not run.
  rig.post(1, 5, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 0, 16, 0}, {}, ~0u, 0, true);
  CHECK(rig.pass_and_reply(1).status == GRASS_E_BAD_MAC && rig.slot(1)->reply.data_bytes == 0);
  rig.post(1, 6, GRASS_OP_HEARTBEAT, {}, {}, 0);
  CHECK(rig.pass_and_reply(1).status == GRASS_E_BAD_MAC);
  rig.post(1, 7, GRASS_OP_HEARTBEAT, {}, {}, ~0u, 0x999);
  CHECK(rig.pass_and_reply(1).status == GRASS_E_BAD_MAC);
  // A forged request does not advance the slot's seq: the genuine seq 5 still works.
  rig.post(1, 5, GRASS_OP_HEARTBEAT, {});
  CHECK(rig.pass_and_reply(1).status == GRASS_OK);
  // Replays: an older seq, and the same seq again after another request.
  rig.post(1, 4, GRASS_OP_HEARTBEAT, {});
  r = rig.pass_and_reply(1);
  CHECK(r.status == GRASS_E_REPLAY && r.seq == 4 && r.detail == 5);
  rig.post(1, 8, GRASS_OP_HEARTBEAT, {});
  rig.pass_and_reply(1);
  rig.post(1, 5, GRASS_OP_HEARTBEAT, {});
  CHECK(rig.pass_and_reply(1).status == GRASS_E_REPLAY);
  CHECK(h->requests_refused == 5);

  // Malformed: unknown opcode, data_bytes larger than the data area, bad space.
  rig.post(2, 1, 99, {});
  CHECK(rig.pass_and_reply(2).status == GRASS_E_MALFORMED);
  rig.post(2, 2, GRASS_OP_HEARTBEAT, {});
  rig.slot(2)->request.data_bytes = 1 << 20;
  CHECK(rig.pass_and_reply(2).status == GRASS_E_MALFORMED);
  rig.post(2, 3, GRASS_OP_READ, {7, 0, 16, 0});
  CHECK(rig.pass_and_reply(2).status == GRASS_E_MALFORMED);
  // A request whose seq never matches its mark is waited for, then refused.
  rig.post(2, 4, GRASS_OP_HEARTBEAT, {});
  rig.slot(2)->request_mark = 5;
  grass_monitor_pass(rig.mon(), rig.clock += 1000);
  CHECK(rig.slot(2)->reply_mark == 3);
  grass_monitor_pass(rig.mon(), rig.clock += GRASS_TORN_REQUEST_NS + 1);
  CHECK(rig.slot(2)->reply_mark == 5 && rig.slot(2)->reply.status == GRASS_E_MALFORMED);

  // READ of physical memory, inline and chunked (larger than the 4 KiB data area).
  rig.post(0, ++seq, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 100, 1000, 0});
  r = rig.pass_and_reply(0);
  CHECK(r.status == GRASS_OK && r.data_bytes == 1000 && r.total_bytes == 1000 && rig.crc_ok(0));
  CHECK(memcmp(rig.data(0), &rig.memory[100], 1000) == 0);
  rig.post(0, ++seq, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 5000, 20000, 0});
  r = rig.pass_and_reply(0);
  CHECK(r.status == GRASS_OK && r.total_bytes == 20000 && r.data_bytes == 4096 && r.result_id != 0);
  std::vector<uint8_t> big = rig.collect(0, &seq);
  CHECK(big.size() == 20000 && memcmp(big.data(), &rig.memory[5000], 20000) == 0);
  rig.post(0, ++seq, GRASS_OP_FETCH_RESULT, {r.result_id + (1 << 8), 0});
  CHECK(rig.pass_and_reply(0).status == GRASS_E_NO_SUCH_RESULT);
  // Another slot's result is not fetched from this one (its worker may be rewriting it).
  rig.post(1, 9, GRASS_OP_FETCH_RESULT, {r.result_id, 4096});
  CHECK(rig.pass_and_reply(1).status == GRASS_E_NO_SUCH_RESULT);
  // A large READ that fails half-way has overwritten the arena: the old result is gone.
  uint64_t old_id = r.result_id;
  rig.post(0, ++seq, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, rig.memory.size() - 8000, 20000, 0});
  CHECK(rig.pass_and_reply(0).status == GRASS_E_OUT_OF_RANGE);
  rig.post(0, ++seq, GRASS_OP_FETCH_RESULT, {old_id, 4096});
  CHECK(rig.pass_and_reply(0).status == GRASS_E_NO_SUCH_RESULT);
  rig.post(0, ++seq, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, rig.memory.size() - 8, 16, 0});
  r = rig.pass_and_reply(0);
  CHECK(r.status == GRASS_E_OUT_OF_RANGE && r.detail == rig.memory.size());

  // DESCRIBE streams the description in chunks.
  rig.post(1, 20, GRASS_OP_DESCRIBE, {});
  r = rig.pass_and_reply(1);
  uint64_t seq1 = 20;
  CHECK(r.status == GRASS_OK && r.total_bytes == rig.description.size());
  CHECK(rig.collect(1, &seq1) == rig.description);

  // READ_BATCH: per entry a status, the bytes (zeros on failure), padding to 8.
  grass_read_batch_entry e[3] = {{GRASS_SPACE_PHYSICAL, 0, 10, 5, 0},
                                 {GRASS_SPACE_PHYSICAL, 0, 1ull << 40, 3, 0},
                                 {GRASS_SPACE_PHYSICAL, 0, 300, 8, 0}};
  std::vector<uint8_t> payload((uint8_t*)e, (uint8_t*)e + sizeof e);
  rig.post(0, ++seq, GRASS_OP_READ_BATCH, {3}, payload);
  r = rig.pass_and_reply(0);
  CHECK(r.status == GRASS_OK && r.total_bytes == 16 + 8 + 16 && rig.crc_ok(0));
  uint32_t st[3];
  memcpy(&st[0], rig.data(0), 4);
  memcpy(&st[1], rig.data(0) + 16, 4);
  memcpy(&st[2], rig.data(0) + 24, 4);
  CHECK(st[0] == GRASS_OK && st[1] == GRASS_E_OUT_OF_RANGE && st[2] == GRASS_OK);
  CHECK(memcmp(rig.data(0) + 4, &rig.memory[10], 5) == 0 && memcmp(rig.data(0) + 28, &rig.memory[300], 8) == 0);
  CHECK(rig.data(0)[20] == 0 && rig.data(0)[22] == 0);
  rig.post(0, ++seq, GRASS_OP_READ_BATCH, {4}, payload);  // count disagrees with data_bytes
  CHECK(rig.pass_and_reply(0).status == GRASS_E_MALFORMED);

  // WRITE: refused unless allowed.
  std::vector<uint8_t> bytes = {1, 2, 3, 4};
  rig.post(0, ++seq, GRASS_OP_WRITE, {GRASS_SPACE_PHYSICAL, 64, 4, 0}, bytes);
  CHECK(rig.pass_and_reply(0).status == GRASS_E_WRITES_DISABLED && rig.memory[64] != 1);
  Rig writable(true);
  CHECK(((grass_buffer_header*)writable.buffer.data())->flags == GRASS_AGENT_WRITES_ALLOWED);
  writable.post(0, 1, GRASS_OP_WRITE, {GRASS_SPACE_PHYSICAL, 64, 4, 0}, bytes);
  CHECK(writable.pass_and_reply(0).status == GRASS_OK && memcmp(&writable.memory[64], bytes.data(), 4) == 0);

  // Heartbeats first: with a READ pending in slot 0 and a heartbeat in slot 2, the heartbeat's
  // reply is written before the READ's (seen here by the READ's reply still being absent when
  // the heartbeat sweep is done: run only that sweep).
  rig.post(0, ++seq, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 0, 64, 0});
  rig.post(2, 10, GRASS_OP_HEARTBEAT, {});
  CHECK(!grass_serve_slot(rig.mon(), 0, rig.clock, true) && grass_serve_slot(rig.mon(), 2, rig.clock, true));
  CHECK(rig.slot(2)->reply_mark == 10 && rig.slot(0)->reply_mark != seq);
  CHECK(rig.pass_and_reply(0).status == GRASS_OK && rig.slot(0)->reply_mark == seq);

  // The process list on a target without tasks: an error naming the address, no crash.
  rig.post(0, ++seq, GRASS_OP_PROCESS_LIST, {0});
  r = rig.pass_and_reply(0);
  CHECK(r.status == GRASS_E_UNMAPPED || r.status == GRASS_E_OUT_OF_RANGE);

  // Three workers on three slots (worker w serves slot w; worker 0 publishes liveness): heartbeats
  // on slot 0 while READ_BATCH (request data in each worker's own scratch) and METRICS (the
  // plugin lock) go on slots 1 and 2, every reply checked against memory and its CRC32C; the
  // published counters add up every worker's.
  Rig par(false);
  grass::CpuBackend workers(par.mon(), 3);
  CHECK(workers.workers() == 3 && par.mon()->slot_worker[1] == 1 && par.mon()->slot_worker[2] == 2);
  workers.start();
  auto await = [&](uint32_t i, uint64_t s) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (__atomic_load_n(&par.slot(i)->reply_mark, __ATOMIC_ACQUIRE) != s && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    return par.slot(i)->reply_mark == s;
  };
  int bad = 0, rounds = 300;
  for (int k = 1; k <= rounds; k++) {
    grass_read_batch_entry b1[2] = {{GRASS_SPACE_PHYSICAL, 0, (uint64_t)k, 100, 0}, {GRASS_SPACE_PHYSICAL, 0, (uint64_t)k * 7, 60, 0}};
    grass_read_batch_entry b2[1] = {{GRASS_SPACE_PHYSICAL, 0, (uint64_t)k * 13, 200, 0}};
    par.post(1, k, GRASS_OP_READ_BATCH, {2}, std::vector<uint8_t>((uint8_t*)b1, (uint8_t*)b1 + sizeof b1));
    par.post(2, 2 * k - 1, GRASS_OP_READ_BATCH, {1}, std::vector<uint8_t>((uint8_t*)b2, (uint8_t*)b2 + sizeof b2));
    par.post(0, k, GRASS_OP_HEARTBEAT, {});
    if (!await(0, k) || !await(1, k) || !await(2, 2 * k - 1)) { bad++; break; }
    bool ok = par.slot(1)->reply.status == GRASS_OK && par.crc_ok(1) && par.slot(2)->reply.status == GRASS_OK && par.crc_ok(2) &&
              memcmp(par.data(1) + 4, &par.memory[k], 100) == 0 && memcmp(par.data(1) + 104 + 4, &par.memory[k * 7], 60) == 0 &&
              memcmp(par.data(2) + 4, &par.memory[k * 13], 200) == 0;
    par.post(2, 2 * k, GRASS_OP_METRICS, {});
    if (!await(2, 2 * k) || par.slot(2)->reply.status != GRASS_E_UNSUPPORTED) ok = false;
    if (!ok) bad++;
  }
  CHECK(bad == 0);
  grass_buffer_header* ph = (grass_buffer_header*)par.buffer.data();
  uint64_t want = 4ull * rounds;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (__atomic_load_n(&ph->requests_served, __ATOMIC_ACQUIRE) != want && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  workers.stop();
  CHECK(ph->requests_served == want && ph->requests_refused == 0 && ph->liveness_counter > 0);

  // DUMP_MAP on a source that left pages out (a dump level): a bit per page, set where BULK_READ
  // may ask; clear for the excluded pages and past memory's end (64 pages of 4 KiB here).
  {
    Rig dm(false);
    uint64_t dumped[2] = {~0ull & ~(1ull << 3) & ~(0xffull << 20), 0};
    dm.mon()->mem.dumped = dumped;
    uint64_t s2 = 0;
    dm.post(0, ++s2, GRASS_OP_DUMP_MAP, {0, 72});
    grass_reply r2 = dm.pass_and_reply(0);
    CHECK(r2.status == GRASS_OK && r2.data_bytes == 9 && dm.crc_ok(0));
    bool bits_ok = r2.data_bytes == 9;
    for (uint64_t k = 0; bits_ok && k < 72; k++) {
      bool want_bit = k < 64 && k != 3 && !(k >= 20 && k < 28);
      bits_ok = ((dm.data(0)[k / 8] >> (k % 8)) & 1) == (want_bit ? 1 : 0);
    }
    CHECK(bits_ok);
    dm.post(0, ++s2, GRASS_OP_DUMP_MAP, {4096 * 21, 3});  // not from 0: page k of the request
    r2 = dm.pass_and_reply(0);
    CHECK(r2.status == GRASS_OK && r2.data_bytes == 1 && dm.data(0)[0] == 0);
    dm.post(0, ++s2, GRASS_OP_BULK_READ, {4096 * 3, 4096});  // what the map clears, BULK_READ refuses
    r2 = dm.pass_and_reply(0);
    CHECK(r2.status == GRASS_E_EXCLUDED && r2.detail == 4096 * 3);
    dm.post(0, ++s2, GRASS_OP_DUMP_MAP, {100, 1});  // not on a page
    CHECK(dm.pass_and_reply(0).status == GRASS_E_MALFORMED);
    dm.post(0, ++s2, GRASS_OP_DUMP_MAP, {0, 0});
    CHECK(dm.pass_and_reply(0).status == GRASS_E_MALFORMED);
    dm.post(0, ++s2, GRASS_OP_DUMP_MAP, {0, 8ull * 4096 + 1});  // more bits than the slot holds
    CHECK(dm.pass_and_reply(0).status == GRASS_E_MALFORMED);
  }
  return check_report("test_monitor");
}
