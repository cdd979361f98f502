// GRASS buffer layout and protocol, version 3: the one definition of the wire format.
// Checked from TypeScript by test/unit/protocol-layout.test.ts (offsetof/sizeof compiled from here).
//
// The buffer lives where the transport can reach it one-sidedly (GPU memory registered with the
// NIC; a shared-memory file for shm). Only the monitor loop reacts to it; the remote only reads
// and writes bytes. Design rules (DESIGN.md §3.2):
//  - a mark is written separately, after the bytes it announces, and is a 64-bit aligned word;
//  - marks are sequence numbers, never bare flags, so a stale reply is never taken as new;
//  - anything read without a request (liveness, background results) is seqlocked;
//  - reply data carries a CRC32C (Castagnoli: reflected polynomial 0x82f63b78, as SSE4.2's crc32
//    instruction and iSCSI compute it; version 3, CRC32 (IEEE) before) so a torn read is detected
//    and retried. The *_crc32 fields keep their names and hold that CRC32C.
#ifndef GRASS_PROTOCOL_H
#define GRASS_PROTOCOL_H

#include <stdint.h>

#include <assert.h> /* static_assert, in C11 too */

#include "grass/detectors.h"

#define GRASS_MAGIC 0x5346425353415247ull /* "GRASSBFS" little-endian */
#define GRASS_PROTOCOL_VERSION 3u
#define GRASS_MAC_BYTES 32u        /* HMAC-SHA256 */
#define GRASS_REQUEST_ARGS 6u

/* Request opcodes. Arguments are in grass_request.args; a reply may span several chunks
 * (see GRASS_OP_FETCH_RESULT). */
enum grass_opcode {
  GRASS_OP_HEARTBEAT = 1,      /* no args; empty reply, answered at once */
  GRASS_OP_DESCRIBE = 2,       /* target description blob (see grass_description_header) */
  GRASS_OP_READ = 3,           /* args: space, address, length, pid (space USER) */
  GRASS_OP_WRITE = 4,          /* args: space, address, length, pid; data in the slot's data area;
                                  refused unless the agent allows writes */
  GRASS_OP_PROCESS_COUNT = 5,  /* args: flags (GRASS_PS_*); reply: one uint64 */
  GRASS_OP_PROCESS_LIST = 6,   /* args: flags (GRASS_PS_*); reply: grass_task_record[] */
  GRASS_OP_FETCH_RESULT = 7,   /* args: result id, byte offset: the next chunk of a large reply */
  GRASS_OP_READ_BATCH = 8,     /* data area holds grass_read_batch_entry[args[0]]; reply holds the
                                  entries' bytes back to back, each preceded by a uint32 status
                                  and padded to 8 bytes; an entry's length bytes are present
                                  whatever its status (zeros when not GRASS_OK), so every entry's
                                  place follows from the lengths alone */
  GRASS_OP_METRICS = 9,        /* no args; reply: the metrics plugin's last 1 s window (monitor clock):
                                  grass_metrics_sample of its start, its grass_metrics_cpu[cpu_count],
                                  its grass_metrics_disk[disk_count], then the same for its end;
                                  GRASS_E_UNSUPPORTED when the plugin did not resolve for this kernel */
  GRASS_OP_DETECT = 10,        /* args: [0] 0, or GRASS_DETECT_SET_MODES to set [1] = the detectors run in
                                  background (bit kind-1); reply: grass_detection[GRASS_DETECTORS]. A
                                  background detector runs in the monitor on every metrics sample and is
                                  republished in the background area; an inline one runs when asked */
  GRASS_OP_BULK_READ = 11,     /* args: physical address, length (both multiples of GRASS_BULK_PAGE_BYTES,
                                  length at most 8 * GRASS_BULK_PAGE_BYTES * slot_data_bytes). Data area:
                                  empty (every page) or a bitmap, bit k (LSB first) selecting page k of
                                  the range. Reply, always one chunk in the slot (never an arena, so each
                                  slot is one transfer in flight): the selected pages back to back, their
                                  CRC32C in data_crc32; GRASS_E_MALFORMED when they exceed the data area,
                                  GRASS_E_OUT_OF_RANGE (detail: the page) for a page outside memory */
  GRASS_OP_DUMP_MAP = 12,      /* args: physical address (a multiple of GRASS_BULK_PAGE_BYTES), page count
                                  (at most 8 * slot_data_bytes). Reply, one chunk in the slot: a bitmap,
                                  bit k (LSB first) set when page k lies in memory and in the dump, clear
                                  for a page the source left out (a dump level's GRASS_E_EXCLUDED) or
                                  outside memory; what BULK_READ may ask for without failing */
};

