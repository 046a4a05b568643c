/* lockstat: every struct that crosses the kernel/user boundary. Included by lockstat.bpf.c (the
 * build prepends it to the embedded BPF text) and by the C++ reader, which static_asserts sizes. */
#ifndef LOCKKIT_LOCKSTAT_H
#define LOCKKIT_LOCKSTAT_H

#ifndef LOCKKIT_EMBEDDED
#include "common.h"
#endif

enum lk_kind { LK_MUTEX = 0, LK_RWLOCK = 1, LK_SPIN = 2, LK_SEM = 3 };
enum lk_mode { LK_EXCLUSIVE = 0, LK_SHARED = 1 };
enum lk_op { LK_OP_LOCK = 0, LK_OP_TRY = 1, LK_OP_TIMED = 2 };
enum lk_which { LK_WAIT = 0, LK_HOLD = 1 };

/* The attach cookie of an acquisition site (lock_site_enter) or an init site (init_site_enter):
 * one program serves every site, so the stack walk inlined into it is verified once. */
#define LK_SITE_COOKIE(kind, mode, op) ((__u64)(kind) | ((__u64)(mode) << 8) | ((__u64)(op) << 16))
#define LK_SITE_KIND(c) ((__u32)(c) & 0xff)
#define LK_SITE_MODE(c) (((__u32)(c) >> 8) & 0xff)
#define LK_SITE_OP(c) (((__u32)(c) >> 16) & 0xff)

/* Reasons BPF could not record something; counted in the `drops` array and shown by reports. */
enum lk_drop {
  LK_DROP_STATS_FULL = 0,  /* stats map full: an acquisition or hold was not recorded */
  LK_DROP_PENDING_FULL,    /* too many threads inside lock calls at once */
  LK_DROP_HELD_FULL,       /* too many locks held at once: the hold was not timed */
  LK_DROP_HIST_FULL,       /* histogram map full */
  LK_DROP_INIT_FULL,       /* init-stack map full */
  LK_DROP_STACK_LOST,      /* a stack could not be stored (the stack map is full) */
  LK_DROP_COND_FULL,       /* too many threads inside cond waits at once */
  LK_DROP_ORDER_HELD_FULL,    /* --lock-order: a thread held more than LK_ORDER_HELD locks */
  LK_DROP_ORDER_THREADS_FULL, /* --lock-order: too many threads holding locks at once */
  LK_DROP_ORDER_EDGES_FULL,   /* --lock-order: the lock-order edge map is full */
  LK_DROP_MAX
};

/* One row of statistics: per lock, thread, acquisition stack. */
struct lk_stat_key {
  __u64 lock;
  __u64 caller;   /* return address of the lock call: the direct caller the FP walk skips */
  __u32 tid;
  __s32 stackid;  /* user stack at the lock call; negative when lost */
  __u32 kind;
  __u32 mode;
  __u32 pid;      /* the process (a process tree has several; a lock address is per process) */
  __u32 pad;
};

struct lk_stat_val {
  __u64 acquisitions;  /* successful lock calls (including recursive re-locks) */
  __u64 failed_trylocks;
  __u64 timeouts;      /* timed locks that gave up (their wait is counted) */
  __u64 errors;        /* other error returns */
  __u64 wait_ns, wait_min, wait_max;
  __u64 holds;         /* completed holds: outermost lock to its matching unlock */
  __u64 hold_ns, hold_min, hold_max;
  __u64 cond_waits;    /* condition-variable waits while held (excluded from hold) */
  __u64 cond_wait_ns;
  /* Semaphores only. handoffs: sem_posts by a thread with no acquisition of that semaphore open
   * (on the poster's row, keyed by the sem_post stack). unreleased: acquisitions their thread did
   * not post back before acquiring the semaphore again, before it was initialised again, or
   * before tracing ended (on the acquisition's row); these are never timed as holds. */
  __u64 handoffs;
  __u64 unreleased;
};

/* A thread inside a lock call, between entry and return. */
struct lk_pending {
  __u64 lock;
  __u64 ts;
  __u64 caller;
  __s32 stackid;
  __u32 kind;
  __u32 mode;
  __u32 op;
  __s32 futex_ret;  /* semaphores: the result of the thread's last futex call inside the sem call */
  __u32 pad;
};

struct lk_held_key {
  __u64 lock;
  __u32 tid;
  __u32 pad;
};

struct lk_held {
  __u64 acquired;
  __u64 paused_ns;    /* time released inside pthread_cond_*wait */
  __u64 pause_start;  /* non-zero while inside a cond wait */
  __u64 caller;
  __s32 stackid;
  __u32 kind;
  __u32 mode;
  __u32 depth;        /* recursive mutex / repeated read lock nesting */
};

struct lk_hist_key {
  __u64 lock;
  __u32 tid;
  __u16 which; /* LK_WAIT or LK_HOLD */
  __u16 slot;  /* lk_log2_slot(time in microseconds) */
};

struct lk_init {
  __u64 caller;
  __s32 stackid;
  __u32 tid;
  __u32 kind;
  __u32 pad;
};

/* --lock-order (built with -DLOCK_ORDER): the locks each thread holds, and the edges "B was
 * taken, blocking, while A was held" between them. */
#define LK_ORDER_HELD 16  /* locks one thread can hold at once for lock-order tracking */

/* The locks a thread holds, in no particular order (slot i is valid for i < n). */
struct lk_order_held {
  __u64 locks[LK_ORDER_HELD];
  __u64 callers[LK_ORDER_HELD];  /* return address of the call that took each */
  __s32 stackids[LK_ORDER_HELD]; /* its acquisition stack */
  __u32 kinds;                   /* 2 bits per slot: enum lk_kind */
  __u32 shared;                  /* bit i: slot i is held in shared (read) mode */
  __u32 n;
  __u32 pad;
};

/* An edge from -> to: `to` was taken in a blocking call while `from` was held. Modes are part of
 * the key: a read-held -> write-taken edge and a write-held -> write-taken edge of one pair are
 * told apart (read-held -> read-taken edges are never recorded). */
struct lk_order_key {
  __u64 from;
  __u64 to;
  __u32 from_mode; /* LK_EXCLUSIVE or LK_SHARED */
  __u32 to_mode;
  __u32 pid;       /* the process (a lock address is per process) */
  __u32 pad;
};

/* The first time the edge was made. */
struct lk_order_edge {
  __u64 from_caller;
  __u64 to_caller;
  __s32 from_stackid; /* where `from` was taken (negative when lost) */
  __s32 to_stackid;   /* the call that took `to` */
  __u32 tid;
  __u16 from_kind;
  __u16 to_kind;
};

#endif
