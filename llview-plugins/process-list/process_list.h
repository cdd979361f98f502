// Layer 3, plugin: the process list (GRASS_OP_PROCESS_COUNT / PROCESS_LIST), walked in monitor
// code from init_task.tasks and each thread group's list. Offsets come from the target's BTF
// (process_list_layout.cpp resolves them on the host, CO-RE style); nothing is hard-coded.
#ifndef GRASS_PLUGIN_PROCESS_LIST_H
#define GRASS_PLUGIN_PROCESS_LIST_H

#include "grass/protocol.h"
#include "translation/translate.h"

#define GRASS_THREADS_VIA_SIGNAL_HEAD 1u  // signal->thread_head + task->thread_node
#define GRASS_THREADS_VIA_THREAD_GROUP 2u // task->thread_group ring (older kernels)
#define GRASS_MAX_RSS_COUNTERS 8u

// What the plugin reads, resolved for one target kernel.
struct grass_ps_layout {
  uint64_t init_task;          // kernel virtual address of init_task
  uint64_t runqueues;          // per-CPU address of runqueues (0: idle tasks of other CPUs unknown)
  uint64_t per_cpu_offset;     // kernel virtual address of __per_cpu_offset[]
  uint32_t cpu_count;
  uint32_t page_size;
  uint32_t max_tasks;          // bounds of every walk (the target may be corrupt)
  uint32_t max_threads;
  // task_struct
  uint32_t task_tasks, task_pid, task_tgid, task_comm, task_state, task_state_bytes, task_exit_state;
  uint32_t task_real_parent, task_signal, task_threads_link, task_cpu, task_utime, task_stime, task_mm;
  uint32_t threads_via;        // GRASS_THREADS_VIA_*
  // signal_struct
  uint32_t signal_thread_head, signal_nr_threads, signal_utime, signal_stime;
  // mm_struct: rss counter values at mm_rss + i * rss_stride (8-byte signed), summed over rss_sum_mask
  uint32_t mm_rss, rss_stride, rss_sum_mask, mm_pgd;
  // struct rq
  uint32_t rq_idle;
  uint32_t reserved0;
};

struct grass_ps_ctx {
  const grass_phys_map* mem;
  const grass_paging* paging;
  const grass_ps_layout* layout;
  grass_fault* fault;
};

GRASS_HD bool grass_ps_u64(const grass_ps_ctx* c, uint64_t va, uint64_t* v) {
  return grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, va, v, 8, c->fault);
}
GRASS_HD bool grass_ps_u32(const grass_ps_ctx* c, uint64_t va, uint32_t* v) {
  return grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, va, v, 4, c->fault);
}

// Bounds a walk of a circular list that should come back to its head: a length limit, and
// Brent's cycle check so a loop that never reaches the head (a corrupt kernel) is caught after
// about twice its length, not after max steps.
struct grass_list_guard {
  uint64_t saved;
  uint64_t steps;
  uint64_t power;
  uint64_t max;
};

GRASS_HD void grass_guard_init(grass_list_guard* g, uint64_t max) {
  g->saved = 0; g->steps = 0; g->power = 1; g->max = max;
}

// False when p repeats a node seen before or the walk exceeded its bound.
GRASS_HD bool grass_guard_step(grass_list_guard* g, uint64_t p) {
  if (p == g->saved || ++g->steps > g->max) return false;
  if (g->steps == g->power) { g->saved = p; g->power <<= 1; }
  return true;
}

// The ps letter, as the kernel's task_state_index() derives it: the lowest TASK_REPORT bits of
// state|exit_state, with TASK_IDLE shown as 'I' and an rtlock wait as 'D'. These bit values are
// the kernel's reporting ABI (fs/proc/array.c task_state_array), not structure layout.
GRASS_HD char grass_ps_state_letter(uint32_t state, uint32_t exit_state) {
  const uint32_t report = 0x7f, task_idle = 0x402, rtlock_wait = 0x1000, uninterruptible = 0x2;
  const char letters[] = "RSDTtXZPI";
  uint32_t bits = (state | exit_state) & report;
  if (state == task_idle) return 'I';
  if (state == rtlock_wait) bits = uninterruptible;
  int index = 0;
  while (bits) { index++; bits >>= 1; }
  return letters[index];
}

// Visits the threads of the group led by leader (leader included), at most max_threads.
// visit(task) returns false to fail the walk.
template <typename Visit>
GRASS_HD bool grass_ps_each_thread(const grass_ps_ctx* c, uint64_t leader, Visit visit) {
  const grass_ps_layout* l = c->layout;
  uint64_t head, p;
  if (l->threads_via == GRASS_THREADS_VIA_SIGNAL_HEAD) {
    uint64_t signal;
    if (!grass_ps_u64(c, leader + l->task_signal, &signal)) return false;
    if (!signal) return visit(leader);
    head = signal + l->signal_thread_head;
  } else {
    if (!visit(leader)) return false;
    head = leader + l->task_threads_link;
  }
  if (!grass_ps_u64(c, head, &p)) return false;
  grass_list_guard guard;
  grass_guard_init(&guard, l->max_threads);
  while (p != head) {
    if (!grass_guard_step(&guard, p)) return grass_fail(c->fault, GRASS_E_TARGET, p);
    if (!visit(p - l->task_threads_link)) return false;
    if (!grass_ps_u64(c, p, &p)) return false;
  }
  return true;
}