#define GRASS_BULK_PAGE_BYTES 4096u

enum grass_space { GRASS_SPACE_PHYSICAL = 0, GRASS_SPACE_KERNEL = 1, GRASS_SPACE_USER = 2 };

enum grass_status {
  GRASS_OK = 0,
  GRASS_E_BAD_MAC = 1,         /* authenticator did not verify */
  GRASS_E_REPLAY = 2,          /* sequence number not newer than the slot's last */
  GRASS_E_MALFORMED = 3,       /* unknown opcode, bad lengths or arguments */
  GRASS_E_UNMAPPED = 4,        /* an address did not translate (detail: the failing address) */
  GRASS_E_OUT_OF_RANGE = 5,    /* physical address outside the memory map */
  GRASS_E_WRITES_DISABLED = 6,
  GRASS_E_NO_SUCH_RESULT = 7,  /* FETCH_RESULT of a result the agent no longer holds */
  GRASS_E_TARGET = 8,          /* the target's data was inconsistent (cycle, bound exceeded...) */
  GRASS_E_UNSUPPORTED = 9,
  GRASS_E_EXCLUDED = 10,       /* the page is RAM the dump left out (makedumpfile's dump level; detail:
                                  the failing address) */
};

#define GRASS_PS_THREADS 1u  /* every thread, not only thread-group leaders */
#define GRASS_PS_IDLE 2u     /* include the per-CPU idle tasks (pid 0) */

/* Offset 0 of the buffer. Written by the agent at start, except the live fields. */
struct grass_buffer_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;        /* GRASS_HEADER_BYTES */
  uint64_t buffer_bytes;        /* whole buffer */
  uint32_t slot_count;
  uint32_t slot_bytes;          /* stride of a slot, a multiple of 4096 */
  uint32_t slot_data_bytes;     /* capacity of a slot's data area */
  uint32_t flags;               /* GRASS_AGENT_* */
  uint64_t instance;            /* random per agent start; covered by every MAC (no cross-run replay) */
  /* Liveness, seqlocked by liveness_version (odd while being written). */
  uint64_t liveness_version;
  uint64_t liveness_counter;    /* bumped by the monitor loop on its own, every pass */
  uint64_t monitor_clock_ns;    /* the monitor's own clock at the last bump */
  /* Counters, seqlocked by the same version. */
  uint64_t requests_served;
  uint64_t requests_refused;    /* bad MAC, replay, malformed */
  /* Background results (detections), seqlocked by background_version. */
  uint64_t background_version;
  uint64_t background_offset;   /* from buffer start */
  uint32_t background_capacity;
  uint32_t background_bytes;
  uint32_t background_crc32;    /* CRC32C of the background_bytes at background_offset */
  uint32_t reserved0;
};

#define GRASS_AGENT_WRITES_ALLOWED 1u
#define GRASS_AGENT_BACKEND_CUDA 2u

/* Written by the remote. The MAC is HMAC-SHA256(key, instance || slot index (u32 LE) ||
 * request bytes up to mac || the first data_bytes of the slot's data area). */
struct grass_request {
  uint64_t seq;                 /* > the slot's last accepted seq */
  uint32_t opcode;
  uint32_t data_bytes;          /* bytes of the slot's data area that belong to the request */
  uint64_t args[GRASS_REQUEST_ARGS];
  uint8_t mac[GRASS_MAC_BYTES];
};

