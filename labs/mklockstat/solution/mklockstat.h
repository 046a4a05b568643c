/* The lab mklockstat: the structs its BPF program and its C++ reader share. The build puts this
 * header (after probes/common.h) in front of the BPF text, and the C++ side includes it too. */
#ifndef LAB_MKLOCKSTAT_H
#define LAB_MKLOCKSTAT_H

#ifdef __cplusplus
#include "common.h"
#endif

#define LAB_COMM_LEN 16

/* The bits of lock:contention_begin's flags word (LCB_F_* in the kernel's
 * include/trace/events/lock.h). */
#define LAB_F_SPIN 0x01
#define LAB_F_READ 0x02
#define LAB_F_WRITE 0x04
#define LAB_F_RT 0x08
#define LAB_F_PERCPU 0x10
#define LAB_F_MUTEX 0x20

/* A wait in flight, from lock:contention_begin to lock:contention_end. Keyed by thread and lock:
 * while a thread waits for a sleeping lock it may wait for a spinlock too (the rw_semaphore's own
 * wait_lock, or a lock taken by an interrupt on its CPU), and that inner wait ends first. */
struct lab_wait_key {
  __u64 lock;
  __u32 tid;
  __u32 pad;
};

struct lab_wait {
  __u64 start_ns; /* when the first contention_begin of this wait fired */
  __u32 flags;    /* contention_begin's flags (LCB_F_* in the kernel's include/trace/events/lock.h) */
  __s32 stackid;  /* kernel stack at that contention_begin; negative when it could not be stored */
};

/* One open period of one (thread, lock, flags). The C++ side turns the flags into a type name. */
struct lab_key {
  __u64 lock;
  __u32 pid;   /* tgid */
  __u32 tid;
  __u32 flags;
  __u32 pad;
};

struct lab_period {
  __u64 start;   /* period start: a multiple of PERIOD_NS on the bpf_ktime_get_ns clock */
  __u64 wait_ns; /* sum of the waits that ended in this period */
  __u64 count;   /* how many waits ended in it */
  __s32 stackid; /* the stack of the period's first wait */
  __u32 pad;
  char comm[LAB_COMM_LEN];
};

/* What BPF pushes through the `finished` perf buffer when a period is over. */
struct lab_sample {
  struct lab_key key;
  struct lab_period val;
};

/* Every wait of one (thread, lock, flags) over the whole run, kept by BPF apart from the periods:
 * what --totals writes, so that the periods can be checked against it. */
struct lab_total {
  __u64 count;
  __u64 wait_ns;
  __u64 first_end_ns; /* when the first of these waits ended */
  __u64 last_end_ns;  /* when the last one ended */
};

/* Counters in the `counters` array. */
enum lab_counter {
  LAB_C_BEGINS = 0,      /* contention_begin events of traced threads */
  LAB_C_REPEATS,         /* of those, a second begin of a wait already in flight (a mutex spins, then sleeps) */
  LAB_C_ENDS,            /* contention_end events of traced threads */
  LAB_C_UNMATCHED,       /* of those, ends without a begin (the wait began before tracing did) */
  LAB_C_WAITS,           /* waits timed: a begin matched by its end */
  LAB_C_WAIT_NS,         /* their total time */
  LAB_C_PENDING_FULL,    /* a wait could not be remembered at its begin (map full) */
  LAB_C_PERIODS_FULL,    /* a period could not be opened (map full): its wait is not in the log */
  LAB_C_OUTPUT_FAILED,   /* a finished period could not be written to the perf buffer */
  LAB_C_ROLLOVERS,       /* finished periods pushed out by BPF */
  LAB_C_STACK_LOST,      /* a stack could not be stored */
  LAB_C_TOTALS_FULL,     /* the totals map is full: --totals misses a (thread, lock, flags) */
  LAB_C_MAX
};

/* A placeholder the skeleton leaves where code is missing; the C++ side looks for it in the
 * program text and names the TODO it stands for. */
#define LAB_TODO(n) do { } while (0)

#endif