// Fills r from one task. With group_totals the times are the whole group's (dead threads'
// share in signal_struct plus every live thread), as ps shows them for a process.
GRASS_HD_CALL bool grass_ps_record(const grass_ps_ctx* c, uint64_t task, bool group_totals, grass_task_record* r) {
  const grass_ps_layout* l = c->layout;
  uint32_t pid, tgid, state32, exit_state, cpu;
  uint64_t state64 = 0, parent, signal, mm, utime, stime;
  if (!grass_ps_u32(c, task + l->task_pid, &pid) || !grass_ps_u32(c, task + l->task_tgid, &tgid) ||
      !grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, task + l->task_state, &state64, l->task_state_bytes, c->fault) ||
      !grass_ps_u32(c, task + l->task_exit_state, &exit_state) || !grass_ps_u32(c, task + l->task_cpu, &cpu) ||
      !grass_ps_u64(c, task + l->task_real_parent, &parent) || !grass_ps_u64(c, task + l->task_signal, &signal) ||
      !grass_ps_u64(c, task + l->task_mm, &mm) || !grass_ps_u64(c, task + l->task_utime, &utime) ||
      !grass_ps_u64(c, task + l->task_stime, &stime))
    return false;
  state32 = (uint32_t)state64;
  r->task_address = task;
  r->pid = (int32_t)pid;
  r->tgid = (int32_t)tgid;
  r->ppid = 0;
  if (parent && parent != task) {
    uint32_t ptgid;
    if (!grass_ps_u32(c, parent + l->task_tgid, &ptgid)) return false;
    r->ppid = pid == 0 ? 0 : (int32_t)ptgid;
  }
  r->cpu = (int32_t)cpu;
  r->state = grass_ps_state_letter(state32, exit_state);
  for (int i = 0; i < 3; i++) r->reserved0[i] = 0;
  if (!grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, task + l->task_comm, r->comm, 16, c->fault)) return false;
  r->threads = 1;
  if (signal) {
    uint32_t nr;
    if (!grass_ps_u32(c, signal + l->signal_nr_threads, &nr)) return false;
    r->threads = nr;
  }
  if (group_totals && signal) {
    uint64_t su, ss;
    if (!grass_ps_u64(c, signal + l->signal_utime, &su) || !grass_ps_u64(c, signal + l->signal_stime, &ss)) return false;
    utime = su; stime = ss;
    bool ok = grass_ps_each_thread(c, task, [&](uint64_t t) {
      uint64_t tu, ts;
      if (!grass_ps_u64(c, t + l->task_utime, &tu) || !grass_ps_u64(c, t + l->task_stime, &ts)) return false;
      utime += tu; stime += ts;
      return true;
    });
    if (!ok) return false;
  }
  r->utime_ns = utime;
  r->stime_ns = stime;
  uint64_t pages = 0;
  if (mm) {
    for (uint32_t i = 0; i < GRASS_MAX_RSS_COUNTERS; i++) {
      if (!(l->rss_sum_mask & (1u << i))) continue;
      uint64_t v;
      if (!grass_ps_u64(c, mm + l->mm_rss + (uint64_t)i * l->rss_stride, &v)) return false;
      if ((int64_t)v > 0) pages += v;  // counters can read negative transiently; the kernel clamps
    }
  }
  r->rss_bytes = pages * l->page_size;
  return true;
}

// The records of tasks the walk listed: out[k].task_address holds the task and out[k].threads is
// 1 where the times are the group's. Every record reads only its own task, so on the GPU the
// monitor block's helper warps fill them at once (each dependent load's latency paid once per
// record in parallel, not once per task in turn); a failure is the lowest failing record's, as a
// serial fill would report it.
#ifdef __CUDACC__
__device__ inline void grass_ps_fill_share(grass_copy_job* job, uint32_t me) {
  grass_task_record* out = (grass_task_record*)job->dst;
  for (uint64_t k = me; k < job->units; k += job->helpers) {
    grass_fault f = {0, 0};
    grass_ps_ctx c = {(const grass_phys_map*)job->ps[0], (const grass_paging*)job->ps[1], (const grass_ps_layout*)job->ps[2], &f};
    grass_task_record r;  // out[k] keeps the task and its flag until the record is whole
    if (!grass_ps_record(&c, out[k].task_address, out[k].threads == 1, &r)) {
      atomicMin(&job->first_failed, (uint32_t)k);
      return;
    }
    out[k] = r;
  }
}
#endif

