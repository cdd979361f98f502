// The process-list plugin over task_structs laid out here by hand (through the same
// grass_ps_layout the BTF loader fills): walking, threads, ps letters, group times, RSS, idle
// tasks, and the bounds on corrupt lists.
#include <cstring>
#include <vector>

#include "process-list/process_list.h"
#include "check.h"

namespace {

const uint64_t kBase = 0xffff888000000000ull;  // a direct map over the whole test memory

struct Kernel {
  std::vector<uint8_t> mem = std::vector<uint8_t>(1 << 20);
  grass_phys_map map{};
  grass_paging paging{};
  grass_ps_layout l{};
  uint64_t next = 0x1000;

  Kernel() {
    map.ranges[0] = {0, mem.size(), mem.data()};
    map.count = 1;
    paging = {0, 4, 0, kBase, mem.size()};
    l.task_tasks = 0x10; l.task_pid = 0x20; l.task_tgid = 0x24; l.task_comm = 0x30; l.task_state = 0x40;
    l.task_state_bytes = 4; l.task_exit_state = 0x44; l.task_real_parent = 0x48; l.task_signal = 0x50;
    l.task_threads_link = 0x58; l.task_cpu = 0x68; l.task_utime = 0x70; l.task_stime = 0x78; l.task_mm = 0x80;
    l.threads_via = GRASS_THREADS_VIA_SIGNAL_HEAD;
    l.signal_thread_head = 0x0; l.signal_nr_threads = 0x10; l.signal_utime = 0x18; l.signal_stime = 0x20;
    l.mm_rss = 0x40; l.rss_stride = 8; l.rss_sum_mask = (1 << 0) | (1 << 1) | (1 << 3); l.mm_pgd = 0x8;
    l.page_size = 4096; l.cpu_count = 1; l.max_tasks = 1000; l.max_threads = 1000;
  }
  uint64_t alloc(uint64_t bytes) { uint64_t va = kBase + next; next += (bytes + 63) & ~63ull; return va; }
  void put64(uint64_t va, uint64_t v) { memcpy(&mem[va - kBase], &v, 8); }
  void put32(uint64_t va, uint32_t v) { memcpy(&mem[va - kBase], &v, 4); }
  void link_after(uint64_t prev, uint64_t node) {  // list_add after prev (circular, next pointers)
    uint64_t n;
    memcpy(&n, &mem[prev - kBase], 8);
    put64(node, n);
    put64(prev, node);
  }
  uint64_t list_tail(uint64_t head) {
    uint64_t p = head, n;
    for (;;) { memcpy(&n, &mem[p - kBase], 8); if (n == head) return p; p = n; }
  }
  uint64_t task(uint32_t pid, uint32_t tgid, const char* comm, uint32_t state, uint32_t exit_state, uint64_t parent,
                uint64_t signal, uint64_t mm, uint64_t utime, uint64_t stime) {
    uint64_t t = alloc(0x100);
    put32(t + l.task_pid, pid); put32(t + l.task_tgid, tgid);
    memcpy(&mem[t - kBase + l.task_comm], comm, strlen(comm));
    put32(t + l.task_state, state); put32(t + l.task_exit_state, exit_state);
    put64(t + l.task_real_parent, parent); put64(t + l.task_signal, signal); put64(t + l.task_mm, mm);
    put64(t + l.task_utime, utime); put64(t + l.task_stime, stime); put32(t + l.task_cpu, pid % 3);
    return t;
  }
  uint64_t signal(uint32_t nr_threads, uint64_t utime, uint64_t stime) {
    uint64_t s = alloc(0x40);
    put64(s, s);  // empty thread_head
    put32(s + l.signal_nr_threads, nr_threads); put64(s + l.signal_utime, utime); put64(s + l.signal_stime, stime);
    return s;
  }
  void add_process(uint64_t t) { link_after(list_tail(l.init_task + l.task_tasks), t + l.task_tasks); }
  void add_thread(uint64_t signal, uint64_t t) { link_after(list_tail(signal + l.signal_thread_head), t + l.task_threads_link); }
};

std::vector<grass_task_record> walk(Kernel& k, uint32_t flags, grass_fault* f, bool* ok) {
  std::vector<grass_task_record> out(64);
  grass_ps_ctx c = {&k.map, &k.paging, &k.l, f};
  uint64_t n = 0;
  *ok = grass_ps_walk(&c, flags, out.data(), out.size(), &n);
  out.resize(*ok ? n : 0);
  return out;
}

}  // namespace