/* Written by the monitor, after the reply data. */
struct grass_reply {
  uint64_t seq;                 /* the request's seq */
  uint32_t status;              /* grass_status */
  uint32_t data_bytes;          /* bytes of this chunk in the data area */
  uint64_t total_bytes;         /* whole result; > data_bytes means FETCH_RESULT the rest */
  uint64_t result_id;           /* names the result for FETCH_RESULT (0 if none) */
  uint64_t offset;              /* where this chunk starts in the result */
  uint64_t detail;              /* status detail, e.g. the address that failed */
  uint32_t data_crc32;          /* CRC32C of this chunk's data */
  uint32_t request_tag;         /* the first 4 bytes of the answered request's mac: two remotes that
                                   wrote the same seq to one slot each tell whose request was served */
};

/* One slot: request, its mark, reply, its mark, then the data area (request data on the way
 * in, reply data on the way out). Marks are 8-byte aligned words holding a seq. */
struct grass_slot_header {
  struct grass_request request;
  uint64_t request_mark;        /* remote writes request.seq here after the request */
  uint8_t pad0[64 - (sizeof(struct grass_request) + 8) % 64];
  struct grass_reply reply;
  uint64_t reply_mark;          /* monitor writes reply.seq here after reply and data */
  uint8_t pad1[64 - (sizeof(struct grass_reply) + 8) % 64];
};
#define GRASS_SLOT_DATA_OFFSET 256u /* data area offset within a slot */

struct grass_read_batch_entry {
  uint32_t space;
  uint32_t pid;
  uint64_t address;
  uint32_t length;
  uint32_t reserved0;
};

/* GRASS_OP_PROCESS_LIST record. comm is NUL-padded. state is the ps letter (R S D T t Z X I). */
struct grass_task_record {
  uint64_t task_address;        /* kernel virtual address of the task_struct */
  int32_t pid;
  int32_t tgid;
  int32_t ppid;
  int32_t cpu;
  uint64_t utime_ns;
  uint64_t stime_ns;
  uint64_t rss_bytes;
  uint32_t threads;
  char state;
  uint8_t reserved0[3];
  char comm[16];
};

/* GRASS_OP_METRICS: one sample of the kernel's own counters, taken by the monitor. Counters are
 * cumulative (as /proc shows them); rates and shares come from two samples' difference. */
struct grass_metrics_sample {
  uint64_t monitor_clock_ns;    /* the monitor's clock when taken; 0: no sample yet */
  uint32_t status;              /* grass_status of the sample's reads */
  uint32_t cpu_count;           /* grass_metrics_cpu records that follow */
  uint64_t detail;              /* the address that failed when status != GRASS_OK */
  uint64_t pswpin;              /* vm_event_states[PSWPIN] summed over CPUs (pages) */
  uint64_t pswpout;             /* vm_event_states[PSWPOUT] summed over CPUs (pages) */
  uint64_t free_pages;          /* vm_zone_stat[NR_FREE_PAGES] (MemFree, negatives as 0) */
  uint64_t total_ram_pages;     /* _totalram_pages (MemTotal) */
  uint64_t free_swap_pages;     /* nr_swap_pages (SwapFree) */
  uint64_t total_swap_pages;    /* total_swap_pages (SwapTotal) */
  uint64_t page_size;
  uint64_t jiffies;             /* the target's jiffies (GRASS_METRICS_PART_PROGRESS) */
  uint32_t parts;               /* GRASS_METRICS_PART_* resolved for this kernel and read */
  uint32_t disk_count;          /* grass_metrics_disk records after the CPUs */
};
#define GRASS_METRICS_PART_CORE 1u      /* cpustat, rq counters, swap and memory figures */
#define GRASS_METRICS_PART_PROGRESS 2u  /* jiffies, rq->curr and its times, kstat.irqs_sum */
#define GRASS_METRICS_PART_PREEMPT 4u   /* the per-CPU preempt count */
#define GRASS_METRICS_PART_TIMER 8u     /* per-CPU local timer interrupts */
#define GRASS_METRICS_PART_LOCKQ 16u    /* per-CPU queued-spinlock slow-path nesting (qnodes) */
#define GRASS_METRICS_PART_DISKS 32u    /* whole disks' io_ticks */
#define GRASS_METRICS_MAX_DISKS 16u

