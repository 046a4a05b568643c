/* mklockstat: every struct that crosses the kernel/user boundary, and the lock-type mapping both
 * sides share. Included by mklockstat.bpf.c (the build prepends it to the embedded BPF text) and by
 * the C++ side, which static_asserts the sizes. */
#ifndef LOCKKIT_MKLOCKSTAT_H
#define LOCKKIT_MKLOCKSTAT_H

#ifndef LOCKKIT_EMBEDDED
#include "common.h"
#endif

#define MK_COMM_LEN 16

/* Flags of the lock:contention_begin tracepoint (include/trace/events/lock.h, LCB_F_*). */
#define MK_F_SPIN 0x01
#define MK_F_READ 0x02
#define MK_F_WRITE 0x04
#define MK_F_RT 0x08
#define MK_F_PERCPU 0x10
#define MK_F_MUTEX 0x20

/* Lock types as reported. Codes >= MK_T_UNKNOWN_BASE carry unknown flags in their low byte. */
enum mk_type {
  MK_T_MUTEX = 1,      /* struct mutex (sleeping or optimistically spinning) */
  MK_T_SEM = 2,        /* struct semaphore */
  MK_T_SEM_R = 3,      /* struct rw_semaphore, read side */
  MK_T_SEM_W = 4,      /* struct rw_semaphore, write side */
  MK_T_RWLOCK_R = 5,   /* rwlock_t, read side */
  MK_T_RWLOCK_W = 6,   /* rwlock_t, write side */
  MK_T_SPIN = 7,       /* spinlock_t / raw_spinlock_t */
  MK_T_RTMUTEX = 8,    /* rt_mutex (and mutex/spinlock_t on PREEMPT_RT) */
  MK_T_RTMUTEX_R = 9,  /* PREEMPT_RT rw_semaphore / rwlock_t (rwbase_rt), read side */
  MK_T_RTMUTEX_W = 10, /* PREEMPT_RT rw_semaphore / rwlock_t (rwbase_rt), write side */
  MK_T_PERCPU_R = 11,  /* percpu_rw_semaphore, read side */
  MK_T_PERCPU_W = 12,  /* percpu_rw_semaphore, write side */
  MK_T_UNKNOWN_BASE = 0x100,
};

/* The type a contention_begin flags word describes. */
LK_INLINE __u32 mk_type_from_flags(__u32 flags) {
  switch (flags) {
    case 0: return MK_T_SEM;
    case MK_F_READ: return MK_T_SEM_R;
    case MK_F_WRITE: return MK_T_SEM_W;
    case MK_F_SPIN: return MK_T_SPIN;
    case MK_F_SPIN | MK_F_READ: return MK_T_RWLOCK_R;
    case MK_F_SPIN | MK_F_WRITE: return MK_T_RWLOCK_W;
    case MK_F_MUTEX: return MK_T_MUTEX;
    case MK_F_MUTEX | MK_F_SPIN: return MK_T_MUTEX; /* optimistic spinning before sleeping */
    case MK_F_RT: return MK_T_RTMUTEX;
    case MK_F_RT | MK_F_READ: return MK_T_RTMUTEX_R;
    case MK_F_RT | MK_F_WRITE: return MK_T_RTMUTEX_W;
    case MK_F_PERCPU | MK_F_READ: return MK_T_PERCPU_R;
    case MK_F_PERCPU | MK_F_WRITE: return MK_T_PERCPU_W;
    default: return MK_T_UNKNOWN_BASE | (flags & 0xff);
  }
}

/* Counters in the `counters` array. */
enum mk_counter {
  MK_C_WAITS = 0,       /* waits recorded (contention_end / kretprobe matched to its start) */
  MK_C_FAILED,          /* of those, waits that ended without the lock (ret != 0) */
  MK_C_STACK_LOST,      /* a first stack could not be stored (the stack map is full) */
  MK_C_PENDING_FULL,    /* too many waits in flight: a wait was not timed */
  MK_C_PERIODS_FULL,    /* period map full: a wait was not recorded */
  MK_C_FIRST_FULL,      /* first-stack map full: the stack is taken again at the next wait */
  MK_C_OUTPUT_FAILED,   /* a finished period could not be written to the perf buffer */
  MK_C_ROLLOVERS,       /* finished periods pushed to user space by BPF */
  MK_C_MAX
};

/* One open period of one (thread, lock, type). Threads are keyed by tid; tid 0 (the idle task,
 * one per CPU, seen when interrupts contend) also by CPU, so two CPUs never share an entry. */
struct mk_key {
  __u64 lock;
  __u32 pid;  /* tgid */
  __u32 tid;
  __u32 cpu;  /* only for tid 0, else 0 */
  __u32 type; /* enum mk_type */
};

struct mk_period {
  __u64 start;   /* period start (ns, bpf_ktime_get_ns grid: a multiple of PERIOD_NS) */
  __u64 wait_ns; /* sum of waits that ended in this period */
  __u64 count;   /* number of those waits */
  __s32 stackid; /* first kernel stack of this thread on this lock; negative when lost */
  __u32 pad;
  char comm[MK_COMM_LEN];
};

/* The period holding time `now`: the largest multiple of `period` not above it. */
LK_INLINE __u64 mk_period_start(__u64 now, __u64 period) { return now - now % period; }

/* Adds a wait of `wait` ns that ended at `now` to the open period `v` and returns 1 when `now`
 * falls in that period. Returns 0, leaving `v` untouched, when `now` lies in another period: `v` is
 * finished and must be pushed out before a new one opens. */
LK_INLINE int mk_period_add(struct mk_period *v, __u64 now, __u64 wait, __u64 period) {
  if (v->start != mk_period_start(now, period))
    return 0;
  v->wait_ns += wait;
  v->count += 1;
  return 1;
}

/* Opens the period holding `now` with its first wait. `v` must be zeroed. */
LK_INLINE void mk_period_open(struct mk_period *v, __u64 now, __u64 wait, __u64 period, __s32 stackid) {
  v->start = mk_period_start(now, period);
  v->wait_ns = wait;
  v->count = 1;
  v->stackid = stackid;
}

/* What BPF pushes through the perf buffer when a period is finished. */
struct mk_sample {
  struct mk_key key;
  struct mk_period val;
};

/* A wait in flight, between contention_begin (or the kprobe) and its end. */
struct mk_pending_key {
  __u64 lock; /* tracepoint backend: the lock; kprobe backend: 0 (one acquisition per thread) */
  __u32 tid;
  __u32 cpu;  /* only for tid 0 */
};

struct mk_pending {
  __u64 start;
  __u64 lock;
  __u32 type;
  __s32 stackid;
};

/* First-stack map key: one stack per (thread, lock, type), so that the read and the write side
 * of a rw_semaphore each show where they were taken. */
struct mk_first_key {
  __u64 lock;
  __u32 tid;
  __u32 cpu;
  __u32 type;
  __u32 pad;
};

struct mk_comm {
  char name[MK_COMM_LEN];
};

#endif