GRASS_HD bool grass_ps_fill(const grass_ps_ctx* c, grass_task_record* out, uint64_t n) {
#ifdef __CUDA_ARCH__
  grass_copy_job* job = grass_copy_helpers;
  if (job && n > 1) {
    job->ps[0] = c->mem;
    job->ps[1] = c->paging;
    job->ps[2] = c->layout;
    job->dst = (uint8_t*)out;
    job->units = n;
    job->first_failed = 0xffffffffu;
    job->kind = GRASS_JOB_PS_RECORDS;
    grass_run_helper_job(job);
    if (job->first_failed == 0xffffffffu) return true;
    // The lowest failed record, read again here for its fault (records after it may be filled
    // already, so the serial loop cannot go on past it); read whole this time, the target moved.
    uint64_t task = out[job->first_failed].task_address;
    if (!grass_ps_record(c, task, out[job->first_failed].threads == 1, &out[job->first_failed])) return false;
    return grass_fail(c->fault, GRASS_E_TARGET, task);
  }
#endif
  for (uint64_t k = 0; k < n; k++)
    if (!grass_ps_record(c, out[k].task_address, out[k].threads == 1, &out[k])) return false;
  return true;
}

// Walks the task list. With out, fills up to capacity records; count gets how many tasks the
// list holds (leaders, or every thread with GRASS_PS_THREADS; idle tasks with GRASS_PS_IDLE).
// The walk lists the tasks first and grass_ps_fill reads their records after.
GRASS_HD bool grass_ps_walk(const grass_ps_ctx* c, uint32_t flags, grass_task_record* out, uint64_t capacity, uint64_t* count) {
  const grass_ps_layout* l = c->layout;
  bool threads = flags & GRASS_PS_THREADS;
  uint64_t n = 0;
  auto emit = [&](uint64_t task, bool group_totals) {
    if (out) {
      if (n >= capacity) return grass_fail(c->fault, GRASS_E_TARGET, task);
      out[n].task_address = task;
      out[n].threads = group_totals ? 1 : 0;
    }
    n++;
    return true;
  };
  if (flags & GRASS_PS_IDLE) {
    if (!emit(l->init_task, false)) return false;
    for (uint32_t cpu = 1; l->runqueues && cpu < l->cpu_count; cpu++) {
      uint64_t off, idle;
      if (!grass_ps_u64(c, l->per_cpu_offset + 8ull * cpu, &off)) return false;
      if (!grass_ps_u64(c, l->runqueues + off + l->rq_idle, &idle)) return false;
      if (idle && idle != l->init_task && !emit(idle, false)) return false;
    }
  }
  uint64_t head = l->init_task + l->task_tasks, p;
  if (!grass_ps_u64(c, head, &p)) return false;
  grass_list_guard guard;
  grass_guard_init(&guard, l->max_tasks);
  while (p != head) {
    if (!grass_guard_step(&guard, p)) return grass_fail(c->fault, GRASS_E_TARGET, p);
    uint64_t task = p - l->task_tasks;
    if (threads) {
      if (!grass_ps_each_thread(c, task, [&](uint64_t t) { return emit(t, false); })) return false;
    } else if (!emit(task, true)) {
      return false;
    }
    if (!grass_ps_u64(c, p, &p)) return false;
  }
  if (out && !grass_ps_fill(c, out, n)) return false;
  *count = n;
  return true;
}

// Physical address of the page-table root of the process with this pid (its mm->pgd), for
// reads of user addresses.
GRASS_HD_CALL bool grass_ps_user_root(const grass_ps_ctx* c, uint32_t pid, uint64_t* root_phys) {
  const grass_ps_layout* l = c->layout;
  uint64_t head = l->init_task + l->task_tasks, p;
  if (!grass_ps_u64(c, head, &p)) return false;
  grass_list_guard guard;
  grass_guard_init(&guard, l->max_tasks);
  while (p != head) {
    if (!grass_guard_step(&guard, p)) return grass_fail(c->fault, GRASS_E_TARGET, p);
    uint64_t task = p - l->task_tasks;
    uint32_t tgid;
    if (!grass_ps_u32(c, task + l->task_tgid, &tgid)) return false;
    if (tgid == pid) {
      uint64_t mm, pgd, phys, left;
      if (!grass_ps_u64(c, task + l->task_mm, &mm)) return false;
      if (!mm) return grass_fail(c->fault, GRASS_E_UNMAPPED, 0);  // a kernel thread: no user space
      if (!grass_ps_u64(c, mm + l->mm_pgd, &pgd)) return false;
      if (!grass_kernel_to_phys(c->mem, c->paging, pgd, &phys, &left, c->fault)) return false;
      *root_phys = phys;
      return true;
    }
    if (!grass_ps_u64(c, p, &p)) return false;
  }
  return grass_fail(c->fault, GRASS_E_MALFORMED, pid);  // no such process
}

#endif