int main() {
  // ps letters as task_state_index() gives them.
  CHECK(grass_ps_state_letter(0x0, 0) == 'R');
  CHECK(grass_ps_state_letter(0x1, 0) == 'S');
  CHECK(grass_ps_state_letter(0x2, 0) == 'D');
  CHECK(grass_ps_state_letter(0x402, 0) == 'I');       // TASK_IDLE
  CHECK(grass_ps_state_letter(0x4, 0) == 'T');
  CHECK(grass_ps_state_letter(0x8, 0) == 't');
  CHECK(grass_ps_state_letter(0x80, 0x10) == 'X');     // TASK_DEAD, EXIT_DEAD
  CHECK(grass_ps_state_letter(0x80, 0x20) == 'Z');     // TASK_DEAD, EXIT_ZOMBIE
  CHECK(grass_ps_state_letter(0x40, 0) == 'P');        // TASK_PARKED
  CHECK(grass_ps_state_letter(0x1000, 0) == 'D');      // TASK_RTLOCK_WAIT
  CHECK(grass_ps_state_letter(0x101, 0) == 'S');       // TASK_WAKEKILL | INTERRUPTIBLE

  Kernel k;
  k.l.init_task = k.task(0, 0, "swapper/0", 0, 0, 0, 0, 0, 0, 0);
  k.put64(k.l.init_task + k.l.task_tasks, k.l.init_task + k.l.task_tasks);
  // pid 1: one thread, an mm with rss counters file 10, anon 5, swap entries 100, shmem 2.
  uint64_t s1 = k.signal(1, 0, 0), mm1 = k.alloc(0x80);
  k.put64(mm1 + 0x40, 10); k.put64(mm1 + 0x48, 5); k.put64(mm1 + 0x50, 100); k.put64(mm1 + 0x58, 2);
  k.put64(mm1 + k.l.mm_pgd, kBase + 0x9000);
  uint64_t t1 = k.task(1, 1, "init", 0x1, 0, k.l.init_task, s1, mm1, 100, 200);
  k.add_process(t1); k.add_thread(s1, t1);
  // pid 5 with threads 6 and 7; 50/60 ns left behind by dead threads; a counter reading negative.
  uint64_t s5 = k.signal(3, 50, 60), mm5 = k.alloc(0x80);
  k.put64(mm5 + 0x40, (uint64_t)-3); k.put64(mm5 + 0x48, 7);
  uint64_t t5 = k.task(5, 5, "daemon", 0x2, 0, t1, s5, mm5, 1, 2);
  uint64_t t6 = k.task(6, 5, "worker-a", 0x402, 0, t1, s5, mm5, 10, 20);
  uint64_t t7 = k.task(7, 5, "worker-b", 0x4, 0, t1, s5, mm5, 100, 200);
  k.add_process(t5); k.add_thread(s5, t5); k.add_thread(s5, t6); k.add_thread(s5, t7);
  // pid 9: a zombie without mm; pid 2: a parked kernel thread.
  uint64_t s9 = k.signal(1, 0, 0);
  uint64_t t9 = k.task(9, 9, "zombie", 0x80, 0x20, t5, s9, 0, 0, 0);
  k.add_process(t9); k.add_thread(s9, t9);
  uint64_t s2 = k.signal(1, 0, 0);
  uint64_t t2 = k.task(2, 2, "kthreadd", 0x40, 0, k.l.init_task, s2, 0, 0, 0);
  k.add_process(t2); k.add_thread(s2, t2);

  grass_fault f{};
  bool ok;
  auto leaders = walk(k, 0, &f, &ok);
  CHECK(ok && leaders.size() == 4);
  if (leaders.size() == 4) {
    CHECK(leaders[0].pid == 1 && leaders[0].ppid == 0 && leaders[0].state == 'S' && strcmp(leaders[0].comm, "init") == 0);
    CHECK(leaders[0].rss_bytes == 17 * 4096 && leaders[0].threads == 1 && leaders[0].utime_ns == 100 && leaders[0].stime_ns == 200);
    CHECK(leaders[0].task_address == t1 && leaders[0].cpu == 1);
    CHECK(leaders[1].pid == 5 && leaders[1].ppid == 1 && leaders[1].state == 'D' && leaders[1].threads == 3);
    CHECK(leaders[1].utime_ns == 50 + 1 + 10 + 100 && leaders[1].stime_ns == 60 + 2 + 20 + 200);  // group totals
    CHECK(leaders[1].rss_bytes == 7 * 4096);  // the negative counter counts as 0, as the kernel clamps it
    CHECK(leaders[2].pid == 9 && leaders[2].state == 'Z' && leaders[2].ppid == 5 && leaders[2].rss_bytes == 0);
    CHECK(leaders[3].pid == 2 && leaders[3].state == 'P' && leaders[3].ppid == 0);
  }
  auto threads = walk(k, GRASS_PS_THREADS, &f, &ok);
  CHECK(ok && threads.size() == 6);
  if (threads.size() == 6) {
    CHECK(threads[1].pid == 5 && threads[2].pid == 6 && threads[3].pid == 7);
    CHECK(threads[2].tgid == 5 && threads[2].state == 'I' && threads[3].state == 'T');
    CHECK(threads[2].utime_ns == 10 && threads[3].stime_ns == 200);  // per thread, not group totals
  }
  auto idle = walk(k, GRASS_PS_IDLE, &f, &ok);
  CHECK(ok && idle.size() == 5 && idle[0].pid == 0 && strcmp(idle[0].comm, "swapper/0") == 0);

  // A process's page-table root, for user reads.
  grass_ps_ctx c = {&k.map, &k.paging, &k.l, &f};
  uint64_t root = 0;
  CHECK(grass_ps_user_root(&c, 1, &root) && root == 0x9000);
  CHECK(!grass_ps_user_root(&c, 2, &root) && f.status == GRASS_E_UNMAPPED);    // a kernel thread has no mm
  CHECK(!grass_ps_user_root(&c, 77, &root) && f.status == GRASS_E_MALFORMED);  // no such process

  // Corruption: a wild signal pointer fails naming it; a loop that misses the head is caught
  // after a few steps, long before max_tasks.
  k.put64(t9 + k.l.task_signal, 0xffff888000f00000ull + (1 << 20));
  walk(k, 0, &f, &ok);
  CHECK(!ok && (f.status == GRASS_E_OUT_OF_RANGE || f.status == GRASS_E_UNMAPPED) && f.address >= 0xffff888001000000ull);
  k.put64(t9 + k.l.task_signal, s9);
  k.l.max_tasks = 1u << 30;
  k.put64(t9 + k.l.task_tasks, t1 + k.l.task_tasks);  // 1 -> 5 -> 9 -> 1 -> ...
  walk(k, 0, &f, &ok);
  CHECK(!ok && f.status == GRASS_E_TARGET);
  uint64_t count = 0;
  CHECK(!grass_ps_walk(&c, 0, nullptr, 0, &count) && f.status == GRASS_E_TARGET);
  k.put64(t7 + k.l.task_threads_link, t6 + k.l.task_threads_link);  // a thread list looping on itself
  k.put64(t9 + k.l.task_tasks, t2 + k.l.task_tasks);
  walk(k, GRASS_PS_THREADS, &f, &ok);
  CHECK(!ok && f.status == GRASS_E_TARGET);
  return check_report("test_process_list");
}
