// grass-guest: small static helper that runs inside a testbed guest (busybox has no equivalent).
//
//   grass-guest kmsg                 print every record of /dev/kmsg ("prio,seq,usec,flags;text"
//                                    plus its " KEY=value" continuation lines), then exit
//   grass-guest spawn N [threads]    start N sleeping processes (or N threads in one process) held
//                                    by a holder process in its own session; prints
//                                    "holder=<pid> created=<n>" once all exist
//   grass-guest hog MIB RATE [retouch]
//                                    allocate and touch MIB MiB (0: without end) at RATE MiB/s
//                                    (0: as fast as possible); with "retouch", keep rewriting all
//                                    of it (a working set larger than RAM thrashes swap)
//   grass-guest marker COUNT         fill COUNT locked pages with distinct marker text, print
//                                    "<physical address hex> <marker>" per page (from
//                                    /proc/self/pagemap), then "done", then hold them forever
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int usage(void) {
  fprintf(stderr, "usage: grass-guest kmsg | spawn N [threads] | hog MIB RATE [retouch] | marker COUNT\n");
  return 2;
}

static int dump_kmsg(void) {
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  if (fd < 0) {
    perror("grass-guest: open /dev/kmsg");
    return 1;
  }
  // One read returns one record; a record is at most about 8 KiB (PRINTK_MESSAGE_MAX + dict).
  static char record[16384];
  for (;;) {
    ssize_t n = read(fd, record, sizeof record);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records were skipped; go on
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;    // end of the log
    if (n < 0) {
      perror("grass-guest: read /dev/kmsg");
      return 1;
    }
    if (n == 0) break;
    fwrite(record, 1, (size_t)n, stdout);
  }
  close(fd);
  return fflush(stdout) == 0 ? 0 : 1;
}

static void *sleep_forever(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

static int spawn(long count, int threads) {
  int ready[2];
  if (pipe(ready) != 0) {
    perror("grass-guest: pipe");
    return 1;
  }
  pid_t holder = fork();
  if (holder < 0) {
    perror("grass-guest: fork");
    return 1;
  }
  if (holder == 0) {
    close(ready[0]);
    setsid();  // one process group: `kill -- -<holder>` ends them all
    prctl(PR_SET_NAME, "grass-holder");
    long created = 0;
    int err = 0;
    if (threads) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 16384);
      for (; created < count; created++) {
        pthread_t t;
        err = pthread_create(&t, &attr, sleep_forever, NULL);
        if (err) break;
      }
    } else {
      for (; created < count; created++) {
        pid_t child = fork();
        if (child < 0) {
          err = errno;
          break;
        }
        if (child == 0) {
          close(ready[1]);
          prctl(PR_SET_NAME, "grass-spawn");
          sleep_forever(NULL);
        }
      }
    }
    dprintf(ready[1], "%ld %d\n", created, err);
    close(ready[1]);
    // Stay as the parent of the children so they never become zombies of init.
    for (;;) {
      if (threads) pause();
      else if (wait(NULL) < 0 && errno == ECHILD) pause();
    }
  }
  close(ready[1]);
  char line[64] = {0};
  ssize_t n = read(ready[0], line, sizeof line - 1);
  long created = 0;
  int err = 0;
  if (n <= 0 || sscanf(line, "%ld %d", &created, &err) != 2) {
    fprintf(stderr, "grass-guest: the holder process %d died before reporting\n", holder);
    return 1;
  }
  printf("holder=%d created=%ld\n", holder, created);
  if (created < count) {
    fprintf(stderr, "grass-guest: created %ld of %ld %s: %s\n", created, count,
            threads ? "threads" : "processes", strerror(err));
    return 1;
  }
  return 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int hog(long mib, long rate, int retouch) {
  prctl(PR_SET_NAME, "grass-hog");
  const size_t chunk = 1 << 20;
  size_t capacity = 1024, used = 0;
  char **chunks = malloc(capacity * sizeof *chunks);
  if (!chunks) return 1;
  unsigned pattern = 1;
  for (long i = 0; mib == 0 || i < mib; i++) {
    char *p = malloc(chunk);
    if (!p) {
      fprintf(stderr, "grass-guest: hog: allocation failed after %ld MiB\n", i);
      break;
    }
    // Distinct bytes per page so no page is all zero (same-filled pages cost no swap).
    for (size_t off = 0; off < chunk; off += 4096) p[off] = (char)(pattern++ | 1);
    memset(p + 64, (int)(i & 0xff) | 1, chunk - 128);
    if (used == capacity) {
      capacity *= 2;
      char **grown = realloc(chunks, capacity * sizeof *chunks);
      if (!grown) break;
      chunks = grown;
    }
    chunks[used++] = p;
    if (rate > 0) sleep_ms(1000 / rate);
  }
  for (;;) {
    if (!retouch) {
      pause();
      continue;
    }
    // Through a volatile pointer: stores nobody reads again are otherwise removed, and gcc -O2
    // turned this loop into `jmp .` (no page was ever touched, so nothing swapped in).
    for (size_t i = 0; i < used; i++)
      for (size_t off = 0; off < chunk; off += 4096) {
        volatile char *byte = chunks[i] + off;
        *byte = (char)(*byte + 1);
      }
  }
}

static int marker(long count) {
  const long page = sysconf(_SC_PAGESIZE);
  char *mem = mmap(NULL, (size_t)(count * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("grass-guest: mmap");
    return 1;
  }
  for (long i = 0; i < count; i++)
    snprintf(mem + i * page, (size_t)page, "GRASS-MARKER pid=%d page=%ld end", getpid(), i);
  if (mlock(mem, (size_t)(count * page)) != 0) perror("grass-guest: mlock (pages may move)");
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) {
    perror("grass-guest: open /proc/self/pagemap");
    return 1;
  }
  for (long i = 0; i < count; i++) {
    uint64_t entry = 0;
    off_t at = (off_t)(((uintptr_t)mem / (uintptr_t)page + (uintptr_t)i) * sizeof entry);
    if (pread(fd, &entry, sizeof entry, at) != sizeof entry || !(entry >> 63 & 1)) continue;
    uint64_t pfn = entry & ((1ULL << 55) - 1);
    printf("%llx %s\n", (unsigned long long)(pfn * (uint64_t)page), mem + i * page);
  }
  printf("done\n");
  fflush(stdout);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  if (strcmp(argv[1], "kmsg") == 0 && argc == 2) return dump_kmsg();
  if (strcmp(argv[1], "spawn") == 0 && (argc == 3 || argc == 4)) {
    long n = strtol(argv[2], NULL, 10);
    int threads = argc == 4 && strcmp(argv[3], "threads") == 0;
    if (n <= 0 || (argc == 4 && !threads)) return usage();
    return spawn(n, threads);
  }
  if (strcmp(argv[1], "hog") == 0 && (argc == 4 || argc == 5)) {
    int retouch = argc == 5 && strcmp(argv[4], "retouch") == 0;
    if (argc == 5 && !retouch) return usage();
    return hog(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10), retouch);
  }
  if (strcmp(argv[1], "marker") == 0 && argc == 3) {
    long n = strtol(argv[2], NULL, 10);
    if (n <= 0) return usage();
    return marker(n);
  }
  return usage();
}