/* Per CPU: kernel_cpustat's cumulative times (ns, as /proc/stat's cpuN lines before the USER_HZ
 * conversion) and the CPU's runqueue counters. */
struct grass_metrics_cpu {
  uint64_t user_ns, nice_ns, system_ns, irq_ns, softirq_ns, idle_ns, iowait_ns, steal_ns;
  uint64_t nr_switches;         /* rq->nr_switches (summed: /proc/stat ctxt) */
  uint32_t nr_running;          /* rq->nr_running (summed: procs_running) */
  uint32_t nr_iowait;           /* rq->nr_iowait (summed: procs_blocked) */
  /* Evidence of progress (0 where the part did not resolve). */
  uint64_t irqs;                /* kstat.irqs_sum: device interrupts handled */
  uint64_t timer_irqs;          /* irq_stat.apic_timer_irqs: local timer interrupts */
  uint64_t curr_task;           /* rq->curr (task_struct address) */
  uint64_t curr_utime_ns;       /* its utime, stime */
  uint64_t curr_stime_ns;
  int32_t curr_pid;             /* 0: the CPU's idle task */
  int32_t curr_tgid;
  char curr_comm[16];
  uint32_t curr_samples;        /* consecutive earlier samples with this task current and nr_switches unchanged */
  int32_t preempt_count;        /* the raw per-CPU preempt count */
  uint32_t lock_waiters;        /* qnodes[0].mcs.count: queued-spinlock slow-path nesting */
  uint32_t reserved0;
};

/* GRASS_OP_METRICS: a whole disk (gendisk part0) as /proc/diskstats shows it. */
struct grass_metrics_disk {
  char name[32];                /* disk_name */
  uint64_t io_ticks;            /* jiffies with I/O in flight (diskstats field 10 in jiffies), summed over CPUs */
  uint64_t ios;                 /* completed requests of every direction, summed */
};

/* GRASS_OP_DETECT: one record per detector of grass/detectors.h, record kind - 1 of its kind. */
#define GRASS_DETECT_CULPRITS 8u
#define GRASS_DETECT_SET_MODES 1u      /* GRASS_OP_DETECT args[0] */
/* Hang classes (grass_detection.values[0] of GRASS_DETECT_HANG). */
#define GRASS_HANG_F1 1u  /* CPUs stuck with interrupts off */
#define GRASS_HANG_F2 2u  /* CPUs stuck in the kernel, preemptible */
#define GRASS_HANG_F3 3u  /* CPUs stuck with preemption off, no lock waiters */
#define GRASS_HANG_F4 4u  /* tasks in I/O wait that never completes */
#define GRASS_HANG_F5 5u  /* CPUs spinning on a lock (preemption off, queued-spinlock waiters) */
#define GRASS_HANG_F6 6u  /* swap thrashing */
/* Background area: the monitor republishes grass_background after every evaluation at this
 * offset of the header page (background_offset), with background_bytes and background_crc32,
 * all under background_version (odd while being written); read with one read and no request. */
#define GRASS_BACKGROUND_OFFSET 1024u
#define GRASS_BACKGROUND_LAYOUT 2u     /* grass_background.layout */
#define GRASS_HISTORY_POINTS 32u

struct grass_detect_culprit {
  int32_t pid;                  /* thread-group id; the thread's id for a hang's on-CPU tasks */
  uint32_t cpu_permille;        /* CPU time used over the condition's span / its length (1000 = one CPU) */
  uint64_t rss_bytes;
  char comm[16];
  int32_t cpu;                  /* the CPU it is stuck on (hang), else -1 */
  uint32_t reserved0;
};

struct grass_detection {
  uint32_t kind;                /* GRASS_DETECT_* */
  uint32_t active;              /* 1: detected and the condition still holds */
  uint64_t detected_ns;         /* monitor clock of the latest detection; 0: never detected */
  uint64_t since_ns;            /* monitor clock since which the condition holds; 0: it does not */
  uint64_t evaluated_ns;        /* monitor clock of the last evaluation */
  uint32_t status;              /* grass_status of the last evaluation's reads */
  uint32_t culprit_count;
  uint64_t detail;              /* the address that failed when status != GRASS_OK */
  uint32_t background;          /* 1: run on every metrics sample and published; 0: run when asked */
  uint32_t reserved0;
  /* Figures at detection. CPU high load: [0] least busy CPU's share (permille), [1] its CPU,
   * [2] span (ns), [3] runnable tasks (sum of rq->nr_running), [4] CPUs. Memory leak: [0] free RAM, [1] total RAM, [2] free swap, [3] total swap (bytes).
   * Hang: [0] class (GRASS_HANG_*), the rest per class (docs/detections.md). */
  uint64_t values[8];
  struct grass_detect_culprit culprits[GRASS_DETECT_CULPRITS];  /* busiest / largest first */
};

/* One metrics window, summarised for the history in the background area. */
struct grass_history_point {
  uint64_t monitor_clock_ns;    /* the window's end */
  uint32_t window_ms;
  uint16_t usr_permille, sys_permille, iowait_permille, idle_permille;  /* averaged over CPUs */
  uint32_t context_switches;    /* in the window */
  uint32_t pswpin, pswpout;     /* pages in the window */
  uint32_t free_mib;
  uint16_t run, blk;
  uint16_t util_permille;       /* the busiest disk */
  uint16_t jiffies;             /* target jiffies elapsed in the window (capped) */
};

/* The background area. */
struct grass_background {
  uint32_t layout;              /* GRASS_BACKGROUND_LAYOUT */
  uint32_t history_count;       /* valid points, at most GRASS_HISTORY_POINTS */
  uint32_t history_next;        /* index the next point goes to (oldest when full) */
  uint32_t reserved0;
  struct grass_detection detections[GRASS_DETECTORS];
  struct grass_history_point history[GRASS_HISTORY_POINTS];
};

/* The header pages, where the slots start: grass_buffer_header, then from GRASS_BACKGROUND_OFFSET
 * the background area, sized by the detector list (grass/detectors.h): one page holds up to three
 * detectors, a fourth makes it two. */
#define GRASS_HEADER_BYTES ((uint32_t)((GRASS_BACKGROUND_OFFSET + sizeof(struct grass_background) + 4095u) / 4096u * 4096u))

/* A GRASS_OP_DETECT reply is inline: it must fit the smallest slot data area (4096 bytes,
 * buffer_setup.cpp); the detectors' mode mask (GRASS_DETECT_SET_MODES) has 32 bits. */
static_assert(sizeof(struct grass_buffer_header) <= GRASS_BACKGROUND_OFFSET,
              "grass_buffer_header grew into the background area at GRASS_BACKGROUND_OFFSET");
static_assert(GRASS_DETECTORS * sizeof(struct grass_detection) <= 4096u,
              "grass/detectors.h: the detectors' GRASS_OP_DETECT records no longer fit a 4096-byte slot data area");
static_assert(GRASS_DETECTORS <= 32u, "grass/detectors.h: more detectors than GRASS_DETECT_SET_MODES has bits");

/* GRASS_OP_DESCRIBE result: this header, then the sections it points at (offsets from the
 * start of the result). Strings are UTF-8 without NUL. */
struct grass_description_header {
  uint32_t version;
  uint32_t paging_levels;       /* 4 or 5 */
  uint64_t kaslr_offset;
  uint64_t phys_base;
  uint64_t page_offset_base;
  uint64_t page_table_root;     /* physical */
  uint32_t cpu_count;
  uint32_t memory_range_count;  /* grass_memory_range[] at memory_map_offset */
  uint64_t memory_map_offset;
  uint64_t release_offset, release_bytes;
  uint64_t vmcoreinfo_offset, vmcoreinfo_bytes;
  uint64_t symbols_offset, symbols_bytes;    /* kallsyms text: "ADDR T name\n" lines */
  uint64_t btf_offset, btf_bytes;            /* raw .BTF of vmlinux */
};

struct grass_memory_range {
  uint64_t phys_start;
  uint64_t length;
};

#endif
